"""fbgemm's ``ChooseQuantizationParams`` (PyTorch's ``quant_utils.h``), the qparams rule of
``FusedMovingAvgObsFakeQuantize``, vectorized with tensor ops so a compiled QAT step
captures it. It differs from the observers' ``calculate_qparams``: the scale is computed in
float64, a zero or infinite-reciprocal scale becomes 0.1, scales under ``6.1e-5`` are
raised to it (stretching the range), the zero point comes from whichever end of the range
loses less precision, and symmetric ("preserve sparsity") ranges are widened to
``[-(qmax - qmin) // 2 - 1, (qmax - qmin) // 2]`` steps around a midpoint zero point.
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ...ops import maximum
from ...ops.pointwise import where

SMALL_SCALE_THRESHOLD = np.float32(6.1e-5)  # fp16's smallest normal, as in PyTorch
_F32, _F64 = dtypes.float32, dtypes.float64


def _stretch_small_scales(scale, lo, hi, qmin, qmax):
    """Scales under the threshold become it; the range grows to match."""
    small = scale < float(SMALL_SCALE_THRESHOLD)
    amp = float(SMALL_SCALE_THRESHOLD) / scale.to(_F32)      # float32, as in C++
    span = float(SMALL_SCALE_THRESHOLD * np.float32(qmax - qmin))
    new_lo = where(lo == 0, lo, where(hi == 0, -span, lo * amp))
    new_hi = where(lo == 0, span, where(hi == 0, hi, hi * amp))
    return (where(small, float(SMALL_SCALE_THRESHOLD), scale), where(small, new_lo, lo),
            where(small, new_hi, hi))


def choose_qparams(min_val, max_val, qmin: int, qmax: int, preserve_sparsity: bool):
    """(float32 scale, int32 zero point) per element of the float ``min_val``/``max_val``
    (1-D tensors), exactly as ``quant_utils::ChooseQuantizationParams``."""
    lo, hi = min_val.to(_F32), max_val.to(_F32)
    if preserve_sparsity:
        sym_min, sym_max = -((qmax - qmin) // 2 + 1), (qmax - qmin) // 2
        both = (lo < 0) & (hi > 0)
        step = maximum((lo / float(sym_min)).abs(), (hi / float(sym_max)).abs()).to(_F64)
        lo = where(both, (step * sym_min).to(_F32), lo)
        hi = where(both, (step * sym_max).to(_F32), hi)
    lo, hi = lo.clamp(max=0.0), hi.clamp(min=0.0)           # the range includes 0
    scale = (hi.to(_F64) - lo.to(_F64)) / float(qmax - qmin)
    s32 = scale.to(_F32)
    scale = where((s32 == 0) | (1.0 / s32).isinf(), 0.1, scale)
    scale, lo, hi = _stretch_small_scales(scale, lo, hi, qmin, qmax)
    q_lo, q_hi = lo.to(_F64) / scale, hi.to(_F64) / scale
    from_min, from_max = qmin - q_lo, qmax - q_hi
    err_min, err_max = abs(qmin) - q_lo.abs(), abs(qmax) - q_hi.abs()
    zp = where(err_min < err_max, from_min, from_max)
    if preserve_sparsity:
        zp = where((lo < 0) & (hi > 0), (qmin + qmax) / 2, zp)
    zp = where(zp < qmin, float(qmin), where(zp > qmax, float(qmax), zp.round()))
    return scale.to(_F32), zp.to(dtypes.int32)
