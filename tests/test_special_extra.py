"""fw.special: gammainc/gammaincc (igamma/igammac), zeta, erfcx, bessel_j0/j1,
spherical_bessel_j0, airy_ai. Values against mpmath over grids (float64 and float32, large
arguments included), PyTorch's boundary values, gradients (finite differences, and the
gradients PyTorch does not implement raise), compiled == eager, ONNX export."""

import math

import numpy as np
import pytest

import framework as fw
from tests.opinfo_special_extra import (ref_airy_ai, ref_bessel_j0, ref_bessel_j1,
                                        ref_erfcx, ref_gammainc, ref_spherical_bessel_j0,
                                        ref_zeta)

S = fw.special
inf, nan = math.inf, math.nan


def _ref(fn, *arrays):
    return np.array([fn(*(float(v) for v in vals)) for vals in zip(*arrays)])


def _rel(got, want):
    return np.abs(got - want) / np.abs(want)


def _f64(a):
    return fw.tensor(np.asarray(a, np.float64), dtype=fw.float64)


# ---------------------------------------------------------------------------------------
# incomplete gamma
def _gamma_grid(seed=0, n=120):
    g = np.random.default_rng(seed)
    a = np.concatenate([10 ** g.uniform(-8, 0, n), g.uniform(0.5, 30, n),
                        10 ** g.uniform(1, 5, n), 10 ** g.uniform(-3, 2.5, n)])
    x = np.concatenate([a[:3 * n] * 10 ** g.uniform(-1.5, 1.0, 3 * n),
                        10 ** g.uniform(-10, 2.7, n)])
    # a near x for large a: Temme's region and its edges
    big = 10 ** g.uniform(1.2, 5, n)
    a = np.concatenate([a, big])
    return a, np.concatenate([x, np.abs(big + g.normal(0, 4, n) * np.sqrt(big))])


@pytest.mark.parametrize("upper", [False, True], ids=["gammainc", "gammaincc"])
def test_incomplete_gamma_float64_vs_mpmath(upper):
    a, x = _gamma_grid()
    fn = S.gammaincc if upper else S.gammainc
    got = fn(_f64(a), _f64(x)).numpy()
    want = _ref(lambda u, v: ref_gammainc(u, v, upper), a, x)
    ok = want > 1e-300
    err = _rel(got[ok], want[ok])
    bad = err > 1e-12  # (seen: 2.3e-13 at most, at results near 1e-200: exp(-a phi))
    assert not bad.any(), list(zip(a[ok][bad], x[ok][bad], err[bad]))
    assert np.all(got[~ok] < 1e-290)


def test_incomplete_gamma_float32_vs_mpmath():
    a, x = _gamma_grid(1, 40)
    a32, x32 = a.astype(np.float32), x.astype(np.float32)
    for upper, fn in ((False, S.gammainc), (True, S.gammaincc)):
        got = fn(fw.tensor(a32), fw.tensor(x32)).numpy().astype(np.float64)
        want = _ref(lambda u, v: ref_gammainc(u, v, upper), a32, x32)
        ok = want > 1e-37
        assert _rel(got[ok], want[ok]).max() < 1e-6


def test_incomplete_gamma_complement_and_known_values():
    a, x = _gamma_grid(2, 30)
    p, q = S.gammainc(_f64(a), _f64(x)), S.gammaincc(_f64(a), _f64(x))
    np.testing.assert_allclose((p + q).numpy(), 1.0, rtol=0, atol=2e-14)
    xs = np.array([0.1, 1.0, 3.0, 50.0])
    np.testing.assert_allclose(S.gammainc(_f64(np.ones(4)), _f64(xs)).numpy(),
                               -np.expm1(-xs), rtol=1e-14)
    np.testing.assert_allclose(S.gammaincc(_f64(np.full(4, 0.5)), _f64(xs)).numpy(),
                               [math.erfc(math.sqrt(v)) for v in xs], rtol=1e-14)


def test_incomplete_gamma_boundary_values_follow_pytorch():
    a = _f64([-1, 1, 0, 0, 0, 2, inf, inf, inf, 2, nan, 1, 1e-300, 3])
    x = _f64([1, -1, 1, 0, -0.0, 0, 1, inf, 0, inf, 1, nan, 1e-300, 1e300])
    np.testing.assert_allclose(S.gammainc(a, x).numpy(),
                               [nan, nan, 1, nan, nan, 0, 0, nan, 0, 1, nan, nan,
                                ref_gammainc(1e-300, 1e-300), 1], rtol=1e-15)
    np.testing.assert_allclose(S.gammaincc(a, x).numpy(),
                               [nan, nan, 0, nan, nan, 1, 1, nan, 1, 0, nan, nan,
                                ref_gammainc(1e-300, 1e-300, True), 0], rtol=1e-15)


