"""A few of the torch_extra / torch_products / torch_misc composites on device "cuda":
results stay on the device and match the CPU, a gradient flows, and a compiled function
runs on the GPU path."""

import math


import framework as fw
from tests.gpu._gpu_utils import assert_same_on_cuda as _same, cpu_cuda_pair as _pair


def test_elementwise_on_device():
    c, g = _pair(3, 4)
    c2, g2 = _pair(3, 4, seed=1)
    _same(fw.asinh(g * 10) + fw.atanh(g.tanh()), fw.asinh(c * 10) + fw.atanh(c.tanh()))
    _same(fw.sinc(g), fw.sinc(c))
    _same(fw.logit(g.sigmoid(), 1e-3), fw.logit(c.sigmoid(), 1e-3), rtol=1e-4, atol=1e-5)
    nan_g = fw.where(g > 1, math.nan, g)
    nan_c = fw.where(c > 1, math.nan, c)
    _same(fw.fmax(nan_g, g2), fw.fmax(nan_c, c2))
    _same(fw.nanmean(nan_g, 1), fw.nanmean(nan_c, 1))
    m, e = fw.frexp(g * 100)
    mc, ec = fw.frexp(c * 100)
    _same(m, mc)
    assert e.device.type == "cuda" and e.cpu().tolist() == ec.tolist()
    i = fw.tensor([12, 18, 0, 7], dtype=fw.int16)
    j = fw.tensor([8, 24, 5, 21], dtype=fw.int16)
    assert fw.gcd(i.to("cuda"), j.to("cuda")).cpu().tolist() == [4, 6, 5, 7]


def test_products_and_gradient_on_device():
    c, g = _pair(3, 4)
    c2, g2 = _pair(4, 2, seed=1)
    _same(fw.kron(g, g2), fw.kron(c, c2))
    _same(fw.tensordot(g, g2, 1), fw.tensordot(c, c2, 1))
    _same(fw.cov(g), fw.cov(c), rtol=1e-4, atol=1e-5)
    gx, gy = fw.meshgrid(g[0], g2[:, 0], indexing="xy")
    cx, cy = fw.meshgrid(c[0], c2[:, 0], indexing="xy")
    _same(gx, cx)
    _same(gy, cy)
    x = g.clone().requires_grad_(True)
    fw.addmm(g2[:1, :1], x, g2, beta=0.5).sum().backward()
    xc = c.clone().requires_grad_(True)
    fw.addmm(c2[:1, :1], xc, c2, beta=0.5).sum().backward()
    _same(x.grad, xc.grad)


def test_compiled_on_device(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def f(t):
        return fw.sinc(t) + fw.copysign(t, -t) + fw.nansum(t, 0)

    fn = fw.compile(f, fullgraph=True, mode="always")
    c, g = _pair(4, 6, seed=3)
    got = fn(g)
    assert not fn.stats()["graph_breaks"]
    _same(got, f(c))
    hist, edges = fw.histogram(g, 4)
    hc, ec = fw.histogram(c, 4)
    _same(hist, hc)
    _same(edges, ec)
