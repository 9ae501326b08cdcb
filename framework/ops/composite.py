"""Composite ops kept as one node (softmax, log_softmax): a decomposition into
primitives, a VJP rule of their own, and optionally a backend kernel or native ONNX op."""

from __future__ import annotations

from .. import dtypes
from .pointwise import cast
from .reduce import amax, sum as _sum
from .registry import COMPOSITE, apply, register
from .shapes import normalize_dim


def _same_meta(x, *, dim):
    return x.shape, x.dtype


def _softmax_decomp(x, *, dim):
    e = (x - amax(x, dim, keepdim=True)).exp()
    return e / _sum(e, dim, keepdim=True)


def _log_softmax_decomp(x, *, dim):
    shifted = x - amax(x, dim, keepdim=True)
    return shifted - _sum(shifted.exp(), dim, keepdim=True).log()


def _softmax_vjp(g, args, out, dim):
    return ((g - _sum(g * out, dim, keepdim=True)) * out,)


def _log_softmax_vjp(g, args, out, dim):
    return (g - out.exp() * _sum(g, dim, keepdim=True),)


SOFTMAX = register("softmax", COMPOSITE, _same_meta, vjp=_softmax_vjp, decomp=_softmax_decomp,
                   saves_output=True)
LOG_SOFTMAX = register("log_softmax", COMPOSITE, _same_meta, vjp=_log_softmax_vjp,
                       decomp=_log_softmax_decomp, saves_output=True)


def _prep(input, dim, dtype, name):
    x = input
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    elif not x.dtype.is_floating_point:
        x = cast(x, dtypes.get_default_dtype())
    if dim is None:
        dim = 0 if x.ndim in (0, 1, 3) else 1  # PyTorch's legacy implicit-dim choice
    return x, normalize_dim(dim, x.ndim, name)


def softmax(input, dim=None, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``."""
    x, d = _prep(input, dim, dtype, "softmax")
    return apply(SOFTMAX, x, dim=d)


def log_softmax(input, dim=None, dtype=None):
    """``log(softmax(x))`` along ``dim``, computed stably."""
    x, d = _prep(input, dim, dtype, "log_softmax")
    return apply(LOG_SOFTMAX, x, dim=d)