def test_incomplete_gamma_names_promotion_and_scalars():
    a, x = fw.tensor([1, 2, 3]), fw.tensor([2, 2, 2])
    out = fw.igamma(a, x)
    assert out.dtype is fw.float32  # ints promote to the default float dtype
    np.testing.assert_allclose(out.numpy(), [ref_gammainc(v, 2) for v in (1, 2, 3)],
                               rtol=1e-6)
    np.testing.assert_array_equal(a.igammac(x).numpy(), fw.igammac(a, x).numpy())
    np.testing.assert_array_equal(S.gammaincc(a, x).numpy(), fw.igammac(a, x).numpy())
    assert S.gammainc(fw.tensor([1.0]), _f64([2.0])).dtype is fw.float64
    np.testing.assert_allclose(S.gammainc(2.5, _f64([1.0, 4.0])).numpy(),
                               [ref_gammainc(2.5, v) for v in (1.0, 4.0)], rtol=1e-14)
    np.testing.assert_allclose(S.gammainc(_f64([[1.0], [4.0]]), 2.0).numpy().ravel(),
                               [ref_gammainc(v, 2.0) for v in (1.0, 4.0)], rtol=1e-14)
    t = fw.tensor([2.0, 3.0], dtype=fw.float64)
    assert t.igamma_(_f64([1.0, 1.0])) is t
    np.testing.assert_allclose(t.numpy(), [ref_gammainc(2, 1), ref_gammainc(3, 1)],
                               rtol=1e-14)
    t.igammac_(_f64([0.5, 0.5]))
    np.testing.assert_allclose(t.numpy(), [ref_gammainc(v, 0.5, True) for v in
                                           (ref_gammainc(2, 1), ref_gammainc(3, 1))],
                               rtol=1e-14)
    with pytest.raises(TypeError, match="igamma"):
        fw.igamma(1.0, 2.0)


# ---------------------------------------------------------------------------------------
# zeta
def test_zeta_float64_vs_mpmath():
    g = np.random.default_rng(3)
    s = np.concatenate([1 + 10 ** g.uniform(-10, 2, 200), 1 + 10 ** g.uniform(-12, -3, 50),
                        g.integers(2, 12, 60).astype(float), g.uniform(30, 300, 40)])
    q = np.concatenate([10 ** g.uniform(-5, 6, 200), 10 ** g.uniform(-2, 3, 50),
                        g.uniform(-30, 0, 60), g.uniform(0.5, 3, 40)])
    got = S.zeta(_f64(s), _f64(q)).numpy()
    want = _ref(ref_zeta, s, q)
    ok = np.isfinite(want) & (np.abs(want) > 1e-300)
    assert _rel(got[ok], want[ok]).max() < 1e-12
    s32, q32 = s[:250].astype(np.float32), q[:250].astype(np.float32)
    got32 = S.zeta(fw.tensor(s32), fw.tensor(q32)).numpy().astype(np.float64)
    want32 = _ref(ref_zeta, s32, q32)
    ok = np.isfinite(want32) & (np.abs(want32) > 1e-37) & (np.abs(want32) < 3e38)
    assert _rel(got32[ok], want32[ok]).max() < 1e-6


def test_zeta_domain_follows_pytorch():
    s = _f64([1, 1, 0.5, 2, 2, 2.5, 3, inf, inf, inf, inf, 2, nan, 2, 2])
    q = _f64([2, nan, 2, 0, -3, -1.5, -1.5, 2, 1, 0.5, -0.5, inf, 1, nan, -inf])
    want = [inf, inf, nan, inf, inf, nan, ref_zeta(3, -1.5), 0, 1, inf, nan, 0, nan, nan,
            inf]
    np.testing.assert_allclose(S.zeta(s, q).numpy(), want, rtol=1e-14)
    np.testing.assert_allclose(S.zeta(2.0, _f64([1.0])).numpy(), [math.pi ** 2 / 6],
                               rtol=1e-15)
    np.testing.assert_allclose(S.zeta(_f64([4.0]), 1.0).numpy(), [math.pi ** 4 / 90],
                               rtol=1e-15)
    assert S.zeta(fw.tensor([2]), fw.tensor([1])).dtype is fw.float32


