# ruff: noqa: N803  (Triton convention: upper-case sizes and constexpr arguments)
"""Embedding lookup (row gather) and its backward (atomic scatter-add) (Triton kernels only).

Forward: ``out[i, :] = weight[idx[i], :]`` over [BLOCK_M, BLOCK_D] tiles (read ND + N
indices, write ND); out-of-range indices give zero rows. Backward: ``dweight[idx[i], :] +=
dout[i, :]`` with fp32 atomics (duplicate indices accumulate); rows equal to
``padding_idx`` (when ``HAS_PADDING``) and out-of-range indices are skipped.
"""

import triton
import triton.language as tl


@triton.jit
def embedding_fwd_kernel(
    weight_ptr, idx_ptr, out_ptr,
    N, D, V,
    stride_wv, stride_wd, stride_i, stride_om, stride_od,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Gather a [BLOCK_M, BLOCK_D] tile of weight rows selected by idx."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    row_ok = rows < N
    col_ok = cols < D
    rows = rows.to(tl.int64)
    idx = tl.load(idx_ptr + rows * stride_i, mask=row_ok, other=0).to(tl.int64)
    ok = row_ok & (idx >= 0) & (idx < V)
    w = tl.load(weight_ptr + idx[:, None] * stride_wv + cols[None, :] * stride_wd,
                mask=ok[:, None] & col_ok[None, :], other=0.0)
    out_ptrs = out_ptr + rows[:, None] * stride_om + cols[None, :] * stride_od
    tl.store(out_ptrs, w.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])


@triton.jit
def embedding_bwd_kernel(
    idx_ptr, dout_ptr, dweight_ptr,
    N, D, V,
    stride_i, stride_dom, stride_dod, stride_dwv, stride_dwd,
    padding_idx,
    HAS_PADDING: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Atomically add a [BLOCK_M, BLOCK_D] tile of dout into the fp32 dweight rows."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    row_ok = rows < N
    col_ok = cols < D
    rows = rows.to(tl.int64)
    idx = tl.load(idx_ptr + rows * stride_i, mask=row_ok, other=0).to(tl.int64)
    ok = row_ok & (idx >= 0) & (idx < V)
    if HAS_PADDING:
        ok = ok & (idx != padding_idx)
    mask = ok[:, None] & col_ok[None, :]
    g_ptrs = dout_ptr + rows[:, None] * stride_dom + cols[None, :] * stride_dod
    g = tl.load(g_ptrs, mask=mask, other=0.0)
    dw_ptrs = dweight_ptr + idx[:, None] * stride_dwv + cols[None, :] * stride_dwd
    tl.atomic_add(dw_ptrs, g.to(tl.float32), mask=mask, sem="relaxed")
