"""Indexing ops: ``gather``, ``scatter``, ``scatter_add``, ``index``, ``index_put``.

``gather``/``scatter`` map to GatherElements/ScatterElements. Advanced indexing with one
index tensor and full slices elsewhere is a plain ``Gather``; every other key (several
index tensors, ints, strided slices, NumPy's rule for where broadcast index dims go) is
lowered generally: each dim's coordinates are broadcast into the result's layout and
combined into flat positions, then one Gather (read) or ScatterElements (write) on the
flattened tensor does the work. An accumulating write (``scatter_add``, ``index_put`` with
``accumulate=True``) below opset 16 goes through :mod:`.scatter_compat`.
"""

from __future__ import annotations

import numpy as np

from framework import dtypes
from framework.ops.indexing import TensorSlot
from framework.ops.shapes import broadcast_many, prod

from . import lowering
from .context import static_int
from .elementwise import narrowed
from .scatter_compat import scatter_elements

_HALF = (dtypes.float16, dtypes.bfloat16)


def _int64(ctx, value):
    name = ctx.name_of(value)
    return name if value.dtype is dtypes.int64 else ctx.cast(name, dtypes.int64)


@lowering("gather")
def _gather(ctx, node):
    x, index = node.inputs
    if not x.shape:
        return [ctx.name_of(x)]  # same values: no node
    return [ctx.emit("GatherElements", [ctx.name_of(x), _int64(ctx, index)],
                     axis=node.attrs["dim"])]


def _scatter_rule(reduction):
    def lower(ctx, node):
        x, index, src = node.inputs
        dt = x.dtype
        cd = dtypes.float32 if dt in _HALF else dt  # ORT: no half Expand/reductions
        idx = _int64(ctx, index)
        xn = ctx.name_of(x)
        if cd is not dt:
            xn = ctx.cast(xn, cd)
        if isinstance(src, (bool, int, float)):
            s = ctx.emit("Expand", [ctx.scalar(src, cd), ctx.emit("Shape", [idx])])
        else:
            s = ctx.name_of(src)
            if cd is not dt:
                s = ctx.cast(s, cd)
            if tuple(src.shape) != tuple(index.shape):  # eager uses src[:index.shape]
                nd = len(index.shape)
                s = ctx.emit("Slice", [s, ctx.ints([0] * nd), ctx.emit("Shape", [idx]),
                                       ctx.ints(range(nd))])
        out = scatter_elements(ctx, xn, idx, s, node.attrs["dim"], reduction, x.shape,
                               index.shape, cd)
        return [narrowed(ctx, out, cd, dt)]
    return lower


lowering("scatter")(_scatter_rule(None))
lowering("scatter_add")(_scatter_rule("add"))


# ---------------------------------------------------------------------------------------
# advanced indexing
def _full_key(key, ndim):
    return list(key) + [slice(None)] * (ndim - len(key))


def _is_advanced(k):
    return isinstance(k, (TensorSlot, int)) and not isinstance(k, bool)


def _slice_range(k: slice, size):
    """(start, stop, step, length) of a slice over a dim (ints, or sympy when dynamic)."""
    bounds = (k.start, k.stop, k.step)
    if static_int(size) is not None and all(v is None or static_int(v) is not None
                                            for v in bounds):  # not ``cache[:bsz]``, bsz dynamic
        a, b, c = k.indices(static_int(size))
        return a, b, c, len(range(a, b, c))
    import sympy
    a = 0 if k.start is None else (k.start + size if k.start < 0 else k.start)
    b = size if k.stop is None else (k.stop + size if k.stop < 0 else sympy.Min(k.stop, size))
    c = k.step or 1
    return a, b, c, sympy.Max(0, sympy.ceiling((b - a) / c))


class _Layout:
    """Where each input dim's coordinates land in the result of ``x[key]`` (NumPy rules:
    broadcast index dims replace the indexed dims when those are adjacent, else go first)."""

    def __init__(self, shape, key, index_values):
        self.shape = tuple(shape)
        self.key = _full_key(key, len(shape))
        self.adv = [d for d, k in enumerate(self.key) if _is_advanced(k)]
        shapes = [tuple(index_values[k.i].shape) if isinstance(k, TensorSlot) else ()
                  for k in (self.key[d] for d in self.adv)]
        self.bshape = broadcast_many(shapes, "index") if shapes else ()
        nb = len(self.bshape)
        slices = [d for d in range(len(shape)) if d not in self.adv]
        adjacent = self.adv == list(range(self.adv[0], self.adv[-1] + 1)) if self.adv else True
        if adjacent and self.adv:
            before = [d for d in slices if d < self.adv[0]]
            after = [d for d in slices if d > self.adv[-1]]
        else:
            before, after = [], slices
        self.layout = [("s", d) for d in before] + [("b", j) for j in range(nb)] + \
            [("s", d) for d in after]
        self.b0 = len(before)
        self.ranges = {d: _slice_range(self.key[d], shape[d]) for d in slices}

    @property
    def rank(self):
        return len(self.layout)

    def result_shape(self):
        return tuple(self.ranges[i][3] if kind == "s" else self.bshape[i]
                     for kind, i in self.layout)


