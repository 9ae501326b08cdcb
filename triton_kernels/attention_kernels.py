# ruff: noqa: N803  (Triton convention: upper-case sizes and constexpr arguments)
"""Fused (FlashAttention-2 style) scaled dot-product attention (Triton kernels only).

Layout: ``q`` [B, H, L, D], ``k`` [B, Hkv, S, D], ``v`` [B, Hkv, S, DV], any strides;
query head ``h`` reads key/value head ``h // GROUP`` (GQA by index mapping, no copies).
``IS_CAUSAL`` is PyTorch's top-left aligned mask: query ``i`` sees keys ``j <= i``.

* forward: one program per (BLOCK_M query rows, batch x head); an online softmax over
  BLOCK_N key blocks keeps the running max ``m`` and sum ``l`` in registers and never
  writes the L x S scores. Writes ``o`` and the row logsumexp ``lse`` (fp32, natural log,
  [B, H, L] contiguous) for the backward.
* backward (deterministic, no atomics): ``delta = rowsum(dO * O) - dlse``; then one
  program per key block accumulates dK/dV over every query block of all GROUP query heads
  of its key/value head; a separate program per query block accumulates dQ.

Scores are scaled by ``scale * log2(e)`` so the softmax runs on ``exp2``. Key blocks that
no row of the tile masks run without masks; only the diagonal (causal) and the ragged
tail blocks apply them. Math is fp32 (``tl.dot`` accumulates in fp32); ``UPCAST``
converts loaded tiles to fp32 (the interpreter's bf16 arithmetic and bf16 dot are broken);
otherwise fp16/bf16 tiles feed the tensor cores and the probabilities are rounded to the
input dtype before their products, as FlashAttention does.
"""

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def _load(ptrs, rmask, cmask, CHECK_R: tl.constexpr, CHECK_C: tl.constexpr):
    """A 2-D tile; rows / columns out of range (only checked when asked) read as 0."""
    if CHECK_R:
        if CHECK_C:
            x = tl.load(ptrs, mask=rmask[:, None] & cmask[None, :], other=0.0)
        else:
            x = tl.load(ptrs, mask=rmask[:, None], other=0.0)
    else:
        if CHECK_C:
            x = tl.load(ptrs, mask=cmask[None, :], other=0.0)
        else:
            x = tl.load(ptrs)
    return x


