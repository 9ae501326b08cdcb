"""``ScatterElements`` with a reduction at any supported opset.

The ``reduction`` attribute is new in opset 16 (``add``, ``mul``) and 18 (``max``,
``min``). Before that, :func:`scatter_elements` emits an exact equivalent built from
opset-11 ops: the updates' flat positions in the data are sorted (a stable ``TopK``, so
duplicates keep their order), each update learns its rank among the updates of the same
position, and a ``Loop`` runs one round per rank (as many rounds as the most repeated
position has updates). Round ``r`` gathers the current values of the positions, combines
the ``r``-th update of each with ``Add``/``Mul``/``Max``/``Min``, and writes them back with
a plain ``ScatterElements``: within a round every position is written at most once (the
other updates write to their own scratch slot past the data), so nothing depends on the
order in which a runtime applies duplicate indices. Updates are applied in index order,
as the eager kernels apply them.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from framework import dtypes
from framework.ops.shapes import prod

from .context import onnx_dtype, static_int
from .elementwise import compute_dtype
from .movement import iota

#: reduction -> (first opset with it on ScatterElements, the ONNX op combining two values)
_SINCE = {"add": (16, "Add"), "mul": (16, "Mul"), "max": (18, "Max"), "min": (18, "Min")}


def scatter_elements(ctx, data, index, updates, axis, reduction, data_shape, index_shape,
                     dtype):
    """``ScatterElements(data, index, updates, axis, reduction)`` (ONNX names; ``index``
    int64; shapes as IR sizes; ``dtype`` the framework dtype of ``data``/``updates``),
    in the form valid at the target opset."""
    if reduction is None or ctx.opset >= _SINCE[reduction][0]:
        return ctx.emit("ScatterElements", [data, index, updates], axis=axis,
                        reduction=reduction)
    wide = compute_dtype(dtype)  # Add/Mul/Max/Min have no narrow-integer/bool kernels
    if wide is not dtype:
        data, updates = ctx.cast(data, wide), ctx.cast(updates, wide)
        return ctx.cast(scatter_elements(ctx, data, index, updates, axis, reduction,
                                         data_shape, index_shape, wide), dtype)
    i64 = dtypes.int64
    n, m = prod(data_shape), prod(index_shape)
    pos = ctx.emit("Reshape", [_flat_positions(ctx, index, axis, data_shape, index_shape),
                               ctx.ints([-1])])
    vals = ctx.emit("Reshape", [updates, ctx.ints([-1])])
    _, order = ctx.emit("TopK", [pos, ctx.dim(m)], num_outputs=2, axis=0, largest=0,
                        sorted=1)
    sp, sv = ctx.emit("Gather", [pos, order], axis=0), ctx.emit("Gather", [vals, order], axis=0)
    i = iota(ctx, m)
    scratch = ctx.emit("Add", [i, ctx.dim(n)])               # one spare slot per update
    prev = ctx.emit("Slice", [ctx.emit("Concat", [ctx.ints([-1]), sp], axis=0),
                              ctx.ints([0]), ctx.emit("Shape", [sp])])
    starts = ctx.emit("Not", [ctx.emit("Equal", [sp, prev])])
    first = ctx.emit("ScatterElements", [_zeros(ctx, ctx.dim(n + m), i64),
                                         ctx.emit("Where", [starts, sp, scratch]), i], axis=0)
    rank = ctx.emit("Sub", [i, ctx.emit("Gather", [first, sp], axis=0)])
    most = ctx.emit("ReduceMax", [ctx.emit("Concat", [rank, ctx.ints([-1])], axis=0)],
                    keepdims=0)
    trips = ctx.emit("Add", [most, ctx.scalar(1, i64)])
    flat = ctx.emit("Reshape", [data, ctx.ints([-1])])
    buf = ctx.emit("Concat", [flat, _zeros(ctx, ctx.dim(m), dtype)], axis=0)
    out = _rounds(ctx, trips, buf, rank, sp, sv, scratch, _SINCE[reduction][1], dtype)
    out = ctx.emit("Slice", [out, ctx.ints([0]), ctx.dim(n)])
    return ctx.emit("Reshape", [out, ctx.shape_of(data_shape)])


def _zeros(ctx, shape_name, dtype) -> str:
    return ctx.emit("ConstantOfShape", [shape_name],
                    value=numpy_helper.from_array(np.zeros(1, dtype.np), "value"))


def _flat_positions(ctx, index, axis, data_shape, index_shape) -> str:
    """int64 tensor of ``index``'s shape: the flat offset in the data each update goes to
    (the index along ``axis``, negative ones wrapped; the update's own coordinate along
    every other dim)."""
    nd = len(data_shape)
    total = None
    for d in range(nd):
        if d == axis:
            size = ctx.emit("Reshape", [ctx.dim(data_shape[d]), ctx.ints([])])
            neg = ctx.emit("Less", [index, ctx.scalar(0, dtypes.int64)])
            coord = ctx.emit("Where", [neg, ctx.emit("Add", [index, size]), index])
        else:
            coord = iota(ctx, index_shape[d])
            others = [a for a in range(nd) if a != d]
            if others:
                coord = ctx.emit("Unsqueeze", [coord, ctx.ints(others)])
        stride = prod(data_shape[d + 1:])
        if static_int(stride) != 1:
            coord = ctx.emit("Mul", [coord, ctx.dim(stride)])
        total = coord if total is None else ctx.emit("Add", [total, coord])
    return total


def _rounds(ctx, trips, buf, rank, sp, sv, scratch, combine, dtype) -> str:
    """``Loop`` over ranks: round ``r`` applies each position's ``r``-th update."""
    it, cond = ctx.fresh("round"), ctx.fresh("cond")
    carried = ctx.fresh("buffer")
    outer, outer_dims = ctx.nodes, ctx._dims
    ctx.nodes, ctx._dims = [], dict(outer_dims)  # sizes computed inside stay inside
    try:
        mine = ctx.emit("Equal", [rank, it])
        new = ctx.emit(combine, [ctx.emit("Gather", [carried, sp], axis=0), sv])
        written = ctx.emit("ScatterElements", [carried, ctx.emit("Where", [mine, sp, scratch]),
                                               new], axis=0)
        cond_out = ctx.emit("Identity", [cond])
        body_nodes = ctx.nodes
    finally:
        ctx.nodes, ctx._dims = outer, outer_dims
    elem = onnx_dtype(dtype)
    body = helper.make_graph(
        body_nodes, ctx.fresh("scatter_rounds"),
        [helper.make_tensor_value_info(it, TensorProto.INT64, []),
         helper.make_tensor_value_info(cond, TensorProto.BOOL, []),
         helper.make_tensor_value_info(carried, elem, [None])],
        [helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []),
         helper.make_tensor_value_info(written, elem, [None])])
    return ctx.emit("Loop", [trips, "", buf], body=body)


__all__ = ["scatter_elements"]
