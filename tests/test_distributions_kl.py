"""fw.distributions.kl_divergence: closed forms vs NumPy formulas, a Monte-Carlo check,
KL(p, p) = 0 for every registered pair, infinities, gradients and register_kl dispatch."""

import math

import numpy as np
import pytest

import framework as fw
from framework import distributions as D
from framework.distributions import kl as K
from framework.distributions import kl_divergence, register_kl

F64 = fw.float64


def t(x, **kw):
    return fw.tensor(x, dtype=F64, **kw)


def test_normal_normal():
    m1, s1, m2, s2 = np.array([0.0, 1.0]), np.array([1.0, 0.5]), np.array([1.0, -1.0]), 2.0
    got = kl_divergence(D.Normal(t(m1), t(s1)), D.Normal(t(m2), s2)).numpy()
    want = np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bernoulli_and_categorical():
    p, q = np.array([0.1, 0.5, 0.9]), np.array([0.3, 0.5, 0.2])
    got = kl_divergence(D.Bernoulli(t(p)), D.Bernoulli(logits=t(np.log(q / (1 - q))))).numpy()
    want = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    P = np.array([[0.2, 0.3, 0.5], [0.0, 0.5, 0.5]])
    Q = np.array([[0.1, 0.1, 0.8], [0.4, 0.4, 0.2]])
    got = kl_divergence(D.Categorical(t(P)), D.Categorical(t(Q))).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where(P > 0, P * np.log(P / Q), 0.0).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_allclose(
        kl_divergence(D.OneHotCategorical(t(P)), D.OneHotCategorical(t(Q))).numpy(), want,
        rtol=1e-10)
    # support of p not inside q's: infinite
    assert kl_divergence(D.Categorical(t([0.5, 0.5])), D.Categorical(t([1.0, 0.0]))).item() \
        == math.inf
    assert kl_divergence(D.Bernoulli(t([0.5])), D.Bernoulli(t([1.0]))).item() == math.inf
    assert kl_divergence(D.Bernoulli(t([0.0])), D.Bernoulli(t([0.3]))).item() == \
        pytest.approx(-math.log(0.7))


def test_uniform_uniform():
    got = kl_divergence(D.Uniform(t([0.0, 0.0]), t([1.0, 1.0])),
                        D.Uniform(t([-1.0, 0.5]), t([2.0, 2.0]))).numpy()
    assert got[0] == pytest.approx(math.log(3.0)) and got[1] == math.inf


def test_multivariate_normal():
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(2, 3, 3)), rng.normal(size=(3, 3))
    S1 = A @ A.transpose(0, 2, 1) + np.eye(3)  # batch of 2
    S2 = B @ B.T + np.eye(3)  # broadcast against it
    m1, m2 = rng.normal(size=(2, 3)), rng.normal(size=3)
    p = D.MultivariateNormal(t(m1), covariance_matrix=t(S1))
    q = D.MultivariateNormal(t(m2), precision_matrix=t(np.linalg.inv(S2)))
    S2i = np.linalg.inv(S2)
    d = m2 - m1
    want = 0.5 * (np.trace(S2i @ S1, axis1=-2, axis2=-1) + np.einsum("bi,ij,bj->b", d, S2i, d)
                  - 3 + np.linalg.slogdet(S2)[1] - np.linalg.slogdet(S1)[1])
    np.testing.assert_allclose(kl_divergence(p, q).numpy(), want, rtol=1e-9)
    with pytest.raises(ValueError, match="different event shapes"):
        kl_divergence(p, D.MultivariateNormal(fw.zeros(2, dtype=F64), fw.eye(2, dtype=F64)))


def test_independent_and_transformed():
    p = D.Independent(D.Normal(t(np.zeros((2, 3))), 1.0), 1)
    q = D.Independent(D.Normal(t(np.ones((2, 3))), 2.0), 1)
    base = kl_divergence(p.base_dist, q.base_dist).numpy()
    np.testing.assert_allclose(kl_divergence(p, q).numpy(), base.sum(-1))
    with pytest.raises(NotImplementedError):
        kl_divergence(p, D.Independent(D.Normal(t(np.ones((2, 3))), 2.0), 2))
    # KL is invariant under the same bijection: LogNormal's is its Normal's
    got = kl_divergence(D.LogNormal(t([0.0, 1.0]), t([1.0, 0.5])), D.LogNormal(0.5, 2.0))
    want = kl_divergence(D.Normal(t([0.0, 1.0]), t([1.0, 0.5])), D.Normal(0.5, 2.0))
    np.testing.assert_allclose(got.numpy(), want.numpy())