@triton.jit
def _fwd_blocks(acc, l_i, m_i, q, k_base, v_base, stride_ks, stride_kd, stride_vs, stride_vd,
                offs_m, S, qk_scale, lo, hi,
                MASK: tl.constexpr, IS_CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                INPUT_PRECISION: tl.constexpr, HEAD_D: tl.constexpr, HEAD_DV: tl.constexpr,
                BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    """Online-softmax accumulation over key blocks [lo, hi) (MASK: causal + bounds)."""
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    kt_ptrs = k_base + offs_d[:, None] * stride_kd + (lo + offs_n)[None, :] * stride_ks
    v_ptrs = v_base + (lo + offs_n)[:, None] * stride_vs + offs_dv[None, :] * stride_vd
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n
        kt = _load(kt_ptrs, offs_d < HEAD_D, cols < S, HEAD_D != BLOCK_D, MASK)
        v = _load(v_ptrs, cols < S, offs_dv < HEAD_DV, MASK, HEAD_DV != BLOCK_DV)
        if UPCAST:
            kt = kt.to(tl.float32)
            v = v.to(tl.float32)
        qk = tl.dot(q, kt, input_precision=INPUT_PRECISION) * qk_scale
        if MASK:
            keep = cols[None, :] < S
            if IS_CAUSAL:
                keep = keep & (cols[None, :] <= offs_m[:, None])
            qk = tl.where(keep, qk, -float("inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        p = tl.exp2(qk - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision=INPUT_PRECISION)
        m_i = m_new
        kt_ptrs += BLOCK_N * stride_ks
        v_ptrs += BLOCK_N * stride_vs
    return acc, l_i, m_i


@triton.jit
def attn_fwd_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, lse_ptr,
    sm_scale, H, GROUP, L, S,
    stride_qb, stride_qh, stride_ql, stride_qd,
    stride_kb, stride_kh, stride_ks, stride_kd,
    stride_vb, stride_vh, stride_vs, stride_vd,
    stride_ob, stride_oh, stride_ol, stride_od,
    IS_CAUSAL: tl.constexpr, UPCAST: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    HEAD_D: tl.constexpr, HEAD_DV: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    """O and logsumexp of BLOCK_M query rows of one (batch, head). BLOCK_M % BLOCK_N == 0."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = bh % H
    hk = (h // GROUP).to(tl.int64)
    h = h.to(tl.int64)
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    m_ok = offs_m < L
    q_ptrs = q_ptr + b * stride_qb + h * stride_qh
    q_ptrs += offs_m[:, None] * stride_ql + offs_d[None, :] * stride_qd
    q = _load(q_ptrs, m_ok, offs_d < HEAD_D, True, HEAD_D != BLOCK_D)
    if UPCAST:
        q = q.to(tl.float32)
    k_base = k_ptr + b * stride_kb + hk * stride_kh
    v_base = v_ptr + b * stride_vb + hk * stride_vh
    qk_scale = sm_scale * LOG2E
    m_i = tl.full([BLOCK_M], -float("inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)
    s_full = (S // BLOCK_N) * BLOCK_N  # key blocks without a ragged tail
    if IS_CAUSAL:
        hi = tl.minimum(S, start_m + BLOCK_M)
        mid = tl.minimum(start_m, s_full)  # blocks every row of the tile sees whole
    else:
        hi = S
        mid = s_full
    acc, l_i, m_i = _fwd_blocks(acc, l_i, m_i, q, k_base, v_base, stride_ks, stride_kd,
                                stride_vs, stride_vd, offs_m, S, qk_scale, 0, mid,
                                False, IS_CAUSAL, UPCAST, INPUT_PRECISION, HEAD_D, HEAD_DV,
                                BLOCK_N, BLOCK_D, BLOCK_DV)
    acc, l_i, m_i = _fwd_blocks(acc, l_i, m_i, q, k_base, v_base, stride_ks, stride_kd,
                                stride_vs, stride_vd, offs_m, S, qk_scale, mid, hi,
                                True, IS_CAUSAL, UPCAST, INPUT_PRECISION, HEAD_D, HEAD_DV,
                                BLOCK_N, BLOCK_D, BLOCK_DV)
    # S == 0: no key at all -> l = 0, o = 0 (an empty sum), lse = -inf
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(l_i == 0.0, -float("inf"), (m_i + tl.log2(l_safe)) * LN2)
    tl.store(lse_ptr + bh.to(tl.int64) * L + offs_m, lse, mask=m_ok)
    o_ptrs = o_ptr + b * stride_ob + h * stride_oh
    o_ptrs += offs_m[:, None] * stride_ol + offs_dv[None, :] * stride_od
    tl.store(o_ptrs, out.to(o_ptr.dtype.element_ty),
             mask=m_ok[:, None] & (offs_dv < HEAD_DV)[None, :])


@triton.jit
def attn_bwd_preprocess_kernel(
    o_ptr, do_ptr, dlse_ptr, delta_ptr,
    H, L,
    stride_ob, stride_oh, stride_ol, stride_od,
    stride_dob, stride_doh, stride_dol, stride_dod,
    stride_lb, stride_lh, stride_ll,
    HAS_DLSE: tl.constexpr, HEAD_DV: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_DV: tl.constexpr,
):
    """``delta = rowsum(dO * O) - dlse`` (fp32, [B, H, L] contiguous) for BLOCK_M rows."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_dv = tl.arange(0, BLOCK_DV)
    m_ok = offs_m < L
    dv_ok = offs_dv < HEAD_DV
    o_ptrs = o_ptr + b * stride_ob + h * stride_oh
    o_ptrs += offs_m[:, None] * stride_ol + offs_dv[None, :] * stride_od
    do_ptrs = do_ptr + b * stride_dob + h * stride_doh
    do_ptrs += offs_m[:, None] * stride_dol + offs_dv[None, :] * stride_dod
    o = _load(o_ptrs, m_ok, dv_ok, True, HEAD_DV != BLOCK_DV).to(tl.float32)
    do = _load(do_ptrs, m_ok, dv_ok, True, HEAD_DV != BLOCK_DV).to(tl.float32)
    delta = tl.sum(o * do, 1)
    if HAS_DLSE:
        dlse_ptrs = dlse_ptr + b * stride_lb + h * stride_lh + offs_m * stride_ll
        delta -= tl.load(dlse_ptrs, mask=m_ok, other=0.0).to(tl.float32)
    tl.store(delta_ptr + bh.to(tl.int64) * L + offs_m, delta, mask=m_ok)


@triton.jit
def _dkdv_blocks(dk, dv, k, v, q_base, do_base, lse_base, delta_base,
                 stride_ql, stride_qd, stride_dol, stride_dod, offs_n, L, qk_scale,
                 lo, n_lo, lo2, n_blocks,
                 MASK: tl.constexpr, IS_CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                 INPUT_PRECISION: tl.constexpr, HEAD_D: tl.constexpr, HEAD_DV: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    """dK/dV contributions of ``n_blocks`` query blocks: ``n_lo`` from row ``lo`` on, the
    rest from row ``lo2`` on (MASK: causal + bounds). Computed transposed (keys x queries)
    so nothing but dO and Q^T needs a transpose."""
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    for i in range(0, n_blocks):
        start_m = tl.where(i < n_lo, lo + i * BLOCK_M, lo2 + (i - n_lo) * BLOCK_M)
        rows = start_m + offs_m
        qt_ptrs = q_base + offs_d[:, None] * stride_qd + rows[None, :] * stride_ql
        do_ptrs = do_base + rows[:, None] * stride_dol + offs_dv[None, :] * stride_dod
        qt = _load(qt_ptrs, offs_d < HEAD_D, rows < L, HEAD_D != BLOCK_D, MASK)
        do = _load(do_ptrs, rows < L, offs_dv < HEAD_DV, MASK, HEAD_DV != BLOCK_DV)
        if MASK:
            lse = tl.load(lse_base + rows, mask=rows < L, other=0.0)
            delta = tl.load(delta_base + rows, mask=rows < L, other=0.0)
        else:
            lse = tl.load(lse_base + rows)
            delta = tl.load(delta_base + rows)
        if UPCAST:
            qt = qt.to(tl.float32)
            do = do.to(tl.float32)
        qkt = tl.dot(k, qt, input_precision=INPUT_PRECISION)
        pt = tl.exp2(qkt * qk_scale - (lse * LOG2E)[None, :])
        if MASK:
            keep = rows[None, :] < L
            if IS_CAUSAL:
                keep = keep & (rows[None, :] >= offs_n[:, None])
            pt = tl.where(keep, pt, 0.0)
        dv = tl.dot(pt.to(do.dtype), do, dv, input_precision=INPUT_PRECISION)
        dpt = tl.dot(v, tl.trans(do), input_precision=INPUT_PRECISION)
        dst = pt * (dpt - delta[None, :])
        dk = tl.dot(dst.to(qt.dtype), tl.trans(qt), dk, input_precision=INPUT_PRECISION)
    return dk, dv


@triton.jit
def attn_bwd_dkdv_kernel(
    q_ptr, k_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr, dk_ptr, dv_ptr,
    sm_scale, H, GROUP, L, S,
    stride_qb, stride_qh, stride_ql, stride_qd,
    stride_kb, stride_kh, stride_ks, stride_kd,
    stride_vb, stride_vh, stride_vs, stride_vd,
    stride_dob, stride_doh, stride_dol, stride_dod,
    stride_dkb, stride_dkh, stride_dks, stride_dkd,
    stride_dvb, stride_dvh, stride_dvs, stride_dvd,
    IS_CAUSAL: tl.constexpr, UPCAST: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    HEAD_D: tl.constexpr, HEAD_DV: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    """dK, dV of BLOCK_N keys of one (batch, kv head), summed over its GROUP query heads.
    BLOCK_N % BLOCK_M == 0."""
    pid_n = tl.program_id(0)
    bhk = tl.program_id(1)
    hkv = H // GROUP
    b = (bhk // hkv).to(tl.int64)
    hk = (bhk % hkv).to(tl.int64)
    start_n = pid_n * BLOCK_N
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    n_ok = offs_n < S
    k_ptrs = k_ptr + b * stride_kb + hk * stride_kh
    k_ptrs += offs_n[:, None] * stride_ks + offs_d[None, :] * stride_kd
    v_ptrs = v_ptr + b * stride_vb + hk * stride_vh
    v_ptrs += offs_n[:, None] * stride_vs + offs_dv[None, :] * stride_vd
    k = _load(k_ptrs, n_ok, offs_d < HEAD_D, True, HEAD_D != BLOCK_D)
    v = _load(v_ptrs, n_ok, offs_dv < HEAD_DV, True, HEAD_DV != BLOCK_DV)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    qk_scale = sm_scale * LOG2E
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_DV], tl.float32)
    l_full = (L // BLOCK_M) * BLOCK_M  # query blocks without a ragged tail
    if IS_CAUSAL:  # rows before start_n see none of these keys; the diagonal needs a mask
        lo = start_n
        mid = tl.maximum(lo, tl.minimum(start_n + BLOCK_N, l_full))
    else:
        lo = 0
        mid = 0
    tail = tl.maximum(mid, l_full)
    # one unmasked loop [mid, l_full), one masked loop over [lo, mid) then [tail, L)
    n_diag = (mid - lo) // BLOCK_M
    n_masked = n_diag + tl.cdiv(L - tail, BLOCK_M)
    n_full = (l_full - mid) // BLOCK_M
    for g in range(GROUP):
        h = hk * GROUP + g
        q_base = q_ptr + b * stride_qb + h * stride_qh
        do_base = do_ptr + b * stride_dob + h * stride_doh
        row0 = (b * H + h) * L
        dk, dv = _dkdv_blocks(dk, dv, k, v, q_base, do_base, lse_ptr + row0, delta_ptr + row0,
                              stride_ql, stride_qd, stride_dol, stride_dod, offs_n, L,
                              qk_scale, mid, n_full, mid, n_full, False, IS_CAUSAL, UPCAST,
                              INPUT_PRECISION, HEAD_D, HEAD_DV, BLOCK_M, BLOCK_D, BLOCK_DV)
        dk, dv = _dkdv_blocks(dk, dv, k, v, q_base, do_base, lse_ptr + row0, delta_ptr + row0,
                              stride_ql, stride_qd, stride_dol, stride_dod, offs_n, L,
                              qk_scale, lo, n_diag, tail, n_masked, True, IS_CAUSAL, UPCAST,
                              INPUT_PRECISION, HEAD_D, HEAD_DV, BLOCK_M, BLOCK_D, BLOCK_DV)
    dk *= sm_scale
    dk_ptrs = dk_ptr + b * stride_dkb + hk * stride_dkh
    dk_ptrs += offs_n[:, None] * stride_dks + offs_d[None, :] * stride_dkd
    tl.store(dk_ptrs, dk.to(dk_ptr.dtype.element_ty),
             mask=n_ok[:, None] & (offs_d < HEAD_D)[None, :])
    dv_ptrs = dv_ptr + b * stride_dvb + hk * stride_dvh
    dv_ptrs += offs_n[:, None] * stride_dvs + offs_dv[None, :] * stride_dvd
    tl.store(dv_ptrs, dv.to(dv_ptr.dtype.element_ty),
             mask=n_ok[:, None] & (offs_dv < HEAD_DV)[None, :])


@triton.jit
def _dq_blocks(dq, q, do, lse2, delta, k_base, v_base, stride_ks, stride_kd, stride_vs,
               stride_vd, offs_m, S, qk_scale, lo, hi,
               MASK: tl.constexpr, IS_CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
               INPUT_PRECISION: tl.constexpr, HEAD_D: tl.constexpr, HEAD_DV: tl.constexpr,
               BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    """dQ contributions of key blocks [lo, hi) (MASK: causal + bounds)."""
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    kt_ptrs = k_base + offs_d[:, None] * stride_kd + (lo + offs_n)[None, :] * stride_ks
    vt_ptrs = v_base + offs_dv[:, None] * stride_vd + (lo + offs_n)[None, :] * stride_vs
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n
        kt = _load(kt_ptrs, offs_d < HEAD_D, cols < S, HEAD_D != BLOCK_D, MASK)
        vt = _load(vt_ptrs, offs_dv < HEAD_DV, cols < S, HEAD_DV != BLOCK_DV, MASK)
        if UPCAST:
            kt = kt.to(tl.float32)
            vt = vt.to(tl.float32)
        qk = tl.dot(q, kt, input_precision=INPUT_PRECISION)
        p = tl.exp2(qk * qk_scale - lse2[:, None])
        if MASK:
            keep = cols[None, :] < S
            if IS_CAUSAL:
                keep = keep & (cols[None, :] <= offs_m[:, None])
            p = tl.where(keep, p, 0.0)
        dp = tl.dot(do, vt, input_precision=INPUT_PRECISION)
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(kt.dtype), tl.trans(kt), dq, input_precision=INPUT_PRECISION)
        kt_ptrs += BLOCK_N * stride_ks
        vt_ptrs += BLOCK_N * stride_vs
    return dq


@triton.jit
def attn_bwd_dq_kernel(
    q_ptr, k_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr, dq_ptr,
    sm_scale, H, GROUP, L, S,
    stride_qb, stride_qh, stride_ql, stride_qd,
    stride_kb, stride_kh, stride_ks, stride_kd,
    stride_vb, stride_vh, stride_vs, stride_vd,
    stride_dob, stride_doh, stride_dol, stride_dod,
    stride_dqb, stride_dqh, stride_dql, stride_dqd,
    IS_CAUSAL: tl.constexpr, UPCAST: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    HEAD_D: tl.constexpr, HEAD_DV: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    """dQ of BLOCK_M query rows of one (batch, head). BLOCK_M % BLOCK_N == 0."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = bh % H
    hk = (h // GROUP).to(tl.int64)
    h = h.to(tl.int64)
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    m_ok = offs_m < L
    q_ptrs = q_ptr + b * stride_qb + h * stride_qh
    q_ptrs += offs_m[:, None] * stride_ql + offs_d[None, :] * stride_qd
    do_ptrs = do_ptr + b * stride_dob + h * stride_doh
    do_ptrs += offs_m[:, None] * stride_dol + offs_dv[None, :] * stride_dod
    q = _load(q_ptrs, m_ok, offs_d < HEAD_D, True, HEAD_D != BLOCK_D)
    do = _load(do_ptrs, m_ok, offs_dv < HEAD_DV, True, HEAD_DV != BLOCK_DV)
    if UPCAST:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    row0 = bh.to(tl.int64) * L
    # rows past L: lse = +inf gives p = 0 (their dQ is not stored anyway)
    lse2 = tl.load(lse_ptr + row0 + offs_m, mask=m_ok, other=float("inf")) * LOG2E
    delta = tl.load(delta_ptr + row0 + offs_m, mask=m_ok, other=0.0)
    k_base = k_ptr + b * stride_kb + hk * stride_kh
    v_base = v_ptr + b * stride_vb + hk * stride_vh
    qk_scale = sm_scale * LOG2E
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    s_full = (S // BLOCK_N) * BLOCK_N
    if IS_CAUSAL:
        hi = tl.minimum(S, start_m + BLOCK_M)
        mid = tl.minimum(start_m, s_full)
    else:
        hi = S
        mid = s_full
    dq = _dq_blocks(dq, q, do, lse2, delta, k_base, v_base, stride_ks, stride_kd, stride_vs,
                    stride_vd, offs_m, S, qk_scale, 0, mid, False, IS_CAUSAL, UPCAST,
                    INPUT_PRECISION, HEAD_D, HEAD_DV, BLOCK_N, BLOCK_D, BLOCK_DV)
    dq = _dq_blocks(dq, q, do, lse2, delta, k_base, v_base, stride_ks, stride_kd, stride_vs,
                    stride_vd, offs_m, S, qk_scale, mid, hi, True, IS_CAUSAL, UPCAST,
                    INPUT_PRECISION, HEAD_D, HEAD_DV, BLOCK_N, BLOCK_D, BLOCK_DV)
    dq *= sm_scale
    dq_ptrs = dq_ptr + b * stride_dqb + h * stride_dqh
    dq_ptrs += offs_m[:, None] * stride_dql + offs_d[None, :] * stride_dqd
    tl.store(dq_ptrs, dq.to(dq_ptr.dtype.element_ty),
             mask=m_ok[:, None] & (offs_d < HEAD_D)[None, :])
