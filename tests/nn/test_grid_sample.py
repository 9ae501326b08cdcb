"""grid_sample / affine_grid / bicubic interpolate vs straightforward NumPy loop references
of PyTorch's algorithms (GridSampler.h, AffineGridGenerator, UpSample.h), known
identities, gradcheck (float64), fw.compile(fullgraph=True) and ONNX export (verify)."""

import itertools
import math

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
from framework.errors import ArgumentError, DTypeError, ShapeError

A = -0.75
R = np.random.default_rng(7)


def _unnorm(c, size, align):
    return (c + 1) / 2 * (size - 1) if align else ((c + 1) * size - 1) / 2


def _reflect(c, tlo, thi):
    if tlo == thi:
        return 0.0
    mn = tlo / 2
    span = (thi - tlo) / 2
    c = abs(c - mn)
    extra = math.fmod(c, span)
    flips = math.floor(c / span)
    return extra + mn if flips % 2 == 0 else span - extra + mn


def _coords(c, size, pad, align):
    if pad == "border":
        return min(max(c, 0.0), size - 1.0)
    if pad == "reflection":
        c = _reflect(c, 0, 2 * (size - 1)) if align else _reflect(c, -1, 2 * size - 1)
        return min(max(c, 0.0), size - 1.0)
    return c


def _cubic(t):
    def c1(x):
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def c2(x):
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
    return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]


# -- NumPy references ------------------------------------------------------------------------
def ref_grid_sample(inp, grid, mode="bilinear", pad="zeros", align=False):
    """Loop reference of PyTorch's grid_sampler_{2,3}d (GridSampler.h)."""
    inp = np.asarray(inp, np.float64)
    grid = np.asarray(grid, np.float64)
    n_, c_ = inp.shape[:2]
    sizes = inp.shape[2:]
    nd = len(sizes)
    outs = grid.shape[1:-1]
    out = np.zeros((n_, c_) + outs)

    def get(n, idx):
        if all(0 <= i <= s - 1 for i, s in zip(idx, sizes)):
            return inp[(n, slice(None)) + tuple(int(i) for i in idx)]
        return np.zeros(c_)

    for n in range(n_):
        for p in itertools.product(*[range(o) for o in outs]):
            g = grid[(n,) + p]
            cs = [g[nd - 1 - d] for d in range(nd)]
            acc = np.zeros(c_)
            if mode == "bicubic":
                u = [_unnorm(c, s, align) for c, s in zip(cs, sizes)]
                f = [math.floor(v) for v in u]
                ws = [_cubic(v - fl) for v, fl in zip(u, f)]
                for ks in itertools.product(range(4), repeat=nd):
                    idx = [_coords(fl - 1 + k, s, pad, align) for fl, k, s in zip(f, ks, sizes)]
                    w = np.prod([ws[d][ks[d]] for d in range(nd)])
                    acc += w * get(n, idx)
            else:
                u = [_coords(_unnorm(c, s, align), s, pad, align) for c, s in zip(cs, sizes)]
                if mode == "nearest":
                    acc = get(n, [np.rint(v) for v in u])
                else:
                    f = [math.floor(v) for v in u]
                    for ks in itertools.product(range(2), repeat=nd):
                        w = np.prod([(v - fl) if k else (1 - (v - fl))
                                     for v, fl, k in zip(u, f, ks)])
                        acc += w * get(n, [fl + k for fl, k in zip(f, ks)])
            out[(n, slice(None)) + p] = acc
    return out


def ref_affine_grid(theta, size, align):
    theta = np.asarray(theta, np.float64)
    nd = len(size) - 2

    def lin(s):
        if s <= 1:
            return np.zeros(s)
        r = np.linspace(-1, 1, s)
        return r if align else r * (s - 1) / s
    sp = size[2:]
    out = np.zeros((size[0],) + tuple(sp) + (nd,))
    for p in itertools.product(*[range(s) for s in sp]):
        base = [lin(sp[nd - 1 - k])[p[nd - 1 - k]] for k in range(nd)] + [1.0]
        for n in range(size[0]):
            out[(n,) + p] = theta[n] @ np.array(base)
    return out


