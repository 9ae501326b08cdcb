"""Launcher for (batched) matmul with a fused bias / activation / residual epilogue."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ._common import BF16, FLOAT_DTYPES, FP32, allocate, cdiv, check_buffer, check_shape, next_pow2
from .aot import KernelSpec, pointer_type
from .buffers import interpreter_enabled, strides_of
from .matmul_kernels import matmul_kernel

__all__ = ["ACTIVATIONS", "MatmulConfig", "CONFIGS", "pick_config", "matmul", "aot_specs"]

ACTIVATIONS = ("none", "relu", "gelu", "silu")


@dataclass(frozen=True)
class MatmulConfig:
    """Tile sizes and launch options of :func:`matmul_kernel`."""

    block_m: int
    block_n: int
    block_k: int
    group_m: int = 8
    num_warps: int = 4
    num_stages: int = 3


# GPU configs for 2-byte operands; fp32 operands halve BLOCK_K (same shared memory per stage).
# Both pass the AOT resource gate on sm_80 and sm_90 with the full epilogue. 128x256 tiles
# (8 or 16 warps) and 128x128 tiles with 4 warps spill once bias+gelu+residual are fused.
CONFIGS = {
    "large": MatmulConfig(128, 128, 64, 8, 8, 3),
    "small": MatmulConfig(64, 64, 64, 8, 4, 3),
}
NUM_SMS = 132  # H100 SXM; only used to decide whether large tiles fill the machine


def pick_config(batch: int, m: int, n: int, k: int, dtype, *, interpreter=None) -> MatmulConfig:
    """Launch heuristic: the largest tile whose grid still covers ~all SMs.

    Under the interpreter one tile covers as much of the problem as possible (its cost
    grows with programs x K iterations, not tile size).
    """
    interp = interpreter_enabled() if interpreter is None else interpreter
    if interp:
        clamp = lambda v: min(max(next_pow2(v), 16), 128)
        return MatmulConfig(clamp(m), clamp(n), clamp(k), 1, 4, 1)
    large = batch * cdiv(m, 128) * cdiv(n, 128) >= NUM_SMS // 2
    cfg = CONFIGS["large" if large else "small"]
    if np.dtype(dtype).itemsize >= 4:
        cfg = dataclasses.replace(cfg, block_k=cfg.block_k // 2)
    return cfg


def _batched(name, buf):
    """(batch, rows, cols, stride_batch, stride_row, stride_col) of a 2-D or 3-D buffer."""
    check_buffer(name, buf, ndim=(2, 3), dtypes=FLOAT_DTYPES)
    shape, st = tuple(buf.shape), strides_of(buf)
    if len(shape) == 2:
        return 1, shape[0], shape[1], 0, st[0], st[1]
    return shape[0], shape[1], shape[2], (st[0] if shape[0] > 1 else 0), st[1], st[2]


def matmul(a, b, *, bias=None, activation: str = "none", residual=None, out=None,
           out_dtype=None, allow_tf32: bool = True, empty=None, config: MatmulConfig | None = None):
    """``out = activation(a @ b + bias) + residual``, batched over a leading dim.

    ``a``: [M, K] or [B, M, K]; ``b``: [K, N] or [B, K, N] (a batch of 1 or a 2-D operand
    broadcasts); fp32/fp16/bf16, any strides. ``bias``: [N]; ``residual``: the output's
    shape or [M, N]. ``activation`` in ``ACTIVATIONS`` (gelu = tanh approximation).
    Accumulates in fp32; ``out_dtype`` defaults to ``a.dtype``. ``allow_tf32`` lets fp32
    products use TF32 tensor cores on the GPU. ``config`` overrides :func:`pick_config`.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    ba, m, k, sab, sam, sak = _batched("a", a)
    bb, k2, n, sbb, sbk, sbn = _batched("b", b)
    if k != k2:
        raise ValueError(f"inner dims differ: a {tuple(a.shape)} @ b {tuple(b.shape)}")
    if ba != bb and 1 not in (ba, bb):
        raise ValueError(f"batch dims differ: a {tuple(a.shape)} @ b {tuple(b.shape)}")
    batch = max(ba, bb)
    out_shape = (batch, m, n) if max(len(a.shape), len(b.shape)) == 3 else (m, n)
    c = allocate(empty, a, out_shape, out_dtype or a.dtype, out)
    _, _, _, scb, scm, scn = _batched("out", c)
    s_bias = 0
    if bias is not None:
        check_buffer("bias", bias, ndim=1, dtypes=FLOAT_DTYPES)
        check_shape("bias", bias, (n,))
        s_bias = strides_of(bias)[0]
    srb = srm = srn = 0
    if residual is not None:
        br, mr, nr, srb, srm, srn = _batched("residual", residual)
        if (mr, nr) != (m, n) or br not in (1, batch):
            raise ValueError(f"residual: expected shape {out_shape} or {(m, n)}, "
                             f"got {tuple(residual.shape)}")
    if m == 0 or n == 0:
        return c
    cfg = config or pick_config(batch, m, n, k, a.dtype)
    dt_a, dt_b = np.dtype(a.dtype), np.dtype(b.dtype)
    upcast = dt_a != dt_b or (interpreter_enabled() and BF16 in (dt_a, dt_b))
    fp32_dot = upcast or dt_a == FP32
    # tiles x batch; per tile: read BLOCK_M*K + K*BLOCK_N, write BLOCK_M*BLOCK_N
    grid = (cdiv(m, cfg.block_m) * cdiv(n, cfg.block_n), batch)
    matmul_kernel[grid](
        a, b, c, _or(bias, c), _or(residual, c),
        m, n, k,
        sab, sam, sak, sbb, sbk, sbn, scb, scm, scn, s_bias, srb, srm, srn,
        ACTIVATION=activation, HAS_BIAS=bias is not None, HAS_RESIDUAL=residual is not None,
        UPCAST=upcast, INPUT_PRECISION="tf32" if (allow_tf32 and fp32_dot) else "ieee",
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, GROUP_M=cfg.group_m,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return c


def _or(buf, dummy):
    """``buf`` or a dummy pointer for an argument the kernel does not touch (flag off)."""
    return dummy if buf is None else buf


def aot_specs(dtype, configs=None) -> list[KernelSpec]:
    """Kernel specs for every GPU config (full epilogue: bias + gelu + residual) and ``dtype``."""
    p = pointer_type(dtype)
    fp32 = np.dtype(dtype) == FP32
    specs = []
    for name, cfg in (configs or CONFIGS).items():
        flags = dict(
            stride_ak=1, stride_bn=1, stride_cn=1, stride_bias=1, stride_rn=1,
            ACTIVATION="gelu", HAS_BIAS=True, HAS_RESIDUAL=True, UPCAST=False,
            INPUT_PRECISION="tf32" if fp32 else "ieee",
            BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n,
            BLOCK_K=cfg.block_k // 2 if fp32 else cfg.block_k, GROUP_M=cfg.group_m,
        )
        types = dict(a_ptr=p, b_ptr=p, c_ptr=p, bias_ptr=p, res_ptr=p)
        specs.append(KernelSpec(matmul_kernel, types, flags, cfg.num_warps, cfg.num_stages,
                                label=f"matmul[{name}]"))
    return specs
