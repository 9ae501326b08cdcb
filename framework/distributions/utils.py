"""Helpers shared by the distributions: parameter broadcasting, probs <-> logits,
cached (lazy) parameters and shape utilities (``torch.distributions.utils``)."""

from __future__ import annotations

import math
from numbers import Number

from .. import dtypes
from .._state import tls
from ..autograd import enable_grad
from ..creation import tensor as _tensor
from ..dtype_info import finfo
from ..errors import FwTypeError
from ..ops.movement import broadcast_tensors
from ..ops.shapes import broadcast_many
from ..tensor import Size, Tensor

__all__ = ["broadcast_all", "logits_to_probs", "probs_to_logits", "clamp_probs",
           "lazy_property", "softplus", "broadcast_shape"]

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def broadcast_all(*values) -> tuple:
    """Broadcast tensors and numbers to one shape: numbers become tensors with the first
    tensor's dtype and device (the default dtype when every value is a number); tensors
    keep their own dtypes."""
    for v in values:
        if not isinstance(v, (Tensor, Number)):
            raise FwTypeError("Input arguments must all be instances of numbers.Number or "
                              f"framework.Tensor, got {type(v).__name__}")
    ref = next((v for v in values if isinstance(v, Tensor)), None)
    if ref is None:
        dt, dev = dtypes.get_default_dtype(), None
    else:
        dt = ref.dtype if ref.dtype.is_floating_point else dtypes.get_default_dtype()
        dev = ref.device
    values = [v if isinstance(v, Tensor) else _tensor(float(v), dtype=dt, device=dev)
              for v in values]
    return tuple(broadcast_tensors(*values))


def broadcast_shape(*shapes) -> Size:
    """The broadcast of several shapes (a ShapeError if they clash)."""
    return Size(broadcast_many([tuple(s) for s in shapes], "distributions"))


def softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))`` without overflow for large ``x``."""
    return x.clamp(min=0) + (-x.abs()).exp().log1p()


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities clamped to ``[eps, 1 - eps]`` so their logs stay finite."""
    eps = finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """``sigmoid(logits)`` (binary) or ``softmax(logits, -1)``."""
    if is_binary:
        return logits.sigmoid()
    return logits.softmax(-1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """``log(p) - log1p(-p)`` (binary) or ``log(p)``, on clamped probabilities."""
    ps = clamp_probs(probs)
    if is_binary:
        return ps.log() - (-ps).log1p()
    return ps.log()


class lazy_property:  # noqa: N801  (PyTorch's name)
    """A parameter computed from another on first access (``probs`` from ``logits``) and
    cached on the instance; computed with grad enabled so it stays differentiable."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        with enable_grad():
            value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value


def expand_probs_or_logits(dist, new, shape) -> None:
    """The parameter part of ``expand`` for ``probs``/``logits`` distributions: ``new``
    gets whichever of ``dist``'s ``probs`` and ``logits`` exist (given or already computed)
    expanded to ``shape``, and ``_param`` pointing at one of them."""
    for name in ("probs", "logits"):
        if name in dist.__dict__:
            setattr(new, name, dist.__dict__[name].expand(shape))
            new._param = new.__dict__[name]


def sum_rightmost(value, dim: int):
    """Sum the rightmost ``dim`` dims of ``value`` (numbers pass through)."""
    if dim == 0 or not isinstance(value, Tensor):
        return value
    return value.reshape(value.shape[:value.ndim - dim] + (-1,)).sum(-1)


def is_tracing() -> bool:
    """True while ``fw.compile`` captures a function: value checks, which need the data
    on the host, are skipped then (the shape checks still run)."""
    return tls.tracer is not None


def as_size(shape) -> Size:
    """``shape`` (an int, a tuple, a Size) as a Size."""
    if isinstance(shape, int):
        return Size((shape,))
    return Size(tuple(shape))
