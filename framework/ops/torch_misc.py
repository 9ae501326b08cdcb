"""Reductions, splitting, stacking and small utilities from PyTorch's top level.

count_nonzero, nansum, nanmean, aminmax, isin, tensor_split, hsplit, vsplit, dsplit,
atleast_1d/2d/3d, dstack, column_stack, row_stack, diagflat, unravel_index, renorm and
is_nonzero are composites of the registered ops (autograd, ``fw.compile`` and ONNX come
from the parts). ``histogram`` has data-dependent bin edges: it is computed on the host
like ``histc`` (a graph break under ``fw.compile``; not differentiable, as in PyTorch).
"""

from __future__ import annotations

import math
from collections import namedtuple
from numbers import Number

import numpy as np

from .. import dtypes
from .._state import tls
from ..dtypes import FLOAT, INT
from ..errors import ArgumentError, DTypeError, FwIndexError, FwTypeError, ShapeError
from ..tensor import Tensor
from .indexing import _host_tensor
from .math_extra import diag_embed
from .movement import cat, narrow, reshape, vstack
from .pointwise import binary, cast, where
from .reduce import amax, amin, norm
from .reduce import sum as _sum
from .shapes import normalize_dim, normalize_dims

__all__ = ["count_nonzero", "nansum", "nanmean", "aminmax", "isin", "tensor_split", "hsplit",
           "vsplit", "dsplit", "atleast_1d", "atleast_2d", "atleast_3d", "dstack",
           "column_stack", "row_stack", "diagflat", "unravel_index", "histogram",
           "histogramdd", "renorm", "is_nonzero"]
METHODS = """count_nonzero nansum nanmean aminmax tensor_split hsplit vsplit dsplit diagflat
histogram renorm is_nonzero"""
INPLACE_METHODS = "renorm"

AminmaxResult = namedtuple("aminmax", ["min", "max"])
HistogramResult = namedtuple("histogram", ["hist", "bin_edges"])
HistogramddResult = namedtuple("histogramdd", ["hist", "bin_edges"])


def _tensor(x, op, name="input"):
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{op}(): argument '{name}' must be a Tensor, not {type(x).__name__}")
    return x


def _eager(*ts) -> bool:
    return tls.tracer is None and all(t._data is not None for t in ts)


# ---------------------------------------------------------------------------------------
# reductions
def count_nonzero(input, dim=None):
    """Number (int64) of non-zero values over ``dim`` (an int, a tuple, or all dims)."""
    return _sum(_tensor(input, "count_nonzero") != 0, dim)


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum treating NaN as zero (the gradient is 0 at the NaNs)."""
    x = _tensor(input, "nansum")
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    if x.dtype.category == FLOAT:
        x = where(x.isnan(), 0.0, x)
    return _sum(x, dim, keepdim)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean of the non-NaN values (NaN where every value is NaN). Floating tensors."""
    x = _tensor(input, "nanmean")
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    if x.dtype.category != FLOAT:
        raise DTypeError(f"nanmean(): expected input to have floating point dtype but got "
                         f"{x.dtype.name}")
    keep = ~x.isnan()
    total = _sum(where(keep, x, 0.0), dim, keepdim)
    return total / cast(_sum(keep, dim, keepdim), total.dtype)


