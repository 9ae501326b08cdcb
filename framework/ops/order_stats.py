"""Order statistics and counting on top of the ``argsort`` op: median, kthvalue, mode,
quantile, searchsorted, unique and friends.

Nothing here is a registered op. The ops whose output shape does not depend on the data
(``median``/``nanmedian``, ``kthvalue``, ``mode``, ``quantile``/``nanquantile``, ``msort``,
``searchsorted``, ``bucketize``) are composites of public ops (``argsort``, ``gather``,
``narrow``, ``where``, ``sum``...): they get autograd (values flow back through ``gather``
to the selected elements), are captured whole by ``fw.compile`` and export to ONNX.

``unique``, ``unique_consecutive``, ``bincount`` and ``histc`` have data-dependent sizes or
bounds: they are computed on the host like ``nonzero`` (a graph break under
``fw.compile``; meta tensors raise ``GraphBreak``), and their results go back to the
input's device. They are not differentiable (as in PyTorch).

Order is the ``argsort`` order: NaN sorts as the largest value and ties keep their
original order, so among equal values the selected index is deterministic (PyTorch leaves
it unspecified): ``median``/``kthvalue`` return the first occurrence in the original order
of the selected rank, ``mode`` the last occurrence of the mode (PyTorch CPU's choice).
"""

from __future__ import annotations

import math
from numbers import Number

import numpy as np

from .. import dtypes
from ..errors import ArgumentError, DTypeError, FwIndexError, FwTypeError, ShapeError
from ..tensor import Tensor
from .creation_ops import full
from .indexing import _host_tensor, gather, scatter_add
from .movement import cat, movedim
from .pointwise import where
from .reduce import _ValuesIndices, argmax, sum as _sum
from .shapes import normalize_dim
from .sort_ops import argsort, sort

__all__ = ["median", "nanmedian", "kthvalue", "mode", "quantile", "nanquantile", "msort",
           "searchsorted", "bucketize", "unique", "unique_consecutive", "bincount", "histc"]
METHODS = ("median nanmedian kthvalue mode quantile nanquantile msort unique "
           "unique_consecutive bincount histc")  # names of __all__ that are also Tensor methods
INPLACE_METHODS = ""  # names of __all__ with an in-place Tensor method (name + "_")


# ---------------------------------------------------------------------------------------
# helpers
def _check_tensor(input, op, name="input"):
    if not isinstance(input, Tensor):
        raise FwTypeError(f"{op}(): expected a Tensor as {name}, got {type(input).__name__}")


def _check_sortable(input, op):
    _check_tensor(input, op)
    if input.dtype is dtypes.bool_:
        raise DTypeError(f"{op}(): not implemented for bool tensors (input dtype bool)")


