"""Matmul kernel (2-D, batched, fused epilogue) under the interpreter vs NumPy."""

import numpy as np
import pytest
from _tk_utils import BF16, FLOATS, FP16, FP32, IDS, close, f32, rand

from triton_kernels import matmul as mm
from triton_kernels.buffers import HostBuffer


def act(x, name):
    if name == "relu":
        return np.maximum(x, 0)
    if name == "gelu":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    if name == "silu":
        return x / (1 + np.exp(-x))
    return x


def ref(a, b, bias=None, activation="none", residual=None):
    y = np.matmul(f32(a).astype(np.float64), f32(b).astype(np.float64))
    if bias is not None:
        y = y + f32(bias)
    y = act(y, activation)
    if residual is not None:
        y = y + f32(residual)
    return y


@pytest.mark.parametrize("dtype", FLOATS, ids=IDS.get)
def test_2d_masked_tails(dtype):
    rng = np.random.default_rng(0)
    a, b = rand(rng, (33, 50), dtype), rand(rng, (50, 21), dtype)
    c = mm.matmul(HostBuffer(a), HostBuffer(b))
    assert c.shape == (33, 21) and c.dtype == dtype
    close(c, ref(a, b), dtype, scale=4.0)


@pytest.mark.filterwarnings(
    "ignore:overflow encountered in exp:RuntimeWarning"
)  # sigmoid(-big) in numpy
@pytest.mark.parametrize("activation", mm.ACTIVATIONS)
def test_fused_epilogue(activation):
    rng = np.random.default_rng(1)
    a, b = rand(rng, (2, 20, 24), FP16), rand(rng, (24, 36), FP16)  # 2-D b broadcast over the batch
    bias, res = rand(rng, (36,), FP32), rand(rng, (2, 20, 36), FP16)
    c = mm.matmul(
        HostBuffer(a),
        HostBuffer(b),
        bias=HostBuffer(bias),
        activation=activation,
        residual=HostBuffer(res),
        out_dtype=FP32,
    )
    assert c.shape == (2, 20, 36) and c.dtype == FP32
    close(c, ref(a, b, bias, activation, res), FP16, scale=4.0)


def test_batched_transposed_bf16_small_tiles():
    rng = np.random.default_rng(2)
    a = rand(rng, (3, 40, 17), BF16).transpose(0, 2, 1)  # [3, 17, 40], K-stride 17
    b = rand(rng, (3, 30, 40), BF16).transpose(0, 2, 1)  # [3, 40, 30], column-major
    res = rand(rng, (17, 30), BF16)  # 2-D residual broadcast over the batch
    cfg = mm.MatmulConfig(16, 16, 16, group_m=2)  # several tiles, K loop and grouping
    c = mm.matmul(
        HostBuffer(a), HostBuffer(b), residual=HostBuffer(res), activation="relu", config=cfg
    )
    assert c.shape == (3, 17, 30) and c.dtype == BF16
    close(c, ref(a, b, activation="relu", residual=res), BF16, scale=8.0)


def test_mixed_dtypes_and_strided_out():
    rng = np.random.default_rng(3)
    a, b = rand(rng, (9, 12), FP32), rand(rng, (12, 7), FP16)
    out = HostBuffer(np.zeros((7, 9), FP32).T)
    mm.matmul(HostBuffer(a), HostBuffer(b), out=out, allow_tf32=False)
    close(out, ref(a, b), FP32)


def test_checks_and_heuristic():
    a = HostBuffer(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError):
        mm.matmul(a, HostBuffer(np.zeros((4, 5), np.float32)))
    with pytest.raises(ValueError):
        mm.matmul(a, HostBuffer(np.zeros((5, 3), np.float32)), activation="tanh")
    assert mm.pick_config(1, 8192, 8192, 8192, FP16, interpreter=False) == mm.CONFIGS["large"]
    assert mm.pick_config(1, 64, 64, 64, FP16, interpreter=False) == mm.CONFIGS["small"]
    assert (
        mm.pick_config(1, 64, 64, 64, FP32, interpreter=False).block_k
        == mm.CONFIGS["small"].block_k // 2
    )
