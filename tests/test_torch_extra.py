"""PyTorch top-level functions added in framework/ops/torch_extra.py (elementwise),
framework/ops/torch_misc.py (reductions, splitting, stacking, histogram) and
framework/dtype_info.py / settings.py (finfo, iinfo, Size, typename, threads,
determinism): values against NumPy, NaN/inf/-0.0 edge cases, errors, gradients
(gradcheck in float64), in-place methods, fw.compile (fullgraph) and ONNX export.
The products, statistics and linalg spellings are in test_torch_products.py."""

import math

import ml_dtypes
import numpy as np
import pytest

import framework as fw
from framework.autograd import gradcheck
from tests.function_checks import (check_compile_fullgraph, check_compiled_backward,
                                   check_onnx_export, rand_tensor as _rand, to_np as _np)

NAN, INF = math.nan, math.inf
FLOATS = [fw.float32, fw.float64]


def _t(a, dtype=fw.float64, grad=False):
    return fw.tensor(np.asarray(a), dtype=dtype, requires_grad=grad)


def _tol(dtype):
    return dict(rtol=2e-6, atol=1e-6) if dtype is fw.float32 else dict(rtol=1e-13, atol=1e-300)


# -- elementwise values ---------------------------------------------------------------------
WIDE = [-1e300, -1e10, -3.0, -1.0, -1e-8, -0.0, 0.0, 1e-300, 1e-8, 0.5, 1.0, 3.0, 1e10,
        1e300, INF, -INF, NAN]
UNIT = [-1.0, -0.999, -0.5, -1e-9, 0.0, 1e-9, 0.5, 0.999999, 1.0, 1.5, -2.0, NAN]
HYP = [-800.0, -710.0, -30.0, -20.5, -1.0, -1e-9, 0.0, 1e-9, 2.0, 20.0, 21.0, 700.0, 710.0,
       INF, NAN]
UNARY_CASES = {
    "asinh": (np.arcsinh, WIDE), "acosh": (np.arccosh, WIDE + [1.0 + 1e-12, 1.5, 1e8]),
    "atanh": (np.arctanh, UNIT), "asin": (np.arcsin, UNIT), "acos": (np.arccos, UNIT),
    "atan": (np.arctan, WIDE), "sinh": (np.sinh, HYP), "cosh": (np.cosh, HYP),
    "log10": (np.log10, WIDE), "sinc": (np.sinc, WIDE[2:-6] + [0.25, 2.5, -7.5]),
    "rad2deg": (np.rad2deg, WIDE), "deg2rad": (np.deg2rad, WIDE),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(UNARY_CASES))
def test_unary_values(name, dtype):
    ref, vals = UNARY_CASES[name]
    with np.errstate(over="ignore"):
        a = np.array(vals, dtype=dtype.np)
    out = getattr(fw, name)(fw.tensor(a))
    assert out.dtype is dtype and out.shape == a.shape
    with np.errstate(all="ignore"):
        want = ref(a)
    np.testing.assert_allclose(_np(out), want, **_tol(dtype))
    method = getattr(fw.tensor(a), name)()
    np.testing.assert_array_equal(_np(method), _np(out))


def test_aliases_dtypes_and_half_precision():
    assert fw.arcsinh is fw.asinh and fw.arccos is fw.acos and fw.fix(fw.tensor([-2.7])).item() \
        == -2.0
    assert fw.arctan2(fw.tensor([1.0]), fw.tensor([-1.0])).item() == pytest.approx(3 * math.pi / 4)
    for fn in (fw.asinh, fw.sinc, fw.log10, fw.rad2deg, fw.logit, fw.atanh):
        assert fn(fw.tensor([1, 2])).dtype is fw.float32  # ints promote to the default float
    # float16: computed in float32, so x*x does not overflow at |x| > 256
    h = np.array([300.0, 60000.0, -1000.0, 0.5], np.float16)
    out = fw.asinh(fw.tensor(h))
    assert out.dtype is fw.float16
    np.testing.assert_allclose(_np(out).astype(np.float64), np.arcsinh(h.astype(np.float64)),
                               rtol=1e-3)
    bf = fw.tensor([0.5, 2.0], dtype=fw.bfloat16)
    assert fw.acosh(bf + 1).dtype is fw.bfloat16 and fw.sinh(bf).dtype is fw.bfloat16


