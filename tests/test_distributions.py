"""fw.distributions: densities, entropies, moments and CDFs vs closed forms (NumPy, math,
mpmath), sample shapes and Monte-Carlo moments, reparametrized and score-function
gradients, validation errors, expand, Independent, MultivariateNormal, fw.compile."""

import math
import warnings

import mpmath
import numpy as np
import pytest

import framework as fw
from framework import distributions as D

F64 = fw.float64
N_MC = 20000


def t(x, **kw):
    return fw.tensor(x, dtype=F64, **kw)


def _lgamma(x):
    return np.vectorize(math.lgamma)(x)


def _digamma(x):
    return np.vectorize(lambda v: float(mpmath.digamma(v)))(x)


def _erf(x):
    return np.vectorize(math.erf)(x)


# Each case: constructor from float64 tensors, NumPy parameters, values in the support, and
# reference formulas of the parameters: log density, entropy, mean, variance, cdf (or None).
LOC, SCALE = np.array([0.0, 1.5, -2.0]), np.array([1.0, 0.5, 3.0])
RATE = np.array([0.5, 2.0, 7.0])
C1, C0 = np.array([0.5, 2.0, 5.0]), np.array([0.7, 3.0, 1.5])
CASES = {
    "Normal": (lambda p: D.Normal(p[0], p[1]), (LOC, SCALE), np.array([0.3, 1.0, -6.0]),
               lambda x, m, s: -(x - m) ** 2 / (2 * s * s) - np.log(s) - 0.5 * np.log(2 * np.pi),
               lambda m, s: 0.5 + 0.5 * np.log(2 * np.pi) + np.log(s),
               lambda m, s: m, lambda m, s: s * s,
               lambda x, m, s: 0.5 * (1 + _erf((x - m) / (s * np.sqrt(2))))),
    "Uniform": (lambda p: D.Uniform(p[0], p[1]), (LOC, LOC + SCALE), np.array([0.3, 1.7, -1.0]),
                lambda x, lo, hi: -np.log(hi - lo), lambda lo, hi: np.log(hi - lo),
                lambda lo, hi: (lo + hi) / 2, lambda lo, hi: (hi - lo) ** 2 / 12,
                lambda x, lo, hi: (x - lo) / (hi - lo)),
    "Exponential": (lambda p: D.Exponential(p[0]), (RATE,), np.array([0.1, 2.0, 0.3]),
                    lambda x, r: np.log(r) - r * x, lambda r: 1 - np.log(r),
                    lambda r: 1 / r, lambda r: 1 / r ** 2, lambda x, r: 1 - np.exp(-r * x)),
    "Laplace": (lambda p: D.Laplace(p[0], p[1]), (LOC, SCALE), np.array([0.3, 1.0, -6.0]),
                lambda x, m, b: -np.log(2 * b) - np.abs(x - m) / b,
                lambda m, b: 1 + np.log(2 * b), lambda m, b: m, lambda m, b: 2 * b * b,
                lambda x, m, b: np.where(x < m, 0.5 * np.exp((x - m) / b),
                                         1 - 0.5 * np.exp(-(x - m) / b))),
    "LogNormal": (lambda p: D.LogNormal(p[0], p[1]), (LOC / 4, SCALE / 2),
                  np.array([0.5, 1.2, 3.0]),
                  lambda x, m, s: (-(np.log(x) - m) ** 2 / (2 * s * s) - np.log(s * x)
                                   - 0.5 * np.log(2 * np.pi)),
                  lambda m, s: m + 0.5 + 0.5 * np.log(2 * np.pi) + np.log(s),
                  lambda m, s: np.exp(m + s * s / 2),
                  lambda m, s: (np.exp(s * s) - 1) * np.exp(2 * m + s * s),
                  lambda x, m, s: 0.5 * (1 + _erf((np.log(x) - m) / (s * np.sqrt(2))))),
    "Poisson": (lambda p: D.Poisson(p[0]), (np.array([0.5, 4.0, 60.0]),),
                np.array([0.0, 3.0, 55.0]),
                lambda k, r: k * np.log(r) - r - _lgamma(k + 1), None,
                lambda r: r, lambda r: r, None),
    "Gamma": (lambda p: D.Gamma(p[0], p[1]), (C1, RATE), np.array([0.2, 1.0, 0.5]),
              lambda x, a, b: a * np.log(b) + (a - 1) * np.log(x) - b * x - _lgamma(a),
              lambda a, b: a - np.log(b) + _lgamma(a) + (1 - a) * _digamma(a),
              lambda a, b: a / b, lambda a, b: a / b ** 2, None),
    "Beta": (lambda p: D.Beta(p[0], p[1]), (C1, C0), np.array([0.2, 0.5, 0.9]),
             lambda x, a, b: ((a - 1) * np.log(x) + (b - 1) * np.log1p(-x)
                              - _lgamma(a) - _lgamma(b) + _lgamma(a + b)),
             lambda a, b: (_lgamma(a) + _lgamma(b) - _lgamma(a + b) - (a - 1) * _digamma(a)
                           - (b - 1) * _digamma(b) + (a + b - 2) * _digamma(a + b)),
             lambda a, b: a / (a + b), lambda a, b: a * b / ((a + b) ** 2 * (a + b + 1)), None),
    "Bernoulli": (lambda p: D.Bernoulli(p[0]), (np.array([0.1, 0.5, 0.95]),),
                  np.array([1.0, 0.0, 1.0]),
                  lambda x, p: x * np.log(p) + (1 - x) * np.log1p(-p),
                  lambda p: -p * np.log(p) - (1 - p) * np.log1p(-p),
                  lambda p: p, lambda p: p * (1 - p), None),
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
    np.testing.assert_allclose(d.variance.numpy(), var(*params), rtol=1e-12)
    np.testing.assert_allclose(d.stddev.numpy(), np.sqrt(var(*params)), rtol=1e-12)
    if cdf is not None:
        u = d.cdf(t(x))
        np.testing.assert_allclose(u.numpy(), cdf(x, *params), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(d.icdf(u).numpy(), x, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", list(CASES))
def test_sample_moments(name):
    make, params = CASES[name][:2]
    d = make([t(p) for p in params])
    x = d.sample((N_MC,)).numpy()
    assert x.shape == (N_MC, 3) and x.dtype == np.float64
    mean, var = CASES[name][5](*params), CASES[name][6](*params)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / N_MC))
    mu4 = ((x - mean) ** 4).mean(0)  # sd of the sample variance, plus the O(1/n) bias term
    tol = 5 * np.sqrt((mu4 - var ** 2) / N_MC) + 5 * var / N_MC
    assert np.all(np.abs(x.var(0) - var) < tol)
    assert bool(d.support.check(fw.tensor(x)).all())


def test_samples_are_reproducible_under_manual_seed():
    for d in (D.Normal(0.0, 1.0), D.Gamma(t([0.4, 3.0]), 1.0), D.Poisson(t([2.0, 30.0])),
              D.Categorical(logits=fw.zeros(5))):
        fw.manual_seed(3)
        a = d.sample((4,)).numpy()
        fw.manual_seed(3)
        np.testing.assert_array_equal(a, d.sample((4,)).numpy())


def test_small_concentrations_do_not_underflow():
    x = D.Beta(t([0.02]), t([0.03])).sample((2000,)).numpy()
    assert np.all((x > 0) & (x < 1)) and abs(x.mean() - 0.4) < 0.06
    g = D.Gamma(t([0.01]), 1.0).sample((100,)).numpy()
    assert np.all(g > 0)


@pytest.mark.parametrize("sample_shape", [(), (5,), (2, 3)])
def test_sample_shapes(sample_shape):
    B = (4, 1)
    cases = [
        (D.Normal(fw.zeros(B), 1.0), ()),
        (D.Bernoulli(logits=fw.zeros(B)), ()),
        (D.Categorical(logits=fw.zeros(B + (6,))), ()),
        (D.OneHotCategorical(logits=fw.zeros(B + (6,))), (6,)),
        (D.Dirichlet(fw.ones(B + (3,))), (3,)),
        (D.MultivariateNormal(fw.zeros(B + (2,)), scale_tril=fw.eye(2)), (2,)),
        (D.Independent(D.Normal(fw.zeros(B + (2, 5)), 1.0), 2), (2, 5)),
        (D.Poisson(fw.ones(B)), ()),
    ]
    for d, event in cases:
        assert d.batch_shape == B and d.event_shape == event, d
        x = d.sample(sample_shape)
        assert x.shape == sample_shape + B + event, d
        assert d.log_prob(x).shape == sample_shape + B, d
        if d.has_rsample:
            assert d.rsample(sample_shape).shape == sample_shape + B + event
    assert D.Normal(0.0, 1.0).sample(7).shape == (7,)


def test_rsample_gradient_matches_analytic():
    # E[x^2] = loc^2 + scale^2: d/dloc = 2 loc, d/dscale = 2 scale
    loc, scale = t([0.7, -1.2], requires_grad=True), t([0.5, 2.0], requires_grad=True)
    x = D.Normal(loc, scale).rsample((N_MC,))
    (x ** 2).mean(0).sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [1.4, -2.4], rtol=0.05)
    np.testing.assert_allclose(scale.grad.numpy(), [1.0, 4.0], rtol=0.05)
    # E[x] = 1 / rate for the exponential: d/drate = -1 / rate^2
    rate = t([0.5, 2.0], requires_grad=True)
    D.Exponential(rate).rsample((N_MC,)).mean(0).sum().backward()
    np.testing.assert_allclose(rate.grad.numpy(), [-4.0, -0.25], rtol=0.05)
    assert D.Uniform(0.0, 1.0).has_rsample and not D.Bernoulli(0.5).has_rsample
    with pytest.raises(NotImplementedError, match="rsample"):
        D.Bernoulli(0.5).rsample()
    assert not D.Normal(loc, scale).sample().requires_grad


