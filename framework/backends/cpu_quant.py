"""NumPy kernels of the quantization ops (``framework/ops/quant_ops.py`` and
``framework/ops/quant_dynamic_ops.py``), registered into the CPU backend's table.

The arithmetic follows PyTorch's CPU kernels to the bit: ``inv_scale`` is the float32
reciprocal of the float32 scale, ``x * inv_scale`` is rounded half to even in float64 for
float64 input and in float32 otherwise, and clamping uses ``fmax``/``fmin`` (so NaN lands on
``quant_min``). The value checks PyTorch leaves out but a user wants (scale positive and
finite, integer zero points inside ``[quant_min, quant_max]``) run here, where the data is.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from .cpu import impl


def _qparams(op, scale, zero_point, qmin, qmax, shape):
    """float32 scale and the zero point reshaped to broadcast against the input
    (``shape``: ``()`` per tensor, ``[1, .., C, .., 1]`` per channel), checked."""
    s = np.asarray(scale).astype(np.float32).reshape(shape)
    zp = np.asarray(zero_point).reshape(shape)
    if not np.all((s > 0) & np.isfinite(s)):
        raise ArgumentError(f"{op}: scale must be positive and finite, got "
                            f"{np.asarray(scale).tolist()}")
    if zp.dtype.kind in "iu" and zp.size and (zp.min() < qmin or zp.max() > qmax):
        raise ArgumentError(f"{op}: zero_point must be between quant_min ({qmin}) and "
                            f"quant_max ({qmax}), got {np.asarray(zero_point).tolist()}")
    return s, zp


def _shape(x, axis):
    if axis is None:
        return ()
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return tuple(shape)


def quantize_values(op, x, scale, zero_point, qmin, qmax, axis=None):
    """(clamped q, unclamped q, scale, zero point) with q in the compute dtype."""
    x = np.asarray(x)
    cd = np.float64 if x.dtype == np.float64 else np.float32
    s, zp = _qparams(op, scale, zero_point, qmin, qmax, _shape(x, axis))
    inv = (np.float32(1) / s).astype(cd)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = x.astype(cd) * inv
        if zp.dtype.kind == "f":  # PyTorch's float-zero-point form: lrint(zp + x * inv)
            r = np.rint(scaled + zp.astype(cd))
        else:
            r = np.rint(scaled) + zp.astype(cd)
    return np.fmin(np.fmax(r, cd(qmin)), cd(qmax)), r, s, zp


def fake_quantize_mask(op, x, scale, zero_point, qmin, qmax, axis=None) -> np.ndarray:
    """The straight-through estimator's mask: unclamped q inside the range."""
    _, r, _, _ = quantize_values(op, x, scale, zero_point, qmin, qmax, axis)
    return (r >= qmin) & (r <= qmax)


def _fake_quant(op, x, scale, zero_point, qmin, qmax, axis):
    x = np.asarray(x)
    q, _, s, zp = quantize_values(op, x, scale, zero_point, qmin, qmax, axis)
    # PyTorch's per-tensor kernel multiplies in float32, the per-channel one in double
    pd = np.float32 if axis is None else q.dtype
    out = (q - zp.astype(q.dtype)).astype(pd) * s.astype(pd)
    return out.astype(x.dtype, copy=False)


@impl("fake_quantize_per_tensor_affine")
def _fq_tensor(x, scale, zero_point, quant_min, quant_max):
    return _fake_quant("fake_quantize_per_tensor_affine", x, scale, zero_point, quant_min,
                       quant_max, None)


@impl("fake_quantize_per_channel_affine")
def _fq_channel(x, scale, zero_point, axis, quant_min, quant_max):
    return _fake_quant("fake_quantize_per_channel_affine", x, scale, zero_point, quant_min,
                       quant_max, axis)


def _quantize(op):
    def run(x, scale, zero_point, quant_min, quant_max, dtype, axis=None):
        q, _, _, _ = quantize_values(op, x, scale, zero_point, quant_min, quant_max, axis)
        return q.astype(dtype.np)
    run.__name__ = f"cpu_{op}"
    return run


