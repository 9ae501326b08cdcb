"""interpolate(..., antialias=True) (bilinear / bicubic, 4-D) against a per-output-pixel
NumPy loop over PIL's resampling definition (Resample.c ``precompute_coeffs``, which
PyTorch's ``_upsample_*2d_aa`` follows), published values, invariants, gradcheck
(float64), fw.compile, ONNX export (verify) and the error for other modes."""

import math

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
from framework.errors import ArgumentError
from framework.nn.functional_antialias import antialias_matrix

R = np.random.default_rng(23)


def _filter(mode, x):
    x = abs(x)
    if mode == "bilinear":                        # triangle, support 1
        return 1.0 - x if x < 1.0 else 0.0
    a = -0.5                                      # Keys cubic as in PIL, support 2
    if x < 1.0:
        return (a + 2.0) * x ** 3 - (a + 3.0) * x ** 2 + 1.0
    if x < 2.0:
        return a * x ** 3 - 5.0 * a * x ** 2 + 8.0 * a * x - 4.0 * a
    return 0.0


def _taps(mode, n, o, scale):
    """PIL's coefficients of output sample ``i``: list of (first source, weights)."""
    filterscale = max(scale, 1.0)
    support = (1.0 if mode == "bilinear" else 2.0) * filterscale
    ksize = math.ceil(support) * 2 + 1
    rows = []
    for i in range(o):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n)
        hi = min(hi, lo + ksize)
        ws = [_filter(mode, (x - center + 0.5) / filterscale) for x in range(lo, hi)]
        total = sum(ws)
        rows.append((lo, [w / total for w in ws] if total != 0 else ws))
    return rows


def ref_aa(x, out_hw, mode, scales=None, align=False):
    """Loop over every output pixel and its 2-D window (not separable passes)."""
    h, w = x.shape[-2:]
    oh, ow = out_hw
    per_dim = []
    for n, o, s in zip((h, w), (oh, ow), scales or (None, None)):
        if align:
            scale = (n - 1) / (o - 1) if o > 1 else 0.0
        else:
            scale = s if s else n / o
        # a dim whose size does not change is copied (ATen's CPU kernel skips it)
        per_dim.append([(i, [1.0]) for i in range(n)] if o == n else _taps(mode, n, o, scale))
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for i, (ylo, wy) in enumerate(per_dim[0]):
        for j, (xlo, wx) in enumerate(per_dim[1]):
            acc = np.zeros(x.shape[:-2])
            for p, a in enumerate(wy):
                for q, b in enumerate(wx):
                    acc += a * b * x[..., ylo + p, xlo + q]
            out[..., i, j] = acc
    return out


def _t(a, dtype=np.float64, requires_grad=False):
    return fw.tensor(np.asarray(a, dtype), requires_grad=requires_grad)


# (input hw, kwargs of interpolate, output hw, scales the reference must use)
CASES = {
    "down2x_size": ((8, 8), dict(size=(4, 4)), (4, 4), None),
    "down3x_scale": ((9, 12), dict(scale_factor=1 / 3), (3, 4), (3.0, 3.0)),
    "down_0.37": ((10, 13), dict(scale_factor=0.37), (3, 4), (1 / 0.37, 1 / 0.37)),
    "down_0.37_recompute": ((10, 13), dict(scale_factor=0.37, recompute_scale_factor=True),
                            (3, 4), None),
    "up_size": ((4, 5), dict(size=(9, 7)), (9, 7), None),
    "up_scale_1.5": ((4, 6), dict(scale_factor=1.5), (6, 9), (1 / 1.5, 1 / 1.5)),
    "non_square_down": ((7, 15), dict(size=(3, 4)), (3, 4), None),
    "mixed_up_down": ((5, 11), dict(size=(8, 3)), (8, 3), None),
    "one_pixel": ((6, 5), dict(size=(1, 1)), (1, 1), None),
    "one_dim_unchanged": ((6, 5), dict(scale_factor=(0.5, 1.1)), (3, 5), (2.0, 1 / 1.1)),
}


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference(name, mode, dtype):
    hw, kw, out_hw, scales = CASES[name]
    x = R.standard_normal((2, 3) + hw)
    out = F.interpolate(_t(x, dtype), mode=mode, antialias=True, **kw)
    assert tuple(out.shape) == (2, 3) + out_hw and out.dtype is fw.tensor(x.astype(dtype)).dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.numpy(), ref_aa(x, out_hw, mode, scales), rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(3, 4), (7, 2), (1, 9)])
def test_align_corners_changes_only_the_scale(mode, size):
    x = R.standard_normal((1, 2, 6, 5))
    out = F.interpolate(_t(x), size=size, mode=mode, align_corners=True, antialias=True)
    np.testing.assert_allclose(out.numpy(), ref_aa(x, size, mode, align=True), atol=1e-12)


