"""Rprop (resilient backpropagation)."""

from __future__ import annotations

from .. import ops as F
from ..errors import ArgumentError
from .optimizer import Optimizer, _check_range, _hypers, _new_step


class Rprop(Optimizer):
    """PyTorch's ``torch.optim.Rprop``: a per-element step size adapted from the sign of
    consecutive gradients; only the sign of the gradient moves the parameter::

        g = grad (negated if maximize);  s = g * g_prev
        step_size *= eta_plus (s > 0) | eta_minus (s < 0) | 1 (s == 0)
        step_size = clamp(step_size, step_size_min, step_size_max)
        g = 0 where s < 0                  (no move, and no sign change at the next step)
        p -= sign(g) * step_size;  g_prev = g

    ``lr`` is only the initial step size (``state['step_size']`` starts filled with it);
    the state is ``step``, ``prev`` (the last gradient) and ``step_size``.
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_range("learning rate", lr)
        etaminus, etaplus = etas
        if not 0.0 < etaminus < 1.0 < etaplus:
            raise ArgumentError(f"Invalid eta values: {etaminus}, {etaplus}")
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes),
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        (etaminus, etaplus), (step_size_min, step_size_max) = _hypers(group, "etas",
                                                                      "step_sizes")
        for p in params:
            g = self._grad(p, group)
            state = self.state[p]
            if not state:
                state["step"] = _new_step(p)
                state["prev"] = F.zeros_like(p)
                # lr is read once, here (not through _hyper): it seeds the step sizes
                state["step_size"] = F.full_like(p, group["lr"])
            state["step"].add_(1)
            prev, step_size = state["prev"], state["step_size"]
            agreement = g * prev
            shrink = agreement < 0
            factor = F.where(agreement > 0, etaplus,
                             F.where(shrink, etaminus, F.ones_like(step_size)))
            step_size.mul_(factor).clamp_(step_size_min, step_size_max)
            g = F.where(shrink, F.zeros_like(g), g)
            p.addcmul_(g.sign(), step_size, value=-1)
            prev.copy_(g)
