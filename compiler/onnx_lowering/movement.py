"""Movement ops (reshape permute expand slice pad cat flip trilu clone), creation and
random ops (full arange uniform normal) and ``to_device`` (a no-op in a deployed model).

Older opsets: ``Trilu`` is new in 14, so before it a triangle is a ``Where`` with a mask
built from two ``Range`` nodes (:func:`tri_mask`); ``Reshape``'s ``allowzero`` is new in 14,
so before it a reshape to a size-0 shape is an ``Expand`` of a zero (no values to move).
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from framework import dtypes

from . import lowering
from .context import INT64_MAX, INT64_MIN, onnx_dtype, static_int
from .elementwise import compute_dtype, narrowed

_HALF = (dtypes.float16, dtypes.bfloat16)


def _x(ctx, node):
    return ctx.name_of(node.inputs[0])


@lowering("reshape")
def _reshape(ctx, node):
    shape = tuple(node.attrs["shape"])
    src = tuple(node.inputs[0].shape)
    x = _x(ctx, node)
    if shape == src:
        return [x]  # same values: no node
    if any(static_int(s) == 0 for s in shape):
        if ctx.opset < 14:  # no allowzero: the result is empty, make it from nothing
            dt = node.outputs[0].dtype
            cd = compute_dtype(dt)
            out = ctx.emit("Expand", [ctx.scalar(0, cd), ctx.shape_of(shape)])
            return [narrowed(ctx, out, cd, dt)]
        return [ctx.emit("Reshape", [x, ctx.shape_of(shape)], allowzero=1)]
    return [ctx.emit("Reshape", [x, _reshape_target(ctx, src, shape)])]


def _reshape_target(ctx, src, shape):
    """The shape input of a Reshape: constant where possible, with ONNX's ``0`` (keep the
    input's dim at this position) and one ``-1`` (inferred) standing for dynamic sizes;
    computed from the inputs' shapes only when more than one size is left unknown."""
    spec, unknown = [], 0
    for i, d in enumerate(shape):
        if static_int(d) is not None:
            spec.append(static_int(d))
        elif i < len(src) and src[i] == d:
            spec.append(0)
        else:
            spec.append(-1)
            unknown += 1
    return ctx.ints(spec) if unknown <= 1 else ctx.shape_of(shape)


@lowering("permute")
def _permute(ctx, node):
    perm = list(node.attrs["dims"])
    if perm == sorted(perm):
        return [_x(ctx, node)]  # identity permutation: no node
    return [ctx.emit("Transpose", [_x(ctx, node)], perm=perm)]


@lowering("expand")
def _expand(ctx, node):
    src = tuple(node.inputs[0].shape)
    target = list(node.attrs["shape"])
    lead = len(target) - len(src)
    for i in range(lead, len(target)):
        if static_int(target[i]) is None and src[i - lead] == target[i]:
            target[i] = 1  # Expand broadcasts: keep the input's own (dynamic) size
    dt = node.inputs[0].dtype
    cd = dtypes.float32 if dt is dtypes.bfloat16 else dt  # ORT's Expand: no bfloat16
    x = _x(ctx, node)
    x = ctx.cast(x, cd) if cd is not dt else x
    return [narrowed(ctx, ctx.emit("Expand", [x, ctx.shape_of(target)]), cd, dt)]


@lowering("slice")
def _slice(ctx, node):
    v = node.inputs[0]
    starts, stops, steps = node.attrs["starts"], node.attrs["stops"], node.attrs["steps"]
    axes, st, en, sp = [], [], [], []
    for d, (a, b, c, size) in enumerate(zip(starts, stops, steps, v.shape)):
        full_stop = b == size or (static_int(b) is not None and static_int(size) is not None
                                  and static_int(b) >= static_int(size))
        if static_int(a) == 0 and full_stop and c == 1:
            continue
        axes.append(d)
        st.append(a)
        en.append(INT64_MAX if b == size else b)
        sp.append(c)
    x = _x(ctx, node)
    if not axes:
        return [x]  # same values: no node
    return [ctx.emit("Slice", [x, ctx.shape_of(st), ctx.shape_of(en), ctx.ints(axes),
                               ctx.ints(sp)])]