def ref_bicubic_resize(inp, out_hw, align, scales=None):
    """Loop reference of PyTorch's upsample_bicubic2d (UpSample.h)."""
    inp = np.asarray(inp, np.float64)
    n_, c_, h, w = inp.shape
    oh, ow = out_hw
    out = np.zeros((n_, c_, oh, ow))

    def scale(i, o, s):
        if align:
            return (i - 1) / (o - 1) if o > 1 else 0.0
        return 1.0 / s if s is not None and s > 0 else i / o

    sh = scale(h, oh, None if scales is None else scales[0])
    sw = scale(w, ow, None if scales is None else scales[1])

    def src(sc, d):
        return sc * d if align else sc * (d + 0.5) - 0.5

    for oy in range(oh):
        ry = src(sh, oy)
        iy = min(math.floor(ry), h - 1)
        ty = min(max(ry - iy, 0.0), 1.0)
        wy = _cubic(ty)
        for ox in range(ow):
            rx = src(sw, ox)
            ix = min(math.floor(rx), w - 1)
            tx = min(max(rx - ix, 0.0), 1.0)
            wx = _cubic(tx)
            acc = np.zeros((n_, c_))
            for j in range(4):
                yy = min(max(iy - 1 + j, 0), h - 1)
                for i in range(4):
                    xx = min(max(ix - 1 + i, 0), w - 1)
                    acc += wy[j] * wx[i] * inp[:, :, yy, xx]
            out[:, :, oy, ox] = acc
    return out


# -- helpers ---------------------------------------------------------------------------------
MODES_PADS = list(itertools.product(("bilinear", "nearest", "bicubic"),
                                    ("zeros", "border", "reflection")))


def _t(a, dtype=np.float64, **kw):
    return fw.tensor(np.asarray(a, dtype), **kw)


def _special_points(sizes, align):
    """Normalized coords of pixel centers and of the halfway points between them (ties for
    nearest), plus points out of [-1, 1]; one row of ``(len(sizes),)`` per point, x first."""
    def norm(u, s):
        return 2 * u / (s - 1) - 1 if align else (2 * u + 1) / s - 1
    pts = []
    for k in range(6):
        u = [(k * 0.5 + d) % (s + 1) - 0.5 for d, s in enumerate(reversed(sizes))]
        pts.append([norm(v, s) for v, s in zip(u, reversed(sizes))])
    pts += [[-1.0] * len(sizes), [1.0] * len(sizes), [1.75] * len(sizes),
            [-2.6] * len(sizes), [3.3, -1.2, 0.4][:len(sizes)]]
    return np.array(pts)


def _grid(n, outs, sizes, align, rng):
    """Random points in [-1.7, 1.7] with the special points in the first positions."""
    nd = len(sizes)
    g = rng.uniform(-1.7, 1.7, (n,) + outs + (nd,))
    sp = _special_points(sizes, align)
    flat = g.reshape(n, -1, nd)
    flat[:, :len(sp)] = sp
    return flat.reshape(g.shape)


