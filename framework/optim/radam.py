"""RAdam (rectified Adam)."""

from __future__ import annotations

from .. import ops as F
from .optimizer import Optimizer, _apply_weight_decay, _check_adam_args, _hypers, _step_scalar


class RAdam(Optimizer):
    """PyTorch's ``torch.optim.RAdam``::

        t += 1;  g = grad (negated if maximize)
        p *= 1 - lr * weight_decay (decoupled) | g += weight_decay * p
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t)
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        p -= lr * m_hat * r_t * sqrt(1 - beta2^t) / (sqrt(v) + eps)   if rho_t > 5
        p -= lr * m_hat                                                otherwise

    The branch on ``rho_t`` is a tensor ``where``, so no Python value depends on the step.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False):
        _check_adam_args(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr, (beta1, beta2), eps, weight_decay = _hypers(group, "lr", "betas", "eps",
                                                        "weight_decay")
        for p in params:
            g = self._grad(p, group)
            state = self._lazy_state(p, "exp_avg", "exp_avg_sq")
            state["step"].add_(1)
            step = _step_scalar(state["step"], p)
            g = _apply_weight_decay(p, g, lr, weight_decay, group["decoupled_weight_decay"])
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(g, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
            rho_c = rho_t.clamp_min(5.0)  # keeps the unused branch free of sqrt(negative)
            rect = ((rho_c - 4) * (rho_c - 2) * rho_inf /
                    ((rho_inf - 4) * (rho_inf - 2) * rho_c)).sqrt()
            adaptive = bias_correction2.sqrt() / (exp_avg_sq.sqrt() + eps)
            scale = F.where(rho_t > 5.0, rect * adaptive, F.ones_like(adaptive))
            p.sub_(exp_avg / bias_correction1 * lr * scale)