def test_frac_fix_sgn_signbit_copysign():
    x = _t([-2.5, 3.75, -0.0, 0.0, INF, NAN])
    np.testing.assert_array_equal(_np(fw.frac(x[:4])), [-0.5, 0.75, 0.0, 0.0])
    assert fw.frac(x[4:5]).isnan().item()  # inf - trunc(inf)
    np.testing.assert_array_equal(_np(fw.fix(x)), np.trunc(_np(x)))
    np.testing.assert_array_equal(_np(fw.sgn(x[:5])), np.sign(_np(x[:5])))
    assert fw.signbit(x).tolist() == [True, False, True, False, False, False]
    assert fw.signbit(fw.tensor([-3, 0, 2])).tolist() == [True, False, False]
    assert fw.signbit(fw.tensor([3], dtype=fw.uint8)).tolist() == [False]
    a, b = _rand(6), _t([-0.0, 0.0, -1.0, 2.0, -INF, INF])
    np.testing.assert_array_equal(_np(fw.copysign(a, b)), np.copysign(_np(a), _np(b)))
    np.testing.assert_array_equal(_np(fw.copysign(a, -0.0)), -np.abs(_np(a)))
    assert fw.copysign(fw.tensor([1, -2]), fw.tensor([-1, 1])).tolist() == [-1.0, 2.0]
    with pytest.raises(fw.DTypeError, match="frac"):
        fw.frac(fw.tensor([1, 2]))


def test_heaviside_logit_float_power():
    x = _t([-1.5, 0.0, 2.0, NAN, -0.0])
    np.testing.assert_array_equal(_np(fw.heaviside(x, _t(0.25))), [0, 0.25, 1, 0, 0.25])
    with pytest.raises(fw.DTypeError, match="heaviside"):
        fw.heaviside(x, fw.tensor(0.5))
    p = _t([0.0, 1e-9, 0.3, 0.5, 1.0, -0.5, 2.0, NAN])
    with np.errstate(all="ignore"):
        ref = np.log(_np(p) / (1 - _np(p)))
        np.testing.assert_allclose(_np(fw.logit(p)), ref, rtol=1e-12)
        q = np.clip(_np(p), 0.1, 0.9)
        np.testing.assert_allclose(_np(fw.logit(p, eps=0.1)), np.log(q / (1 - q)), rtol=1e-12)
    assert fw.logit(p)[[0, 4]].tolist() == [-INF, INF]
    out = fw.float_power(fw.tensor([2, 3]), 2)
    assert out.dtype is fw.float64 and out.tolist() == [4.0, 9.0]
    assert fw.float_power(2, fw.tensor([0.5], dtype=fw.float32)).dtype is fw.float64
    y = _t([2.0, 3.0])
    assert y.float_power_(fw.tensor([2, 1])) is y and y.tolist() == [4.0, 3.0]
    with pytest.raises(fw.DTypeError, match="float_power_"):
        fw.tensor([2.0]).float_power_(2)


def test_fmax_fmin_and_classification():
    a = _t([1.0, NAN, NAN, -INF, 2.0, 0.0])
    b = _t([NAN, 3.0, NAN, 1.0, 2.0, -0.0])
    np.testing.assert_array_equal(_np(fw.fmax(a, b)), np.fmax(_np(a), _np(b)))
    np.testing.assert_array_equal(_np(fw.fmin(a, b)), np.fmin(_np(a), _np(b)))
    assert fw.fmax(fw.tensor([1, 5]), fw.tensor([3, 2])).tolist() == [3, 5]
    assert fw.fmin(fw.tensor([1, 5]), fw.tensor([3.5, 2.0])).dtype is fw.float32
    x = _t([INF, -INF, NAN, 1.0])
    assert fw.isposinf(x).tolist() == [True, False, False, False]
    assert fw.isneginf(x).tolist() == [False, True, False, False]
    assert fw.isposinf(fw.tensor([1, 2])).tolist() == [False, False]
    assert fw.isreal(x).all().item() and fw.isreal(x).dtype is fw.bool
    assert fw.positive(x) is x and x.positive() is x
    with pytest.raises(fw.DTypeError, match="positive"):
        fw.positive(fw.tensor([True]))


@pytest.mark.parametrize("dtype", [fw.uint8, fw.int8, fw.int16, fw.int32, fw.int64])
def test_gcd_lcm(dtype):
    rng = np.random.default_rng(3)
    hi = min(int(np.iinfo(dtype.np).max), 10 ** 6)
    lo = 0 if dtype is fw.uint8 else -hi
    a = rng.integers(lo, hi, 40).astype(dtype.np)
    b = rng.integers(lo, hi, 40).astype(dtype.np)
    a[:3], b[:3] = [0, 0, 12], [0, 7, 0]
    g = fw.gcd(fw.tensor(a), fw.tensor(b))
    assert g.dtype is dtype
    np.testing.assert_array_equal(_np(g), np.gcd(a, b))
    small_a, small_b = np.abs(a) % 50, np.abs(b) % 50
    np.testing.assert_array_equal(_np(fw.lcm(fw.tensor(small_a), fw.tensor(small_b))),
                                  np.lcm(small_a, small_b))


