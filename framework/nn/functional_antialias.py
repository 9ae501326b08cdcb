"""The ``(out, in)`` resampling matrices of ``interpolate(..., antialias=True)``.

PyTorch's antialiased ``bilinear`` / ``bicubic`` (``_upsample_bilinear2d_aa`` /
``_upsample_bicubic2d_aa``, ATen ``UpSampleKernel.cpp``: ``_compute_index_ranges_weights``
and ``_compute_indices_min_size_weights_aa``) are PIL-style separable filters. Along one
dim of input size ``n`` and output size ``o``, with ``scale`` from
``area_pixel_compute_scale`` (``1 / scale_factor`` when a scale factor is passed on,
``n / o`` otherwise; ``(n - 1) / (o - 1)``, or 0 when ``o == 1``, with
``align_corners=True``), output sample ``i`` is

    center  = scale * (i + 0.5)
    support = (interp / 2) * max(scale, 1)      interp = 2 (triangle), 4 (cubic)
    xmin    = max(trunc(center - support + 0.5), 0)
    xsize   = clamp(min(trunc(center + support + 0.5), n) - xmin, 0, 2 * ceil(support) + 1)
    w_j     = filter((xmin + j - center + 0.5) / max(scale, 1)),  j < xsize
    out[i]  = sum_j w_j * in[xmin + j] / sum_j w_j    (unnormalized if the sum is 0)

with the triangle ``max(1 - |x|, 0)`` for bilinear and Keys' cubic with ``a = -0.5`` for
bicubic (PIL's; the non-antialiased bicubic uses ``a = -0.75``), also when upsampling.
``align_corners`` only changes ``scale``: the centers stay at ``(i + 0.5) * scale``. A
dim whose size does not change is copied unchanged (ATen's CPU kernel skips it).

The matrices depend on sizes only, so they are built once on the host (and cached); the
resampling itself is one matmul per dim, which differentiates, compiles, runs on cuda and
exports to ONNX like the other interpolation modes.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["antialias_matrix"]

_INTERP_SIZE = {"bilinear": 2, "bicubic": 4}


def _triangle(x):
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _keys_cubic(x, a=-0.5):
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.lru_cache(maxsize=256)
def antialias_matrix(n: int, o: int, scale: float, mode: str) -> np.ndarray:
    """The float64 ``(o, n)`` antialiased resampling matrix of one dim (read-only)."""
    interp = _INTERP_SIZE[mode]
    support = interp * 0.5 * scale if scale >= 1.0 else interp * 0.5
    max_taps = int(math.ceil(support)) * 2 + 1
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    center = scale * (np.arange(o, dtype=np.float64) + 0.5)
    # trunc (C++ static_cast<int64_t>), not floor: equal here once clamped at 0
    xmin = np.maximum(np.trunc(center - support + 0.5), 0.0).astype(np.int64)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), n)
    xmax = np.clip(xmax, xmin, xmin + max_taps)
    src = np.arange(n)
    taps = (src >= xmin[:, None]) & (src < xmax[:, None])
    filt = _triangle if mode == "bilinear" else _keys_cubic
    w = np.where(taps, filt((src - center[:, None] + 0.5) * invscale), 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=w, where=total != 0.0)
    w.setflags(write=False)
    return w
