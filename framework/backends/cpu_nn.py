"""NumPy kernels for the neural-network composites in ``framework/ops/nn_ops.py``
(registered into the CPU backend's table; faster than running their decompositions)."""

from __future__ import annotations

import math

import numpy as np

from .cpu import IMPLS, impl
from .erf import erf_f64

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

def _wide(x):
    """Half-precision inputs are computed in float32 and rounded once."""
    return x.astype(np.float32) if x.dtype.itemsize < 4 else x


@impl("gelu")
def _gelu(x, approximate):
    w = _wide(x)
    with np.errstate(all="ignore"):
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (w + 0.044715 * w * w * w)
            out = 0.5 * w * (1.0 + np.tanh(inner))
        else:
            out = 0.5 * w * (1.0 + erf_f64(w / math.sqrt(2.0)))
    return out.astype(x.dtype, copy=False)


@impl("layer_norm")
def _layer_norm(x, weight, bias, normalized_ndim, eps):
    w = _wide(x)
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    mu = w.mean(axis=axes, keepdims=True)
    xc = w - mu
    var = (xc * xc).mean(axis=axes, keepdims=True)
    out = xc / np.sqrt(var + eps) * _wide(weight) + _wide(bias)
    return out.astype(x.dtype, copy=False)


@impl("embedding")
def _embedding(weight, indices, padding_idx, scale_grad_by_freq=False):
    n = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        from ..errors import FwIndexError
        bad = indices[(indices < 0) | (indices >= n)].reshape(-1)[0]
        raise FwIndexError(f"embedding: index {int(bad)} is out of range for a table of "
                           f"{n} rows")
    return weight[indices]


@impl("cross_entropy")
def _cross_entropy(logits, target, ignore_index):
    w = _wide(logits)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    c = logits.shape[1]
    if np.any(valid & ((safe < 0) | (safe >= c))):
        from ..errors import FwIndexError
        bad = safe[valid & ((safe < 0) | (safe >= c))][0]
        raise FwIndexError(f"cross_entropy: target {int(bad)} is out of bounds for {c} classes")
    with np.errstate(all="ignore"):
        m = w.max(axis=1, keepdims=True)
        lse = np.log(np.exp(w - m).sum(axis=1)) + m[:, 0]
        picked = np.take_along_axis(w, safe[:, None], axis=1)[:, 0]
    return np.where(valid, lse - picked, 0).astype(logits.dtype, copy=False)


__all__ = ["IMPLS", "erf_f64"]