def _flag(value, name, op):
    if not isinstance(value, (bool, int)):
        raise FwTypeError(f"{op}(): {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _int_arg(value, name, op):
    if isinstance(value, Tensor) and value.ndim == 0 and value.dtype.category == dtypes.INT:
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FwTypeError(f"{op}(): {name} must be an int, got {type(value).__name__}")
    return int(value)


def _reduce_dim(input, dim, op):
    """(input with >= 1 dim, normalized dim, whether input was 0-d); checks the dim size."""
    d = normalize_dim(dim, input.ndim, op)
    if input.ndim == 0:
        return input.reshape(1), 0, True
    n = input.shape[d]
    if isinstance(n, int) and n == 0:
        raise FwIndexError(f"{op}(): Expected reduction dim {d} to have non-zero size "
                           f"(input shape {list(input.shape)})")
    return input, d, False


def _finish(values, indices, d, keepdim, zero_d, op):
    """Drop the reduced dim (size 1) unless ``keepdim``; a 0-d input gives 0-d results.
    (A reshape, not ``squeeze``: under a dynamic dim the size-1 dim may be symbolic.)"""
    if zero_d:
        return _ValuesIndices.named(op)((values.reshape(()), indices.reshape(())))
    if not keepdim:
        shape = tuple(values.shape[:d]) + tuple(values.shape[d + 1:])
        values, indices = values.reshape(shape), indices.reshape(shape)
    return _ValuesIndices.named(op)((values, indices))


def _sym(value, like):
    """``value`` as is when it is an int; a symbolic size becomes an int64 tensor of
    ``like``'s shape (``like * 0 + value``), so integer division stays a tensor op."""
    if isinstance(value, int):
        return value
    return like * 0 + value


def _select(x, d, order, pos):
    """Values and original indices at sorted positions ``pos`` (size 1 along ``d``): an int
    for every slice, or an int64 tensor. Values are ``gather(x, ...)``: differentiable."""
    if isinstance(pos, int):
        ind = order.narrow(d, pos, 1)
    else:
        ind = gather(order, d, pos)
    return gather(x, d, ind), ind


def _median_pos(x, d, n, ignore_nan):
    """Sorted position of the (lower) median along ``d``: PyTorch's rules for NaN.

    ``median``: a slice with NaN selects its first NaN (sorted position ``n - #nan``, the
    stable sort keeps NaNs in original order). ``nanmedian``: the lower median of the
    non-NaN values, position 0 (a NaN) when every value is NaN."""
    if not x.dtype.is_floating_point:
        return (n - 1) // 2 if isinstance(n, int) else (_zeros_reduced(x, d) + (n - 1)) // 2
    num_nan = _sum(x.isnan(), d, keepdim=True)
    if ignore_nan:
        return (-num_nan + (n - 1)).clamp(min=0) // 2
    return where(num_nan > 0, -num_nan + n, _sym(n - 1, num_nan) // 2)


def _zeros_reduced(x, d):
    """An int64 tensor of ``x``'s shape with size 1 along ``d`` (for symbolic sizes)."""
    return _sum(x.narrow(d, 0, 1).isnan(), d, keepdim=True) * 0


# ---------------------------------------------------------------------------------------
# median / nanmedian / kthvalue / mode / msort
def _median(input, dim, keepdim, ignore_nan, op):
    _check_sortable(input, op)
    if dim is None and keepdim:
        dim = -1  # PyTorch: a keepdim argument selects the median(input, dim=-1) overload
    if dim is None:
        flat = input.reshape(-1)
        n = flat.shape[0]
        if isinstance(n, int) and n == 0:
            if not input.dtype.is_floating_point:
                raise ArgumentError(f"{op}(): the median of an empty {input.dtype.name} tensor "
                                    f"is undefined (a float tensor gives NaN)")
            return full((), math.nan, dtype=input.dtype, device=input.device)
        order = argsort(flat, 0)
        return _select(flat, 0, order, _median_pos(flat, 0, n, ignore_nan))[0].reshape(())
    x, d, zero_d = _reduce_dim(input, dim, op)
    order = argsort(x, d)
    values, indices = _select(x, d, order, _median_pos(x, d, x.shape[d], ignore_nan))
    return _finish(values, indices, d, keepdim, zero_d, op)


def median(input, dim=None, keepdim=False):
    """``median(input)``: the lower median of all elements (NaN if any element is NaN; NaN
    for an empty float tensor). ``median(input, dim, keepdim=False)``: ``(values, indices)``
    along ``dim``, where a slice containing NaN gives NaN and the index of its first NaN.

    For an even count the lower of the two middle values is returned (PyTorch). Among equal
    values the index of the first occurrence of the selected rank is returned. Gradients
    go to the selected element (PyTorch's whole-tensor ``median()`` spreads them evenly
    over elements equal to the median; the two agree without ties)."""
    return _median(input, dim, keepdim, False, "median")


def nanmedian(input, dim=None, keepdim=False):
    """Like :func:`median` but ignoring NaN: the lower median of the non-NaN values; a
    slice (or tensor) of only NaN gives NaN (with the index of its first NaN)."""
    return _median(input, dim, keepdim, True, "nanmedian")


def kthvalue(input, k, dim=-1, keepdim=False):
    """``(values, indices)`` of the ``k``-th smallest element (1-based) along ``dim``; NaN
    counts as the largest value. ``k`` must be in ``[1, input.size(dim)]``."""
    _check_sortable(input, "kthvalue")
    k = _int_arg(k, "k", "kthvalue")
    d = normalize_dim(dim, input.ndim, "kthvalue")
    size = input.shape[d] if input.ndim else 1
    if k < 1 or (isinstance(size, int) and k > size):
        raise FwIndexError(f"kthvalue(): selected number k={k} out of range for dimension {d} "
                           f"of size {size} (input shape {list(input.shape)}); expected "
                           f"1 <= k <= {size}")
    x = input.reshape(1) if input.ndim == 0 else input
    values, indices = _select(x, d, argsort(x, d), k - 1)
    return _finish(values, indices, d, keepdim, input.ndim == 0, "kthvalue")


def mode(input, dim=-1, keepdim=False):
    """``(values, indices)``: the most frequent value along ``dim`` (ties between values
    broken by the smallest value, as PyTorch CPU) and the index of its *last* occurrence
    in the original order (PyTorch CPU's choice). NaNs never compare equal, so each NaN
    counts once."""
    _check_tensor(input, "mode")
    x, d, zero_d = _reduce_dim(input, dim, "mode")
    n = x.shape[d]
    order = argsort(x, d)
    s = gather(x, d, order).detach()
    # ends[i]: sorted position i ends a run of equal values
    differs = s.narrow(d, 1, n - 1) != s.narrow(d, 0, n - 1)
    last = full(differs.shape[:d] + (1,) + differs.shape[d + 1:], True, dtype=dtypes.bool_,
                device=x.device)
    ends = cat([differs, last], d)
    starts = cat([last, differs], d)
    run_id = starts.to(dtypes.int64).cumsum(d) - 1  # 0-based run number at every position
    lengths = scatter_add(full(x.shape, 0, dtype=dtypes.int64, device=x.device), d, run_id,
                          full(x.shape, 1, dtype=dtypes.int64, device=x.device))
    freq = where(ends, gather(lengths, d, run_id), 0)
    pos = argmax(freq, d, keepdim=True)  # first maximum: the smallest most frequent value
    values, indices = _select(x, d, order, pos)
    return _finish(values, indices, d, keepdim, zero_d, "mode")


def msort(input):
    """``input`` sorted along its first dim (``sort(input, dim=0).values``)."""
    _check_tensor(input, "msort")
    return sort(input, dim=0).values


# ---------------------------------------------------------------------------------------
# quantile / nanquantile
_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile_q(q, input, op):
    """``q`` as a tensor of ``input``'s dtype (shape () or (Q,)) after PyTorch's checks."""
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise ShapeError(f"{op}() q must be a scalar or 1D tensor, got shape {list(q.shape)}")
        if q.dtype is not input.dtype:
            raise DTypeError(f"{op}() q tensor must be same dtype as the input tensor, got "
                             f"{q.dtype.name} and {input.dtype.name}")
        if q.device != input.device:
            raise ArgumentError(f"{op}() q tensor must be on the same device as the input "
                                f"tensor, got {q.device} and {input.device}")
        from .._state import tls
        if tls.tracer is None and q._data is not None and q.numel():
            bad = ((q < 0) | (q > 1) | q.isnan()).any().item()
            if bad:
                raise ArgumentError(f"{op}() q values must be in the range [0, 1], got "
                                    f"{q.tolist()}")
        return q
    if isinstance(q, bool) or not isinstance(q, Number):
        raise FwTypeError(f"{op}() q must be a float or a tensor, got {type(q).__name__}")
    if not 0 <= q <= 1:
        raise ArgumentError(f"{op}() q must be in the range [0, 1] but got {q}")
    return full((), float(q), dtype=input.dtype, device=input.device)


def _lerp(a, b, w):
    """``a + w * (b - a)`` as PyTorch's/NumPy's lerp (from ``b`` when ``w >= 0.5``)."""
    diff = b - a
    return where(w < 0.5, a + w * diff, b - diff * (1 - w))


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan, op):
    _check_tensor(input, op)
    if input.dtype not in (dtypes.float32, dtypes.float64):
        raise DTypeError(f"{op}() input tensor must be either float or double dtype, got "
                         f"{input.dtype.name}")
    if interpolation not in _INTERPOLATIONS:
        raise ArgumentError(f"{op}() interpolation must be one of linear, lower, higher, "
                            f"midpoint or nearest. Got {interpolation!r}")
    qt = _quantile_q(q, input, op)
    if isinstance(input.numel(), int) and input.numel() == 0:
        raise ArgumentError(f"{op}() input tensor must be non-empty (input shape "
                            f"{list(input.shape)})")
    # output shape (without the q dim), and the values to reduce moved to the last dim
    if dim is not None and input.ndim:
        d = normalize_dim(dim, input.ndim, op)
        out_shape = list(input.shape)
        if keepdim:
            out_shape[d] = 1
        else:
            del out_shape[d]
        x = movedim(input, d, -1)
    else:
        if dim is not None:
            normalize_dim(dim, input.ndim, op)
        out_shape = [1] * input.ndim if keepdim else []
        x = input.reshape(-1)
    sorted_x = sort(x, dim=-1).values
    rest, n = tuple(sorted_x.shape[:-1]), sorted_x.shape[-1]
    nq = qt.shape[0] if qt.ndim else 1
    qv = qt.reshape((nq,) + (1,) * (len(rest) + 1))  # (Q, 1, ..., 1)
    if ignore_nan:
        count = _sum(~sorted_x.isnan(), -1, keepdim=True)  # non-NaN values per slice
        ranks = qv * (count - 1).to(input.dtype)
        ranks = where(ranks < 0, 0.0, ranks)  # all NaN: rank 0, a NaN
    else:
        if isinstance(n, int):
            last = float(n - 1)
        else:  # a dynamic size: n - 1 as a tensor computed from the data
            last = _sym(n - 1, _zeros_reduced(sorted_x, -1)).to(input.dtype)
        ranks = qv * last
        has_nan = sorted_x.narrow(-1, n - 1, 1).isnan()  # NaN sorts last
        ranks = where(has_nan, last, ranks)
    shape = (nq,) + rest + (1,)
    ranks = ranks.expand(shape)
    if interpolation == "lower":
        ranks = ranks.floor()
    elif interpolation == "higher":
        ranks = ranks.ceil()
    elif interpolation == "nearest":
        ranks = ranks.round()  # half to even, as torch.round
    expanded = sorted_x.unsqueeze(0).expand((nq,) + tuple(sorted_x.shape))
    below = ranks.to(dtypes.int64)
    result = gather(expanded, -1, below)
    if interpolation in ("linear", "midpoint"):
        above = gather(expanded, -1, ranks.ceil().to(dtypes.int64))
        if interpolation == "linear":
            weights = ranks - below.to(input.dtype)
        else:
            weights = full((), 0.5, dtype=input.dtype, device=input.device)
        result = _lerp(result, above, weights)
    result = result.reshape([nq] + out_shape)
    return result if qt.ndim else result.reshape(out_shape)


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The ``q``-th quantiles of ``input`` (all elements, or along ``dim``).

    ``q`` is a float or a 0-d/1-D tensor of ``input``'s dtype with values in ``[0, 1]``;
    a 1-D ``q`` adds a leading dim of size ``len(q)`` to the result. ``interpolation``
    (between the two sorted values around rank ``q * (n - 1)``) is one of ``linear``,
    ``lower``, ``higher``, ``midpoint`` or ``nearest`` (rounds half to even). A slice with
    NaN gives NaN. ``input`` must be float32 or float64 and non-empty."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """Like :func:`quantile` but ignoring NaN values (the ranks count only the non-NaN
    values of each slice); a slice of only NaN gives NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


# ---------------------------------------------------------------------------------------
# searchsorted / bucketize
def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """Indices where ``values`` would be inserted into the innermost dim of
    ``sorted_sequence`` to keep it sorted (``right``/``side='right'``: after equal elements).

    ``sorted_sequence`` is 1-D (any ``values`` shape) or N-D with ``values`` sharing all
    but its last dim; ``values`` may be a Python number (1-D sequence; 0-d result).
    ``sorter`` (int64, the sequence's shape) are indices that sort an unsorted sequence.
    NaN values insert at the end. The result is int64 (``out_int32``: int32). Computed by
    comparing every value with every sequence element (``O(n*m)`` memory, exact and
    capturable)."""
    op = "searchsorted"
    _check_tensor(sorted_sequence, op, "sorted_sequence")
    if sorted_sequence.ndim == 0:
        raise ShapeError(f"{op}(): boundaries tensor should have positive dimension, but got 0 "
                         f"dimension")
    out_int32 = _flag(out_int32, "out_int32", op)
    right = _flag(right, "right", op)
    if side is not None:
        if side not in ("left", "right"):
            raise ArgumentError(f"{op}(): side can only be 'left' or 'right' but got {side!r}")
        if right and side == "left":
            raise ArgumentError(f"{op}(): side and right can't be set to opposites, got side "
                                f"of left while right was True")
        right = side == "right"
    seq = sorted_sequence
    if sorter is not None:
        _check_tensor(sorter, op, "sorter")
        if sorter.dtype is not dtypes.int64:
            raise DTypeError(f"{op}(): sorter must be a tensor of long dtype but got dtype "
                             f"{sorter.dtype.name}")
        if tuple(sorter.shape) != tuple(seq.shape):
            raise ShapeError(f"{op}(): boundary and sorter must have the same size, but got "
                             f"boundary tensor {list(seq.shape)} and got sorter tensor "
                             f"{list(sorter.shape)}")
        seq = gather(seq, -1, sorter)
    if isinstance(values, Tensor):
        if seq.ndim > 1 and (values.ndim != seq.ndim or
                             tuple(values.shape[:-1]) != tuple(seq.shape[:-1])):
            raise ShapeError(f"{op}(): boundaries tensor should be 1 dimension or the first N-1 "
                             f"dimensions of boundaries tensor and input value tensor must "
                             f"match, but we got boundaries tensor {list(seq.shape)} and input "
                             f"value tensor {list(values.shape)}")
        v = values.unsqueeze(-1)
        s = seq.unsqueeze(-2) if seq.ndim > 1 else seq
    elif isinstance(values, Number) and not isinstance(values, bool):
        if seq.ndim != 1:
            raise ShapeError(f"{op}(): input value can be a scalar only when boundaries tensor "
                             f"dimension is 1, but we got boundaries tensor dim("
                             f"{seq.ndim}) and input value's dim(0) numel(1)")
        v, s = values, seq
    else:
        raise FwTypeError(f"{op}(): values must be a Tensor or a number, got "
                          f"{type(values).__name__}")
    # left: #{s : not s >= v}; right: #{s : not s > v} (a NaN value counts every element)
    before = ~(s > v) if right else ~(s >= v)
    out = _sum(before, -1)
    return out.to(dtypes.int32) if out_int32 else out


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """Index of the bucket of each element of ``input`` given 1-D sorted ``boundaries``:
    ``boundaries[i-1] < x <= boundaries[i]`` (``right=True``: ``boundaries[i-1] <= x <
    boundaries[i]``), i.e. ``searchsorted(boundaries, input, right=right)``."""
    _check_tensor(boundaries, "bucketize", "boundaries")
    if boundaries.ndim != 1:
        raise ShapeError(f"bucketize(): boundaries tensor must be 1 dimension, but got dim("
                         f"{boundaries.ndim})")
    if not isinstance(input, (Tensor, Number)) or isinstance(input, bool):
        raise FwTypeError(f"bucketize(): input must be a Tensor or a number, got "
                          f"{type(input).__name__}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


# ---------------------------------------------------------------------------------------
# data-dependent sizes: computed on the host (a graph break under fw.compile)
def _host(input, op):
    """``input``'s data as a NumPy array (float16/bfloat16 widened exactly to float64)."""
    arr = np.asarray(input._host_array(f"{op}()"))
    if input.dtype in (dtypes.float16, dtypes.bfloat16):
        arr = arr.astype(np.float64)
    return arr


def _unique_rows(rows, consecutive):
    """Unique rows of a 2-D array (lexicographic order, or runs of equal consecutive rows):
    ``(rows, inverse, counts)``. Rows compare with ``!=``, so NaNs are never equal."""
    n = rows.shape[0]
    if consecutive or n == 0:
        order = np.arange(n)
    elif rows.shape[1] == 1:
        order = np.argsort(rows[:, 0], kind="stable")
    else:
        order = np.lexsort(rows.T[::-1])  # column 0 is the primary key
    srt = rows[order]
    new = np.ones(n, dtype=bool)
    new[1:] = np.any(srt[1:] != srt[:-1], axis=1)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, n)).astype(np.int64)
    return srt[new], inverse, counts


