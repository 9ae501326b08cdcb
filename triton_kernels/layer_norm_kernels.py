# ruff: noqa: N803  (Triton convention: upper-case sizes and constexpr arguments)
"""LayerNorm over the last dim of a [M, N] row view, forward and backward (Triton kernels only).

Forward: ``y = (x - mean) * rstd * w + b``; saves fp32 ``mean`` and ``rstd`` per row.
``SINGLE_BLOCK`` keeps the row in registers (read MN, write MN); otherwise three passes
over column blocks (mean, variance, normalise: read 3MN, write MN).

Backward, with ``xhat = (x - mean) * rstd`` and ``g = dy * w``:
``dx = rstd * (g - xhat * mean(g * xhat) - mean(g))``, ``dw = sum_rows(dy * xhat)``,
``db = sum_rows(dy)``. Each of ``P`` programs walks row tiles ``pid, pid + P, ...`` and
writes its partial ``dw``/``db`` row into fp32 ``[P, N]`` buffers, which a second kernel
sums (deterministic, no atomics).
"""

import triton
import triton.language as tl


@triton.jit
def layer_norm_fwd_kernel(
    x_ptr, w_ptr, b_ptr, y_ptr, mean_ptr, rstd_ptr,
    M, N,
    stride_xm, stride_xn, stride_ym, stride_yn,
    eps,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, SINGLE_BLOCK: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Normalise BLOCK_M rows; store y and the fp32 mean/rstd per row."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    rows = tl.minimum(rows, M - 1).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    x_rows = x_ptr + rows[:, None] * stride_xm
    y_rows = y_ptr + rows[:, None] * stride_ym
    if SINGLE_BLOCK:
        col_ok = cols < N
        x = tl.load(x_rows + cols[None, :] * stride_xn, mask=col_ok[None, :], other=0.0)
        x = x.to(tl.float32)
        mean = tl.sum(x, axis=1) / N
        xc = tl.where(col_ok[None, :], x - mean[:, None], 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, axis=1) / N + eps)
        y = xc * rstd[:, None]
        if HAS_WEIGHT:
            y = y * tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        if HAS_BIAS:
            y = y + tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        tl.store(y_rows + cols[None, :] * stride_yn, y.to(y_ptr.dtype.element_ty),
                 mask=row_ok[:, None] & col_ok[None, :])
    else:
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
        for start in range(0, N, BLOCK_N):
            c = start + cols
            x = tl.load(x_rows + c[None, :] * stride_xn, mask=c[None, :] < N, other=0.0)
            acc += x.to(tl.float32)
        mean = tl.sum(acc, axis=1) / N
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
        for start in range(0, N, BLOCK_N):
            c = start + cols
            x = tl.load(x_rows + c[None, :] * stride_xn, mask=c[None, :] < N, other=0.0)
            x = x.to(tl.float32)
            xc = tl.where(c[None, :] < N, x - mean[:, None], 0.0)
            acc += xc * xc
        rstd = 1.0 / tl.sqrt(tl.sum(acc, axis=1) / N + eps)
        for start in range(0, N, BLOCK_N):
            c = start + cols
            col_ok = c < N
            x = tl.load(x_rows + c[None, :] * stride_xn, mask=col_ok[None, :], other=0.0)
            x = x.to(tl.float32)
            y = (x - mean[:, None]) * rstd[:, None]
            if HAS_WEIGHT:
                y = y * tl.load(w_ptr + c, mask=col_ok, other=0.0).to(tl.float32)[None, :]
            if HAS_BIAS:
                y = y + tl.load(b_ptr + c, mask=col_ok, other=0.0).to(tl.float32)[None, :]
            tl.store(y_rows + c[None, :] * stride_yn, y.to(y_ptr.dtype.element_ty),
                     mask=row_ok[:, None] & col_ok[None, :])
    rows_out = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    tl.store(mean_ptr + rows_out, mean, mask=row_ok)
    tl.store(rstd_ptr + rows_out, rstd, mask=row_ok)