def test_log_prob_gradients_match_analytic():
    loc, scale = t([0.5, -1.0], requires_grad=True), t([1.0, 2.0], requires_grad=True)
    x = t([0.1, 0.2])
    D.Normal(loc, scale).log_prob(x).sum().backward()
    xn, m, s = x.numpy(), loc.detach().numpy(), scale.detach().numpy()
    np.testing.assert_allclose(loc.grad.numpy(), (xn - m) / s ** 2)
    np.testing.assert_allclose(scale.grad.numpy(), (xn - m) ** 2 / s ** 3 - 1 / s)


def test_reinforce_score_function_gradient():
    logits = t([0.2, -0.4, 1.0], requires_grad=True)
    d = D.Categorical(logits=logits)
    k = d.sample((50,))
    reward = (k == 2).to(F64)
    (d.log_prob(k) * reward).sum().backward()
    probs = np.exp(logits.detach().numpy())
    probs /= probs.sum()
    onehot = np.eye(3)[k.numpy()]
    want = ((onehot - probs) * reward.numpy()[:, None]).sum(0)
    np.testing.assert_allclose(logits.grad.numpy(), want, rtol=1e-10, atol=1e-12)
    # the same through a Gamma's sample(): grad of log_prob wrt the parameters
    conc = t([2.0], requires_grad=True)
    g = D.Gamma(conc, 1.0)
    g.log_prob(g.sample((10,))).sum().backward()
    assert conc.grad is not None and np.isfinite(conc.grad.numpy()).all()