def _unique_impl(input, return_inverse, return_counts, dim, consecutive, op):
    _check_tensor(input, op)
    return_inverse = _flag(return_inverse, "return_inverse", op)
    return_counts = _flag(return_counts, "return_counts", op)
    arr = _host(input, op)
    npdt, dev = input.dtype.np, input.device
    if dim is None or input.ndim == 0:
        if dim is not None:
            normalize_dim(dim, input.ndim, op)
        vals, inverse, counts = _unique_rows(arr.reshape(-1, 1), consecutive)
        out = vals[:, 0]
        inverse = inverse.reshape(arr.shape)
    else:
        d = normalize_dim(dim, input.ndim, op)
        if arr.size == 0:
            zero_dims = sum(1 for s in arr.shape if s == 0)
            if zero_dims != 1:
                raise ArgumentError(f"{op}(): number of zero sized dimensions is more than one, "
                                    f"so unique cannot be applied (input shape "
                                    f"{list(arr.shape)}, dim={dim})")
            if arr.shape[d] != 0:
                raise ArgumentError(f"{op}(): there are 0 sized dimensions, and they aren't "
                                    f"selected, so unique cannot be applied (input shape "
                                    f"{list(arr.shape)}, dim={dim})")
        moved = np.moveaxis(arr, d, 0)
        rows = moved.reshape(moved.shape[0], int(np.prod(moved.shape[1:])))
        vals, inverse, counts = _unique_rows(rows, consecutive)
        out = np.moveaxis(vals.reshape((vals.shape[0],) + moved.shape[1:]), 0, d)
    result = [_host_tensor(np.ascontiguousarray(out.astype(npdt)), input.dtype, dev)]
    if return_inverse:
        result.append(_host_tensor(np.array(inverse, order="C"), dtypes.int64, dev))
    if return_counts:
        result.append(_host_tensor(counts, dtypes.int64, dev))
    return result[0] if len(result) == 1 else tuple(result)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The unique elements of ``input`` (flattened; ``dim``: the unique slices along
    ``dim``), in ascending (lexicographic for slices) order.

    Returns the tensor, or ``(output, inverse_indices?, counts?)`` when ``return_inverse``
    / ``return_counts`` ask for them: ``inverse_indices`` (int64, the input's shape, or
    ``(input.size(dim),)``) maps each element/slice to its position in ``output``.
    The output is always sorted (``sorted=False`` allows any order in PyTorch). NaNs are
    never equal to each other, so each one is kept (as PyTorch). Eager only: the size
    depends on the data (a graph break under ``fw.compile``)."""
    _flag(sorted, "sorted", "unique")
    return _unique_impl(input, return_inverse, return_counts, dim, False, "unique")


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """Collapse runs of consecutive equal elements (flattened; ``dim``: equal consecutive
    slices along ``dim``). Returns like :func:`unique`. Eager only (data-dependent size)."""
    return _unique_impl(input, return_inverse, return_counts, dim, True, "unique_consecutive")


def bincount(input, weights=None, minlength=0):
    """Count of each value of the 1-D non-negative integer tensor ``input``: a tensor of size
    ``max(max(input) + 1, minlength)``. With ``weights`` (same length) the bins sum the
    weights instead: float32 weights give float32, any other dtype float64 (PyTorch).
    Eager only (data-dependent size)."""
    op = "bincount"
    _check_tensor(input, op)
    minlength = _int_arg(minlength, "minlength", op)
    if minlength < 0:
        raise ArgumentError(f"{op}(): minlength should be >= 0, got {minlength}")
    if input.dtype.category != dtypes.INT:
        raise DTypeError(f"{op}(): only supports 1-d non-negative integral inputs, got dtype "
                         f"{input.dtype.name}")
    if input.ndim != 1:
        raise ShapeError(f"{op}(): only supports 1-d non-negative integral inputs, got shape "
                         f"{list(input.shape)}")
    if weights is not None:
        _check_tensor(weights, op, "weights")
        if weights.ndim != 1 or weights.shape[0] != input.shape[0]:
            raise ShapeError(f"{op}(): weights should be 1-d and have the same length as input, "
                             f"got weights {list(weights.shape)} and input {list(input.shape)}")
        if weights.device != input.device:
            raise ArgumentError(f"{op}(): weights must be on the input's device, got "
                                f"{weights.device} and {input.device}")
    arr = _host(input, op).astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ArgumentError(f"{op}(): only supports 1-d non-negative integral inputs, got a "
                            f"negative value {int(arr.min())}")
    size = max(int(arr.max()) + 1 if arr.size else 0, minlength)
    if weights is None:
        return _host_tensor(np.bincount(arr, minlength=size).astype(np.int64), dtypes.int64,
                            input.device)
    out_dtype = dtypes.float32 if weights.dtype is dtypes.float32 else dtypes.float64
    out = np.zeros(size, dtype=out_dtype.np)
    np.add.at(out, arr, _host(weights.detach(), op).astype(out_dtype.np))  # in order
    return _host_tensor(out, out_dtype, input.device)


def histc(input, bins=100, min=0, max=0):
    """Histogram of ``input`` (float) with ``bins`` equal-width bins over ``[min, max]``;
    ``min == max`` uses the data's minimum and maximum (a constant input widens the range
    by 1 on each side). Elements outside the range and NaN are ignored; the last bin
    includes ``max``. Same dtype as ``input``; eager only (the range can depend on data)."""
    op = "histc"
    _check_tensor(input, op)
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{op}(): input must be a floating point tensor, got {input.dtype.name}")
    bins = _int_arg(bins, "bins", op)
    if bins <= 0:
        raise ArgumentError(f"{op}(): bins must be > 0, but got {bins} for dimension 0")
    for name, v in (("min", min), ("max", max)):
        if isinstance(v, bool) or not isinstance(v, Number):
            raise FwTypeError(f"{op}(): {name} must be a number, got {type(v).__name__}")
    arr = _host(input, op).reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi and arr.size:
        lo, hi = float(arr.min()), float(arr.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ArgumentError(f"{op}(): range of [{lo}, {hi}] is not finite")
    if not lo < hi:
        raise ArgumentError(f"{op}(): max must be larger than min, got min={lo}, max={hi}")
    ct = np.float32 if input.dtype in (dtypes.float16, dtypes.bfloat16) else arr.dtype.type
    # PyTorch's rule, in the input's precision: bin = int((x - lo) * bins / (hi - lo)),
    # the right edge belongs to the last bin
    lo_t = ct(np.asarray(lo).astype(input.dtype.np))
    hi_t = ct(np.asarray(hi).astype(input.dtype.np))
    x = arr.astype(ct)
    x = x[(x >= lo_t) & (x <= hi_t)]
    pos = ((x - lo_t) * ct(bins) / (hi_t - lo_t)).astype(np.int64)
    pos = np.clip(pos, 0, bins - 1)
    counts = np.bincount(pos, minlength=bins)[:bins]
    return _host_tensor(counts.astype(input.dtype.np), input.dtype, input.device)
