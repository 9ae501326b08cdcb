"""OpInfo records: the quantization ops of framework/ops/quant_ops.py (fake quantization per
tensor and per channel, and the int8/uint8 quantize / dequantize of
``framework.ao.quantization.quantized_decomposed``). References are NumPy written here from
PyTorch's kernel formula (float32 reciprocal of the float32 scale, round half to even,
clamp, NaN to quant_min); scale/zero point tensors are positional so the compile and ONNX
suites treat them as inputs.

Fake quantization's gradient is the straight-through estimator (finite differences of a
step function say nothing): tests/test_quantization.py checks its mask directly, so the
records are not ``differentiable``. NaN inputs are covered there too (onnxruntime's
QuantizeLinear leaves NaN undefined)."""

from __future__ import annotations

import numpy as np

import framework as fw
from framework.ao.quantization import quantized_decomposed as qd
from tests.opinfo import (FLOATS, OpInfo, Sample, make, noncontig, register_opinfo, rng,
                          transposed)

_HALF_FLOATS = (fw.float32, fw.float16, fw.bfloat16)  # what QuantizeLinear-style ops take


def _shape(x, axis):
    if axis is None:
        return ()
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return tuple(shape)


def ref_quantize(x, scale, zero_point, qmin, qmax, axis=None):
    """(clamped q, unclamped q) in float64, PyTorch's formula."""
    s = np.asarray(scale, np.float32).reshape(_shape(x, axis))
    inv = (np.float32(1) / s).astype(np.float64)
    zp = np.asarray(zero_point).reshape(_shape(x, axis))
    with np.errstate(invalid="ignore"):
        if zp.dtype.kind == "f":
            r = np.rint(np.asarray(x, np.float64) * inv + zp.astype(np.float64))
        else:
            r = np.rint(np.asarray(x, np.float64) * inv) + zp
    q = np.where(np.isnan(r), qmin, np.clip(r, qmin, qmax))
    return q, r


def ref_fake_quantize(x, scale, zero_point, qmin, qmax, axis=None):
    """``(q - zero_point) * scale``: in float32 per tensor, in float64 per channel (as
    PyTorch's kernels multiply; the float32 results of float32 input are the same)."""
    q, _ = ref_quantize(x, scale, zero_point, qmin, qmax, axis)
    s = np.asarray(scale, np.float32).reshape(_shape(x, axis))
    zp = np.asarray(zero_point).reshape(_shape(x, axis))
    if axis is not None:
        return (q - zp) * s.astype(np.float64)
    return (q - zp).astype(np.float32) * s


def _ref_fq_tensor(x, scale, zero_point, quant_min, quant_max):
    return ref_fake_quantize(x, scale, zero_point, quant_min, quant_max)


def _ref_fq_channel(x, scale, zero_point, axis, quant_min, quant_max):
    return ref_fake_quantize(x, scale, zero_point, quant_min, quant_max, axis)


def _ties(dt):
    """Exact halves of the step 0.25 (ties to even) and values past both ends."""
    return np.array([-2.625, -0.375, -0.125, 0.125, 0.375, 0.625, 1.125, 40.0, -40.0],
                    dt.np)


def _fq_tensor_samples(dt):
    g = rng(160)

    def m(*shape):
        return make(shape, dt, g, low=-3.0, high=3.0, away=0.0)
    i32 = np.int32
    return [Sample((m(5), 0.05, 3, -128, 127), name="python-qparams"),
            Sample((m(), 0.1, 0, -128, 127), name="0d"),
            Sample((_ties(dt), 0.25, 0, -8, 7), name="ties-clamp"),
            Sample((_ties(dt), 0.25, 1, 0, 15), name="ties-zp"),
            Sample((transposed(m(3, 4)), np.array([0.02], np.float32),
                    np.array([10], i32), 0, 255), name="tensor-qparams-T"),
            Sample((noncontig(m(2, 3)), np.array(0.125, np.float32), np.array(-4, i32),
                    -128, 127), name="0d-qparams-strided"),
            Sample((m(2, 5), np.array([0.03], np.float32), np.array([60], i32), 0, 127),
                   name="reduce-range"),
            Sample((m(4, 3), 0.5, 100, 0, 1000), name="wide-range"),
            Sample((np.array([np.inf, -np.inf, 0.0, -0.0, 1.5], dt.np), 0.25, 2, -8, 7),
                   name="inf"),
            Sample((m(0, 3), 0.1, 0, -128, 127), name="empty")]