# ---------------------------------------------------------------------------------------
# erfcx, Bessel, Airy
def test_erfcx_vs_mpmath():
    g = np.random.default_rng(4)
    x = np.concatenate([g.uniform(-26, 30, 400), 10 ** g.uniform(-8, 300, 200),
                        -(10 ** g.uniform(-8, 1.4, 100))])
    got = S.erfcx(_f64(x)).numpy()
    want = _ref(ref_erfcx, x)
    assert _rel(got, want).max() < 1e-13
    x32 = x[np.abs(x) < 1e38].astype(np.float32)
    want32 = _ref(ref_erfcx, x32)
    ok = np.isfinite(x32) & (want32 < 3e38) & (want32 > 1e-37)
    got32 = S.erfcx(fw.tensor(x32)).numpy().astype(np.float64)
    assert _rel(got32[ok], want32[ok]).max() < 1e-6
    np.testing.assert_array_equal(S.erfcx(_f64([inf, -inf, nan, 0.0, -27.0])).numpy(),
                                  [0.0, inf, nan, 1.0, inf])


def _envelope(x):
    return np.minimum(1.0, np.sqrt(2 / (np.pi * np.abs(x))))


@pytest.mark.parametrize("name", ["bessel_j0", "bessel_j1"])
def test_bessel_vs_mpmath(name):
    """Absolute error within a few ulps of the envelope sqrt(2 / (pi x)) everywhere, so
    1e-12 relative wherever |J| is above 1e-3 of the envelope (next to a zero no
    double-precision J keeps relative accuracy)."""
    g = np.random.default_rng(5)
    x = np.concatenate([g.uniform(-50, 50, 400), g.uniform(-1e4, 1e4, 150),
                        10 ** g.uniform(-10, 0, 50), 10 ** g.uniform(4, 8, 50)])
    ref = {"bessel_j0": ref_bessel_j0, "bessel_j1": ref_bessel_j1}[name]
    got = getattr(S, name)(_f64(x)).numpy()
    want = _ref(ref, x)
    env = _envelope(x)
    assert (np.abs(got - want) / env).max() < 4e-15
    far = np.abs(want) > 1e-3 * env
    assert _rel(got[far], want[far]).max() < 1e-12
    x32 = x.astype(np.float32)
    got32 = getattr(S, name)(fw.tensor(x32)).numpy().astype(np.float64)
    assert (np.abs(got32 - _ref(ref, x32)) / env).max() < 1e-7


def test_bessel_edges_and_symmetry():
    x = _f64([inf, -inf, nan, 0.0, -0.0, 1e-300])
    np.testing.assert_array_equal(S.bessel_j0(x).numpy(), [nan, nan, nan, 1, 1, 1])
    np.testing.assert_array_equal(S.bessel_j1(x).numpy(), [nan, nan, nan, 0, -0.0, 5e-301])
    v = _f64(np.linspace(-40, 40, 81))
    np.testing.assert_array_equal(S.bessel_j0(v).numpy(), S.bessel_j0(-v).numpy())
    np.testing.assert_array_equal(S.bessel_j1(v).numpy(), -S.bessel_j1(-v).numpy())
    np.testing.assert_array_equal(S.spherical_bessel_j0(x).numpy(), [0, 0, nan, 1, 1, 1])


def test_spherical_bessel_j0_vs_mpmath():
    g = np.random.default_rng(6)
    x = np.concatenate([g.uniform(-1, 1, 200), g.uniform(-1e4, 1e4, 200),
                        10 ** g.uniform(-10, 0, 50)])
    got = S.spherical_bessel_j0(_f64(x)).numpy()
    want = _ref(ref_spherical_bessel_j0, x)
    assert (np.abs(got - want) / np.minimum(1, 1 / np.abs(x))).max() < 1e-15


def _airy_envelope(x, ai):
    """1 / (sqrt(pi) |x|^(1/4)) for x < 0, |Ai| itself for x >= 0."""
    neg = x < 0
    return np.where(neg, 1 / (np.sqrt(np.pi) * np.where(neg, -x, 1.0) ** 0.25), np.abs(ai))


