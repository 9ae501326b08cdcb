"""affine_grid / grid_sample / bicubic and antialiased interpolate on device "cuda"
(simulated without a GPU): the gather composites run there and match the CPU, values and
gradients, eager and under fw.compile."""

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F

R = np.random.default_rng(11)


def _pair(a, requires_grad=False):
    a = np.asarray(a, np.float32)
    return (fw.tensor(a, requires_grad=requires_grad),
            fw.tensor(a, device="cuda", requires_grad=requires_grad))


@pytest.mark.parametrize("mode,pad,align", [("bilinear", "zeros", False),
                                            ("bilinear", "reflection", True),
                                            ("nearest", "border", False),
                                            ("bicubic", "reflection", False)])
def test_grid_sample_cuda_matches_cpu(mode, pad, align):
    xc, xg = _pair(R.standard_normal((2, 3, 4, 5)), True)
    gc, gg = _pair(R.uniform(-1.4, 1.4, (2, 3, 4, 2)), True)
    outs = []
    for x, g in ((xc, gc), (xg, gg)):
        out = F.grid_sample(x, g, mode, pad, align)
        (out * out).sum().backward()
        outs.append([out.detach().cpu().numpy(), x.grad.cpu().numpy(), g.grad.cpu().numpy()])
    assert out.device.type == "cuda"
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_grid_sample_5d_and_affine_grid_cuda():
    tc, tg = _pair(R.standard_normal((2, 3, 4)) * 0.6, True)
    xc, xg = _pair(R.standard_normal((2, 2, 3, 4, 5)))
    outs = []
    for x, t in ((xc, tc), (xg, tg)):
        out = F.grid_sample(x, F.affine_grid(t, (2, 2, 2, 3, 4), False), "bilinear", "border")
        out.sum().backward()
        outs.append([out.detach().cpu().numpy(), t.grad.cpu().numpy()])
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_interpolate_bicubic_and_compile_cuda():
    xc, xg = _pair(R.standard_normal((1, 2, 5, 6)))
    for align in (False, True):
        np.testing.assert_allclose(
            F.interpolate(xg, size=(8, 4), mode="bicubic", align_corners=align).cpu().numpy(),
            F.interpolate(xc, size=(8, 4), mode="bicubic", align_corners=align).numpy(),
            rtol=1e-5, atol=1e-6)
    gc, gg = _pair(R.uniform(-1.2, 1.2, (1, 3, 3, 2)))

    def f(x, g):
        return F.grid_sample(x, g, "bicubic", "border")

    fn = fw.compile(f, fullgraph=True, mode="always")
    np.testing.assert_allclose(fn(xg, gg).cpu().numpy(), f(xc, gc).numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_antialias_cuda_matches_cpu(mode):
    xc, xg = _pair(R.standard_normal((2, 3, 11, 9)), True)
    outs = []
    for x in (xc, xg):
        out = F.interpolate(x, scale_factor=(0.37, 0.5), mode=mode, antialias=True)
        (out * out).sum().backward()
        outs.append([out.detach().cpu().numpy(), x.grad.cpu().numpy()])
    assert out.device.type == "cuda" and out.shape == (2, 3, 4, 4)
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
