"""The math_extra composites on device "cuda": results stay on the device and match the
CPU, gradients flow, and a compiled scan runs on the GPU path."""

import math

import numpy as np

import framework as fw
from tests.gpu._gpu_utils import assert_same_on_cuda as _same, cpu_cuda_pair as _pair

NAN = math.nan


def test_pointwise_and_shape_ops_on_device():
    c, g = _pair(3, 4)
    c2, g2 = _pair(4, seed=1)
    _same(fw.hypot(g, g2), fw.hypot(c, c2))
    _same(fw.logaddexp(g * 30, g2), fw.logaddexp(c * 30, c2))
    _same(fw.diff(g, 2, 0), fw.diff(c, 2, 0))
    _same(fw.cross(g[:, :3], g[:, 1:], dim=1), fw.cross(c[:, :3], c[:, 1:], dim=1))
    _same(fw.rot90(g), fw.rot90(c))
    _same(fw.diag_embed(g, 1), fw.diag_embed(c, 1))
    _same(fw.diagonal(g, -1), fw.diagonal(c, -1))
    _same(fw.cdist(g, g), fw.cdist(c, c), rtol=1e-4, atol=1e-5)
    idx = fw.tril_indices(3, 4, device="cuda")
    assert idx.device.type == "cuda"
    assert idx.cpu().tolist() == fw.tril_indices(3, 4).tolist()


def test_indexing_ops_on_device():
    c, g = _pair(3, 4)
    i = fw.tensor([[0, -1], [5, 2]])
    _same(fw.take(g, i.to("cuda")), fw.take(c, i))
    r = fw.tensor([2, 0, 1])
    _same(fw.repeat_interleave(g, r.to("cuda"), dim=0), fw.repeat_interleave(c, r, dim=0))
    _same(fw.repeat_interleave(g, r.to("cuda"), dim=0, output_size=3),
          fw.repeat_interleave(c, r, dim=0))
    src_c, src_g = _pair(3, 2, seed=2)
    ix = fw.tensor([3, 1])
    _same(fw.index_copy(g, 1, ix.to("cuda"), src_g), fw.index_copy(c, 1, ix, src_c))
    _same(fw.index_fill(g, 0, ix.to("cuda")[1:], 2.5), fw.index_fill(c, 0, ix[1:], 2.5))


def test_scans_and_gradient_on_device():
    a = np.array([[1.0, 3.0, NAN, 2.0, 3.0], [0.5, 0.5, -1.0, 4.0, 4.0]], np.float32)
    g = fw.tensor(a, device="cuda")
    v, i = fw.cummax(g, 1)
    assert v.device.type == "cuda" and i.device.type == "cuda"
    vc, ic = fw.cummax(fw.tensor(a), 1)
    np.testing.assert_array_equal(v.cpu().numpy(), vc.numpy())
    assert i.cpu().tolist() == ic.tolist()
    x = fw.tensor(a[1:] * 100, device="cuda", requires_grad=True)
    out = fw.logcumsumexp(x, 1)
    _same(out, fw.logcumsumexp(fw.tensor(a[1:] * 100), 1))
    out.sum().backward()
    assert x.grad.device.type == "cuda"
    xc = fw.tensor(a[1:] * 100, requires_grad=True)
    fw.logcumsumexp(xc, 1).sum().backward()
    _same(x.grad, xc.grad)


def test_compiled_scan_on_device(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def f(t):
        return fw.logcumsumexp(t, 1) + fw.cummin(t, 1).values

    fn = fw.compile(f, fullgraph=True, mode="always")
    c, g = _pair(4, 6, seed=3)
    got = fn(g)
    assert not fn.stats()["graph_breaks"]
    _same(got, f(c))
