"""NumPy kernels of ``flash_attention`` / ``flash_attention_backward`` (ops/attention_ops.py):
the same math formulas as the ops' decompositions (the score matrix is materialized;
grouped-query heads by reshaping, no copies), accumulated in float32 (float64 for float64).
They serve direct calls of the ops on the CPU and the NumPy code generator; the CPU's
``scaled_dot_product_attention`` itself runs the math path of public ops."""

from __future__ import annotations

import numpy as np

from ..ops import attention_ops  # noqa: F401  (registers the ops these kernels serve)
from .cpu import impl


def _grouped(q, k, v, scale, is_causal):
    cd = np.float64 if q.dtype == np.float64 else np.float32
    b, h, length, d = q.shape
    hk, src = k.shape[1], k.shape[2]
    q5 = q.astype(cd, copy=False).reshape(b, hk, h // hk, length, d)
    k5 = k.astype(cd, copy=False)[:, :, None]
    v5 = v.astype(cd, copy=False)[:, :, None]
    scores = np.matmul(q5, np.swapaxes(k5, -1, -2)) * cd(scale)
    if is_causal:
        scores = np.where(np.tri(length, src, dtype=bool), scores, -np.inf)
    return scores, q5, k5, v5


def _logsumexp(scores):
    if scores.shape[-1] == 0:
        return np.full(scores.shape[:-1], -np.inf, scores.dtype)
    m = scores.max(-1)
    m_safe = np.where(np.isinf(m), 0.0, m).astype(scores.dtype)
    return np.log(np.exp(scores - m_safe[..., None]).sum(-1)) + m_safe


@impl("flash_attention")
def _flash_attention(q, k, v, is_causal, scale):
    b, h, length, _ = q.shape
    scores, _, _, v5 = _grouped(q, k, v, scale, is_causal)
    lse = _logsumexp(scores)
    out = np.matmul(np.exp(scores - lse[..., None]), v5)
    return (out.reshape(b, h, length, v.shape[3]).astype(q.dtype),
            lse.reshape(b, h, length))


@impl("flash_attention_backward")
def _flash_attention_backward(q, k, v, out, lse, dout, dlse, is_causal, scale):
    b, h, length, d = q.shape
    hk = k.shape[1]
    scores, q5, k5, v5 = _grouped(q, k, v, scale, is_causal)
    cd = scores.dtype
    shape5 = (b, hk, h // hk, length)
    p = np.exp(scores - lse.astype(cd).reshape(shape5 + (1,)))
    do5 = dout.astype(cd).reshape(shape5 + (v.shape[3],))
    delta = (do5 * out.astype(cd).reshape(do5.shape)).sum(-1, keepdims=True)
    delta -= dlse.astype(cd).reshape(shape5 + (1,))
    ds = p * (np.matmul(do5, np.swapaxes(v5, -1, -2)) - delta)
    dq = (np.matmul(ds, k5) * cd.type(scale)).reshape(b, h, length, d)
    dk = (np.matmul(np.swapaxes(ds, -1, -2), q5) * cd.type(scale)).sum(2)
    dv = np.matmul(np.swapaxes(p, -1, -2), do5).sum(2)
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)
