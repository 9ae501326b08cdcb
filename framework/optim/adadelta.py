"""Adadelta."""

from __future__ import annotations

from .optimizer import Optimizer, _check_range, _hypers


class Adadelta(Optimizer):
    """PyTorch's ``torch.optim.Adadelta``::

        g = grad (negated if maximize) + weight_decay * p
        v = rho * v + (1 - rho) * g^2
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta^2;  p -= lr * delta
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        _check_range("learning rate", lr)
        _check_range("rho", rho, 0.0, 1.0, high_open=False)
        _check_range("epsilon", eps)
        _check_range("weight_decay", weight_decay)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr, rho, eps, weight_decay = _hypers(group, "lr", "rho", "eps", "weight_decay")
        for p in params:
            g = self._grad(p, group)
            state = self._lazy_state(p, "square_avg", "acc_delta")
            state["step"].add_(1)
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            square_avg.mul_(rho).addcmul_(g, g, value=1 - rho)
            std = (square_avg + eps).sqrt()
            delta = (acc_delta + eps).sqrt() / std * g
            acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
            p.add_(delta, alpha=-lr)
