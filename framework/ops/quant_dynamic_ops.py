"""Dynamic quantization ops, the integer building blocks of
``framework.ao.nn.quantized.dynamic.Linear`` (public as
:mod:`framework.ao.quantization.quantized_decomposed`):

``dynamic_quantize_linear(input, reduce_range)`` -> ``(q, scale, zero_point)``
    Quantize a float32 tensor to uint8 with a scale and zero point computed, per call, from
    the tensor's own range (extended to include 0). Two arithmetics, one per runtime:

    * ``reduce_range=True``: PyTorch's x86 (fbgemm) dynamic linear kernel. 7-bit range
      ``[0, 127]``; ``quant_utils::ChooseQuantizationParams`` in float64 (scale 0.1 when
      the range is empty, the 6.1e-5 small-scale cutoff, the zero point taken from the
      end with the smaller rounding error); the float32 scale; then
      ``q = clamp(nearbyint(fma(x, 1/scale, zero_point)), 0, 255)`` in float32 (fbgemm's
      ``QuantizeAvx2``; the fused multiply-add is computed in float64 and rounded once).
    * ``reduce_range=False``: ONNX's ``DynamicQuantizeLinear`` (8-bit, the scheme
      PyTorch's qnnpack engine uses): ``scale = (max - min) / 255`` in float32 (1 when
      ``max == min``), ``zero_point = nearbyint(clamp(-min / scale, 0, 255))``,
      ``q = clamp(nearbyint(x / scale) + zero_point, 0, 255)``.

    ``scale`` is a 0-d float32 tensor, ``zero_point`` a 0-d uint8 tensor. Non-finite
    input has no meaningful qparams: the CPU kernel raises.

``matmul_integer(a, b, a_zero_point, b_zero_point)``
    ONNX's ``MatMulInteger``: ``(a - a_zero_point) @ (b - b_zero_point)`` as int32, with
    ``a`` int8/uint8 ``[..., K]``, ``b`` int8/uint8 ``[K, N]``, a per-tensor
    ``a_zero_point`` and a per-tensor or per-column (``[N]``) ``b_zero_point`` of the
    operands' dtypes. Exact (int32 wrap-around past 2^31, as the ONNX kernel).

Both have decompositions into primitives (int32 / float64 arithmetic, exact), which the
CUDA backend and the Triton compiler use; the NumPy kernels live in
``framework/backends/cpu_quant.py``, the ONNX lowerings in
``compiler/onnx_lowering/quant_dynamic.py``. Neither is differentiable (integer outputs).
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import DTypeError, FwTypeError, ShapeError
from ..tensor import Tensor
from .registry import COMPOSITE, apply, register
from .quant_ops import _static_numel

METHODS = ""
INPLACE_METHODS = ""

#: fbgemm's cutoff: scales below fp16's smallest normal become this (a float32 constant).
SMALL_SCALE_THRESHOLD = float(np.float32(6.1e-5))
_INT8 = (dtypes.int8, dtypes.uint8)


# ---------------------------------------------------------------------------------------
# dynamic_quantize_linear
_DQL = "dynamic_quantize_linear"


def _dql_meta(x, *, reduce_range):
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{_DQL}: expected a Tensor as input, got {type(x).__name__}")
    if x.dtype is not dtypes.float32:
        raise DTypeError(f"{_DQL}: expected a float32 input, got {x.dtype.name}")
    return ((x.shape, dtypes.uint8), ((), dtypes.float32), ((), dtypes.uint8))


def _range(x):
    """(min(x.min(), 0), max(x.max(), 0)) as 0-d float32 tensors (0, 0 when empty)."""
    from ..creation import zeros
    n = 1
    for s in x.shape:
        n = n * s
    if isinstance(n, int) and n == 0:
        z = zeros((), dtype=dtypes.float32, device=x.device)
        return z, z
    return x.amin().clamp(max=0.0), x.amax().clamp(min=0.0)


def _fbgemm_decomp(x, mn, mx):
    """``ChooseQuantizationParams(reduce_range=True)`` and ``QuantizeAvx2`` with tensor
    ops (the scalar C++ branches become ``where`` selections)."""
    from .pointwise import where
    f32, f64 = dtypes.float32, dtypes.float64
    qmin, qmax = 0, 127
    n = float(qmax - qmin)
    scale = (mx.to(f64) - mn.to(f64)) / n
    s32 = scale.to(f32)
    scale = where((s32 == 0) | (1.0 / s32).isinf(), 0.1, scale)
    # the small-scale cutoff widens [min, max] (in float32, as the C++ code does)
    small = scale < SMALL_SCALE_THRESHOLD
    amp = SMALL_SCALE_THRESHOLD / scale.to(f32)
    widened = float(np.float32(SMALL_SCALE_THRESHOLD) * np.float32(n))  # a float32 product
    mn_small = where(mn == 0, mn, where(mx == 0, -widened, mn * amp))
    mx_small = where(mn == 0, widened, where(mx == 0, mx, mx * amp))
    mn, mx = where(small, mn_small, mn), where(small, mx_small, mx)
    scale = where(small, SMALL_SCALE_THRESHOLD, scale)
    lo, hi = mn.to(f64) / scale, mx.to(f64) / scale
    from_min, from_max = qmin - lo, qmax - hi
    err_min, err_max = abs(qmin) - lo.abs(), abs(qmax) - hi.abs()
    zp = where(err_min < err_max, from_min, from_max).clamp(qmin, qmax).round()
    s32 = scale.to(f32)
    inv = (1.0 / s32).to(f64)
    q = (x.to(f64) * inv + zp).to(f32).round().clamp(0, 255)
    return q.to(dtypes.uint8), s32, zp.to(dtypes.uint8)


def _onnx_decomp(x, mn, mx):
    """ONNX DynamicQuantizeLinear's formulas in float32."""
    from .pointwise import where
    scale = where(mx == mn, 1.0, (mx - mn) / 255.0)
    zp = (0.0 - mn / scale).clamp(0, 255).round()
    q = ((x / scale).round() + zp).clamp(0, 255)
    return q.to(dtypes.uint8), scale, zp.to(dtypes.uint8)