def _slice_coord(ctx, lay, d):
    a, b, c, _ = lay.ranges[d]
    if all(static_int(v) is not None for v in (a, b, c)):
        iota = ctx.const(np.arange(static_int(a), static_int(b), static_int(c), dtype=np.int64),
                         "iota")
    else:
        one = [ctx.emit("Reshape", [ctx.dim(v), ctx.ints([])]) for v in (a, b, c)]
        iota = ctx.emit("Range", one)
    p = lay.layout.index(("s", d))
    axes = [i for i in range(lay.rank) if i != p]
    return ctx.emit("Unsqueeze", [iota, ctx.ints(axes)]) if axes else iota


def _index_coord(ctx, lay, d, index_values):
    k = lay.key[d]
    size = lay.shape[d]
    if isinstance(k, TensorSlot):
        t = index_values[k.i]
        name, tnd = _int64(ctx, t), len(t.shape)
    else:
        name, tnd = ctx.const(np.array(k, np.int64), "index"), 0
    size_name = ctx.scalar(static_int(size), dtypes.int64) if static_int(size) is not None \
        else ctx.emit("Reshape", [ctx.dim(size), ctx.ints([])])
    neg = ctx.emit("Less", [name, ctx.scalar(0, dtypes.int64)])
    name = ctx.emit("Where", [neg, ctx.emit("Add", [name, size_name]), name])
    nb = len(lay.bshape)
    first = lay.b0 + nb - tnd
    axes = list(range(first)) + list(range(lay.b0 + nb, lay.rank))
    return ctx.emit("Unsqueeze", [name, ctx.ints(axes)]) if axes else name


def flat_positions(ctx, lay, index_values):
    """int64 tensor (broadcasting to the result shape): flat offsets into ``x``."""
    total = None
    for d in range(len(lay.shape)):
        coord = _slice_coord(ctx, lay, d) if d not in lay.adv else \
            _index_coord(ctx, lay, d, index_values)
        stride = prod(lay.shape[d + 1:])
        if static_int(stride) != 1:
            s = ctx.scalar(static_int(stride), dtypes.int64) if static_int(stride) is not None \
                else ctx.dim(stride)
            coord = ctx.emit("Mul", [coord, s])
        total = coord if total is None else ctx.emit("Add", [total, coord])
    return total


def _single_gather(key, ndim):
    """The dim of the only index tensor when every other key entry is a full slice."""
    full = _full_key(key, ndim)
    tens = [d for d, k in enumerate(full) if isinstance(k, TensorSlot)]
    others_full = all(k == slice(None) for d, k in enumerate(full) if d not in tens)
    return tens[0] if len(tens) == 1 and others_full else None


@lowering("index")
def _index(ctx, node):
    x, idx = node.inputs[0], node.inputs[1:]
    key = node.attrs["key"]
    d = _single_gather(key, len(x.shape))
    if d is not None:
        k = _full_key(key, len(x.shape))[d]
        return [ctx.emit("Gather", [ctx.name_of(x), _int64(ctx, idx[k.i])], axis=d)]
    lay = _Layout(x.shape, key, idx)
    pos = flat_positions(ctx, lay, idx)
    flat = ctx.emit("Reshape", [ctx.name_of(x), ctx.ints([-1])])
    # every result dim is spanned by exactly one coordinate, so the positions already
    # have the result's shape
    return [ctx.emit("Gather", [flat, pos], axis=0)]


@lowering("index_put")
def _index_put(ctx, node):
    x, v, idx = node.inputs[0], node.inputs[1], node.inputs[2:]
    key, accumulate = node.attrs["key"], node.attrs["accumulate"]
    dt = x.dtype
    cd = dtypes.float32 if dt in _HALF else dt  # ORT: no half Expand/reductions
    lay = _Layout(x.shape, key, idx)
    want = ctx.shape_of(lay.result_shape())
    pos = ctx.emit("Reshape", [ctx.emit("Expand", [flat_positions(ctx, lay, idx), want]),
                               ctx.ints([-1])])
    val = ctx.value(v, cd) if not hasattr(v, "dtype") else ctx.name_of(v)
    if hasattr(v, "dtype") and cd is not dt:
        val = ctx.cast(val, cd)
    val = ctx.emit("Reshape", [ctx.emit("Expand", [val, want]), ctx.ints([-1])])
    xn = ctx.name_of(x)
    if cd is not dt:
        xn = ctx.cast(xn, cd)
    flat = ctx.emit("Reshape", [xn, ctx.ints([-1])])
    out = scatter_elements(ctx, flat, pos, val, 0, "add" if accumulate else None,
                           (prod(x.shape),), (prod(lay.result_shape()),), cd)
    out = ctx.emit("Reshape", [out, ctx.emit("Shape", [ctx.name_of(x)])])
    return [narrowed(ctx, out, cd, dt)]