def test_airy_ai_vs_mpmath():
    """Relative 1e-12 for x >= -5 (away from the zeros), and within 5e-13 of the envelope
    1 / (sqrt(pi) |x|^(1/4)) for -100 <= x < -5, where the phase 2/3 |x|^(3/2) rounds."""
    g = np.random.default_rng(7)
    x = np.concatenate([g.uniform(-5, 2.5, 300), g.uniform(2.5, 100, 200),
                        g.uniform(-100, -5, 300), [-5.0, 2.5, 0.0, -1e-300]])
    got = S.airy_ai(_f64(x)).numpy()
    want = _ref(ref_airy_ai, x)
    env = _airy_envelope(x, want)
    assert (np.abs(got - want) / env).max() < 5e-13
    right = (x >= -5) & (np.abs(want) > 1e-3 * env)
    assert _rel(got[right], want[right]).max() < 1e-12
    x32 = x.astype(np.float32)
    got32 = S.airy_ai(fw.tensor(x32)).numpy().astype(np.float64)
    want32 = _ref(ref_airy_ai, x32)
    env32 = _airy_envelope(x32.astype(np.float64), want32)
    ok = np.abs(want32) > 1e-36
    assert (np.abs(got32 - want32)[ok] / env32[ok]).max() < 1e-6
    np.testing.assert_array_equal(S.airy_ai(_f64([inf, -inf, nan])).numpy(), [nan] * 3)


# ---------------------------------------------------------------------------------------
# gradients
def test_gradients_vs_finite_differences():
    a = _f64([0.3, 1.5, 4.0, 20.0, 150.0])
    x = fw.tensor([0.7, 2.0, 3.5, 22.0, 140.0], dtype=fw.float64, requires_grad=True)
    for fn in (S.gammainc, S.gammaincc, fw.igamma, fw.igammac):
        assert fw.autograd.gradcheck(lambda v, fn=fn: fn(a, v), (x,))
    assert fw.autograd.gradcheck(lambda v: S.gammainc(2.5, v), (x,))
    s = _f64([1.5, 2.0, 3.5, 7.0, 2.0])
    assert fw.autograd.gradcheck(lambda v: S.zeta(s, v), (x,))
    assert fw.autograd.gradcheck(lambda v: S.zeta(3.0, v), (x,))
    xe = fw.tensor([-3.0, -0.2, 0.3, 2.0, 8.0, 150.0], dtype=fw.float64, requires_grad=True)
    assert fw.autograd.gradcheck(S.erfcx, (xe,))
    assert fw.autograd.gradgradcheck(S.erfcx, (xe,))
    assert fw.autograd.gradgradcheck(lambda v: S.gammainc(a, v), (x,))