def test_gcd_worst_case_and_errors():
    fib = [1, 2]
    while fib[-1] < 2 ** 62:
        fib.append(fib[-1] + fib[-2])
    a, b = fw.tensor(fib[-1]), fw.tensor(fib[-2])  # consecutive Fibonacci: most steps
    assert fw.gcd(a, b).item() == 1 and fw.lcm(fw.tensor(4), 6).item() == 12
    x = fw.tensor([12, 18])
    assert x.gcd_(fw.tensor([8, 4])) is x and x.tolist() == [4, 2]
    with pytest.raises(fw.DTypeError, match="gcd"):
        fw.gcd(fw.tensor([1.0]), fw.tensor([2.0]))
    with pytest.raises(fw.DTypeError, match="lcm"):
        fw.lcm(fw.tensor([1]), fw.tensor([2.5]))


def test_ldexp_frexp():
    x = fw.ldexp(_t([1.0, 3.0, -0.5]), fw.tensor([1000, -3, 2]))
    np.testing.assert_array_equal(_np(x), np.ldexp([1.0, 3.0, -0.5], [1000, -3, 2]))
    assert fw.ldexp(fw.tensor([1, 2]), fw.tensor([3, 4])).tolist() == [8.0, 32.0]
    vals = np.array(WIDE + [5e-324, 1e-310, 2.2250738585072014e-308, 0.75, 1 - 2 ** -53,
                            np.finfo(np.float64).max])
    for dt in (np.float64, np.float32, np.float16):
        with np.errstate(all="ignore"):
            a = vals.astype(dt)
            want_m, want_e = np.frexp(a)
        m, e = fw.frexp(fw.tensor(a))
        assert m.dtype.np == a.dtype and e.dtype is fw.int32
        np.testing.assert_array_equal(_np(m), want_m)
        np.testing.assert_array_equal(_np(e), want_e)
    r = fw.tensor([8.0]).frexp()
    assert r.mantissa.tolist() == [0.5] and r.exponent.tolist() == [4]
    with pytest.raises(fw.DTypeError, match="frexp"):
        fw.frexp(fw.tensor([1]))


@pytest.mark.parametrize("npdt", [np.float64, np.float32, np.float16, ml_dtypes.bfloat16])
def test_nextafter(npdt):
    info = ml_dtypes.finfo(npdt)
    tiny, top = float(info.smallest_normal), float(info.max)
    xs = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 3.3, -7.1, tiny, tiny, top, top, INF, -INF, NAN,
          5.0, 1.0, 0.0, 4.0, -4.0]
    ys = [1.0, -1.0, 2.0, -2.0, 0.0, 0.0, -INF, INF, 0.0, 1.0, INF, 0.0, 0.0, 0.0, 1.0,
          5.0, NAN, -0.0, 0.0, 0.0]
    a, b = np.array(xs, dtype=npdt), np.array(ys, dtype=npdt)
    dt = fw.dtypes.from_numpy(a.dtype)
    out = fw.nextafter(fw.tensor(a), fw.tensor(b))
    assert out.dtype is dt
    with np.errstate(over="ignore"):
        want = np.nextafter(a, b)
    np.testing.assert_array_equal(_np(out).astype(np.float64), want.astype(np.float64))
    assert np.signbit(_np(out)[17].astype(np.float64))  # nextafter(0, -0.) is -0.
    with pytest.raises(fw.DTypeError, match="nextafter"):
        fw.nextafter(fw.tensor([1]), fw.tensor([2]))


def test_inplace_variants():
    x = _t([0.5, -2.0])
    for name in ("asinh", "log10", "frac", "fix", "sgn", "rad2deg", "deg2rad", "logit", "sinc"):
        y = x.clone()
        assert getattr(y, name + "_")() is y
        np.testing.assert_array_equal(_np(y), _np(getattr(fw, name)(x)))
    y = x.clone()
    y.copysign_(_t([-1.0, 1.0]))
    assert y.tolist() == [-0.5, 2.0]
    y = x.clone()
    y.ldexp_(fw.tensor([2, 1]))
    assert y.tolist() == [2.0, -4.0]
    with pytest.raises(fw.DTypeError, match="asinh_"):
        fw.tensor([1, 2]).asinh_()


# -- gradients -------------------------------------------------------------------------------
def _pts(*vals):
    return _t(list(vals), grad=True)


