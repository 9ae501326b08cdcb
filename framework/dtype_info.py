"""``fw.finfo`` / ``fw.iinfo`` (numeric limits of a dtype, with ``torch.finfo``'s and
``torch.iinfo``'s attributes as Python numbers) and ``fw.typename``."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from . import dtypes
from .errors import DTypeError


def _dtype(dtype, what):
    if dtype is None:
        return dtypes.get_default_dtype()
    try:
        return dtypes.to_dtype(dtype)
    except Exception:
        raise DTypeError(f"{what}(): expected a dtype, got {dtype!r}") from None


class _DtypeInfo:
    """What finfo and iinfo share: two infos are equal (and hash alike) when they are of
    the same kind and describe the same dtype."""

    __slots__ = ()

    def __eq__(self, other):
        return isinstance(other, type(self)) and other.dtype == self.dtype

    def __hash__(self):
        return hash((type(self).__name__, self.dtype))


class finfo(_DtypeInfo):  # noqa: N801  (torch.finfo)
    """Limits of a floating dtype (the default dtype when none is given): ``bits``,
    ``eps`` (1.0's spacing), ``max``, ``min``, ``tiny`` = ``smallest_normal``,
    ``resolution`` (``10 ** -decimal digits``) and ``dtype`` (its name)."""

    __slots__ = ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution",
                 "dtype")

    def __init__(self, type=None):  # noqa: A002  (torch's argument name)
        dt = _dtype(type, "finfo")
        dt = dt.to_real()  # complex dtypes: their float parts' limits, as PyTorch
        if dt.category != dtypes.FLOAT:
            raise DTypeError(f"finfo(): requires a floating point dtype, got {dt.name} (use "
                             "iinfo for integers)")
        info = ml_dtypes.finfo(dt.np)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)
        self.dtype = dt.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo(_DtypeInfo):  # noqa: N801  (torch.iinfo)
    """Limits of an integer dtype: ``bits``, ``max``, ``min`` and ``dtype``."""

    __slots__ = ("bits", "max", "min", "dtype")

    def __init__(self, type):  # noqa: A002  (torch's argument name)
        dt = _dtype(type, "iinfo")
        if dt.category >= dtypes.FLOAT:
            raise DTypeError(f"iinfo(): requires an integer dtype, got {dt.name} (use finfo "
                             "for floating point)")
        if dt is dtypes.bool_:
            raise DTypeError("iinfo(): bool is not supported (as in PyTorch)")
        info = np.iinfo(dt.np)
        self.bits, self.min, self.max = int(info.bits), int(info.min), int(info.max)
        self.dtype = dt.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


_LEGACY_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor",
                 "float16": "HalfTensor", "bfloat16": "BFloat16Tensor",
                 "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
                 "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor",
                 "complex64": "ComplexFloatTensor", "complex128": "ComplexDoubleTensor"}


def typename(obj) -> str:
    """The type of ``obj`` as a string: ``'framework.FloatTensor'`` (``framework.cuda.``
    on the GPU) for tensors, as ``torch.typename``; ``module.QualName`` otherwise."""
    from .tensor import Tensor
    if isinstance(obj, Tensor):
        where = "cuda." if obj.device.type == "cuda" else ""
        return f"framework.{where}{_LEGACY_NAMES[obj.dtype.name]}"
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module = obj.__class__.__module__ or ""
        qualname = obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"
