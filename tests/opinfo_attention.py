"""OpInfo records: the fused attention ops ``flash_attention`` (out, logsumexp) and
``flash_attention_backward`` (dq, dk, dv) against NumPy float64 formulas: causal and not,
L != S, grouped-query heads, non-contiguous inputs, no key at all, and a sample small
enough for the second-derivative check."""

from __future__ import annotations

import numpy as np

import framework as fw
from framework.ops import attention_ops
from tests.opinfo import OpInfo, Sample, make, register_opinfo, rng

_DTYPES = (fw.float32, fw.float64, fw.float16, fw.bfloat16)


def _lse_dt(dt):
    return fw.float64 if dt is fw.float64 else fw.float32


def _scores(q, k, is_causal, scale):
    g = q.shape[1] // k.shape[1]
    kk = np.repeat(k, g, 1)
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(kk, -1, -2) * scale
    if is_causal:
        s = np.where(np.tri(q.shape[2], k.shape[2], dtype=bool), s, -np.inf)
    return s, kk, scale


def ref_forward(q, k, v, is_causal=False, scale=None):
    """(out, lse) of softmax attention in float64."""
    s, _, _ = _scores(q, k, is_causal, scale)
    vv = np.repeat(v, q.shape[1] // k.shape[1], 1)
    if s.shape[-1] == 0:
        return np.zeros(s.shape[:-1] + (v.shape[-1],)), np.full(s.shape[:-1], -np.inf)
    m = s.max(-1, keepdims=True)
    lse = np.log(np.exp(s - m).sum(-1, keepdims=True)) + m
    return np.exp(s - lse) @ vv, lse[..., 0]


def ref_backward(q, k, v, out, lse, dout, dlse, is_causal=False, scale=None):
    """(dq, dk, dv) of the FlashAttention backward formulas in float64."""
    g = q.shape[1] // k.shape[1]
    s, kk, scale = _scores(q, k, is_causal, scale)
    vv = np.repeat(v, g, 1)
    p = np.exp(s - lse[..., None])
    delta = (dout * out).sum(-1, keepdims=True) - dlse[..., None]
    ds = p * (dout @ np.swapaxes(vv, -1, -2) - delta)
    dq = ds @ kk * scale
    dk = (np.swapaxes(ds, -1, -2) @ q * scale)
    dv = np.swapaxes(p, -1, -2) @ dout

    def fold(x):
        return x.reshape(x.shape[0], k.shape[1], g, *x.shape[2:]).sum(2)
    return dq, fold(dk), fold(dv)


def _layouts(dt, gen):
    """(q, k, v, kwargs, name, grad) tuples of the samples."""
    def m(*shape):
        return make(shape, dt, gen, low=-1.0, high=1.0, away=0.0)

    def transposed(b, h, n, d):  # (B, N, H, D) memory seen as (B, H, N, D)
        return np.swapaxes(m(b, n, h, d), 1, 2)
    return [
        (m(1, 1, 2, 3), m(1, 1, 3, 3), m(1, 1, 3, 2), {"is_causal": True}, "tiny", True),
        (m(1, 2, 4, 3), m(1, 2, 5, 3), m(1, 2, 5, 2), {}, "basic", True),
        (m(2, 2, 5, 4), m(2, 2, 3, 4), m(2, 2, 3, 4), {"is_causal": True, "scale": 0.5},
         "causal-L>S", True),
        (m(1, 4, 3, 4), m(1, 2, 6, 4), m(1, 2, 6, 3), {"is_causal": True}, "gqa", True),
        (transposed(2, 2, 3, 5), transposed(2, 2, 4, 5), transposed(2, 2, 4, 5), {},
         "noncontig", True),
        (m(1, 1, 2, 3), m(1, 1, 0, 3), m(1, 1, 0, 2), {}, "no-keys", False),
    ]


def _fwd_samples(dt):
    return [Sample((q, k, v), kw, name=name, grad=grad)
            for q, k, v, kw, name, grad in _layouts(dt, rng(60))]


def _bwd_samples(dt):
    gen = rng(61)
    out = []
    for q, k, v, kw, name, grad in _layouts(dt, gen):
        if name == "no-keys":
            continue
        o, lse = ref_forward(*(a.astype(np.float64) for a in (q, k, v)), **kw)
        lse_np = _lse_dt(dt).np
        dout = make(o.shape, dt, gen, low=-1.0, high=1.0, away=0.0)
        dlse = make(lse.shape, _lse_dt(dt), gen, low=-0.5, high=0.5, away=0.0)
        out.append(Sample((q, k, v, o.astype(dt.np), lse.astype(lse_np), dout, dlse), kw,
                          name=name, grad=grad))
    return out


register_opinfo(
    OpInfo("flash_attention", attention_ops.flash_attention, ref_forward, _fwd_samples,
           dtypes=_DTYPES, op="flash_attention", out_dtype=lambda dt: (dt, _lse_dt(dt))),
    OpInfo("flash_attention_backward", attention_ops.flash_attention_backward, ref_backward,
           _bwd_samples, dtypes=_DTYPES, op="flash_attention_backward"),
)
