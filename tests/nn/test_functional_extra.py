"""``F.pdist`` / ``fw.pdist``, ``F.adaptive_max_pool3d`` and ``F.max_unpool3d`` (and their
layers), fractional max pooling (``F.fractional_max_pool2d/3d``, ``nn.FractionalMaxPool2d/3d``)
and the in-place activations (``F.elu_``, ``hardtanh_``, ``leaky_relu_``, ``threshold_``,
``celu_``, ``selu_``): values against NumPy references written from PyTorch's formulas,
gradients (finite differences in float64 and PyTorch's backward formulas), index round
trips, seeding and PyTorch's error cases."""

import math

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from framework.errors import ArgumentError, AutogradError, DTypeError, ShapeError
from tests.opinfo_nn_extra import frac_starts, ref_adaptive_max3d, ref_fractional, ref_pdist

R = np.random.default_rng(11)


def t64(a, grad=False):
    return fw.tensor(np.asarray(a, np.float64), dtype=fw.float64, requires_grad=grad)


def test_names_exist():
    for n in ["pdist", "adaptive_max_pool3d", "max_unpool3d", "fractional_max_pool2d",
              "fractional_max_pool3d", "elu_", "hardtanh_", "leaky_relu_", "threshold_",
              "relu_", "celu_", "selu_", "rrelu_"]:
        assert callable(getattr(F, n)), n
    for n in ["AdaptiveMaxPool3d", "MaxUnpool3d", "FractionalMaxPool2d", "FractionalMaxPool3d"]:
        assert issubclass(getattr(nn, n), nn.Module), n
    assert F.pdist is fw.pdist


# -- pdist ------------------------------------------------------------------------------
def ref_pdist_grad(x, p, g):
    """PyTorch's ``_pdist_backward`` (per-pair rules of its distance kernels)."""
    n = x.shape[0]
    out = np.zeros_like(x)
    dist = ref_pdist(x, p)
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            diff, d = x[i] - x[j], dist[k]
            if p == 0:
                r = np.zeros_like(diff)
            elif p == 1:
                r = np.sign(diff) * g[k]
            elif p == math.inf:
                r = np.sign(diff) * (np.abs(diff) == d) * g[k]
            elif d == 0:
                r = np.zeros_like(diff)
            elif p < 2:
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = np.sign(diff) * np.abs(diff) ** (p - 1) * g[k] / d ** (p - 1)
                r = np.where((diff == 0) & (p < 1), 0.0, r)
            else:
                r = diff * np.abs(diff) ** (p - 2) * g[k] / d ** (p - 1)
            out[i] += r
            out[j] -= r
            k += 1
    return out


@pytest.mark.parametrize("p", [0, 0.5, 1, 1.5, 2, 3, math.inf])
def test_pdist_values_and_pytorch_gradient(p):
    x = R.standard_normal((5, 4))
    x[3] = x[1]                 # a zero distance
    x[4, 2] = x[0, 2]           # a zero coordinate in a non-zero distance
    x[2, :2] = x[0, :2] + [0.5, -0.5]  # an inf-norm tie
    x[2, 2:] = x[0, 2:] + 0.25
    xt = t64(x, grad=True)
    d = fw.pdist(xt, p)
    assert d.shape == (10,)
    np.testing.assert_allclose(d.detach().numpy(), ref_pdist(x, p), rtol=1e-12, atol=1e-12)
    g = R.standard_normal(10)
    d.backward(t64(g))
    got = xt.grad.numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref_pdist_grad(x, p, g), rtol=1e-10, atol=1e-12)


def test_pdist_matches_cdist_triangle_and_gradcheck():
    x = R.standard_normal((6, 3))
    full = fw.cdist(t64(x), t64(x), p=2.0).numpy()
    rows, cols = np.triu_indices(6, 1)
    np.testing.assert_allclose(F.pdist(t64(x)).numpy(), full[rows, cols], rtol=1e-12)
    for p in (0.7, 2.0, 3.0, math.inf):
        assert fw.autograd.gradcheck(lambda a, p=p: fw.pdist(a, p), (t64(x, grad=True),))


