"""PyTorch's legacy tensor constructors: ``fw.Tensor(2, 3)``, ``fw.FloatTensor(array)``...

``torch.Tensor(...)`` and the typed ``torch.FloatTensor``/``torch.LongTensor``/... classes
still appear in much published code (``nn.Parameter(torch.Tensor(in_dim, out_dim))`` then an
``init`` call; ``torch.LongTensor(labels)``). Their rules differ from ``torch.tensor``:

- integers (``Tensor(2, 3)``) or a ``Size`` give an uninitialised tensor of that shape;
- a sequence or array gives a tensor of the constructor's dtype (``Tensor`` uses the default
  dtype, so ``Tensor([1, 2])`` is float32, not int64);
- a tensor of the same dtype gives an alias that shares data and autograd history;
- any other scalar is an error (``Tensor(2.5)``: data must be a sequence).
"""

from __future__ import annotations

import numpy as np

from . import dtypes
from .errors import FwTypeError


def legacy_new(args: tuple, dtype, device, who: str):
    """A tensor built by the legacy-constructor rules above from positional ``args``."""
    from .creation import empty, tensor
    from .tensor import Size, Tensor
    if not args:
        return empty(0, dtype=dtype, device=device)
    if all(_is_int(a) for a in args):
        return empty(*[int(a) for a in args], dtype=dtype, device=device)
    if len(args) != 1:
        raise FwTypeError(f"{who}(): expected sizes (ints) or one sequence/array/tensor, got "
                          f"{', '.join(type(a).__name__ for a in args)}")
    data = args[0]
    if isinstance(data, Size):
        return empty(*data, dtype=dtype, device=device)
    if isinstance(data, Tensor):
        if data.dtype != dtype:
            raise FwTypeError(f"{who}(): expected a {dtype.name} tensor, got {data.dtype.name} "
                              f"(use .to({dtype.name}) or fw.tensor(..., dtype=...))")
        if device is not None:
            raise FwTypeError(f"{who}(): device is not supported when data is a tensor")
        return data.view(data.shape)
    if isinstance(data, (str, bytes)) or np.ndim(data) == 0 and not hasattr(data, "__len__"):
        raise FwTypeError(f"{who}(): data must be a sequence, an array or a tensor (got "
                          f"{type(data).__name__})")
    arr = np.asarray(data)
    if arr.dtype == object:
        return tensor(data, dtype=dtype, device=device)
    return tensor(arr.astype(dtype.np, copy=False), dtype=dtype, device=device)


def _is_int(a) -> bool:
    return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))


class _LegacyTensorType(type):
    """``FloatTensor(...)`` builds a tensor; ``isinstance(t, FloatTensor)`` checks its dtype
    (and that it is on the CPU, as ``torch.FloatTensor`` names a CPU type)."""

    def __call__(cls, *args, device=None):
        return legacy_new(args, cls.dtype, device, cls.__name__)

    def __instancecheck__(cls, obj) -> bool:
        from .tensor import Tensor
        return (isinstance(obj, Tensor) and obj.dtype == cls.dtype
                and obj.device.type == "cpu")


def _legacy(name: str, dt):
    return _LegacyTensorType(name, (), {"dtype": dt, "__module__": "framework",
                                        "__doc__": f"Legacy constructor for {dt.name} "
                                                   "tensors (as torch." + name + ")."})


FloatTensor = _legacy("FloatTensor", dtypes.float32)
DoubleTensor = _legacy("DoubleTensor", dtypes.float64)
HalfTensor = _legacy("HalfTensor", dtypes.float16)
BFloat16Tensor = _legacy("BFloat16Tensor", dtypes.bfloat16)
LongTensor = _legacy("LongTensor", dtypes.int64)
IntTensor = _legacy("IntTensor", dtypes.int32)
ShortTensor = _legacy("ShortTensor", dtypes.int16)
CharTensor = _legacy("CharTensor", dtypes.int8)
ByteTensor = _legacy("ByteTensor", dtypes.uint8)
BoolTensor = _legacy("BoolTensor", dtypes.bool_)

_BY_NAME = {c.__name__: c for c in (FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor,
                                    LongTensor, IntTensor, ShortTensor, CharTensor, ByteTensor,
                                    BoolTensor)}


def set_default_tensor_type(t) -> None:
    """PyTorch's deprecated ``torch.set_default_tensor_type``: ``t`` is a floating legacy type
    (``fw.HalfTensor``...) or its name (``"torch.FloatTensor"``, ``"torch.cuda.HalfTensor"``).
    Sets the default dtype, and the default device to the type's (cpu, or cuda for a
    ``cuda.`` name), with PyTorch's deprecation warning."""
    import warnings

    from .device import set_default_device
    from .dtypes import set_default_dtype
    warnings.warn("set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
                  "set_default_dtype() and set_default_device() as alternatives.",
                  UserWarning, stacklevel=2)
    name, dev = getattr(t, "__name__", None), "cpu"
    if isinstance(t, str):
        parts = t.split(".")
        if parts[0] in ("torch", "framework"):
            parts = parts[1:]
        if len(parts) == 2 and parts[0] == "cuda":
            parts, dev = parts[1:], "cuda"
        name = parts[0] if len(parts) == 1 else None
    cls = _BY_NAME.get(name) if isinstance(t, str) or t is _BY_NAME.get(name) else None
    if cls is None:
        raise FwTypeError(f"set_default_tensor_type(): invalid type {t!r}: expected a legacy "
                          f"tensor type such as fw.FloatTensor or its name "
                          f"('torch.cuda.HalfTensor')")
    if not cls.dtype.is_floating_point:
        raise FwTypeError(f"set_default_tensor_type(): only floating-point types are supported "
                          f"as the default type, got {cls.__name__}")
    if dev == "cuda":
        from . import cuda
        if not cuda.is_available():
            raise FwTypeError(f"set_default_tensor_type(): type {t} not available: no CUDA "
                              "device (and no simulated one)")
    set_default_dtype(cls.dtype)
    set_default_device(dev)


__all__ = ["legacy_new", "set_default_tensor_type", "FloatTensor", "DoubleTensor", "HalfTensor",
           "BFloat16Tensor", "LongTensor", "IntTensor", "ShortTensor", "CharTensor", "ByteTensor",
           "BoolTensor"]
