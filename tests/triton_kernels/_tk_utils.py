"""Helpers shared by the triton_kernels tests: host buffers, rounding, tolerances."""

import ml_dtypes
import numpy as np

from triton_kernels.buffers import HostBuffer

BF16 = np.dtype(ml_dtypes.bfloat16)
FP16 = np.dtype(np.float16)
FP32 = np.dtype(np.float32)
FLOATS = [FP32, FP16, BF16]
IDS = {FP32: "fp32", FP16: "fp16", BF16: "bf16"}
# (rtol, atol) for results rounded to the dtype (bf16 stores truncate in the interpreter)
TOL = {FP32: (1e-5, 1e-5), FP16: (2e-3, 2e-3), BF16: (2e-2, 2e-2)}


def rand(rng, shape, dtype=FP32, scale=1.0):
    """Random normal array rounded to ``dtype``."""
    return (rng.standard_normal(shape) * scale).astype(np.float32).astype(dtype)


def f32(a):
    """Array (or HostBuffer) as float32 NumPy array."""
    return np.asarray(a.numpy() if isinstance(a, HostBuffer) else a).astype(np.float32)


def close(actual, expected, dtype=FP32, scale=1.0):
    """Assert ``actual`` (any buffer/array) matches ``expected`` within ``dtype``'s tolerance."""
    rtol, atol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(f32(actual), f32(expected), rtol=rtol, atol=atol * scale)
