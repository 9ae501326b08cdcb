"""Launchers for device-to-device copy (bandwidth reference, casts), strided copy and fill."""

from __future__ import annotations

from ._common import allocate, cdiv, check_buffer, flat_view, next_pow2
from .aot import KernelSpec, pointer_type
from .buffers import interpreter_enabled, strides_of
from .copy_kernels import copy_kernel, fill_kernel, strided_copy_kernel

__all__ = ["copy", "fill", "zeros", "aot_specs"]

BLOCK_GPU, WARPS_GPU = 4096, 8  # 16 elements per thread: 4 x 128-bit accesses for fp32
STRIDED_BLOCK_GPU = 1024  # int64 index math per element: 8 elements per thread (4 warps)


def _block(n: int, block=None, strided: bool = False) -> tuple[int, int]:
    warps = 4 if strided else WARPS_GPU
    if block is not None:
        return int(block), warps
    if interpreter_enabled():
        return min(next_pow2(n), 1 << 16), 4
    return (STRIDED_BLOCK_GPU if strided else BLOCK_GPU), warps


def _contiguous(buf) -> bool:
    try:
        n, stride = flat_view("buf", buf)
    except ValueError:
        return False
    return n <= 1 or stride == 1


def _collapse(shape, s_src, s_dst):
    """Drop size-1 dims and merge dims that are contiguous in both src and dst."""
    dims = [(n, a, b) for n, a, b in zip(shape, s_src, s_dst) if n != 1]
    out = []
    for n, a, b in dims:
        if out and out[-1][1] == a * n and out[-1][2] == b * n:
            n0, _, _ = out.pop()
            out.append((n0 * n, a, b))
        else:
            out.append((n, a, b))
    return out or [(1, 0, 0)]


def _numel(buf) -> int:
    n = 1
    for s in buf.shape:
        n *= int(s)
    return n


def copy(src, dst=None, *, dtype=None, empty=None, block=None):
    """Copy ``src`` into ``dst`` (allocated with ``empty`` when None), casting to ``dst``'s dtype.

    Contiguous buffers use the flat ``copy_kernel`` (the bandwidth reference: read N, write N);
    anything else goes through ``strided_copy_kernel`` (rank <= 4 after merging dims).
    """
    check_buffer("src", src)
    dtype = dtype or (src.dtype if dst is None else dst.dtype)
    dst = allocate(empty, src, src.shape, dtype, dst, "dst")
    n = _numel(src)
    if n == 0:
        return dst
    if _contiguous(src) and _contiguous(dst):
        blk, warps = _block(n, block)
        copy_kernel[(cdiv(n, blk),)](src, dst, n, BLOCK=blk, num_warps=warps)
        return dst
    dims = _collapse(src.shape, strides_of(src), strides_of(dst))
    if len(dims) > 4:
        raise ValueError(f"strided copy supports rank <= 4 after merging dims, "
                         f"got shape {tuple(src.shape)}")
    sizes, ss, sd = zip(*([(1, 0, 0)] * (4 - len(dims)) + dims))
    blk, warps = _block(n, block, strided=True)
    # iterate the 4-D index space: read N, write N
    strided_copy_kernel[(cdiv(n, blk),)](
        src, dst,
        n, sizes[1], sizes[2], sizes[3],
        *ss, *sd,
        BLOCK=blk, num_warps=warps,
    )
    return dst


def fill(dst, value, *, block=None):
    """Set every element of the contiguous buffer ``dst`` to ``value`` (a Python number)."""
    check_buffer("dst", dst)
    if not _contiguous(dst):
        raise ValueError("fill: dst must be contiguous")
    n = _numel(dst)
    if n:
        blk, warps = _block(n, block)
        fill_kernel[(cdiv(n, blk),)](dst, n, float(value), BLOCK=blk, num_warps=warps)
    return dst


def zeros(shape, dtype, *, empty):
    """Allocate ``empty(shape, dtype)`` and zero it with :func:`fill`."""
    return fill(empty(tuple(int(s) for s in shape), dtype), 0.0)


def aot_specs(dtype) -> list[KernelSpec]:
    """Kernel specs the launchers use on a GPU for ``dtype`` (fp32 destination for casts)."""
    p, f = pointer_type(dtype), pointer_type("float32")
    flat = dict(BLOCK=BLOCK_GPU)
    return [
        KernelSpec(copy_kernel, dict(src_ptr=p, dst_ptr=p), flat, WARPS_GPU, label="copy"),
        KernelSpec(copy_kernel, dict(src_ptr=p, dst_ptr=f), flat, WARPS_GPU, label="copy[cast]"),
        KernelSpec(strided_copy_kernel, dict(src_ptr=p, dst_ptr=p),
                   dict(BLOCK=STRIDED_BLOCK_GPU, dst_s3=1), 4, label="strided_copy"),
        KernelSpec(fill_kernel, dict(dst_ptr=p, value="fp32"), flat, WARPS_GPU, label="fill"),
    ]
