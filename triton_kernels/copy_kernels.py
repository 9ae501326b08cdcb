# ruff: noqa: N803  (Triton convention: upper-case sizes and constexpr arguments)
"""Device-to-device copy (with dtype cast), strided copy and fill (Triton kernels only).

``copy_kernel`` is the bandwidth reference: contiguous, one ``BLOCK`` per program,
read N, write N. ``strided_copy_kernel`` gathers a rank <= 4 strided view into another
(e.g. makes a transposed view contiguous). Offsets are int64 so > 2**31 elements work.
"""

import triton
import triton.language as tl


@triton.jit
def copy_kernel(src_ptr, dst_ptr, N, BLOCK: tl.constexpr):
    """dst[i] = src[i] (cast to dst dtype) for contiguous buffers; one BLOCK per program."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x = tl.load(src_ptr + offs, mask=mask)
    tl.store(dst_ptr + offs, x.to(dst_ptr.dtype.element_ty), mask=mask)


@triton.jit
def strided_copy_kernel(
    src_ptr, dst_ptr,
    N, size1, size2, size3,
    src_s0, src_s1, src_s2, src_s3, dst_s0, dst_s1, dst_s2, dst_s3,
    BLOCK: tl.constexpr,
):
    """Copy a rank <= 4 strided view into another (cast to dst dtype)."""
    # linear index over a [size0, size1, size2, size3] row-major iteration space
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    i3 = offs % size3
    rest = offs // size3
    i2 = rest % size2
    rest = rest // size2
    i1 = rest % size1
    i0 = rest // size1
    src = src_ptr + i0 * src_s0 + i1 * src_s1 + i2 * src_s2 + i3 * src_s3
    dst = dst_ptr + i0 * dst_s0 + i1 * dst_s1 + i2 * dst_s2 + i3 * dst_s3
    x = tl.load(src, mask=mask)
    tl.store(dst, x.to(dst_ptr.dtype.element_ty), mask=mask)


@triton.jit
def fill_kernel(dst_ptr, N, value, BLOCK: tl.constexpr):
    """dst[i] = value for a contiguous buffer."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    val = tl.full([BLOCK], value, tl.float32)
    tl.store(dst_ptr + offs, val.to(dst_ptr.dtype.element_ty), mask=offs < N)
