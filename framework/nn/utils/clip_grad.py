"""Gradient clipping: ``clip_grad_norm_`` (returns the total norm) and
``clip_grad_value_``. The scaling is done with in-place tensor ops (no host round trip),
so a captured training step can include it."""

from __future__ import annotations

import math

from ... import ops
from ...autograd import no_grad
from ...errors import ArgumentError
from ...sparse.layout import strided
from ...tensor import Tensor


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _dense_part(g):
    """A gradient, or for a sparse one (framework/sparse) its coalesced values, whose norm
    is the sparse tensor's norm (as PyTorch's clip_grad_norm_ on sparse gradients)."""
    if g.__class__ is Tensor or g.layout is strided:
        return g
    from ...sparse.grad import grad_norm_values
    return grad_norm_values(g)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together (as if concatenated)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return ops.tensor(0.0)
    with no_grad():
        norms = [ops.norm(_dense_part(t.detach()), norm_type) for t in tensors]
        dtype = norms[0].dtype
        stacked = ops.stack([n.to(dtype) for n in norms])
        total = stacked.amax() if norm_type == math.inf else ops.norm(stacked, norm_type)
    if error_if_nonfinite and not bool(total.isfinite()):
        raise ArgumentError(f"The total norm of order {norm_type} for gradients from "
                            "`parameters` is non-finite, so it cannot be clipped. To disable "
                            "this error and scale the gradients by the non-finite norm "
                            "anyway, set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor,
                          foreach=None) -> None:
    """Scale gradients by ``min(1, max_norm / (total_norm + 1e-6))`` in place."""
    grads = _grads(parameters)
    if not grads:
        return
    with no_grad():
        coef = ops.clamp(max_norm / (total_norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Rescale the gradients so their combined ``norm_type``-norm is at most ``max_norm``;
    returns the total norm before clipping."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient into ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)


clip_grad_norm = clip_grad_norm_
