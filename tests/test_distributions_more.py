"""fw.distributions, the continuous families beyond the core set (StudentT, Cauchy,
HalfNormal, HalfCauchy, Gumbel, Weibull, Chi2, InverseGamma, Pareto, Kumaraswamy,
FisherSnedecor, VonMises): densities, entropies, moments and CDFs vs textbook formulas
(NumPy, math, mpmath), Monte-Carlo moments, reparametrized gradients (finite differences
for inverse-CDF samplers, the implicit gamma gradient vs mpmath), validation, expand."""

import math

import mpmath
import numpy as np
import pytest

import framework as fw
from framework import distributions as D
from framework.distributions.gamma import standard_gamma_slope

F64 = fw.float64
N_MC = 20000
EG = 0.5772156649015329  # Euler's gamma


def t(x, **kw):
    return fw.tensor(x, dtype=F64, **kw)


def _v(f):
    return np.vectorize(lambda *a: float(f(*a)))


_lgamma = np.vectorize(math.lgamma)
_digamma = _v(mpmath.digamma)
_gamma_p = _v(lambda a, x: mpmath.gammainc(a, 0, x, regularized=True))
_gamma_q = _v(lambda a, x: mpmath.gammainc(a, x, mpmath.inf, regularized=True))
_erf = np.vectorize(math.erf)


def _lbeta(a, b):
    return _lgamma(a) + _lgamma(b) - _lgamma(a + b)


def _kuma_moment(a, b, n):
    return b * np.exp(_lbeta(1 + n / a, b))