def aminmax(input, *, dim=None, keepdim=False):
    """``(min, max)`` (a named tuple) over ``dim`` or all elements; NaN propagates."""
    x = _tensor(input, "aminmax")
    dims = normalize_dims(dim, x.ndim, "aminmax")
    for d in dims:
        if x.shape[d] == 0:
            raise ShapeError(f"aminmax(): cannot compute aminmax over an empty dimension as "
                             f"the operation has no identity (dim {d} of shape "
                             f"{list(x.shape)})")
    if x.numel() == 0 and not dims:
        raise ShapeError("aminmax(): cannot compute aminmax of an empty tensor")
    return AminmaxResult(amin(x, dim, keepdim), amax(x, dim, keepdim))


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """True where an element of ``elements`` is among ``test_elements`` (either may be a
    number, not both); ``invert`` negates. Compares every pair (memory ``O(N * M)``), so
    it is captured whole by ``fw.compile``."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise FwTypeError("isin(): expected at least one of elements and test_elements to be "
                          "a Tensor")
    if not isinstance(test_elements, Tensor):
        hit = elements == test_elements
    elif not isinstance(elements, Tensor):
        hit = (reshape(test_elements, -1) == elements).any().reshape(())
    else:
        flat = reshape(test_elements, -1)
        hit = (elements.unsqueeze(-1) == flat).any(-1)
    return ~hit if invert else hit


# ---------------------------------------------------------------------------------------
# splitting and stacking
def _split_points(spec, size, op):
    """Boundaries ``[0, i1, ..., size]`` of the pieces, from a section count or indices."""
    if isinstance(spec, Tensor):
        if spec.dtype.category != INT:
            raise DTypeError(f"{op}(): tensor_indices_or_sections must be an int64 tensor, "
                             f"got {spec.dtype.name}")
        if spec.ndim > 1:
            raise ShapeError(f"{op}(): tensor_indices_or_sections must be a zero-dimensional "
                             f"or one-dimensional tensor, but got a tensor with {spec.ndim} "
                             f"dims")
        spec = int(spec.item()) if spec.ndim == 0 else [int(v) for v in spec.tolist()]
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        n = int(spec)
        if n <= 0:
            raise ArgumentError(f"{op}(): number of sections must be larger than 0, got {n}")
        q, r = divmod(size, n)
        pts, at = [0], 0
        for i in range(n):
            at += q + (1 if i < r else 0)
            pts.append(at)
        return pts
    if isinstance(spec, (list, tuple)):
        return [0] + [int(v) for v in spec] + [size]
    raise FwTypeError(f"{op}(): indices_or_sections must be an int, a list of ints or a "
                      f"tensor, got {type(spec).__name__}")


def tensor_split(input, indices_or_sections, dim=0):
    """Views of ``input`` split along ``dim``: into ``n`` nearly equal parts (the first
    ``size % n`` one larger), or at the given indices (Python slice rules: out-of-range
    indices clip, a decreasing pair gives an empty piece)."""
    _tensor(input, "tensor_split")
    if input.ndim == 0:
        raise ShapeError("tensor_split(): expected at least a 1-dimensional tensor, but got "
                         "a tensor with 0 dims")
    d = normalize_dim(dim, input.ndim, "tensor_split")
    size = input.shape[d]
    pts = _split_points(indices_or_sections, size, "tensor_split")
    out = []
    for lo, hi in zip(pts[:-1], pts[1:]):
        start, stop, _ = slice(lo, hi).indices(size)
        out.append(narrow(input, d, start, max(0, stop - start)))
    return tuple(out)


def _dim_split(input, spec, dim, min_ndim, op):
    _tensor(input, op)
    if input.ndim < min_ndim:
        raise ShapeError(f"{op}(): requires a tensor with at least {min_ndim} dimension(s), "
                         f"but got a tensor with {input.ndim} dimensions")
    if isinstance(spec, int) and not isinstance(spec, bool) and spec > 0 and \
            input.shape[dim] % spec:
        raise ArgumentError(f"{op}(): the size of dimension {dim} ({input.shape[dim]}) is not "
                            f"divisible by the split size {spec}")
    return tensor_split(input, spec, dim)


def hsplit(input, indices_or_sections):
    """Split along dim 1 (dim 0 for 1-D tensors); an int must divide that size."""
    _tensor(input, "hsplit")
    return _dim_split(input, indices_or_sections, 1 if input.ndim > 1 else 0, 1, "hsplit")


def vsplit(input, indices_or_sections):
    """Split along dim 0 (at least 2-D); an int must divide that size."""
    return _dim_split(input, indices_or_sections, 0, 2, "vsplit")


def dsplit(input, indices_or_sections):
    """Split along dim 2 (at least 3-D); an int must divide that size."""
    return _dim_split(input, indices_or_sections, 2, 3, "dsplit")


def _atleast(tensors, n, op):
    single = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    ts = tensors[0] if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) \
        else tensors
    out = []
    for i, t in enumerate(ts):
        _tensor(t, op, f"tensors[{i}]")
        if t.ndim >= n:
            out.append(t)
        elif n == 3 and t.ndim == 2:
            out.append(t.unsqueeze(-1))
        elif n == 3 and t.ndim == 1:
            out.append(reshape(t, (1, -1, 1)))
        else:
            out.append(reshape(t, (1,) * (n - t.ndim) + tuple(t.shape)))
    return out[0] if single else tuple(out)


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (0-D becomes shape (1,)); one tensor in, one out."""
    return _atleast(tensors, 1, "atleast_1d")


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims (a 1-D tensor becomes a row ``(1, n)``)."""
    return _atleast(tensors, 2, "atleast_2d")


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims (``(n,)`` -> ``(1, n, 1)``, ``(m, n)`` ->
    ``(m, n, 1)``, as NumPy)."""
    return _atleast(tensors, 3, "atleast_3d")


