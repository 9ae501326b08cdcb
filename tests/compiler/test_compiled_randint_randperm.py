"""``fw.randint`` / ``fw.randperm`` inside ``fw.compile`` are random nodes re-drawn on every
call from the same stream as eager (they used to be baked into the graph as the capture's
draw, so every compiled DDPM step reused one set of timesteps)."""

import numpy as np
import pytest

import framework as fw


def _ts(x):
    return fw.randint(1, 50, (x.shape[0],)) + fw.randn_like(x)


def _perm(x):
    return x[fw.randperm(x.shape[0])]


@pytest.mark.parametrize("fn", [_ts, _perm])
def test_compiled_random_integers_are_redrawn_and_match_eager(fn):
    x = fw.arange(6.0)
    fw.manual_seed(5)
    eager = [fn(x).numpy() for _ in range(4)] + [fw.randn(2).numpy()]
    cf = fw.compile(fn, mode="always")
    fw.manual_seed(5)
    comp = [cf(x).numpy() for _ in range(4)] + [fw.randn(2).numpy()]
    for e, c in zip(eager, comp):
        np.testing.assert_array_equal(c, e)
    assert len({tuple(c) for c in comp[:4]}) == 4  # not one draw replayed
    st = cf.stats()
    assert st["captures"] == 1 and st["eager_reason"] is None


def test_randint_range_dtype_and_uniformity():
    fw.manual_seed(0)
    r = fw.randint(-2, 3, (20000,))
    assert r.dtype == fw.int64 and r.min().item() == -2 and r.max().item() == 2
    np.testing.assert_allclose(np.bincount(r.numpy() + 2) / 20000, 0.2, atol=0.015)
    assert fw.randint(4, (2, 3)).shape == (2, 3)
    assert fw.randint(0, 2 ** 40, (3,)).max().item() < 2 ** 40
    assert fw.randint(0, 3, (5,), dtype=fw.float32).dtype == fw.float32
    p = fw.randperm(50)
    assert p.dtype == fw.int64 and sorted(p.tolist()) == list(range(50))
    assert fw.randperm(4, dtype=fw.int32).dtype == fw.int32 and fw.randperm(0).shape == (0,)


def test_eager_stream_is_the_generators_integers():
    g = fw.Generator().manual_seed(3)
    r = fw.randint(0, 7, (5,), generator=g)
    p = fw.randperm(6, generator=g)
    g2 = fw.Generator().manual_seed(3)
    want = g2.numpy
    np.testing.assert_array_equal(r.numpy(), want.integers(0, 7, size=(5,)))
    np.testing.assert_array_equal(p.numpy(), want.permutation(6))


def test_onnx_export_draws_in_range(tmp_path):
    ort = pytest.importorskip("onnxruntime")

    class M(fw.nn.Module):
        def forward(self, x):
            return x + fw.randint(2, 5, (x.shape[0],)), x[fw.randperm(x.shape[0])]

    path = str(tmp_path / "r.onnx")
    x = fw.zeros(64)
    fw.onnx.export(M(), (x,), path, input_names=["x"])
    a, b = ort.InferenceSession(path).run(None, {"x": np.arange(64, dtype=np.float32) * 0})
    assert a.dtype == np.float32 and set(a.tolist()) == {2.0, 3.0, 4.0}
    (c,) = ort.InferenceSession(path).run([ort.InferenceSession(path).get_outputs()[1].name],
                                          {"x": np.arange(64, dtype=np.float32)})
    assert sorted(c.tolist()) == list(range(64)) and c.tolist() != list(range(64))