# name: (constructor, parameters, values in the support, log density, entropy, mean,
#        variance, cdf or None); parameters chosen so the 4th moment exists (the sample
#        variance check needs it).
CASES = {
    "StudentT": (
        lambda p: D.StudentT(*p), (np.array([6.0, 9.0, 15.0]), np.array([0.0, 1.5, -2.0]),
                                   np.array([1.0, 0.5, 3.0])),
        np.array([0.3, 1.0, -6.0]),
        lambda x, v, m, s: (_lgamma((v + 1) / 2) - _lgamma(v / 2) - 0.5 * np.log(v * np.pi)
                            - np.log(s) - (v + 1) / 2 * np.log1p(((x - m) / s) ** 2 / v)),
        lambda v, m, s: ((v + 1) / 2 * (_digamma((v + 1) / 2) - _digamma(v / 2))
                         + 0.5 * np.log(v) + _lbeta(v / 2, 0.5) + np.log(s)),
        lambda v, m, s: m, lambda v, m, s: s * s * v / (v - 2), None),
    "HalfNormal": (
        lambda p: D.HalfNormal(*p), (np.array([0.5, 1.0, 3.0]),), np.array([0.3, 2.0, 0.0]),
        lambda x, s: 0.5 * np.log(2 / np.pi) - np.log(s) - x * x / (2 * s * s),
        lambda s: 0.5 * np.log(np.pi * np.e * s * s / 2),
        lambda s: s * np.sqrt(2 / np.pi), lambda s: s * s * (1 - 2 / np.pi),
        lambda x, s: _erf(x / (s * np.sqrt(2)))),
    "Gumbel": (
        lambda p: D.Gumbel(*p), (np.array([0.0, 1.5, -2.0]), np.array([1.0, 0.5, 3.0])),
        np.array([0.3, 1.0, -6.0]),
        lambda x, m, b: -np.log(b) - (x - m) / b - np.exp(-(x - m) / b),
        lambda m, b: np.log(b) + EG + 1, lambda m, b: m + b * EG,
        lambda m, b: (np.pi * b) ** 2 / 6, lambda x, m, b: np.exp(-np.exp(-(x - m) / b))),
    "Weibull": (
        lambda p: D.Weibull(*p), (np.array([1.0, 2.0, 0.5]), np.array([0.7, 3.0, 1.5])),
        np.array([0.3, 2.5, 0.1]),
        lambda x, lam, k: np.log(k / lam) + (k - 1) * np.log(x / lam) - (x / lam) ** k,
        lambda lam, k: EG * (1 - 1 / k) + np.log(lam / k) + 1,
        lambda lam, k: lam * np.exp(_lgamma(1 + 1 / k)),
        lambda lam, k: lam ** 2 * (np.exp(_lgamma(1 + 2 / k)) - np.exp(2 * _lgamma(1 + 1 / k))),
        lambda x, lam, k: 1 - np.exp(-(x / lam) ** k)),
    "Chi2": (
        lambda p: D.Chi2(*p), (np.array([0.7, 3.0, 12.0]),), np.array([0.2, 2.0, 15.0]),
        lambda x, k: ((k / 2 - 1) * np.log(x) - x / 2 - k / 2 * np.log(2) - _lgamma(k / 2)),
        lambda k: k / 2 + np.log(2) + _lgamma(k / 2) + (1 - k / 2) * _digamma(k / 2),
        lambda k: k, lambda k: 2 * k, lambda x, k: _gamma_p(k / 2, x / 2)),
    "InverseGamma": (
        lambda p: D.InverseGamma(*p), (np.array([4.5, 6.0, 9.0]), np.array([1.0, 2.0, 0.5])),
        np.array([0.3, 0.5, 0.05]),
        lambda x, a, b: a * np.log(b) - _lgamma(a) - (a + 1) * np.log(x) - b / x,
        lambda a, b: a + np.log(b) + _lgamma(a) - (1 + a) * _digamma(a),
        lambda a, b: b / (a - 1), lambda a, b: b * b / ((a - 1) ** 2 * (a - 2)),
        lambda x, a, b: _gamma_q(a, b / x)),
    "Pareto": (
        lambda p: D.Pareto(*p), (np.array([1.0, 2.0, 0.5]), np.array([4.5, 6.0, 10.0])),
        np.array([1.3, 2.0, 0.9]),
        lambda x, xm, a: np.log(a) + a * np.log(xm) - (a + 1) * np.log(x),
        lambda xm, a: np.log(xm / a) + 1 / a + 1, lambda xm, a: a * xm / (a - 1),
        lambda xm, a: xm * xm * a / ((a - 1) ** 2 * (a - 2)),
        lambda x, xm, a: 1 - (xm / x) ** a),
    "Kumaraswamy": (
        lambda p: D.Kumaraswamy(*p), (np.array([2.0, 0.5, 5.0]), np.array([3.0, 0.7, 1.5])),
        np.array([0.2, 0.5, 0.9]),
        lambda x, a, b: np.log(a * b) + (a - 1) * np.log(x) + (b - 1) * np.log1p(-x ** a),
        lambda a, b: (1 - 1 / b) + (1 - 1 / a) * (_digamma(b + 1) + EG) - np.log(a * b),
        lambda a, b: _kuma_moment(a, b, 1),
        lambda a, b: _kuma_moment(a, b, 2) - _kuma_moment(a, b, 1) ** 2,
        lambda x, a, b: 1 - (1 - x ** a) ** b),
    "FisherSnedecor": (
        lambda p: D.FisherSnedecor(*p), (np.array([5.0, 10.0, 2.5]),
                                         np.array([12.0, 15.0, 20.0])),
        np.array([0.5, 1.0, 3.0]),
        lambda x, d1, d2: (0.5 * (d1 * np.log(d1 * x) + d2 * np.log(d2)
                                  - (d1 + d2) * np.log(d1 * x + d2)) - np.log(x)
                           - _lbeta(d1 / 2, d2 / 2)),
        None, lambda d1, d2: d2 / (d2 - 2),
        lambda d1, d2: 2 * d2 ** 2 * (d1 + d2 - 2) / (d1 * (d2 - 2) ** 2 * (d2 - 4)), None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_closed_forms(name):
    make, params, x, logp, ent, mean, var, cdf = CASES[name]
    d = make([t(p) for p in params])
    assert d.batch_shape == (3,) and d.event_shape == ()
    np.testing.assert_allclose(d.log_prob(t(x)).numpy(), logp(x, *params), rtol=1e-10)
    if ent is not None:
        np.testing.assert_allclose(d.entropy().numpy(), ent(*params), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), mean(*params), rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), var(*params), rtol=1e-10)
    np.testing.assert_allclose(d.stddev.numpy(), np.sqrt(var(*params)), rtol=1e-10)
    if cdf is not None:
        u = d.cdf(t(x))
        np.testing.assert_allclose(u.numpy(), cdf(x, *params), rtol=1e-9, atol=1e-14)
        if name not in ("Chi2", "InverseGamma"):  # no icdf for gamma-based (as PyTorch)
            np.testing.assert_allclose(d.icdf(u).numpy(), x, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", list(CASES))
def test_sample_moments_and_support(name):
    make, params = CASES[name][:2]
    d = make([t(p) for p in params])
    x = d.sample((N_MC,)).numpy()
    assert x.shape == (N_MC, 3) and x.dtype == np.float64
    mean, var = CASES[name][5](*params), CASES[name][6](*params)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / N_MC))
    mu4 = ((x - mean) ** 4).mean(0)
    tol = 5 * np.sqrt((mu4 - var ** 2) / N_MC) + 5 * var / N_MC
    assert np.all(np.abs(x.var(0) - var) < tol)
    assert bool(d.support.check(fw.tensor(x)).all())
    if d.has_rsample:
        assert d.rsample((2, 4)).shape == (2, 4, 3)


