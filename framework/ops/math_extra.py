"""More pointwise and shape ops written with the registered ones (composites): they run on
every backend, are captured by ``fw.compile`` and export to ONNX through their parts.

hypot, logaddexp, logaddexp2, diff, cross, rot90, diagonal, diag, diag_embed, trace,
tril_indices, triu_indices, repeat_interleave, take, index_copy, index_fill, cdist, pdist,
logcumsumexp, cummax, cummin. No op is registered here: autograd, capture and export come
from the parts. The scans (cummax, cummin, logcumsumexp) are log-depth doubling scans
(Hillis-Steele: ``ceil(log2(n))`` rounds of the combining op over shifted copies).
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from .._state import tls
from ..dtypes import BOOL, FLOAT
from ..errors import ArgumentError, DTypeError, FwIndexError, FwTypeError, ShapeError
from ..tensor import Tensor
from .creation_ops import arange, full
from .indexing import gather, getitem, index_put_key, index_select, masked_fill, scatter_add
from .movement import cat, clone, expand, flip, movedim, narrow, pad, reshape, transpose
from .pointwise import binary, cast, promote, unary, where
from .reduce import _ValuesIndices, amax, cumsum
from .reduce import sum as _sum
from .shapes import broadcast_shapes, normalize_dim

__all__ = ["hypot", "logaddexp", "logaddexp2", "diff", "cross", "rot90", "diagonal", "diag",
           "diag_embed", "trace", "tril_indices", "triu_indices", "repeat_interleave", "take",
           "index_copy", "index_fill", "cdist", "pdist", "logcumsumexp", "cummax", "cummin"]
METHODS = """hypot logaddexp logaddexp2 diff cross rot90 diagonal diag diag_embed trace
repeat_interleave take index_copy index_fill logcumsumexp cummax cummin"""
INPLACE_METHODS = "hypot index_copy index_fill"

_LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------
# argument helpers
def _tensor_arg(x, op, name):
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{op}(): argument '{name}' must be a Tensor, not {type(x).__name__}")
    return x


def _int_arg(v, op, name):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise FwTypeError(f"{op}(): argument '{name}' must be an int, not {type(v).__name__}")
    return int(v)


def _eager(*tensors) -> bool:
    """True when values may be inspected on the host without a graph break (no tracer,
    every tensor holds data)."""
    return tls.tracer is None and all(t._data is not None for t in tensors)


def _index_arg(index, op):
    """A 0-D/1-D int64 index tensor, flattened to 1-D."""
    _tensor_arg(index, op, "index")
    if index.dtype is not dtypes.int64:
        raise DTypeError(f"{op}(): expected a long (int64) tensor for index, but got "
                         f"{index.dtype.name}")
    if index.ndim > 1:
        raise ShapeError(f"{op}(): index should have dimension 1 or 0 (got {index.ndim}, shape "
                         f"{list(index.shape)})")
    return reshape(index, -1)


def _check_range(index, lo, hi, op, what):
    """Eagerly: every value of ``index`` in ``[lo, hi)`` (skipped while tracing)."""
    if index.numel() and _eager(index):
        mn, mx = int(index.min().item()), int(index.max().item())
        if mn < lo or mx >= hi:
            bad = mn if mn < lo else mx
            raise FwIndexError(f"{op}(): index {bad} is out of bounds for {what}")


def _float_pair(input, other, op):
    """Promote two tensors; ``op`` is defined for floating dtypes only (as in PyTorch)."""
    _tensor_arg(input, op, "input")
    _tensor_arg(other, op, "other")
    broadcast_shapes(input.shape, other.shape, op)
    a, b, dt = promote(input, other, op)
    if dt.category != FLOAT:
        raise DTypeError(f"{op}(): not implemented for dtype {dt.name} (inputs "
                         f"{input.dtype.name} and {other.dtype.name}); {op} needs "
                         "floating-point tensors")
    return a, b


# ---------------------------------------------------------------------------------------
# pointwise
def hypot(input, other):
    """``sqrt(input**2 + other**2)`` without overflow or underflow (IEEE: an infinite
    operand gives inf even against NaN). Floating-point tensors only."""
    a, b = _float_pair(input, other, "hypot")
    aa, bb = a.abs(), b.abs()
    big = binary("maximum", aa, bb).detach()
    s = where((big == 0) | big.isinf(), 1.0, big)  # any scale is exact; this one is safe
    ra, rb = a / s, b / s
    out = s * unary("sqrt", ra * ra + rb * rb)
    return where(aa.isinf() | bb.isinf(), math.inf, out)


def _logaddexp(a, b, base2):
    m = binary("maximum", a, b)
    d = -(a - b).abs()
    t = unary("log1p", unary("exp2", d)) * (1.0 / _LN2) if base2 else unary("log1p", d.exp())
    same_inf = (a == b) & a.isinf()  # inf - inf would be NaN: keep the common infinity
    return where(same_inf, a, m + t)


def logaddexp(input, other):
    """``log(exp(input) + exp(other))``, stably (``max + log1p(exp(-|a - b|))``)."""
    a, b = _float_pair(input, other, "logaddexp")
    return _logaddexp(a, b, False)


def logaddexp2(input, other):
    """``log2(2**input + 2**other)``, stably."""
    a, b = _float_pair(input, other, "logaddexp2")
    return _logaddexp(a, b, True)


# ---------------------------------------------------------------------------------------
# differences, cross product, rotation
def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim`` (``logical_xor`` for bool), after
    concatenating ``prepend``/``append`` along ``dim``."""
    _tensor_arg(input, "diff", "input")
    n = _int_arg(n, "diff", "n")
    if input.ndim == 0:
        raise ShapeError("diff(): expects input to be at least one-dimensional")
    if n < 0:
        raise ArgumentError(f"diff(): order must be non-negative but got {n}")
    d = normalize_dim(dim, input.ndim, "diff")
    if n == 0:
        return clone(input)
    parts = [input]
    for name, t in (("prepend", prepend), ("append", append)):
        if t is None:
            continue
        _tensor_arg(t, "diff", name)
        if t.ndim != input.ndim:
            raise ShapeError(f"diff(): expects {name} to have the same number of dimensions "
                             f"as input ({input.ndim}), got {t.ndim}")
        for i in range(input.ndim):
            if i != d and t.shape[i] != input.shape[i]:
                raise ShapeError(f"diff(): {name} shape {list(t.shape)} does not match input "
                                 f"shape {list(input.shape)} except at dim {d}")
        parts.insert(0 if name == "prepend" else len(parts), t)
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(min(n, x.shape[d])):
        length = x.shape[d] - 1
        hi, lo = narrow(x, d, 1, length), narrow(x, d, 0, length)
        x = binary("logical_xor", hi, lo) if x.dtype is dtypes.bool_ else hi - lo
    return x


