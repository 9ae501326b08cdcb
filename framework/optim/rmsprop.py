"""RMSprop (optionally centered, with momentum)."""

from __future__ import annotations

from .optimizer import Optimizer, _check_range, _hypers


class RMSprop(Optimizer):
    """PyTorch's ``torch.optim.RMSprop``::

        g = grad (negated if maximize) + weight_decay * p
        v = alpha * v + (1 - alpha) * g^2
        avg = sqrt(v - g_avg^2) + eps, g_avg = lerp(g_avg, g, 1 - alpha)   (centered)
        avg = sqrt(v) + eps                                                (otherwise)
        buf = momentum * buf + g / avg;  p -= lr * buf                    (momentum > 0)
        p -= lr * g / avg                                                  (otherwise)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        _check_range("learning rate", lr)
        _check_range("epsilon", eps)
        _check_range("momentum", momentum)
        _check_range("weight_decay", weight_decay)
        _check_range("alpha", alpha)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr, alpha, eps, weight_decay, momentum = _hypers(group, "lr", "alpha", "eps",
                                                         "weight_decay", "momentum")
        buffers = ["square_avg"]
        if group["momentum"] > 0:
            buffers.append("momentum_buffer")
        if group["centered"]:
            buffers.append("grad_avg")
        for p in params:
            g = self._grad(p, group)
            state = self._lazy_state(p, *buffers)
            state["step"].add_(1)
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            square_avg = state["square_avg"]
            square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
            if group["centered"]:
                grad_avg = state["grad_avg"]
                grad_avg.lerp_(g, 1 - alpha)
                avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt()
            else:
                avg = square_avg.sqrt()
            avg = avg + eps
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf.mul_(momentum).addcdiv_(g, avg)
                p.add_(buf, alpha=-lr)
            else:
                p.addcdiv_(g, avg, value=-lr)
