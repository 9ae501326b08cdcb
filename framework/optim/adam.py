"""Adam and AdamW."""

from __future__ import annotations

from .. import ops as F
from . import _fused
from .optimizer import (Optimizer, _apply_weight_decay, _check_adam_args, _hypers,
                        _step_scalar)


class Adam(Optimizer):
    """PyTorch's ``torch.optim.Adam``::

        t += 1;  g = grad (negated if maximize)
        p *= 1 - lr * weight_decay          (decoupled_weight_decay, i.e. AdamW)
        g += weight_decay * p               (otherwise)
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v)               (amsgrad; used in place of v below)
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    ``fused=True`` runs the same update as one pass per parameter (NumPy on "cpu", one Triton
    kernel on "cuda"; see ``framework/optim/_fused.py``, which also says when it falls back
    to this rule, e.g. while ``fw.compile`` captures the step).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        _check_adam_args(lr, eps, betas, weight_decay)
        _fused.check_options(type(self).__name__, fused, foreach, differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        if fused:
            _fused.check_params(self)

    def _update_group(self, group, params):
        if group.get("fused"):
            params = _fused.adam(self, group, params)
        lr, (beta1, beta2), eps, weight_decay = _hypers(group, "lr", "betas", "eps",
                                                        "weight_decay")
        amsgrad = group["amsgrad"]
        buffers = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        for p in params:
            g = self._grad(p, group)
            state = self._lazy_state(p, *buffers)
            state["step"].add_(1)
            g = _apply_weight_decay(p, g, lr, weight_decay, group["decoupled_weight_decay"])
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(g, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            step = _step_scalar(state["step"], p)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2_sqrt = (1 - beta2 ** step).sqrt()
            second = exp_avg_sq
            if amsgrad:
                state["max_exp_avg_sq"].copy_(F.maximum(state["max_exp_avg_sq"], exp_avg_sq))
                second = state["max_exp_avg_sq"]
            denom = second.sqrt() / bias_correction2_sqrt + eps
            p.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)


class AdamW(Adam):
    """Adam with decoupled weight decay (``p *= 1 - lr * weight_decay`` before the update);
    PyTorch's ``torch.optim.AdamW`` (weight_decay defaults to 1e-2)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