def test_cauchy_and_half_cauchy():
    loc, s = np.array([0.0, 1.5, -2.0]), np.array([1.0, 0.5, 3.0])
    x = np.array([0.3, 1.0, -6.0])
    c = D.Cauchy(t(loc), t(s))
    z = (x - loc) / s
    np.testing.assert_allclose(c.log_prob(t(x)).numpy(), -np.log(np.pi * s * (1 + z * z)),
                               rtol=1e-12)
    np.testing.assert_allclose(c.cdf(t(x)).numpy(), np.arctan(z) / np.pi + 0.5, rtol=1e-12)
    np.testing.assert_allclose(c.icdf(c.cdf(t(x))).numpy(), x, rtol=1e-9)
    np.testing.assert_allclose(c.entropy().numpy(), np.log(4 * np.pi * s), rtol=1e-12)
    assert c.mean.isnan().all() and (c.variance == math.inf).all()
    np.testing.assert_allclose(c.mode.numpy(), loc)
    # no moments: quartiles of the draws are loc -+ scale
    q = np.quantile(c.sample((N_MC,)).numpy(), [0.25, 0.5, 0.75], axis=0)
    sd = 2 * np.pi * s * np.sqrt(0.25 * 0.75 / N_MC)  # sd of a quartile: sqrt(q(1-q)/n)/pdf
    assert np.all(np.abs(q - np.stack([loc - s, loc, loc + s])) < 5 * sd)
    h = D.HalfCauchy(t(s))
    xa = np.abs(x)
    np.testing.assert_allclose(h.log_prob(t(xa)).numpy(),
                               np.log(2 / (np.pi * s)) - np.log1p((xa / s) ** 2), rtol=1e-12)
    np.testing.assert_allclose(h.cdf(t(xa)).numpy(), 2 / np.pi * np.arctan(xa / s), rtol=1e-12)
    np.testing.assert_allclose(h.icdf(h.cdf(t(xa))).numpy(), xa, rtol=1e-9)
    np.testing.assert_allclose(h.entropy().numpy(), np.log(2 * np.pi * s), rtol=1e-12)
    assert (h.mean == math.inf).all() and (h.mode == 0).all()
    med = np.median(h.sample((N_MC,)).numpy(), axis=0)
    assert np.all(np.abs(med - s) < 5 * s * np.pi * np.sqrt(0.25 / N_MC))


def test_student_t_undefined_moments():
    d = D.StudentT(t([0.5, 1.5, 3.0]), 2.0, 1.0)
    assert np.isnan(d.mean.numpy()[0]) and d.mean.numpy()[1:].tolist() == [2.0, 2.0]
    v = d.variance.numpy()
    assert np.isnan(v[0]) and v[1] == math.inf and v[2] == 3.0
    assert (D.InverseGamma(t([0.5, 1.5]), 1.0).variance == math.inf).all()
    assert D.InverseGamma(t([0.5]), 1.0).mean.item() == math.inf
    assert D.Pareto(1.0, t([0.5, 1.5])).variance.numpy().tolist() == [math.inf, math.inf]
    assert np.isnan(D.FisherSnedecor(1.0, t([1.5])).mean.numpy()).all()