GRAD_CASES = {
    "asin": (fw.asin, lambda: [_rand(5, lo=-0.9, hi=0.9, grad=True)]),
    "acos": (fw.acos, lambda: [_rand(5, lo=-0.9, hi=0.9, grad=True)]),
    "atan": (fw.atan, lambda: [_rand(5, grad=True)]),
    "sinh": (fw.sinh, lambda: [_pts(-3.0, -1e-3, 0.0, 2.0)]),
    "sinh_far": (fw.sinh, lambda: [_pts(-20.5, 20.5)]),
    "cosh": (fw.cosh, lambda: [_pts(-3.0, -1e-3, 0.0, 2.0)]),
    "cosh_far": (fw.cosh, lambda: [_pts(-20.5, 20.5)]),
    "asinh": (fw.asinh, lambda: [_pts(-1e9, -3.0, -1e-3, 0.0, 0.5, 2.0, 1e9)]),
    "acosh": (fw.acosh, lambda: [_pts(1.01, 1.5, 3.0, 1e9)]),
    "atanh": (fw.atanh, lambda: [_rand(5, lo=-0.9, hi=0.9, grad=True)]),
    "log10": (fw.log10, lambda: [_rand(5, lo=0.1, hi=3, grad=True)]),
    "sinc": (fw.sinc, lambda: [_pts(-1.3, 0.0, 0.4, 2.2)]),
    "frac": (fw.frac, lambda: [_rand(5, grad=True)]),
    "copysign": (fw.copysign, lambda: [_rand(5, grad=True), _rand(5, seed=1, grad=True)]),
    "logit": (fw.logit, lambda: [_rand(5, lo=0.05, hi=0.95, grad=True)]),
    "logit_eps": (lambda x: fw.logit(x, 0.2), lambda: [_rand(6, lo=0.05, hi=0.95, grad=True)]),
    "float_power": (fw.float_power, lambda: [_rand(4, lo=0.5, hi=2, grad=True),
                                             _rand(4, seed=1, grad=True)]),
    "rad2deg": (fw.rad2deg, lambda: [_rand(3, grad=True)]),
    "fmax": (fw.fmax, lambda: [_rand(5, grad=True), _rand(5, seed=1, grad=True)]),
    "fmin": (fw.fmin, lambda: [_rand(5, grad=True), _rand(5, seed=1, grad=True)]),
    "ldexp": (lambda x: fw.ldexp(x, fw.tensor([1, 2, -3, 0, 5])), lambda: [_rand(5, grad=True)]),
    "frexp": (lambda x: fw.frexp(x).mantissa, lambda: [_rand(5, grad=True)]),
    "nansum": (lambda x: fw.nansum(x, 0), lambda: [_pts(1.5, NAN, -0.5)]),
    "nanmean": (fw.nanmean, lambda: [_pts(1.5, NAN, -0.5)]),
    "aminmax": (lambda x: fw.aminmax(x, dim=1), lambda: [_rand(3, 4, grad=True)]),
    "renorm": (lambda x: fw.renorm(x, 2, 0, 1.0), lambda: [_rand(3, 4, grad=True)]),
    "renorm_1d": (lambda x: fw.renorm(x, 3, 0, 0.5), lambda: [_rand(4, grad=True)]),
    "diagflat": (fw.diagflat, lambda: [_rand(2, 2, grad=True)]),
    "column_stack": (lambda a, b: fw.column_stack([a, b]),
                     lambda: [_rand(3, grad=True), _rand(3, 2, seed=1, grad=True)]),
    "tensor_split": (lambda x: fw.tensor_split(x, [2, 5], 1), lambda: [_rand(2, 7, grad=True)]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients(name):
    fn, make = GRAD_CASES[name]
    assert gradcheck(fn, tuple(make()))


def test_gradients_at_special_points():
    for fn, want in ((fw.asinh, 1.0), (fw.atanh, 1.0), (fw.sinh, 1.0), (fw.asin, 1.0),
                     (fw.sinc, 0.0), (fw.atan, 1.0)):
        x = _t([0.0], grad=True)
        fn(x).sum().backward()
        assert x.grad.tolist() == [want], fn.__name__
    x = _t([0.0, 1.0, 0.5], grad=True)
    with np.errstate(all="ignore"):
        fw.logit(x).sum().backward()
    assert x.grad.tolist() == [INF, INF, 4.0]
    x = _t([0.05, 0.5], grad=True)
    fw.logit(x, eps=0.1).sum().backward()
    assert x.grad.tolist() == [0.0, 4.0]  # clamped: no gradient outside [eps, 1 - eps]


# -- reductions ------------------------------------------------------------------------------
def test_count_nonzero_nansum_nanmean():
    a = np.random.default_rng(0).standard_normal((3, 4))
    a[0, 1], a[2, 2], a[1, :] = NAN, 0.0, NAN
    x = fw.tensor(a)
    np.testing.assert_array_equal(_np(fw.count_nonzero(x, 1)), np.count_nonzero(a, 1))
    assert fw.count_nonzero(x).item() == np.count_nonzero(a)
    assert x.count_nonzero((0, 1)).dtype is fw.int64
    np.testing.assert_allclose(_np(fw.nansum(x, 0)), np.nansum(a, 0), rtol=1e-12)
    np.testing.assert_allclose(_np(x.nansum(1, keepdim=True)), np.nansum(a, 1, keepdims=True))
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="empty slice"):
        want = np.nanmean(a, 1)
    np.testing.assert_allclose(_np(fw.nanmean(x, 1)), want, rtol=1e-12)  # all-NaN row: NaN
    assert fw.nansum(fw.tensor([1, 2])).item() == 3
    assert fw.nanmean(fw.tensor([1, 2]), dtype=fw.float64).item() == 1.5
    with pytest.raises(fw.DTypeError, match="nanmean"):
        fw.nanmean(fw.tensor([1, 2]))


def test_aminmax_and_isin():
    a = np.random.default_rng(1).standard_normal((3, 4))
    r = fw.aminmax(fw.tensor(a), dim=0, keepdim=True)
    assert r.min.shape == (1, 4) and type(r).__name__ == "aminmax"
    np.testing.assert_array_equal(_np(r.min), a.min(0, keepdims=True))
    np.testing.assert_array_equal(_np(r.max), a.max(0, keepdims=True))
    mn, mx = fw.tensor(a).aminmax()
    assert (mn.item(), mx.item()) == (a.min(), a.max())
    assert fw.aminmax(fw.tensor([1.0, NAN])).max.isnan().item()
    with pytest.raises(fw.ShapeError, match="aminmax"):
        fw.aminmax(fw.zeros(0, 3), dim=0)
    e = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(_np(fw.isin(fw.tensor(e), fw.tensor([2, 3]))),
                                  np.isin(e, [2, 3]))
    np.testing.assert_array_equal(_np(fw.isin(fw.tensor(e), 3, invert=True)), e != 3)
    assert fw.isin(3, fw.tensor(e)).item() and fw.isin(3, fw.tensor(e)).ndim == 0
    assert fw.isin(fw.tensor([1.0, NAN]), fw.tensor([NAN, 1.0])).tolist() == [True, False]
    with pytest.raises(TypeError, match="isin"):
        fw.isin(1, 2)


# -- splitting and stacking -------------------------------------------------------------------
@pytest.mark.parametrize("spec", [3, 4, 11, [2, 5], [7, 3, 20], [-3], []])
def test_tensor_split(spec):
    z = np.arange(20).reshape(2, 10)
    got = fw.tensor_split(fw.tensor(z), spec, dim=1)
    want = np.array_split(z, spec, 1) if isinstance(spec, int) else np.split(z, spec, 1)
    assert [g.tolist() for g in got] == [w.tolist() for w in want]
    t = fw.tensor(z).tensor_split(fw.tensor(spec) if isinstance(spec, int) else
                                  fw.tensor(spec, dtype=fw.int64), 1)
    assert [g.tolist() for g in t] == [w.tolist() for w in want]


def test_hsplit_vsplit_dsplit_and_errors():
    x = fw.arange(24).reshape(2, 3, 4)
    assert [t.shape for t in fw.hsplit(x, 3)] == [(2, 1, 4)] * 3
    assert [t.shape for t in fw.vsplit(x, [1])] == [(1, 3, 4), (1, 3, 4)]
    assert [t.shape for t in fw.dsplit(x, 2)] == [(2, 3, 2)] * 2
    assert [t.tolist() for t in fw.hsplit(fw.arange(4), 2)] == [[0, 1], [2, 3]]
    with pytest.raises(fw.ArgumentError, match="dsplit"):
        fw.dsplit(x, 3)
    with pytest.raises(fw.ShapeError, match="vsplit"):
        fw.vsplit(fw.arange(4), 2)
    with pytest.raises(fw.ArgumentError, match="sections"):
        fw.tensor_split(x, 0)
    with pytest.raises(fw.ShapeError, match="tensor_split"):
        fw.tensor_split(fw.tensor(1.0), 2)
    with pytest.raises(fw.DTypeError, match="tensor_split"):
        fw.tensor_split(x, fw.tensor([1.0]))


def test_atleast_and_stacks():
    s, v, m = fw.tensor(1.0), fw.tensor([1.0, 2.0]), fw.ones(2, 3)
    assert fw.atleast_1d(s).shape == (1,) and fw.atleast_1d(v) is v
    assert [t.shape for t in fw.atleast_2d(s, v, m)] == [(1, 1), (1, 2), (2, 3)]
    assert [t.shape for t in fw.atleast_3d([s, v, m])] == [(1, 1, 1), (1, 2, 1), (2, 3, 1)]
    for name, a in (("atleast_1d", np.float64(2)), ("atleast_2d", np.arange(3.0)),
                    ("atleast_3d", np.ones((2, 3)))):
        assert getattr(fw, name)(fw.tensor(a)).shape == getattr(np, name)(a).shape
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(_np(fw.dstack([fw.tensor(a), fw.tensor(a)])),
                                  np.dstack([a, a]))
    np.testing.assert_array_equal(_np(fw.column_stack([fw.arange(2), fw.tensor([[5, 6],
                                                                                [7, 8]])])),
                                  np.column_stack([np.arange(2), [[5, 6], [7, 8]]]))
    np.testing.assert_array_equal(_np(fw.row_stack([fw.arange(3), fw.tensor(a)])),
                                  np.vstack([np.arange(3), a]))
    np.testing.assert_array_equal(_np(fw.diagflat(fw.tensor([[1, 2], [3, 4]]), -1)),
                                  np.diagflat([[1, 2], [3, 4]], -1))
    assert fw.tensor(5.0).diagflat().shape == (1, 1)
    with pytest.raises(fw.ArgumentError, match="dstack"):
        fw.dstack([])


def test_unravel_index():
    idx = np.array([[0, 5], [11, 7]])
    got = fw.unravel_index(fw.tensor(idx), (3, 4))
    for g, w in zip(got, np.unravel_index(idx, (3, 4))):
        assert g.dtype is fw.int64 and g.tolist() == w.tolist()
    assert [t.tolist() for t in fw.unravel_index(fw.tensor([-1, -12]), (3, 4))] == \
        [[2, 0], [3, 0]]
    assert [t.item() for t in fw.unravel_index(22, (2, 3, 4))] == [1, 2, 2]
    with pytest.raises(fw.FwIndexError, match="unravel_index"):
        fw.unravel_index(fw.tensor([12]), (3, 4))
    with pytest.raises(fw.DTypeError, match="indices"):
        fw.unravel_index(fw.tensor([1.0]), (3, 4))


def _renorm_ref(x, p, dim, maxnorm):
    out = []
    for s in np.moveaxis(x, dim, 0):
        n = np.sum(np.abs(s) ** p) ** (1 / p)
        out.append(s * (maxnorm / (n + 1e-7) if n > maxnorm else 1.0))
    return np.moveaxis(np.array(out), 0, dim)


def test_renorm_and_is_nonzero():
    a = np.random.default_rng(2).standard_normal((3, 4, 2))
    for p, dim, mx in ((2, 0, 1.0), (1, 1, 1.5), (3.5, -1, 0.7)):
        np.testing.assert_allclose(_np(fw.renorm(fw.tensor(a), p, dim, mx)),
                                   _renorm_ref(a, p, dim, mx), rtol=1e-12)
    x = fw.tensor(a)
    assert x.renorm_(2, 0, 0.5) is x
    np.testing.assert_allclose(_np(x), _renorm_ref(a, 2, 0, 0.5), rtol=1e-12)
    with pytest.raises(fw.ArgumentError, match="renorm"):
        fw.renorm(x, 0, 0, 1.0)
    with pytest.raises(fw.ArgumentError, match="maxnorm"):
        fw.renorm(x, 2, 0, -1.0)
    assert fw.is_nonzero(fw.tensor([0.5])) is True and fw.tensor(0).is_nonzero() is False
    with pytest.raises(ValueError, match="more than one value"):
        fw.is_nonzero(fw.tensor([1, 2]))
    with pytest.raises(ValueError, match="no values"):
        fw.is_nonzero(fw.tensor([]))


# -- histogram (host computed) -----------------------------------------------------------------
def test_histogram_values():
    v = np.random.default_rng(4).standard_normal(200)
    h, e = fw.histogram(fw.tensor(v), 7)
    nh, ne = np.histogram(v, 7)
    assert h.dtype is fw.float64 and type(fw.histogram(fw.tensor(v))).__name__ == "histogram"
    np.testing.assert_array_equal(_np(h), nh)
    np.testing.assert_allclose(_np(e), ne, rtol=1e-14)
    edges = [-1.0, 0.0, 0.5, 2.0]
    h, e = fw.histogram(fw.tensor(v), _t(edges), weight=fw.tensor(np.abs(v)),
                        density=True)
    nh, _ = np.histogram(v, edges, weights=np.abs(v), density=True)
    np.testing.assert_allclose(_np(h), nh, rtol=1e-12)
    assert e.tolist() == edges
    h, e = fw.tensor(v, dtype=fw.float32).histogram(5, range=(-1, 1))
    nh, ne = np.histogram(v.astype(np.float32), 5, range=(-1, 1))
    assert h.dtype is fw.float32 and e.dtype is fw.float32
    np.testing.assert_array_equal(_np(h), nh)
    h, e = fw.histogram(fw.full((4,), 2.0), 2)  # constant input: the range widens by 0.5
    assert e.tolist() == [1.5, 2.0, 2.5] and h.tolist() == [0.0, 4.0]


def test_histogram_errors_and_graph_break():
    x = fw.tensor([1.0, 2.0])
    with pytest.raises(fw.DTypeError, match="histogram"):
        fw.histogram(fw.tensor([1, 2]))
    with pytest.raises(fw.ArgumentError, match="bins"):
        fw.histogram(x, 0)
    with pytest.raises(fw.ArgumentError, match="monotonically"):
        fw.histogram(x, fw.tensor([1.0, 0.0]))
    with pytest.raises(fw.ArgumentError, match="min"):
        fw.histogram(x, 2, range=(3, 1))
    with pytest.raises(fw.ArgumentError, match="not finite"):
        fw.histogram(fw.tensor([1.0, INF]), 2)
    with pytest.raises(fw.ShapeError, match="weight"):
        fw.histogram(x, 2, weight=fw.ones(3))
    fn = fw.compile(lambda t: fw.histogram(t, 3).hist, fullgraph=True, mode="always")
    with pytest.raises(fw.GraphBreak):
        fn(x)


def test_histogramdd_matches_numpy_and_pytorch_docs():
    x = fw.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [2.0, 2.0]])
    h, edges = fw.histogramdd(x, bins=[3, 3], weight=fw.tensor([1.0, 2.0, 4.0, 8.0]))
    assert type(fw.histogramdd(x)).__name__ == "histogramdd"
    assert h.tolist() == [[0, 1, 0], [2, 0, 0], [4, 0, 8]]
    np.testing.assert_allclose(_np(edges[0]), [0, 2 / 3, 4 / 3, 2], rtol=1e-6)
    h, _ = fw.histogramdd(x, bins=[2, 2], range=[0.0, 1.0, 0.0, 1.0], density=True)
    assert h.tolist() == [[0, 2], [2, 0]]
    pts = np.random.default_rng(7).standard_normal((3, 40, 3))
    ex = [np.array([-2.0, 0.0, 0.3, 2.0]), np.array([-1.0, 1.0]), np.array([-3.0, 0.0, 3.0])]
    h, edges = fw.histogramdd(fw.tensor(pts), [fw.tensor(e) for e in ex],
                              weight=fw.tensor(np.abs(pts[..., 0])))
    nh, _ = np.histogramdd(pts.reshape(-1, 3), ex, weights=np.abs(pts[..., 0]).reshape(-1))
    np.testing.assert_allclose(_np(h), nh, rtol=1e-12)
    assert [e.tolist() for e in edges] == [e.tolist() for e in ex]
    h, _ = fw.histogramdd(fw.tensor(pts, dtype=fw.float32), 4)
    nh, _ = np.histogramdd(pts.reshape(-1, 3).astype(np.float32), 4)
    assert h.dtype is fw.float32
    np.testing.assert_array_equal(_np(h), nh)


