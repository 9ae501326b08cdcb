# ruff: noqa: N803  (Triton convention: upper-case sizes and constexpr arguments)
"""Stable argsort of the rows of a [M, N] view (Triton kernels only).

Each program sorts one row in registers with ``tl.sort`` (a bitonic network) over 64-bit
composite keys: the upper 32 bits order the values, the lower 32 bits are the column, so
equal values keep their original order (stable) and the column comes back from the low
bits. Values map to a signed 32-bit order key: floats (fp32/fp16/bf16, compared in fp32)
through their bit pattern with -0.0 folded onto +0.0 and every NaN above +inf, as PyTorch
orders them; integers of at most 32 bits as themselves. Descending order flips the key
(``~key``), which puts NaN first and still keeps ties in their original order. Columns
past ``N`` get the largest key and sort after every real element.
"""

import triton
import triton.language as tl

KIND_FLOAT, KIND_INT = 0, 1  # how values become 32-bit order keys


@triton.jit
def argsort_rows_kernel(
    x_ptr, out_ptr,
    M, N,
    stride_xm, stride_xn, stride_om, stride_on,
    KIND: tl.constexpr, DESCENDING: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """int64 column order of row ``program_id`` of x, ascending or descending, stable."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    ok = cols < N
    x = tl.load(x_ptr + row * stride_xm + cols * stride_xn, mask=ok, other=0)
    if KIND == 0:
        f = x.to(tl.float32) + 0.0  # -0.0 + 0.0 == +0.0: signed zeros compare equal
        bits = f.to(tl.int32, bitcast=True)
        key = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # float order as signed int order
        key = tl.where(f != f, 0x7FFFFFFF, key)  # NaN: above +inf (0x7F800000)
    else:
        key = x.to(tl.int32)
    if DESCENDING:
        key = ~key
    key = tl.where(ok, key, 0x7FFFFFFF)
    packed = (key.to(tl.int64) << 32) | cols.to(tl.int64)
    order = tl.sort(packed, 0) & 0xFFFFFFFF
    tl.store(out_ptr + row * stride_om + cols * stride_on, order, mask=ok)
