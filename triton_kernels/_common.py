"""Shared launcher helpers: argument checks, allocation, row views and block heuristics."""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from .buffers import interpreter_enabled, strides_of

BF16 = np.dtype(ml_dtypes.bfloat16)
FP16 = np.dtype(np.float16)
FP32 = np.dtype(np.float32)
FLOAT_DTYPES = (FP16, BF16, FP32)
INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))

# Largest row (elements) handled by one block in the persistent single-pass kernels.
MAX_FUSED_N_GPU = 16384
MAX_FUSED_N_INTERP = 1 << 16
# Elements per [BLOCK_M, BLOCK_N] tile the row kernels aim for.
TILE_ELEMS_GPU = 4096
TILE_ELEMS_INTERP = 1 << 16


def cdiv(a: int, b: int) -> int:
    """Ceiling division of Python ints."""
    return -(-a // b)


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (1 for n <= 1)."""
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def check_buffer(name: str, buf, *, ndim=None, dtypes=None) -> None:
    """Raise TypeError/ValueError when ``buf`` lacks the buffer protocol or has a bad rank/dtype."""
    for attr in ("data_ptr", "dtype", "shape"):
        if not hasattr(buf, attr):
            raise TypeError(f"{name}: expected a buffer with .{attr} (got {type(buf).__name__})")
    if not (hasattr(buf, "stride") or hasattr(buf, "strides")):
        raise TypeError(f"{name}: expected a buffer with .stride() or .strides")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(buf.shape) not in allowed:
            raise ValueError(f"{name}: expected rank in {allowed}, got shape {tuple(buf.shape)}")
    if dtypes is not None and np.dtype(buf.dtype) not in dtypes:
        raise TypeError(f"{name}: dtype {buf.dtype} not in {[str(d) for d in dtypes]}")


def check_shape(name: str, buf, shape) -> None:
    """Raise ValueError unless ``buf.shape == shape``."""
    if tuple(buf.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(buf.shape)}")


def allocate(empty, like, shape, dtype, out=None, name="out"):
    """Return ``out`` (checked) or a new buffer from ``empty`` (default: ``type(like).empty``)."""
    dtype = np.dtype(dtype)
    if out is not None:
        check_buffer(name, out)
        check_shape(name, out, shape)
        if np.dtype(out.dtype) != dtype:
            raise TypeError(f"{name}: expected dtype {dtype}, got {out.dtype}")
        return out
    if empty is None:
        empty = getattr(type(like), "empty", None)
        if empty is None:
            raise ValueError(
                f"pass empty=(shape, dtype) -> buffer or {name}=; "
                f"{type(like).__name__} has no .empty"
            )
    return empty(tuple(int(s) for s in shape), dtype)


def rows_view(name: str, buf) -> tuple[int, int, int, int]:
    """View a rank>=1 buffer as rows over its last dim: return ``(M, N, stride_m, stride_n)``.

    Leading dims are collapsed into one row dim, which needs them to be mutually
    contiguous (the last dim itself may have any stride).
    """
    shape, strides = tuple(buf.shape), strides_of(buf)
    if not shape:
        raise ValueError(f"{name}: needs rank >= 1")
    n, stride_n = int(shape[-1]), strides[-1]
    lead = [(s, st) for s, st in zip(shape[:-1], strides[:-1]) if s != 1]
    m = int(np.prod([s for s, _ in lead], dtype=np.int64)) if lead else 1
    if not lead:
        return m, n, n * stride_n if n else 0, stride_n
    for (_, st_outer), (s_inner, st_inner) in zip(lead[:-1], lead[1:]):
        if st_outer != st_inner * s_inner:
            raise ValueError(
                f"{name}: leading dims of shape {shape} strides {strides} "
                "cannot be collapsed into rows; make it contiguous first"
            )
    return m, n, lead[-1][1], stride_n


def flat_view(name: str, buf) -> tuple[int, int]:
    """View a buffer as a 1-D vector: return ``(numel, stride)``; needs collapsible dims."""
    shape = tuple(buf.shape)
    if not shape:
        return 1, 1
    m, n, stride_m, stride_n = rows_view(name, buf)
    if m > 1 and n > 1 and stride_m != n * stride_n:
        raise ValueError(f"{name}: shape {shape} strides {strides_of(buf)} is not a strided vector")
    if n == 1:
        return m, stride_m
    return m * n, stride_n


@dataclass(frozen=True)
class RowBlocks:
    """Launch geometry of a row-wise kernel: ``BLOCK_M`` rows x ``BLOCK_N`` columns per tile."""

    block_m: int
    block_n: int
    single_block: bool
    num_warps: int


def row_blocks(m: int, n: int, *, block_m=None, block_n=None, interpreter=None,
               max_fused=None, looped_block_n=4096) -> RowBlocks:
    """Pick the tile of a row kernel (softmax, layer norm, cross entropy).

    The row is kept in one block (single pass, ``single_block=True``) when it fits
    ``MAX_FUSED_N``; otherwise the kernel loops over ``block_n``-wide column blocks.
    Under the interpreter blocks are made large, since its cost is ~programs x iterations.
    ``block_m``/``block_n`` override the choice (tests use it to force the looped path);
    ``interpreter`` overrides the detection (AOT specs ask for the GPU geometry);
    ``max_fused``/``looped_block_n`` tune the GPU geometry of register-hungry kernels.
    """
    interp = interpreter_enabled() if interpreter is None else interpreter
    if interp:
        max_fused = looped_block_n = MAX_FUSED_N_INTERP
    elif max_fused is None:
        max_fused = MAX_FUSED_N_GPU
    tile = TILE_ELEMS_INTERP if interp else TILE_ELEMS_GPU
    if block_n is None:
        block_n = next_pow2(n) if n <= max_fused else looped_block_n
    block_n = max(int(block_n), 16)
    if block_m is None:
        block_m = max(1, min(next_pow2(m), tile // block_n, 64))
    single = block_n >= n
    elems = block_m * block_n  # aim at <= 16 fp32 values per thread and tile
    warps = 4 if elems <= 1024 else (8 if elems <= 4096 else 16)
    return RowBlocks(int(block_m), block_n, single, warps)