def _dql_decomp(x, *, reduce_range):
    mn, mx = _range(x)
    return (_fbgemm_decomp if reduce_range else _onnx_decomp)(x, mn, mx)


DYNAMIC_QUANTIZE_LINEAR = register(_DQL, COMPOSITE, _dql_meta, decomp=_dql_decomp,
                                   num_outputs=3)


def dynamic_quantize_linear(input, reduce_range=False):
    """``(q, scale, zero_point)``: ``input`` (float32) quantized to uint8 with qparams
    computed from its own range; ``reduce_range=True`` is PyTorch's x86/fbgemm dynamic
    quantization (7-bit), ``False`` ONNX's ``DynamicQuantizeLinear`` (8-bit). See the
    module docstring for the exact arithmetic."""
    if not isinstance(reduce_range, bool):
        raise FwTypeError(f"{_DQL}: reduce_range must be a bool, got "
                          f"{type(reduce_range).__name__}")
    return apply(DYNAMIC_QUANTIZE_LINEAR, input, reduce_range=reduce_range)


# ---------------------------------------------------------------------------------------
# matmul_integer
_MMI = "matmul_integer"


def _mmi_meta(a, b, a_zero_point, b_zero_point):
    for t, what in ((a, "a"), (b, "b"), (a_zero_point, "a_zero_point"),
                    (b_zero_point, "b_zero_point")):
        if not isinstance(t, Tensor):
            raise FwTypeError(f"{_MMI}: {what} must be a Tensor, got {type(t).__name__}")
    for t, zp, what in ((a, a_zero_point, "a"), (b, b_zero_point, "b")):
        if t.dtype not in _INT8:
            raise DTypeError(f"{_MMI}: {what} must be int8 or uint8, got {t.dtype.name}")
        if zp.dtype is not t.dtype:
            raise DTypeError(f"{_MMI}: {what}_zero_point must have {what}'s dtype "
                             f"{t.dtype.name}, got {zp.dtype.name}")
    if a.ndim < 1 or b.ndim != 2:
        raise ShapeError(f"{_MMI}: expected a of at least 1 dimension and a 2-D b, got "
                         f"shapes {list(a.shape)} and {list(b.shape)}")
    k, n = b.shape
    if isinstance(a.shape[-1], int) and isinstance(k, int) and a.shape[-1] != k:
        raise ShapeError(f"{_MMI}: a's last dimension ({a.shape[-1]}) must equal b's first "
                         f"({k}); shapes {list(a.shape)} and {list(b.shape)}")
    if a_zero_point.ndim > 1 or _static_numel(a_zero_point.shape) not in (1, None):
        raise ShapeError(f"{_MMI}: a_zero_point must hold one element, got shape "
                         f"{list(a_zero_point.shape)}")
    zn = _static_numel(b_zero_point.shape)
    if b_zero_point.ndim > 1 or (zn is not None and zn != 1 and
                                 (b_zero_point.ndim == 0 or
                                  (isinstance(n, int) and zn != n))):
        raise ShapeError(f"{_MMI}: b_zero_point must hold one element or one per column of "
                         f"b ({n}), got shape {list(b_zero_point.shape)}")
    return tuple(a.shape[:-1]) + (n,), dtypes.int32


def _mmi_decomp(a, b, a_zero_point, b_zero_point):
    i32 = dtypes.int32
    az = a_zero_point.to(i32).reshape(())
    bz = b_zero_point.to(i32).reshape(-1)
    return (a.to(i32) - az).matmul(b.to(i32) - bz)


MATMUL_INTEGER = register(_MMI, COMPOSITE, _mmi_meta, decomp=_mmi_decomp)


def _zero_point(value, like, what):
    """A zero point tensor of ``like``'s dtype on its device (0 when None; ints allowed)."""
    from ..creation import full
    if value is None:
        value = 0
    if isinstance(value, Tensor):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FwTypeError(f"{_MMI}: {what} must be an int or a Tensor, got "
                          f"{type(value).__name__}")
    return full((), int(value), dtype=like.dtype, device=like.device)


def matmul_integer(a, b, a_zero_point=None, b_zero_point=None):
    """``(a - a_zero_point) @ (b - b_zero_point)`` in exact int32 arithmetic (ONNX's
    ``MatMulInteger``): ``a`` int8/uint8 ``[..., K]``, ``b`` int8/uint8 ``[K, N]``;
    zero points default to 0 (a per-column ``[N]`` tensor for ``b`` is allowed)."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise FwTypeError(f"{_MMI}: a and b must be Tensors, got {type(a).__name__} and "
                          f"{type(b).__name__}")
    return apply(MATMUL_INTEGER, a, b, _zero_point(a_zero_point, a, "a_zero_point"),
                 _zero_point(b_zero_point, b, "b_zero_point"))


__all__: list[str] = []  # public through framework.ao.quantization.quantized_decomposed
