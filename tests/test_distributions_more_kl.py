"""fw.distributions.kl_divergence for the families beyond the core set: closed forms vs
NumPy formulas and Monte-Carlo estimates E_p[log p - log q], KL(p, p) = 0, the infinite
and unsupported cases, low-rank Gaussians vs dense ones, and gradients."""

import math

import numpy as np
import pytest

import framework as fw
from framework import distributions as D
from framework.distributions import kl_divergence

F64 = fw.float64
N_MC = 20000
EG = 0.5772156649015329


def t(x, **kw):
    return fw.tensor(x, dtype=F64, **kw)


def _lowrank(mu, w, d):
    return D.LowRankMultivariateNormal(t(mu), t(w), t(d))


RNG = np.random.default_rng(4)
W1, W2 = RNG.normal(size=(3, 2)), RNG.normal(size=(3, 1))
PAIRS = {
    "Cauchy": (D.Cauchy(t([0.0, 1.0]), t([1.0, 0.5])), D.Cauchy(t([0.5, -1.0]), t([2.0, 1.0]))),
    "Gumbel": (D.Gumbel(t([0.0, 1.0]), t([1.0, 0.5])), D.Gumbel(t([0.5, -1.0]), t([2.0, 1.0]))),
    "HalfNormal": (D.HalfNormal(t([1.0, 0.5])), D.HalfNormal(t([2.0, 0.4]))),
    "Pareto": (D.Pareto(t([2.0, 1.0]), t([3.0, 5.0])), D.Pareto(t([1.0, 0.5]), t([2.0, 6.0]))),
    "Geometric": (D.Geometric(t([0.3, 0.8])), D.Geometric(t([0.5, 0.1]))),
    "Binomial": (D.Binomial(t([10.0, 4.0]), t([0.3, 0.8])),
                 D.Binomial(t([10.0, 4.0]), logits=t([0.5, -1.0]))),
    "ContinuousBernoulli": (D.ContinuousBernoulli(t([0.2, 0.5, 0.9])),
                            D.ContinuousBernoulli(t([0.7, 0.4995, 0.1]))),
    "Chi2": (D.Chi2(t([3.0, 7.0])), D.Chi2(t([5.0, 2.0]))),
    "LowRank-LowRank": (_lowrank(np.zeros(3), W1, np.ones(3)),
                        _lowrank(np.ones(3), W2, np.full(3, 0.5))),
    "LowRank-MVN": (_lowrank(np.zeros(3), W1, np.ones(3)),
                    D.MultivariateNormal(t(np.ones(3)), t(np.eye(3) * 2 + 0.3))),
    "MVN-LowRank": (D.MultivariateNormal(t(np.ones(3)), t(np.eye(3) * 2 + 0.3)),
                    _lowrank(np.zeros(3), W1, np.ones(3))),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_kl_matches_monte_carlo(name):
    p, q = PAIRS[name]
    kl = kl_divergence(p, q).numpy()
    x = p.sample((N_MC,))
    diff = (p.log_prob(x) - q.log_prob(x)).numpy()
    tol = 5 * diff.std(0) / np.sqrt(N_MC) + 1e-9
    assert np.all(np.abs(diff.mean(0) - kl) < tol), (kl, diff.mean(0), tol)
    np.testing.assert_allclose(kl_divergence(p, p).numpy(), 0.0, atol=1e-9)


def test_kl_closed_forms_vs_formulas():
    lp, sp, lq, sq = np.array([0.0, 1.0]), np.array([1.0, 0.5]), np.array([0.5, -1.0]), \
        np.array([2.0, 1.0])
    got = kl_divergence(*PAIRS["Cauchy"]).numpy()
    np.testing.assert_allclose(got, np.log(((sp + sq) ** 2 + (lp - lq) ** 2) / (4 * sp * sq)),
                               rtol=1e-12)
    got = kl_divergence(*PAIRS["Gumbel"]).numpy()
    ratio = sp / sq
    want = (np.log(sq / sp) + EG * (ratio - 1) + (lp - lq) / sq - 1
            + np.exp((lq - lp) / sq) * np.exp(np.vectorize(math.lgamma)(1 + ratio)))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    s1, a1, s2, a2 = np.array([2.0, 1.0]), np.array([3.0, 5.0]), np.array([1.0, 0.5]), \
        np.array([2.0, 6.0])
    want = np.log(a1 / a2) + a2 * np.log(s1 / s2) + a2 / a1 - 1
    np.testing.assert_allclose(kl_divergence(*PAIRS["Pareto"]).numpy(), want, rtol=1e-12)
    # p's support not inside q's: infinite
    assert kl_divergence(D.Pareto(t([1.0]), 2.0), D.Pareto(t([2.0]), 2.0)).item() == math.inf
    assert kl_divergence(D.Binomial(t([5.0]), t([0.3])),
                         D.Binomial(t([4.0]), t([0.3]))).item() == math.inf
    with pytest.raises(NotImplementedError, match="q.total_count > p.total_count"):
        kl_divergence(D.Binomial(t([4.0]), t([0.3])), D.Binomial(t([5.0]), t([0.3])))
    with pytest.raises(NotImplementedError, match="No KL"):
        kl_divergence(D.StudentT(3.0), D.StudentT(4.0))


def test_low_rank_kl_equals_dense_kl():
    p, q = PAIRS["LowRank-LowRank"]
    dense = kl_divergence(D.MultivariateNormal(p.loc, p.covariance_matrix),
                          D.MultivariateNormal(q.loc, q.covariance_matrix))
    np.testing.assert_allclose(kl_divergence(p, q).numpy(), dense.numpy(), rtol=1e-10)


def test_kl_gradients_vs_finite_differences():
    def kl(v):
        return kl_divergence(D.Gumbel(v[0], v[1]), D.Gumbel(t(0.5), t(2.0))) + \
            kl_divergence(D.ContinuousBernoulli(v[2]), D.ContinuousBernoulli(t(0.3)))

    v0 = np.array([0.2, 0.7, 0.8])
    v = t(v0, requires_grad=True)
    kl(v).backward()
    for j in range(3):
        up, dn = v0.copy(), v0.copy()
        up[j] += 1e-6
        dn[j] -= 1e-6
        fd = (kl(t(up)).item() - kl(t(dn)).item()) / 2e-6
        assert v.grad.numpy()[j] == pytest.approx(fd, rel=1e-6)
