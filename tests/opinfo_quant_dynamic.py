"""OpInfo records: the dynamic quantization ops of framework/ops/quant_dynamic_ops.py
(``dynamic_quantize_linear`` in both arithmetics, ``matmul_integer``). References are
NumPy written here: PyTorch's ``ChooseQuantizationParams`` transcribed step by step, the
fbgemm fused multiply-add rounded to float32 exactly (with fractions), ONNX's
DynamicQuantizeLinear formulas, and an int64 matmul. tests/test_quantization_dynamic.py
adds the cases records cannot hold (errors, onnxruntime's own kernel)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

import framework as fw
from framework.ao.quantization import quantized_decomposed as qd
from tests.opinfo import OpInfo, Sample, noncontig, register_opinfo, rng, transposed

F32 = np.float32
_SMALL = F32(6.1e-5)


def f32_nearest(value: Fraction) -> np.float32:
    """The float32 nearest to the exact rational ``value`` (ties to even), for normal
    magnitudes."""
    if value == 0:
        return F32(0)
    sign, a = (-1 if value < 0 else 1), abs(value)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1                       # now 2^e <= a < 2^(e+1)
    ulp = Fraction(2) ** (e - 23)
    m = a / ulp                      # in [2^23, 2^24)
    r = math.floor(m)
    if m - r > Fraction(1, 2) or (m - r == Fraction(1, 2) and r % 2):
        r += 1
    return F32(sign * float(r * ulp))


def choose_qparams(mn, mx, qmin, qmax):
    """quant_utils::ChooseQuantizationParams (preserve_sparsity and power-of-two off)."""
    mn, mx = min(F32(mn), F32(0)), max(F32(mx), F32(0))
    scale = (float(mx) - float(mn)) / (qmax - qmin)
    with np.errstate(divide="ignore", over="ignore"):
        if F32(scale) == 0 or np.isinf(F32(1) / F32(scale)):
            scale = 0.1
    if scale < float(_SMALL):
        org = F32(scale)
        scale = float(_SMALL)
        if mn == 0:
            mx = _SMALL * F32(qmax - qmin)
        elif mx == 0:
            mn = -_SMALL * F32(qmax - qmin)
        else:
            mn, mx = mn * (_SMALL / org), mx * (_SMALL / org)
    from_min, from_max = qmin - float(mn) / scale, qmax - float(mx) / scale
    err_min = abs(qmin) - abs(float(mn) / scale)
    err_max = abs(qmax) - abs(float(mx) / scale)
    z = from_min if err_min < err_max else from_max
    return scale, (qmin if z < qmin else qmax if z > qmax else int(np.rint(z)))


def ref_dynamic_quantize(x, reduce_range):
    """(q uint8, scale float32, zero_point uint8) of a float32 array."""
    x = np.asarray(x).astype(F32)
    lo = F32(x.min()) if x.size else F32(0)
    hi = F32(x.max()) if x.size else F32(0)
    if reduce_range:
        scale, zp = choose_qparams(lo, hi, 0, 127)
        s = F32(scale)
        inv = Fraction(float(F32(1) / s))
        t = np.array([f32_nearest(Fraction(float(v)) * inv + zp) for v in x.ravel()], F32)
        q = np.clip(np.rint(t), 0, 255).reshape(x.shape)
    else:
        mn, mx = min(lo, F32(0)), max(hi, F32(0))
        s = F32(1) if mx == mn else F32((mx - mn) / F32(255))
        zp = int(np.rint(np.clip(F32(0) - mn / s, 0, 255)))
        q = np.clip(np.rint(x / s) + zp, 0, 255)
    return q.astype(np.uint8), np.array(s, F32), np.array(zp, np.uint8)


def _dql_samples(dt):
    g = rng(170)

    def m(*shape, scale=1.0, shift=0.0):
        return np.asarray(g.normal(size=shape) * scale + shift).astype(F32)
    return [Sample((m(4, 6),), name="2d"),
            Sample((transposed(m(3, 5, scale=30.0)),), name="T"),
            Sample((noncontig(m(2, 3, 4, scale=0.01)),), name="strided"),
            Sample((m(),), name="0d"),
            Sample((np.abs(m(7, shift=1.0)),), name="positive"),
            Sample((-np.abs(m(7, shift=1.0)),), name="negative"),
            Sample((m(2, 5, scale=1e-6),), name="small-scale-cutoff"),
            Sample((np.abs(m(6, scale=1e-6)),), name="small-scale-positive"),
            Sample((np.array([0.0, 1.0, 2.5, -0.5, 127.0, -3.25], F32),), name="exact"),
            # scale 0.25, zero point 3 (7-bit): exact ties, rounded after adding the odd
            # zero point (fbgemm's fused form: 0.125 -> nearbyint(3.5) = 4, not 0 + 3)
            Sample((np.array([-0.75, 31.0, 0.125, 0.375, 0.625, -0.375, 1.125], F32),),
                   name="ties-odd-zero-point"),
            Sample((np.zeros((2, 3), F32),), name="zeros"),
            Sample((m(0, 4),), name="empty")]


def _dql_record(name, reduce_range):
    return OpInfo(name, lambda x, _r=reduce_range: qd.dynamic_quantize_linear(x, _r),
                  lambda x, _r=reduce_range: ref_dynamic_quantize(x, _r), _dql_samples,
                  dtypes=(fw.float32,), differentiable=False, op="dynamic_quantize_linear",
                  out_dtype=lambda dt: (fw.uint8, fw.float32, fw.uint8),
                  tols={fw.float32: (0, 0)})


def ref_matmul_integer(a, b, a_zero_point, b_zero_point):
    """The int64 product of the shifted integers, wrapped to int32."""
    a64 = a.astype(np.int64) - np.asarray(a_zero_point, np.int64).reshape(())
    b64 = b.astype(np.int64) - np.asarray(b_zero_point, np.int64).reshape(-1)
    return np.matmul(a64, b64).astype(np.int32)


def _mmi_samples(dt):
    g = rng(171)

    def ints(dtype, *shape):
        lo, hi = (0, 256) if dtype == np.uint8 else (-128, 128)
        return g.integers(lo, hi, size=shape).astype(dtype)
    a_dt = dt.np
    b_dt = np.int8
    az = np.array(131 if a_dt == np.uint8 else -7, a_dt)
    bz = np.array(3, b_dt)
    cols = np.array([0, -2, 5, 127], b_dt)
    out = [Sample((ints(a_dt, 3, 5), ints(b_dt, 5, 4), az, bz), name="2d"),
           Sample((ints(a_dt, 2, 3, 5), transposed(ints(b_dt, 5, 4)), az, cols),
                  name="3d-per-column-T"),
           Sample((ints(a_dt, 5), ints(b_dt, 5, 4), az.reshape(1), bz.reshape(1)),
                  name="1d-a"),
           Sample((noncontig(ints(a_dt, 4, 6)), ints(b_dt, 6, 3), az, bz), name="strided"),
           Sample((ints(a_dt, 0, 5), ints(b_dt, 5, 4), az, bz), name="empty-m"),
           Sample((ints(a_dt, 3, 0), ints(b_dt, 0, 4), az, cols), name="empty-k")]
    if a_dt == np.uint8:  # onnxruntime's MatMulInteger has uint8 x uint8 too
        out.append(Sample((ints(a_dt, 3, 5), ints(np.uint8, 5, 2), az,
                           np.array([1, 250], np.uint8)), name="uint8-uint8"))
    return out


register_opinfo(
    _dql_record("dynamic_quantize_linear", True),
    _dql_record("dynamic_quantize_linear_8bit", False),
    OpInfo("matmul_integer", qd.matmul_integer, ref_matmul_integer, _mmi_samples,
           dtypes=(fw.uint8, fw.int8), differentiable=False, op="matmul_integer",
           out_dtype=lambda dt: fw.int32),
)
