"""Softmax / log-softmax kernels under the interpreter vs NumPy."""

import numpy as np
import pytest
from _tk_utils import FLOATS, FP32, IDS, close, f32, rand

from triton_kernels import softmax as sm
from triton_kernels.buffers import HostBuffer


def ref_softmax(x, log):
    x = f32(x)
    z = x - x.max(-1, keepdims=True)
    lse = np.log(np.exp(z).sum(-1, keepdims=True))
    return z - lse if log else np.exp(z - lse)


def ref_backward(y, dy, log):
    y, dy = f32(y), f32(dy)
    if log:
        return dy - np.exp(y) * dy.sum(-1, keepdims=True)
    return y * (dy - (dy * y).sum(-1, keepdims=True))


@pytest.mark.parametrize("dtype", FLOATS, ids=IDS.get)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("block_n", [None, 16], ids=["single", "looped"])
def test_forward_backward(dtype, log, block_n):
    rng = np.random.default_rng(0)
    x = rand(rng, (2, 5, 50), dtype, scale=3.0)
    y = sm.softmax(HostBuffer(x), log=log, block_n=block_n)
    assert y.dtype == dtype and y.shape == x.shape
    close(y, ref_softmax(x, log), dtype)
    dy = rand(rng, x.shape, dtype)
    dx = sm.softmax_backward(y, HostBuffer(dy), log=log, block_n=block_n)
    close(dx, ref_backward(y, dy, log), dtype)


@pytest.mark.parametrize("block_n", [None, 16], ids=["single", "looped"])
def test_transposed_input_and_output_dtype(block_n):
    rng = np.random.default_rng(1)
    base = rand(rng, (37, 9))
    x = HostBuffer(base.T)  # shape (9, 37), last-dim stride 9
    y = sm.log_softmax(x, out_dtype=np.float16, block_n=block_n)
    assert y.dtype == np.float16
    close(y, ref_softmax(base.T, True), np.float16)
    out = HostBuffer(np.zeros((37, 9), np.float32).T)  # strided output buffer
    sm.softmax(x, out=out, block_n=block_n, block_m=2)
    close(out, ref_softmax(base.T, False), FP32)


def test_checks():
    with pytest.raises(TypeError):
        sm.softmax(HostBuffer(np.zeros((2, 3), np.int32)))
    with pytest.raises(ValueError):
        sm.softmax(
            HostBuffer(np.zeros((4, 3), np.float32)), out=HostBuffer(np.zeros((3, 4), np.float32))
        )
