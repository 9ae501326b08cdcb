"""Tensor properties and methods that are not ops, attached to :class:`Tensor` here as
:mod:`framework.tensor_methods` attaches the op methods.

- metadata: ``ndimension()``, ``nbytes``, ``itemsize``, ``is_signed()``, ``is_complex()``,
  ``is_same_size()``, ``data_ptr()``,
  ``type()``, ``mH`` (the conjugate transpose);
- memory: ``pin_memory()`` is a no-op returning the tensor (there is no page-locked host
  memory here; ``is_pinned()`` is False), ``resize_()`` / ``resize_as_()`` (CPU tensors
  that do not require grad), ``apply_()`` (a Python callable per element, CPU only);
- random in-place fills ``random_``, ``geometric_``, ``log_normal_``, ``cauchy_`` (drawn
  like ``uniform_``/``normal_``/``exponential_``: from the same seeded generators);
  ``fill_diagonal_``; the ``bernoulli``, ``multinomial`` and ``hardshrink`` methods;
- the shift operators ``<<``, ``>>`` and their in-place and reflected forms.
"""

from __future__ import annotations

import math

import numpy as np

from . import dtypes, ops as F
from ._state import tls
from .creation import bernoulli, multinomial, tensor
from .device import cpu, meta
from .dtype_info import _LEGACY_NAMES, typename
from .errors import (ArgumentError, AutogradError, DeviceError, DTypeError, FwTypeError,
                     ShapeError)
from .ops.creation_ops import normal_, uniform
from .ops.inplace import commit, mark
from .ops.shapes import as_shape
from .random import resolve as resolve_generator
from .tensor import Storage, Tensor

__all__ = ["is_signed", "is_complex", "is_same_size"]

_BY_LEGACY = {v: dtypes.from_name(k) for k, v in _LEGACY_NAMES.items()}
# Largest integer each float type holds exactly: random_()'s default bound, as PyTorch.
_FLOAT_DIGITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}


# -- metadata -------------------------------------------------------------------------------
def is_signed(input) -> bool:
    """True when the dtype can hold negative values (floats and signed integers)."""
    return input.dtype.is_signed


def is_complex(input) -> bool:
    """True for complex64 and complex128 tensors."""
    return input.dtype.is_complex


def is_same_size(input, other) -> bool:
    """True when both tensors have the same shape."""
    return tuple(input.shape) == tuple(other.shape)


def _ndimension(self) -> int:
    """Number of dimensions (an alias of ``dim()``)."""
    return self.ndim


def _nbytes(self) -> int:
    """Bytes taken by the elements of this view: ``numel() * itemsize``."""
    return self.numel() * self.dtype.itemsize


def _itemsize(self) -> int:
    """Bytes per element (``element_size()``)."""
    return self.dtype.itemsize


def _data_ptr(self) -> int:
    """Address of the first element: the NumPy buffer's on the CPU, the device pointer on
    "cuda", 0 for meta tensors (a graph break under ``fw.compile``)."""
    if tls.tracer is not None:
        tls.tracer.graph_break("Tensor.data_ptr()")
    if self.device is meta or self._data is None:
        return 0
    if self.device is cpu:
        return int(self._data.ctypes.data)
    return int(self._data.data_ptr())


def _type(self, dtype=None, non_blocking=False, **kwargs):
    """Without ``dtype``: the type string, e.g. ``'framework.FloatTensor'`` or
    ``'framework.cuda.LongTensor'`` (PyTorch's ``'torch.FloatTensor'`` names). With a dtype
    or such a string (``torch.`` accepted for ``framework.``): the tensor cast (and moved,
    for a string naming the other device); the tensor itself when nothing changes."""
    if dtype is None:
        return typename(self)
    if not isinstance(dtype, str):
        return self.to(dtypes.to_dtype(dtype))
    name = dtype
    for prefix in ("framework.", "torch."):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    on_cuda = name.startswith("cuda.")
    name = name[5:] if on_cuda else name
    if dtype == name or name not in _BY_LEGACY:
        raise ArgumentError(f"type(): invalid type: {dtype!r} (expected a dtype or a name such "
                            "as 'framework.FloatTensor')")
    out = self
    if on_cuda != (self.device.type == "cuda"):
        out = out.to("cuda" if on_cuda else "cpu")
    return out.to(_BY_LEGACY[name])


def _mH(self):
    """The conjugate transpose of the last two dims (``mT`` for real tensors)."""
    return F.transpose(self.conj(), -2, -1)


Tensor.ndimension = _ndimension
Tensor.nbytes = property(_nbytes)
Tensor.itemsize = property(_itemsize)
Tensor.is_signed = is_signed
Tensor.is_complex = is_complex
Tensor.is_same_size = is_same_size
Tensor.data_ptr = _data_ptr
Tensor.type = _type
Tensor.mH = property(_mH)
Tensor.adjoint = _mH


