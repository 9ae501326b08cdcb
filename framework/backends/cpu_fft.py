"""CPU kernels of the FFT primitives (framework/ops/fft_ops.py): NumPy's pocketfft. The
results are cast back to the op's dtype by the dispatcher (complex64 for float32 input)."""

from __future__ import annotations

import numpy as np

from .cpu import impl


@impl("fft_c2c")
def _c2c(x, dims, norm, forward):
    fn = np.fft.fftn if forward else np.fft.ifftn
    return fn(x, axes=dims, norm=norm)


@impl("fft_r2c")
def _r2c(x, dim, norm):
    return np.fft.rfft(x, axis=dim, norm=norm)


@impl("fft_c2r")
def _c2r(x, dim, norm, n):
    return np.fft.irfft(x, n=n, axis=dim, norm=norm)
