# ruff: noqa: N803  (Triton convention: upper-case sizes and constexpr arguments)
"""Cross entropy of [M, V] logits with integer targets (Triton kernels only).

Forward: ``lse = logsumexp(logits)``, ``loss = lse - logits[target]`` per row (fp32),
``loss = 0`` where ``target == ignore_index``. ``SINGLE_BLOCK`` reads each row once
(read MV); otherwise an online max/sum loop over ``BLOCK_V`` columns (also read MV).
Backward: ``dlogits = (exp(logits - lse) - onehot(target)) * dloss`` (0 on ignored rows),
fully parallel over [BLOCK_M, BLOCK_V] tiles thanks to the saved ``lse`` (read MV, write MV).
Targets outside ``[0, V)`` (other than ``ignore_index``) are not checked: the target
logit then reads as 0.
"""

import triton
import triton.language as tl


@triton.jit
def cross_entropy_fwd_kernel(
    logits_ptr, target_ptr, loss_ptr, lse_ptr,
    M, V,
    stride_lm, stride_lv, stride_t,
    ignore_index,
    SINGLE_BLOCK: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr,
):
    """Per-row loss and logsumexp of BLOCK_M rows of logits."""
    rows_out = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows_out < M
    rows = tl.minimum(rows_out, M - 1).to(tl.int64)
    cols = tl.arange(0, BLOCK_V)
    l_rows = logits_ptr + rows[:, None] * stride_lm
    if SINGLE_BLOCK:
        x = tl.load(l_rows + cols[None, :] * stride_lv, mask=cols[None, :] < V, other=-float("inf"))
        x = x.to(tl.float32)
        m = tl.max(x, axis=1)
        lse = m + tl.log(tl.sum(tl.exp(x - m[:, None]), axis=1))
    else:
        m = tl.full([BLOCK_M], -float("inf"), tl.float32)
        s = tl.zeros([BLOCK_M], tl.float32)
        for start in range(0, V, BLOCK_V):
            c = start + cols
            x = tl.load(l_rows + c[None, :] * stride_lv, mask=c[None, :] < V, other=-float("inf"))
            x = x.to(tl.float32)
            m_new = tl.maximum(m, tl.max(x, axis=1))
            s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new[:, None]), axis=1)
            m = m_new
        lse = m + tl.log(s)
    target = tl.load(target_ptr + rows * stride_t).to(tl.int64)
    valid = (target != ignore_index) & (target >= 0) & (target < V)
    x_t = tl.load(logits_ptr + rows * stride_lm + target * stride_lv, mask=valid, other=0.0)
    x_t = x_t.to(tl.float32)
    loss = tl.where(target != ignore_index, lse - x_t, 0.0)
    tl.store(loss_ptr + rows_out, loss, mask=row_ok)
    tl.store(lse_ptr + rows_out, lse, mask=row_ok)


@triton.jit
def cross_entropy_bwd_kernel(
    logits_ptr, target_ptr, lse_ptr, dloss_ptr, dlogits_ptr,
    M, V,
    stride_lm, stride_lv, stride_t, stride_dloss, stride_dm, stride_dv,
    ignore_index,
    BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr,
):
    """dlogits for one [BLOCK_M, BLOCK_V] tile from the saved logsumexp."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    row_ok = rows < M
    col_ok = cols < V
    rows = tl.minimum(rows, M - 1).to(tl.int64)
    mask = row_ok[:, None] & col_ok[None, :]
    x_ptrs = logits_ptr + rows[:, None] * stride_lm + cols[None, :] * stride_lv
    x = tl.load(x_ptrs, mask=mask, other=0.0)
    lse = tl.load(lse_ptr + rows)
    target = tl.load(target_ptr + rows * stride_t).to(tl.int64)
    dloss = tl.load(dloss_ptr + rows * stride_dloss).to(tl.float32)
    scale = tl.where(target != ignore_index, dloss, 0.0)
    p = tl.exp(x.to(tl.float32) - lse[:, None])
    d = tl.where(cols[None, :] == target[:, None], p - 1.0, p) * scale[:, None]
    tl.store(dlogits_ptr + rows[:, None] * stride_dm + cols[None, :] * stride_dv,
             d.to(dlogits_ptr.dtype.element_ty), mask=mask)