# -- grid_sample values ----------------------------------------------------------------------
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("mode,pad", MODES_PADS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_grid_sample_2d_matches_reference(mode, pad, align, dtype):
    sizes = (5, 9) if align else (4, 8)     # ties are exact binary fractions for both dtypes
    x = R.standard_normal((2, 3) + sizes).astype(dtype)
    g = _grid(2, (4, 5), sizes, align, R).astype(dtype)
    out = F.grid_sample(_t(x, dtype), _t(g, dtype), mode, pad, align)
    assert out.shape == (2, 3, 4, 5) and out.dtype == (fw.float64 if dtype == np.float64
                                                        else fw.float32)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out.numpy(), ref_grid_sample(x, g, mode, pad, align),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("mode,pad", [m for m in MODES_PADS if m[0] != "bicubic"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_grid_sample_3d_matches_reference(mode, pad, align, dtype):
    sizes = (3, 5, 9) if align else (2, 4, 8)
    x = R.standard_normal((2, 2) + sizes).astype(dtype)
    g = _grid(2, (2, 3, 4), sizes, align, R).astype(dtype)
    out = F.grid_sample(_t(x, dtype), _t(g, dtype), mode, pad, align)
    assert out.shape == (2, 2, 2, 3, 4)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out.numpy(), ref_grid_sample(x, g, mode, pad, align),
                               rtol=tol, atol=tol)


def test_grid_sample_defaults_and_single_pixel_dims():
    x = R.standard_normal((1, 2, 1, 4))
    g = R.uniform(-1.5, 1.5, (1, 3, 2, 2))
    np.testing.assert_allclose(F.grid_sample(_t(x), _t(g)).numpy(),
                               ref_grid_sample(x, g, "bilinear", "zeros", False), atol=1e-12)
    for mode, pad in MODES_PADS:
        for align in (False, True):
            np.testing.assert_allclose(
                F.grid_sample(_t(x), _t(g), mode, pad, align).numpy(),
                ref_grid_sample(x, g, mode, pad, align), atol=1e-12,
                err_msg=f"{mode} {pad} {align}")


# -- identities ------------------------------------------------------------------------------
def test_identity_and_translation_grids():
    x = R.standard_normal((2, 3, 4, 6))
    eye = _t(np.tile(np.eye(2, 3), (2, 1, 1)))
    for align in (True, False):
        grid = F.affine_grid(eye, (2, 3, 4, 6), align_corners=align)
        np.testing.assert_allclose(F.grid_sample(_t(x), grid, align_corners=align).numpy(), x,
                                   rtol=0, atol=1e-14)
    grid = F.affine_grid(eye, (2, 3, 4, 6), align_corners=True)
    np.testing.assert_array_equal(F.grid_sample(_t(x), grid, "nearest",
                                                align_corners=True).numpy(), x)
    np.testing.assert_allclose(F.grid_sample(_t(x), grid, "bicubic",
                                             align_corners=True).numpy(), x, atol=1e-12)
    # translate by one pixel to the right: out[..., j] = in[..., j + 1], zeros past the edge
    theta = np.tile(np.array([[1.0, 0, 2 / 6], [0, 1, 0]]), (2, 1, 1))
    grid = F.affine_grid(_t(theta), (2, 3, 4, 6), align_corners=False)
    out = F.grid_sample(_t(x), grid, align_corners=False).numpy()
    np.testing.assert_allclose(out[..., :-1], x[..., 1:], atol=1e-12)
    np.testing.assert_allclose(out[..., -1], 0.0, atol=1e-12)
    out = F.grid_sample(_t(x), grid, padding_mode="border", align_corners=False).numpy()
    np.testing.assert_allclose(out[..., -1], x[..., -1], atol=1e-12)


# -- affine_grid -----------------------------------------------------------------------------
@pytest.mark.parametrize("align", [False, True, None])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 1, 3), (2, 3, 3, 4, 5), (2, 1, 2, 1, 3)])
def test_affine_grid_matches_reference(size, align):
    nd = len(size) - 2
    theta = R.standard_normal((2, nd, nd + 1))
    out = F.affine_grid(_t(theta), size, align_corners=align)
    assert out.shape == tuple(size[:1]) + tuple(size[2:]) + (nd,)
    np.testing.assert_allclose(out.numpy(), ref_affine_grid(theta, size, bool(align)),
                               atol=1e-14)
    out32 = F.affine_grid(_t(theta, np.float32), size, align_corners=align)
    assert out32.dtype == fw.float32
    np.testing.assert_allclose(out32.numpy(), ref_affine_grid(theta, size, bool(align)),
                               rtol=1e-5, atol=1e-6)