def test_pdist_empty_cases_and_float32():
    assert fw.pdist(fw.randn(1, 3)).shape == (0,)
    assert fw.pdist(fw.randn(0, 3)).shape == (0,)
    z = fw.pdist(fw.randn(3, 0, requires_grad=True))
    assert z.shape == (3,) and z.tolist() == [0.0, 0.0, 0.0]
    x = R.standard_normal((4, 5)).astype(np.float32)
    got = fw.pdist(fw.tensor(x), 1.5)
    assert got.dtype is fw.float32
    np.testing.assert_allclose(got.numpy(), ref_pdist(x.astype(np.float64), 1.5), rtol=1e-5)


def test_pdist_errors():
    with pytest.raises(ShapeError, match="2D"):
        fw.pdist(fw.randn(4))
    with pytest.raises(ShapeError, match="2D"):
        F.pdist(fw.randn(2, 3, 4))
    with pytest.raises(DTypeError, match="floating"):
        fw.pdist(fw.tensor([[1, 2], [3, 4]]))
    with pytest.raises(ArgumentError, match="non-negative"):
        fw.pdist(fw.randn(3, 2), -1.0)
    with pytest.raises(TypeError):
        fw.pdist(np.zeros((3, 2)))


# -- adaptive_max_pool3d / max_unpool3d -------------------------------------------------------
@pytest.mark.parametrize("out", [(2, 3, 2), 3, (None, 2, 4)])
def test_adaptive_max_pool3d(out):
    x = R.standard_normal((2, 3, 5, 6, 7))
    v, i = F.adaptive_max_pool3d(t64(x), out, return_indices=True)
    want = tuple(s if o is None else o for o, s in
                 zip((out,) * 3 if isinstance(out, int) else out, x.shape[2:]))
    rv, ri = ref_adaptive_max3d(x, want, True)
    np.testing.assert_allclose(v.numpy(), rv)
    np.testing.assert_array_equal(i.numpy(), ri)
    m = nn.AdaptiveMaxPool3d(out, return_indices=True)
    assert repr(m) == f"AdaptiveMaxPool3d(output_size={out})"
    np.testing.assert_array_equal(m(t64(x))[1].numpy(), ri)
    assert fw.autograd.gradcheck(lambda a: F.adaptive_max_pool3d(a, out),
                                 (t64(x[:1, :1], grad=True),))


def test_adaptive_max_pool3d_unbatched_and_errors():
    x = R.standard_normal((2, 4, 4, 6))
    got = F.adaptive_max_pool3d(t64(x), 2)
    np.testing.assert_allclose(got.numpy(), ref_adaptive_max3d(x[None], 2)[0])
    with pytest.raises(ShapeError):
        F.adaptive_max_pool3d(fw.randn(4, 4, 4, 4, 4, 4), 2)
    with pytest.raises(ArgumentError):
        F.adaptive_max_pool3d(fw.randn(1, 1, 4, 4, 4), (2, 2))


def test_max_unpool3d_inverts_max_pool3d():
    x = t64(R.standard_normal((2, 2, 4, 6, 4)))
    v, i = F.max_pool3d(x, 2, return_indices=True)
    up = F.max_unpool3d(v, i, 2)
    assert up.shape == x.shape
    keep = np.zeros(x.shape, bool)
    flat = keep.reshape(2, 2, -1)
    np.put_along_axis(flat, i.numpy().reshape(2, 2, -1), True, -1)
    np.testing.assert_allclose(up.numpy(), np.where(keep, x.numpy(), 0.0))
    layer = nn.MaxUnpool3d(2)
    assert repr(layer) == "MaxUnpool3d(kernel_size=2, stride=2, padding=0)"
    np.testing.assert_allclose(layer(v, i).numpy(), up.numpy())
    # adaptive max pool indices round trip through unpool as well
    av, ai = nn.AdaptiveMaxPool3d((2, 3, 2), return_indices=True)(x)
    np.testing.assert_allclose(F.max_unpool3d(av, ai, 2, output_size=x.shape).numpy(),
                               up.numpy())
    # unbatched, odd output_size, gradient to the values
    odd = F.max_unpool3d(v[0], i[0], 2, output_size=(5, 7, 5))
    assert odd.shape == (2, 5, 7, 5)
    assert fw.autograd.gradcheck(lambda a: F.max_unpool3d(a, i, 2), (t64(v.numpy(), True),))