def cross(input, other, dim=None):
    """Cross product of 3-vectors along ``dim`` (broadcasting the other dims). ``dim=None``
    takes the first dim of size 3 of ``input`` (PyTorch's deprecated default)."""
    _tensor_arg(input, "cross", "input")
    _tensor_arg(other, "cross", "other")
    if input.ndim != other.ndim:
        raise ShapeError(f"cross(): inputs must have the same number of dimensions, got "
                         f"{input.ndim} ({list(input.shape)}) and {other.ndim} "
                         f"({list(other.shape)})")
    if dim is None:
        dim = next((i for i, s in enumerate(input.shape) if s == 3), None)
        if dim is None:
            raise ShapeError(f"cross(): no dimension of size 3 in input (shape "
                             f"{list(input.shape)})")
    d = normalize_dim(dim, input.ndim, "cross")
    if input.ndim == 0 or input.shape[d] != 3 or other.shape[d] != 3:
        raise ShapeError(f"cross(): inputs dimension {dim} must have length 3, got "
                         f"{list(input.shape)} and {list(other.shape)}")
    a, b, dt = promote(input, other, "cross")
    if dt.category == BOOL:
        raise DTypeError("cross(): not implemented for dtype bool")
    sa, sb = list(a.shape), list(b.shape)
    sa[d] = sb[d] = 1
    broadcast_shapes(tuple(sa), tuple(sb), "cross")
    a0, a1, a2 = (narrow(a, d, i, 1) for i in range(3))
    b0, b1, b2 = (narrow(b, d, i, 1) for i in range(3))
    return cat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def rot90(input, k=1, dims=(0, 1)):
    """Rotate by ``k * 90`` degrees in the plane of ``dims`` (from the first towards the
    second dim)."""
    _tensor_arg(input, "rot90", "input")
    k = _int_arg(k, "rot90", "k")
    dims = tuple(dims)
    if len(dims) != 2:
        raise ArgumentError(f"rot90(): expected total rotation dims == 2, but got dims = "
                            f"{list(dims)}")
    if input.ndim < 2:
        raise ShapeError(f"rot90(): expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = (normalize_dim(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise ArgumentError(f"rot90(): expected rotation dims to be different, but got dim0 = "
                            f"{dims[0]} and dim1 = {dims[1]}")
    k %= 4
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return transpose(flip(input, (d0,)), d0, d1)
    return clone(input)


