"""Quantization ops: PyTorch's fake quantization (``torch.fake_quantize_per_tensor_affine``,
``torch.fake_quantize_per_channel_affine``) and the integer quantize / dequantize ops of
PyTorch's decomposed representation (``torch.ops.quantized_decomposed``, public here as
:mod:`framework.ao.quantization.quantized_decomposed`).

The arithmetic is PyTorch's CPU kernel's::

    inv_scale = float32(1) / float32(scale)
    q   = clamp(nearbyint(x * inv_scale) + zero_point, quant_min, quant_max)
    out = (q - zero_point) * scale                      (fake quantization)

``nearbyint`` rounds half to even; ``x * inv_scale`` runs in float64 for float64 input and in
float32 otherwise (float16/bfloat16 are widened, the result cast back). A NaN quantizes to
``quant_min`` (the kernel's ``fmax``/``fmin``). The gradient of fake quantization is the
straight-through estimator ``grad * (quant_min <= unclamped q <= quant_max)``; scale and
zero point get none (PyTorch's non-learnable ops).

Scale and zero point are tensors (``numel() == 1`` per tensor, 1-D per channel) or, per
tensor, Python numbers, which become 0-d tensors so a compiled function keeps them as
runtime values. Argument checks raise framework errors naming the op; the value checks on
tensor qparams (scale positive and finite, integer zero points within
``[quant_min, quant_max]``) run where the data is read, in the CPU kernel
(``framework/backends/cpu_quant.py``). Every op has a decomposition into primitives (the
CUDA backend and the Triton compiler use it) and an ONNX lowering to QuantizeLinear /
DequantizeLinear (``compiler/onnx_lowering/quant.py``).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from .. import dtypes
from ..errors import ArgumentError, DTypeError, FwTypeError, ShapeError
from ..tensor import Tensor
from .registry import COMPOSITE, apply, register

__all__ = ["fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine"]
METHODS = ""
INPLACE_METHODS = ""

#: Integer dtypes a quantized value may be stored in, with their ranges.
QUANT_DTYPES = {dtypes.int8: (-128, 127), dtypes.uint8: (0, 255),
                dtypes.int16: (-(2 ** 15), 2 ** 15 - 1),
                dtypes.int32: (-(2 ** 31), 2 ** 31 - 1)}


# ---------------------------------------------------------------------------------------
# argument checks
def _int_arg(value, what, op) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise FwTypeError(f"{op}: {what} must be an int, got {type(value).__name__}")
    return int(value)


def check_range(quant_min, quant_max, op) -> tuple[int, int]:
    """``(quant_min, quant_max)`` as ints, ``quant_min <= quant_max``."""
    qmin, qmax = _int_arg(quant_min, "quant_min", op), _int_arg(quant_max, "quant_max", op)
    if qmin > qmax:
        raise ArgumentError(f"{op}: quant_min ({qmin}) must be less than or equal to "
                            f"quant_max ({qmax})")
    return qmin, qmax


def _check_float_input(x, op, *, float64_ok=True):
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{op}: expected a Tensor as input, got {type(x).__name__}")
    if not x.dtype.is_floating_point or (not float64_ok and x.dtype is dtypes.float64):
        want = "float32, float16 or bfloat16" if not float64_ok else "a floating-point dtype"
        raise DTypeError(f"{op}: expected input of {want}, got {x.dtype.name}")


def _static_numel(shape):
    n = 1
    for s in shape:
        if not isinstance(s, int):
            return None
        n *= s
    return n


def _check_qparams_meta(op, scale, zero_point, *, per_channel, float_zp_ok):
    if not isinstance(scale, Tensor) or not isinstance(zero_point, Tensor):
        raise FwTypeError(f"{op}: scale and zero_point must be tensors here, got "
                          f"{type(scale).__name__} and {type(zero_point).__name__}")
    if not scale.dtype.is_floating_point:
        raise DTypeError(f"{op}: scale must be a floating-point tensor, got "
                         f"{scale.dtype.name}")
    zdt = zero_point.dtype
    if not (zdt.category == dtypes.INT or (float_zp_ok and zdt.is_floating_point)):
        kinds = "an integer or floating-point" if float_zp_ok else "an integer"
        raise DTypeError(f"{op}: zero_point must be {kinds} tensor, got {zdt.name}")
    if per_channel:
        if scale.ndim != 1 or zero_point.ndim != 1:
            raise ShapeError(f"{op}: scale and zero_point must be 1-D tensors, got shapes "
                             f"{list(scale.shape)} and {list(zero_point.shape)}")
        if scale.shape != zero_point.shape:
            raise ShapeError(f"{op}: scale and zero_point must have the same size, got "
                             f"{list(scale.shape)} and {list(zero_point.shape)}")
    else:
        for t, what in ((scale, "scale"), (zero_point, "zero_point")):
            n = _static_numel(t.shape)
            if n is not None and (n != 1 or t.ndim > 1):
                raise ShapeError(f"{op}: {what} must hold one element (a 0-d or 1-element "
                                 f"tensor), got shape {list(t.shape)}")


def _check_axis(x, axis, scale, op) -> int:
    axis = _int_arg(axis, "axis", op)
    if not 0 <= axis < max(x.ndim, 1) or x.ndim == 0:
        raise ArgumentError(f"{op}: axis must be between 0 and input.dim() - 1 = "
                            f"{x.ndim - 1}, got {axis}")
    n, c = x.shape[axis], scale.shape[0]
    if isinstance(n, int) and isinstance(c, int) and n != c:
        raise ShapeError(f"{op}: scale and zero_point have {c} elements but input has size "
                         f"{n} along axis {axis} (shape {list(x.shape)})")
    return axis


def _check_dtype_range(dtype, qmin, qmax, op):
    dt = dtypes.to_dtype(dtype)
    if dt not in QUANT_DTYPES:
        raise DTypeError(f"{op}: dtype must be one of "
                         f"{', '.join(d.name for d in QUANT_DTYPES)}, got {dt.name}")
    lo, hi = QUANT_DTYPES[dt]
    if qmin < lo or qmax > hi:
        raise ArgumentError(f"{op}: [quant_min, quant_max] = [{qmin}, {qmax}] exceeds the "
                            f"range [{lo}, {hi}] of {dt.name}")
    return dt


def _scalar_qparam(value, what, x, op, qmin=None, qmax=None):
    """A per-tensor scale / zero point: a tensor passes through (the meta rule and the
    kernel check it); a Python number is checked here and becomes a 0-d tensor on
    ``x``'s device (``full`` keeps a compiled function's float argument a runtime
    value)."""
    if isinstance(value, Tensor):
        return value
    from ..creation import full
    if what == "scale":
        if isinstance(value, bool) or not isinstance(value, Real):
            raise FwTypeError(f"{op}: scale must be a float or a tensor, got "
                              f"{type(value).__name__}")
        if not (value > 0 and math.isfinite(value)):
            raise ArgumentError(f"{op}: scale must be positive and finite, got {value}")
        return full((), value, dtype=dtypes.float32, device=x.device)
    zp = _int_arg(value, "zero_point", op)
    if not qmin <= zp <= qmax:
        raise ArgumentError(f"{op}: zero_point must be between quant_min ({qmin}) and "
                            f"quant_max ({qmax}), got {zp}")
    return full((), zp, dtype=dtypes.int64, device=x.device)


# ---------------------------------------------------------------------------------------
# the arithmetic with public ops (decompositions and gradients)
def _compute_dtype(dt):
    return dtypes.float64 if dt is dtypes.float64 else dtypes.float32


def _broadcast_shape(x, axis):
    if axis is None:
        return ()
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return tuple(shape)


def _unclamped(x, scale, zero_point, axis=None):
    """``nearbyint(x * inv_scale) + zero_point`` before clamping (float zero points:
    ``nearbyint(zero_point + x * inv_scale)``, PyTorch's per-channel float-qparams form),
    in the compute dtype; also returns (scale, zero point) reshaped to broadcast."""
    cd = _compute_dtype(x.dtype)
    shape = _broadcast_shape(x, axis)
    s = scale.to(dtypes.float32).reshape(shape)
    zp = zero_point.reshape(shape)
    inv = (1.0 / s).to(cd)
    scaled = x.to(cd) * inv
    if zp.dtype.is_floating_point:
        return (scaled + zp.to(cd)).round(), s, zp
    return scaled.round() + zp.to(cd), s, zp


def _clamp(r, qmin, qmax):
    from .pointwise import where
    return where(r.isnan(), float(qmin), r.clamp(qmin, qmax))


def _fake_quant(x, scale, zero_point, qmin, qmax, axis):
    r, s, zp = _unclamped(x, scale, zero_point, axis)
    q = _clamp(r, qmin, qmax)
    # PyTorch's per-tensor kernel multiplies in float32; the per-channel one in double
    pd = dtypes.float32 if axis is None else r.dtype
    return ((q - zp.to(r.dtype)).to(pd) * s.to(pd)).to(x.dtype)


def _ste(g, x, scale, zero_point, qmin, qmax, axis):
    r, _, _ = _unclamped(x, scale, zero_point, axis)
    return g * ((r >= qmin) & (r <= qmax)).to(g.dtype)


# ---------------------------------------------------------------------------------------
# fake quantization
_FQ_T = "fake_quantize_per_tensor_affine"
_FQ_C = "fake_quantize_per_channel_affine"


def _fq_tensor_meta(x, scale, zero_point, *, quant_min, quant_max):
    _check_float_input(x, _FQ_T)
    _check_qparams_meta(_FQ_T, scale, zero_point, per_channel=False, float_zp_ok=False)
    return x.shape, x.dtype


def _fq_tensor_decomp(x, scale, zero_point, *, quant_min, quant_max):
    return _fake_quant(x, scale, zero_point, quant_min, quant_max, None)


def _fq_tensor_vjp(g, args, out, *, quant_min, quant_max):
    x, scale, zero_point = args
    return (_ste(g, x, scale, zero_point, quant_min, quant_max, None), None, None)


FAKE_QUANTIZE_PER_TENSOR = register(
    _FQ_T, COMPOSITE, _fq_tensor_meta, vjp=_fq_tensor_vjp, decomp=_fq_tensor_decomp,
    differentiable_args=(0,))


def fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max):
    """``(clamp(nearbyint(input / scale) + zero_point, quant_min, quant_max) - zero_point)
    * scale`` with one scale and zero point (Python numbers or one-element tensors);
    the gradient passes where the unclamped value lies in ``[quant_min, quant_max]``
    (``torch.fake_quantize_per_tensor_affine``)."""
    _check_float_input(input, _FQ_T)
    qmin, qmax = check_range(quant_min, quant_max, _FQ_T)
    if not isinstance(zero_point, Tensor) and isinstance(zero_point, float):
        raise FwTypeError(f"{_FQ_T}: zero_point must be an int or a tensor, got float")
    s = _scalar_qparam(scale, "scale", input, _FQ_T)
    zp = _scalar_qparam(zero_point, "zero_point", input, _FQ_T, qmin, qmax)
    return apply(FAKE_QUANTIZE_PER_TENSOR, input, s, zp, quant_min=qmin, quant_max=qmax)


def _fq_channel_meta(x, scale, zero_point, *, axis, quant_min, quant_max):
    _check_float_input(x, _FQ_C)
    _check_qparams_meta(_FQ_C, scale, zero_point, per_channel=True, float_zp_ok=True)
    _check_axis(x, axis, scale, _FQ_C)
    return x.shape, x.dtype


def _fq_channel_decomp(x, scale, zero_point, *, axis, quant_min, quant_max):
    return _fake_quant(x, scale, zero_point, quant_min, quant_max, axis)


def _fq_channel_vjp(g, args, out, *, axis, quant_min, quant_max):
    x, scale, zero_point = args
    return (_ste(g, x, scale, zero_point, quant_min, quant_max, axis), None, None)


FAKE_QUANTIZE_PER_CHANNEL = register(
    _FQ_C, COMPOSITE, _fq_channel_meta, vjp=_fq_channel_vjp, decomp=_fq_channel_decomp,
    differentiable_args=(0,))


def fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max):
    """Fake quantization with one scale and zero point per slice of ``input`` along
    ``axis`` (1-D tensors of ``input.shape[axis]`` elements; integer or floating zero
    points) (``torch.fake_quantize_per_channel_affine``)."""
    _check_float_input(input, _FQ_C)
    qmin, qmax = check_range(quant_min, quant_max, _FQ_C)
    return apply(FAKE_QUANTIZE_PER_CHANNEL, input, scale, zero_point,
                 axis=_int_arg(axis, "axis", _FQ_C), quant_min=qmin, quant_max=qmax)


# ---------------------------------------------------------------------------------------
# quantize / dequantize (torch.ops.quantized_decomposed)
_Q_T, _DQ_T = "quantize_per_tensor", "dequantize_per_tensor"
_Q_C, _DQ_C = "quantize_per_channel", "dequantize_per_channel"


def _q_meta(name, per_channel):
    def meta(x, scale, zero_point, *, quant_min, quant_max, dtype, axis=None):
        _check_float_input(x, name, float64_ok=False)
        _check_qparams_meta(name, scale, zero_point, per_channel=per_channel,
                            float_zp_ok=False)
        if per_channel:
            _check_axis(x, axis, scale, name)
        return x.shape, _check_dtype_range(dtype, quant_min, quant_max, name)
    return meta


def _q_decomp(x, scale, zero_point, *, quant_min, quant_max, dtype, axis=None):
    r, _, _ = _unclamped(x, scale, zero_point, axis)
    return _clamp(r, quant_min, quant_max).to(dtype)


def _dq_meta(name, per_channel):
    def meta(x, scale, zero_point, *, quant_min, quant_max, dtype, axis=None):
        if not isinstance(x, Tensor):
            raise FwTypeError(f"{name}: expected a Tensor as input, got {type(x).__name__}")
        dt = _check_dtype_range(dtype, quant_min, quant_max, name)
        if x.dtype is not dt:
            raise DTypeError(f"{name}: expected input of dtype {dt.name} (the dtype "
                             f"argument), got {x.dtype.name}")
        _check_qparams_meta(name, scale, zero_point, per_channel=per_channel,
                            float_zp_ok=False)
        if per_channel:
            _check_axis(x, axis, scale, name)
        return x.shape, dtypes.float32
    return meta


def _dq_decomp(x, scale, zero_point, *, quant_min, quant_max, dtype, axis=None):
    shape = _broadcast_shape(x, axis)
    s = scale.to(dtypes.float32).reshape(shape)
    zp = zero_point.reshape(shape).to(dtypes.float32)
    return (x.to(dtypes.float32) - zp) * s


QUANTIZE_PER_TENSOR = register(_Q_T, COMPOSITE, _q_meta(_Q_T, False), decomp=_q_decomp)
DEQUANTIZE_PER_TENSOR = register(_DQ_T, COMPOSITE, _dq_meta(_DQ_T, False), decomp=_dq_decomp)
QUANTIZE_PER_CHANNEL = register(_Q_C, COMPOSITE, _q_meta(_Q_C, True), decomp=_q_decomp)
DEQUANTIZE_PER_CHANNEL = register(_DQ_C, COMPOSITE, _dq_meta(_DQ_C, True), decomp=_dq_decomp)


def _tensor_args(name, input, scale, zero_point, quant_min, quant_max, dtype):
    qmin, qmax = check_range(quant_min, quant_max, name)
    dt = _check_dtype_range(dtype, qmin, qmax, name)
    if not isinstance(input, Tensor):
        raise FwTypeError(f"{name}: expected a Tensor as input, got {type(input).__name__}")
    s = _scalar_qparam(scale, "scale", input, name)
    zp = _scalar_qparam(zero_point, "zero_point", input, name, qmin, qmax)
    return s, zp, qmin, qmax, dt


def quantize_per_tensor(input, scale, zero_point, quant_min, quant_max, dtype):
    """``clamp(nearbyint(input / scale) + zero_point, quant_min, quant_max)`` stored as
    the integer ``dtype`` (``torch.ops.quantized_decomposed.quantize_per_tensor``; float32,
    float16 or bfloat16 input)."""
    s, zp, qmin, qmax, dt = _tensor_args(_Q_T, input, scale, zero_point, quant_min,
                                         quant_max, dtype)
    return apply(QUANTIZE_PER_TENSOR, input, s, zp, quant_min=qmin, quant_max=qmax, dtype=dt)


def dequantize_per_tensor(input, scale, zero_point, quant_min, quant_max, dtype):
    """``(input - zero_point) * scale`` in float32 for an integer tensor of ``dtype``
    (``torch.ops.quantized_decomposed.dequantize_per_tensor``)."""
    s, zp, qmin, qmax, dt = _tensor_args(_DQ_T, input, scale, zero_point, quant_min,
                                         quant_max, dtype)
    return apply(DEQUANTIZE_PER_TENSOR, input, s, zp, quant_min=qmin, quant_max=qmax,
                 dtype=dt)


def quantize_per_channel(input, scales, zero_points, axis, quant_min, quant_max, dtype):
    """Per-channel :func:`quantize_per_tensor` along ``axis`` (1-D ``scales`` and integer
    ``zero_points``) (``torch.ops.quantized_decomposed.quantize_per_channel``)."""
    qmin, qmax = check_range(quant_min, quant_max, _Q_C)
    return apply(QUANTIZE_PER_CHANNEL, input, scales, zero_points, quant_min=qmin,
                 quant_max=qmax, dtype=_check_dtype_range(dtype, qmin, qmax, _Q_C),
                 axis=_int_arg(axis, "axis", _Q_C))


def dequantize_per_channel(input, scales, zero_points, axis, quant_min, quant_max, dtype):
    """Per-channel :func:`dequantize_per_tensor` along ``axis``
    (``torch.ops.quantized_decomposed.dequantize_per_channel``)."""
    qmin, qmax = check_range(quant_min, quant_max, _DQ_C)
    return apply(DEQUANTIZE_PER_CHANNEL, input, scales, zero_points, quant_min=qmin,
                 quant_max=qmax, dtype=_check_dtype_range(dtype, qmin, qmax, _DQ_C),
                 axis=_int_arg(axis, "axis", _DQ_C))
