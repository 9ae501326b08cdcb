"""Linear algebra, convolution, pooling and the neural-network composites.

Composites become the native ONNX op when the target opset has it (Softmax, LogSoftmax,
LayerNormalization from 17, Gelu from 20, SoftmaxCrossEntropyLoss, Gather for embeddings,
...); otherwise the rule returns :data:`DECOMPOSE` and the exporter lowers the op's
decomposition into primitives instead. Before opset 13, Softmax and LogSoftmax flatten
their input to 2-D at ``axis``, so a softmax over any dim but the last is emitted between
two Transposes that make it the last.
"""

from __future__ import annotations

from framework import dtypes

from . import DECOMPOSE, lowering
from .elementwise import compute_dtype, narrowed

_HALF = (dtypes.float16, dtypes.bfloat16)


def _wide_inputs(ctx, values, dt, cd):
    names = [ctx.name_of(v) for v in values]
    return [ctx.cast(n, cd) for n in names] if cd is not dt else names


def float_compute(dt):
    """Float dtype an ORT kernel runs in (float32 for the half types)."""
    return dtypes.float32 if dt in _HALF else dt


# ---------------------------------------------------------------------------------------
# linear algebra
@lowering("matmul")
def _matmul(ctx, node):
    dt = node.outputs[0].dtype
    cd = compute_dtype(dt)
    a, b = _wide_inputs(ctx, node.inputs, dt, cd)
    return [narrowed(ctx, ctx.emit("MatMul", [a, b]), cd, dt)]


@lowering("einsum")
def _einsum(ctx, node):
    dt = node.outputs[0].dtype
    cd = compute_dtype(dt)
    ins = _wide_inputs(ctx, node.inputs, dt, cd)
    eq = node.attrs["equation"].replace(" ", "")
    return [narrowed(ctx, ctx.emit("Einsum", ins, equation=eq), cd, dt)]


# ---------------------------------------------------------------------------------------
# softmax family
def _softmax_rule(op_type):
    def lower(ctx, node):
        (v,) = node.inputs
        dt = v.dtype
        cd = float_compute(dt)
        (x,) = _wide_inputs(ctx, [v], dt, cd)
        nd = len(v.shape)
        dim = node.attrs["dim"] % nd if nd else 0
        if not v.shape:  # 0-d: softmax over a single element
            x = ctx.emit("Unsqueeze", [x, ctx.ints([0])])
            out = ctx.emit("Squeeze", [ctx.emit(op_type, [x], axis=0), ctx.ints([0])])
        elif ctx.opset < 13 and dim != nd - 1:  # the old 2-D coercion: make dim the last
            perm = list(range(nd))
            perm[dim], perm[-1] = perm[-1], perm[dim]
            out = ctx.emit(op_type, [ctx.emit("Transpose", [x], perm=perm)], axis=nd - 1)
            out = ctx.emit("Transpose", [out], perm=perm)
        else:
            out = ctx.emit(op_type, [x], axis=node.attrs["dim"])
        return [narrowed(ctx, out, cd, dt)]
    return lower


lowering("softmax")(_softmax_rule("Softmax"))
lowering("log_softmax")(_softmax_rule("LogSoftmax"))


@lowering("cross_entropy")
def _cross_entropy(ctx, node):
    logits, target = node.inputs
    dt = logits.dtype
    cd = float_compute(dt)
    (x,) = _wide_inputs(ctx, [logits], dt, cd)
    t = ctx.name_of(target)
    if target.dtype not in (dtypes.int32, dtypes.int64):
        t = ctx.cast(t, dtypes.int64)
    out = ctx.emit("SoftmaxCrossEntropyLoss", [x, t], reduction="none",
                   ignore_index=int(node.attrs["ignore_index"]))
    return [narrowed(ctx, out, cd, dt)]


# ---------------------------------------------------------------------------------------
# activations and normalization
@lowering("gelu")
def _gelu(ctx, node):
    if ctx.opset < 20:
        return DECOMPOSE
    (v,) = node.inputs
    dt = v.dtype
    cd = float_compute(dt)
    (x,) = _wide_inputs(ctx, [v], dt, cd)
    return [narrowed(ctx, ctx.emit("Gelu", [x], approximate=node.attrs["approximate"]), cd,
                     dt)]


@lowering("layer_norm")
def _layer_norm(ctx, node):
    if ctx.opset < 17:  # LayerNormalization is new in 17
        return DECOMPOSE
    x, w, b = node.inputs
    dt = x.dtype
    cd = float_compute(dt)
    names = _wide_inputs(ctx, [x, w, b], dt, cd)
    out = ctx.emit("LayerNormalization", names, axis=-int(node.attrs["normalized_ndim"]),
                   epsilon=float(node.attrs["eps"]))
    return [narrowed(ctx, out, cd, dt)]


@lowering("embedding")
def _embedding(ctx, node):
    weight, indices = node.inputs
    idx = ctx.name_of(indices)
    if indices.dtype not in (dtypes.int32, dtypes.int64):
        idx = ctx.cast(idx, dtypes.int64)
    return [ctx.emit("Gather", [ctx.name_of(weight), idx], axis=0)]