@lowering("pad")
def _pad(ctx, node):
    v = node.inputs[0]
    pads, value = node.attrs["pads"], node.attrs["value"]
    nd = len(v.shape)
    begin, end = [0] * nd, [0] * nd
    for i in range(len(pads) // 2):
        begin[nd - 1 - i] = pads[2 * i]
        end[nd - 1 - i] = pads[2 * i + 1]
    dt = v.dtype
    cd = dtypes.float32 if dt in _HALF else dt
    if dt is dtypes.bool_ and ctx.opset < 13:  # Pad has bool from opset 13
        cd = dtypes.int32
    x = _x(ctx, node)
    if cd is not dt:
        x = ctx.cast(x, cd)
    out = ctx.emit("Pad", [x, ctx.shape_of(begin + end), ctx.scalar(value, cd)],
                   mode="constant")
    return [narrowed(ctx, out, cd, dt)]


@lowering("cat")
def _cat(ctx, node):
    return [ctx.emit("Concat", [ctx.name_of(v) for v in node.inputs], axis=node.attrs["dim"])]


@lowering("flip")
def _flip(ctx, node):
    dims = list(node.attrs["dims"])
    k = len(dims)
    return [ctx.emit("Slice", [_x(ctx, node), ctx.ints([-1] * k), ctx.ints([INT64_MIN] * k),
                               ctx.ints(dims), ctx.ints([-1] * k)])]


def iota(ctx, n) -> str:
    """int64 ``[0, n)`` (a constant when ``n`` is static)."""
    if static_int(n) is not None:
        return ctx.const(np.arange(static_int(n), dtype=np.int64), "iota")
    limit = ctx.emit("Reshape", [ctx.dim(n), ctx.ints([])])
    return ctx.emit("Range", [ctx.scalar(0, dtypes.int64), limit, ctx.scalar(1, dtypes.int64)])


def tri_mask(ctx, rows, cols, k: int, upper: bool) -> str:
    """Bool ``(rows, cols)`` mask of the upper (``j - i >= k``) or lower (``j - i <= k``)
    triangle: ``Trilu`` of ones from opset 14, two ``Range`` nodes compared before."""
    if ctx.opset >= 14:
        ones = ctx.emit("ConstantOfShape", [ctx.shape_of([rows, cols])],
                        value=_fill_value(True, dtypes.bool_))
        return ctx.emit("Trilu", [ones, ctx.const(np.array(k, np.int64), "k")],
                        upper=int(upper))
    i = ctx.emit("Unsqueeze", [iota(ctx, rows), ctx.ints([1])])
    diff = ctx.emit("Sub", [iota(ctx, cols), i])
    return ctx.emit("GreaterOrEqual" if upper else "LessOrEqual",
                    [diff, ctx.scalar(int(k), dtypes.int64)])


@lowering("trilu")
def _trilu(ctx, node):
    v = node.inputs[0]
    dt = v.dtype
    x = _x(ctx, node)
    if ctx.opset < 14:  # no Trilu: Where(mask, x, 0)
        cd = compute_dtype(dt)
        x = ctx.cast(x, cd) if cd is not dt else x
        mask = tri_mask(ctx, v.shape[-2], v.shape[-1], node.attrs["k"], node.attrs["upper"])
        return [narrowed(ctx, ctx.emit("Where", [mask, x, ctx.scalar(0, cd)]), cd, dt)]
    # ORT's Trilu kernels: float, double, int64, bool
    cd = dt if dt in (dtypes.float32, dtypes.float64, dtypes.int64, dtypes.bool_) else (
        dtypes.float32 if dt.is_floating_point else dtypes.int64)
    if cd is not dt:
        x = ctx.cast(x, cd)
    k = ctx.const(np.array(node.attrs["k"], np.int64), "k")
    out = ctx.emit("Trilu", [x, k], upper=int(node.attrs["upper"]))
    return [narrowed(ctx, out, cd, dt)]


@lowering("clone", "to_device", "detach")
def _identity(ctx, node):
    return [_x(ctx, node)]  # ONNX values are immutable: an alias


# ---------------------------------------------------------------------------------------
# creation and random
def _fill_value(value, dtype):
    return numpy_helper.from_array(np.array([value], dtype=dtype.np), "value")


@lowering("full")
def _full(ctx, node):
    dt = node.attrs["dtype"]
    # ConstantOfShape has bfloat16 only from opset 20
    cd = dtypes.float32 if dt is dtypes.bfloat16 and ctx.opset < 20 else dt
    out = ctx.emit("ConstantOfShape", [ctx.shape_of(node.attrs["shape"])],
                   value=_fill_value(node.attrs["value"], cd))
    return [narrowed(ctx, out, cd, dt)]


def _scalar_of(ctx, one_elem):
    return ctx.emit("Reshape", [one_elem, ctx.ints([])])


@lowering("arange")
def _arange(ctx, node):
    dt = node.attrs["dtype"]
    start, step = node.attrs["start"], node.attrs["step"]
    n = _scalar_of(ctx, ctx.dim(node.attrs["shape"][0]))
    i64 = dtypes.int64
    if not dt.is_floating_point and isinstance(start, int) and isinstance(step, int):
        limit = ctx.emit("Add", [ctx.emit("Mul", [n, ctx.scalar(step, i64)]),
                                 ctx.scalar(start, i64)])
        r = ctx.emit("Range", [ctx.scalar(start, i64), limit, ctx.scalar(step, i64)])
        return [narrowed(ctx, r, i64, dt)]
    # start + step * i in float64 then one rounding, as the eager kernel does
    idx = ctx.cast(ctx.emit("Range", [ctx.scalar(0, i64), n, ctx.scalar(1, i64)]),
                   dtypes.float64)
    f64 = dtypes.float64
    r = ctx.emit("Add", [ctx.emit("Mul", [idx, ctx.scalar(step, f64)]), ctx.scalar(start, f64)])
    return [narrowed(ctx, r, f64, dt)]


def _random(op_type, params):
    def lower(ctx, node):
        dt = node.attrs["dtype"]
        gen = dt if dt in (dtypes.float16, dtypes.float32, dtypes.float64) else dtypes.float32
        attrs = {k: float(node.attrs[a]) for k, a in params.items()}
        shape = node.attrs["shape"]
        if all(static_int(s) is not None for s in shape):
            r = ctx.emit(op_type, [], dtype=onnx_dtype(gen),
                         shape=[static_int(s) for s in shape], **attrs)
        else:
            like = ctx.emit("ConstantOfShape", [ctx.shape_of(shape)],
                            value=_fill_value(0, gen))
            r = ctx.emit(op_type + "Like", [like], dtype=onnx_dtype(gen), **attrs)
        return [narrowed(ctx, r, gen, dt)]
    return lower


lowering("uniform")(_random("RandomUniform", {"low": "low", "high": "high"}))
lowering("normal")(_random("RandomNormal", {"mean": "mean", "scale": "std"}))


def _uniform_f64(ctx, shape, low, high):
    """``RandomUniform`` float64 samples of the (maybe symbolic) ``shape`` in [low, high)."""
    f64 = onnx_dtype(dtypes.float64)
    if all(static_int(s) is not None for s in shape):
        return ctx.emit("RandomUniform", [], dtype=f64, shape=[static_int(s) for s in shape],
                        low=float(low), high=float(high))
    like = ctx.emit("ConstantOfShape", [ctx.shape_of(shape)],
                    value=_fill_value(0, dtypes.float64))
    return ctx.emit("RandomUniformLike", [like], dtype=f64, low=float(low), high=float(high))


@lowering("randint")
def _randint(ctx, node):
    """``Floor(RandomUniform[low, high))`` (capped at high - 1), cast to the dtype."""
    a = node.attrs
    f64 = dtypes.float64
    r = ctx.emit("Floor", [_uniform_f64(ctx, a["shape"], a["low"], a["high"])])
    r = ctx.emit("Min", [r, ctx.scalar(float(a["high"] - 1), f64)])
    return [narrowed(ctx, r, f64, a["dtype"])]


@lowering("randperm")
def _randperm(ctx, node):
    """The ascending order of n uniform samples: ``TopK(u, n, largest=0)``'s indices."""
    a = node.attrs
    (n,) = a["shape"]
    u = _uniform_f64(ctx, a["shape"], 0.0, 1.0)
    k = ctx.ints([static_int(n)]) if static_int(n) is not None else ctx.emit("Shape", [u])
    _, idx = ctx.emit("TopK", [u, k], num_outputs=2, axis=0, largest=0, sorted=1)
    return [narrowed(ctx, idx, dtypes.int64, a["dtype"])]


@lowering("as_strided")
def _as_strided(ctx, node):
    """A gather of the view's positions from the flattened (contiguous) source."""
    a = node.attrs
    pos = np.full((), a["offset"], dtype=np.int64)
    for n, s in zip(a["size"], a["stride"]):
        pos = pos[..., None] + np.arange(n, dtype=np.int64) * s
    flat = ctx.emit("Reshape", [_x(ctx, node), ctx.ints([-1])])
    return [ctx.emit("Gather", [flat, ctx.const(pos, "as_strided_positions")], axis=0)]