def test_logits_and_probs_agree():
    p = np.array([[0.1, 0.6, 0.3], [0.25, 0.25, 0.5]])
    a, b = D.Categorical(probs=t(p)), D.Categorical(logits=t(np.log(p) + 3.0))
    np.testing.assert_allclose(a.probs.numpy(), b.probs.numpy(), rtol=1e-12)
    np.testing.assert_allclose(a.logits.numpy(), b.logits.numpy(), rtol=1e-12)
    v = t([2.0, 0.0])
    np.testing.assert_allclose(a.log_prob(v).numpy(), np.log([0.3, 0.25]), rtol=1e-12)
    np.testing.assert_allclose(b.log_prob(v).numpy(), np.log([0.3, 0.25]), rtol=1e-12)
    np.testing.assert_allclose(a.entropy().numpy(), -(p * np.log(p)).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(b.entropy().numpy(), -(p * np.log(p)).sum(-1), rtol=1e-12)
    assert a.mode.numpy().tolist() == [1, 2]
    q = np.array([0.2, 0.9])
    c, e = D.Bernoulli(probs=t(q)), D.Bernoulli(logits=t(np.log(q / (1 - q))))
    for attr in ("probs", "logits", "mean", "variance"):
        np.testing.assert_allclose(getattr(c, attr).numpy(), getattr(e, attr).numpy(), 1e-10)
    np.testing.assert_allclose(c.entropy().numpy(), e.entropy().numpy(), rtol=1e-10)
    np.testing.assert_allclose(e.log_prob(t([0.0, 1.0])).numpy(), np.log([0.8, 0.9]))
    # extreme logits stay finite
    assert np.isfinite(D.Bernoulli(logits=t([200.0])).log_prob(t([0.0])).numpy()).all()


def test_categorical_sampling_frequencies_and_zero_probabilities():
    p = np.array([0.5, 0.0, 0.2, 0.3])
    k = D.Categorical(probs=t(p * 4)).sample((N_MC,)).numpy()
    assert k.dtype == np.int64
    freq = np.bincount(k, minlength=4) / N_MC
    assert freq[1] == 0
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / N_MC) + 1e-12)
    oh = D.OneHotCategorical(probs=t(p))
    x = oh.sample((N_MC,))
    assert x.shape == (N_MC, 4) and np.all(x.numpy().sum(-1) == 1)
    np.testing.assert_allclose(oh.log_prob(t(np.eye(4)[[0, 2]])).numpy(), np.log([0.5, 0.2]))
    assert oh.mode.numpy().tolist() == [1, 0, 0, 0]
    assert D.Categorical(probs=t(p)).enumerate_support().numpy().tolist() == [0, 1, 2, 3]
    assert D.Bernoulli(t([0.3, 0.4])).enumerate_support().shape == (2, 2)
    # straight-through: one-hot forward, gradient of probs backward
    logits = t([0.1, 0.2, 0.3], requires_grad=True)
    y = D.OneHotCategoricalStraightThrough(logits=logits).rsample()
    (y * t([1.0, 2.0, 3.0])).sum().backward()
    assert logits.grad is not None and y.detach().numpy().sum() == 1