# -- memory -----------------------------------------------------------------------------
def _pin_memory(self, device=None):
    """A no-op on the CPU (returns the tensor itself): there is no page-locked memory here,
    host-to-device copies work the same without it. CUDA tensors cannot be pinned."""
    if self.device.type == "cuda":
        raise DeviceError(f"pin_memory(): cannot pin '{typename(self)}': only dense CPU "
                          "tensors can be pinned")
    return self


def _is_pinned(self, device=None) -> bool:
    """Always False (``pin_memory()`` is a no-op)."""
    return False


def _resize_(self, *sizes, memory_format=None):
    """Give the tensor the shape ``sizes`` in place, over the same row-major buffer: shrinking
    keeps the leading elements (a view of the old buffer); growing copies the current
    elements into a new buffer whose other elements are zero (PyTorch leaves them
    uninitialised, and keeps elements an earlier shrink dropped), and the tensor stops
    sharing memory with its views or base. CPU tensors that do not require grad,
    contiguous ones only."""
    shape = as_shape(sizes, "resize_")
    if any(s < 0 for s in shape):
        raise ArgumentError(f"resize_(): Trying to create tensor with negative dimension: "
                            f"{list(shape)}")
    if self.requires_grad:
        raise AutogradError("resize_(): cannot resize variables that require grad")
    if self.device is not cpu:
        raise DeviceError(f"resize_(): only CPU tensors can be resized here, got a tensor on "
                          f"{self.device}")
    if tls.tracer is not None:
        tls.tracer.graph_break("Tensor.resize_()")
    if shape == tuple(self.shape):
        return self
    data = self._data
    if not data.flags.c_contiguous:
        raise ArgumentError("resize_(): only contiguous tensors can be resized; call "
                            ".contiguous() first")
    flat = data.reshape(-1)
    n = math.prod(shape)
    if n <= flat.size:
        self._data = flat[:n].reshape(shape)
    else:
        new = np.zeros(n, data.dtype)
        new[:flat.size] = flat
        self._data = new.reshape(shape)
        self._base, self._storage, self._view_ops = None, Storage(), ()
    self.shape = shape
    return self


def _resize_as_(self, other, memory_format=None):
    """``resize_(other.shape)``."""
    return _resize_(self, tuple(other.shape))


def _apply_(self, callable):
    """Replace each element ``v`` by ``callable(v)`` (a Python number) in place; CPU only,
    slow (a Python call per element), and a graph break under ``fw.compile``."""
    if self.device is not cpu:
        raise DeviceError("apply_(): is only implemented on CPU tensors")
    arr = self._host_array("Tensor.apply_()")
    vals = [callable(v) for v in arr.reshape(-1).tolist()]
    new = np.array(vals, dtype=self.dtype.np).reshape(arr.shape)
    return commit(self, tensor(new, dtype=self.dtype), "apply_")


Tensor.pin_memory = _pin_memory
Tensor.is_pinned = _is_pinned
Tensor.resize_ = _resize_
Tensor.resize_as_ = _resize_as_
Tensor.apply_ = _apply_


# -- random fills -----------------------------------------------------------------------
def _random_bounds(self, args, kwargs):
    if len(args) > 2 or set(kwargs) - {"from", "to"}:
        raise FwTypeError(f"random_(): expected (from=0, to=None), got {len(args)} positional "
                          f"arguments and {sorted(kwargs)}")
    if len(args) == 2:
        lo, hi = args
    elif len(args) == 1:  # random_(to), as PyTorch's overload
        lo, hi = (args[0], kwargs["to"]) if "to" in kwargs else (kwargs.get("from", 0), args[0])
    else:
        lo, hi = kwargs.get("from", 0), kwargs.get("to")
    dt = self.dtype
    if dt.is_floating_point:
        top = 2 ** _FLOAT_DIGITS[dt.name]
        dmin, dmax = -top, top
    elif dt is dtypes.bool_:
        dmin, dmax = 0, 1
    else:
        info = np.iinfo(dt.np)
        dmin, dmax = int(info.min), int(info.max)
    hi_inc = dmax if hi is None else int(hi) - 1
    lo = int(lo)
    if lo > hi_inc:
        raise ArgumentError(f"random_(): expects 'from' to be less than 'to', but got from={lo} "
                            f">= to={hi_inc + 1}")
    if lo < dmin or hi_inc > dmax:
        raise ArgumentError(f"random_(): [from, to) = [{lo}, {hi_inc + 1}) is out of bounds for "
                            f"dtype {dt.name} (values in [{dmin}, {dmax}])")
    return lo, hi_inc


