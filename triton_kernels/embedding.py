"""Launchers for embedding lookup (row gather) and its backward (atomic scatter-add)."""

from __future__ import annotations

import numpy as np

from ._common import (
    FLOAT_DTYPES, FP32, INDEX_DTYPES, allocate, cdiv, check_buffer, flat_view, next_pow2, rows_view,
)
from .aot import KernelSpec, pointer_type
from .buffers import interpreter_enabled, strides_of
from .copy import copy, fill
from .embedding_kernels import embedding_bwd_kernel, embedding_fwd_kernel

__all__ = ["embedding", "embedding_backward", "aot_specs"]


def _blocks(n: int, d: int, interp: bool, block_m=None, block_d=None) -> tuple[int, int, int]:
    tile = 1 << 16 if interp else 2048
    block_d = block_d or min(next_pow2(d), tile if interp else 256)
    block_m = block_m or max(1, min(next_pow2(n), tile // block_d))
    return block_m, block_d, 4 if block_m * block_d <= 1024 else 8


def embedding(weight, indices, *, out=None, out_dtype=None, empty=None,
              block_m=None, block_d=None):
    """Gather rows: ``out[..., :] = weight[indices[...], :]``; returns ``indices.shape + (D,)``.

    ``weight``: [V, D] (any strides); ``indices``: int32/int64 of any shape (collapsible).
    Out-of-range indices give zero rows (no device assert).
    """
    check_buffer("weight", weight, ndim=2, dtypes=FLOAT_DTYPES)
    check_buffer("indices", indices, dtypes=INDEX_DTYPES)
    v, d = (int(s) for s in weight.shape)
    swv, swd = strides_of(weight)
    n, si = flat_view("indices", indices)
    y = allocate(empty, weight, tuple(indices.shape) + (d,), out_dtype or weight.dtype, out)
    if n == 0 or d == 0:
        return y
    _, _, som, sod = rows_view("out", y)
    bm, bd, warps = _blocks(n, d, interpreter_enabled(), block_m, block_d)
    # 2-D grid over [BLOCK_M indices, BLOCK_D columns]: read ND + N, write ND
    embedding_fwd_kernel[(cdiv(n, bm), cdiv(d, bd))](
        weight, indices, y,
        n, d, v,
        swv, swd, si, som, sod,
        BLOCK_M=bm, BLOCK_D=bd, num_warps=warps,
    )
    return y


def embedding_backward(dout, indices, num_embeddings: int, *, padding_idx=None, dtype=FP32,
                       out=None, empty=None, block_m=None, block_d=None):
    """Gradient of :func:`embedding` w.r.t. ``weight``: ``[num_embeddings, D]`` of ``dtype``.

    Accumulates with fp32 atomics (into ``out`` when fp32, else into a scratch buffer that
    is then cast); rows of ``padding_idx`` get no gradient. ``dout``: ``indices.shape + (D,)``.
    The result of duplicate indices is summed in a nondeterministic order.
    """
    check_buffer("indices", indices, dtypes=INDEX_DTYPES)
    check_buffer("dout", dout, dtypes=FLOAT_DTYPES)
    if tuple(dout.shape[:-1]) != tuple(indices.shape):
        raise ValueError(f"dout: expected shape {tuple(indices.shape)} + (D,), "
                         f"got {tuple(dout.shape)}")
    n, si = flat_view("indices", indices)
    _, d, sdm, sdd = rows_view("dout", dout)
    v = int(num_embeddings)
    dweight = allocate(empty, dout, (v, d), dtype, out, "out")
    if np.dtype(dtype) == FP32:
        acc = dweight
    else:
        acc = allocate(empty, dout, (v, d), FP32, name="dweight_fp32")
    fill(acc, 0.0)
    if n and d:
        swv, swd = strides_of(acc)
        bm, bd, warps = _blocks(n, d, interpreter_enabled(), block_m, block_d)
        # read ND + N, atomically add ND
        embedding_bwd_kernel[(cdiv(n, bm), cdiv(d, bd))](
            indices, dout, acc,
            n, d, v,
            si, sdm, sdd, swv, swd,
            -1 if padding_idx is None else int(padding_idx),
            HAS_PADDING=padding_idx is not None,
            BLOCK_M=bm, BLOCK_D=bd, num_warps=warps,
        )
    if acc is not dweight:
        copy(acc, dweight)
    return dweight


def aot_specs(dtype) -> list[KernelSpec]:
    """Kernel specs the launchers use on a GPU for ``dtype`` weights and int64 indices."""
    p, f, i = pointer_type(dtype), pointer_type(FP32), pointer_type("int64")
    bm, bd, warps = _blocks(8192, 1024, False)
    blocks = dict(BLOCK_M=bm, BLOCK_D=bd)
    return [
        KernelSpec(embedding_fwd_kernel, dict(weight_ptr=p, idx_ptr=i, out_ptr=p),
                   dict(stride_wd=1, stride_i=1, stride_od=1, **blocks), warps,
                   label="embedding_fwd"),
        KernelSpec(embedding_bwd_kernel, dict(idx_ptr=i, dout_ptr=p, dweight_ptr=f),
                   dict(stride_i=1, stride_dod=1, stride_dwd=1, HAS_PADDING=True, **blocks),
                   warps, label="embedding_bwd"),
    ]