def test_affine_grid_base_coordinates():
    eye = _t(np.eye(2, 3)[None])
    g = F.affine_grid(eye, (1, 1, 2, 4), align_corners=False).numpy()
    np.testing.assert_allclose(g[0, 0, :, 0], [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(g[0, :, 0, 1], [-0.5, 0.5])
    g = F.affine_grid(eye, (1, 1, 2, 4), align_corners=True).numpy()
    np.testing.assert_allclose(g[0, 0, :, 0], [-1, -1 / 3, 1 / 3, 1])
    np.testing.assert_allclose(g[0, :, 0, 1], [-1, 1])


def test_affine_grid_errors():
    with pytest.raises(ShapeError, match="affine_grid.*Nx2x3"):
        F.affine_grid(fw.zeros(2, 3, 3), (2, 1, 4, 4))
    with pytest.raises(ShapeError, match="affine_grid.*Nx3x4"):
        F.affine_grid(fw.zeros(1, 2, 3), (2, 1, 4, 4, 4))
    with pytest.raises(NotImplementedError, match="affine_grid.*4D and 5D"):
        F.affine_grid(fw.zeros(1, 2, 3), (1, 1, 4))
    with pytest.raises(ArgumentError, match="affine_grid.*positive"):
        F.affine_grid(fw.zeros(1, 2, 3), (1, 1, 0, 4))
    with pytest.raises(DTypeError, match="affine_grid.*floating"):
        F.affine_grid(fw.zeros(1, 2, 3, dtype=fw.int64), (1, 1, 2, 4))


def test_grid_sample_errors():
    x, g = fw.zeros(1, 2, 3, 4), fw.zeros(1, 2, 2, 2)
    with pytest.raises(ArgumentError, match="grid_sample.*mode"):
        F.grid_sample(x, g, mode="area")
    with pytest.raises(ArgumentError, match="grid_sample.*padding_mode"):
        F.grid_sample(x, g, padding_mode="circular")
    with pytest.raises(ShapeError, match="grid_sample.*grid"):
        F.grid_sample(x, fw.zeros(1, 2, 2, 3))
    with pytest.raises(ShapeError, match="grid_sample.*batch size"):
        F.grid_sample(x, fw.zeros(2, 2, 2, 2))
    with pytest.raises(ShapeError, match="grid_sample.*4D or 5D"):
        F.grid_sample(fw.zeros(2, 3, 4), fw.zeros(2, 3, 2))
    with pytest.raises(ArgumentError, match="grid_sample.*bicubic.*4D"):
        F.grid_sample(fw.zeros(1, 1, 2, 2, 2), fw.zeros(1, 1, 1, 1, 3), mode="bicubic")
    with pytest.raises(DTypeError, match="grid_sample.*same dtype"):
        F.grid_sample(x, g.double())


# -- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("mode,pad", [m for m in MODES_PADS if m[0] != "nearest"])
def test_grid_sample_gradcheck(mode, pad, align):
    rng = np.random.default_rng(3)
    x = _t(rng.standard_normal((2, 2, 3, 4)), requires_grad=True)
    # random points (never exactly on a pixel boundary), some outside [-1, 1]
    g = _t(rng.uniform(-1.3, 1.3, (2, 3, 2, 2)), requires_grad=True)
    assert fw.autograd.gradcheck(lambda a, b: F.grid_sample(a, b, mode, pad, align), (x, g))


@pytest.mark.parametrize("pad", ["zeros", "border", "reflection"])
def test_grid_sample_3d_gradcheck(pad):
    rng = np.random.default_rng(4)
    x = _t(rng.standard_normal((1, 2, 2, 3, 3)), requires_grad=True)
    g = _t(rng.uniform(-1.2, 1.2, (1, 2, 2, 1, 3)), requires_grad=True)
    assert fw.autograd.gradcheck(lambda a, b: F.grid_sample(a, b, "bilinear", pad, False),
                                 (x, g))


def test_grid_sample_nearest_grads():
    x = _t(R.standard_normal((1, 2, 3, 4)), requires_grad=True)
    g = _t(R.uniform(-1.2, 1.2, (1, 2, 3, 2)), requires_grad=True)
    F.grid_sample(x, g, "nearest", "zeros", True).sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), 0.0)
    assert fw.autograd.gradcheck(lambda a: F.grid_sample(a, g.detach(), "nearest"), (x,))


def test_affine_grid_gradcheck():
    theta = _t(R.standard_normal((2, 2, 3)), requires_grad=True)
    x = _t(R.standard_normal((2, 1, 3, 4)))
    assert fw.autograd.gradcheck(
        lambda t: F.grid_sample(x, F.affine_grid(t, (2, 1, 3, 5), False), "bicubic"), (theta,))
    theta = _t(R.standard_normal((1, 3, 4)), requires_grad=True)
    assert fw.autograd.gradcheck(lambda t: F.affine_grid(t, (1, 2, 2, 3, 2), True), (theta,))


