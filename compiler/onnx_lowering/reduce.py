"""Reductions (``sum prod amax amin argmax argmin any all``) and scans (``cumsum cumprod``).

Reduce* nodes are written with their axes as an input (ReduceSum since opset 13, the
others since 18); :mod:`.legalize` turns that into the attribute of older opsets. An empty
``dims`` reduces nothing (NumPy's ``axis=()``).
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from framework import dtypes

from . import lowering
from .elementwise import compute_dtype, narrowed
from .movement import tri_mask


def reduce(ctx, op_type, x, axes, keepdims):
    """Emit ``op_type`` over ``axes`` (a non-empty list)."""
    return ctx.emit(op_type, [x, ctx.ints(axes)], keepdims=int(keepdims))


def _reduction(op_type):
    def lower(ctx, node):
        (v,) = node.inputs
        dims, keepdim = node.attrs["dims"], node.attrs["keepdim"]
        x = ctx.name_of(v)
        if not dims:
            return [x]  # same values: no node
        dt = v.dtype
        cd = compute_dtype(dt)
        if cd is not dt:
            x = ctx.cast(x, cd)
        return [narrowed(ctx, reduce(ctx, op_type, x, dims, keepdim), cd, dt)]
    return lower


for _name, _op in {"sum": "ReduceSum", "prod": "ReduceProd", "amax": "ReduceMax",
                   "amin": "ReduceMin"}.items():
    lowering(_name)(_reduction(_op))


def _bool_reduction(is_all):
    """any: some element is True; all: no element is False (counted with ReduceSum, so an
    empty reduction gives False / True)."""
    def lower(ctx, node):
        (v,) = node.inputs
        dims, keepdim = node.attrs["dims"], node.attrs["keepdim"]
        x = ctx.name_of(v)
        if not dims:
            return [x]  # same values: no node
        if is_all:
            x = ctx.emit("Not", [x])
        count = reduce(ctx, "ReduceSum", ctx.cast(x, dtypes.int64), dims, keepdim)
        zero = ctx.scalar(0, dtypes.int64)
        return [ctx.emit("Equal" if is_all else "Greater", [count, zero])]
    return lower


lowering("any")(_bool_reduction(False))
lowering("all")(_bool_reduction(True))


def _arg_reduction(op_type):
    def lower(ctx, node):
        (v,) = node.inputs
        dims, keepdim = node.attrs["dims"], node.attrs["keepdim"]
        x = ctx.name_of(v)
        if not dims:  # a 0-d input: index 0
            return [ctx.emit("ConstantOfShape", [ctx.emit("Shape", [x])],
                             value=_zero_int64())]
        cd = compute_dtype(v.dtype)
        if cd is not v.dtype:
            x = ctx.cast(x, cd)
        return [ctx.emit(op_type, [x], axis=dims[0], keepdims=int(keepdim),
                         select_last_index=0)]
    return lower


def _zero_int64():
    return numpy_helper.from_array(np.zeros(1, np.int64), "value")


lowering("argmax")(_arg_reduction("ArgMax"))
lowering("argmin")(_arg_reduction("ArgMin"))


@lowering("cumsum")
def _cumsum(ctx, node):
    (v,) = node.inputs
    cd = compute_dtype(v.dtype)
    x = ctx.name_of(v)
    if cd is not v.dtype:
        x = ctx.cast(x, cd)
    axis = ctx.const(np.array(node.attrs["dim"], "int64"), "axis")
    return [narrowed(ctx, ctx.emit("CumSum", [x, axis]), cd, v.dtype)]


@lowering("cumprod")
def _cumprod(ctx, node):
    """CumProd from opset 26; before that a masked product over a lower-triangular
    ``(n, n)`` broadcast (exact, zeros included, O(n^2) memory along the scanned dim)."""
    (v,) = node.inputs
    dim = node.attrs["dim"]
    dt = v.dtype
    cd = compute_dtype(dt)
    x = ctx.name_of(v)
    if cd is not dt:
        x = ctx.cast(x, cd)
    if ctx.opset >= 26:
        axis = ctx.const(np.array(dim, "int64"), "axis")
        return [narrowed(ctx, ctx.emit("CumProd", [x, axis]), cd, dt)]
    nd = len(v.shape)
    perm = [d for d in range(nd) if d != dim] + [dim]
    xt = ctx.emit("Transpose", [x], perm=perm) if perm != list(range(nd)) else x
    n = v.shape[dim]
    lead = [v.shape[d] for d in perm[:-1]]
    rows = ctx.emit("Unsqueeze", [xt, ctx.ints([-2])])                 # (..., 1, n)
    full = ctx.emit("Expand", [rows, ctx.shape_of(lead + [n, n])])      # (..., n, n)
    mask = tri_mask(ctx, n, n, 0, upper=False)                          # j <= i
    masked = ctx.emit("Where", [mask, full, ctx.scalar(1, cd)])
    r = reduce(ctx, "ReduceProd", masked, [nd], False)
    if perm != list(range(nd)):
        inv = [perm.index(d) for d in range(nd)]
        r = ctx.emit("Transpose", [r], perm=inv)
    return [narrowed(ctx, r, cd, dt)]
