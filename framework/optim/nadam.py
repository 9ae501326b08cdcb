"""NAdam (Adam with Nesterov momentum and momentum decay)."""

from __future__ import annotations

from .. import dtypes, ops as F
from .optimizer import (Optimizer, _apply_weight_decay, _check_adam_args, _check_range, _hypers,
                        _new_step, _step_scalar)


class NAdam(Optimizer):
    """PyTorch's ``torch.optim.NAdam``::

        t += 1;  g = grad (negated if maximize)
        p *= 1 - lr * weight_decay (decoupled) | g += weight_decay * p
        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));  mu_{t+1} likewise
        mu_product *= mu_t
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g^2
        denom = sqrt(v / (1 - beta2^t)) + eps
        p -= lr * (1 - mu_t) / (1 - mu_product) * g / denom
        p -= lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / denom
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        _check_adam_args(lr, eps, betas, weight_decay)
        _check_range("momentum_decay", momentum_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr, (beta1, beta2), eps, weight_decay, momentum_decay = _hypers(
            group, "lr", "betas", "eps", "weight_decay", "momentum_decay")
        for p in params:
            g = self._grad(p, group)
            state = self.state[p]
            if not state:
                state["step"] = _new_step(p)
                state["mu_product"] = F.ones((), dtype=dtypes.float32, device=p.device)
                state["exp_avg"] = F.zeros_like(p)
                state["exp_avg_sq"] = F.zeros_like(p)
            state["step"].add_(1)
            step = _step_scalar(state["step"], p)
            g = _apply_weight_decay(p, g, lr, weight_decay, group["decoupled_weight_decay"])
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
            mu_product = state["mu_product"]
            mu_product.mul_(mu)
            mu_product_now = _step_scalar(mu_product, p)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(g, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (exp_avg_sq / (1 - beta2 ** step)).sqrt() + eps
            p.addcdiv_(g, denom, value=-lr * (1 - mu) / (1 - mu_product_now))
            p.addcdiv_(exp_avg, denom, value=-lr * mu_next / (1 - mu_product_now * mu_next))
