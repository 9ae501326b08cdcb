"""fw.distributions Binomial, Multinomial, Geometric, NegativeBinomial and
ContinuousBernoulli: probabilities, entropies, moments and CDFs vs textbook formulas
(NumPy, math, mpmath at high precision), sampler frequencies and moments (inversion and
BTRS binomial branches), probs/logits forms, validation and expand."""

import math

import mpmath
import numpy as np
import pytest

import framework as fw
from framework import distributions as D

F64 = fw.float64
N_MC = 20000


def t(x, **kw):
    return fw.tensor(x, dtype=F64, **kw)


_lgamma = np.vectorize(math.lgamma)


def _log_comb(n, k):
    return _lgamma(n + 1) - _lgamma(k + 1) - _lgamma(n - k + 1)


def _check_moments(x, mean, var):
    assert np.all(np.abs(x.mean(0) - mean) <= 5 * np.sqrt(var / len(x)))
    mu4 = ((x - mean) ** 4).mean(0)
    assert np.all(np.abs(x.var(0) - var) <= 5 * np.sqrt((mu4 - var ** 2) / len(x)) + 0.01)


def test_binomial_closed_forms_and_logits():
    n, p = np.array([10.0, 100.0, 7.0, 3.0]), np.array([0.3, 0.6, 0.0, 1.0])
    k = np.array([4.0, 55.0, 0.0, 3.0])
    want = np.array([_log_comb(10.0, 4.0) + 4 * np.log(0.3) + 6 * np.log(0.7),
                     _log_comb(100.0, 55.0) + 55 * np.log(0.6) + 45 * np.log(0.4), 0.0, 0.0])
    d = D.Binomial(t(n), t(p))
    np.testing.assert_allclose(d.log_prob(t(k)).numpy(), want, rtol=1e-10, atol=1e-12)
    lg = np.log(p[:2] / (1 - p[:2]))
    e = D.Binomial(t(n[:2]), logits=t(lg))
    np.testing.assert_allclose(e.log_prob(t(k[:2])).numpy(), want[:2], rtol=1e-10)
    np.testing.assert_allclose(e.probs.numpy(), p[:2], rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), n * p)
    np.testing.assert_allclose(d.variance.numpy(), n * p * (1 - p))
    assert d.mode.numpy().tolist() == [3.0, 60.0, 0.0, 3.0]
    # entropy by enumeration (homogeneous total_count only)
    h = D.Binomial(5, t([0.2, 0.5]))
    ks = np.arange(6.0)[:, None]
    lp = _log_comb(5.0, ks) + ks * np.log([0.2, 0.5]) + (5 - ks) * np.log([0.8, 0.5])
    np.testing.assert_allclose(h.entropy().numpy(), -(np.exp(lp) * lp).sum(0), rtol=1e-10)
    assert h.enumerate_support().shape == (6, 2)
    with pytest.raises(NotImplementedError, match="Inhomogeneous total count"):
        d.entropy()


@pytest.mark.parametrize("n,p", [([4.0, 20.0, 30.0], [0.3, 0.2, 0.9]),  # inversion
                                 ([60.0, 500.0, 1000.0], [0.3, 0.55, 0.97])])  # BTRS
def test_binomial_sampler(n, p):
    n, p = np.array(n), np.array(p)
    x = D.Binomial(t(n), t(p)).sample((N_MC,)).numpy()
    assert np.all(x == np.round(x)) and np.all((x >= 0) & (x <= n))
    _check_moments(x, n * p, n * p * (1 - p))
    # frequencies of the most likely values vs the pmf
    for j in range(3):
        vals, counts = np.unique(x[:, j], return_counts=True)
        top = vals[np.argsort(counts)[-3:]]
        pmf = np.exp(_log_comb(n[j], top) + top * np.log(p[j]) + (n[j] - top) * np.log1p(-p[j]))
        freq = np.array([(x[:, j] == v).mean() for v in top])
        assert np.all(np.abs(freq - pmf) < 5 * np.sqrt(pmf * (1 - pmf) / N_MC)), (j, top)


