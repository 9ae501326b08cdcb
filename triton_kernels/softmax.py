"""Launchers for softmax / log-softmax over the last dim, forward and backward."""

from __future__ import annotations

from ._common import (
    FLOAT_DTYPES, MAX_FUSED_N_GPU, allocate, cdiv, check_buffer, check_shape, row_blocks, rows_view,
)
from .aot import KernelSpec, pointer_type
from .softmax_kernels import softmax_bwd_kernel, softmax_fwd_kernel

__all__ = ["softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "aot_specs"]


def softmax(x, *, log: bool = False, out=None, out_dtype=None, empty=None,
            block_m=None, block_n=None):
    """Softmax (or log-softmax with ``log=True``) of ``x`` over its last dim.

    ``x``: fp32/fp16/bf16 buffer of any rank (leading dims collapsible, last dim any
    stride). Returns ``out`` (or a new buffer of ``x.shape`` and ``out_dtype`` allocated
    with ``empty(shape, dtype)``; default dtype is ``x.dtype``).
    """
    check_buffer("x", x, dtypes=FLOAT_DTYPES)
    y = allocate(empty, x, x.shape, out_dtype or x.dtype, out)
    m, n, sxm, sxn = rows_view("x", x)
    _, _, sym, syn = rows_view("out", y)
    if m == 0 or n == 0:
        return y
    g = row_blocks(m, n, block_m=block_m, block_n=block_n)
    # one program per BLOCK_M rows; single block: read MN, write MN; looped: read 2MN, write MN
    softmax_fwd_kernel[(cdiv(m, g.block_m),)](
        x, y,
        m, n,
        sxm, sxn, sym, syn,
        LOG=log, SINGLE_BLOCK=g.single_block,
        BLOCK_M=g.block_m, BLOCK_N=g.block_n, num_warps=g.num_warps,
    )
    return y


def log_softmax(x, **kwargs):
    """Log-softmax over the last dim; same arguments as :func:`softmax`."""
    return softmax(x, log=True, **kwargs)


def softmax_backward(y, dy, *, log: bool = False, out=None, empty=None,
                     block_m=None, block_n=None):
    """Gradient of softmax (``log=True``: log-softmax) w.r.t. its input, from ``y`` and ``dy``.

    softmax: ``dx = y * (dy - sum(dy * y))``; log-softmax: ``dx = dy - exp(y) * sum(dy)``.
    ``y`` is the forward's output. Returns ``dx`` with ``dy``'s dtype (or ``out``).
    """
    check_buffer("y", y, dtypes=FLOAT_DTYPES)
    check_buffer("dy", dy, dtypes=FLOAT_DTYPES)
    check_shape("dy", dy, y.shape)
    dx = allocate(empty, dy, dy.shape, dy.dtype, out)
    m, n, sym, syn = rows_view("y", y)
    _, _, sdym, sdyn = rows_view("dy", dy)
    _, _, sdxm, sdxn = rows_view("out", dx)
    if m == 0 or n == 0:
        return dx
    g = row_blocks(m, n, block_m=block_m, block_n=block_n)
    # single block: read 2MN, write MN; looped: read 3MN (2MN for log), write MN
    softmax_bwd_kernel[(cdiv(m, g.block_m),)](
        y, dy, dx,
        m, n,
        sym, syn, sdym, sdyn, sdxm, sdxn,
        LOG=log, SINGLE_BLOCK=g.single_block,
        BLOCK_M=g.block_m, BLOCK_N=g.block_n, num_warps=g.num_warps,
    )
    return dx


def log_softmax_backward(y, dy, **kwargs):
    """Gradient of log-softmax; same arguments as :func:`softmax_backward`."""
    return softmax_backward(y, dy, log=True, **kwargs)


def aot_specs(dtype) -> list[KernelSpec]:
    """Kernel specs the launchers use on a GPU for ``dtype``: short, longest fused, looped rows."""
    p = pointer_type(dtype)
    specs = []
    for n in (1024, MAX_FUSED_N_GPU, 65536):
        g = row_blocks(64, n, interpreter=False)
        kind = f"{'single' if g.single_block else 'looped'}{g.block_n}"
        flags = dict(SINGLE_BLOCK=g.single_block, BLOCK_M=g.block_m, BLOCK_N=g.block_n)
        specs.append(KernelSpec(
            softmax_fwd_kernel, dict(x_ptr=p, y_ptr=p),
            dict(LOG=False, stride_xn=1, stride_yn=1, **flags), g.num_warps,
            label=f"softmax_fwd[{kind}]"))
        specs.append(KernelSpec(
            softmax_bwd_kernel, dict(y_ptr=p, dy_ptr=p, dx_ptr=p),
            dict(LOG=False, stride_yn=1, stride_dyn=1, stride_dxn=1, **flags), g.num_warps,
            label=f"softmax_bwd[{kind}]"))
    return specs