def test_monte_carlo_agrees_with_closed_form():
    n = 20000
    pairs = [(D.Gamma(t([2.0, 0.7]), t([1.0, 3.0])), D.Gamma(t([3.0, 1.0]), t([2.0, 2.0]))),
             (D.MultivariateNormal(t([0.0, 1.0]), t([[2.0, 0.3], [0.3, 1.0]])),
              D.MultivariateNormal(t([0.5, 0.0]), scale_tril=t([[1.0, 0.0], [0.5, 1.5]]))),
             (D.Beta(t([2.0]), t([3.0])), D.Beta(t([1.0]), t([1.5])))]
    for p, q in pairs:
        x = p.sample((n,))
        r = (p.log_prob(x) - q.log_prob(x)).numpy()
        kl = kl_divergence(p, q).numpy()
        assert np.all(np.abs(r.mean(0) - kl) < 5 * r.std(0) / np.sqrt(n)), (p, kl, r.mean(0))


PAIRS = {
    "Normal": D.Normal(t([0.0, 1.0]), t([1.0, 2.0])),
    "Bernoulli": D.Bernoulli(t([0.3, 0.6])),
    "Categorical": D.Categorical(logits=t([[0.1, 0.2], [1.0, -1.0]])),
    "OneHotCategorical": D.OneHotCategorical(t([0.2, 0.8])),
    "Uniform": D.Uniform(t([0.0]), t([2.0])),
    "Exponential": D.Exponential(t([0.5])),
    "Laplace": D.Laplace(t([0.0]), t([2.0])),
    "Poisson": D.Poisson(t([3.0])),
    "Gamma": D.Gamma(t([2.0]), t([0.5])),
    "Beta": D.Beta(t([2.0]), t([0.5])),
    "Dirichlet": D.Dirichlet(t([2.0, 0.5, 1.0])),
    "MultivariateNormal": D.MultivariateNormal(t([0.0, 1.0]), t([[2.0, 0.3], [0.3, 1.0]])),
    "Independent": D.Independent(D.Normal(t([[0.0, 1.0]]), 1.0), 1),
    "LogNormal": D.LogNormal(t([0.0]), t([0.5])),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_kl_of_a_distribution_with_itself_is_zero(name):
    d = PAIRS[name]
    kl = kl_divergence(d, d)
    assert kl.shape == d.batch_shape
    np.testing.assert_allclose(kl.numpy(), 0.0, atol=1e-12)


def test_kl_closed_forms_of_the_other_families():
    def kl(a, b):
        return kl_divergence(a, b).item()

    assert kl(D.Exponential(t(2.0)), D.Exponential(t(0.5))) == pytest.approx(
        math.log(2.0 / 0.5) + 0.5 / 2.0 - 1)
    assert kl(D.Poisson(t(3.0)), D.Poisson(t(1.5))) == pytest.approx(
        3.0 * math.log(2.0) - 1.5)
    # Laplace with equal locations: log(b2/b1) + b1/b2 - 1
    assert kl(D.Laplace(t(0.0), t(1.0)), D.Laplace(t(0.0), t(3.0))) == pytest.approx(
        math.log(3.0) + 1 / 3 - 1)
    # Dirichlet with two classes is a Beta
    assert kl(D.Dirichlet(t([2.0, 3.0])), D.Dirichlet(t([1.5, 0.5]))) == pytest.approx(
        kl(D.Beta(t(2.0), t(3.0)), D.Beta(t(1.5), t(0.5))))
    # Gamma with rate 1, concentration 1 is Exponential(1)
    assert kl(D.Gamma(t(1.0), t(2.0)), D.Gamma(t(1.0), t(0.5))) == pytest.approx(
        kl(D.Exponential(t(2.0)), D.Exponential(t(0.5))))


def test_kl_gradient_flows():
    loc = t([0.5], requires_grad=True)
    kl_divergence(D.Normal(loc, 1.0), D.Normal(0.0, 1.0)).sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [0.5])


def test_register_kl_dispatch_and_errors():
    class MyNormal(D.Normal):
        pass

    assert kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)).item() == pytest.approx(0.5)

    @register_kl(MyNormal, D.Normal)
    def _kl(p, q):
        return fw.tensor(42.0)

    try:
        assert kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)).item() == 42.0
        assert kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 1.0)).item() == \
            pytest.approx(0.5)
    finally:
        K._KL_REGISTRY.pop((MyNormal, D.Normal))
        K._KL_MEMOIZE.clear()
    with pytest.raises(NotImplementedError, match="p type Normal and q type Laplace"):
        kl_divergence(D.Normal(0.0, 1.0), D.Laplace(0.0, 1.0))
    with pytest.raises(TypeError):
        register_kl(int, D.Normal)