# ---------------------------------------------------------------------------------------
# convolution and pooling
def _crop(ctx, x, v, pads):
    """Slice away negative padding (a crop) on the trailing spatial dims."""
    nd = len(pads)
    lead = len(v.shape) - nd
    axes, starts, ends = [], [], []
    for i, (lo, hi) in enumerate(pads):
        if lo < 0 or hi < 0:
            axes.append(lead + i)
            starts.append(max(-lo, 0))
            ends.append(-max(-hi, 0) if hi < 0 else 2 ** 63 - 1)
    if not axes:
        return x
    return ctx.emit("Slice", [x, ctx.ints(starts), ctx.ints(ends), ctx.ints(axes)])


@lowering("conv")
def _conv(ctx, node, bias=None):
    """``Conv``; ``bias`` (a (C,) Value, from the conv + bias pattern) becomes its B."""
    x, w = node.inputs
    dt = x.dtype
    cd = float_compute(dt)
    xn, wn, *bn = _wide_inputs(ctx, [x, w] + ([bias] if bias is not None else []), dt, cd)
    pads = node.attrs["padding"]
    xn = _crop(ctx, xn, x, pads)
    onnx_pads = [max(lo, 0) for lo, _ in pads] + [max(hi, 0) for _, hi in pads]
    out = ctx.emit("Conv", [xn, wn] + bn, strides=list(node.attrs["stride"]), pads=onnx_pads,
                   dilations=list(node.attrs["dilation"]), group=node.attrs["groups"],
                   kernel_shape=[int(k) for k in w.shape[2:]])
    return [narrowed(ctx, out, cd, dt)]


@lowering("conv_transpose")
def _conv_transpose(ctx, node, bias=None):
    """``ConvTranspose``; ``bias`` as for :func:`_conv` (only without negative padding)."""
    x, w = node.inputs
    dt = x.dtype
    cd = float_compute(dt)
    xn, wn, *bn = _wide_inputs(ctx, [x, w] + ([bias] if bias is not None else []), dt, cd)
    pads = node.attrs["padding"]
    onnx_pads = [max(lo, 0) for lo, _ in pads] + [max(hi, 0) for _, hi in pads]
    out = ctx.emit("ConvTranspose", [xn, wn] + bn, strides=list(node.attrs["stride"]),
                   pads=onnx_pads, dilations=list(node.attrs["dilation"]),
                   group=node.attrs["groups"], output_padding=list(node.attrs["output_padding"]),
                   kernel_shape=[int(k) for k in w.shape[2:]])
    if any(lo < 0 or hi < 0 for lo, hi in pads):  # negative padding extends with zeros
        nd = len(pads)
        begin = [0, 0] + [max(-lo, 0) for lo, _ in pads]
        end = [0, 0] + [max(-hi, 0) for _, hi in pads]
        assert len(begin) == nd + 2
        out = ctx.emit("Pad", [out, ctx.ints(begin + end)])
    return [narrowed(ctx, out, cd, dt)]


def to_nchw(ctx, x, v, nd):
    """Reshape ``v`` (any number of leading dims) to ``(N, C, *spatial)``; return the new
    name and a function restoring the leading dims of a result."""
    lead = list(v.shape[:len(v.shape) - nd])
    if len(lead) == 2:
        return x, lambda r, spatial: r
    if len(lead) == 1:
        y = ctx.emit("Unsqueeze", [x, ctx.ints([0])])
        return y, lambda r, spatial: ctx.emit("Squeeze", [r, ctx.ints([0])])
    n = 1
    for s in lead[:-1]:
        n = n * s
    y = ctx.emit("Reshape", [x, ctx.shape_of([n, lead[-1]] + list(v.shape[len(lead):]))])
    return y, lambda r, spatial: ctx.emit("Reshape", [r, ctx.shape_of(lead + list(spatial))])


@lowering("max_pool")
def _max_pool(ctx, node):
    (v,) = node.inputs
    a = node.attrs
    nd = len(a["kernel_size"])
    dt = v.dtype
    cd = float_compute(dt) if dt.is_floating_point else (
        dt if dt in (dtypes.int8, dtypes.uint8) else dtypes.float64)
    (x,) = _wide_inputs(ctx, [v], dt, cd)
    x4, back = to_nchw(ctx, x, v, nd)
    want_idx = ctx.is_used(node.outputs[1])
    outs = ctx.emit("MaxPool", [x4], num_outputs=2 if want_idx else 1,
                    kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]),
                    pads=list(a["padding"]) * 2, dilations=list(a["dilation"]),
                    ceil_mode=int(a["ceil_mode"]))
    vals, idx = (outs if want_idx else (outs, None))
    spatial = node.outputs[0].shape[len(v.shape) - nd:]
    vals = narrowed(ctx, back(vals, spatial), cd, dt)
    if idx is None:
        return [vals, None]
    plane = 1
    for s in v.shape[len(v.shape) - nd:]:
        plane = plane * s
    # ONNX counts over the whole NCHW tensor; PyTorch within each plane
    idx = ctx.emit("Mod", [idx, ctx.dim(plane)])
    return [vals, back(idx, spatial)]


@lowering("flash_attention", "flash_attention_backward")
def _flash_attention(ctx, node):
    """No ONNX op returns the logsumexp or attention gradients: export the decomposition."""
    return DECOMPOSE