def test_max_unpool3d_errors():
    v, i = F.max_pool3d(fw.randn(1, 1, 4, 4, 4), 2, return_indices=True)
    with pytest.raises(ShapeError):
        F.max_unpool3d(v, i[..., :1], 2)
    with pytest.raises(ShapeError):
        F.max_unpool3d(v, i.float(), 2)
    with pytest.raises(ArgumentError, match="output_size"):
        F.max_unpool3d(v, i, 2, output_size=(9, 4, 4))


# -- fractional max pooling ----------------------------------------------------------------
def test_interval_formula_matches_pytorch_examples():
    # alpha = (10 - 2) / (4 - 1) = 8/3; u = 0.5: int((i + .5) * 8/3) - int(.5 * 8/3)
    assert frac_starts(0.5, 10, 4, 2).tolist() == [0, 3, 5, 8]
    assert frac_starts(0.9, 5, 1, 2).tolist() == [3]  # one window: at n - k


@pytest.mark.parametrize("dtype", [fw.float32, fw.float64])
def test_fractional2d_explicit_samples_match_reference(dtype):
    x = R.standard_normal((2, 3, 11, 9)).astype(dtype.np)
    s = R.random((2, 3, 2)).astype(dtype.np)   # not on a grid: the dtype's rounding counts
    v, i = F.fractional_max_pool2d(fw.tensor(x), (3, 2), (5, 6), return_indices=True,
                                   _random_samples=fw.tensor(s))
    rv, ri = ref_fractional(x, s, (3, 2), (5, 6), dtype.np.type, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), ri)
    np.testing.assert_array_equal(v.numpy(), rv)
    assert v.dtype is dtype and i.dtype is fw.int64


def test_fractional3d_explicit_samples_and_unbatched():
    x = R.standard_normal((3, 9, 8, 10)).astype(np.float32)
    s = R.random((1, 3, 3)).astype(np.float32)
    v, i = F.fractional_max_pool3d(fw.tensor(x), 2, (4, 3, 5), return_indices=True,
                                   _random_samples=fw.tensor(s))
    rv, ri = ref_fractional(x[None], s, 2, (4, 3, 5), np.float32, return_indices=True)
    assert v.shape == (3, 4, 3, 5)
    np.testing.assert_array_equal(i.numpy(), ri[0])
    np.testing.assert_array_equal(v.numpy(), rv[0])
    # indices are flat positions in T*H*W
    np.testing.assert_array_equal(x.reshape(3, -1)[np.arange(3)[:, None], ri[0].reshape(3, -1)],
                                  rv[0].reshape(3, -1))


def test_fractional_seeding_uses_the_framework_generator():
    x = fw.randn(2, 3, 11, 11)  # alpha = 9/4: the steps depend on the draw
    fw.manual_seed(5)
    a, ia = F.fractional_max_pool2d(x, 2, output_ratio=0.5, return_indices=True)
    fw.manual_seed(5)
    b, ib = F.fractional_max_pool2d(x, 2, output_ratio=0.5, return_indices=True)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(ia.numpy(), ib.numpy())
    # the draw is fw.rand(N, C, 2) in the input's dtype, as PyTorch's torch.rand
    fw.manual_seed(5)
    s = fw.rand(2, 3, 2)
    c = F.fractional_max_pool2d(x, 2, output_ratio=0.5, _random_samples=s)
    np.testing.assert_array_equal(a.numpy(), c.numpy())
    fw.manual_seed(6)
    d, idd = F.fractional_max_pool2d(x, 2, output_ratio=0.5, return_indices=True)
    assert not np.array_equal(ia.numpy(), idd.numpy())
    fw.manual_seed(7)
    m = nn.FractionalMaxPool3d(2, output_size=(3, 3, 3))
    y = fw.randn(1, 2, 7, 7, 7)
    fw.manual_seed(8)
    first = m(y)
    fw.manual_seed(8)
    np.testing.assert_array_equal(m(y).numpy(), first.numpy())


