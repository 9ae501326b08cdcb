"""Cross-entropy kernels under the interpreter vs NumPy."""

import numpy as np
import pytest
from _tk_utils import FLOATS, FP32, IDS, close, f32, rand

from triton_kernels import cross_entropy as ce
from triton_kernels.buffers import HostBuffer

IGNORE = -100


def ref(logits, target, ignore_index=IGNORE):
    x = f32(logits)
    m = x.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    picked = np.take_along_axis(x, safe[..., None], -1)[..., 0]
    loss = np.where(valid, lse - picked, 0.0)
    p = np.exp(x - lse[..., None])
    onehot = np.arange(x.shape[-1]) == safe[..., None]
    return loss, lse, (p - onehot) * valid[..., None]


def make_target(rng, shape, v, dtype):
    t = rng.integers(0, v, shape).astype(dtype)
    t.reshape(-1)[::4] = IGNORE
    return t


@pytest.mark.parametrize("dtype", FLOATS, ids=IDS.get)
@pytest.mark.parametrize("block_v", [None, 16], ids=["single", "looped"])
@pytest.mark.parametrize("tdtype", [np.int64, np.int32], ids=["i64", "i32"])
def test_forward_backward(dtype, block_v, tdtype):
    rng = np.random.default_rng(0)
    logits = rand(rng, (3, 7, 45), dtype, scale=3.0)
    target = make_target(rng, (3, 7), 45, tdtype)
    loss, lse = ce.cross_entropy(HostBuffer(logits), HostBuffer(target), block_v=block_v)
    rloss, rlse, rgrad = ref(logits, target)
    assert loss.shape == (3, 7) and loss.dtype == FP32
    close(lse, rlse, FP32, scale=2.0)
    close(loss, rloss, FP32, scale=2.0)
    assert np.all(f32(loss)[target == IGNORE] == 0)
    dloss = rand(rng, (3, 7))
    dlogits = ce.cross_entropy_backward(
        HostBuffer(dloss), HostBuffer(logits), HostBuffer(target), lse, block_v=block_v
    )
    assert dlogits.dtype == dtype
    close(dlogits, rgrad * dloss[..., None], dtype)


def test_transposed_logits_scalar_dloss_custom_ignore():
    rng = np.random.default_rng(3)
    base = rand(rng, (30, 11))
    logits = HostBuffer(base.T)  # 11 rows of 30 classes, class stride 11
    target = rng.integers(0, 30, (11,)).astype(np.int64)
    target[[1, 5]] = 7  # ignore_index=7 doubles as a valid class elsewhere
    loss, lse = ce.cross_entropy(logits, HostBuffer(target), ignore_index=7, block_v=16, block_m=4)
    rloss, rlse, rgrad = ref(base.T, target, ignore_index=7)
    close(loss, rloss, FP32)
    dl = ce.cross_entropy_backward(
        HostBuffer(np.array([0.5], np.float32)),
        logits,
        HostBuffer(target),
        lse,
        ignore_index=7,
        block_v=16,
        block_m=4,
        out_dtype=np.float32,
    )
    close(dl, rgrad * 0.5, FP32)


def test_checks():
    logits = HostBuffer(np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError):
        ce.cross_entropy(logits, HostBuffer(np.zeros(4, np.float32)))
    with pytest.raises(ValueError):
        ce.cross_entropy(logits, HostBuffer(np.zeros(3, np.int64)))