def test_von_mises():
    loc, k = np.array([0.5, -2.0, 3.0]), np.array([2.0, 0.3, 40.0])
    d = D.VonMises(t(loc), t(k))
    x = np.array([0.0, 2.5, 3.1])
    i0 = _v(lambda v: mpmath.besseli(0, v))(k)
    i1 = _v(lambda v: mpmath.besseli(1, v))(k)
    np.testing.assert_allclose(d.log_prob(t(x)).numpy(),
                               k * np.cos(x - loc) - np.log(2 * np.pi * i0), rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), 1 - i1 / i0, rtol=1e-10)
    np.testing.assert_allclose(d.entropy().numpy(), np.log(2 * np.pi * i0) - k * i1 / i0,
                               rtol=1e-10)
    assert d.mean is d.loc and d.mode is d.loc and not d.has_rsample
    s = d.sample((N_MC,)).numpy()
    assert s.shape == (N_MC, 3) and np.all((s >= -np.pi) & (s < np.pi))
    # circular moments: E[cos(x - loc)] = I1/I0, E[sin(x - loc)] = 0
    c, sn = np.cos(s - loc), np.sin(s - loc)
    np.testing.assert_array_less(np.abs(c.mean(0) - i1 / i0), 5 * c.std(0) / np.sqrt(N_MC))
    np.testing.assert_array_less(np.abs(sn.mean(0)), 5 * sn.std(0) / np.sqrt(N_MC) + 1e-12)
    # score-function gradient of log_prob in loc and concentration (i0e's derivative)
    lt, kt = t(loc, requires_grad=True), t(k, requires_grad=True)
    D.VonMises(lt, kt).log_prob(t(x)).sum().backward()
    np.testing.assert_allclose(lt.grad.numpy(), k * np.sin(x - loc), rtol=1e-10)
    np.testing.assert_allclose(kt.grad.numpy(), np.cos(x - loc) - i1 / i0, rtol=1e-9)
    with pytest.raises(NotImplementedError, match="rsample"):
        d.rsample()


# inverse-CDF samplers: with one seed, a sample is a smooth function of the parameters,
# so d(sum w * x)/dtheta must match a central difference
FD_CASES = {
    "Cauchy": (D.Cauchy, [[0.3, -1.0], [1.0, 2.0]]),
    "HalfNormal": (D.HalfNormal, [[0.7, 2.0]]),
    "HalfCauchy": (D.HalfCauchy, [[0.7, 2.0]]),
    "Gumbel": (D.Gumbel, [[0.3, -1.0], [1.0, 2.0]]),
    "Weibull": (D.Weibull, [[1.0, 2.0], [0.8, 3.0]]),
    "Pareto": (D.Pareto, [[1.0, 2.0], [3.0, 5.0]]),
    "Kumaraswamy": (D.Kumaraswamy, [[2.0, 0.7], [3.0, 1.5]]),
    "StudentT_loc_scale": (lambda loc, s: D.StudentT(5.0, loc, s), [[0.3, -1.0], [1.0, 2.0]]),
}


@pytest.mark.parametrize("name", list(FD_CASES))
def test_rsample_gradient_vs_finite_difference(name):
    make, values = FD_CASES[name]
    w = np.random.default_rng(1).normal(size=(40, 2))

    def loss(params):
        fw.manual_seed(7)
        return (make(*params).rsample((40,)) * t(w)).sum()

    params = [t(v, requires_grad=True) for v in values]
    loss(params).backward()
    h = 1e-6
    for i, v in enumerate(values):
        for j in range(len(v)):
            up = [np.array(p, dtype=float) for p in values]
            down = [np.array(p, dtype=float) for p in values]
            up[i][j] += h
            down[i][j] -= h
            fd = (loss([t(p) for p in up]).item() - loss([t(p) for p in down]).item()) / (2 * h)
            assert params[i].grad.numpy()[j] == pytest.approx(fd, rel=1e-5, abs=1e-6), (i, j)


