"""Adafactor (PyTorch's ``torch.optim.Adafactor``, torch >= 2.5)."""

from __future__ import annotations

import math

from .. import dtype_info, ops as F
from ..errors import ArgumentError, FwTypeError
from .optimizer import Optimizer, _hypers, _new_step, _step_scalar


class Adafactor(Optimizer):
    """PyTorch's ``torch.optim.Adafactor`` (Shazeer & Stern, with PyTorch's use of ``lr``
    and ``eps1``)::

        t += 1;  g = grad (negated if maximize)
        beta2_t = 1 - t^beta2_decay;  rho_t = min(lr, 1 / sqrt(t))
        alpha_t = max(eps2, RMS(p)) * rho_t            (RMS(p) before weight decay)
        p *= 1 - lr * weight_decay
        ndim >= 2:  row_var = lerp(row_var, mean(g^2, dim=-1), 1 - beta2_t)   (..., m, 1)
                    col_var = lerp(col_var, mean(g^2, dim=-2), 1 - beta2_t)   (..., 1, n)
                    V = row_var @ col_var / max(mean(row_var, dim=-2), eps1)
        otherwise:  variance = lerp(variance, g^2, 1 - beta2_t);  V = variance
        U = g / sqrt(max(V, eps1^2));  p -= alpha_t / max(1, RMS(U) / d) * U

    ``eps=(eps1, eps2)``; ``eps1=None`` means the parameter dtype's machine epsilon. The
    state of a parameter is ``step`` and ``row_var``/``col_var`` (factored over its last two
    dims) or ``variance`` (0-d and 1-d parameters). Every quantity PyTorch computes on the
    host with ``.item()`` is a 0-d tensor here, so a compiled step captures the update whole.
    """

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, *, foreach=None, maximize=False):
        if hasattr(lr, "numel") and lr.numel() != 1:
            raise ArgumentError("Adafactor: Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ArgumentError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ArgumentError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ArgumentError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ArgumentError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ArgumentError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ArgumentError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                        weight_decay=weight_decay, foreach=foreach, maximize=maximize)
        super().__init__(params, defaults)

    def _init_state(self, p, g) -> dict:
        """The state of ``p``, created on first use (PyTorch's keys and shapes)."""
        state = self.state[p]
        if not state:
            state["step"] = _new_step(p)
            if g.ndim > 1:
                row_shape = list(g.shape)
                row_shape[-1] = 1
                col_shape = list(g.shape)
                col_shape[-2] = 1
                state["row_var"] = F.zeros(tuple(row_shape), dtype=g.dtype, device=g.device)
                state["col_var"] = F.zeros(tuple(col_shape), dtype=g.dtype, device=g.device)
            else:
                state["variance"] = F.zeros_like(g)
        return state

    def _update_group(self, group, params):
        lr, beta2_decay, (eps1, eps2), d, weight_decay = _hypers(
            group, "lr", "beta2_decay", "eps", "d", "weight_decay")
        for p in params:
            if p.dtype.is_complex:
                raise FwTypeError("Adafactor does not support complex parameters")
            g = self._grad(p, group)
            state = self._init_state(p, g)
            if eps1 is None:  # PyTorch fixes it from the group's first parameter
                eps1 = dtype_info.finfo(p.dtype).eps
            state["step"].add_(1)
            step = _step_scalar(state["step"], p)
            one_minus_beta2_t = step ** beta2_decay
            rho_t = F.minimum(step.rsqrt(), lr)
            rms_p = F.norm(p) / math.sqrt(max(p.numel(), 1))
            alpha = F.maximum(rms_p, eps2) * rho_t
            if weight_decay != 0:
                p.mul_(1 - lr * weight_decay)
            if g.ndim > 1:
                g2 = g * g
                row_var, col_var = state["row_var"], state["col_var"]
                row_var.lerp_(g2.mean(dim=-1, keepdim=True), one_minus_beta2_t)
                col_var.lerp_(g2.mean(dim=-2, keepdim=True), one_minus_beta2_t)
                var_estimate = row_var @ col_var
                var_estimate = var_estimate / F.maximum(row_var.mean(dim=-2, keepdim=True),
                                                        eps1)
            else:
                variance = state["variance"]
                variance.lerp_(g * g, one_minus_beta2_t)
                var_estimate = variance
            update = F.maximum(var_estimate, eps1 * eps1).rsqrt() * g
            rms_u = F.norm(update) / (math.sqrt(max(update.numel(), 1)) * d)
            p.add_(update * (-alpha / F.maximum(rms_u, 1.0)))
