"""Adagrad."""

from __future__ import annotations

from .. import ops as F
from ..tensor import Tensor
from . import _fused
from .optimizer import Optimizer, _check_range, _hypers, _new_step, _step_scalar


class Adagrad(Optimizer):
    """PyTorch's ``torch.optim.Adagrad``::

        t += 1;  g = grad (negated if maximize) + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum += g^2;  p -= clr * g / (sqrt(sum) + eps)

    State (``step``, ``sum``) is created in the constructor, as in PyTorch.
    ``fused=True``: the same update in one pass per parameter (see ``Adam``).
    A sparse ``.grad`` updates ``sum`` and ``p`` at its rows only (weight_decay must be 0).
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_range("learning rate", lr)
        _check_range("lr_decay", lr_decay)
        _check_range("weight_decay", weight_decay)
        _check_range("initial_accumulator_value", initial_accumulator_value)
        _check_range("epsilon", eps)
        _fused.check_options("Adagrad", fused, foreach, differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        if fused:
            _fused.check_params(self)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group) -> dict:
        """The state of ``p``, created (``step`` 0, ``sum`` filled with
        ``initial_accumulator_value``) when empty: at construction, or for a parameter
        added later with ``add_param_group``."""
        state = self.state[p]
        if not state:
            state["step"] = _new_step(p)
            state["sum"] = F.full_like(p, group["initial_accumulator_value"])
        return state

    def _check_sparse_grad(self, group):
        if group.get("fused"):
            raise NotImplementedError("Adagrad: `fused` does not support sparse gradients")
        if group["weight_decay"] != 0:
            raise NotImplementedError("Adagrad: weight_decay option is not compatible with "
                                      "sparse gradients")

    def _update_group(self, group, params):
        if group.get("fused"):
            params = _fused.adagrad(self, group, params)
        lr, lr_decay, eps, weight_decay = _hypers(group, "lr", "lr_decay", "eps",
                                                  "weight_decay")
        for p in params:
            g = self._grad(p, group)
            state = self._init_state(p, group)
            state["step"].add_(1)
            if g.__class__ is not Tensor:  # a sparse gradient: only its rows change
                _sparse_step(p, g, state, lr / (1 + (_step_scalar(state["step"], p) - 1)
                                                * lr_decay), eps)
                continue
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            step = _step_scalar(state["step"], p)
            clr = lr / (1 + (step - 1) * lr_decay)
            state["sum"].addcmul_(g, g, value=1)
            std = state["sum"].sqrt() + eps
            p.addcdiv_(g, std, value=-clr)


def _sparse_step(p, g, state, clr, eps) -> None:
    """PyTorch's sparse Adagrad: ``sum += g^2`` and ``p -= clr * g / (sqrt(sum) + eps)``
    at the rows of the (coalesced: the update is not linear) gradient only."""
    from ..sparse.grad import add_sparse_, masked_values, no_trace
    no_trace("Adagrad step with a sparse gradient")
    g = g.coalesce()
    values = g._values()
    add_sparse_(state["sum"], g._with_values(values * values))
    std = masked_values(state["sum"], g).sqrt() + eps
    add_sparse_(p, g._with_values(values / std * -clr))