def test_histogramdd_errors():
    x = fw.ones(5, 2)
    with pytest.raises(fw.ShapeError, match="at least 2 dimensions"):
        fw.histogramdd(fw.ones(3))
    with pytest.raises(fw.DTypeError, match="floating-point"):
        fw.histogramdd(fw.ones(3, 2, dtype=fw.int64))
    with pytest.raises(fw.ArgumentError, match="bins"):
        fw.histogramdd(x, [2, 2, 2])
    with pytest.raises(fw.ArgumentError, match="range should have 4"):
        fw.histogramdd(x, 2, range=[0.0, 1.0])
    with pytest.raises(fw.ShapeError, match="weight"):
        fw.histogramdd(x, 2, weight=fw.ones(4))
    with pytest.raises(fw.ArgumentError, match="monotonically"):
        fw.histogramdd(x, [fw.tensor([1.0, 0.0]), fw.tensor([0.0, 1.0])])


# -- dtype info and settings ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [fw.float16, fw.bfloat16, fw.float32, fw.float64])
def test_finfo(dtype):
    info, ref = fw.finfo(dtype), ml_dtypes.finfo(dtype.np)
    assert info.bits == ref.bits and info.dtype == dtype.name
    assert (info.eps, info.max, info.min) == (float(ref.eps), float(ref.max), float(ref.min))
    assert info.tiny == info.smallest_normal == float(ref.smallest_normal)
    assert info.resolution == 10.0 ** -ref.precision
    assert fw.finfo(dtype) == info and dtype.name in repr(info)


