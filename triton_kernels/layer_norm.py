"""Launchers for LayerNorm over the last dim: forward (out, mean, rstd), backward (dx, dw, db)."""

from __future__ import annotations

from ._common import (
    FLOAT_DTYPES, FP32, MAX_FUSED_N_GPU, allocate, cdiv, check_buffer, check_shape, next_pow2,
    row_blocks, rows_view,
)
from .aot import KernelSpec, pointer_type
from .buffers import interpreter_enabled, strides_of
from .layer_norm_kernels import (
    layer_norm_bwd_dwdb_kernel, layer_norm_bwd_dx_kernel, layer_norm_fwd_kernel,
)

__all__ = ["layer_norm", "layer_norm_backward", "aot_specs"]

BWD_PROGRAMS_GPU = 256  # partial dw/db rows; ~2 per SM on A100/H100
# the backward holds x, dy, w, xhat and dx per element: smaller blocks than the forward
BWD_GEOMETRY = dict(max_fused=8192, looped_block_n=2048)


def _check_param(name, p, n):
    if p is not None:
        check_buffer(name, p, ndim=1, dtypes=FLOAT_DTYPES)
        check_shape(name, p, (n,))
        if n > 1 and strides_of(p)[0] != 1:
            raise ValueError(f"{name}: must be contiguous")


def layer_norm(x, weight=None, bias=None, *, eps: float = 1e-5, out=None, out_dtype=None,
               empty=None, block_m=None, block_n=None):
    """LayerNorm of ``x`` over its last dim: ``(x - mean) * rstd * weight + bias``.

    ``x``: fp32/fp16/bf16, any rank (leading dims collapsible, last dim any stride);
    ``weight``/``bias``: optional contiguous ``[N]``. Returns ``(out, mean, rstd)`` where
    ``mean``/``rstd`` are fp32 of shape ``x.shape[:-1]`` (saved for the backward).
    """
    check_buffer("x", x, dtypes=FLOAT_DTYPES)
    m, n, sxm, sxn = rows_view("x", x)
    _check_param("weight", weight, n)
    _check_param("bias", bias, n)
    y = allocate(empty, x, x.shape, out_dtype or x.dtype, out)
    mean = allocate(empty, x, x.shape[:-1], FP32, name="mean")
    rstd = allocate(empty, x, x.shape[:-1], FP32, name="rstd")
    _, _, sym, syn = rows_view("out", y)
    if m == 0 or n == 0:
        return y, mean, rstd
    g = row_blocks(m, n, block_m=block_m, block_n=block_n)
    # single block: read MN, write MN + 2M; looped: read 3MN, write MN + 2M
    layer_norm_fwd_kernel[(cdiv(m, g.block_m),)](
        x, _or(weight, x), _or(bias, x), y, mean, rstd,
        m, n,
        sxm, sxn, sym, syn,
        float(eps),
        HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None, SINGLE_BLOCK=g.single_block,
        BLOCK_M=g.block_m, BLOCK_N=g.block_n, num_warps=g.num_warps,
    )
    return y, mean, rstd


def _or(buf, dummy):
    """``buf`` or a dummy pointer for an argument the kernel does not touch (flag off)."""
    return dummy if buf is None else buf