def test_dirichlet_closed_forms():
    c = np.array([[0.5, 1.0, 2.0], [3.0, 3.0, 3.0]])
    d = D.Dirichlet(t(c))
    x = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    want = ((c - 1) * np.log(x)).sum(-1) + _lgamma(c.sum(-1)) - _lgamma(c).sum(-1)
    np.testing.assert_allclose(d.log_prob(t(x)).numpy(), want, rtol=1e-10)
    a0 = c.sum(-1)
    ent = (_lgamma(c).sum(-1) - _lgamma(a0) - (3 - a0) * _digamma(a0)
           - ((c - 1) * _digamma(c)).sum(-1))
    np.testing.assert_allclose(d.entropy().numpy(), ent, rtol=1e-10)
    s = d.sample((N_MC,)).numpy()
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-12)
    var = d.variance.numpy()
    assert np.all(np.abs(s.mean(0) - d.mean.numpy()) < 5 * np.sqrt(var / N_MC))
    np.testing.assert_allclose(D.Dirichlet(t([3.0, 2.0, 1.0])).mode.numpy(), [2 / 3, 1 / 3, 0])


def _mvn_logpdf(x, mu, cov):
    diff = x - mu
    sol = np.linalg.solve(cov, diff[..., None])[..., 0]
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (mu.shape[-1] * np.log(2 * np.pi) + logdet + (diff * sol).sum(-1))


