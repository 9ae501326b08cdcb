# ruff: noqa: N803  (Triton convention: upper-case sizes and constexpr arguments)
"""Softmax / log-softmax over the last dim of a [M, N] row view (Triton kernels only).

Each program owns ``BLOCK_M`` rows. ``SINGLE_BLOCK``: the whole row fits one
``BLOCK_N`` block and is read once (read MN, write MN). Otherwise an online
max/sum pass over column blocks is followed by a normalising pass (read 2MN, write MN).
Rows past ``M`` are clamped onto row ``M - 1`` for loads (no NaN from empty rows) and
masked on store. Math is fp32; inputs are upcast after load, outputs rounded on store.
"""

import triton
import triton.language as tl


@triton.jit
def softmax_fwd_kernel(
    x_ptr, y_ptr,
    M, N,
    stride_xm, stride_xn, stride_ym, stride_yn,
    LOG: tl.constexpr, SINGLE_BLOCK: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Softmax (LOG: log-softmax) of BLOCK_M rows."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    rows = tl.minimum(rows, M - 1).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    x_rows = x_ptr + rows[:, None] * stride_xm
    y_rows = y_ptr + rows[:, None] * stride_ym
    if SINGLE_BLOCK:
        col_ok = cols[None, :] < N
        x = tl.load(x_rows + cols[None, :] * stride_xn, mask=col_ok, other=-float("inf"))
        x = x.to(tl.float32)
        m = tl.max(x, axis=1)
        e = tl.exp(x - m[:, None])
        s = tl.sum(e, axis=1)
        if LOG:
            y = x - (m + tl.log(s))[:, None]
        else:
            y = e / s[:, None]
        y = y.to(y_ptr.dtype.element_ty)
        tl.store(y_rows + cols[None, :] * stride_yn, y, mask=row_ok[:, None] & col_ok)
    else:
        m = tl.full([BLOCK_M], -float("inf"), tl.float32)
        s = tl.zeros([BLOCK_M], tl.float32)
        for start in range(0, N, BLOCK_N):
            c = start + cols
            x = tl.load(x_rows + c[None, :] * stride_xn, mask=c[None, :] < N, other=-float("inf"))
            x = x.to(tl.float32)
            m_new = tl.maximum(m, tl.max(x, axis=1))
            s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new[:, None]), axis=1)
            m = m_new
        lse = m + tl.log(s)
        for start in range(0, N, BLOCK_N):
            c = start + cols
            col_ok = c[None, :] < N
            x = tl.load(x_rows + c[None, :] * stride_xn, mask=col_ok, other=0.0).to(tl.float32)
            if LOG:
                y = x - lse[:, None]
            else:
                y = tl.exp(x - lse[:, None])
            y = y.to(y_ptr.dtype.element_ty)
            tl.store(y_rows + c[None, :] * stride_yn, y, mask=row_ok[:, None] & col_ok)


@triton.jit
def softmax_bwd_kernel(
    y_ptr, dy_ptr, dx_ptr,
    M, N,
    stride_ym, stride_yn, stride_dym, stride_dyn, stride_dxm, stride_dxn,
    LOG: tl.constexpr, SINGLE_BLOCK: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Softmax (LOG: log-softmax) input gradient of BLOCK_M rows."""
    # softmax:     dx = y * (dy - sum(dy * y))
    # log_softmax: dx = dy - exp(y) * sum(dy)
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    rows = tl.minimum(rows, M - 1).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    y_rows = y_ptr + rows[:, None] * stride_ym
    dy_rows = dy_ptr + rows[:, None] * stride_dym
    dx_rows = dx_ptr + rows[:, None] * stride_dxm
    if SINGLE_BLOCK:
        col_ok = cols[None, :] < N
        y = tl.load(y_rows + cols[None, :] * stride_yn, mask=col_ok, other=0.0).to(tl.float32)
        dy = tl.load(dy_rows + cols[None, :] * stride_dyn, mask=col_ok, other=0.0).to(tl.float32)
        if LOG:
            dx = dy - tl.exp(y) * tl.sum(dy, axis=1)[:, None]
        else:
            dx = y * (dy - tl.sum(dy * y, axis=1)[:, None])
        tl.store(dx_rows + cols[None, :] * stride_dxn, dx.to(dx_ptr.dtype.element_ty),
                 mask=row_ok[:, None] & col_ok)
    else:
        acc = tl.zeros([BLOCK_M], tl.float32)
        for start in range(0, N, BLOCK_N):
            c = start + cols
            col_ok = c[None, :] < N
            dy = tl.load(dy_rows + c[None, :] * stride_dyn, mask=col_ok, other=0.0).to(tl.float32)
            if LOG:
                acc += tl.sum(dy, axis=1)
            else:
                y = tl.load(y_rows + c[None, :] * stride_yn, mask=col_ok, other=0.0).to(tl.float32)
                acc += tl.sum(dy * y, axis=1)
        for start in range(0, N, BLOCK_N):
            c = start + cols
            col_ok = c[None, :] < N
            y = tl.load(y_rows + c[None, :] * stride_yn, mask=col_ok, other=0.0).to(tl.float32)
            dy = tl.load(dy_rows + c[None, :] * stride_dyn, mask=col_ok, other=0.0).to(tl.float32)
            if LOG:
                dx = dy - tl.exp(y) * acc[:, None]
            else:
                dx = y * (dy - acc[:, None])
            tl.store(dx_rows + c[None, :] * stride_dxn, dx.to(dx_ptr.dtype.element_ty),
                     mask=row_ok[:, None] & col_ok)
