"""Launchers for fused (flash) attention: forward (O, logsumexp) and backward (dQ, dK, dV).

Shapes: ``q`` [B, H, L, D], ``k`` [B, Hkv, S, D], ``v`` [B, Hkv, S, DV] with ``H`` a
multiple of ``Hkv`` (grouped-query attention: query head ``h`` uses key/value head
``h // (H // Hkv)``), any strides, one dtype among fp16/bf16/fp32, ``D, DV <= 128``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._common import BF16, FLOAT_DTYPES, FP32, allocate, cdiv, check_buffer, check_shape, \
    next_pow2
from .aot import KernelSpec, pointer_type
from .attention_kernels import (attn_bwd_dkdv_kernel, attn_bwd_dq_kernel,
                                attn_bwd_preprocess_kernel, attn_fwd_kernel)
from .buffers import interpreter_enabled, strides_of

__all__ = ["MAX_HEAD_DIM", "MAX_BATCH_HEADS", "AttentionConfig", "pick_config", "supports",
           "attention_forward", "attention_backward", "aot_specs"]

MAX_HEAD_DIM = 128
MAX_BATCH_HEADS = 65535  # B * H runs on the grid's second axis (CUDA limit 65535)


@dataclass(frozen=True)
class AttentionConfig:
    """Tiles and launch options of one attention kernel: BLOCK_M query rows x BLOCK_N keys."""

    block_m: int
    block_n: int
    num_warps: int = 4
    num_stages: int = 2


# GPU tiles per (kernel, head-dim bucket, operand bytes); every one passes the AOT resource
# gate (shared memory, registers, no spills) on sm_80 and sm_90 (tests/triton_kernels).
# The dK/dV kernel holds two fp32 accumulators and K, V: with 4 warps, 32x128 (d64) and
# 32x64 (d128) 2-byte tiles spill, hence 8 warps there.
# fwd and dq need block_m % block_n == 0, dkdv needs block_n % block_m == 0.
CONFIGS = {
    ("fwd", 64, 2): AttentionConfig(128, 64, 4, 3),
    ("fwd", 128, 2): AttentionConfig(128, 64, 8, 3),
    ("fwd", 64, 4): AttentionConfig(64, 32, 4, 2),
    ("fwd", 128, 4): AttentionConfig(64, 32, 4, 2),
    ("dkdv", 64, 2): AttentionConfig(32, 128, 8, 3),
    ("dkdv", 128, 2): AttentionConfig(32, 64, 8, 2),
    ("dkdv", 64, 4): AttentionConfig(32, 32, 4, 2),
    ("dkdv", 128, 4): AttentionConfig(16, 32, 4, 2),
    ("dq", 64, 2): AttentionConfig(128, 32, 4, 3),
    ("dq", 128, 2): AttentionConfig(64, 32, 4, 2),
    ("dq", 64, 4): AttentionConfig(64, 32, 4, 2),
    ("dq", 128, 4): AttentionConfig(32, 32, 4, 2),
}
_INTERP_MAX_BLOCK = 128


def pick_config(kind: str, length: int, source: int, head_dim: int, dtype, *,
                interpreter=None) -> AttentionConfig:
    """Tiles of the ``kind`` kernel ("fwd", "dkdv", "dq") for ``length`` queries, ``source``
    keys and the larger head dim ``head_dim``.

    On a GPU: a fixed table by head dim (<= 64 or <= 128) and operand size. Under the
    interpreter one tile covers as much of the problem as possible (its cost grows with
    programs x loop iterations, not with tile size).
    """
    interp = interpreter_enabled() if interpreter is None else interpreter
    if interp:
        bm = min(max(next_pow2(length), 16), _INTERP_MAX_BLOCK)
        bn = min(max(next_pow2(source), 16), _INTERP_MAX_BLOCK)
        if kind == "dkdv":
            return AttentionConfig(min(bm, bn), bn, 4, 1)
        return AttentionConfig(bm, min(bm, bn), 4, 1)
    bucket = 64 if head_dim <= 64 else 128
    return CONFIGS[(kind, bucket, 4 if np.dtype(dtype).itemsize >= 4 else 2)]


def supports(dtype, head_dim: int, head_dim_v: int | None = None) -> bool:
    """True when the kernels handle ``dtype`` and the head dims."""
    dv = head_dim if head_dim_v is None else head_dim_v
    return np.dtype(dtype) in FLOAT_DTYPES and 0 < head_dim <= MAX_HEAD_DIM and \
        0 < dv <= MAX_HEAD_DIM


def _check(q, k, v):
    """(B, H, Hkv, L, S, D, DV) after checking ranks, dtypes and shapes."""
    for name, buf in (("q", q), ("k", k), ("v", v)):
        check_buffer(name, buf, ndim=4, dtypes=FLOAT_DTYPES)
    if not np.dtype(q.dtype) == np.dtype(k.dtype) == np.dtype(v.dtype):
        raise TypeError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    b, h, length, d = (int(s) for s in q.shape)
    bk, hkv, source, dk = (int(s) for s in k.shape)
    if bk != b or dk != d or hkv == 0 or h % hkv:
        raise ValueError(f"k {tuple(k.shape)} does not fit q {tuple(q.shape)} (need the same "
                         "batch and head dim, and query heads a multiple of key heads)")
    check_shape("v", v, (b, hkv, source, int(v.shape[3])))
    dv = int(v.shape[3])
    if not supports(q.dtype, d, dv):
        raise ValueError(f"head dims {d}, {dv}: the kernels handle 1..{MAX_HEAD_DIM}")
    if b * h > MAX_BATCH_HEADS:
        raise ValueError(f"batch x heads = {b * h}: the kernels handle up to {MAX_BATCH_HEADS}")
    return b, h, hkv, length, source, d, dv


def _flags(dtype, allow_tf32: bool, d: int, dv: int) -> dict:
    dt = np.dtype(dtype)
    return dict(UPCAST=interpreter_enabled() and dt == BF16,
                INPUT_PRECISION="tf32" if (allow_tf32 and dt == FP32) else "ieee",
                HEAD_D=d, HEAD_DV=dv, BLOCK_D=max(next_pow2(d), 16),
                BLOCK_DV=max(next_pow2(dv), 16))


def attention_forward(q, k, v, *, is_causal: bool = False, scale: float | None = None,
                      out=None, lse=None, empty=None, allow_tf32: bool = False,
                      config: AttentionConfig | None = None):
    """``(out, lse)``: ``out = softmax(q k^T * scale [+ causal mask]) v`` and the row
    logsumexp of the scaled (masked) scores, fp32 [B, H, L] contiguous.

    ``scale`` defaults to ``1/sqrt(D)``; ``is_causal`` lets query ``i`` see keys ``j <= i``
    (top-left aligned, as PyTorch). ``S == 0`` gives ``out = 0`` and ``lse = -inf``.
    ``allow_tf32`` lets fp32 products use TF32 tensor cores on a GPU.
    """
    b, h, hkv, length, source, d, dv = _check(q, k, v)
    o = allocate(empty, q, (b, h, length, dv), q.dtype, out)
    lse = allocate(empty, q, (b, h, length), FP32, lse, name="lse")
    if not _dense_lse(lse):
        raise ValueError("lse: expected a contiguous [B, H, L] buffer")
    if b * h * length == 0:
        return o, lse
    sm_scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    cfg = config or pick_config("fwd", length, source, max(d, dv), q.dtype)
    # per program: read BLOCK_M*D of q and (causal: up to) S*(D+DV) of k/v, write BLOCK_M*DV
    attn_fwd_kernel[(cdiv(length, cfg.block_m), b * h)](
        q, k, v, o, lse,
        sm_scale, h, h // hkv, length, source,
        *_st(q), *_st(k), *_st(v), *_st(o),
        IS_CAUSAL=bool(is_causal), **_flags(q.dtype, allow_tf32, d, dv),
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return o, lse


def attention_backward(q, k, v, out, lse, dout, *, dlse=None, is_causal: bool = False,
                       scale: float | None = None, empty=None, allow_tf32: bool = False,
                       configs: dict | None = None):
    """``(dq, dk, dv)`` of :func:`attention_forward` given its ``out``, ``lse`` and the
    gradient ``dout`` of ``out`` (and ``dlse`` of ``lse``, if any). Deterministic: dK/dV of
    a key block (summed over the query heads sharing it) and dQ of a query block are each
    computed by one program, without atomics. ``configs`` maps "dkdv"/"dq" to tiles."""
    b, h, hkv, length, source, d, dv = _check(q, k, v)
    check_buffer("out", out, ndim=4, dtypes=FLOAT_DTYPES)
    check_buffer("dout", dout, ndim=4, dtypes=FLOAT_DTYPES)
    check_shape("out", out, (b, h, length, dv))
    check_shape("dout", dout, (b, h, length, dv))
    check_shape("lse", lse, (b, h, length))
    if not _dense_lse(lse) or np.dtype(lse.dtype) != FP32:
        raise ValueError("lse: expected the forward's contiguous fp32 [B, H, L] buffer")
    if dlse is not None:
        check_shape("dlse", dlse, (b, h, length))
    dq = allocate(empty, q, q.shape, q.dtype)
    dk = allocate(empty, q, k.shape, k.dtype)
    dvb = allocate(empty, q, v.shape, v.dtype)
    if b * hkv == 0 or (source == 0 and length == 0):
        return dq, dk, dvb
    sm_scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    configs = configs or {}
    flags = _flags(q.dtype, allow_tf32, d, dv)
    delta = allocate(empty, q, (b, h, length), FP32)
    # L == 0: only the dK/dV kernel runs (it writes zeros); S == 0: dQ comes out zero
    pre_m = min(next_pow2(length), 64 if not interpreter_enabled() else 128)
    if length:
        attn_bwd_preprocess_kernel[(cdiv(length, pre_m), b * h)](
            out, dout, dout if dlse is None else dlse, delta,
            h, length, *_st(out), *_st(dout), *(_st(dlse) if dlse is not None else (0, 0, 0)),
            HAS_DLSE=dlse is not None, HEAD_DV=dv, BLOCK_M=pre_m, BLOCK_DV=flags["BLOCK_DV"],
        )
    c = configs.get("dkdv") or pick_config("dkdv", length, source, max(d, dv), q.dtype)
    if source:
        # per program: read BLOCK_N*(D+DV) of k/v and GROUP*L*(D+DV) of q/dout, write dk/dv
        attn_bwd_dkdv_kernel[(cdiv(source, c.block_n), b * hkv)](
            q, k, v, dout, lse, delta, dk, dvb,
            sm_scale, h, h // hkv, length, source,
            *_st(q), *_st(k), *_st(v), *_st(dout), *_st(dk), *_st(dvb),
            IS_CAUSAL=bool(is_causal), **flags, BLOCK_M=c.block_m, BLOCK_N=c.block_n,
            num_warps=c.num_warps, num_stages=c.num_stages,
        )
    c = configs.get("dq") or pick_config("dq", length, source, max(d, dv), q.dtype)
    if length:
        attn_bwd_dq_kernel[(cdiv(length, c.block_m), b * h)](
            q, k, v, dout, lse, delta, dq,
            sm_scale, h, h // hkv, length, source,
            *_st(q), *_st(k), *_st(v), *_st(dout), *_st(dq),
            IS_CAUSAL=bool(is_causal), **flags, BLOCK_M=c.block_m, BLOCK_N=c.block_n,
            num_warps=c.num_warps, num_stages=c.num_stages,
        )
    return dq, dk, dvb


def _dense_lse(lse) -> bool:
    """True when the [B, H, L] buffer is contiguous (the kernels index it as (b*H + h)*L + l)."""
    b, h, length = lse.shape
    want = (h * length, length, 1)
    return b * h * length == 0 or all(n == 1 or s == w for n, s, w in
                                      zip(lse.shape, strides_of(lse), want))


def _st(buf) -> tuple:
    """Element strides of a buffer (a dim of size 1 gets stride 0: it is never advanced)."""
    return tuple(0 if n == 1 else s for n, s in zip(buf.shape, strides_of(buf)))


def aot_specs(dtype, head_dims=(64, 128)) -> list[KernelSpec]:
    """Kernel specs the launchers use on a GPU for ``dtype`` at each head dim (causal, the
    path with the most code; contiguous last dims as the framework passes them)."""
    p = pointer_type(dtype)
    f32 = pointer_type(FP32)
    tf32 = np.dtype(dtype) == FP32
    specs = []
    for d in head_dims:
        flags = dict(UPCAST=False, INPUT_PRECISION="tf32" if tf32 else "ieee", HEAD_D=d,
                     HEAD_DV=d, BLOCK_D=next_pow2(d), BLOCK_DV=next_pow2(d), IS_CAUSAL=True)
        fwd = pick_config("fwd", 4096, 4096, d, dtype, interpreter=False)
        specs.append(KernelSpec(
            attn_fwd_kernel, dict(q_ptr=p, k_ptr=p, v_ptr=p, o_ptr=p, lse_ptr=f32, sm_scale="fp32"),
            dict(stride_qd=1, stride_kd=1, stride_vd=1, stride_od=1, BLOCK_M=fwd.block_m,
                 BLOCK_N=fwd.block_n, **flags), fwd.num_warps, fwd.num_stages,
            label=f"attention_fwd[d{d}]"))
        specs.append(KernelSpec(
            attn_bwd_preprocess_kernel, dict(o_ptr=p, do_ptr=p, dlse_ptr=f32, delta_ptr=f32),
            dict(stride_od=1, stride_dod=1, HAS_DLSE=True, HEAD_DV=d, BLOCK_M=64,
                 BLOCK_DV=next_pow2(d)), 4, 1, label=f"attention_bwd_pre[d{d}]"))
        kv = pick_config("dkdv", 4096, 4096, d, dtype, interpreter=False)
        specs.append(KernelSpec(
            attn_bwd_dkdv_kernel,
            dict(q_ptr=p, k_ptr=p, v_ptr=p, do_ptr=p, lse_ptr=f32, delta_ptr=f32, dk_ptr=p,
                 dv_ptr=p, sm_scale="fp32"),
            dict(stride_qd=1, stride_kd=1, stride_vd=1, stride_dod=1, stride_dkd=1,
                 stride_dvd=1, BLOCK_M=kv.block_m, BLOCK_N=kv.block_n, **flags),
            kv.num_warps, kv.num_stages, label=f"attention_bwd_dkdv[d{d}]"))
        dq = pick_config("dq", 4096, 4096, d, dtype, interpreter=False)
        specs.append(KernelSpec(
            attn_bwd_dq_kernel,
            dict(q_ptr=p, k_ptr=p, v_ptr=p, do_ptr=p, lse_ptr=f32, delta_ptr=f32, dq_ptr=p,
                 sm_scale="fp32"),
            dict(stride_qd=1, stride_kd=1, stride_vd=1, stride_dod=1, stride_dqd=1,
                 BLOCK_M=dq.block_m, BLOCK_N=dq.block_n, **flags),
            dq.num_warps, dq.num_stages, label=f"attention_bwd_dq[d{d}]"))
    return specs
