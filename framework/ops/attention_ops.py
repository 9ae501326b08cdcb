"""Fused attention ops: ``flash_attention`` and its gradient ``flash_attention_backward``.

``flash_attention(q, k, v, is_causal, scale) -> (out, lse)`` over ``q (B, H, L, D)``,
``k (B, Hkv, S, D)``, ``v (B, Hkv, S, Dv)``, ``H`` a multiple of ``Hkv`` (grouped-query
attention: query head ``h`` uses key/value head ``h // (H // Hkv)``). ``out`` has ``q``'s
dtype; ``lse`` is the row logsumexp of the scaled (masked) scores, float32 (float64 for
float64 inputs). ``is_causal`` is PyTorch's top-left aligned mask (query ``i`` sees keys
``j <= i``).

On "cuda" both ops run the Triton kernels of ``triton_kernels.attention`` (the L x S score
matrix never exists in memory); everywhere else (CPU, the NumPy codegen, ONNX export, dtypes
the kernels lack) they run their decompositions: the math formulas written with public ops,
accumulated in float32. ``scaled_dot_product_attention`` picks this op on "cuda" (see
``framework/nn/functional_attention.py``); it is not a public function of ``framework.ops``.
"""

from __future__ import annotations

import math

from .. import autograd as _autograd, dtypes
from .._state import tls
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .creation_ops import full
from .linalg import matmul
from .pointwise import where
from .reduce import logsumexp
from .registry import COMPOSITE, apply, register

__all__ = ["flash_attention", "flash_attention_backward"]


def _known(*xs) -> bool:
    return all(isinstance(x, int) for x in xs)


def _check(name, q, k, v):
    for what, t in (("query", q), ("key", k), ("value", v)):
        if t.ndim != 4:
            raise ShapeError(f"{name}: {what} must be 4-D (batch, heads, length, head_dim), "
                             f"got shape {list(t.shape)}")
    if not q.dtype.is_floating_point or not (q.dtype is k.dtype is v.dtype):
        raise DTypeError(f"{name}: query, key and value must share a floating-point dtype, "
                         f"got {q.dtype.name}, {k.dtype.name}, {v.dtype.name}")
    b, h, _, d = q.shape
    bk, hk, s, dk = k.shape
    pairs = ((b, bk), (d, dk), (tuple(v.shape[:3]), (bk, hk, s)))
    if any(_known(*x) and x[0] != x[1] for x in pairs[:2]) or \
            (_known(*pairs[2][0], *pairs[2][1]) and pairs[2][0] != pairs[2][1]):
        raise ShapeError(f"{name}: query {list(q.shape)}, key {list(k.shape)} and value "
                         f"{list(v.shape)} do not fit (need equal batch, query and key head "
                         f"dims, and key/value of one length)")
    if _known(h, hk) and (hk == 0 or h % hk):
        raise ShapeError(f"{name}: {h} query heads are not a multiple of {hk} key/value heads")


def _lse_dtype(dt):
    return dtypes.float64 if dt is dtypes.float64 else dtypes.float32


def _fa_meta(q, k, v, *, is_causal, scale):
    _check("flash_attention", q, k, v)
    b, h, length, _ = q.shape
    return ((b, h, length, v.shape[3]), q.dtype), ((b, h, length), _lse_dtype(q.dtype))