# ---------------------------------------------------------------------------------------
# diagonals
def _diag_len(n1, n2, offset):
    return max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The ``offset``-th diagonal of the matrices spanned by ``dim1`` and ``dim2``, as the
    last dim (it may be a copy where PyTorch returns a view: no strided-view op here)."""
    return _diagonal(input, offset, dim1, dim2)


def _diagonal(input, offset, dim1, dim2):
    _tensor_arg(input, "diagonal", "input")
    offset = _int_arg(offset, "diagonal", "offset")
    d1 = normalize_dim(dim1, input.ndim, "diagonal")
    d2 = normalize_dim(dim2, input.ndim, "diagonal")
    if input.ndim < 2 or d1 == d2:
        raise ArgumentError(f"diagonal(): dimensions cannot be identical {dim1}, {dim2}"
                            if input.ndim >= 2 else
                            f"diagonal(): expected a tensor with at least 2 dims, got "
                            f"{input.ndim}")
    x = movedim(input, (d1, d2), (-2, -1))
    n1, n2 = x.shape[-2], x.shape[-1]
    length = _diag_len(n1, n2, offset)
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    x = narrow(narrow(x, -2, min(r0, n1), length), -1, min(c0, n2), length)
    flat = reshape(x, x.shape[:-2] + (length * length,))
    return getitem(flat, (Ellipsis, slice(None, None, length + 1)))


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices (in dims ``dim1``, ``dim2`` of the output) whose ``offset``-th diagonal
    holds the last dim of ``input``; zeros elsewhere."""
    _tensor_arg(input, "diag_embed", "input")
    offset = _int_arg(offset, "diag_embed", "offset")
    nd = input.ndim + 1
    d1 = normalize_dim(dim1, nd, "diag_embed")
    d2 = normalize_dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise ArgumentError(f"diag_embed(): diagonal dimensions cannot be identical {dim1}, "
                            f"{dim2}")
    n = input.shape[-1]
    idx = arange(n, device=input.device)
    mask = idx.unsqueeze(-1) == idx
    zero = False if input.dtype is dtypes.bool_ else 0
    x = where(mask, input.unsqueeze(-1), zero)
    k = abs(offset)
    if k:
        x = pad(x, (k, 0, 0, k) if offset > 0 else (0, k, k, 0))
    return movedim(x, (nd - 2, nd - 1), (d1, d2))


def diag(input, diagonal=0):
    """1-D input: the square matrix with ``input`` on its ``diagonal``-th diagonal; 2-D
    input: that diagonal as a 1-D tensor."""
    _tensor_arg(input, "diag", "input")
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim == 2:
        return _diagonal(input, diagonal, 0, 1)
    raise ShapeError(f"diag(): supports 1D or 2D tensors, got {input.ndim}D (shape "
                     f"{list(input.shape)})")


def trace(input):
    """Sum of the main diagonal of a 2-D tensor (integers accumulate in int64)."""
    _tensor_arg(input, "trace", "input")
    if input.ndim != 2:
        raise ShapeError(f"trace(): expected a matrix, but got tensor with dim {input.ndim}")
    return _sum(diagonal(input))