def _non_empty(tensors, op):
    ts = list(tensors)
    if not ts:
        raise ArgumentError(f"{op}(): expects a non-empty list of tensors")
    return ts


def dstack(tensors):
    """Concatenate depth-wise (dim 2) after ``atleast_3d``."""
    # the list as one argument: atleast_3d(t) of a single tensor returns it bare
    return cat(atleast_3d(_non_empty(tensors, "dstack")), 2)


def column_stack(tensors):
    """Stack as columns: 0-D/1-D tensors become ``(n, 1)`` columns, then concatenate along
    dim 1."""
    ts = [reshape(t, (-1, 1)) if _tensor(t, "column_stack").ndim < 2 else t
          for t in _non_empty(tensors, "column_stack")]
    return cat(ts, 1)


def row_stack(tensors):
    """Alias of :func:`framework.vstack`."""
    return vstack(atleast_2d(_non_empty(tensors, "row_stack")))


def diagflat(input, offset=0):
    """A 2-D matrix with the flattened ``input`` on its ``offset``-th diagonal."""
    return diag_embed(reshape(_tensor(input, "diagflat"), -1), offset, 0, 1)


def unravel_index(indices, shape):
    """Coordinates (a tuple of int64 tensors shaped like ``indices``) of flat ``indices``
    in a tensor of ``shape``; negative indices count from the end."""
    op = "unravel_index"
    if isinstance(indices, (int, np.integer)) and not isinstance(indices, bool):
        from ..creation import tensor
        indices = tensor(int(indices))
    _tensor(indices, op, "indices")
    if indices.dtype.category != INT:
        raise DTypeError(f"{op}(): expected 'indices' to be an integer tensor, but got "
                         f"{indices.dtype.name}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ArgumentError(f"{op}(): 'shape' must be a sequence of non-negative ints, "
                                f"got {list(shape)}")
    total = math.prod(shape)
    if _eager(indices) and indices.numel():
        lo, hi = int(indices.min().item()), int(indices.max().item())
        if lo < -total or hi >= total:
            raise FwIndexError(f"{op}(): 'indices' must be in range [{-total}, {total - 1}] "
                               f"for shape {list(shape)}, got {lo if lo < -total else hi}")
    flat = cast(indices, dtypes.int64)
    flat = where(flat < 0, flat + total, flat)
    out, stride = [], total
    for s in shape:
        stride = stride // s if s else 0
        q = binary("floor_divide", flat, stride) if stride else flat * 0
        out.append(binary("remainder", q, s) if s else q)
    return tuple(out)


def renorm(input, p, dim, maxnorm):
    """Each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` scaled down to norm
    ``maxnorm`` (by ``maxnorm / (norm + 1e-7)``, as PyTorch); the others unchanged."""
    op = "renorm"
    x = _tensor(input, op)
    if x.dtype.category != FLOAT:
        raise DTypeError(f"{op}(): expected a floating-point tensor, got {x.dtype.name}")
    if isinstance(p, bool) or not isinstance(p, Number) or p <= 0:
        raise ArgumentError(f"{op}(): non-positive norm p={p!r} is not supported")
    if isinstance(maxnorm, bool) or not isinstance(maxnorm, Number) or maxnorm < 0:
        raise ArgumentError(f"{op}(): expected maxnorm to be >= 0 but got {maxnorm!r}")
    if x.ndim == 0:
        raise ShapeError(f"{op}(): input needs at least 1 dimension")
    d = normalize_dim(dim, x.ndim, op)
    others = tuple(i for i in range(x.ndim) if i != d)
    n = norm(x, p, others, keepdim=True) if others else x.abs()  # 1-D: one-element slices
    factor = where(n > maxnorm, maxnorm / (n + 1e-7), 1.0)
    return x * factor


