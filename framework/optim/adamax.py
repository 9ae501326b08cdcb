"""Adamax (Adam with the infinity norm)."""

from __future__ import annotations

from .. import ops as F
from .optimizer import Optimizer, _check_adam_args, _hypers, _step_scalar


class Adamax(Optimizer):
    """PyTorch's ``torch.optim.Adamax``::

        t += 1;  g = grad (negated if maximize) + weight_decay * p
        m = lerp(m, g, 1 - beta1);  u = max(beta2 * u, |g| + eps)
        p -= lr / (1 - beta1^t) * m / u
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check_adam_args(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr, (beta1, beta2), eps, weight_decay = _hypers(group, "lr", "betas", "eps",
                                                        "weight_decay")
        for p in params:
            g = self._grad(p, group)
            state = self._lazy_state(p, "exp_avg", "exp_inf")
            state["step"].add_(1)
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            exp_avg.lerp_(g, 1 - beta1)
            exp_inf.copy_(F.maximum(exp_inf * beta2, g.abs() + eps))
            bias_correction = 1 - beta1 ** _step_scalar(state["step"], p)
            p.addcdiv_(exp_avg, exp_inf, value=-lr / bias_correction)
