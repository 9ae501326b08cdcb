"""Order statistics on device "cuda": the composites (median, kthvalue, mode, quantile,
searchsorted/bucketize) run on the device and keep their results there, with autograd
through the selected values; the host-computed ops (unique, unique_consecutive, bincount,
histc) send their results back to the input's device; fw.compile captures the composites
whole on the GPU path."""

import math

import numpy as np

import framework as fw

NAN = math.nan


def _cpu(t):
    return t.detach().cpu().numpy()


def test_median_kthvalue_mode_on_device():
    a = np.array([[3.0, 1.0, 2.0, 5.0], [NAN, 1.0, 0.0, 2.0], [4.0, 4.0, 1.0, 1.0]],
                 np.float32)
    x = fw.tensor(a, device="cuda")
    v, i = fw.median(x, 1)
    assert v.device.type == "cuda" and i.device.type == "cuda" and i.dtype is fw.int64
    np.testing.assert_array_equal(_cpu(v), [2.0, NAN, 1.0])
    assert i.cpu().tolist() == [2, 0, 3]
    np.testing.assert_array_equal(_cpu(fw.nanmedian(x, 1).values), [2.0, 1.0, 1.0])
    assert math.isnan(fw.median(x).cpu().item())
    v, i = x.kthvalue(3, dim=1)
    assert _cpu(v).tolist() == [3.0, 2.0, 4.0] and i.cpu().tolist() == [0, 3, 0]
    v, i = fw.mode(x, -1)
    assert _cpu(v).tolist() == [1.0, 0.0, 1.0] and i.cpu().tolist() == [1, 2, 3]


def test_quantile_on_device_matches_numpy():
    a = np.random.default_rng(3).standard_normal((3, 8)).astype(np.float32)
    x = fw.tensor(a, device="cuda")
    q = fw.tensor([0.1, 0.5, 0.9], device="cuda")
    for interp in ("linear", "nearest", "midpoint"):
        got = fw.quantile(x, q, dim=1, interpolation=interp)
        assert got.device.type == "cuda" and got.shape == (3, 3)
        np.testing.assert_allclose(_cpu(got), np.quantile(a, [0.1, 0.5, 0.9], axis=1,
                                                          method=interp), rtol=1e-5, atol=1e-6)


def test_searchsorted_bucketize_on_device():
    seq = fw.tensor([1.0, 3.0, 5.0, 7.0], device="cuda")
    vals = fw.tensor([[0.0, 3.0, 6.0], [7.0, 8.0, NAN]], device="cuda")
    got = fw.searchsorted(seq, vals, right=True)
    assert got.device.type == "cuda" and got.cpu().tolist() == [[0, 2, 3], [4, 4, 4]]
    got = fw.bucketize(vals, seq, out_int32=True)
    assert got.dtype is fw.int32 and got.cpu().tolist() == [[0, 1, 3], [3, 4, 4]]


def test_host_computed_ops_return_to_device():
    x = fw.tensor([3, 1, 3, 2, 2, 2], device="cuda")
    out, inv, cnt = fw.unique(x, return_inverse=True, return_counts=True)
    assert {out.device.type, inv.device.type, cnt.device.type} == {"cuda"}
    assert out.cpu().tolist() == [1, 2, 3] and cnt.cpu().tolist() == [1, 3, 2]
    assert inv.cpu().tolist() == [2, 0, 2, 1, 1, 1]
    out = fw.unique_consecutive(x)
    assert out.device.type == "cuda" and out.cpu().tolist() == [3, 1, 3, 2]
    b = fw.bincount(x, weights=fw.ones(6, device="cuda"))
    assert b.device.type == "cuda" and b.dtype is fw.float32
    assert b.cpu().tolist() == [0.0, 1.0, 3.0, 2.0]
    h = fw.histc(x.to(fw.float32), bins=3, min=1, max=4)
    assert h.device.type == "cuda" and h.cpu().tolist() == [1.0, 3.0, 2.0]


def test_backward_and_compile_on_device(monkeypatch):
    x = fw.tensor([[4.0, 1.0, 3.0, 2.0]], device="cuda", requires_grad=True)
    fw.quantile(x, 0.5, dim=1).sum().backward()
    assert x.grad.device.type == "cuda" and x.grad.cpu().tolist() == [[0.0, 0.0, 0.5, 0.5]]
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def f(t):
        return fw.median(t, 1).values * 2, fw.kthvalue(t, 2, 0).indices

    fn = fw.compile(f, fullgraph=True, mode="always")
    a = np.random.default_rng(4).standard_normal((5, 7)).astype(np.float32)
    a[1, 3] = NAN
    t = fw.tensor(a, device="cuda")
    got, want = fn(t), f(t)
    assert not fn.stats()["graph_breaks"]
    for g, w in zip(got, want):
        assert g.device.type == "cuda"
        np.testing.assert_array_equal(_cpu(g), _cpu(w))