def is_nonzero(input):
    """``bool(input)`` for a one-element tensor; an error for any other size."""
    _tensor(input, "is_nonzero")
    if input.numel() != 1:
        what = "no values" if input.numel() == 0 else "more than one value"
        raise ArgumentError(f"is_nonzero(): Boolean value of Tensor with {what} is ambiguous")
    return bool(input)


# ---------------------------------------------------------------------------------------
# histogram: the bin edges depend on the data, so it is computed on the host
def _host_float(t, op):
    arr = np.asarray(t.detach()._host_array(f"{op}()"))
    return arr.astype(np.float64) if t.dtype.itemsize == 2 else arr


def histogram(input, bins=100, *, range=None, weight=None, density=False):  # noqa: A002
    """``(hist, bin_edges)``: counts (or summed ``weight``) of ``input``'s elements in
    ``bins`` equal-width bins over ``range`` (default: the data's min and max, widened by
    0.5 each side when they are equal), or in the bins between the edges of a 1-D
    increasing tensor ``bins``. Each bin holds ``[left, right)``, the last one also its
    right edge; values outside are ignored. ``density`` normalizes to unit integral.
    Floating tensors; eager only (a graph break under ``fw.compile``)."""
    op = "histogram"
    _tensor(input, op)
    dt = input.dtype
    if dt.category != FLOAT:
        raise DTypeError(f"{op}(): expected a floating-point input, got {dt.name}")
    x = _host_float(input, op).reshape(-1)
    w = _host_weight(weight, input.shape, dt, op)
    if isinstance(bins, Tensor):
        if range is not None:
            raise ArgumentError(f"{op}(): range cannot be given with a tensor of bin edges")
        if bins.ndim != 1 or bins.numel() < 1:
            raise ShapeError(f"{op}(): bins tensor should have one dimension and at least 1 "
                             f"element, got shape {list(bins.shape)}")
        if bins.dtype is not dt:
            raise DTypeError(f"{op}(): bins should have the same dtype as input, got "
                             f"{bins.dtype.name} and {dt.name}")
        edges = _host_float(bins, op)
        if np.any(np.diff(edges) < 0):
            raise ArgumentError(f"{op}(): bin edges must increase monotonically, got "
                                f"{edges.tolist()}")
    else:
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins <= 0:
            raise ArgumentError(f"{op}(): bins must be a positive int or a 1-D tensor of "
                                f"edges, got {bins!r}")
        edges = _linear_edges(x, int(bins), range, dt, op)
    hist, _ = np.histogram(x, bins=edges, weights=w) if edges.size > 1 else \
        (np.zeros(0), edges)
    hist = hist.astype(np.float64)
    if density and edges.size > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            hist = hist / (hist.sum() * np.diff(edges))
    dev = input.device
    return HistogramResult(_host_tensor(np.ascontiguousarray(hist.astype(dt.np)), dt, dev),
                           _host_tensor(np.ascontiguousarray(edges.astype(dt.np)), dt, dev))


def _host_weight(weight, shape, dt, op):
    """``weight`` as a flat host array after the shape and dtype checks (None stays None)."""
    if weight is None:
        return None
    _tensor(weight, op, "weight")
    if tuple(weight.shape) != tuple(shape):
        raise ShapeError(f"{op}(): weight should have the shape {list(shape)}, got "
                         f"{list(weight.shape)}")
    if weight.dtype is not dt:
        raise DTypeError(f"{op}(): weight should have the same dtype as input, got "
                         f"{weight.dtype.name} and {dt.name}")
    return _host_float(weight, op).reshape(-1)


