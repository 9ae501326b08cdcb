"""fw.special: values vs mpmath / math (float32, float64; negatives, poles, large x,
NaN/Inf), gradients (gradcheck, float64), compiled (fullgraph) == eager, ONNX export."""

import math

import mpmath
import numpy as np
import pytest

import framework as fw

S = fw.special
RNG = np.random.default_rng(7)


def _mp(fn, xs):
    with mpmath.workdps(40):
        return np.array([float(fn(mpmath.mpf(float(x)))) for x in xs])


def _rel(got, want):
    return np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300))


CASES = [
    ("gammaln", lambda m, x: m.log(abs(m.gamma(x))),
     np.concatenate([RNG.uniform(-30, -0.1, 200), RNG.uniform(2.2, 1e4, 200)])),
    ("digamma", lambda m, x: m.digamma(x),
     np.concatenate([RNG.uniform(-30, 0, 200), RNG.uniform(2, 1e5, 200)])),
    ("erfc", lambda m, x: m.erfc(x), RNG.uniform(-5, 26, 400)),
    ("erfinv", lambda m, x: m.erfinv(x),
     np.concatenate([RNG.uniform(-1, 1, 300), 1 - 10 ** RNG.uniform(-15, -1, 100)])),
    ("i0", lambda m, x: m.besseli(0, x), RNG.uniform(-700, 700, 300)),
    ("i1", lambda m, x: m.besseli(1, x), RNG.uniform(-700, 700, 300)),
    ("i0e", lambda m, x: m.besseli(0, x) * m.exp(-abs(x)), RNG.uniform(-1e4, 1e4, 300)),
    ("i1e", lambda m, x: m.besseli(1, x) * m.exp(-abs(x)), RNG.uniform(-1e4, 1e4, 300)),
]


@pytest.mark.parametrize("name,ref,xs", CASES, ids=[c[0] for c in CASES])
def test_values_vs_mpmath(name, ref, xs):
    xs = xs[xs != np.round(xs)]
    want = _mp(lambda x: ref(mpmath, x), xs)
    got64 = getattr(S, name)(fw.tensor(xs, dtype=fw.float64)).numpy()
    assert _rel(got64, want) < 1e-12
    x32 = xs.astype(np.float32)
    want32 = _mp(lambda x: ref(mpmath, x), x32)
    ok = np.isfinite(want32) & (np.abs(want32) < 3e38) & (np.abs(want32) > 1e-37)
    got32 = getattr(S, name)(fw.tensor(x32)).numpy().astype(np.float64)
    assert _rel(got32[ok], want32[ok]) < 2e-6


def test_polygamma_values():
    xs = np.concatenate([RNG.uniform(-8, -0.01, 100), RNG.uniform(0.01, 50, 100)])
    for n in (1, 2, 3, 4):
        want = _mp(lambda x: mpmath.polygamma(n, x), xs)
        got = fw.polygamma(n, fw.tensor(xs, dtype=fw.float64)).numpy()
        assert _rel(got, want) < 1e-11, n
    assert fw.polygamma(0, fw.tensor([2.0])).item() == pytest.approx(1 - 0.5772156649015329)


def test_scalars_vs_math():
    xs = [0.1, 0.5, 1.5, 3.7, 10.0, 171.5, -0.5, -3.3]
    got = fw.lgamma(fw.tensor(xs, dtype=fw.float64)).numpy()
    np.testing.assert_allclose(got, [math.lgamma(x) for x in xs], rtol=1e-13)
    xs = [-3.0, -0.2, 0.3, 2.0, 6.0, 20.0]
    got = fw.erfc(fw.tensor(xs, dtype=fw.float64)).numpy()
    np.testing.assert_allclose(got, [math.erfc(x) for x in xs], rtol=1e-14)


def test_edge_values_follow_pytorch():
    inf, nan = math.inf, math.nan
    x = fw.tensor([0.0, -0.0, -1.0, -2.0, 1.0, 2.0, inf, -inf, nan], dtype=fw.float64)
    np.testing.assert_array_equal(fw.lgamma(x).numpy(), [inf, inf, inf, inf, 0, 0, inf, inf, nan])
    np.testing.assert_array_equal(fw.digamma(x).numpy()[[0, 1, 2, 3, 6, 7, 8]],
                                  [-inf, inf, nan, nan, inf, nan, nan])
    np.testing.assert_array_equal(fw.polygamma(1, x).numpy()[[0, 2, 6, 8]], [inf, inf, 0, nan])
    np.testing.assert_array_equal(fw.erfinv(fw.tensor([1.0, -1.0, 2.0, 0.0])).numpy(),
                                  [inf, -inf, nan, 0.0])
    np.testing.assert_array_equal(fw.erfc(fw.tensor([inf, -inf, 30.0])).numpy(), [0, 2, 0])
    np.testing.assert_array_equal(fw.i0(fw.tensor([inf, -inf, 0.0])).numpy(), [inf, inf, 1])
    np.testing.assert_array_equal(S.i1(fw.tensor([inf, -inf, 0.0])).numpy(), [inf, -inf, 0])
    assert fw.lgamma(fw.tensor([3])).dtype is fw.float32  # ints promote