def _tri_indices(np_fn, name, row, col, offset, dtype, device):
    row, col = _int_arg(row, name, "row"), _int_arg(col, name, "col")
    offset = _int_arg(offset, name, "offset")
    if row < 0 or col < 0:
        raise ArgumentError(f"{name}(): row and col must be non-negative, got row={row}, "
                            f"col={col}")
    dt = dtypes.int64 if dtype is None else dtypes.to_dtype(dtype)
    if dt.category == BOOL:
        raise DTypeError(f"{name}(): dtype must be a numeric dtype, got {dt.name}")
    rows, cols = np_fn(row, offset, col) if row and col else (np.zeros(0, np.int64),) * 2
    from ..creation import tensor
    return tensor(np.stack([rows, cols]).astype(np.int64).reshape(2, -1), dtype=dt,
                  device=device)


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """Coordinates (a ``2 x N`` tensor, row-major order) of the lower triangle of a
    ``row x col`` matrix, including the ``offset``-th diagonal (int64 by default)."""
    return _tri_indices(np.tril_indices, "tril_indices", row, col, offset, dtype, device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """Coordinates (``2 x N``, row-major) of the upper triangle from the ``offset``-th
    diagonal of a ``row x col`` matrix."""
    return _tri_indices(np.triu_indices, "triu_indices", row, col, offset, dtype, device)


# ---------------------------------------------------------------------------------------
# repeat_interleave, take, index_copy, index_fill
def _repeat_index(repeats, output_size):
    """``arange(len(repeats))`` with element ``i`` repeated ``repeats[i]`` times, built on the
    repeats' device: ones scattered at each run's start, then a cumulative sum. Without
    ``output_size`` the total is read on the host (a graph break while tracing)."""
    on_host = _eager(repeats) and repeats.device.type == "cpu"
    if output_size is None or on_host:
        arr = repeats._host_array("repeat_interleave() with tensor repeats (give output_size)")
        if arr.size and int(arr.min()) < 0:
            raise ArgumentError("repeat_interleave(): repeats can not be negative")
        total = int(arr.sum())
        if output_size is not None and total != output_size:
            raise ArgumentError(f"repeat_interleave(): output_size={output_size} does not "
                                f"match the sum of repeats ({total})")
    else:
        total = _int_arg(output_size, "repeat_interleave", "output_size")
        if total < 0:
            raise ArgumentError(f"repeat_interleave(): output_size must be non-negative, got "
                                f"{total}")
    r = cast(repeats, dtypes.int64)
    starts = (cumsum(r, 0) - r).clamp(max=total)
    marks = full((total + 1,), 0, dtype=dtypes.int64, device=repeats.device)
    marks = scatter_add(marks, 0, starts, full(starts.shape, 1, dtype=dtypes.int64,
                                               device=repeats.device))
    return cumsum(narrow(marks, 0, 0, total), 0) - 1


def _repeats_tensor(repeats):
    if repeats.dtype not in (dtypes.int64, dtypes.int32):
        raise DTypeError(f"repeat_interleave(): repeats has to be a Long or Int tensor, got "
                         f"{repeats.dtype.name}")
    if repeats.ndim > 1:
        raise ShapeError(f"repeat_interleave(): repeats must be 0-dim or 1-dim tensor, got "
                         f"shape {list(repeats.shape)}")
    return reshape(repeats, -1)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Repeat each element (each slice along ``dim``; of the flattened input when ``dim``
    is None) ``repeats`` times: an int, or a tensor of one count per element.
    ``repeat_interleave(repeats)`` alone gives ``arange(len(repeats))`` repeated so."""
    _tensor_arg(input, "repeat_interleave", "input")
    if repeats is None:
        r = _repeats_tensor(input)
        return cast(_repeat_index(r, output_size), r.dtype)
    x, d = (reshape(input, -1), 0) if dim is None else (input, dim)
    if x.ndim == 0:
        raise FwIndexError(f"repeat_interleave(): dimension specified as {dim} but tensor "
                           "has no dimensions")
    d = normalize_dim(d, x.ndim, "repeat_interleave")
    size = x.shape[d]
    if isinstance(repeats, Tensor):
        r = _repeats_tensor(repeats)
        if r.shape[0] == 1 and size != 1:
            if output_size is None:
                repeats = int(r.item())
            else:
                r = expand(r, (size,))
        elif r.shape[0] != size:
            raise ShapeError(f"repeat_interleave(): repeats must have the same size as input "
                             f"along dim {d}, but got repeats.size(0) = {r.shape[0]} and "
                             f"input.size({d}) = {size}")
        if isinstance(repeats, Tensor):
            return getitem(x, (slice(None),) * d + (_repeat_index(r, output_size),))
    reps = _int_arg(repeats, "repeat_interleave", "repeats")
    if reps < 0:
        raise ArgumentError(f"repeat_interleave(): repeats can not be negative, got {reps}")
    if output_size is not None and output_size != size * reps:
        raise ArgumentError(f"repeat_interleave(): output_size={output_size} does not match "
                            f"the repeated size {size * reps}")
    big = x.shape[:d + 1] + (reps,) + x.shape[d + 1:]
    out = expand(x.unsqueeze(d + 1), big)
    return reshape(out, x.shape[:d] + (size * reps,) + x.shape[d + 1:])


def take(input, index):
    """``input`` flattened, indexed by ``index`` (int64; negative counts from the end); the
    result has the shape of ``index``."""
    _tensor_arg(input, "take", "input")
    _tensor_arg(index, "take", "index")
    if index.dtype is not dtypes.int64:
        raise DTypeError(f"take(): expected a long (int64) tensor for index, but got "
                         f"{index.dtype.name}")
    flat, idx = _flat_index(input, index, "take", "take from")
    return reshape(gather(flat, 0, reshape(idx, -1)), index.shape)


def _flat_index(input, index, op, verb):
    """``input`` flattened, and ``index`` into it range-checked with negative entries
    wrapped (``take``, ``put``)."""
    flat = reshape(input, -1)
    n = flat.shape[0]
    if n == 0 and index.numel():
        raise FwIndexError(f"{op}(): tried to {verb} an empty tensor")
    _check_range(index, -n, n, op, f"a tensor of {n} elements (shape {list(input.shape)})")
    return flat, where(index < 0, index + n, index)


def index_copy(input, dim, index, source):
    """``input`` with the slices ``index[i]`` along ``dim`` replaced by slice ``i`` of
    ``source`` (gradient: zero at the replaced slices for ``input``, the gathered slices
    for ``source``)."""
    _tensor_arg(input, "index_copy", "input")
    _tensor_arg(source, "index_copy", "source")
    d = normalize_dim(dim, input.ndim, "index_copy")
    idx = _index_arg(index, "index_copy")
    if source.dtype is not input.dtype:
        raise DTypeError(f"index_copy(): self and source expected to have the same dtype, but "
                         f"got (self) {input.dtype.name} and (source) {source.dtype.name}")
    x = input if input.ndim else reshape(input, 1)
    want = x.shape[:d] + (idx.shape[0],) + x.shape[d + 1:]
    src = source
    if src.shape != want:
        if src.numel() == 1 and src.ndim <= 1 and len(want) == 1 and want[0] == 1:
            src = reshape(src, want)
        else:
            raise ShapeError(f"index_copy(): source shape {list(source.shape)} must be the "
                             f"input shape {list(input.shape)} with dim {d} of size "
                             f"{idx.shape[0]} (the number of indices), i.e. {list(want)}")
    size = x.shape[d]
    _check_range(idx, 0, size, "index_copy", f"dimension {d} with size {size}")
    out = index_put_key(x, (slice(None),) * d + (idx,), src)
    return out if input.ndim else reshape(out, ())


def index_fill(input, dim, index, value):
    """``input`` with the slices ``index`` along ``dim`` set to ``value`` (a number or a
    0-D tensor; negative indices count from the end)."""
    _tensor_arg(input, "index_fill", "input")
    d = normalize_dim(dim, input.ndim, "index_fill")
    idx = _index_arg(index, "index_fill")
    if isinstance(value, Tensor) and value.ndim:
        raise ShapeError(f"index_fill(): only supports a 0-dimensional value tensor, but got "
                         f"tensor with {value.ndim} dimension(s)")
    size = input.shape[d] if input.ndim else 1
    _check_range(idx, -size, size, "index_fill", f"dimension {d} with size {size}")
    idx = where(idx < 0, idx + size, idx)
    mask = full((size,), False, dtype=dtypes.bool_, device=input.device)
    mask = index_put_key(mask, (idx,), True)
    if input.ndim:
        mask = reshape(mask, (1,) * d + (size,) + (1,) * (input.ndim - d - 1))
    else:
        mask = reshape(mask, ())
    return masked_fill(input, mask, value)


# ---------------------------------------------------------------------------------------
# cdist
_CDIST_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                "donot_use_mm_for_euclid_dist")


def _zero_safe_sqrt(s):
    """``sqrt(s)`` with gradient 0 (not inf * 0 = NaN) where ``s`` is 0."""
    if not s.requires_grad:
        return unary("sqrt", s)
    nz = s > 0
    return where(nz, unary("sqrt", where(nz, s, 1.0)), 0.0)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """p-norm distances between the rows of ``x1`` (B.., P, M) and ``x2`` (B.., R, M):
    (B.., P, R), batch dims broadcast. p=0 counts differing entries, p=inf is the max.
    For p=2 the matrix-product form is used as PyTorch does (always with
    ``use_mm_for_euclid_dist``, when P or R exceeds 25 by default)."""
    _tensor_arg(x1, "cdist", "x1")
    _tensor_arg(x2, "cdist", "x2")
    if x1.ndim < 2 or x2.ndim < 2:
        raise ShapeError(f"cdist(): only supports at least 2D tensors, X1 got: {x1.ndim}D, "
                         f"X2 got: {x2.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist(): X1 and X2 must have the same number of columns. X1: "
                         f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    for name, t in (("X1", x1), ("X2", x2)):
        if t.dtype.category != FLOAT:
            raise DTypeError(f"cdist(): only supports floating-point dtypes, {name} got: "
                             f"{t.dtype.name}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or p < 0 or math.isnan(p):
        raise ArgumentError(f"cdist(): only supports non-negative p values, got {p!r}")
    if compute_mode not in _CDIST_MODES:
        raise ArgumentError(f"cdist(): {compute_mode!r} is not a valid value for "
                            f"compute_mode; expected one of {list(_CDIST_MODES)}")
    a, b, _ = promote(x1, x2, "cdist")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], "cdist")
    P, R, M = a.shape[-2], b.shape[-2], a.shape[-1]
    a = expand(a, batch + (P, M))
    b = expand(b, batch + (R, M))
    if M == 0:
        return full(batch + (P, R), 0.0, dtype=a.dtype, device=a.device)
    use_mm = p == 2 and (compute_mode == "use_mm_for_euclid_dist" or (
        compute_mode == _CDIST_MODES[0] and (P > 25 or R > 25)))
    if use_mm:
        an = _sum(a * a, -1, keepdim=True)
        bn = _sum(b * b, -1, keepdim=True)
        d2 = an + transpose(bn, -1, -2) - (a @ transpose(b, -1, -2)) * 2
        return _zero_safe_sqrt(d2.clamp(min=0.0))
    diff_ = a.unsqueeze(-2) - b.unsqueeze(-3)  # (B.., P, R, M)
    if p == 0:
        return _sum(cast(diff_ != 0, a.dtype), -1)
    if p == math.inf:
        return amax(diff_.abs(), -1)
    if p == 1:
        return _sum(diff_.abs(), -1)
    if p == 2:
        return _zero_safe_sqrt(_sum(diff_ * diff_, -1))
    s = _sum(diff_.abs() ** p, -1)
    if not s.requires_grad:
        return s ** (1.0 / p)
    nz = s > 0
    return where(nz, where(nz, s, 1.0) ** (1.0 / p), 0.0)


def _pnorm_rows(diff, p):
    """The p-norm of each row of ``diff`` (last dim), with PyTorch's ``pdist`` backward: 0
    where a norm (or, for p < 1, a coordinate) is 0, 0 everywhere for p=0, and for p=inf
    the full gradient to every coordinate that attains the max."""
    grad = diff.requires_grad
    if p == 0:  # count of non-zeros; the discarded ``diff * 0`` keeps a zero gradient
        return _sum(where(diff != 0, 1.0, diff * 0.0), -1)
    a = diff.abs()
    if p == 1:
        return _sum(a, -1)
    if p == 2:
        return _zero_safe_sqrt(_sum(diff * diff, -1))
    if p == math.inf:
        top = amax(a, -1)
        if not grad:
            return top
        # value ``top``; gradient sign(diff) * g at every tie (amax would split it)
        t = top.detach()
        tied = a == t.unsqueeze(-1)
        bump = _sum(where(tied, a - a.detach(), 0.0), -1)
        return where(unary("isfinite", t), t + bump, t)
    if not grad:
        return _sum(a ** p, -1) ** (1.0 / p)
    nz = diff != 0
    s = _sum(where(nz, where(nz, a, 1.0) ** p, 0.0), -1)
    pos = s > 0
    return where(pos, where(pos, s, 1.0) ** (1.0 / p), 0.0)


def pdist(input, p=2.0):
    """Condensed pairwise p-norm distances between the rows of ``input`` (N, M): the upper
    triangle of ``cdist(input, input)`` read row by row, ``N * (N - 1) / 2`` values (PyTorch's
    ``torch.pdist``). p=0 counts differing entries, p=inf is the max. The number of rows
    must be static."""
    _tensor_arg(input, "pdist", "input")
    if input.ndim != 2:
        raise ShapeError(f"pdist(): only supports 2D tensors, got: {input.ndim}D")
    if input.dtype.category != FLOAT:
        raise DTypeError(f"pdist(): only supports floating-point dtypes, got: "
                         f"{input.dtype.name}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or p < 0 or math.isnan(p):
        raise ArgumentError(f"pdist(): only supports non-negative p values, got {p!r}")
    n = input.shape[0]
    if not isinstance(n, int):
        raise NotImplementedError(f"pdist(): needs a static number of rows, got shape "
                                  f"{list(input.shape)}")
    from ..creation import tensor
    rows, cols = np.triu_indices(n, 1)
    pick = [tensor(i.astype(np.int64), device=input.device) for i in (rows, cols)]
    diff = index_select(input, 0, pick[0]) - index_select(input, 0, pick[1])
    if input.shape[1] == 0:
        return _sum(diff, -1)
    return _pnorm_rows(diff, float(p))


# ---------------------------------------------------------------------------------------
# scans
def _doubling_scan(xs, d, combine):
    """Inclusive scan along ``d`` of the tensors ``xs`` (a tuple scanned together):
    round ``s`` combines every element with the one ``s`` before it (``combine(earlier,
    later)`` on tuples), doubling ``s``; ``ceil(log2(n))`` rounds."""
    n = xs[0].shape[d]
    s = 1
    while s < n:
        early = tuple(narrow(t, d, 0, n - s) for t in xs)
        late = tuple(narrow(t, d, s, n - s) for t in xs)
        comb = combine(early, late)
        xs = tuple(cat([narrow(t, d, 0, s), c], d) for t, c in zip(xs, comb))
        s *= 2
    return xs


def logcumsumexp(input, dim):
    """``log(cumsum(exp(input)))`` along ``dim``, stable across any range of values
    (a doubling scan of ``logaddexp``). Floating-point tensors only."""
    _tensor_arg(input, "logcumsumexp", "input")
    d = normalize_dim(dim, input.ndim, "logcumsumexp")
    if input.dtype.category != FLOAT:
        raise DTypeError(f"logcumsumexp(): not implemented for dtype {input.dtype.name}; "
                         "it needs a floating-point tensor")
    if input.ndim == 0:
        return clone(input)
    (out,) = _doubling_scan((input,), d, lambda e, lt: (_logaddexp(e[0], lt[0], False),))
    return out if out is not input else clone(input)


def _cum_extreme(input, dim, is_max):
    name = "cummax" if is_max else "cummin"
    _tensor_arg(input, name, "input")
    d = normalize_dim(dim, input.ndim, name)
    result = _ValuesIndices.named("cummax" if is_max else "cummin")
    if input.ndim == 0:
        return result((clone(input), full((), 0, dtype=dtypes.int64, device=input.device)))
    v = input.detach()
    if v.dtype.category == BOOL:
        v = cast(v, dtypes.uint8)
    n = v.shape[d]
    shape = [1] * v.ndim
    shape[d] = n
    i = expand(reshape(arange(n, device=v.device), shape), v.shape)

    def combine(early, late):
        (ve, ie), (vl, il) = early, late
        better = (vl >= ve) if is_max else (vl <= ve)
        if v.dtype.category == FLOAT:  # NaN wins, and the latest NaN (as PyTorch)
            better = better | vl.isnan()
        return where(better, vl, ve), where(better, il, ie)

    _, idx = _doubling_scan((v, i), d, combine)
    if idx is i:
        idx = clone(i)
    return result((gather(input, d, idx), idx))


def cummax(input, dim):
    """Running maximum along ``dim``: ``(values, indices)``; ties take the latest index
    and a NaN, once seen, propagates (as PyTorch). Gradients flow to the chosen
    elements."""
    return _cum_extreme(input, dim, True)


def cummin(input, dim):
    """Running minimum along ``dim``: ``(values, indices)`` (latest index on ties; NaN
    propagates)."""
    return _cum_extreme(input, dim, False)

