"""Tensor methods and operator overloads, attached from the functional ops.

Methods are generated from tables (name -> op function), so adding an op is one place in
``framework/ops`` plus, if it should be a method, one word here.
"""

from __future__ import annotations

from . import dtypes, memory_formats, ops as F
from .device import to_device
from .errors import ArgumentError
from .ops.inplace import commit, mark
from .tensor import Tensor

# Methods that call the op function of the same name with the tensor first.
_SAME_NAME = """
lgamma digamma erfinv erfc i0 xlogy
add sub mul div pow matmul clamp clip nan_to_num maximum minimum atan2 remainder fmod
floor_divide bitwise_and bitwise_or bitwise_xor bitwise_not eq ne lt le gt ge logical_and
logical_or logical_xor logical_not neg negative exp exp2 log log2 log1p expm1 sqrt rsqrt sin cos
tan tanh sigmoid relu abs absolute sign reciprocal floor ceil round trunc erf isnan isinf
isfinite square lerp addcmul addcdiv clamp_min clamp_max isclose allclose equal
sum prod mean var std amax amin argmax argmin max min any all cumsum cumprod logsumexp norm
softmax log_softmax reshape view flatten unflatten squeeze unsqueeze permute transpose t
swapaxes swapdims movedim expand expand_as broadcast_to contiguous clone narrow select
chunk unbind flip fliplr flipud roll repeat tile tril triu gather scatter scatter_add
index_select index_add masked_fill masked_select nonzero argwhere take_along_dim index_put
matmul mm bmm mv dot outer sort argsort topk var_mean std_mean
greater greater_equal less less_equal not_equal multiply subtract divide true_divide
""".split()

for _name in _SAME_NAME:
    setattr(Tensor, _name, getattr(F, _name))


def _where(self, condition, other):
    """``where(condition, self, other)``, as ``Tensor.where`` in PyTorch."""
    return F.where(condition, self, other)


Tensor.where = _where


def _split(self, split_size, dim=0):
    """``split(self, split_size, dim)``: the method names its first argument ``split_size``
    (``torch.split`` names it ``split_size_or_sections``), as in PyTorch."""
    return F.split(self, split_size, dim)


Tensor.split = _split


def _polygamma(self, n):
    """``polygamma(n, self)``, as ``Tensor.polygamma`` in PyTorch."""
    return F.polygamma(n, self)


Tensor.polygamma = _polygamma

# In-place variants: compute functionally, then commit into the tensor's storage.
_INPLACE = """
add sub mul div pow clamp clip clamp_min clamp_max neg exp log sqrt rsqrt sin cos tanh sigmoid
relu abs floor ceil round trunc sign reciprocal erf masked_fill index_add scatter scatter_add
index_put lerp addcmul addcdiv fmod remainder tril triu logical_not bitwise_not maximum
minimum nan_to_num square log1p expm1 exp2 log2 floor_divide erfinv erfc lgamma digamma i0 xlogy
""".split()


def _make_inplace(name):
    fn = getattr(F, name)

    def method(self, *args, **kwargs):
        since = mark()
        return commit(self, fn(self, *args, **kwargs), name + "_", since)
    method.__name__ = name + "_"
    method.__doc__ = f"In-place version of :meth:`{name}`."
    return method


for _name in _INPLACE:
    setattr(Tensor, _name + "_", _make_inplace(_name))

# Op modules that list their own methods (METHODS, INPLACE_METHODS).
from .ops import (complex_ops, linalg_extra_ops, math_extra, order_stats,  # noqa: E402
                  scatter_reduce_ops, special_ops, spectral, strided, tensor_extra,
                  torch_extra, torch_gaps, torch_misc, torch_products)

for _mod in (math_extra, order_stats, scatter_reduce_ops, torch_extra, torch_misc,
             torch_products, linalg_extra_ops, tensor_extra, special_ops, torch_gaps,
             complex_ops, spectral, strided):
    for _name in _mod.METHODS.split():
        setattr(Tensor, _name, getattr(_mod, _name))
    for _name in _mod.INPLACE_METHODS.split():
        setattr(Tensor, _name + "_", _make_inplace(_name))


def _zero_(self):
    """Fill with zeros in place."""
    return commit(self, F.zeros_like(self), "zero_")


def _fill_(self, value):
    """Fill with ``value`` in place."""
    if isinstance(value, Tensor):
        return commit(self, value.to(self.dtype).expand(self.shape), "fill_")
    return commit(self, F.full_like(self, value), "fill_")


def _copy_(self, src, non_blocking=False):
    """Copy ``src`` (broadcast, cast, possibly from another device) into this tensor."""
    if not isinstance(src, Tensor):
        src = F.tensor(src)
    if src.device is not self.device:
        src = src.to(self.device)
    return commit(self, src, "copy_")


