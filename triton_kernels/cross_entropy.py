"""Launchers for cross entropy with integer targets and ``ignore_index``, forward and backward."""

from __future__ import annotations

from ._common import (
    FLOAT_DTYPES, FP32, INDEX_DTYPES, MAX_FUSED_N_GPU, TILE_ELEMS_GPU, TILE_ELEMS_INTERP, allocate,
    cdiv, check_buffer, check_shape, flat_view, next_pow2, row_blocks, rows_view,
)
from .aot import KernelSpec, pointer_type
from .buffers import interpreter_enabled
from .cross_entropy_kernels import cross_entropy_bwd_kernel, cross_entropy_fwd_kernel

__all__ = ["cross_entropy", "cross_entropy_backward", "aot_specs"]


def _check_target(logits, target):
    check_buffer("logits", logits, dtypes=FLOAT_DTYPES)
    check_buffer("target", target, dtypes=INDEX_DTYPES)
    check_shape("target", target, logits.shape[:-1])


def cross_entropy(logits, target, *, ignore_index: int = -100, empty=None,
                  block_m=None, block_v=None):
    """Per-row cross entropy of ``logits[..., V]`` against integer ``target[...]``.

    Returns ``(loss, lse)``, both fp32 of ``target.shape``: ``loss = lse - logits[target]``
    (0 where ``target == ignore_index``) and ``lse = logsumexp(logits)`` (saved for the
    backward). Reductions (mean over non-ignored rows) are left to the caller.
    """
    _check_target(logits, target)
    m, v, slm, slv = rows_view("logits", logits)
    _, st = flat_view("target", target)
    loss = allocate(empty, logits, target.shape, FP32, name="loss")
    lse = allocate(empty, logits, target.shape, FP32, name="lse")
    if m == 0:
        return loss, lse
    if v == 0:
        raise ValueError("logits: last dim must be > 0")
    g = row_blocks(m, v, block_m=block_m, block_n=block_v)
    # read MV (+M targets, M gathered logits), write 2M
    cross_entropy_fwd_kernel[(cdiv(m, g.block_m),)](
        logits, target, loss, lse,
        m, v,
        slm, slv, st,
        int(ignore_index),
        SINGLE_BLOCK=g.single_block,
        BLOCK_M=g.block_m, BLOCK_V=g.block_n, num_warps=g.num_warps,
    )
    return loss, lse


def _bwd_blocks(m: int, v: int, interp: bool, block_m=None, block_v=None):
    tile = TILE_ELEMS_INTERP if interp else TILE_ELEMS_GPU
    block_v = block_v or min(next_pow2(v), tile if interp else 1024)
    block_m = block_m or max(1, min(next_pow2(m), tile // block_v, 64))
    return block_m, block_v, 4 if block_m * block_v <= 1024 else 8


def cross_entropy_backward(dloss, logits, target, lse, *, ignore_index: int = -100, out=None,
                           out_dtype=None, empty=None, block_m=None, block_v=None):
    """Gradient of :func:`cross_entropy` w.r.t. ``logits``.

    ``dloss``: per-row upstream gradient of ``target.shape``, or a single element
    (broadcast to every row, e.g. ``1/count`` for a mean). ``lse`` is the forward's fp32
    output. Returns ``dlogits`` (dtype ``out_dtype`` or ``logits.dtype``); ignored rows are 0.
    """
    _check_target(logits, target)
    check_buffer("lse", lse, dtypes=(FP32,))
    check_shape("lse", lse, target.shape)
    check_buffer("dloss", dloss, dtypes=FLOAT_DTYPES)
    m, v, slm, slv = rows_view("logits", logits)
    _, st = flat_view("target", target)
    n_dloss, s_dloss = flat_view("dloss", dloss)
    if n_dloss == 1:
        s_dloss = 0
    elif tuple(dloss.shape) != tuple(target.shape):
        raise ValueError(f"dloss: expected shape {tuple(target.shape)} or one element, "
                         f"got {tuple(dloss.shape)}")
    dlogits = allocate(empty, logits, logits.shape, out_dtype or logits.dtype, out)
    _, _, sdm, sdv = rows_view("out", dlogits)
    if m == 0 or v == 0:
        return dlogits
    bm, bv, warps = _bwd_blocks(m, v, interpreter_enabled(), block_m, block_v)
    # 2-D grid over [BLOCK_M, BLOCK_V] tiles: read MV + 3M, write MV
    cross_entropy_bwd_kernel[(cdiv(m, bm), cdiv(v, bv))](
        logits, target, lse, dloss, dlogits,
        m, v,
        slm, slv, st, s_dloss, sdm, sdv,
        int(ignore_index),
        BLOCK_M=bm, BLOCK_V=bv, num_warps=warps,
    )
    return dlogits


def aot_specs(dtype) -> list[KernelSpec]:
    """Kernel specs the launchers use on a GPU for ``dtype`` logits and int64 targets."""
    p, f, i = pointer_type(dtype), pointer_type(FP32), pointer_type("int64")
    specs = []
    for v in (1024, MAX_FUSED_N_GPU, 50304):
        g = row_blocks(64, v, interpreter=False)
        kind = f"{'single' if g.single_block else 'looped'}{g.block_n}"
        flags = dict(SINGLE_BLOCK=g.single_block, BLOCK_M=g.block_m, BLOCK_V=g.block_n)
        specs.append(KernelSpec(
            cross_entropy_fwd_kernel, dict(logits_ptr=p, target_ptr=i, loss_ptr=f, lse_ptr=f),
            dict(stride_lv=1, stride_t=1, **flags), g.num_warps,
            label=f"cross_entropy_fwd[{kind}]"))
    bm, bv, warps = _bwd_blocks(4096, 50304, False)
    specs.append(KernelSpec(
        cross_entropy_bwd_kernel,
        dict(logits_ptr=p, target_ptr=i, lse_ptr=f, dloss_ptr=f, dlogits_ptr=p),
        dict(stride_lv=1, stride_t=1, stride_dv=1, BLOCK_M=bm, BLOCK_V=bv), warps,
        label="cross_entropy_bwd"))
    return specs