def test_implicit_gamma_gradient_vs_mpmath():
    pts = [(0.3, 1e-6), (0.3, 1.5), (2.0, 0.5), (2.0, 6.0), (50.0, 40.0), (50.0, 65.0),
           (0.05, 1e-30)]
    a, x = t([p[0] for p in pts]), t([p[1] for p in pts])

    def ref(a, x):
        a, x = mpmath.mpf(a), mpmath.mpf(x)
        d_cdf = mpmath.diff(lambda b: mpmath.gammainc(b, 0, x, regularized=True), a)
        return float(-d_cdf / (x ** (a - 1) * mpmath.exp(-x) / mpmath.gamma(a)))

    want = np.array([ref(*p) for p in pts])
    np.testing.assert_allclose(standard_gamma_slope(a, x).numpy(), want, rtol=1e-7)


def test_gamma_based_rsample_gradients_match_moment_derivatives():
    # d/dtheta E[f(x)] from the mean of per-sample pathwise gradients
    df = t([3.0, 8.0], requires_grad=True)
    D.Chi2(df).rsample((N_MC,)).mean(0).sum().backward()  # E[x] = df
    np.testing.assert_allclose(df.grad.numpy(), [1.0, 1.0], rtol=0.04)
    a, b = t([4.0, 7.0], requires_grad=True), t([1.0, 2.0], requires_grad=True)
    D.InverseGamma(a, b).rsample((N_MC,)).mean(0).sum().backward()  # E = b / (a - 1)
    np.testing.assert_allclose(a.grad.numpy(), [-1 / 9, -2 / 36], rtol=0.06)
    np.testing.assert_allclose(b.grad.numpy(), [1 / 3, 1 / 6], rtol=0.04)
    nu = t([8.0, 12.0], requires_grad=True)
    x = D.StudentT(nu, 0.5, 1.0).rsample((N_MC,))
    ((x - 0.5) ** 2).mean(0).sum().backward()  # E = nu / (nu - 2): d/dnu = -2 / (nu - 2)^2
    np.testing.assert_allclose(nu.grad.numpy(), [-2 / 36, -2 / 100], rtol=0.15)
    d2 = t([10.0, 20.0], requires_grad=True)
    D.FisherSnedecor(5.0, d2).rsample((N_MC,)).mean(0).sum().backward()  # d2 / (d2 - 2)
    np.testing.assert_allclose(d2.grad.numpy(), [-2 / 64, -2 / 324], rtol=0.15)
    assert D.Chi2(3.0).has_rsample and D.StudentT(3.0).has_rsample


def test_gamma_beta_dirichlet_rsample_gradients_match_moment_derivatives():
    c, r = t([2.0, 0.5], requires_grad=True), t([1.0, 3.0], requires_grad=True)
    g = D.Gamma(c, r)
    assert g.has_rsample
    g.rsample((N_MC,)).mean(0).sum().backward()            # E = c / r
    np.testing.assert_allclose(c.grad.numpy(), [1.0, 1 / 3], rtol=0.04)
    np.testing.assert_allclose(r.grad.numpy(), [-2.0, -0.5 / 9], rtol=0.05)
    c1, c0 = t([2.0, 0.7], requires_grad=True), t([3.0, 1.5], requires_grad=True)
    x = D.Beta(c1, c0).rsample((N_MC,))
    np.testing.assert_allclose(x.detach().mean(0).numpy(), [0.4, 0.7 / 2.2], rtol=0.02)
    x.mean(0).sum().backward()                              # E = c1 / (c1 + c0)
    np.testing.assert_allclose(c1.grad.numpy(), [3 / 25, 1.5 / 2.2 ** 2], rtol=0.06)
    np.testing.assert_allclose(c0.grad.numpy(), [-2 / 25, -0.7 / 2.2 ** 2], rtol=0.06)
    alpha = t([1.0, 2.0, 3.0], requires_grad=True)
    y = D.Dirichlet(alpha).rsample((N_MC,))
    np.testing.assert_allclose(y.detach().sum(-1).numpy(), 1.0, rtol=1e-12)
    y[:, 0].mean().backward()                               # E[y0] = a0 / sum(a)
    np.testing.assert_allclose(alpha.grad.numpy(), [5 / 36, -1 / 36, -1 / 36], rtol=0.08,
                               atol=0.004)
    cdf = D.Gamma(t([2.0]), t([1.5])).cdf(t([1.0]))         # P(2, 1.5) = 1 - e^-1.5 (1 + 1.5)
    np.testing.assert_allclose(cdf.numpy(), [1 - math.exp(-1.5) * 2.5], rtol=1e-10)


