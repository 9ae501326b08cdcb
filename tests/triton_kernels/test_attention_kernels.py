"""Fused attention kernels under the interpreter vs NumPy float64 (forward: out and
logsumexp; backward: dq, dk, dv), and the launcher's checks."""

import numpy as np
import pytest
from _tk_utils import BF16, FLOATS, FP16, FP32, IDS, f32, rand

from triton_kernels import attention as at
from triton_kernels.buffers import HostBuffer

C = at.AttentionConfig
# (rtol, atol) against float64: fp16/bf16 inputs round P before P @ V on a GPU; under the
# interpreter bf16 runs in fp32 and only the stores round
TOL = {FP32: (1e-4, 1e-4), FP16: (1e-2, 1e-2), BF16: (3e-2, 3e-2)}


def ref(q, k, v, do, dlse, causal, scale):
    """(out, lse, dq, dk, dv) in float64: softmax attention and its exact gradients."""
    q, k, v, do = (f32(x).astype(np.float64) for x in (q, k, v, do))
    g = q.shape[1] // k.shape[1]
    kk, vv = np.repeat(k, g, 1), np.repeat(v, g, 1)
    s = q @ np.swapaxes(kk, -1, -2) * scale
    if causal:
        s = np.where(np.tri(q.shape[2], k.shape[2], dtype=bool), s, -np.inf)
    m = s.max(-1, keepdims=True)
    lse = np.log(np.exp(s - m).sum(-1, keepdims=True)) + m
    p = np.exp(s - lse)
    o = p @ vv
    dp = do @ np.swapaxes(vv, -1, -2)
    ds = p * (dp - (do * o).sum(-1, keepdims=True) + dlse[..., None])
    dq = ds @ kk * scale

    def fold(x):
        return x.reshape(x.shape[0], k.shape[1], g, *x.shape[2:]).sum(2)
    return o, lse[..., 0], dq, fold(np.swapaxes(ds, -1, -2) @ q * scale), \
        fold(np.swapaxes(p, -1, -2) @ do)


def _close(got, want, dtype, what):
    rtol, atol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(f32(got), want, rtol=rtol, atol=atol, err_msg=what)


def _run(shape, dtype, causal, *, scale=0.3, fwd=None, bwd=None, layout=None, dlse=False,
         seed=0):
    b, h, hk, length, src, d, dv = shape
    rng = np.random.default_rng(seed)
    make = layout or (lambda a: HostBuffer(a))
    q = rand(rng, (b, h, length, d), dtype)
    k = rand(rng, (b, hk, src, d), dtype)
    v = rand(rng, (b, hk, src, dv), dtype)
    do = rand(rng, (b, h, length, dv), dtype)
    g_lse = rand(rng, (b, h, length), FP32, scale=0.5) if dlse else np.zeros((b, h, length))
    qb, kb, vb = make(q), make(k), make(v)
    o, lse = at.attention_forward(qb, kb, vb, is_causal=causal, scale=scale, config=fwd)
    assert o.dtype == dtype and lse.dtype == FP32 and o.shape == (b, h, length, dv)
    want = ref(q, k, v, do, g_lse, causal, scale)
    _close(o, want[0], dtype, "out")
    _close(lse, want[1], FP32, "lse")
    grads = at.attention_backward(qb, kb, vb, o, lse, HostBuffer(do), is_causal=causal,
                                  scale=scale, dlse=HostBuffer(g_lse.astype(np.float32))
                                  if dlse else None, configs=bwd)
    # the backward reads the rounded forward output, as a GPU run does
    want = ref(q, k, v, do, g_lse, causal, scale)
    for name, got, w in zip(("dq", "dk", "dv"), grads, want[2:]):
        assert got.dtype == dtype
        _close(got, w, dtype, name)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("dtype", FLOATS, ids=IDS.get)
def test_forward_backward(dtype, causal):
    # L != S both ways, D and DV not powers of two
    _run((1, 2, 2, 12, 21, 24, 20), dtype, causal)
    _run((2, 1, 1, 19, 7, 8, 16), dtype, causal, seed=1)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_many_blocks_and_ragged_tails(causal):
    """Forced small tiles: unmasked, diagonal and tail blocks in every kernel."""
    cfg = dict(fwd=C(32, 16), bwd={"dkdv": C(16, 32), "dq": C(32, 16)})
    _run((1, 2, 1, 50, 70, 16, 16), FP32, causal, **cfg)
    _run((1, 1, 1, 70, 45, 20, 8), FP32, causal, **cfg, seed=2)
    _run((1, 1, 1, 64, 64, 16, 16), FP32, causal, **cfg, seed=3)


