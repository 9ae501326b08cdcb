# ruff: noqa: N803  (Triton convention: upper-case sizes and constexpr arguments)
"""Tiled (batched) matmul with a fused epilogue (Triton kernels only).

``C[b] = act(A[b] @ B[b] + bias) + residual[b]``, any strides (transposed operands and a
broadcast batch via stride 0 work). Each program computes one [BLOCK_M, BLOCK_N] tile of
one batch entry, accumulating in fp32 over ``BLOCK_K`` slices: reads ``MK * cdiv(N, BLOCK_N)
+ KN * cdiv(M, BLOCK_M)``, writes MN (+ MN residual reads). Tiles are visited in groups of
``GROUP_M`` row blocks so neighbouring programs reuse B tiles from L2.

fp16/bf16 operands go to ``tl.dot`` as they are (tensor cores, fp32 accumulation) unless
``UPCAST`` (mixed dtypes, or bf16 under the interpreter, whose bf16 dot is broken).
"""

import triton
import triton.language as tl


@triton.jit
def apply_activation(x, ACTIVATION: tl.constexpr):
    """``ACTIVATION`` in {"none", "relu", "gelu" (tanh approximation), "silu"} on fp32 ``x``."""
    y = x
    if ACTIVATION == "relu":
        y = tl.maximum(x, 0.0)
    elif ACTIVATION == "gelu":
        # 0.5 x (1 + tanh(u)) == x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3); no tl tanh
        y = x * tl.sigmoid(1.5957691216057308 * (x + 0.044715 * x * x * x))
    elif ACTIVATION == "silu":
        y = x * tl.sigmoid(x)
    return y


@triton.jit
def matmul_kernel(
    a_ptr, b_ptr, c_ptr, bias_ptr, res_ptr,
    M, N, K,
    stride_ab, stride_am, stride_ak,
    stride_bb, stride_bk, stride_bn,
    stride_cb, stride_cm, stride_cn,
    stride_bias,
    stride_rb, stride_rm, stride_rn,
    ACTIVATION: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    UPCAST: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """One [BLOCK_M, BLOCK_N] tile of act(A @ B + bias) + residual for one batch entry."""
    pid = tl.program_id(0)
    batch = tl.program_id(1).to(tl.int64)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    # grouped tile order: GROUP_M row blocks sweep the same B column tiles together
    num_pid_in_group = GROUP_M * num_pid_n
    first_pid_m = (pid // num_pid_in_group) * GROUP_M
    group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + (pid % num_pid_in_group) % group_size_m
    pid_n = (pid % num_pid_in_group) // group_size_m

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # wrap rows/cols so loads stay in bounds without masks; stores are masked
    a_ptrs = a_ptr + batch * stride_ab + (offs_m % M)[:, None] * stride_am
    a_ptrs += offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + batch * stride_bb + (offs_n % N)[None, :] * stride_bn
    b_ptrs += offs_k[:, None] * stride_bk
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        a = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
        b = tl.load(b_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
        if UPCAST:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_n * stride_bias, mask=offs_n < N, other=0.0)
        acc += bias.to(tl.float32)[None, :]
    acc = apply_activation(acc, ACTIVATION)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    if HAS_RESIDUAL:
        r_ptrs = res_ptr + batch * stride_rb + offs_m[:, None] * stride_rm
        acc += tl.load(r_ptrs + offs_n[None, :] * stride_rn, mask=mask, other=0.0).to(tl.float32)
    c_ptrs = c_ptr + batch * stride_cb + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=mask)
