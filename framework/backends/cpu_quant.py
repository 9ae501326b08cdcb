"""NumPy kernels of the quantization ops (``framework/ops/quant_ops.py``), registered into
the CPU backend's table.

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
