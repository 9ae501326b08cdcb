"""PyTorch Tensor methods (and their ``torch.*`` functions) written with the registered ops
(composites): they run on every backend, are captured by ``fw.compile``, differentiate and
export to ONNX through their parts. No op is registered here.

ravel, moveaxis (movedim), narrow_copy, masked_scatter, slice_scatter, select_scatter,
diagonal_scatter, put, bitwise_left_shift / bitwise_right_shift, angle, mvlgamma, and the
method-only ``unfold`` (sliding windows, a gather) and ``sum_to_size``.

The shifts follow PyTorch's CPU kernels for out-of-range amounts: ``x << s`` is 0 when
``s < 0`` or ``s >= bits``; ``x >> s`` is ``x >> (bits - 1)`` (the sign: -1 or 0) for signed
types and 0 for uint8 when ``s`` is out of range. In range, ``x << s`` is ``x * 2**s`` and
``x >> s`` is ``floor(x / 2**s)`` (an arithmetic shift), both wrapping as the C shifts do.
"""

from __future__ import annotations

import math

from .. import dtypes
from ..dtypes import INT
from ..errors import ArgumentError, DTypeError, FwIndexError, ShapeError
from ..tensor import Tensor
from .creation_ops import arange, full
from .indexing import gather, index_put_key, index_select, scatter, scatter_add
from .math_extra import _diag_len, _eager, _flat_index, _int_arg, _tensor_arg
from .movement import clone, expand, movedim, narrow, reshape
from .pointwise import cast, promote, where
from .reduce import cumsum
from .reduce import sum as _sum
from .shapes import broadcast_shapes, normalize_dim

__all__ = ["ravel", "moveaxis", "narrow_copy", "masked_scatter", "slice_scatter",
           "select_scatter", "diagonal_scatter", "put", "bitwise_left_shift",
           "bitwise_right_shift", "angle", "mvlgamma"]
METHODS = """ravel moveaxis narrow_copy masked_scatter slice_scatter select_scatter
diagonal_scatter put bitwise_left_shift bitwise_right_shift angle mvlgamma unfold sum_to_size"""
INPLACE_METHODS = "masked_scatter put bitwise_left_shift bitwise_right_shift mvlgamma"

moveaxis = movedim  # torch.moveaxis is an alias of movedim


# ---------------------------------------------------------------------------------------
# shapes and views
def ravel(input):
    """``input`` flattened to 1-D (a view when the layout allows, else a copy)."""
    _tensor_arg(input, "ravel", "input")
    return reshape(input, -1)


def narrow_copy(input, dim, start, length):
    """``narrow(input, dim, start, length)`` as a new contiguous tensor (not a view)."""
    _tensor_arg(input, "narrow_copy", "input")
    return clone(narrow(input, dim, start, length))


def unfold(input, dimension, size, step):
    """Every slice of length ``size`` along ``dimension``, ``step`` apart (Tensor.unfold):
    ``dimension`` becomes the number of windows ``(n - size) // step + 1`` and a last dim
    of ``size`` is appended. Windows that do not overlap (``step >= size``) and end within
    the dim are a view, as in PyTorch; so are overlapping windows of a contiguous input
    (an ``as_strided`` view); overlapping windows of other layouts are a gather (a copy)."""
    _tensor_arg(input, "unfold", "input")
    size = _int_arg(size, "unfold", "size")
    step = _int_arg(step, "unfold", "step")
    d = normalize_dim(dimension, input.ndim, "unfold")
    n = input.shape[d] if input.ndim else 1
    if size < 0:
        raise ArgumentError(f"unfold: size is {size} but must be >= 0")
    if isinstance(n, int) and size > n:
        raise ArgumentError(f"unfold: maximum size for tensor at dimension {d} is {n} but "
                            f"size is {size}")
    if step <= 0:
        raise ArgumentError(f"unfold: step is {step} but must be > 0")
    if input.ndim == 0:
        return narrow(reshape(input, 1), 0, 0, size)  # PyTorch: shape (size,)
    windows = (n - size) // step + 1
    if isinstance(n, int) and step >= size and windows * step <= n:
        # split the dim into (windows, step) and keep the first `size` of each: a view
        span = narrow(input, d, 0, windows * step)
        split = reshape(span, input.shape[:d] + (windows, step) + input.shape[d + 1:])
        return movedim(narrow(split, d + 1, 0, size), d + 1, -1)
    if isinstance(n, int) and input.is_contiguous():
        # overlapping windows of contiguous memory: an overlapping view, as in PyTorch
        from .strided import as_strided
        st = input.stride()
        size_out = input.shape[:d] + (windows,) + input.shape[d + 1:] + (size,)
        stride_out = st[:d] + (st[d] * step,) + st[d + 1:] + (st[d],)
        return as_strided(input, size_out, stride_out)
    starts = reshape(arange(windows, device=input.device) * step, windows, 1)
    idx = starts + reshape(arange(size, device=input.device), 1, size)  # (windows, size)
    out = index_select(input, d, reshape(idx, -1))
    out = reshape(out, input.shape[:d] + (windows, size) + input.shape[d + 1:])
    return movedim(out, d + 1, -1)


