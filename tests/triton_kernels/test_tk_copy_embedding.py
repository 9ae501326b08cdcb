"""Copy/fill and embedding kernels under the interpreter vs NumPy."""

import numpy as np
import pytest
from _tk_utils import BF16, FLOATS, FP16, FP32, IDS, close, f32, rand

from triton_kernels import copy as cp
from triton_kernels import embedding as emb
from triton_kernels.buffers import HostBuffer, host_empty


@pytest.mark.parametrize("dst_dtype", FLOATS, ids=IDS.get)
def test_copy_contiguous_cast(dst_dtype):
    rng = np.random.default_rng(0)
    x = rand(rng, (5, 77), FP32)
    y = cp.copy(HostBuffer(x), dtype=dst_dtype, block=128)  # masked tail: 385 = 3 * 128 + 1
    assert y.dtype == dst_dtype
    close(y, x.astype(dst_dtype), dst_dtype)


def test_copy_strided_and_fill():
    rng = np.random.default_rng(1)
    x = rand(rng, (3, 4, 5, 6, 7), BF16)
    view = x.transpose(4, 1, 0, 3, 2)[:, ::2]  # (7, 2, 3, 6, 5), non-contiguous
    src = HostBuffer(np.ascontiguousarray(x.transpose(1, 0, 2, 3, 4))[:, :, 1:, :, :])
    y = cp.copy(src)
    np.testing.assert_array_equal(f32(y), f32(src.numpy()))
    dst = HostBuffer(np.zeros((3, 5, 3, 2), FP16).transpose(3, 2, 1, 0))  # strided destination
    cp.copy(HostBuffer(view[::3, :, :, 0, :].transpose(1, 2, 3, 0)), dst)
    close(dst, view[::3, :, :, 0, :].transpose(1, 2, 3, 0), FP16)
    z = cp.zeros((3, 5), FP16, empty=host_empty)
    assert np.all(z.numpy() == 0)
    cp.fill(z, 2.5)
    assert np.all(z.numpy() == 2.5)


@pytest.mark.parametrize("dtype", FLOATS, ids=IDS.get)
@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32], ids=["i64", "i32"])
def test_embedding(dtype, idx_dtype):
    rng = np.random.default_rng(2)
    weight = rand(rng, (11, 19), dtype)
    idx = rng.integers(0, 11, (4, 9)).astype(idx_dtype)
    idx[0, :4] = 3  # duplicates must accumulate in the backward
    out = emb.embedding(HostBuffer(weight), HostBuffer(idx), block_m=8, block_d=16)
    assert out.shape == (4, 9, 19) and out.dtype == dtype
    np.testing.assert_array_equal(f32(out), f32(weight)[idx])
    dout = rand(rng, (4, 9, 19), dtype)
    dw = emb.embedding_backward(
        HostBuffer(dout), HostBuffer(idx), 11, padding_idx=5, dtype=dtype, block_m=8, block_d=16
    )
    ref = np.zeros((11, 19), np.float32)
    np.add.at(ref, idx.reshape(-1), f32(dout).reshape(-1, 19))
    ref[5] = 0
    assert dw.dtype == dtype
    close(dw, ref, dtype, scale=4.0)


def test_embedding_transposed_weight_and_out_of_range():
    rng = np.random.default_rng(3)
    base = rand(rng, (7, 10))
    weight = HostBuffer(base.T)  # [10, 7], row stride 1
    idx = np.array([0, 9, 10, -1, 4], np.int64)
    out = emb.embedding(weight, HostBuffer(idx))
    ref = np.where(((idx >= 0) & (idx < 10))[:, None], base.T[np.clip(idx, 0, 9)], 0)
    np.testing.assert_array_equal(out.numpy(), ref)