def _dequantize(op):
    def run(x, scale, zero_point, quant_min, quant_max, dtype, axis=None):
        x = np.asarray(x)
        s, zp = _qparams(op, scale, zero_point, quant_min, quant_max, _shape(x, axis))
        return (x.astype(np.float32) - zp.astype(np.float32)) * s
    run.__name__ = f"cpu_{op}"
    return run


for _op in ("quantize_per_tensor", "quantize_per_channel"):
    impl(_op)(_quantize(_op))
for _op in ("dequantize_per_tensor", "dequantize_per_channel"):
    impl(_op)(_dequantize(_op))


# ---------------------------------------------------------------------------------------
# dynamic quantization (framework/ops/quant_dynamic_ops.py)
_SMALL_SCALE = np.float32(6.1e-5)


def choose_qparams_fbgemm(xmin, xmax, qmin, qmax):
    """PyTorch's ``quant_utils::ChooseQuantizationParams`` (no sparsity preservation, no
    power-of-two scale) for the float32 range ``[xmin, xmax]`` and the integer range
    ``[qmin, qmax]`` (already halved for reduce_range): ``(float64 scale, int zero
    point)``. The branches are C++'s, with its float32 steps kept in float32."""
    mn = min(np.float32(xmin), np.float32(0))
    mx = max(np.float32(xmax), np.float32(0))
    scale = (float(mx) - float(mn)) / (qmax - qmin)
    with np.errstate(divide="ignore", over="ignore"):
        if np.float32(scale) == 0 or np.isinf(np.float32(1) / np.float32(scale)):
            scale = 0.1
    if scale < float(_SMALL_SCALE):  # fp16-subnormal scales are cut off, the range widened
        org = np.float32(scale)
        scale = float(_SMALL_SCALE)
        if mn == 0:
            mx = _SMALL_SCALE * np.float32(qmax - qmin)
        elif mx == 0:
            mn = -_SMALL_SCALE * np.float32(qmax - qmin)
        else:
            amp = _SMALL_SCALE / org
            mn, mx = mn * amp, mx * amp
    lo, hi = float(mn) / scale, float(mx) / scale
    # the zero point from the end whose terms are smaller (C++'s error heuristic)
    init = qmin - lo if abs(qmin) - abs(lo) < abs(qmax) - abs(hi) else qmax - hi
    zp = qmin if init < qmin else qmax if init > qmax else int(np.rint(init))
    return scale, zp


@impl("dynamic_quantize_linear")
def _dynamic_quantize_linear(x, reduce_range):
    x = np.asarray(x)
    if x.size and not np.isfinite(x).all():
        raise ArgumentError("dynamic_quantize_linear: the input holds NaN or infinite values; "
                            "their quantization parameters are undefined")
    mn = np.float32(min(x.min(), 0)) if x.size else np.float32(0)
    mx = np.float32(max(x.max(), 0)) if x.size else np.float32(0)
    if reduce_range:  # fbgemm: 7-bit range, q = nearbyint(fma(x, 1/scale, zero_point))
        scale, zp = choose_qparams_fbgemm(mn, mx, 0, 127)
        s = np.float32(scale)
        inv = np.float64(np.float32(1) / s)
        t = (x.astype(np.float64) * inv + zp).astype(np.float32)  # one rounding, as an fma
        q = np.clip(np.rint(t), 0, 255)
    else:  # ONNX DynamicQuantizeLinear, in float32
        s = np.float32(1) if mx == mn else (mx - mn) / np.float32(255)
        zp = np.rint(np.clip(np.float32(0) - mn / s, 0, 255))
        q = np.clip(np.rint(x / s) + zp, 0, 255)
    return q.astype(np.uint8), np.array(s, np.float32), np.array(zp, np.uint8)


@impl("matmul_integer")
def _matmul_integer(a, b, a_zero_point, b_zero_point):
    # float64 holds every partial sum exactly (|terms| < 2^16, K < 2^37), so BLAS order is
    # irrelevant; int32 wraps around past 2^31 as ONNX's MatMulInteger does
    af = np.asarray(a, np.float64) - np.float64(np.asarray(a_zero_point).reshape(()))
    bf = np.asarray(b, np.float64) - np.asarray(b_zero_point, np.float64).reshape(-1)
    return np.matmul(af, bf).astype(np.int64).astype(np.int32)