def test_iinfo_finfo_defaults_and_errors():
    for dt in (fw.uint8, fw.int8, fw.int16, fw.int32, fw.int64):
        info, ref = fw.iinfo(dt), np.iinfo(dt.np)
        assert (info.bits, info.min, info.max, info.dtype) == (ref.bits, ref.min, ref.max,
                                                              dt.name)
    assert fw.finfo().dtype == "float32" and fw.finfo(fw.float64).eps == 2.0 ** -52
    assert fw.finfo(fw.bfloat16).resolution == 0.01
    with pytest.raises(TypeError, match="finfo"):
        fw.finfo(fw.int32)
    with pytest.raises(TypeError, match="iinfo"):
        fw.iinfo(fw.float32)
    with pytest.raises(TypeError, match="iinfo"):
        fw.iinfo(fw.bool)


def test_size_typename_and_settings():
    s = fw.ones(2, 3, 4).size()
    assert isinstance(s, fw.Size) and isinstance(s, tuple) and s == (2, 3, 4)
    assert s.numel() == 24 and isinstance(s[1:], fw.Size) and s[1:] == (3, 4)
    assert isinstance(s + (5,), fw.Size) and repr(s) == "framework.Size([2, 3, 4])"
    assert fw.Size([]).numel() == 1 and fw.ones(2).size(0) == 2
    assert fw.typename(fw.ones(1)) == "framework.FloatTensor"
    assert fw.typename(fw.tensor([1])) == "framework.LongTensor"
    assert fw.typename(np.zeros(1)) == "numpy.ndarray" and fw.typename(3) == "int"
    old = fw.get_num_threads()
    assert isinstance(old, int) and old >= 1
    try:
        fw.set_num_threads(1)
        assert fw.get_num_threads() == 1
    finally:
        fw.set_num_threads(old)
    with pytest.raises(ValueError, match="set_num_threads"):
        fw.set_num_threads(0)
    assert fw.are_deterministic_algorithms_enabled() is False
    try:
        fw.use_deterministic_algorithms(True, warn_only=True)
        assert fw.are_deterministic_algorithms_enabled()
        assert fw.is_deterministic_algorithms_warn_only_enabled()
    finally:
        fw.use_deterministic_algorithms(False)
    assert not fw.are_deterministic_algorithms_enabled()