def test_fractional_output_ratio_shapes_and_unpool_round_trip():
    x = fw.randn(2, 3, 8, 8, dtype=fw.float64)
    v, i = F.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.5), return_indices=True)
    assert v.shape == (2, 3, 4, 4)
    assert F.fractional_max_pool2d(fw.randn(3, 13, 9), 3, output_ratio=0.6).shape == (3, 7, 5)
    up = F.max_unpool2d(v, i, 2, output_size=x.shape[-2:])
    flat = x.numpy().reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, i.numpy().reshape(2, 3, -1), -1),
                                  v.numpy().reshape(2, 3, -1))
    np.testing.assert_allclose(up.numpy().reshape(2, 3, -1).sum(-1),
                               v.numpy().reshape(2, 3, -1).sum(-1))
    v3, i3 = F.fractional_max_pool3d(fw.randn(1, 2, 9, 9, 9), 2, output_ratio=0.5,
                                     return_indices=True)
    assert v3.shape == i3.shape == (1, 2, 4, 4, 4)


def test_fractional_gradient():
    x = R.standard_normal((1, 2, 7, 8))
    s = t64(R.random((1, 2, 2)))
    assert fw.autograd.gradcheck(
        lambda a: F.fractional_max_pool2d(a, 2, (3, 4), _random_samples=s),
        (t64(x, grad=True),))
    xt = t64(x, grad=True)
    v, i = F.fractional_max_pool2d(xt, 2, (3, 4), return_indices=True, _random_samples=s)
    v.sum().backward()
    want = np.zeros((1, 2, 56))
    for c in range(2):
        np.add.at(want[0, c], i.numpy()[0, c].reshape(-1), 1.0)
    np.testing.assert_allclose(xt.grad.numpy().reshape(1, 2, -1), want)
    y = R.standard_normal((1, 1, 6, 6, 7))
    s3 = t64(R.random((1, 1, 3)))
    assert fw.autograd.gradcheck(
        lambda a: F.fractional_max_pool3d(a, (2, 2, 3), 3, _random_samples=s3),
        (t64(y, grad=True),))


def test_fractional_modules():
    m = nn.FractionalMaxPool2d(3, output_ratio=0.5, return_indices=True)
    assert m.kernel_size == (3, 3) and m.output_ratio == (0.5, 0.5) and m.output_size is None
    v, i = m(fw.randn(2, 2, 10, 12))
    assert v.shape == i.shape == (2, 2, 5, 6)
    assert list(m.state_dict()) == []
    s = fw.rand(1, 2, 2)
    fixed = nn.FractionalMaxPool2d((2, 3), output_size=4, _random_samples=s)
    x = fw.randn(1, 2, 9, 9)
    np.testing.assert_array_equal(fixed(x).numpy(), fixed(x).numpy())
    assert list(fixed.state_dict()) == ["_random_samples"]
    assert nn.FractionalMaxPool3d(2, output_size=(2, 3, 2)).output_size == (2, 3, 2)
    with pytest.raises(ArgumentError, match="either an output size"):
        nn.FractionalMaxPool2d(2)
    with pytest.raises(ArgumentError, match="only one of"):
        nn.FractionalMaxPool3d(2, output_size=2, output_ratio=0.5)
    with pytest.raises(ArgumentError, match="between 0 and 1"):
        nn.FractionalMaxPool2d(2, output_ratio=(0.5, 1.0))