def test_composites():
    x = fw.tensor([-40.0, -8.0, -3.0, 0.0, 4.0], dtype=fw.float64)
    want = _mp(lambda v: mpmath.log(mpmath.ncdf(v)), x.numpy())
    np.testing.assert_allclose(S.log_ndtr(x).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(S.ndtr(x).numpy(), _mp(mpmath.ncdf, x.numpy()), rtol=1e-13)
    p = fw.tensor([1e-3, 0.1, 0.5, 0.9, 1 - 1e-9], dtype=fw.float64)
    want = _mp(lambda v: -mpmath.sqrt(2) * mpmath.erfinv(1 - 2 * v), p.numpy())
    np.testing.assert_allclose(S.ndtri(p).numpy(), want, rtol=1e-9)
    np.testing.assert_allclose(S.sinc(fw.tensor([0.0, 0.5])).numpy(), [1.0, 2 / math.pi])
    np.testing.assert_allclose(S.entr(fw.tensor([0.0, 0.5, -1.0])).numpy(),
                               [0.0, 0.5 * math.log(2), -math.inf])
    np.testing.assert_allclose(S.xlogy(fw.tensor([0.0, 2.0]), fw.tensor([0.0, 3.0])).numpy(),
                               [0.0, 2 * math.log(3)], rtol=1e-6)
    assert math.isnan(S.xlogy(fw.tensor([0.0]), fw.tensor([math.nan])).item())
    np.testing.assert_allclose(S.xlog1py(fw.tensor([0.0, 2.0]), fw.tensor([-1.0, 3.0])).numpy(),
                               [0.0, 2 * math.log(4)], rtol=1e-6)
    a = fw.tensor([2.5, 4.0], dtype=fw.float64)
    want = [float(mpmath.log(mpmath.pi) * 1.5 + sum(mpmath.loggamma(v - j / 2) for j in range(3)))
            for v in (2.5, 4.0)]
    np.testing.assert_allclose(S.multigammaln(a, 3).numpy(), want, rtol=1e-12)
    with pytest.raises(fw.ArgumentError, match="multigammaln"):
        S.multigammaln(fw.tensor([0.5]), 3)
    np.testing.assert_allclose(S.logit(fw.tensor([0.25])).numpy(), [math.log(1 / 3)], rtol=1e-6)
    assert S.psi is S.digamma and S.expit(fw.tensor([0.0])).item() == 0.5
    assert fw.tensor([1.5]).lgamma().item() == pytest.approx(math.lgamma(1.5))


def test_errors_name_the_op():
    with pytest.raises(fw.ArgumentError, match="polygamma"):
        fw.polygamma(-1, fw.tensor([1.0]))
    with pytest.raises(TypeError, match="polygamma"):
        fw.polygamma(1.5, fw.tensor([1.0]))


GRAD_FNS = {
    "lgamma": fw.lgamma, "digamma": fw.digamma, "erfc": fw.erfc, "i0": fw.i0,
    "i0e": S.i0e, "i1": S.i1, "i1e": S.i1e, "polygamma2": lambda x: fw.polygamma(2, x),
    "erfinv": lambda x: fw.erfinv(x * 0.1), "log_ndtr": S.log_ndtr, "ndtri":
    lambda x: S.ndtri(x.abs() * 0.1 + 0.05), "xlog1py": lambda x: S.xlog1py(x, x.abs()),
}


@pytest.mark.parametrize("name", sorted(GRAD_FNS))
def test_gradcheck(name):
    x = fw.tensor([-2.6, -0.7, 0.4, 1.3, 5.2, 9.1], dtype=fw.float64, requires_grad=True)
    assert fw.autograd.gradcheck(GRAD_FNS[name], (x,))


def test_second_order():
    x = fw.tensor([0.7, 2.5], dtype=fw.float64, requires_grad=True)
    assert fw.autograd.gradgradcheck(fw.digamma, (x,))
    assert fw.autograd.gradgradcheck(S.i0, (x,))


def test_compiled_fullgraph_matches_eager():
    def f(x):
        return (fw.lgamma(x) + fw.digamma(x) + fw.erfc(x) + fw.i0(x) + S.i1e(x)
                + fw.polygamma(1, x) + fw.erfinv(x * 0.1) + S.log_ndtr(x))
    x = fw.tensor([-2.6, -0.7, 0.4, 1.3, 5.2, 9.1], dtype=fw.float64)
    compiled = fw.compile(f, fullgraph=True)
    np.testing.assert_allclose(compiled(x).numpy(), f(x).numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", ["lgamma", "digamma", "erfc", "erfinv", "i0", "i0e", "i1",
                                  "i1e", "polygamma"])
def test_onnx_export(name, tmp_path):
    pytest.importorskip("onnxruntime")
    fn = {"polygamma": lambda x: fw.polygamma(3, x), "erfinv": lambda x: fw.erfinv(x * 0.1)}.get(
        name, getattr(S, name, None) or getattr(fw, name))
    x = fw.tensor([-2.6, -0.7, 0.4, 1.3, 5.2, 9.1, 30.0])
    fw.onnx.export(fn, (x,), str(tmp_path / "m.onnx"), verify=True)


def test_polygamma_method_takes_the_order_first():
    x = fw.tensor([0.5, 2.0], dtype=fw.float64)
    np.testing.assert_allclose(x.polygamma(1).numpy(), fw.polygamma(1, x).numpy())
    np.testing.assert_allclose(x.polygamma(1).numpy(), [np.pi ** 2 / 2, np.pi ** 2 / 6 - 1],
                               rtol=1e-12)
