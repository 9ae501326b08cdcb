"""Launcher for the stable row argsort (``sort_kernels.argsort_rows_kernel``)."""

from __future__ import annotations

import numpy as np

from ._common import allocate, check_buffer, next_pow2, rows_view
from .aot import KernelSpec, pointer_type
from .buffers import interpreter_enabled
from .sort_kernels import KIND_FLOAT, KIND_INT, argsort_rows_kernel

__all__ = ["argsort", "supports", "MAX_SORT_N", "aot_specs"]

MAX_SORT_N = 8192  # longest row sorted in registers by one program (16384 spills)
_KINDS = {np.dtype(d): KIND_FLOAT for d in ("float32", "float16")}
_KINDS.update({np.dtype(d): KIND_INT for d in ("int32", "int16", "int8", "uint8", "bool")})


def _kind(dtype):
    dtype = np.dtype(dtype)
    if dtype.name == "bfloat16":  # ml_dtypes' bfloat16 (not a NumPy builtin)
        return KIND_FLOAT
    return _KINDS.get(dtype)


def supports(dtype, n: int) -> bool:
    """True when rows of ``n`` elements of ``dtype`` can be sorted on the device: values
    of at most 32 bits (float64/int64 need 64-bit keys) and rows up to ``MAX_SORT_N``."""
    return _kind(dtype) is not None and n <= MAX_SORT_N


def _warps(block_n: int) -> int:
    return 4 if block_n <= 1024 else (8 if block_n <= 4096 else 16)


def argsort(x, *, descending: bool = False, out=None, empty=None):
    """int64 indices sorting each row of ``x`` (over its last dim), stable.

    ``x``: a buffer of fp32/fp16/bf16/int32/int16/int8/uint8/bool with collapsible leading
    dims and rows of at most ``MAX_SORT_N`` elements (see :func:`supports`). NaN sorts as
    the largest value (first when ``descending``); equal values keep their order.
    """
    check_buffer("x", x)
    kind = _kind(x.dtype)
    if kind is None:
        raise TypeError(f"argsort: dtype {np.dtype(x.dtype)} needs 64-bit keys; sort it on "
                        "the host")
    y = allocate(empty, x, x.shape, np.int64, out)
    if not x.shape:
        raise ValueError("argsort: needs rank >= 1 (a 0-d tensor's order is [0])")
    m, n, sxm, sxn = rows_view("x", x)
    _, _, sym, syn = rows_view("out", y)
    if n > MAX_SORT_N:
        raise ValueError(f"argsort: rows of {n} elements are longer than {MAX_SORT_N}")
    if m == 0 or n == 0:
        return y
    block = max(next_pow2(n), 16)
    argsort_rows_kernel[(m,)](x, y, m, n, sxm, sxn, sym, syn, KIND=kind,
                              DESCENDING=bool(descending), BLOCK_N=block,
                              num_warps=_warps(block) if not interpreter_enabled() else 4)
    return y


def aot_specs(dtype) -> list[KernelSpec]:
    """Specs of the row lengths the launcher compiles on a GPU: short rows and the longest."""
    specs = []
    for dt, kind in ((dtype, KIND_FLOAT), ("int32", KIND_INT)):
        for block in (1024, 4096, MAX_SORT_N):
            specs.append(KernelSpec(
                argsort_rows_kernel, dict(x_ptr=pointer_type(dt), out_ptr=pointer_type("int64")),
                dict(KIND=kind, DESCENDING=True, BLOCK_N=block, stride_xn=1, stride_on=1),
                _warps(block), label=f"argsort_rows[{np.dtype(dt)},{block}]"))
    return specs