def _fq_channel_samples(dt):
    g = rng(161)

    def m(*shape):
        return make(shape, dt, g, low=-3.0, high=3.0, away=0.0)

    def s(n, seed=0):
        return (0.01 + 0.05 * np.arange(n) + 0.001 * seed).astype(np.float32)

    def z(*vals):
        return np.array(vals, np.int32)
    return [Sample((m(3, 4), s(3), z(0, 5, -7), 0, -128, 127), name="axis0"),
            Sample((m(2, 4), s(4, 1), z(0, 1, 2, 3), 1, 0, 255), name="axis1"),
            Sample((transposed(m(4, 3)), s(3, 2), z(1, 2, 3), 1, -8, 7), name="T-narrow"),
            Sample((noncontig(m(2, 3, 4)), s(4, 3), z(0, 0, 1, -1), 2, -128, 127),
                   name="strided-last-axis"),
            Sample((m(2, 3), np.array([0.25, 0.5], np.float32),
                    np.array([0.5, -1.25], np.float32), 0, 0, 255), name="float-zero-point"),
            Sample((np.stack([_ties(dt), -_ties(dt)]), np.array([0.25, 0.25], np.float32),
                    z(0, 3), 0, -8, 7), name="ties"),
            Sample((m(3, 0), s(3), z(0, 0, 0), 0, -128, 127), name="empty")]


def _qdq_samples(dt, per_channel, dequant, out_dt):
    g = rng(162)
    lo, hi = (-128, 127) if out_dt is fw.int8 else (0, 255)
    nlo, nhi = lo // 2, hi // 2                       # a reduced range
    zp, nzp = (lo + hi + 1) // 2, (nlo + nhi + 1) // 2  # mid-range zero points

    def m(*shape):
        if dequant:
            return np.asarray(g.integers(lo, hi + 1, size=shape)).astype(out_dt.np)
        return make(shape, dt, g, low=-3.0, high=3.0, away=0.0)
    kw = {"dtype": out_dt}
    if per_channel:
        s = np.array([0.02, 0.05, 0.25], np.float32)

        def z(mid):
            return np.array([mid, mid + 3, mid - 5], np.int32)
        return [Sample((m(3, 4), s, z(zp), 0, lo, hi), kw, name="axis0"),
                Sample((m(2, 3), s, z(zp), 1, lo, hi), kw, name="axis1"),
                Sample((noncontig(m(3, 2)), s, z(nzp), 0, nlo, nhi), kw, name="narrow"),
                Sample((m(3, 0), s, z(zp), 0, lo, hi), kw, name="empty")]
    return [Sample((m(5), 0.05, zp + 1, lo, hi), kw, name="python-qparams"),
            Sample((transposed(m(3, 4)), np.array([0.02], np.float32),
                    np.array([zp - 2], np.int32), lo, hi), kw, name="tensor-qparams"),
            Sample((m(), 0.25, nzp, nlo, nhi), kw, name="0d-narrow"),
            Sample((m(0, 2), 0.1, zp, lo, hi), kw, name="empty")]


def _ref_q(per_channel):
    def ref(x, scale, zero_point, *rest, dtype):
        axis = rest[0] if per_channel else None
        qmin, qmax = rest[-2:]
        return ref_quantize(x, scale, zero_point, qmin, qmax, axis)[0].astype(dtype.np)
    return ref


def _ref_dq(per_channel):
    def ref(x, scale, zero_point, *rest, dtype):
        axis = rest[0] if per_channel else None
        s = np.asarray(scale, np.float32).reshape(_shape(x, axis))
        zp = np.asarray(zero_point).reshape(_shape(x, axis))
        return (x.astype(np.float32) - zp.astype(np.float32)) * s
    return ref


def _qdq_records(name, fn, per_channel, dequant):
    out = []
    for out_dt, suffix in ((fw.int8, ""), (fw.uint8, "_uint8")):
        dts = (out_dt,) if dequant else _HALF_FLOATS
        out.append(OpInfo(
            name + suffix, fn, (_ref_dq if dequant else _ref_q)(per_channel),
            lambda dt, _o=out_dt: _qdq_samples(dt, per_channel, dequant, _o), dtypes=dts,
            differentiable=False, op=name,
            out_dtype=(lambda dt: fw.float32) if dequant else (lambda dt, _o=out_dt: _o)))
    return out


register_opinfo(
    OpInfo("fake_quantize_per_tensor_affine", fw.fake_quantize_per_tensor_affine,
           _ref_fq_tensor, _fq_tensor_samples, dtypes=FLOATS, differentiable=False,
           op="fake_quantize_per_tensor_affine"),
    OpInfo("fake_quantize_per_channel_affine", fw.fake_quantize_per_channel_affine,
           _ref_fq_channel, _fq_channel_samples, dtypes=FLOATS, differentiable=False,
           op="fake_quantize_per_channel_affine"),
    *_qdq_records("quantize_per_tensor", qd.quantize_per_tensor, False, False),
    *_qdq_records("quantize_per_channel", qd.quantize_per_channel, True, False),
    *_qdq_records("dequantize_per_tensor", qd.dequantize_per_tensor, False, True),
    *_qdq_records("dequantize_per_channel", qd.dequantize_per_channel, True, True),
)
