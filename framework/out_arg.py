"""PyTorch's ``out=`` keyword on the ``fw.*`` functions (``torch.add(x, y, out=result)``).

The op functions in :mod:`framework.ops` stay functional; the public namespace wraps the
ones listed in :data:`OUT_FUNCTIONS` so that ``out=`` computes the result as usual and then
writes it into ``out`` (in place, under ``no_grad``), with PyTorch's rules:

- gradient mode on and an input (or ``out``) requiring grad: an error, as autograd cannot
  follow a write into a caller's buffer;
- the result's dtype must be castable to ``out``'s (no float into an integer ``out``);
- an ``out`` of another shape is resized (with PyTorch's warning unless it was empty);
- ops returning several tensors (``max(x, dim)``, ``sort``) take a tuple of outs.
"""

from __future__ import annotations

import functools
import inspect
import warnings

from . import dtypes
from .errors import ArgumentError, AutogradError, DTypeError, FwTypeError, ShapeError
from .tensor import Tensor

OUT_FUNCTIONS = """
add sub subtract mul multiply div divide true_divide floor_divide pow float_power
matmul mm bmm mv dot outer addmm addmv addbmm baddbmm kron cross
neg negative exp exp2 log log2 log10 log1p expm1 sqrt rsqrt square sin cos tan asin acos
atan sinh cosh tanh asinh acosh atanh sigmoid logit abs absolute sign sgn reciprocal floor
ceil round trunc frac erf erfc erfinv lgamma digamma xlogy hypot
maximum minimum fmax fmin atan2 arctan2 remainder fmod clamp clip lerp addcmul addcdiv
eq ne lt le gt ge greater greater_equal less less_equal not_equal isclose
logical_and logical_or logical_xor logical_not bitwise_and bitwise_or bitwise_xor bitwise_not
sum nansum prod mean nanmean cumsum cumprod amax amin argmax argmin logsumexp norm std var
max min sort topk cummax cummin
cat concat concatenate stack hstack vstack dstack where tril triu index_select
masked_select gather take_along_dim flip
""".split()


def _resize(out: Tensor, shape: tuple, op: str) -> None:
    """Give ``out`` a fresh buffer of ``shape`` (PyTorch's ``resize_`` of an out= tensor)."""
    if out._base is not None:
        raise ShapeError(f"{op}(): out= is a view of shape {list(out.shape)} and the result has "
                         f"shape {list(shape)}; a view cannot be resized")
    if out.numel() != 0:
        warnings.warn(f"{op}(): an output with one or more elements was resized since it had "
                      f"shape {list(out.shape)}, which does not match the required output "
                      f"shape {list(shape)}. Resizing non-empty out= tensors is deprecated in "
                      "PyTorch; pass an empty tensor or one of the right shape", UserWarning,
                      stacklevel=4)
    from .creation import empty
    fresh = empty(tuple(shape), dtype=out.dtype, device=out.device)
    out._data = fresh._data
    out.shape = fresh.shape
    out._storage.version += 1


def write_out(op: str, result, out):
    """Write ``result`` (a tensor or a tuple of them) into ``out`` and return ``out``."""
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result):
            raise FwTypeError(f"{op}(): out= must be a tuple of {len(result)} tensors")
        for r, o in zip(result, out):
            write_out(op, r, o)
        if hasattr(result, "_fields"):   # a named tuple
            return type(result)(*out)
        return type(result)(out)   # a tuple, or a (values, indices) tuple subclass
    if not isinstance(out, Tensor):
        raise FwTypeError(f"{op}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if not isinstance(result, Tensor):
        raise ArgumentError(f"{op}(): out= is not supported for a non-tensor result")
    from .autograd.grad_mode import is_grad_enabled, no_grad
    if is_grad_enabled() and (result.requires_grad or out.requires_grad):
        raise AutogradError(f"{op}(): functions with out=... arguments don't support automatic "
                            "differentiation, but one of the arguments requires grad.")
    if not dtypes.can_cast(result.dtype, out.dtype):
        raise DTypeError(f"{op}(): result type {result.dtype.name} can't be cast to the desired "
                         f"output type {out.dtype.name}")
    if out.device != result.device:
        raise ArgumentError(f"{op}(): expected out= on {result.device}, got it on {out.device}")
    if tuple(out.shape) != tuple(result.shape):
        _resize(out, tuple(result.shape), op)
    with no_grad():
        out.copy_(result)
    return out


def with_out(fn, name: str):
    """``fn`` with an ``out=`` keyword (unchanged when ``out`` is not given)."""
    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        result = fn(*args, **kwargs)
        if out is None:
            return result
        return write_out(name, result, out)
    return wrapper


def install(namespace: dict) -> None:
    """Wrap the :data:`OUT_FUNCTIONS` found in ``namespace`` (the ``framework`` module's
    globals) that do not take ``out`` themselves."""
    wrapped: dict = {}  # id(function) -> its wrapper, shared by aliases (arcsinh, asinh)
    for name in OUT_FUNCTIONS:
        fn = namespace.get(name)
        if fn is None or not callable(fn) or id(fn) in wrapped:
            continue
        try:
            if "out" in inspect.signature(fn).parameters:
                continue
        except (TypeError, ValueError):
            continue
        wrapped[id(fn)] = with_out(fn, name)
    for name, value in list(namespace.items()):
        if id(value) in wrapped and callable(value):
            namespace[name] = wrapped[id(value)]