def sum_to_size(input, *size):
    """``input`` summed down to ``size`` (which must be expandable to ``input``'s shape):
    the reverse of ``expand``, as autograd reduces a broadcast gradient."""
    from .shapes import as_shape
    _tensor_arg(input, "sum_to_size", "input")
    size = as_shape(size, "sum_to_size")
    lead = input.ndim - len(size)
    if lead < 0 or any(s != 1 and s != input.shape[lead + i] for i, s in enumerate(size)):
        raise ShapeError(f"sum_to_size: size {list(size)} is not expandable to size "
                         f"{list(input.shape)}")
    if tuple(size) == tuple(input.shape):
        return input
    dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(size)
                                      if s == 1 and input.shape[lead + i] != 1)
    out = _sum(input, dims, keepdim=True) if dims else input
    return reshape(out, size)


# ---------------------------------------------------------------------------------------
# scatters (functional writes)
def _same_dtype(input, src, op, what="src"):
    _tensor_arg(src, op, what)
    if src.dtype is not input.dtype:
        raise DTypeError(f"{op}(): expected {what} and self to have the same dtype, but got "
                         f"(self) {input.dtype.name} and ({what}) {src.dtype.name}")


def _check_src_shape(src, want, op, what):
    if tuple(src.shape) != tuple(want):
        raise ShapeError(f"{op}(): expected src to have a size equal to the {what} of self. "
                         f"src size = {list(src.shape)}, {what} size = {list(want)}")


def masked_scatter(input, mask, source):
    """``input`` with the elements where ``mask`` (bool, broadcast with ``input``) holds
    replaced, in row-major order, by the leading elements of ``source`` (which needs at
    least as many elements as ``mask`` has True values)."""
    _tensor_arg(input, "masked_scatter", "input")
    _tensor_arg(mask, "masked_scatter", "mask")
    _tensor_arg(source, "masked_scatter", "source")
    if mask.dtype is not dtypes.bool_:
        raise DTypeError(f"masked_scatter(): only supports boolean masks, but got mask with "
                         f"dtype {mask.dtype.name}")
    if source.dtype is not input.dtype:
        raise DTypeError(f"masked_scatter(): expected self and source to have same dtypes but "
                         f"got {input.dtype.name} and {source.dtype.name}")
    shape = broadcast_shapes(input.shape, mask.shape, "masked_scatter")
    x, m = expand(input, shape), expand(mask, shape)
    src = reshape(source, -1)
    n = src.shape[0]
    if _eager(m):
        ones = int(_sum(m).item())
        if ones > n:
            raise ShapeError(f"masked_scatter(): expected source to have at least as many "
                             f"elements as ones in mask ({ones}), got {n}")
    if n == 0:  # (eagerly checked: the mask has no True values)
        return clone(x)
    flat = reshape(m, -1)
    pos = cumsum(cast(flat, dtypes.int64), 0) - 1  # i-th True element reads source[i]
    pos = pos.clamp(0, n - 1)
    return where(m, reshape(gather(src, 0, pos), shape), x)


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """``input`` with ``input[..., start:end:step, ...]`` (the slice along ``dim``) replaced
    by ``src``, which must have the slice's shape."""
    _tensor_arg(input, "slice_scatter", "input")
    _tensor_arg(src, "slice_scatter", "src")
    d = normalize_dim(dim, input.ndim, "slice_scatter")
    step = _int_arg(step, "slice_scatter", "step")
    if step <= 0:
        raise ArgumentError(f"slice_scatter(): slice step must be positive, got {step}")
    key = (slice(None),) * d + (slice(start, end, step),)
    size = input.shape[d]
    if isinstance(size, int):
        want = input.shape[:d] + (len(range(*slice(start, end, step).indices(size))),) + \
            input.shape[d + 1:]
        _check_src_shape(src, want, "slice_scatter", "slice")
    return index_put_key(input, key, cast(src, input.dtype))