def test_grouped_query_heads_and_lse_gradient():
    _run((2, 6, 2, 9, 13, 16, 16), FP32, True, dlse=True)
    _run((1, 4, 1, 33, 33, 16, 8), FP32, False, dlse=True,
         fwd=C(16, 16), bwd={"dkdv": C(16, 16), "dq": C(16, 16)})


@pytest.mark.parametrize("dtype", [FP32, BF16], ids=IDS.get)
def test_strided_inputs(dtype):
    """(B, N, H, D) memory viewed as (B, H, N, D), and a sliced head dim."""
    def transposed(a):
        return HostBuffer(np.ascontiguousarray(np.swapaxes(a, 1, 2)).swapaxes(1, 2))
    _run((2, 2, 2, 10, 12, 16, 16), dtype, True, layout=transposed)

    def sliced(a):
        wide = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
        wide[..., ::2] = a
        return HostBuffer(wide[..., ::2])
    _run((1, 2, 1, 7, 9, 12, 12), dtype, False, layout=sliced)


def test_no_keys_and_no_queries():
    q = HostBuffer(np.ones((1, 2, 3, 8), np.float32))
    kv = HostBuffer(np.ones((1, 2, 0, 8), np.float32))
    o, lse = at.attention_forward(q, kv, kv, is_causal=True)
    np.testing.assert_array_equal(o.numpy(), 0.0)  # an empty sum, as the math path
    assert np.isneginf(lse.numpy()).all()
    dq, dk, dv = at.attention_backward(q, kv, kv, o, lse, HostBuffer(np.ones_like(o.numpy())))
    np.testing.assert_array_equal(dq.numpy(), 0.0)
    assert dk.shape == dv.shape == (1, 2, 0, 8)
    q0 = HostBuffer(np.ones((1, 2, 0, 8), np.float32))
    k = HostBuffer(np.ones((1, 2, 5, 8), np.float32))
    o, lse = at.attention_forward(q0, k, k)
    assert o.shape == (1, 2, 0, 8)
    _, dk, dv = at.attention_backward(q0, k, k, o, lse, o)
    np.testing.assert_array_equal(dk.numpy(), 0.0)  # no query: nothing flows back
    np.testing.assert_array_equal(dv.numpy(), 0.0)


def test_checks():
    f = np.zeros((1, 2, 4, 8), np.float32)
    with pytest.raises(TypeError, match="dtype"):
        at.attention_forward(HostBuffer(f), HostBuffer(f.astype(np.float16)), HostBuffer(f))
    with pytest.raises(ValueError, match="multiple of key heads"):
        at.attention_forward(HostBuffer(np.zeros((1, 3, 4, 8), np.float32)), HostBuffer(f),
                             HostBuffer(f))
    big = np.zeros((1, 1, 4, 160), np.float32)
    with pytest.raises(ValueError, match="head dims"):
        at.attention_forward(HostBuffer(big), HostBuffer(big), HostBuffer(big))
    many = np.zeros((65536, 1, 1, 8), np.float32)  # B * H above the grid's limit
    with pytest.raises(ValueError, match="batch x heads"):
        at.attention_forward(HostBuffer(many), HostBuffer(many), HostBuffer(many))
    with pytest.raises(ValueError, match="rank"):
        at.attention_forward(HostBuffer(f[0]), HostBuffer(f[0]), HostBuffer(f[0]))
    o, lse = at.attention_forward(HostBuffer(f), HostBuffer(f), HostBuffer(f))
    with pytest.raises(ValueError, match="lse"):
        at.attention_backward(HostBuffer(f), HostBuffer(f), HostBuffer(f), o,
                              HostBuffer(np.zeros((1, 2, 4), np.float16)), o)
    assert at.supports(np.float16, 128) and not at.supports(np.float64, 64)


def test_gpu_tiles_respect_the_kernels_divisibility():
    """fwd/dq need BLOCK_M % BLOCK_N == 0, dK/dV BLOCK_N % BLOCK_M == 0 (causal ranges)."""
    for (kind, _, _), cfg in at.CONFIGS.items():
        big, small = (cfg.block_n, cfg.block_m) if kind == "dkdv" else (cfg.block_m,
                                                                        cfg.block_n)
        assert big % small == 0, (kind, cfg)
    for length, src in ((3, 200), (200, 3), (1000, 1000)):
        for kind in ("fwd", "dq", "dkdv"):
            cfg = at.pick_config(kind, length, src, 64, np.float32, interpreter=True)
            big, small = (cfg.block_n, cfg.block_m) if kind == "dkdv" else (cfg.block_m,
                                                                            cfg.block_n)
            assert big % small == 0 and min(big, small) >= 16