def test_published_values_8x8_to_2x2():
    """PyTorch's test_nn (test_upsampling{BiLinear,Bicubic}2d_aa_correctness), whose
    expected values come from PIL.Image.resize of arange(3 * 8 * 8) to 2x2."""
    x = fw.arange(3 * 8 * 8, dtype=fw.float32).reshape(1, 3, 8, 8)
    bilinear = [17.035713, 20.25, 42.75, 45.964287, 81.03572, 84.25, 106.75, 109.96428,
                145.0357, 148.25, 170.75, 173.9643]
    bicubic = [15.1205635, 18.760439, 44.23956, 47.879436, 79.12056, 82.76044, 108.23956,
               111.87944, 143.12057, 146.76044, 172.23956, 175.87943]
    for mode, want in (("bilinear", bilinear), ("bicubic", bicubic)):
        out = F.interpolate(x, size=(2, 2), mode=mode, align_corners=False, antialias=True)
        np.testing.assert_allclose(out.numpy().ravel(), want, rtol=1e-6)


def test_differs_from_plain_modes_where_it_should():
    x = R.standard_normal((1, 1, 12, 12))
    for mode in ("bilinear", "bicubic"):        # downsampling: the filter is widened
        aa = F.interpolate(_t(x), scale_factor=0.5, mode=mode, antialias=True).numpy()
        plain = F.interpolate(_t(x), scale_factor=0.5, mode=mode).numpy()
        assert np.abs(aa - plain).max() > 1e-3
    # upsampling: bilinear is the plain bilinear; bicubic uses a = -0.5, not -0.75
    up = dict(size=(17, 19))
    np.testing.assert_allclose(
        F.interpolate(_t(x), mode="bilinear", antialias=True, **up).numpy(),
        F.interpolate(_t(x), mode="bilinear", **up).numpy(), atol=1e-12)
    assert np.abs(F.interpolate(_t(x), mode="bicubic", antialias=True, **up).numpy()
                  - F.interpolate(_t(x), mode="bicubic", **up).numpy()).max() > 1e-3


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("n,o,scale", [(8, 4, 2.0), (13, 4, 13 / 4), (10, 3, 1 / 0.37),
                                       (4, 9, 4 / 9), (6, 1, 6.0), (5, 7, 0.5)])
def test_weights_sum_to_one_and_constant_stays_constant(mode, n, o, scale):
    m = antialias_matrix(n, o, scale, mode)
    assert m.shape == (o, n)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)
    out = F.interpolate(fw.full((1, 2, n, n), 3.25, dtype=fw.float64), size=(o, o), mode=mode,
                        antialias=True)
    np.testing.assert_allclose(out.numpy(), 3.25, atol=1e-12)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_gradcheck(mode):
    x = _t(R.standard_normal((1, 2, 7, 6)), requires_grad=True)
    assert fw.autograd.gradcheck(
        lambda a: F.interpolate(a, scale_factor=(0.37, 0.5), mode=mode, antialias=True), (x,))
    assert fw.autograd.gradcheck(
        lambda a: F.interpolate(a, size=(9, 4), mode=mode, antialias=True), (x,))


def test_compile_fullgraph_matches_eager(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def f(x):
        return (F.interpolate(x, scale_factor=0.37, mode="bicubic", antialias=True).sum()
                + F.interpolate(x, size=(5, 3), mode="bilinear", antialias=True).sum())

    fn = fw.compile(f, fullgraph=True, mode="always")
    x = _t(R.standard_normal((2, 3, 11, 9)), np.float32)
    np.testing.assert_allclose(fn(x).numpy(), f(x).numpy(), rtol=1e-5, atol=1e-5)
    assert not fn.stats()["graph_breaks"]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_onnx_export_verify(mode):
    pytest.importorskip("onnxruntime")
    x = _t(R.standard_normal((1, 2, 11, 9)), np.float32)
    fw.onnx.export(lambda a: F.interpolate(a, scale_factor=0.37, mode=mode, antialias=True),
                   (x,), verify=True)


def test_errors_for_other_modes():
    for mode, shape in (("nearest", (1, 1, 4, 4)), ("nearest-exact", (1, 1, 4, 4)),
                        ("area", (1, 1, 4, 4)), ("linear", (1, 1, 4)),
                        ("trilinear", (1, 1, 4, 4, 4)), ("bilinear", (1, 1, 4)),
                        ("bicubic", (1, 1, 4, 4, 4))):
        with pytest.raises(ArgumentError, match="Anti-alias option is restricted to bilinear "
                                                "and bicubic modes and requires a 4-D"):
            F.interpolate(fw.randn(*shape), size=2, mode=mode, antialias=True)
    with pytest.raises(ValueError):             # torch raises ValueError
        F.interpolate(fw.randn(1, 1, 4, 4), size=2, mode="nearest", antialias=True)