def test_multinomial():
    p = np.array([[0.2, 0.3, 0.5], [0.6, 0.0, 0.4]])
    d = D.Multinomial(12, t(p * 3))  # unnormalized probs are normalized
    assert d.batch_shape == (2,) and d.event_shape == (3,)
    x = np.array([[2.0, 3.0, 7.0], [5.0, 0.0, 7.0]])
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = np.where(x > 0, x * np.log(p), 0.0)
    want = _lgamma(13.0) - _lgamma(x + 1).sum(-1) + logp.sum(-1)
    np.testing.assert_allclose(d.log_prob(t(x)).numpy(), want, rtol=1e-10)
    e = D.Multinomial(12, logits=t(np.log(p[:1]) + 1.0))
    np.testing.assert_allclose(e.log_prob(t(x[:1])).numpy(), want[:1], rtol=1e-10)
    np.testing.assert_allclose(d.mean.numpy(), 12 * p)
    np.testing.assert_allclose(d.variance.numpy(), 12 * p * (1 - p))
    s = d.sample((N_MC,)).numpy()
    assert s.shape == (N_MC, 2, 3) and np.all(s.sum(-1) == 12) and np.all(s[:, 1, 1] == 0)
    _check_moments(s.reshape(N_MC, -1), 12 * p.ravel(), 12 * (p * (1 - p)).ravel())
    # entropy: -sum over all count vectors of pmf * log pmf (small enumeration)
    f = D.Multinomial(4, t([0.1, 0.3, 0.6]))
    vecs = np.array([(a, b, 4 - a - b) for a in range(5) for b in range(5 - a)], float)
    lp = f.log_prob(t(vecs)).numpy()
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12)
    assert f.entropy().item() == pytest.approx(-(np.exp(lp) * lp).sum(), rel=1e-10)
    with pytest.raises(ValueError, match="Multinomial\\(upper_bound=4"):
        f.log_prob(t([3.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="Multinomial"):
        f.log_prob(t([0.5, 1.5, 0.0]))
    with pytest.raises(NotImplementedError, match="inhomogeneous total_count"):
        D.Multinomial(t([3.0, 4.0]), t([0.5, 0.5]))


def test_geometric():
    p = np.array([0.1, 0.5, 0.95, 1.0])
    d = D.Geometric(t(p))
    k = np.array([3.0, 0.0, 2.0, 0.0])
    np.testing.assert_allclose(d.log_prob(t(k)).numpy(), k * np.log1p(-np.minimum(p, 0.99))
                               * (p < 1) + np.log(p), rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), 1 / p - 1, atol=1e-15)
    np.testing.assert_allclose(d.variance.numpy(), (1 / p - 1) / p, atol=1e-15)
    q = p[:3]
    ent = (-(1 - q) * np.log1p(-q) - q * np.log(q)) / q
    np.testing.assert_allclose(D.Geometric(t(q)).entropy().numpy(), ent, rtol=1e-10)
    lg = D.Geometric(logits=t(np.log(q / (1 - q))))
    np.testing.assert_allclose(lg.entropy().numpy(), ent, rtol=1e-10)
    np.testing.assert_allclose(lg.log_prob(t(k[:3])).numpy(), d.log_prob(t(k)).numpy()[:3],
                               rtol=1e-10)
    x = D.Geometric(t(q)).sample((N_MC,)).numpy()
    _check_moments(x, 1 / q - 1, (1 / q - 1) / q)
    assert (d.mode == 0).all() and np.all(d.sample((50,)).numpy()[:, 3] == 0)
    with pytest.raises(ValueError, match="GreaterThan"):  # probs must be > 0
        D.Geometric(t([0.0, 0.5]))


def test_negative_binomial():
    r, p = np.array([3.0, 10.0, 0.5]), np.array([0.3, 0.6, 0.8])
    k = np.array([2.0, 15.0, 0.0])
    want = (_lgamma(k + r) - _lgamma(k + 1) - _lgamma(r) + r * np.log1p(-p) + k * np.log(p))
    d = D.NegativeBinomial(t(r), t(p))
    np.testing.assert_allclose(d.log_prob(t(k)).numpy(), want, rtol=1e-10)
    e = D.NegativeBinomial(t(r), logits=t(np.log(p / (1 - p))))
    np.testing.assert_allclose(e.log_prob(t(k)).numpy(), want, rtol=1e-10)
    mean, var = r * p / (1 - p), r * p / (1 - p) ** 2
    np.testing.assert_allclose(d.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), var, rtol=1e-12)
    np.testing.assert_allclose(d.mode.numpy(), np.maximum(np.floor((r - 1) * p / (1 - p)), 0))
    _check_moments(d.sample((N_MC,)).numpy(), mean, var)
    # total_count 0: all mass at 0
    z = D.NegativeBinomial(t([0.0]), t([0.4]))
    assert z.log_prob(t([0.0])).item() == 0.0 and z.log_prob(t([2.0])).item() == -math.inf
    with pytest.raises(ValueError, match="HalfOpenInterval"):
        D.NegativeBinomial(2.0, t([1.0]))
    with pytest.raises(ValueError, match="IntegerGreaterThan"):
        d.log_prob(t([1.5, 0.0, 0.0]))


mpmath.mp.dps = 40