def test_validation_errors():
    with pytest.raises(ValueError, match=r"Expected parameter df .*GreaterThan"):
        D.StudentT(t([-1.0]))
    with pytest.raises(fw.ArgumentError, match="scale"):
        D.Cauchy(0.0, t([-1.0]))
    with pytest.raises(ValueError, match="concentration"):
        D.VonMises(0.0, t([0.0]))
    with pytest.raises(ValueError, match="alpha"):
        D.Pareto(1.0, t([-2.0]))
    with pytest.raises(ValueError, match="concentration0"):
        D.Kumaraswamy(1.0, t([-2.0]))
    with pytest.raises(ValueError, match="df2"):
        D.FisherSnedecor(1.0, t([0.0]))
    out_of_support = [
        (D.HalfNormal(1.0), -0.5, "GreaterThanEq"), (D.HalfCauchy(1.0), -0.5, "GreaterThanEq"),
        (D.Weibull(1.0, 2.0), -1.0, "GreaterThan"), (D.Chi2(2.0), -1.0, "GreaterThanEq"),
        (D.InverseGamma(2.0, 1.0), 0.0, "GreaterThan"),
        (D.Pareto(2.0, 3.0), 1.5, "GreaterThanEq\\(lower_bound=tensor\\(2"),
        (D.Kumaraswamy(2.0, 3.0), 1.5, "Interval"),
        (D.FisherSnedecor(2.0, 3.0), -1.0, "GreaterThan"),
        (D.StudentT(3.0), math.nan, "Real"), (D.Gumbel(0.0, 1.0), math.nan, "Real"),
        (D.VonMises(0.0, 1.0), math.nan, "Real"),
    ]
    for d, v, pattern in out_of_support:
        with pytest.raises(ValueError, match=f"within the support \\({pattern}"):
            d.log_prob(t([v]))
    # validate_args=False: no checks
    assert D.HalfNormal(1.0, validate_args=False).log_prob(t([-1.0])).item() == -math.inf
    D.StudentT(t([-1.0]), validate_args=False)


def test_expand_and_shapes():
    cases = [D.StudentT(t([3.0]), 0.0, 1.0), D.Cauchy(t([0.0]), 1.0), D.HalfNormal(t([1.0])),
             D.HalfCauchy(t([1.0])), D.Gumbel(t([0.0]), 1.0), D.Weibull(t([1.0]), 2.0),
             D.Chi2(t([2.0])), D.InverseGamma(t([3.0]), 1.0), D.Pareto(t([1.0]), 3.0),
             D.Kumaraswamy(t([2.0]), 3.0), D.VonMises(t([0.0]), 1.0),
             D.FisherSnedecor(t([3.0]), 5.0)]
    for d in cases:
        e = d.expand((4, 1))
        assert type(e) is type(d) and e.batch_shape == (4, 1), d
        x = e.sample((2,))
        assert x.shape == (2, 4, 1), d
        np.testing.assert_allclose(e.log_prob(x).numpy(),
                                   d.log_prob(x).expand(2, 4, 1).numpy(), rtol=1e-12)
    with pytest.raises(ValueError):
        D.StudentT(t([3.0, 4.0])).expand((3,))
    assert D.Chi2(3.0).df.item() == 3.0
    assert repr(D.StudentT(3.0)) == "StudentT(df: 3.0, loc: 0.0, scale: 1.0)"
