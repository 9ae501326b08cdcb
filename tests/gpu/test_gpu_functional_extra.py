"""``F.pdist``, 3-D adaptive max pooling / unpooling, fractional max pooling and an in-place
activation on device "cuda": results stay on the device, match the CPU, and gradients
flow."""

import numpy as np

import framework as fw
import framework.nn.functional as F


def _pair(*shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return fw.tensor(a, requires_grad=True), fw.tensor(a, device="cuda", requires_grad=True)


def _same(got, want):
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_pdist_pools_and_inplace_on_device():
    c, g = _pair(5, 3)
    dc, dg = fw.pdist(c, 1.5), fw.pdist(g, 1.5)
    _same(dg, dc)
    dc.sum().backward()
    dg.sum().backward()
    _same(g.grad, c.grad)

    c, g = _pair(1, 2, 7, 8, seed=1)
    s = np.random.default_rng(2).random((1, 2, 2)).astype(np.float32)
    vc, ic = F.fractional_max_pool2d(c, 2, (3, 4), return_indices=True,
                                     _random_samples=fw.tensor(s))
    vg, ig = F.fractional_max_pool2d(g, 2, (3, 4), return_indices=True,
                                     _random_samples=fw.tensor(s, device="cuda"))
    _same(vg, vc)
    assert ig.cpu().tolist() == ic.tolist()
    vg.sum().backward()
    vc.sum().backward()
    _same(g.grad, c.grad)

    c, g = _pair(1, 2, 4, 5, 6, seed=3)
    (vc, ic), (vg, ig) = (F.adaptive_max_pool3d(t, (2, 3, 3), return_indices=True)
                          for t in (c, g))
    _same(vg, vc)
    _same(F.max_unpool3d(vg, ig, 2, output_size=(4, 5, 6)),
          F.max_unpool3d(vc, ic, 2, output_size=(4, 5, 6)))

    x = fw.tensor([-1.0, 0.5, 2.0], device="cuda")
    assert F.elu_(x) is x
    np.testing.assert_allclose(x.cpu().numpy(), [np.expm1(-1.0), 0.5, 2.0], rtol=1e-6)