def _cb_ref(p, x):
    """Log density, cdf, mean, variance, entropy of ContinuousBernoulli(p) in mpmath."""
    p, x = mpmath.mpf(p), mpmath.mpf(x)
    if p == mpmath.mpf(0.5):
        return 0.0, float(x), 0.5, 1 / 12, 0.0
    c = 2 * mpmath.atanh(1 - 2 * p) / (1 - 2 * p)
    logp = x * mpmath.log(p) + (1 - x) * mpmath.log(1 - p) + mpmath.log(c)
    cdf = (p ** x * (1 - p) ** (1 - x) + p - 1) / (2 * p - 1)
    mean = p / (2 * p - 1) + 1 / (2 * mpmath.atanh(1 - 2 * p))
    var = p * (p - 1) / (1 - 2 * p) ** 2 + 1 / (2 * mpmath.atanh(1 - 2 * p)) ** 2
    ent = -(mean * mpmath.log(p) + (1 - mean) * mpmath.log(1 - p) + mpmath.log(c))
    return tuple(float(v) for v in (logp, cdf, mean, var, ent))


def test_continuous_bernoulli_vs_high_precision():
    # both sides of lims=(0.499, 0.501): exact formulas and Taylor expansions
    p = np.array([0.05, 0.3, 0.4989, 0.4995, 0.5, 0.5004, 0.5012, 0.7, 0.98])
    x = np.array([0.1, 0.9, 0.5, 0.2, 0.7, 0.3, 0.99, 0.4, 0.6])
    ref = np.array([_cb_ref(pi, xi) for pi, xi in zip(p, x)])
    for d in (D.ContinuousBernoulli(t(p)), D.ContinuousBernoulli(logits=t(np.log(p / (1 - p))))):
        np.testing.assert_allclose(d.log_prob(t(x)).numpy(), ref[:, 0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(d.cdf(t(x)).numpy(), ref[:, 1], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(d.mean.numpy(), ref[:, 2], rtol=1e-9)
        # the exact variance cancels ~6 digits just outside lims (as PyTorch's)
        np.testing.assert_allclose(d.variance.numpy(), ref[:, 3], rtol=2e-8)
        np.testing.assert_allclose(d.entropy().numpy(), ref[:, 4], rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(d.icdf(d.cdf(t(x))).numpy(), x, rtol=1e-8)
    d = D.ContinuousBernoulli(t(p))
    s = d.rsample((N_MC,)).numpy()
    assert np.all((s >= 0) & (s <= 1))
    _check_moments(s, ref[:, 2], ref[:, 3])
    # reparametrized: finite difference of the seeded sample in probs
    w = np.random.default_rng(0).normal(size=(30, 2))

    def loss(q):
        fw.manual_seed(5)
        return (D.ContinuousBernoulli(q).rsample((30,)) * t(w)).sum()

    q = t([0.2, 0.8], requires_grad=True)
    loss(q).backward()
    for j in range(2):
        up, down = np.array([0.2, 0.8]), np.array([0.2, 0.8])
        up[j] += 1e-6
        down[j] -= 1e-6
        fd = (loss(t(up)).item() - loss(t(down)).item()) / 2e-6
        assert q.grad.numpy()[j] == pytest.approx(fd, rel=1e-5)
    with pytest.raises(ValueError, match="Interval"):
        d.log_prob(t(np.full(9, 1.5)))
    with pytest.raises(ValueError, match="probs"):
        D.ContinuousBernoulli(t([1.5]))


def test_expand_and_sample_shapes():
    cases = [(D.Binomial(t([5.0]), t([0.3])), ()), (D.Geometric(t([0.3])), ()),
             (D.NegativeBinomial(t([2.0]), t([0.3])), ()),
             (D.ContinuousBernoulli(t([0.3])), ()),
             (D.Multinomial(5, t([[0.2, 0.8]])), (2,)),
             (D.Binomial(t([5.0]), logits=t([0.3])), ())]
    for d, event in cases:
        e = d.expand((3, 1))
        assert type(e) is type(d) and e.batch_shape == (3, 1), d
        x = e.sample((4,))
        assert x.shape == (4, 3, 1) + event, d
        assert e.log_prob(x).shape == (4, 3, 1), d
        np.testing.assert_allclose(e.log_prob(x).numpy(), d.log_prob(x).numpy(), rtol=1e-12)
    assert D.Binomial(10, t(0.5)).sample().shape == ()
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Binomial(3, probs=t([0.5]), logits=t([0.0]))
    with pytest.raises(ValueError, match="total_count"):
        D.Binomial(t([2.5]), t([0.5]))
    with pytest.raises(ValueError, match="IntegerInterval"):
        D.Binomial(t([3.0]), t([0.5])).log_prob(t([4.0]))