def test_fractional_errors():
    x = fw.randn(1, 2, 6, 6)
    with pytest.raises(ArgumentError, match="output_size or an output_ratio"):
        F.fractional_max_pool2d(x, 2)
    with pytest.raises(ShapeError, match="too large relative to input height"):
        F.fractional_max_pool2d(x, (3, 2), (5, 2))
    F.fractional_max_pool2d(x, (3, 2), (4, 2))      # 4 + 3 - 1 <= 6: allowed in 2-D
    with pytest.raises(ShapeError, match="too large relative to input time"):
        F.fractional_max_pool3d(fw.randn(1, 1, 6, 6, 6), 3, (4, 2, 2))  # 3-D needs < 6
    with pytest.raises(ArgumentError, match="greater than zero"):
        F.fractional_max_pool2d(x, (0, 2), 2)
    with pytest.raises(ShapeError, match="3D or 4D"):
        F.fractional_max_pool2d(fw.randn(6, 6), 2, 2)
    with pytest.raises(ShapeError, match="non-zero size"):
        F.fractional_max_pool2d(fw.randn(1, 0, 6, 6), 2, 2)
    with pytest.raises(DTypeError):
        F.fractional_max_pool2d(fw.ones(1, 1, 6, 6, dtype=fw.int64), 2, 2)
    with pytest.raises(DTypeError, match="same dtype"):
        F.fractional_max_pool2d(x, 2, 2, _random_samples=fw.rand(1, 2, 2, dtype=fw.float64))
    with pytest.raises(ShapeError, match="3 dimensions"):
        F.fractional_max_pool2d(x, 2, 2, _random_samples=fw.rand(2, 2))
    with pytest.raises(ShapeError, match="size\\(2\\) equals to 2"):
        F.fractional_max_pool2d(x, 2, 2, _random_samples=fw.rand(1, 2, 3))
    with pytest.raises(ShapeError, match="size\\(1\\)"):
        F.fractional_max_pool2d(x, 2, 2, _random_samples=fw.rand(1, 3, 2))
    with pytest.raises(ShapeError, match="size\\(0\\)"):
        F.fractional_max_pool2d(fw.randn(3, 2, 6, 6), 2, 2, _random_samples=fw.rand(2, 2, 2))
    # more sample rows than the batch: the first ones are used
    s = fw.rand(3, 2, 2)
    np.testing.assert_array_equal(
        F.fractional_max_pool2d(x, 2, 3, _random_samples=s).numpy(),
        F.fractional_max_pool2d(x, 2, 3, _random_samples=s[:1]).numpy())
    assert F.fractional_max_pool2d(fw.randn(0, 2, 6, 6), 2, 3).shape == (0, 2, 3, 3)


# -- in-place activations ------------------------------------------------------------------
_INPLACE = [
    (F.elu_, F.elu, (0.5,)), (F.selu_, F.selu, ()), (F.celu_, F.celu, (1.5,)),
    (F.hardtanh_, F.hardtanh, (-0.5, 0.8)), (F.leaky_relu_, F.leaky_relu, (0.1,)),
    (F.threshold_, F.threshold, (0.3, -2.0)), (F.relu_, F.relu, ()),
]


@pytest.mark.parametrize("fn,ref,args", _INPLACE, ids=[f[0].__name__ for f in _INPLACE])
def test_inplace_activations_modify_and_return_input(fn, ref, args):
    a = R.standard_normal((3, 4))
    x = t64(a)
    storage = x._data
    out = fn(x, *args)
    assert out is x and x._data is storage
    np.testing.assert_allclose(x.numpy(), ref(t64(a), *args).numpy())
    # autograd through the in-place write on a non-leaf
    leaf = t64(a, grad=True)
    y = leaf * 1.0
    fn(y, *args).sum().backward()
    other = t64(a, grad=True)
    ref(other, *args).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), other.grad.numpy())
    with pytest.raises(AutogradError, match="leaf"):
        fn(t64(a, grad=True), *args)


def test_inplace_activation_errors_and_rrelu_():
    with pytest.raises(ArgumentError, match="min_val"):
        F.hardtanh_(fw.randn(3), 1.0, -1.0)
    with pytest.raises(ArgumentError, match="alpha"):
        F.celu_(fw.randn(3), 0.0)
    x = fw.tensor([-1.0, 2.0])
    assert F.rrelu_(x) is x
    np.testing.assert_allclose(x.numpy(), [-(1 / 8 + 1 / 3) / 2, 2.0])