def histogramdd(input, bins=10, *, range=None, weight=None, density=False):  # noqa: A002
    """``(hist, bin_edges)`` of the points in ``input`` (shape ``(..., D)``: the last dim
    holds each point's D coordinates) over a D-dimensional grid of bins: ``bins`` is an
    int (that many equal-width bins per dim), a sequence of D ints, or a sequence of D
    increasing 1-D tensors of edges; ``range`` is the flat sequence ``[min_0, max_0, ...,
    min_D-1, max_D-1]`` for int bins (default: each dim's data range). ``weight`` has
    shape ``input.shape[:-1]``. Bins hold ``[left, right)``, the last one also its right
    edge, as :func:`histogram`. Floating tensors; eager only."""
    op = "histogramdd"
    _tensor(input, op)
    dt = input.dtype
    if dt.category != FLOAT:
        raise DTypeError(f"{op}(): expected a floating-point input, got {dt.name}")
    if input.ndim < 2:
        raise ShapeError(f"{op}(): input tensor should have at least 2 dimensions, but got "
                         f"{input.ndim}")
    dims = input.shape[-1]
    points = _host_float(input, op).reshape(-1, dims)
    w = _host_weight(weight, input.shape[:-1], dt, op)
    if isinstance(bins, (list, tuple)) and bins and all(isinstance(b, Tensor) for b in bins):
        if range is not None:
            raise ArgumentError(f"{op}(): range cannot be given with tensors of bin edges")
        if len(bins) != dims:
            raise ArgumentError(f"{op}(): expected {dims} sequences of bin edges for each "
                                f"dimension, but got {len(bins)}")
        edges = []
        for d, b in enumerate(bins):
            if b.ndim != 1 or b.numel() < 1 or b.dtype is not dt:
                raise ShapeError(f"{op}(): bins[{d}] should be a 1-D {dt.name} tensor with "
                                 f"at least 1 element, got {b.dtype.name} shape "
                                 f"{list(b.shape)}")
            e = _host_float(b, op)
            if np.any(np.diff(e) < 0):
                raise ArgumentError(f"{op}(): bin edges of dim {d} must increase "
                                    f"monotonically, got {e.tolist()}")
            edges.append(e)
    else:
        counts = [bins] * dims if isinstance(bins, (int, np.integer)) else list(bins)
        if len(counts) != dims or any(isinstance(n, bool) or not isinstance(
                n, (int, np.integer)) or n <= 0 for n in counts):
            raise ArgumentError(f"{op}(): bins must be a positive int, {dims} positive ints "
                                f"or {dims} tensors of edges, got {bins!r}")
        if range is not None and len(range) != 2 * dims:
            raise ArgumentError(f"{op}(): range should have {2 * dims} elements (a min and a "
                                f"max per dim), but got {len(range)}")
        edges = [_linear_edges(points[:, d], int(n), None if range is None else
                               (range[2 * d], range[2 * d + 1]), dt, op)
                 for d, n in enumerate(counts)]
    hist, _ = np.histogramdd(points, bins=edges, weights=w, density=density)
    dev = input.device
    return HistogramddResult(
        _host_tensor(np.ascontiguousarray(hist.astype(dt.np)), dt, dev),
        [_host_tensor(np.ascontiguousarray(e.astype(dt.np)), dt, dev) for e in edges])


def _linear_edges(x, bins, rng, dt, op):
    """``bins + 1`` equal-width edges over ``rng`` or the data's range, in ``dt``."""
    if rng is not None:
        if not isinstance(rng, (tuple, list)) or len(rng) != 2:
            raise ArgumentError(f"{op}(): range must be a pair (min, max), got {rng!r}")
        lo, hi = float(rng[0]), float(rng[1])
    elif x.size:
        finite = x[np.isfinite(x)]
        if finite.size != x.size:
            raise ArgumentError(f"{op}(): range of [{x.min()}, {x.max()}] is not finite")
        lo, hi = float(x.min()), float(x.max())
    else:
        lo, hi = 0.0, 0.0
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ArgumentError(f"{op}(): range of [{lo}, {hi}] is not finite")
    if lo > hi:
        raise ArgumentError(f"{op}(): min should not exceed max, got min {lo} max {hi}")
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1).astype(dt.np).astype(x.dtype)
