"""ONNX lowerings of the quantization ops (``framework/ops/quant_ops.py``).

Fake quantization becomes ``QuantizeLinear -> DequantizeLinear`` (the QDQ form that
onnxruntime fuses into integer kernels) when its range fits an 8-bit type: uint8 for
``0 <= quant_min, quant_max <= 255``, else int8 for ``-128 <= quant_min, quant_max <= 127``.
A range narrower than the type's (PyTorch's reduce-range activations, ``(0, 127)``) adds a
``Clip`` on the integers between the two, as PyTorch's exporter does. The integer quantize /
dequantize ops become one ``QuantizeLinear`` / ``DequantizeLinear`` for int8/uint8 values.
Constant scales and zero points (a converted model's buffers) become typed initializers
(a 0-d float32 scale, an int8/uint8 zero point), so the QDQ pattern is visible to
optimizers without constant folding; runtime ones are cast.

Everything else returns :data:`DECOMPOSE` and is exported as the op's exact decomposition
(``Mul`` by the reciprocal, ``Round`` half to even, ``Add``, ``Clip``, ``Sub``, ``Mul``):
float64 input (QuantizeLinear takes float32), floating zero points, wider ranges, and
per-channel quantization below opset 13 (QuantizeLinear's ``axis`` is new in 13).

QuantizeLinear divides by the scale where PyTorch multiplies by its float32 reciprocal, so
an element whose ``x / scale`` lies within one float32 ulp of a rounding tie can land one
quantization step away from eager; exact ties (and everything else) agree.
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from framework import dtypes

from . import DECOMPOSE, lowering

_RANGES = {dtypes.uint8: (0, 255), dtypes.int8: (-128, 127)}


def _qtype(qmin, qmax, zero_point_dtype=None):
    """The 8-bit type whose range holds ``[qmin, qmax]``: the zero point's own type when it
    is one, else uint8 before int8; None when neither holds it."""
    order = [zero_point_dtype] if zero_point_dtype in _RANGES else []
    for dt in order + list(_RANGES):
        lo, hi = _RANGES[dt]
        if lo <= qmin and qmax <= hi:
            return dt
    return None


def _constant(ctx, value):
    """The data of an IR value held in an initializer (parameters, buffers, captured
    constants) or made by ``full`` with a number (a Python scale or zero point), else
    None."""
    kind = getattr(value, "kind", None)
    if kind == "node" and value.producer.op.name == "full":
        fill = value.producer.attrs["value"]
        shape = tuple(value.shape)
        if isinstance(fill, (int, float, np.number)) and all(isinstance(s, int) for s in shape):
            return np.full(shape, fill, value.dtype.np)
        return None
    if kind not in ("param", "buffer", "const"):
        return None
    name = ctx.name_of(value)
    for init in ctx.initializers:
        if init.name == name:
            return numpy_helper.to_array(init)
    return None


def _ready(value, data, dtype, per_channel) -> bool:
    """An initializer already of the type and rank QuantizeLinear wants (a converted
    model's buffers), usable as it is."""
    return (value.kind != "node" and data.dtype == dtype.np
            and data.ndim == (1 if per_channel else 0))


def _scale(ctx, value, per_channel):
    """float32 scale: 0-d per tensor, 1-D per channel."""
    shape = (-1,) if per_channel else ()
    data = _constant(ctx, value)
    if data is not None:
        if _ready(value, data, dtypes.float32, per_channel):
            return ctx.name_of(value)
        return ctx.const(data.astype(np.float32).reshape(shape), "scale")
    name = ctx.name_of(value)
    if value.dtype is not dtypes.float32:
        name = ctx.cast(name, dtypes.float32)
    return ctx.emit("Reshape", [name, ctx.ints(list(shape))])


def _zero_point(ctx, value, qt, per_channel):
    """Zero point of type ``qt`` (None when a constant one falls outside its range)."""
    shape = (-1,) if per_channel else ()
    data = _constant(ctx, value)
    if data is not None:
        lo, hi = _RANGES[qt]
        if data.size and (data.min() < lo or data.max() > hi):
            return None
        if _ready(value, data, qt, per_channel):
            return ctx.name_of(value)
        return ctx.const(data.astype(qt.np).reshape(shape), "zero_point")
    name = ctx.emit("Reshape", [ctx.name_of(value), ctx.ints(list(shape))])
    return ctx.cast(name, qt)


def _clip(ctx, q, qt, qmin, qmax):
    """Clip the integers to ``[qmin, qmax]`` when that is narrower than ``qt``'s range."""
    if (qmin, qmax) == _RANGES[qt]:
        return q
    return ctx.emit("Clip", [q, ctx.const(np.array(qmin, qt.np), "qmin"),
                             ctx.const(np.array(qmax, qt.np), "qmax")])


def _per_channel_before_13(ctx, node) -> bool:
    """Per-channel parameters at an opset whose Quantize/DequantizeLinear has no axis."""
    return ctx.opset < 13 and node.attrs.get("axis") is not None


def _qdq_params(ctx, node, qt):
    x, scale, zero_point = node.inputs
    per_channel = "axis" in node.attrs and node.attrs["axis"] is not None
    zp = _zero_point(ctx, zero_point, qt, per_channel)
    axis = {"axis": int(node.attrs["axis"])} if per_channel else {}
    return x, _scale(ctx, scale, per_channel), zp, axis


def _float32_input(ctx, x):
    name = ctx.name_of(x)
    return name if x.dtype is dtypes.float32 else ctx.cast(name, dtypes.float32)


@lowering("fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine")
def _fake_quantize(ctx, node):
    x, _, zero_point = node.inputs
    qmin, qmax = node.attrs["quant_min"], node.attrs["quant_max"]
    qt = _qtype(qmin, qmax, zero_point.dtype)
    if qt is None or x.dtype is dtypes.float64 or zero_point.dtype.is_floating_point or \
            _per_channel_before_13(ctx, node):
        return DECOMPOSE
    x, s, zp, axis = _qdq_params(ctx, node, qt)
    if zp is None:
        return DECOMPOSE
    q = ctx.emit("QuantizeLinear", [_float32_input(ctx, x), s, zp], **axis)
    y = ctx.emit("DequantizeLinear", [_clip(ctx, q, qt, qmin, qmax), s, zp], **axis)
    return [y if x.dtype is dtypes.float32 else ctx.cast(y, x.dtype)]


@lowering("quantize_per_tensor", "quantize_per_channel")
def _quantize(ctx, node):
    qt = node.attrs["dtype"]
    qmin, qmax = node.attrs["quant_min"], node.attrs["quant_max"]
    if qt not in _RANGES or _per_channel_before_13(ctx, node):
        return DECOMPOSE
    x, s, zp, axis = _qdq_params(ctx, node, qt)
    if zp is None:
        return DECOMPOSE
    q = ctx.emit("QuantizeLinear", [_float32_input(ctx, x), s, zp], **axis)
    return [_clip(ctx, q, qt, qmin, qmax)]


@lowering("dequantize_per_tensor", "dequantize_per_channel")
def _dequantize(ctx, node):
    qt = node.attrs["dtype"]
    if qt not in _RANGES or _per_channel_before_13(ctx, node):
        return DECOMPOSE
    x, s, zp, axis = _qdq_params(ctx, node, qt)
    if zp is None:
        return DECOMPOSE
    return [ctx.emit("DequantizeLinear", [ctx.name_of(x), s, zp], **axis)]
