"""Helpers shared by observers, fake quantization and the workflow (PyTorch's
``torch/ao/quantization/utils.py`` and the ``with_args`` factories of ``observer.py``)."""

from __future__ import annotations

import warnings
from functools import partial

from ... import dtypes
from ...errors import ArgumentError, DTypeError
from .. import qtypes

__all__ = ["QuantizationError", "calculate_qmin_qmax", "validate_qmin_qmax", "check_min_max_valid",
           "is_per_tensor", "is_per_channel", "is_symmetric", "storage_dtype",
           "dtype_range"]

_PER_TENSOR = (qtypes.per_tensor_affine, qtypes.per_tensor_symmetric)
_PER_CHANNEL = (qtypes.per_channel_affine, qtypes.per_channel_symmetric,
                qtypes.per_channel_affine_float_qparams)
_SYMMETRIC = (qtypes.per_tensor_symmetric, qtypes.per_channel_symmetric)
# observer dtype -> (storage dtype, range); PyTorch accepts the plain integer dtypes too
_DTYPES = {qtypes.qint8: dtypes.int8, qtypes.quint8: dtypes.uint8, qtypes.qint32: dtypes.int32,
           dtypes.int8: dtypes.int8, dtypes.uint8: dtypes.uint8, dtypes.int32: dtypes.int32,
           dtypes.int16: dtypes.int16}
_RANGES = {dtypes.int8: (-128, 127), dtypes.uint8: (0, 255), dtypes.int16: (-32768, 32767),
           dtypes.int32: (-(2 ** 31), 2 ** 31 - 1)}


class QuantizationError(ArgumentError, AssertionError):
    """Invalid quantization settings or statistics (an ``AssertionError`` too, as PyTorch
    asserts these)."""


def is_per_tensor(qscheme) -> bool:
    """per_tensor_affine or per_tensor_symmetric."""
    return qscheme in _PER_TENSOR


def is_per_channel(qscheme) -> bool:
    """One of the per-channel schemes."""
    return qscheme in _PER_CHANNEL


def is_symmetric(qscheme) -> bool:
    """per_tensor_symmetric or per_channel_symmetric."""
    return qscheme in _SYMMETRIC


def storage_dtype(dtype):
    """The integer tensor dtype holding values of the observer dtype ``dtype``."""
    try:
        return _DTYPES[dtype]
    except (KeyError, TypeError):
        raise DTypeError(f"quantization dtype must be one of "
                         f"{', '.join(repr(d) for d in _DTYPES)}, got {dtype!r}") from None


def dtype_range(dtype) -> tuple[int, int]:
    """(min, max) of the integers of observer dtype ``dtype``."""
    return _RANGES[storage_dtype(dtype)]


def validate_qmin_qmax(quant_min: int, quant_max: int) -> None:
    """A user-given range must include 0 and have ``quant_min < quant_max``."""
    if not quant_min <= 0 <= quant_max:
        raise QuantizationError(f"User-specified quantization range must include 0, got "
                            f"[{quant_min}, {quant_max}]")
    if not quant_min < quant_max:
        raise QuantizationError(f"qmin must be strictly less than qmax for a user-specified "
                            f"quantization range, got [{quant_min}, {quant_max}]")


def calculate_qmin_qmax(quant_min, quant_max, has_customized_qrange: bool, dtype,
                        reduce_range: bool) -> tuple[int, int]:
    """The actual range: a customized one (halved by ``reduce_range``, as PyTorch does),
    else the 8-bit default of ``dtype`` (``(-64, 63)``/``(0, 127)`` with ``reduce_range``)
    or the full range of a wider dtype."""
    store = storage_dtype(dtype)
    if has_customized_qrange:
        span = quant_max - quant_min + 1
        limit = {dtypes.int8: 256, dtypes.int32: 2 ** 32}.get(store)
        if limit is not None and not 0 < span <= limit:
            raise QuantizationError(f"quantization range should be positive and not exceed the "
                                f"maximum bit range (={limit}), got [{quant_min}, "
                                f"{quant_max}]")
        if reduce_range:
            return quant_min // 2, quant_max // 2
        return quant_min, quant_max
    if store is dtypes.int8:
        return (-64, 63) if reduce_range else (-128, 127)
    if store is dtypes.uint8:
        return (0, 127) if reduce_range else (0, 255)
    return _RANGES[store]


def check_min_max_valid(min_val, max_val) -> bool:
    """False (with PyTorch's warning) before any observation; an AssertionError when a
    minimum exceeds its maximum."""
    if min_val.numel() == 0 or max_val.numel() == 0:
        warnings.warn("must run observer before calling calculate_qparams. Returning "
                      "default values.", stacklevel=3)
        return False
    if min_val.ndim == 0 or max_val.ndim == 0:
        lo, hi = float(min_val), float(max_val)
        if lo == float("inf") and hi == float("-inf"):
            warnings.warn("must run observer before calling calculate_qparams. Returning "
                          "default values.", stacklevel=3)
            return False
        if not lo <= hi:
            raise QuantizationError(f"min {lo} should be less than max {hi}")
    elif not bool((min_val <= max_val).all()):
        raise QuantizationError(f"min {min_val} should be less than max {max_val}")
    return True


class _PartialWrapper:
    """A constructor with bound keyword arguments (``Observer.with_args(...)``)."""

    def __init__(self, p):
        self.p = p
        self.callable_args = {}

    def __call__(self, *args, **keywords):
        for name, fn in self.callable_args.items():
            if name not in keywords:
                keywords = {**keywords, name: fn()}
        return self.p(*args, **keywords)

    def __repr__(self) -> str:
        return repr(self.p) + repr(self.callable_args)

    def with_args(self, **kwargs):
        """More bound arguments (later ones win)."""
        return with_args(self, **kwargs)

    def with_callable_args(self, **kwargs):
        """Arguments computed by calling ``kwargs[name]()`` at construction time."""
        out = _PartialWrapper(self.p)
        out.callable_args = {**self.callable_args, **kwargs}
        return out


def with_args(cls_or_self, **kwargs):
    """A factory: calling it constructs ``cls_or_self(**kwargs)`` afresh each time."""
    return _PartialWrapper(partial(cls_or_self, **kwargs))


def with_callable_args(cls_or_self, **kwargs):
    """A factory whose ``kwargs`` are callables evaluated at each construction."""
    return _PartialWrapper(partial(cls_or_self)).with_callable_args(**kwargs)