def _random_(self, *args, generator=None, **kwargs):
    """Fill with integers drawn uniformly from ``[from, to - 1]`` in place: ``random_(to)``,
    ``random_(from, to)``, or ``random_()`` for ``[0, max]`` (``2**mantissa digits`` for
    floats, the dtype's maximum for integers). Drawn on the host from the generator's
    stream and copied to the tensor's device (a graph break under ``fw.compile``)."""
    lo, hi_inc = _random_bounds(self, args, kwargs)
    if tls.tracer is not None:
        tls.tracer.graph_break("Tensor.random_()")
    rng = resolve_generator(generator).numpy
    arr = rng.integers(lo, hi_inc, size=tuple(self.shape), dtype=np.int64, endpoint=True)
    return commit(self, tensor(arr, dtype=self.dtype, device=self.device), "random_")


def _sample_dtype(self):
    return self.dtype if self.dtype in (dtypes.float32, dtypes.float64) else dtypes.float32


def _float_only(self, op):
    if not self.dtype.is_floating_point:
        raise DTypeError(f"{op}: expected a floating point tensor, got {self.dtype.name}")


def _geometric_(self, p, *, generator=None):
    """Fill with samples of the geometric distribution (trials until the first success of
    probability ``p``: values 1, 2, ...) in place: ``floor(log(1 - u) / log(1 - p)) + 1``."""
    if not 0 < p < 1:
        raise ArgumentError(f"geometric_(): expects p to be in (0, 1), but got p={p}")
    u = uniform(self.shape, dtype=_sample_dtype(self), device=self.device, generator=generator)
    k = ((1 - u).log() / math.log1p(-p)).floor() + 1
    return commit(self, k.to(self.dtype), "geometric_")


def _log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    """Fill with ``exp(N(mean, std^2))`` samples in place (float tensors)."""
    _float_only(self, "log_normal_()")
    if not std > 0:
        raise ArgumentError(f"log_normal_(): expects std > 0.0, but found std={std}")
    z = normal_(self.shape, mean, std, dtype=self.dtype, device=self.device,
                generator=generator)
    return commit(self, z.exp(), "log_normal_")


def _cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    """Fill with Cauchy samples ``median + sigma * tan(pi (u - 1/2))`` in place (float
    tensors)."""
    _float_only(self, "cauchy_()")
    if not sigma > 0:
        raise ArgumentError(f"cauchy_(): expects sigma > 0.0, but found sigma={sigma}")
    u = uniform(self.shape, dtype=_sample_dtype(self), device=self.device, generator=generator)
    return commit(self, ((u - 0.5) * math.pi).tan() * sigma + median, "cauchy_")


def _fill_diagonal_(self, fill_value, wrap=False):
    """Set the main diagonal (all indices equal; every dim must have the same size above
    2-D) to ``fill_value`` in place. ``wrap=True`` continues a tall matrix's diagonal
    every ``ncols + 1`` elements, as NumPy's ``fill_diagonal``."""
    if self.ndim < 2:
        raise ArgumentError(f"fill_diagonal_(): dimensions must larger than 1, got "
                            f"{self.ndim}")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise ShapeError(f"fill_diagonal_(): all dimensions of input must be of equal length, "
                         f"got {list(self.shape)}")
    mask = np.zeros(self.shape, np.bool_)
    np.fill_diagonal(mask, True, wrap=bool(wrap))
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if self.dtype is dtypes.bool_:
        fill_value = bool(fill_value)
    elif not self.dtype.is_floating_point:
        fill_value = int(fill_value)
    since = mark()
    m = tensor(mask, device=self.device)
    return commit(self, F.masked_fill(self, m, fill_value), "fill_diagonal_", since)


Tensor.random_ = _random_
Tensor.geometric_ = _geometric_
Tensor.log_normal_ = _log_normal_
Tensor.cauchy_ = _cauchy_
Tensor.fill_diagonal_ = _fill_diagonal_
Tensor.bernoulli = bernoulli
Tensor.multinomial = multinomial


def _hardshrink(self, lambd=0.5):
    """``nn.functional.hardshrink(self, lambd)``: ``x`` where ``|x| > lambd``, else 0."""
    from .nn.functional import hardshrink
    return hardshrink(self, lambd)


Tensor.hardshrink = _hardshrink


# -- shift operators --------------------------------------------------------------------
def _rev(fn):
    return lambda self, other: fn(other, self)


def _make_ishift(fn, name):
    def method(self, other):
        since = mark()
        return commit(self, fn(self, other), name, since)
    method.__name__ = name
    return method


Tensor.__lshift__ = F.bitwise_left_shift
Tensor.__rlshift__ = _rev(F.bitwise_left_shift)
Tensor.__rshift__ = F.bitwise_right_shift
Tensor.__rrshift__ = _rev(F.bitwise_right_shift)
Tensor.__ilshift__ = _make_ishift(F.bitwise_left_shift, "__ilshift__")
Tensor.__irshift__ = _make_ishift(F.bitwise_right_shift, "__irshift__")
