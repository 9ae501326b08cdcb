"""LayerNorm kernels under the interpreter vs NumPy."""

import numpy as np
import pytest
from _tk_utils import FLOATS, FP32, IDS, close, f32, rand

from triton_kernels import layer_norm as ln
from triton_kernels.buffers import HostBuffer


def ref_forward(x, w, b, eps):
    x = f32(x)
    mean = x.mean(-1)
    rstd = 1.0 / np.sqrt(((x - mean[..., None]) ** 2).mean(-1) + eps)
    y = (x - mean[..., None]) * rstd[..., None]
    if w is not None:
        y = y * f32(w)
    if b is not None:
        y = y + f32(b)
    return y, mean, rstd


def ref_backward(dy, x, w, mean, rstd):
    x, dy = f32(x), f32(dy)
    xhat = (x - mean[..., None]) * rstd[..., None]
    g = dy * f32(w) if w is not None else dy
    c1 = (g * xhat).mean(-1, keepdims=True)
    c2 = g.mean(-1, keepdims=True)
    dx = rstd[..., None] * (g - xhat * c1 - c2)
    axes = tuple(range(x.ndim - 1))
    return dx, (dy * xhat).sum(axes), dy.sum(axes)


@pytest.mark.parametrize("dtype", FLOATS, ids=IDS.get)
@pytest.mark.parametrize("block_n", [None, 16], ids=["single", "looped"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_forward_backward(dtype, block_n, affine):
    rng = np.random.default_rng(0)
    x = rand(rng, (3, 7, 40), dtype, scale=2.0) + np.asarray(0.5, dtype)
    w = rand(rng, (40,), dtype) if affine else None
    b = rand(rng, (40,), dtype) if affine else None
    hb = lambda a: None if a is None else HostBuffer(a)
    y, mean, rstd = ln.layer_norm(HostBuffer(x), hb(w), hb(b), eps=1e-5, block_n=block_n, block_m=4)
    ry, rmean, rrstd = ref_forward(x, w, b, 1e-5)
    assert y.dtype == dtype and mean.shape == (3, 7) and rstd.dtype == FP32
    close(mean, rmean, FP32)
    np.testing.assert_allclose(f32(rstd), rrstd, rtol=1e-4)
    close(y, ry, dtype, scale=2.0)
    dy = rand(rng, x.shape, dtype)
    dx, dw, db = ln.layer_norm_backward(
        HostBuffer(dy),
        HostBuffer(x),
        hb(w),
        hb(b),
        mean,
        rstd,
        block_n=block_n,
        block_m=4,
        num_programs=2,
    )
    rdx, rdw, rdb = ref_backward(dy, x, w, f32(mean), f32(rstd))
    close(dx, rdx, dtype, scale=4.0)
    if affine:
        assert dw.dtype == dtype and db.dtype == dtype
        close(dw, rdw, dtype, scale=8.0)
        close(db, rdb, dtype, scale=8.0)
    else:
        assert dw is None and db is None


def test_transposed_input():
    rng = np.random.default_rng(2)
    base = rand(rng, (33, 6))
    x = HostBuffer(base.T)  # rows of 33 elements with column stride 6
    w, b = rand(rng, (33,)), rand(rng, (33,))
    y, mean, rstd = ln.layer_norm(x, HostBuffer(w), HostBuffer(b))
    ry, _, _ = ref_forward(base.T, w, b, 1e-5)
    close(y, ry, FP32)
    dy = HostBuffer(rand(rng, (33, 6)).T)
    dx, dw, db = ln.layer_norm_backward(dy, x, HostBuffer(w), HostBuffer(b), mean, rstd)
    rdx, rdw, rdb = ref_backward(dy.numpy(), base.T, w, f32(mean), f32(rstd))
    close(dx, rdx, FP32)
    close(dw, rdw, FP32, scale=4.0)
    close(db, rdb, FP32, scale=4.0)
