"""ASGD (averaged stochastic gradient descent)."""

from __future__ import annotations

from .. import dtypes, ops as F
from .optimizer import Optimizer, _check_range, _hypers, _new_step, _step_scalar


class ASGD(Optimizer):
    """PyTorch's ``torch.optim.ASGD``::

        t += 1;  g = grad (negated if maximize) + weight_decay * p
        p *= 1 - lambd * eta;  p -= eta * g
        ax = p  (mu == 1) | ax + mu * (p - ax)  (otherwise)
        eta = lr / (1 + lambd * lr * t) ^ alpha;  mu = 1 / max(1, t - t0)

    ``eta`` (starting at ``lr``) and ``mu`` (starting at 1) are 0-d float32 tensors in the
    state, next to ``step`` and ``ax``, the running average of the parameter from step
    ``t0`` on (the parameter itself until then).
    """

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        _check_range("learning rate", lr)
        _check_range("weight_decay", weight_decay)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr, lambd, alpha, t0, weight_decay = _hypers(group, "lr", "lambd", "alpha", "t0",
                                                     "weight_decay")
        for p in params:
            g = self._grad(p, group)
            state = self.state[p]
            if not state:
                state["step"] = _new_step(p)
                # the initial eta is the group's lr when the state is created
                state["eta"] = F.full((), group["lr"], dtype=dtypes.float32, device=p.device)
                state["mu"] = F.ones((), dtype=dtypes.float32, device=p.device)
                state["ax"] = F.zeros_like(p)
            state["step"].add_(1)
            step = _step_scalar(state["step"], p)
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            # float64 parameters compute with the counters in float64 (as PyTorch does
            # with their Python values); others in float32
            eta, mu = _step_scalar(state["eta"], p), _step_scalar(state["mu"], p)
            p.mul_(1 - lambd * eta)
            p.addcmul_(g, eta, value=-1)
            ax = state["ax"]
            ax.copy_(F.where(mu == 1, p, ax + (p - ax) * mu))
            state["eta"].copy_(lr / (1 + lambd * lr * step) ** alpha)
            state["mu"].copy_(1 / F.maximum(step - t0, F.ones_like(step)))