def _grouped(q, k, v, scale, is_causal):
    """Scores (B, Hkv, G, L, S) in the compute dtype, the grouped query, k and v (5-D)."""
    cd = _lse_dtype(q.dtype)
    b, h, length, d = q.shape
    hk, src = k.shape[1], k.shape[2]
    q5 = q.to(cd).reshape(b, hk, h // hk, length, d)
    k5, v5 = k.to(cd).unsqueeze(2), v.to(cd).unsqueeze(2)
    scores = matmul(q5, k5.transpose(-2, -1)) * scale
    if is_causal:
        allowed = full((length, src), True, dtype=dtypes.bool_, device=q.device).tril()
        scores = where(allowed, scores, float("-inf"))
    return scores, q5, k5, v5


def _fa_decomp(q, k, v, *, is_causal, scale):
    b, h, length, _ = q.shape
    scores, _, _, v5 = _grouped(q, k, v, scale, is_causal)
    lse = logsumexp(scores, -1)
    out = matmul((scores - lse.unsqueeze(-1)).exp(), v5)  # S == 0: an empty sum, 0
    return (out.reshape(b, h, length, v.shape[3]).to(q.dtype),
            lse.reshape(b, h, length))


def _fa_vjp(grads, args, out, *, is_causal, scale):
    g_out, g_lse = grads
    q, k, v = args
    o, lse = out
    return flash_attention_backward(q, k, v, o, lse, g_out, g_lse, is_causal=is_causal,
                                    scale=scale)


FLASH_ATTENTION = register("flash_attention", COMPOSITE, _fa_meta, vjp=_fa_vjp,
                           decomp=_fa_decomp, num_outputs=2, saves_output=True)


def _fab_meta(q, k, v, out, lse, dout, dlse, *, is_causal, scale):
    name = "flash_attention_backward"
    _check(name, q, k, v)
    b, h, length, _ = q.shape
    want = {"out": (out, (b, h, length, v.shape[3]), q.dtype),
            "grad_out": (dout, (b, h, length, v.shape[3]), q.dtype),
            "lse": (lse, (b, h, length), _lse_dtype(q.dtype)),
            "grad_lse": (dlse, (b, h, length), _lse_dtype(q.dtype))}
    for what, (t, shape, dt) in want.items():
        if _known(*t.shape, *shape) and tuple(t.shape) != shape:
            raise ShapeError(f"{name}: {what} has shape {list(t.shape)}, expected "
                             f"{list(shape)}")
        if t.dtype is not dt:
            raise DTypeError(f"{name}: {what} has dtype {t.dtype.name}, expected {dt.name}")
    return (q.shape, q.dtype), (k.shape, k.dtype), (v.shape, v.dtype)


def _fab_decomp(q, k, v, out, lse, dout, dlse, *, is_causal, scale):
    """FlashAttention's backward: P = exp(scores - lse), dV = P^T dO, dS = P (dO V^T -
    delta), delta = rowsum(dO * O) - dlse; dQ = dS K scale, dK = dS^T Q scale (summed over
    the query heads of a key/value group)."""
    b, h, length, d = q.shape
    hk = k.shape[1]
    scores, q5, k5, v5 = _grouped(q, k, v, scale, is_causal)
    cd = scores.dtype
    lse5 = lse.to(cd).reshape(b, hk, h // hk, length, 1)
    p = (scores - lse5).exp()
    do5 = dout.to(cd).reshape(b, hk, h // hk, length, v.shape[3])
    o5 = out.to(cd).reshape(do5.shape)
    delta = (do5 * o5).sum(-1, keepdim=True) - dlse.to(cd).reshape(lse5.shape)
    ds = p * (matmul(do5, v5.transpose(-2, -1)) - delta)
    dq = (matmul(ds, k5) * scale).reshape(b, h, length, d)
    dk = (matmul(ds.transpose(-2, -1), q5) * scale).sum(2)
    dv = matmul(p.transpose(-2, -1), do5).sum(2)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


def _fab_vjp(grads, args, out, *, is_causal, scale):
    """Second derivatives: differentiate the decomposition (re-run on ``args`` and
    backpropagated up to them, as activation checkpointing does)."""
    boundary = next(_autograd._sequence)  # nodes recorded from here on are the re-run's
    create_graph = tls.grad_enabled  # the engine runs VJPs with grad mode = create_graph
    saved, tls.grad_enabled = tls.grad_enabled, True
    try:
        outs = _fab_decomp(*args, is_causal=is_causal, scale=scale)
    finally:
        tls.grad_enabled = saved
    roots = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
    if not roots:
        return (None,) * len(args)
    sent = _autograd.run_backward([o for o, _ in roots], [g for _, g in roots],
                                  retain_graph=create_graph, create_graph=create_graph,
                                  boundary=boundary)
    by_key = {(e if isinstance(e, tuple) else id(e)): g for e, g in sent}
    res = []
    for a in args:  # an argument passed twice (q is k) gets its gradient once
        e = _autograd._edge(a) if isinstance(a, Tensor) and a.requires_grad else None
        key = None if e is None else (e if isinstance(e, tuple) else id(e))
        res.append(by_key.pop(key, None) if key is not None else None)
    return tuple(res)


FLASH_ATTENTION_BACKWARD = register("flash_attention_backward", COMPOSITE, _fab_meta,
                                    vjp=_fab_vjp, decomp=_fab_decomp, num_outputs=3)


def flash_attention(query: Tensor, key: Tensor, value: Tensor, is_causal: bool = False,
                    scale: float | None = None):
    """``(out, lse)``: fused softmax attention of 4-D ``query``/``key``/``value`` (GQA when
    ``query`` has more heads than ``key``); ``scale`` defaults to ``1/sqrt(D)``."""
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    return apply(FLASH_ATTENTION, query, key, value, is_causal=bool(is_causal), scale=s)


def flash_attention_backward(query, key, value, out, lse, grad_out, grad_lse,
                             is_causal: bool = False, scale: float | None = None):
    """``(dq, dk, dv)`` of :func:`flash_attention` from its ``out``/``lse`` and their
    gradients ``grad_out``/``grad_lse``."""
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    return apply(FLASH_ATTENTION_BACKWARD, query, key, value, out, lse, grad_out, grad_lse,
                 is_causal=bool(is_causal), scale=s)