@triton.jit
def layer_norm_bwd_dx_kernel(
    x_ptr, dy_ptr, w_ptr, mean_ptr, rstd_ptr, dx_ptr, dw_part_ptr, db_part_ptr,
    M, N,
    stride_xm, stride_xn, stride_dym, stride_dyn, stride_dxm, stride_dxn,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, SINGLE_BLOCK: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """dx for the row tiles of this program, plus its partial dw/db row."""
    pid = tl.program_id(0)
    num_programs = tl.num_programs(0)
    cols = tl.arange(0, BLOCK_N)
    part = pid.to(tl.int64) * N  # this program's row of the [P, N] partial buffers
    if SINGLE_BLOCK:
        col_ok = cols < N
        if HAS_WEIGHT:
            w = tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        dw = tl.zeros([BLOCK_N], tl.float32)
        db = tl.zeros([BLOCK_N], tl.float32)
    for tile in range(pid, tl.cdiv(M, BLOCK_M), num_programs):
        r = tile * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = r < M
        mean = tl.load(mean_ptr + r, mask=row_ok, other=0.0)
        rstd = tl.load(rstd_ptr + r, mask=row_ok, other=0.0)  # 0 => padded rows contribute 0
        r = r.to(tl.int64)
        x_rows = x_ptr + r[:, None] * stride_xm
        dy_rows = dy_ptr + r[:, None] * stride_dym
        dx_rows = dx_ptr + r[:, None] * stride_dxm
        if SINGLE_BLOCK:
            mask = row_ok[:, None] & col_ok[None, :]
            x = tl.load(x_rows + cols[None, :] * stride_xn, mask=mask, other=0.0).to(tl.float32)
            dy = tl.load(dy_rows + cols[None, :] * stride_dyn, mask=mask, other=0.0).to(tl.float32)
            xhat = (x - mean[:, None]) * rstd[:, None]
            g = dy
            if HAS_WEIGHT:
                g = dy * w[None, :]
            c1 = tl.sum(g * xhat, axis=1) / N
            c2 = tl.sum(g, axis=1) / N
            dx = rstd[:, None] * (g - xhat * c1[:, None] - c2[:, None])
            dx = dx.to(dx_ptr.dtype.element_ty)
            tl.store(dx_rows + cols[None, :] * stride_dxn, dx, mask=mask)
            dw += tl.sum(dy * xhat, axis=0)
            db += tl.sum(dy, axis=0)
        else:
            c1 = tl.zeros([BLOCK_M], tl.float32)
            c2 = tl.zeros([BLOCK_M], tl.float32)
            for start in range(0, N, BLOCK_N):
                c = start + cols
                mask = row_ok[:, None] & (c < N)[None, :]
                x = tl.load(x_rows + c[None, :] * stride_xn, mask=mask, other=0.0).to(tl.float32)
                dy = tl.load(dy_rows + c[None, :] * stride_dyn, mask=mask, other=0.0).to(tl.float32)
                xhat = (x - mean[:, None]) * rstd[:, None]
                if HAS_WEIGHT:
                    dy = dy * tl.load(w_ptr + c, mask=c < N, other=0.0).to(tl.float32)[None, :]
                c1 += tl.sum(dy * xhat, axis=1)
                c2 += tl.sum(dy, axis=1)
            c1 = c1 / N
            c2 = c2 / N
            for start in range(0, N, BLOCK_N):
                c = start + cols
                col_ok = c < N
                mask = row_ok[:, None] & col_ok[None, :]
                x = tl.load(x_rows + c[None, :] * stride_xn, mask=mask, other=0.0).to(tl.float32)
                dy = tl.load(dy_rows + c[None, :] * stride_dyn, mask=mask, other=0.0).to(tl.float32)
                xhat = (x - mean[:, None]) * rstd[:, None]
                g = dy
                if HAS_WEIGHT:
                    g = dy * tl.load(w_ptr + c, mask=col_ok, other=0.0).to(tl.float32)[None, :]
                dx = rstd[:, None] * (g - xhat * c1[:, None] - c2[:, None])
                dx = dx.to(dx_ptr.dtype.element_ty)
                tl.store(dx_rows + c[None, :] * stride_dxn, dx, mask=mask)
                # the partial row holds garbage before this program's first tile: select 0 there;
                # the barrier orders this CTA's stores of earlier tiles before the reloads
                tl.debug_barrier()
                if HAS_WEIGHT:
                    prev = tl.load(dw_part_ptr + part + c, mask=col_ok, other=0.0)
                    prev = tl.where(tile != pid, prev, 0.0)
                    tl.store(dw_part_ptr + part + c, prev + tl.sum(dy * xhat, axis=0), mask=col_ok)
                if HAS_BIAS:
                    prev = tl.load(db_part_ptr + part + c, mask=col_ok, other=0.0)
                    prev = tl.where(tile != pid, prev, 0.0)
                    tl.store(db_part_ptr + part + c, prev + tl.sum(dy, axis=0), mask=col_ok)
    if SINGLE_BLOCK:
        if HAS_WEIGHT:
            tl.store(dw_part_ptr + part + cols, dw, mask=col_ok)
        if HAS_BIAS:
            tl.store(db_part_ptr + part + cols, db, mask=col_ok)


@triton.jit
def layer_norm_bwd_dwdb_kernel(
    dw_part_ptr, db_part_ptr, dw_ptr, db_ptr,
    P, N,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Sum the [P, N] partial dw/db over P for BLOCK_N columns."""
    # sum the [P, N] fp32 partials over P: read 2PN, write 2N
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < N
    dw = tl.zeros([BLOCK_P, BLOCK_N], tl.float32)
    db = tl.zeros([BLOCK_P, BLOCK_N], tl.float32)
    for start in range(0, P, BLOCK_P):
        p = start + tl.arange(0, BLOCK_P)
        mask = (p < P)[:, None] & col_ok[None, :]
        offs = p[:, None].to(tl.int64) * N + cols[None, :]
        if HAS_WEIGHT:
            dw += tl.load(dw_part_ptr + offs, mask=mask, other=0.0)
        if HAS_BIAS:
            db += tl.load(db_part_ptr + offs, mask=mask, other=0.0)
    if HAS_WEIGHT:
        tl.store(dw_ptr + cols, tl.sum(dw, axis=0).to(dw_ptr.dtype.element_ty), mask=col_ok)
    if HAS_BIAS:
        tl.store(db_ptr + cols, tl.sum(db, axis=0).to(db_ptr.dtype.element_ty), mask=col_ok)