# -- fw.compile and ONNX -------------------------------------------------------------------------
COMPILE_CASES = {
    "sinc": lambda x, y: fw.sinc(x * y),
    "logit": lambda x, y: fw.logit(x.sigmoid(), 1e-3) + fw.logit(y.sigmoid()),
    "nanmean": lambda x, y: fw.nanmean(fw.where(x > 1, NAN, x), 1) + fw.nansum(x, 0).sum(),
    "hyperbolic": lambda x, y: (fw.asinh(x * 1e5) + fw.acosh(x.abs() + 1) +
                                fw.atanh(x.tanh()) + fw.sinh(x) + fw.cosh(y) + fw.atan(x)),
    "frexp": lambda x, y: fw.frexp(x * 100).mantissa + fw.frexp(x).exponent,
    "nextafter": lambda x, y: fw.nextafter(x, y) - x,
    "gcd": lambda x, y: fw.gcd((x * 100).to(fw.int16), (y * 60).to(fw.int16)),
    "pointwise": lambda x, y: (fw.copysign(x, y) + fw.fmax(x, y) + fw.heaviside(x, y) +
                               fw.log10(x.abs()) + fw.frac(x) + fw.ldexp(x, fw.tensor([2])) +
                               fw.signbit(x) + fw.isin(x.round(), y.round())),
    "misc": lambda x, y: (fw.count_nonzero(x.round(), 0) + fw.aminmax(x).max +
                          fw.renorm(x, 2, 0, 1.0).sum(0) + fw.tensor_split(x, 2, 1)[1].sum()),
}


@pytest.mark.parametrize("name", sorted(COMPILE_CASES))
def test_compile_fullgraph_matches_eager(name, monkeypatch):
    check_compile_fullgraph(COMPILE_CASES[name], monkeypatch)


def test_compile_backward_through_composites(monkeypatch):
    def step(x):
        loss = (fw.asinh(x) + fw.sinc(x) + fw.logit(x.sigmoid())).sum() + fw.nanmean(x)
        loss.backward()
        return loss

    check_compiled_backward(step, monkeypatch)


@pytest.mark.parametrize("name", ["sinc", "logit", "hyperbolic", "frexp", "pointwise"])
def test_onnx_export_verify(name):
    check_onnx_export(COMPILE_CASES[name])