def _uniform_(self, a=0.0, b=1.0, *, generator=None):
    """Fill with U[a, b) samples in place."""
    return commit(self, F.creation_ops.uniform(self.shape, a, b, dtype=self.dtype,
                                               device=self.device, generator=generator),
                  "uniform_")


def _normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill with N(mean, std^2) samples in place."""
    return commit(self, F.creation_ops.normal_(self.shape, mean, std, dtype=self.dtype,
                                               device=self.device, generator=generator),
                  "normal_")


def _bernoulli_(self, p=0.5, *, generator=None):
    """Fill with 0/1 samples of probability ``p`` in place."""
    u = F.creation_ops.uniform(self.shape, dtype=dtypes.float32, device=self.device,
                               generator=generator)
    return commit(self, (u < p).to(self.dtype), "bernoulli_")


def _exponential_(self, lambd=1.0, *, generator=None):
    """Fill with exponential samples in place."""
    u = F.creation_ops.uniform(self.shape, dtype=self.dtype, device=self.device,
                               generator=generator)
    return commit(self, -(1 - u).log() / lambd, "exponential_")


Tensor.zero_ = _zero_
Tensor.fill_ = _fill_
Tensor.copy_ = _copy_
Tensor.uniform_ = _uniform_
Tensor.normal_ = _normal_
Tensor.bernoulli_ = _bernoulli_
Tensor.exponential_ = _exponential_


# -- conversion -------------------------------------------------------------------------
def _parse_to(args, kwargs):
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    memory_formats.check(kwargs.pop("memory_format", None), "to")
    if kwargs:
        raise ArgumentError(f"to(): unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, dtypes.DType) or a in (float, int, bool):
            dtype = a  # Python types as PyTorch maps them: float64, int64, bool
        elif isinstance(a, (str, int)) or type(a).__name__ == "device":
            if isinstance(a, str) and a in dtypes._BY_NAME and ":" not in a and \
                    a not in ("cpu", "cuda", "meta"):
                dtype = dtypes.from_name(a)
            else:
                device = a
        elif a is not None:
            raise ArgumentError(f"to(): unexpected argument {a!r}")
    return (None if dtype is None else dtypes.to_dtype(dtype),
            None if device is None else to_device(device))


def _to(self, *args, **kwargs):
    """Convert dtype and/or move to a device: ``to(dtype)``, ``to("cuda")``, ``to(other)``;
    ``memory_format=`` lays the result out in that order (``fw.channels_last``)."""
    copy = kwargs.get("copy", False)
    fmt = kwargs.get("memory_format")
    dtype, device = _parse_to(args, dict(kwargs))
    out = self
    if device is not None and device is not self.device:
        from .transfer import transfer
        out = transfer(out, device)
    if dtype is not None and dtype is not out.dtype:
        out = _convert(out, dtype)
    if fmt is not None and fmt is not memory_formats.preserve_format:
        out = memory_formats.restride(out, fmt, "to")
    elif out is not self and out.ndim in (4, 5):  # a copy keeps a channels-last layout
        out = memory_formats.restride(out, memory_formats.suggest(self), "to")
    if copy and out is self:
        out = F.clone(self)
    return out


Tensor.to = _to
from .ops.pointwise import convert as _convert  # noqa: E402  (complex -> real warns)

Tensor.type_as = lambda self, other: _convert(self, other.dtype)
Tensor.float = lambda self: _convert(self, dtypes.float32)
Tensor.double = lambda self: _convert(self, dtypes.float64)
Tensor.half = lambda self: _convert(self, dtypes.float16)
Tensor.bfloat16 = lambda self: _convert(self, dtypes.bfloat16)
Tensor.long = lambda self: _convert(self, dtypes.int64)
Tensor.int = lambda self: _convert(self, dtypes.int32)
Tensor.short = lambda self: _convert(self, dtypes.int16)
Tensor.char = lambda self: _convert(self, dtypes.int8)
Tensor.byte = lambda self: _convert(self, dtypes.uint8)
Tensor.bool = lambda self: _convert(self, dtypes.bool_)
Tensor.cfloat = lambda self: F.cast(self, dtypes.complex64)
Tensor.cdouble = lambda self: F.cast(self, dtypes.complex128)
Tensor.cpu = lambda self: self.to("cpu")
Tensor.cuda = lambda self, device=None: self.to("cuda" if device is None else
                                                 to_device(device if not isinstance(device, int)
                                                           else f"cuda:{device}"))
Tensor.new_zeros = lambda self, *size, dtype=None, device=None, requires_grad=False: F.zeros(
    *size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)
Tensor.new_ones = lambda self, *size, dtype=None, device=None, requires_grad=False: F.ones(
    *size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)
Tensor.new_full = lambda self, size, fill_value, dtype=None, device=None: F.full(
    size, fill_value, dtype=dtype or self.dtype, device=device or self.device)
Tensor.new_empty = Tensor.new_zeros
Tensor.new_tensor = lambda self, data, dtype=None, device=None: F.tensor(
    data, dtype=dtype or self.dtype, device=device or self.device)
Tensor.view_as = lambda self, other: F.view(self, other.shape)
Tensor.reshape_as = lambda self, other: F.reshape(self, other.shape)
Tensor.T = property(lambda self: F.permute(self, tuple(reversed(range(self.ndim)))))
Tensor.mT = property(lambda self: F.transpose(self, -2, -1))
Tensor.H = Tensor.T
Tensor.__getitem__ = F.getitem


def _setitem(self, key, value):
    since = mark()
    commit(self, F.index_put_key(self, key, value), "__setitem__", since)


Tensor.__setitem__ = _setitem


# -- operators --------------------------------------------------------------------------
def _rev(fn):
    return lambda self, other: fn(other, self)


Tensor.__add__ = F.add
Tensor.__radd__ = _rev(F.add)
Tensor.__sub__ = F.sub
Tensor.__rsub__ = _rev(F.sub)
Tensor.__mul__ = F.mul
Tensor.__rmul__ = _rev(F.mul)
Tensor.__truediv__ = F.div
Tensor.__rtruediv__ = _rev(F.div)
Tensor.__floordiv__ = F.floor_divide
Tensor.__rfloordiv__ = _rev(F.floor_divide)
Tensor.__mod__ = F.remainder
Tensor.__rmod__ = _rev(F.remainder)
Tensor.__pow__ = F.pow
Tensor.__rpow__ = _rev(F.pow)
Tensor.__matmul__ = F.matmul
Tensor.__rmatmul__ = _rev(F.matmul)
Tensor.__neg__ = F.neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = F.abs
Tensor.__invert__ = F.bitwise_not
Tensor.__and__ = F.bitwise_and
Tensor.__rand__ = _rev(F.bitwise_and)
Tensor.__or__ = F.bitwise_or
Tensor.__ror__ = _rev(F.bitwise_or)
Tensor.__xor__ = F.bitwise_xor
Tensor.__rxor__ = _rev(F.bitwise_xor)


def _numpy_array_operand(other) -> bool:
    return type(other).__module__ == "numpy" and getattr(other, "ndim", 0) > 0


def _defer_to_numpy(method):
    """``tensor <op> ndarray``: NotImplemented, as PyTorch's operators give, so that Python
    runs NumPy's reflected operator, which computes in NumPy and hands the result back
    through ``__array_wrap__`` as a tensor of NumPy's result dtype (``t * arr`` is float64
    for a float64 ``arr``). ``fw.mul(t, arr)`` still refuses the array, as ``torch.mul``."""
    def op(self, other):
        return NotImplemented if _numpy_array_operand(other) else method(self, other)
    op.__name__ = getattr(method, "__name__", "op")
    return op


for _name in ("__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__",
              "__pow__", "__radd__", "__rsub__", "__rmul__", "__rfloordiv__", "__rmod__",
              "__rpow__"):
    setattr(Tensor, _name, _defer_to_numpy(getattr(Tensor, _name)))
# ``arr / t``: PyTorch's __rdiv__ is ``t.reciprocal() * arr``, which then goes to NumPy
_rtruediv = Tensor.__rtruediv__
Tensor.__rtruediv__ = lambda self, other: F.reciprocal(self) * other \
    if _numpy_array_operand(other) else _rtruediv(self, other)


def _comparison(fn):
    """``==``/``!=`` with a non-operand (None, a string, ...) is ``NotImplemented``, so Python
    falls back to identity, as in PyTorch (``t == None`` is False; ``t in [None]`` works)."""
    def method(self, other):
        if other is None or isinstance(other, (str, bytes, list, tuple, dict, set)):
            return NotImplemented
        return fn(self, other)
    method.__name__ = fn.__name__
    return method


Tensor.__eq__ = _comparison(F.eq)
Tensor.__ne__ = _comparison(F.ne)
Tensor.__lt__ = F.lt
Tensor.__le__ = F.le
Tensor.__gt__ = F.gt
Tensor.__ge__ = F.ge
Tensor.__hash__ = object.__hash__


def _make_iop(name):
    fn = getattr(F, name)

    def method(self, other):
        since = mark()
        return commit(self, fn(self, other), f"__i{name}__", since)
    return method


for _op, _fn in (("add", "add"), ("sub", "sub"), ("mul", "mul"), ("truediv", "div"),
                 ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "pow"),
                 ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor")):
    setattr(Tensor, f"__i{_op}__", _make_iop(_fn))

from . import tensor_info  # noqa: E402,F401  (non-op properties and methods, shift operators)
