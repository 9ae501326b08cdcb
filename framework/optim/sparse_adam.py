"""SparseAdam: the lazy Adam of PyTorch's ``torch.optim.SparseAdam``, for sparse gradients
(``nn.Embedding(sparse=True)``)."""

from __future__ import annotations

import math

from .. import ops as F
from ..errors import ArgumentError
from ..sparse.grad import add_sparse_, is_sparse, masked_values, no_trace
from .optimizer import Optimizer, _check_range, _hypers


class SparseAdam(Optimizer):
    """PyTorch's ``torch.optim.SparseAdam``: Adam whose moments and parameter change only
    at the rows present in the (coalesced) sparse gradient ``g`` of this step::

        t += 1                                  (one counter per parameter)
        m[rows] += (1 - beta1) * (g - m[rows]); v[rows] += (1 - beta2) * (g^2 - v[rows])
        p[rows] -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m[rows] / (sqrt(v[rows]) + eps)

    Rows absent from a step's gradient keep their moments (no decay): that is the
    "lazy" part, and why it differs from ``Adam`` on the densified gradient. A dense
    gradient is refused, as in PyTorch.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        if not 0.0 < lr:
            raise ArgumentError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ArgumentError(f"Invalid epsilon value: {eps}")
        _check_range("beta parameter at index 0", betas[0], 0.0, 1.0)
        _check_range("beta parameter at index 1", betas[1], 0.0, 1.0)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize)
        super().__init__(params, defaults)
        bad = [[i, j] for i, g in enumerate(self.param_groups)
               for j, p in enumerate(g["params"]) if p.is_complex()]
        if bad:
            raise ArgumentError(f"Complex params at indices {bad}: SparseAdam does not support "
                                "complex parameters")

    def _check_sparse_grad(self, group):
        pass  # sparse gradients are the point

    def _update_group(self, group, params):
        lr, (beta1, beta2), eps = _hypers(group, "lr", "betas", "eps")
        for p in params:
            g = p.grad
            if not is_sparse(g):
                raise NotImplementedError("SparseAdam does not support dense gradients, "
                                          "please consider Adam instead")
            no_trace("SparseAdam step (its gradient is sparse)")
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = F.zeros_like(p)
                state["exp_avg_sq"] = F.zeros_like(p)
            state["step"] = step = int(state["step"]) + 1
            g = g.coalesce()  # the update is not linear: duplicates are summed first
            values = g._values()
            if group["maximize"]:
                values = -values
            if values.numel() == 0:
                continue
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            old_m = masked_values(exp_avg, g)
            m_update = (values - old_m) * (1 - beta1)
            add_sparse_(exp_avg, g._with_values(m_update))
            old_v = masked_values(exp_avg_sq, g)
            v_update = (values * values - old_v) * (1 - beta2)
            add_sparse_(exp_avg_sq, g._with_values(v_update))
            numer = m_update + old_m
            denom = (v_update + old_v).sqrt() + eps
            step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
            add_sparse_(p, g._with_values(numer / denom * -step_size))