def select_scatter(input, src, dim, index):
    """``input`` with ``input.select(dim, index)`` replaced by ``src`` (of that shape)."""
    _tensor_arg(input, "select_scatter", "input")
    _tensor_arg(src, "select_scatter", "src")
    index = _int_arg(index, "select_scatter", "index")
    if input.ndim == 0:
        raise FwIndexError("select_scatter(): cannot be applied to a 0-dim tensor")
    d = normalize_dim(dim, input.ndim, "select_scatter")
    size = input.shape[d]
    if isinstance(size, int) and not -size <= index < size:
        raise FwIndexError(f"select_scatter(): index {index} out of range for tensor of size "
                           f"{list(input.shape)} at dimension {d}")
    _check_src_shape(src, input.shape[:d] + input.shape[d + 1:], "select_scatter",
                     "selected slice")
    return index_put_key(input, (slice(None),) * d + (index,), cast(src, input.dtype))


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """``input`` with ``diagonal(input, offset, dim1, dim2)`` replaced by ``src`` (of the
    diagonal's shape: the other dims, then the diagonal's length)."""
    _tensor_arg(input, "diagonal_scatter", "input")
    _tensor_arg(src, "diagonal_scatter", "src")
    offset = _int_arg(offset, "diagonal_scatter", "offset")
    if input.ndim < 2:
        raise ArgumentError(f"diagonal_scatter(): expected a tensor with at least 2 dims, got "
                            f"{input.ndim}")
    d1 = normalize_dim(dim1, input.ndim, "diagonal_scatter")
    d2 = normalize_dim(dim2, input.ndim, "diagonal_scatter")
    if d1 == d2:
        raise ArgumentError(f"diagonal_scatter(): dimensions cannot be identical {dim1}, {dim2}")
    x = movedim(input, (d1, d2), (-2, -1))
    length = _diag_len(x.shape[-2], x.shape[-1], offset)
    _check_src_shape(src, x.shape[:-2] + (length,), "diagonal_scatter", "diagonal")
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    rows = arange(r0, r0 + length, device=input.device)
    cols = arange(c0, c0 + length, device=input.device)
    out = index_put_key(x, (Ellipsis, rows, cols), cast(src, input.dtype))
    return movedim(out, (input.ndim - 2, input.ndim - 1), (d1, d2))


def put(input, index, source, accumulate=False):
    """``input`` with ``source`` written at the positions ``index`` of the flattened input
    (int64; negative counts from the end); added instead with ``accumulate=True``. With
    repeated indices and ``accumulate=False`` one of the writes wins (which is undefined)."""
    _tensor_arg(input, "put", "input")
    _tensor_arg(index, "put", "index")
    _tensor_arg(source, "put", "source")
    if index.dtype is not dtypes.int64:
        raise DTypeError(f"put(): Expected a long tensor for index, but got {index.dtype.name}")
    if source.dtype is not input.dtype:
        raise DTypeError(f"put(): self and source expected to have the same dtype, but got "
                         f"self.dtype = {input.dtype.name} and source.dtype = "
                         f"{source.dtype.name}")
    if index.numel() != source.numel():
        raise ShapeError(f"put(): Expected source and index to have the same number of "
                         f"elements, but got source.numel() = {source.numel()}, "
                         f"index.numel() = {index.numel()}")
    flat, idx = _flat_index(input, index, "put", "put into")
    if index.numel() == 0:
        return clone(input)
    idx = reshape(idx, -1)
    src = reshape(source, -1)
    out = scatter_add(flat, 0, idx, src) if accumulate else scatter(flat, 0, idx, src)
    return reshape(out, input.shape)