# -- interpolate bicubic ---------------------------------------------------------------------
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_interpolate_bicubic_matches_reference(align, dtype):
    x = R.standard_normal((2, 3, 5, 7)).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for size in [(9, 13), (3, 4), (5, 7), (1, 1), (2, 11)]:
        out = F.interpolate(_t(x, dtype), size=size, mode="bicubic", align_corners=align)
        np.testing.assert_allclose(out.numpy(), ref_bicubic_resize(x, size, align),
                                   rtol=tol, atol=tol, err_msg=str(size))
    for sf in [2, 0.5, 1.7, (1.5, 0.6)]:
        out = F.interpolate(_t(x, dtype), scale_factor=sf, mode="bicubic",
                            align_corners=align)
        scales = (float(sf),) * 2 if not isinstance(sf, tuple) else sf
        assert out.shape[2:] == tuple(math.floor(n * s) for n, s in zip((5, 7), scales))
        np.testing.assert_allclose(out.numpy(),
                                   ref_bicubic_resize(x, out.shape[2:], align, scales),
                                   rtol=tol, atol=tol, err_msg=str(sf))


def test_interpolate_bicubic_grad_and_errors():
    x = _t(R.standard_normal((1, 2, 4, 3)), requires_grad=True)
    assert fw.autograd.gradcheck(
        lambda a: F.interpolate(a, size=(7, 2), mode="bicubic", align_corners=False), (x,))
    with pytest.raises(ArgumentError, match="interpolate.*bicubic.*4-D"):
        F.interpolate(fw.randn(1, 1, 3), size=4, mode="bicubic")
    with pytest.raises(ArgumentError, match="Anti-alias option is restricted"):
        F.interpolate(fw.randn(1, 1, 3), size=4, mode="bicubic", antialias=True)


# -- fw.compile ------------------------------------------------------------------------------
COMPILED = {
    "bilinear_zeros": lambda x, g, t: F.grid_sample(x, g),
    "bilinear_reflection_ac": lambda x, g, t: F.grid_sample(x, g, "bilinear", "reflection",
                                                             True),
    "nearest_border": lambda x, g, t: F.grid_sample(x, g, "nearest", "border"),
    "bicubic_reflection": lambda x, g, t: F.grid_sample(x, g, "bicubic", "reflection"),
    "affine": lambda x, g, t: F.grid_sample(x, F.affine_grid(t, (2, 3, 3, 4), False),
                                            "bilinear", "border"),
    "interp_bicubic": lambda x, g, t: F.interpolate(x, scale_factor=1.5, mode="bicubic"),
}


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_compile_fullgraph_matches_eager(name, monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    f = COMPILED[name]
    fn = fw.compile(f, fullgraph=True, mode="always")
    x = _t(R.standard_normal((2, 3, 4, 5)), np.float32)
    g = _t(_grid(2, (3, 4), (4, 5), False, R), np.float32)
    t = _t(R.standard_normal((2, 2, 3)) * 0.7, np.float32)
    got, want = fn(x, g, t), f(x, g, t)
    assert got.shape == want.shape and got.dtype is want.dtype
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert not fn.stats()["graph_breaks"]


# -- ONNX ------------------------------------------------------------------------------------
ONNX = {
    "bilinear_zeros": lambda x, g: F.grid_sample(x, g, "bilinear", "zeros"),
    "nearest_border": lambda x, g: F.grid_sample(x, g, "nearest", "border", True),
    "bicubic_reflection": lambda x, g: F.grid_sample(x, g, "bicubic", "reflection"),
    "bilinear_reflection_ac": lambda x, g: F.grid_sample(x, g, "bilinear", "reflection", True),
    "interp_bicubic": lambda x, g: F.interpolate(x, size=(7, 3), mode="bicubic") + g.sum(),
}


@pytest.mark.parametrize("name", sorted(ONNX))
def test_onnx_export_verify(name):
    pytest.importorskip("onnxruntime")
    x = _t(R.standard_normal((2, 3, 4, 5)), np.float32)
    g = _t(_grid(2, (3, 4), (4, 5), False, R), np.float32)
    fw.onnx.export(ONNX[name], (x, g), verify=True)
