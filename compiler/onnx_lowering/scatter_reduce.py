"""``scatter_reduce`` as ONNX ``ScatterElements`` with a ``reduction``.

sum/mean -> ``reduction="add"``, prod -> ``"mul"`` (opset 16), amax/amin -> ``"max"`` /
``"min"`` (opset 18); an older target opset gets the exact equivalent of
:mod:`.scatter_compat` (sorted positions and a ``Loop`` of plain ScatterElements).
``include_self=False`` first writes the reduction's identity at the written positions (a
``ScatterElements`` without reduction; every duplicate writes the same value). ``mean`` is
the sum divided by the count of reduced values (a scatter-add of ones into ones or zeros,
at least 1), floor division for integer dtypes.

NaN: onnxruntime's max/min reductions drop NaN (checked with 1.32: ``max(NaN, 4)`` is 4),
where PyTorch and the eager kernels propagate it, so amax/amin on floats put NaN back
where some reduced value was NaN (a scatter-add of ``IsNaN(src)``, plus ``IsNaN(input)``
when ``include_self``). Narrow dtypes are computed widened (``compute_dtype``) and cast
back.
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from framework import dtypes
from framework.backends.cpu_scatter_reduce import identity

from . import lowering
from .context import static_int
from .elementwise import compute_dtype, narrowed
from .scatter_compat import scatter_elements

_REDUCTION = {"sum": "add", "mean": "add", "prod": "mul", "amax": "max", "amin": "min"}


def _int64(ctx, value):
    name = ctx.name_of(value)
    return name if value.dtype is dtypes.int64 else ctx.cast(name, dtypes.int64)


def _filled(ctx, like, value, cd):
    """A tensor of ``like``'s shape (an ONNX name) filled with ``value`` in ``cd``."""
    return ctx.emit("ConstantOfShape", [ctx.emit("Shape", [like])],
                    value=numpy_helper.from_array(np.array([value], cd.np), "value"))


def _floor_div_by_positive(ctx, a, count, cd):
    """``floor(a / count)`` for integers ``a`` and ``count >= 1`` (ONNX Div truncates)."""
    q = ctx.emit("Div", [a, count])
    inexact = ctx.emit("Not", [ctx.emit("Equal", [ctx.emit("Mod", [a, count], fmod=1),
                                                  ctx.scalar(0, cd)])])
    fix = ctx.emit("And", [inexact, ctx.emit("Less", [a, ctx.scalar(0, cd)])])
    return ctx.emit("Where", [fix, ctx.emit("Sub", [q, ctx.scalar(1, cd)]), q])


@lowering("scatter_reduce")
def _scatter_reduce(ctx, node):
    """``ScatterElements(x, index, src[:index.shape], axis=dim, reduction=...)``, with the
    identity written first for ``include_self=False``, the count division for ``mean`` and
    NaN restored for float amax/amin (see the module docstring)."""
    x, index, src = node.inputs
    dim, reduce = node.attrs["dim"], node.attrs["reduce"]
    include_self = node.attrs["include_self"]
    reduction = _REDUCTION[reduce]
    if any(static_int(s) == 0 for s in index.shape):
        return [ctx.name_of(x)]  # nothing is written: the input itself
    dt = x.dtype
    cd = compute_dtype(dt)
    xn, sn, idx = ctx.name_of(x), ctx.name_of(src), _int64(ctx, index)
    if cd is not dt:
        xn, sn = ctx.cast(xn, cd), ctx.cast(sn, cd)
    one_d = ctx.ints([1])
    if not x.shape:  # 0-d: one element along dim 0
        xn = ctx.emit("Reshape", [xn, one_d])
    if not index.shape:
        idx = ctx.emit("Reshape", [idx, one_d])
    if not src.shape:
        sn = ctx.emit("Reshape", [sn, one_d])
    nd = max(len(index.shape), 1)
    if (tuple(src.shape) or (1,)) != (tuple(index.shape) or (1,)):
        # the kernels read src[:index.shape] (0-d counting as shape [1])
        sn = ctx.emit("Slice", [sn, ctx.ints([0] * nd), ctx.emit("Shape", [idx]),
                                ctx.ints(range(nd))])
    base = xn
    if not include_self:
        ident = identity(reduce, cd.np)
        fill = ctx.emit("Expand", [ctx.scalar(ident.item(), cd), ctx.emit("Shape", [idx])])
        base = ctx.emit("ScatterElements", [xn, idx, fill], axis=dim)
    x_shape, i_shape = tuple(x.shape) or (1,), tuple(index.shape) or (1,)

    def scatter(data, updates, how):
        return scatter_elements(ctx, data, idx, updates, dim, how, x_shape, i_shape, cd)
    out = scatter(base, sn, reduction)
    if reduce in ("amax", "amin") and cd.is_floating_point:
        nan_src = scatter(_filled(ctx, xn, 0, cd), ctx.cast(ctx.emit("IsNaN", [sn]), cd), "add")
        is_nan = ctx.emit("Greater", [nan_src, ctx.scalar(0, cd)])
        if include_self:
            is_nan = ctx.emit("Or", [is_nan, ctx.emit("IsNaN", [xn])])
        out = ctx.emit("Where", [is_nan, ctx.scalar(float("nan"), cd), out])
    if reduce == "mean":
        ones = ctx.emit("Expand", [ctx.scalar(1, cd), ctx.emit("Shape", [idx])])
        count = scatter(_filled(ctx, xn, 1 if include_self else 0, cd), ones, "add")
        count = ctx.emit("Max", [count, ctx.scalar(1, cd)])
        out = ctx.emit("Div", [out, count]) if cd.is_floating_point else \
            _floor_div_by_positive(ctx, out, count, cd)
    if not x.shape:
        out = ctx.emit("Reshape", [out, ctx.ints([])])
    return [narrowed(ctx, out, cd, dt)]