def test_multivariate_normal_three_parametrizations():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(2, 3, 3))
    cov = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(3)
    mu = rng.normal(size=(2, 3))
    x = rng.normal(size=(5, 2, 3))
    L = np.linalg.cholesky(cov)
    want = _mvn_logpdf(x, mu, cov)
    ent = 0.5 * 3 * (1 + np.log(2 * np.pi)) + 0.5 * np.linalg.slogdet(cov)[1]
    for kw in ({"covariance_matrix": t(cov)}, {"precision_matrix": t(np.linalg.inv(cov))},
               {"scale_tril": t(L)}):
        d = D.MultivariateNormal(t(mu), **kw)
        assert d.batch_shape == (2,) and d.event_shape == (3,)
        np.testing.assert_allclose(d.log_prob(t(x)).numpy(), want, rtol=1e-9)
        np.testing.assert_allclose(d.entropy().numpy(), ent, rtol=1e-10)
        np.testing.assert_allclose(d.covariance_matrix.numpy(), cov, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(d.precision_matrix.numpy(), np.linalg.inv(cov), rtol=1e-8,
                                   atol=1e-10)
        np.testing.assert_allclose(d.scale_tril.numpy(), L, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(d.variance.numpy(), np.diagonal(cov, axis1=-2, axis2=-1))


def test_multivariate_normal_broadcasting_samples_and_grads():
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    mu = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    d = D.MultivariateNormal(t(mu), covariance_matrix=t(cov))  # one matrix, 3 means
    assert d.batch_shape == (3,) and d.covariance_matrix.shape == (3, 2, 2)
    x = d.sample((N_MC,)).numpy()
    assert x.shape == (N_MC, 3, 2)
    assert np.all(np.abs(x.mean(0) - mu) < 5 * np.sqrt(np.diag(cov) / N_MC))
    emp = np.einsum("nbi,nbj->bij", x - mu, x - mu) / N_MC
    assert np.all(np.abs(emp - cov) < 0.1)
    np.testing.assert_allclose(d.log_prob(t(x[:4])).numpy(), _mvn_logpdf(x[:4], mu, cov),
                               rtol=1e-9)
    # rsample gradient: d/dloc E[sum x] = 1
    loc = t([0.3, -0.2], requires_grad=True)
    D.MultivariateNormal(loc, scale_tril=t(np.linalg.cholesky(cov))).rsample((100,)).sum() \
        .backward()
    np.testing.assert_allclose(loc.grad.numpy(), [100.0, 100.0])
    # covariance gradient of log_prob: 0.5 (S^-1 d d^T S^-1 - S^-1)
    C = t(cov, requires_grad=True)
    v = np.array([0.5, 1.0])
    D.MultivariateNormal(fw.zeros(2, dtype=F64), C).log_prob(t(v)).backward()
    Si = np.linalg.inv(cov)
    a = Si @ v
    np.testing.assert_allclose(C.grad.numpy(), 0.5 * (np.outer(a, a) - Si), rtol=1e-8)


def test_validate_args_errors():
    with pytest.raises(ValueError, match=r"Expected parameter scale \(Tensor of shape \(2,\)\) "
                       r"of distribution Normal\(.*GreaterThan\(lower_bound=0.0\)"):
        D.Normal(t([0.0, 1.0]), t([1.0, -1.0]))
    with pytest.raises(fw.ArgumentError, match="probs.*Interval"):
        D.Bernoulli(t([1.5]))
    with pytest.raises(ValueError, match="Simplex"):
        D.Categorical(probs=t([[0.5, -0.1]]))
    with pytest.raises(ValueError, match="LowerCholesky"):
        D.MultivariateNormal(fw.zeros(2), scale_tril=fw.tensor([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="PositiveDefinite"):
        D.MultivariateNormal(fw.zeros(2), fw.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="low>= high"):
        D.Uniform(1.0, 0.0)
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Bernoulli(probs=t([0.5]), logits=t([0.0]))
    with pytest.raises(ValueError, match="Exactly one of"):
        D.MultivariateNormal(fw.zeros(2))
    with pytest.raises(ValueError, match=r"within the support \(GreaterThanEq"):
        D.Exponential(1.0).log_prob(t([-1.0]))
    with pytest.raises(ValueError, match="IntegerInterval"):
        D.Categorical(logits=fw.zeros(3)).log_prob(fw.tensor([3]))
    with pytest.raises(ValueError, match="not broadcastable"):
        D.Normal(fw.zeros(3), 1.0).log_prob(fw.zeros(4))
    with pytest.raises(ValueError, match="event_shape"):
        D.MultivariateNormal(fw.zeros(3), fw.eye(3)).log_prob(fw.zeros(2))
    # validate_args=False skips the checks
    D.Normal(t([0.0]), t([-1.0]), validate_args=False)
    assert D.Exponential(1.0, validate_args=False).log_prob(t([-1.0])).numpy()[0] == 1.0


def test_set_default_validate_args():
    try:
        D.Distribution.set_default_validate_args(False)
        d = D.Normal(0.0, -1.0)
        assert not d._validate_args
        with pytest.raises(ValueError):
            D.Normal(0.0, -1.0, validate_args=True)
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Normal(0.0, -1.0)
    with pytest.raises(ValueError):
        D.Distribution.set_default_validate_args("yes")


def test_expand():
    d = D.Normal(t([0.0, 1.0]), t([1.0, 2.0]))
    e = d.expand((3, 2))
    assert e.batch_shape == (3, 2) and e.sample((4,)).shape == (4, 3, 2)
    x = t(np.linspace(-1, 1, 6).reshape(3, 2))
    np.testing.assert_allclose(e.log_prob(x).numpy(), d.log_prob(x).numpy())
    for dist in (D.Bernoulli(t([0.3])), D.Categorical(t([[0.2, 0.8]])), D.Gamma(t([2.0]), 1.0),
                 D.MultivariateNormal(fw.zeros(1, 2), fw.eye(2)), D.LogNormal(t([0.0]), 1.0),
                 D.Dirichlet(fw.ones(1, 3)), D.OneHotCategorical(fw.ones(1, 3)),
                 D.Uniform(t([0.0]), 1.0), D.Poisson(t([1.0]))):
        ex = dist.expand((5, 1))
        assert ex.batch_shape == (5, 1) and type(ex) is type(dist), dist
        assert ex.sample().shape == (5, 1) + tuple(dist.event_shape)
    with pytest.raises(ValueError):
        d.expand((3,))


def test_independent():
    loc = t(np.arange(6.0).reshape(2, 3))
    base = D.Normal(loc, 1.0)
    d = D.Independent(base, 1)
    assert d.batch_shape == (2,) and d.event_shape == (3,) and d.has_rsample
    x = t(np.zeros((4, 2, 3)))
    np.testing.assert_allclose(d.log_prob(x).numpy(), base.log_prob(x).numpy().sum(-1))
    np.testing.assert_allclose(d.entropy().numpy(), base.entropy().numpy().sum(-1))
    assert d.rsample((4,)).shape == (4, 2, 3)
    assert repr(d.support) == "IndependentConstraint(Real(), 1)"
    d2 = D.Independent(base, 2)
    assert d2.batch_shape == () and d2.event_shape == (2, 3)
    assert d.expand((5, 2)).batch_shape == (5, 2)
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims"):
        D.Independent(base, 3)
    with pytest.raises(ValueError, match="event_shape"):
        d.log_prob(fw.zeros(2, 4))


def test_poisson_large_rates_and_mode():
    rate = np.array([0.01, 9.9, 10.0, 1e3])
    x = D.Poisson(t(rate)).sample((N_MC,)).numpy()
    assert np.all(x == np.round(x)) and np.all(x >= 0)
    assert np.all(np.abs(x.mean(0) - rate) < 5 * np.sqrt(rate / N_MC))
    assert np.all(np.abs(x.var(0) - rate) < 0.1 * rate + 0.01)
    assert D.Poisson(t([3.7])).mode.numpy().tolist() == [3.0]


def test_repr_and_properties():
    assert repr(D.Normal(0.0, 1.0)) == "Normal(loc: 0.0, scale: 1.0)"
    d = D.Normal(fw.zeros(2), fw.ones(2))
    assert repr(d) == "Normal(loc: framework.Size([2]), scale: framework.Size([2]))"
    np.testing.assert_allclose(d.perplexity().numpy(), np.exp(0.5 + 0.5 * np.log(2 * np.pi)),
                               rtol=1e-6)
    assert d.mode.shape == (2,) and D.Bernoulli(t([0.5])).mode.isnan().all()
    assert D.Normal(fw.zeros(2), 1.0).sample().dtype == fw.float32


def test_compiled_log_prob_matches_eager():
    def f(loc, scale, x):
        return D.Normal(loc, scale).log_prob(x).sum()

    cf = fw.compile(f, fullgraph=True, mode="always")
    loc, scale = fw.tensor([0.5, -1.0]), fw.tensor([1.0, 2.0])
    x = fw.randn(8, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cf(loc, scale, x)
    np.testing.assert_allclose(got.numpy(), f(loc, scale, x).numpy(), rtol=1e-6)
    assert cf.stats()["graph_breaks"] == []


@pytest.mark.gpu
def test_cuda_sample_log_prob_and_grad():
    loc = fw.tensor([0.0, 1.0], device="cuda", requires_grad=True)
    d = D.Normal(loc, fw.tensor([1.0, 2.0], device="cuda"))
    x = d.rsample((1000,))
    assert x.device.type == "cuda"
    d.log_prob(x.detach()).sum().backward()
    assert loc.grad.device.type == "cuda"
    k = D.Categorical(logits=fw.zeros(4, device="cuda")).sample((100,))
    assert k.device.type == "cuda" and int(k.max().item()) <= 3
    g = D.Gamma(fw.tensor([0.5, 3.0], device="cuda"), 1.0).sample((100,))
    assert g.device.type == "cuda" and bool((g > 0).all())
    m = D.MultivariateNormal(fw.zeros(2, device="cuda"), fw.eye(2, device="cuda"))
    assert m.log_prob(m.sample((5,))).shape == (5,)