# ---------------------------------------------------------------------------------------
# shifts
def _shift_operands(input, other, op):
    a, b, dt = promote(input, other, op)
    if dt.category != INT:
        raise DTypeError(f"{op}: not implemented for dtype {dt.name}; shifts need integer "
                         "tensors")
    ref = a if isinstance(a, Tensor) else b
    if not isinstance(a, Tensor):
        a = full((), a, dtype=dt, device=ref.device)
    return a, b, dt, dt.itemsize * 8


def _wrap(v, dt):
    """The integer ``v`` wrapped into ``dt``'s range, as a C cast does."""
    bits = dt.itemsize * 8
    v %= 1 << bits
    return v - (1 << bits) if dt.is_signed and v >= 1 << (bits - 1) else v


def _powers_of_two(s, top, dt):
    """``2**s`` (wrapped into ``dt``) for the shift tensor ``s`` clamped to ``[0, top]``:
    a lookup in a constant table, so no integer pow is needed on any backend."""
    from ..creation import tensor
    table = tensor([_wrap(1 << k, dt) for k in range(top + 1)], dtype=dt, device=s.device)
    idx = reshape(cast(s.clamp(0, top), dtypes.int64), -1)
    return reshape(gather(table, 0, idx), s.shape)


def bitwise_left_shift(input, other):
    """``input << other`` elementwise for integer tensors (or one Python int), with type
    promotion; 0 where the shift is negative or at least the bit width."""
    a, s, dt, bits = _shift_operands(input, other, "bitwise_left_shift")
    if not isinstance(s, Tensor):
        return a * _wrap(1 << s, dt) if 0 <= s < bits else a * 0
    bad = (s < 0) | (s >= bits)
    return where(bad, 0, a * _powers_of_two(s, bits - 1, dt))


def bitwise_right_shift(input, other):
    """``input >> other`` elementwise for integer tensors (or one Python int): an arithmetic
    shift (floor division by ``2**other``) with type promotion; out-of-range shifts give
    the sign (-1 or 0), or 0 for uint8."""
    a, s, dt, bits = _shift_operands(input, other, "bitwise_right_shift")
    top = bits - 1 if dt.is_signed else bits  # PyTorch's max_shift

    def fill():  # a >> max_shift
        return cast(a < 0, dt) * -1 if dt.is_signed else a * 0
    if not isinstance(s, Tensor):
        if not 0 <= s < top:
            return fill()
        # a 0-d tensor divisor: Triton rejects uint8 // int32 constant (mixed signedness)
        return a // full((), 1 << s, dtype=dt, device=a.device)
    bad = (s < 0) | (s >= top)
    return where(bad, fill(), a // _powers_of_two(s, top - 1, dt))


# ---------------------------------------------------------------------------------------
# pointwise
def angle(input):
    """The argument of each element as a complex number: 0 for ``x >= 0``, pi for
    ``x < 0``, NaN for NaN (a float result; the gradient is zero, as for real input in
    PyTorch)."""
    _tensor_arg(input, "angle", "input")
    if input.dtype.is_complex:
        from .complex_ops import complex_angle
        return complex_angle(input)
    x = input if input.dtype.is_floating_point else cast(input, dtypes.get_default_dtype())
    zero = full(x.shape, 0.0, dtype=x.dtype, device=x.device)
    return where(x != x, x, where(x < 0, zero + math.pi, zero))


def mvlgamma(input, p):
    """The multivariate log-gamma of dimension ``p``:
    ``p(p-1)/4 log(pi) + sum_{j<p} lgamma(x - j/2)`` (= ``fw.special.multigammaln``); every
    element must exceed ``(p - 1) / 2``. Integer input gives the default float dtype."""
    from ..special import multigammaln
    _tensor_arg(input, "mvlgamma", "input")
    return multigammaln(input, p)