def _reduce_blocks(p: int, n: int, interp: bool) -> tuple[int, int]:
    block_n = min(next_pow2(n), 4096 if interp else 128)
    block_p = min(next_pow2(p), max(1, (1 << 16 if interp else 2048) // block_n))
    return block_p, block_n


def layer_norm_backward(dy, x, weight, bias, mean, rstd, *, out=None, empty=None,
                        num_programs=None, block_m=None, block_n=None):
    """Gradients of :func:`layer_norm`: returns ``(dx, dweight, dbias)``.

    ``weight``/``bias`` are the forward's parameters (or None: no gradient returned for
    them); ``mean``/``rstd`` are the forward's saved fp32 statistics. ``dx`` has ``dy``'s
    dtype, ``dweight``/``dbias`` their parameter's dtype. ``num_programs`` caps the number
    of partial rows reduced deterministically in a second kernel.
    """
    check_buffer("x", x, dtypes=FLOAT_DTYPES)
    check_buffer("dy", dy, dtypes=FLOAT_DTYPES)
    check_shape("dy", dy, x.shape)
    m, n, sxm, sxn = rows_view("x", x)
    _, _, sdym, sdyn = rows_view("dy", dy)
    _check_param("weight", weight, n)
    _check_param("bias", bias, n)
    for name, s in (("mean", mean), ("rstd", rstd)):
        check_buffer(name, s, dtypes=(FP32,))
        check_shape(name, s, x.shape[:-1])
    dx = allocate(empty, x, x.shape, dy.dtype, out)
    _, _, sdxm, sdxn = rows_view("out", dx)
    dw = None if weight is None else allocate(empty, x, (n,), weight.dtype, name="dweight")
    db = None if bias is None else allocate(empty, x, (n,), bias.dtype, name="dbias")
    if m == 0 or n == 0:
        return dx, dw, db
    interp = interpreter_enabled()
    g = row_blocks(m, n, block_m=block_m, block_n=block_n, **BWD_GEOMETRY)
    p = min(cdiv(m, g.block_m), num_programs or (2 if interp else BWD_PROGRAMS_GPU))
    dw_part = None if dw is None else allocate(empty, x, (p, n), FP32, name="dw_partial")
    db_part = None if db is None else allocate(empty, x, (p, n), FP32, name="db_partial")
    # P programs stride over row tiles: read 2MN (3MN looped) + N, write MN + partials PN
    layer_norm_bwd_dx_kernel[(p,)](
        x, dy, _or(weight, x), mean, rstd, dx, _or(dw_part, x), _or(db_part, x),
        m, n,
        sxm, sxn, sdym, sdyn, sdxm, sdxn,
        HAS_WEIGHT=dw is not None, HAS_BIAS=db is not None, SINGLE_BLOCK=g.single_block,
        BLOCK_M=g.block_m, BLOCK_N=g.block_n, num_warps=g.num_warps,
    )
    if dw is not None or db is not None:
        block_p, block_nr = _reduce_blocks(p, n, interp)
        # read PN per partial, write N
        layer_norm_bwd_dwdb_kernel[(cdiv(n, block_nr),)](
            _or(dw_part, x), _or(db_part, x), _or(dw, x), _or(db, x),
            p, n,
            HAS_WEIGHT=dw is not None, HAS_BIAS=db is not None,
            BLOCK_P=block_p, BLOCK_N=block_nr, num_warps=4,
        )
    return dx, dw, db


def aot_specs(dtype) -> list[KernelSpec]:
    """Kernel specs the launchers use on a GPU for ``dtype``: short, longest fused, looped rows."""
    p, f = pointer_type(dtype), pointer_type(FP32)
    fwd_types = dict(x_ptr=p, w_ptr=p, b_ptr=p, y_ptr=p, mean_ptr=f, rstd_ptr=f, eps="fp32")
    bwd_types = dict(x_ptr=p, dy_ptr=p, w_ptr=p, mean_ptr=f, rstd_ptr=f, dx_ptr=p,
                     dw_part_ptr=f, db_part_ptr=f)
    specs = []
    for kernel, types, geometry, unit in (
        (layer_norm_fwd_kernel, fwd_types, {}, dict(stride_xn=1, stride_yn=1)),
        (layer_norm_bwd_dx_kernel, bwd_types, BWD_GEOMETRY,
         dict(stride_xn=1, stride_dyn=1, stride_dxn=1)),
    ):
        for n in (1024, geometry.get("max_fused", MAX_FUSED_N_GPU), 65536):
            g = row_blocks(64, n, interpreter=False, **geometry)
            flags = dict(HAS_WEIGHT=True, HAS_BIAS=True, SINGLE_BLOCK=g.single_block,
                         BLOCK_M=g.block_m, BLOCK_N=g.block_n)
            label = f"{kernel.__name__[:-7]}[{'single' if g.single_block else 'looped'}{g.block_n}]"
            specs.append(KernelSpec(kernel, types, {**unit, **flags}, g.num_warps, label=label))
    block_p, block_n = _reduce_blocks(BWD_PROGRAMS_GPU, 1024, False)
    flags = dict(HAS_WEIGHT=True, HAS_BIAS=True, BLOCK_P=block_p, BLOCK_N=block_n)
    types = dict(dw_part_ptr=f, db_part_ptr=f, dw_ptr=p, db_ptr=p)
    specs.append(KernelSpec(layer_norm_bwd_dwdb_kernel, types, flags, 4, label="layer_norm_dwdb"))
    return specs