def test_gradient_formulas_are_pytorchs():
    x = fw.tensor([0.5, 3.0], dtype=fw.float64, requires_grad=True)
    a = _f64([2.0, 0.5])
    S.gammainc(a, x).sum().backward()
    want = np.exp((a.numpy() - 1) * np.log(x.detach().numpy()) - x.detach().numpy()
                  - np.array([math.lgamma(v) for v in a.numpy()]))
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-14)
    x.grad = None
    S.zeta(a + 1.0, x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -(a + 1.0).numpy() * S.zeta(a + 2.0, x)
                               .detach().numpy(), rtol=1e-14)
    e = fw.tensor([1e3, -2.0], dtype=fw.float64, requires_grad=True)
    out = S.erfcx(e)
    out.sum().backward()
    np.testing.assert_allclose(e.grad.numpy(), 2 * e.detach().numpy() * out.detach().numpy()
                               - 2 / math.sqrt(math.pi), rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("fn,what", [(S.gammainc, "igamma: input"),
                                     (S.gammaincc, "igammac: input"), (S.zeta, "zeta")])
def test_first_argument_gradient_is_not_implemented(fn, what):
    first = fw.tensor([2.0, 3.0], dtype=fw.float64, requires_grad=True)
    out = fn(first, _f64([1.5, 2.5]))
    assert out.requires_grad  # as PyTorch: the error comes at backward
    with pytest.raises(NotImplementedError, match=f"derivative for '{what}'"):
        out.sum().backward()
    with pytest.raises(RuntimeError):  # NotImplementedError is a RuntimeError, as torch's
        fn(first, _f64([1.5, 2.5])).sum().backward()


@pytest.mark.parametrize("name", ["bessel_j0", "bessel_j1", "spherical_bessel_j0",
                                  "airy_ai"])
def test_bessel_and_airy_are_not_differentiable(name):
    x = fw.tensor([0.5, 2.0], requires_grad=True)
    out = getattr(S, name)(x)
    assert not out.requires_grad and out.grad_fn is None  # PyTorch: non_differentiable


# ---------------------------------------------------------------------------------------
# compile, ONNX
def _all_ops(a, x):
    return (S.gammainc(a, x) + S.gammaincc(x, a) * 0.5 + S.zeta(a + 1.0, x)
            + S.erfcx(x - 2.0) + S.bessel_j0(x * 7.0) - S.bessel_j1(a * 3.0)
            + S.spherical_bessel_j0(x) + S.airy_ai(x - a) + S.zeta(2.0, a) + a.igamma(1.5))


def test_compiled_fullgraph_matches_eager():
    g = np.random.default_rng(8)
    a, x = g.uniform(0.2, 30, (3, 5)), g.uniform(0.2, 30, (5,))
    for dt in (fw.float64, fw.float32):
        ta, tx = fw.tensor(a, dtype=dt), fw.tensor(x, dtype=dt)
        got = fw.compile(_all_ops, fullgraph=True)(ta, tx)
        np.testing.assert_allclose(got.numpy(), _all_ops(ta, tx).numpy(), rtol=1e-12)


def test_compiled_backward_matches_eager():
    a = _f64([0.5, 3.0, 40.0])

    def loss(x):
        return (S.gammainc(a, x) * S.zeta(3.0, x) + S.erfcx(x)).sum()
    x1 = fw.tensor([0.8, 2.0, 41.0], dtype=fw.float64, requires_grad=True)
    x2 = fw.tensor([0.8, 2.0, 41.0], dtype=fw.float64, requires_grad=True)
    loss(x1).backward()

    def step(x):
        out = loss(x)
        out.backward()
        return out
    fw.compile(step)(x2)
    np.testing.assert_allclose(x2.grad.numpy(), x1.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [fw.float64, fw.float32], ids=["f64", "f32"])
def test_onnx_export_matches_eager(dtype, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx
    g = np.random.default_rng(9)
    a = fw.tensor(np.append(g.uniform(0.2, 30, 7), [0.0, inf, nan]), dtype=dtype)
    x = fw.tensor(np.append(g.uniform(0.2, 30, 7), [1.0, 2.0, 1.0]), dtype=dtype)
    tol = dict(rtol=1e-12, atol=1e-300) if dtype is fw.float64 else dict(rtol=1e-6, atol=1e-7)
    path = str(tmp_path / "m.onnx")
    fw.onnx.export(lambda u, v: (S.gammainc(u, v), S.gammaincc(u, v), S.zeta(u + 1.0, v)),
                   (a, x), path, verify=True, **tol)
    loops = [n for n in onnx.load(path).graph.node if n.op_type == "Loop"]
    assert loops  # the fixed-count loops stay loops (the graph is the algorithm's size)
    for fn in (S.erfcx, S.bessel_j0, S.bessel_j1, S.spherical_bessel_j0, S.airy_ai):
        fw.onnx.export(fn, (x * 3.0 - 40.0,), path, verify=True, **tol)


# ---------------------------------------------------------------------------------------
def test_special_namespace_lists_the_functions():
    for name in ("gammainc", "gammaincc", "erfcx", "zeta", "bessel_j0", "bessel_j1",
                 "spherical_bessel_j0", "airy_ai"):
        assert name in S.__all__ and getattr(S, name).__doc__
    for name in ("igamma", "igammac", "igamma_", "igammac_"):
        assert callable(getattr(fw.Tensor, name))


def test_temme_table_matches_its_closed_forms():
    """C_0(eta) = 1/(lambda - 1) - 1/eta and C_1 = 1/eta^3 - 1/mu^3 - 1/mu^2 - 1/(12 mu)
    (mu = lambda - 1) against the stored Taylor coefficients, at eta = +-0.7."""
    from framework.backends.special_tables import TEMME
    for eta in (0.7, -0.7):
        lam = _lambda_of_eta(eta)
        mu = lam - 1
        c0 = 1 / mu - 1 / eta
        c1 = 1 / eta ** 3 - 1 / mu ** 3 - 1 / mu ** 2 - 1 / (12 * mu)
        for row, want in ((TEMME[0], c0), (TEMME[1], c1)):
            got = sum(c * eta ** i for i, c in enumerate(row))
            assert abs(got - want) < 1e-13 * max(1, abs(want))


def _lambda_of_eta(eta):
    """Solve lambda - 1 - log(lambda) = eta^2 / 2 on the side sign(lambda - 1) = sign(eta)."""
    import mpmath
    with mpmath.workdps(40):
        f = mpmath.mpf(eta) ** 2 / 2
        start = 1 + eta + eta ** 2 / 3
        return float(mpmath.findroot(lambda t: t - 1 - mpmath.log(t) - f, start))
