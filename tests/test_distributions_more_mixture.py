"""fw.distributions MixtureSameFamily, RelaxedBernoulli, RelaxedOneHotCategorical,
LowRankMultivariateNormal, LogisticNormal, LKJCholesky and the new transforms: densities
vs NumPy formulas, Monte-Carlo moments, gradients, shapes, validation, fw.compile'd
log_prob vs eager, and a cuda run."""

import math
import warnings

import numpy as np
import pytest

import framework as fw
from framework import distributions as D
from framework.distributions import transforms as T

F64 = fw.float64
N_MC = 20000


def t(x, **kw):
    return fw.tensor(x, dtype=F64, **kw)


def _normal_logpdf(x, m, s):
    return -((x - m) ** 2) / (2 * s * s) - np.log(s) - 0.5 * np.log(2 * np.pi)


def _logsumexp(a, axis):
    m = a.max(axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis, keepdims=True))).squeeze(axis)


def _softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _gmm(rng, batch=(3,), k=5, dim=2):
    logits = rng.normal(size=batch + (k,))
    loc = rng.normal(size=batch + (k, dim)) * 2
    scale = rng.uniform(0.3, 1.5, size=batch + (k, dim))
    d = D.MixtureSameFamily(D.Categorical(logits=t(logits)),
                            D.Independent(D.Normal(t(loc), t(scale)), 1))
    return d, _softmax(logits), loc, scale


def test_mixture_log_prob_moments_and_samples():
    rng = np.random.default_rng(0)
    d, w, loc, scale = _gmm(rng)
    assert d.batch_shape == (3,) and d.event_shape == (2,) and not d.has_rsample
    x = rng.normal(size=(4, 3, 2)) * 2
    comp = _normal_logpdf(x[:, :, None, :], loc, scale).sum(-1)  # (4, 3, 5)
    want = _logsumexp(comp + np.log(w), -1)
    np.testing.assert_allclose(d.log_prob(t(x)).numpy(), want, rtol=1e-10)
    mean = (w[..., None] * loc).sum(-2)
    var = (w[..., None] * (scale ** 2 + loc ** 2)).sum(-2) - mean ** 2
    np.testing.assert_allclose(d.mean.numpy(), mean, rtol=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), var, rtol=1e-10)
    s = d.sample((N_MC,)).numpy()
    assert s.shape == (N_MC, 3, 2)
    assert np.all(np.abs(s.mean(0) - mean) < 5 * np.sqrt(var / N_MC))
    assert np.all(np.abs(s.var(0) - var) < 0.05 * var + 0.02)
    for shape in [(), (4,), (2, 3)]:
        assert d.sample(shape).shape == shape + (3, 2)
        assert d.log_prob(d.sample(shape)).shape == shape + (3,)
    # 1-D mixture: cdf is the weighted component cdf; the component draw follows the weights
    m = D.MixtureSameFamily(D.Categorical(t([0.2, 0.8])), D.Normal(t([-10.0, 10.0]), 1.0))
    v = m.sample((N_MC,)).numpy()
    assert abs((v < 0).mean() - 0.2) < 5 * math.sqrt(0.16 / N_MC)
    from math import erf
    want_cdf = 0.2 * 0.5 * (1 + erf((0.5 + 10) / math.sqrt(2))) + 0.8 * 0.5 * (
        1 + erf((0.5 - 10) / math.sqrt(2)))
    assert m.cdf(t(0.5)).item() == pytest.approx(want_cdf, rel=1e-12)


def test_mixture_gradients_are_responsibilities():
    # mixture density network: d log p / d logits_k = r_k - pi_k, d/d loc_k = r_k (x - mu_k)/s^2
    logits = t([[0.3, -0.5, 1.0]], requires_grad=True)
    loc = t([[-1.0, 0.5, 2.0]], requires_grad=True)
    scale = t([[1.0, 0.5, 2.0]], requires_grad=True)
    x = 0.7
    d = D.MixtureSameFamily(D.Categorical(logits=logits), D.Normal(loc, scale))
    d.log_prob(t([x])).sum().backward()
    lg, m, s = (v.detach().numpy()[0] for v in (logits, loc, scale))
    pi = _softmax(lg)
    r = pi * np.exp(_normal_logpdf(x, m, s))
    r /= r.sum()
    np.testing.assert_allclose(logits.grad.numpy()[0], r - pi, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(loc.grad.numpy()[0], r * (x - m) / s ** 2, rtol=1e-10)
    np.testing.assert_allclose(scale.grad.numpy()[0], r * ((x - m) ** 2 / s ** 3 - 1 / s),
                               rtol=1e-10)


def test_mixture_broadcast_expand_and_errors():
    # one mixing distribution shared by a (2, 4) batch of 4-component mixtures
    comp = D.Normal(t(np.arange(8.0).reshape(2, 4)), 1.0)
    d = D.MixtureSameFamily(D.Categorical(logits=fw.zeros(4, dtype=F64)), comp)
    assert d.batch_shape == (2,) and d.sample((5,)).shape == (5, 2)
    e = d.expand((3, 2))
    assert e.batch_shape == (3, 2) and e.sample((4,)).shape == (4, 3, 2)
    np.testing.assert_allclose(e.log_prob(t([1.0, 5.0])).numpy()[0], d.log_prob(t([1.0, 5.0]))
                               .numpy())
    with pytest.raises(ValueError, match="instance of Categorical"):
        D.MixtureSameFamily(D.Normal(0.0, 1.0), comp)
    with pytest.raises(ValueError, match="instance of Distribution"):
        D.MixtureSameFamily(D.Categorical(logits=fw.zeros(4)), "normal")
    with pytest.raises(ValueError, match="3 components"):
        D.MixtureSameFamily(D.Categorical(logits=fw.zeros(3)), comp)
    with pytest.raises(ValueError, match="not compatible"):
        D.MixtureSameFamily(D.Categorical(logits=fw.zeros(5, 4)), comp)
    with pytest.raises(ValueError, match="batch dim"):
        D.MixtureSameFamily(D.Categorical(logits=fw.zeros(1)), D.Normal(0.0, 1.0))
    g = D.MixtureSameFamily(D.Categorical(logits=fw.zeros(2)), D.Gamma(t([1.0, 2.0]), 1.0))
    with pytest.raises(ValueError, match="within the support"):
        g.log_prob(t(-1.0))
    with pytest.raises(NotImplementedError, match="entropy"):
        g.entropy()
    with pytest.raises(NotImplementedError, match="rsample"):
        g.rsample()


def _binary_concrete_logpdf(y, lam, logit):
    a = np.exp(logit)
    return (np.log(lam * a) - (lam + 1) * (np.log(y) + np.log1p(-y))
            - 2 * np.log(a * y ** -lam + (1 - y) ** -lam))


def test_relaxed_bernoulli():
    lam, p = 0.7, np.array([0.2, 0.5, 0.9])
    logit = np.log(p / (1 - p))
    y = np.array([0.1, 0.6, 0.97])
    for d in (D.RelaxedBernoulli(t(lam), t(p)), D.RelaxedBernoulli(lam, logits=t(logit))):
        np.testing.assert_allclose(d.log_prob(t(y)).numpy(),
                                   _binary_concrete_logpdf(y, lam, logit), rtol=1e-9)
        np.testing.assert_allclose(d.probs.numpy(), p, rtol=1e-12)
    # the density integrates to 1; P(Y > 1/2) = p
    grid = np.linspace(1e-6, 1 - 1e-6, 20001)
    dens = np.exp(D.RelaxedBernoulli(2.0, t([0.3])).log_prob(t(grid[:, None])).numpy()[:, 0])
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-6)
    s = D.RelaxedBernoulli(t(lam), t(p)).rsample((N_MC,)).numpy()
    assert np.all((s > 0) & (s < 1))
    assert np.all(np.abs((s > 0.5).mean(0) - p) < 5 * np.sqrt(p * (1 - p) / N_MC))


def test_relaxed_one_hot_categorical():
    lam, logits = 0.5, np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    d = D.RelaxedOneHotCategorical(t(lam), logits=t(logits))
    assert d.batch_shape == (2,) and d.event_shape == (3,) and d.has_rsample
    y = np.array([[0.1, 0.3, 0.6], [0.7, 0.2, 0.1]])
    # Concrete density (Maddison et al. 2017, eq. 1)
    a = np.exp(logits)
    want = (math.lgamma(3) + 2 * np.log(lam) + (np.log(a) - (lam + 1) * np.log(y)).sum(-1)
            - 3 * np.log((a * y ** -lam).sum(-1)))
    np.testing.assert_allclose(d.log_prob(t(y)).numpy(), want, rtol=1e-9)
    # two classes: the binary Concrete
    two = D.RelaxedOneHotCategorical(lam, logits=t([0.4, -0.3]))
    yb = np.array([0.25, 0.75])
    assert two.log_prob(t(yb)).item() == pytest.approx(
        _binary_concrete_logpdf(0.25, lam, 0.7), rel=1e-9)
    s = d.rsample((N_MC,)).numpy()
    assert s.shape == (N_MC, 2, 3) and np.allclose(s.sum(-1), 1.0)
    freq = np.stack([(s.argmax(-1) == k).mean(0) for k in range(3)], -1)  # Gumbel-max
    p = _softmax(logits)
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / N_MC))
    # reparametrized: seeded finite difference in the logits
    wt = np.random.default_rng(2).normal(size=(20, 3))

    def loss(lg):
        fw.manual_seed(11)
        return (D.RelaxedOneHotCategorical(lam, logits=lg).rsample((20,)) * t(wt)).sum()

    lg = t([0.1, -0.4, 0.3], requires_grad=True)
    loss(lg).backward()
    for j in range(3):
        up, dn = np.array([0.1, -0.4, 0.3]), np.array([0.1, -0.4, 0.3])
        up[j] += 1e-6
        dn[j] -= 1e-6
        fd = (loss(t(up)).item() - loss(t(dn)).item()) / 2e-6
        assert lg.grad.numpy()[j] == pytest.approx(fd, rel=1e-5, abs=1e-8)
    assert d.expand((4, 2)).rsample().shape == (4, 2, 3)
    with pytest.raises(ValueError, match="Simplex"):
        d.log_prob(t([[0.5, 0.6, 0.1], [0.2, 0.2, 0.6]]))


def _mvn_logpdf(x, mu, cov):
    diff = x - mu
    sol = np.linalg.solve(cov, diff[..., None])[..., 0]
    return -0.5 * (mu.shape[-1] * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1]
                   + (diff * sol).sum(-1))


def test_low_rank_multivariate_normal():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(2, 4, 2))
    Dg = rng.uniform(0.2, 1.0, size=(4,))  # broadcast against W's batch
    mu = rng.normal(size=(2, 4))
    cov = W @ W.transpose(0, 2, 1) + np.diag(Dg)
    d = D.LowRankMultivariateNormal(t(mu), t(W), t(Dg))
    assert d.batch_shape == (2,) and d.event_shape == (4,)
    x = rng.normal(size=(5, 2, 4))
    np.testing.assert_allclose(d.log_prob(t(x)).numpy(), _mvn_logpdf(x, mu, cov), rtol=1e-10)
    ent = 0.5 * 4 * (1 + np.log(2 * np.pi)) + 0.5 * np.linalg.slogdet(cov)[1]
    np.testing.assert_allclose(d.entropy().numpy(), ent, rtol=1e-10)
    np.testing.assert_allclose(d.covariance_matrix.numpy(), cov, rtol=1e-12)
    np.testing.assert_allclose(d.precision_matrix.numpy(), np.linalg.inv(cov), rtol=1e-9,
                               atol=1e-10)
    np.testing.assert_allclose(d.scale_tril.numpy(), np.linalg.cholesky(cov), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), np.diagonal(cov, axis1=1, axis2=2))
    assert d.mean is d.loc and d.mode is d.loc
    s = d.rsample((N_MC,)).numpy()
    assert s.shape == (N_MC, 2, 4)
    emp = np.einsum("nbi,nbj->bij", s - mu, s - mu) / N_MC
    assert np.all(np.abs(emp - cov) < 5 * np.sqrt((cov ** 2 + np.einsum(
        "bii,bjj->bij", cov, cov)) / N_MC))
    # gradient of log_prob in W vs the dense formula: -0.5 d/dW [logdet + x^T S^-1 x]
    Wt = t(W[0], requires_grad=True)
    D.LowRankMultivariateNormal(t(mu[0]), Wt, t(Dg)).log_prob(t(x[0, 0])).backward()
    Si = np.linalg.inv(cov[0])
    a = Si @ (x[0, 0] - mu[0])
    np.testing.assert_allclose(Wt.grad.numpy(), (np.outer(a, a) - Si) @ W[0], rtol=1e-8)
    e = d.expand((3, 2))
    assert e.batch_shape == (3, 2) and e.rsample((2,)).shape == (2, 3, 2, 4)
    np.testing.assert_allclose(e.log_prob(t(x[0])).numpy()[1], d.log_prob(t(x[0])).numpy())
    with pytest.raises(ValueError, match="cov_diag"):
        D.LowRankMultivariateNormal(t(mu), t(W), t(-Dg))
    with pytest.raises(ValueError, match="cov_factor must be a batch of matrices"):
        D.LowRankMultivariateNormal(t(mu), t(W[..., :3, :]), t(Dg))
    with pytest.raises(ValueError, match="Incompatible batch shapes"):
        D.LowRankMultivariateNormal(t(np.zeros((3, 4))), t(W), t(Dg))


def _stick_breaking_np(x):
    k = x.shape[-1]
    z = 1 / (1 + np.exp(-(x - np.log(k - np.arange(k)))))
    rest = np.concatenate([[1.0], np.cumprod(1 - z)])
    return np.concatenate([z, [1.0]]) * rest


def test_stick_breaking_power_and_abs_transforms():
    x = np.array([0.3, -1.2, 2.0])
    sb = T.StickBreakingTransform()
    y = sb(t(x))
    np.testing.assert_allclose(y.numpy(), _stick_breaking_np(x), rtol=1e-12)
    np.testing.assert_allclose(sb(fw.zeros(3, dtype=F64)).numpy(), np.full(4, 0.25))
    np.testing.assert_allclose(sb.inv(y).numpy(), x, rtol=1e-10)
    h = 1e-6
    jac = np.stack([(_stick_breaking_np(x + h * e) - _stick_breaking_np(x - h * e))[:3] / (2 * h)
                    for e in np.eye(3)], -1)
    assert sb.log_abs_det_jacobian(t(x), y).item() == pytest.approx(
        np.linalg.slogdet(jac)[1], rel=1e-7)
    assert sb.forward_shape((5, 3)) == (5, 4) and sb.inverse_shape((5, 4)) == (5, 3)
    pw = T.PowerTransform(t([0.5, 2.0, -1.0]))
    v = np.array([0.7, 1.3, 2.0])
    np.testing.assert_allclose(pw(t(v)).numpy(), v ** np.array([0.5, 2.0, -1.0]))
    np.testing.assert_allclose(pw.log_abs_det_jacobian(t(v), pw(t(v))).numpy(),
                               np.log(np.abs(np.array([0.5, 2.0, -1.0])
                                             * v ** np.array([-0.5, 1.0, -2.0]))), rtol=1e-12)
    np.testing.assert_allclose(pw.inv(pw(t(v))).numpy(), v, rtol=1e-12)
    assert pw.sign.numpy().tolist() == [1.0, 1.0, -1.0] and T.PowerTransform(-2.0).sign == -1
    assert pw == T.PowerTransform(t([0.5, 2.0, -1.0])) and pw != T.PowerTransform(2.0)
    ab = T.AbsTransform()
    assert ab(t([-2.0])).item() == 2.0 and ab.inv(t([2.0])).item() == 2.0 and not ab.bijective


def test_logistic_normal():
    loc, scale = np.array([[0.3, -0.5, 1.0]]), np.array([[1.0, 0.5, 2.0]])
    d = D.LogisticNormal(t(loc), t(scale))
    assert d.batch_shape == (1,) and d.event_shape == (4,)
    y = np.array([0.1, 0.2, 0.3, 0.4])
    x = np.array(T.StickBreakingTransform().inv(t(y)).numpy())
    h = 1e-6
    jac = np.stack([(_stick_breaking_np(x + h * e) - _stick_breaking_np(x - h * e))[:3] / (2 * h)
                    for e in np.eye(3)], -1)
    want = _normal_logpdf(x, loc[0], scale[0]).sum() - np.linalg.slogdet(jac)[1]
    assert d.log_prob(t(y)).item() == pytest.approx(want, rel=1e-7)
    s = d.rsample((N_MC,))
    assert s.shape == (N_MC, 1, 4) and bool(D.constraints.simplex.check(s).all())
    back = T.StickBreakingTransform().inv(s).numpy()
    assert np.all(np.abs(back.mean(0) - loc) < 5 * scale / np.sqrt(N_MC))
    assert np.all(np.abs(back.std(0) - scale) < 0.03 * scale)
    np.testing.assert_allclose(d.loc.numpy(), loc)
    flat = D.LogisticNormal(t([0.0, 0.0]), 1.0)
    assert flat.batch_shape == () and flat.event_shape == (3,)
    np.testing.assert_allclose(flat.sample().numpy().sum(), 1.0)
    assert d.expand((3,)).sample().shape == (3, 4)
    with pytest.raises(ValueError, match="Simplex"):
        d.log_prob(t([0.5, 0.5, 0.5, -0.5]))


def test_lkj_cholesky():
    for eta in (0.5, 1.0, 3.0):
        # dim 2: L = [[1, 0], [r, sqrt(1 - r^2)]] with r of density
        # (1 - r^2)^(eta - 1) / (B(eta, eta) 2^(2 eta - 1))
        r = np.array([-0.6, 0.1, 0.9])
        L = np.zeros((3, 2, 2))
        L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = 1, r, np.sqrt(1 - r * r)
        lb = 2 * math.lgamma(eta) - math.lgamma(2 * eta)
        want = (eta - 1) * np.log1p(-r * r) - lb - (2 * eta - 1) * np.log(2)
        np.testing.assert_allclose(D.LKJCholesky(2, t(eta)).log_prob(t(L)).numpy(), want,
                                   rtol=1e-10)
        # dim 3: the normalizer is B(1/2, eta + 1/2) * pi / eta
        d3 = D.LKJCholesky(3, t(eta))
        M = np.linalg.cholesky(np.array([[1, 0.3, -0.2], [0.3, 1, 0.5], [-0.2, 0.5, 1]]))
        unnorm = (2 * eta - 1) * np.log(M[1, 1]) + (2 * eta - 2) * np.log(M[2, 2])
        log_z = (math.lgamma(0.5) + math.lgamma(eta + 0.5) - math.lgamma(eta + 1)
                 + math.log(math.pi / eta))
        assert d3.log_prob(t(M)).item() == pytest.approx(unnorm - log_z, rel=1e-10)
    # samples: valid factors; off-diagonal correlations have variance 1 / (2 eta + d - 1)
    eta, dim = t([0.8, 2.5]), 4
    d = D.LKJCholesky(dim, eta)
    assert d.batch_shape == (2,) and d.event_shape == (4, 4) and not d.has_rsample
    s = d.sample((N_MC // 4,))
    assert s.shape == (N_MC // 4, 2, 4, 4) and bool(d.support.check(s).all())
    C = (s @ s.mT).numpy()
    off = C[..., np.tril_indices(4, -1)[0], np.tril_indices(4, -1)[1]]
    want_var = 1 / (2 * eta.numpy() + dim - 1)
    assert np.all(np.abs(off.mean(0)) < 5 * np.sqrt(want_var[:, None] / len(off)))
    assert np.all(np.abs(off.var(0) - want_var[:, None]) < 0.1 * want_var[:, None])
    assert d.expand((3, 2)).sample().shape == (3, 2, 4, 4)
    with pytest.raises(ValueError, match="dim"):
        D.LKJCholesky(1)
    with pytest.raises(ValueError, match="concentration"):
        D.LKJCholesky(3, t([-1.0]))
    with pytest.raises(ValueError, match="CorrCholesky"):
        d.log_prob(fw.eye(4, dtype=F64) * 2)


def _all_log_probs(loc, scale, df, logits, x, u):
    lp = D.StudentT(df, loc, scale).log_prob(x).sum() + D.VonMises(loc, scale).log_prob(x).sum()
    mix = D.MixtureSameFamily(D.Categorical(logits=logits), D.Normal(loc, scale))
    lp = lp + mix.log_prob(x).sum() + D.Gumbel(loc, scale).log_prob(x).sum()
    lp = lp + D.Kumaraswamy(scale, df).log_prob(u).sum() + D.Weibull(scale, df).log_prob(u).sum()
    lp = lp + D.Binomial(10, logits=loc).log_prob((u * 10).floor()).sum()
    lp = lp + D.HalfNormal(scale).log_prob(u).sum() + D.Cauchy(loc, scale).log_prob(x).sum()
    lp = lp + D.ContinuousBernoulli(logits=loc).log_prob(u).sum()
    lp = lp + D.LowRankMultivariateNormal(loc, fw.ones(2, 1), scale).log_prob(x).sum()
    lp = lp + D.FisherSnedecor(df, scale).log_prob(u).sum() + D.Chi2(df).log_prob(u).sum()
    return lp + D.RelaxedBernoulli(0.5, logits=loc).log_prob(u).sum()


def test_compiled_log_prob_matches_eager():
    cf = fw.compile(_all_log_probs, fullgraph=True, mode="always")
    args = (fw.tensor([0.5, -1.0]), fw.tensor([1.0, 2.0]), fw.tensor([3.0, 7.0]),
            fw.tensor([0.2, -0.3]), fw.randn(8, 2), fw.rand(8, 2) * 0.9 + 0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cf(*args)
    np.testing.assert_allclose(got.numpy(), _all_log_probs(*args).numpy(), rtol=1e-5)
    assert cf.stats()["graph_breaks"] == []


@pytest.mark.gpu
def test_cuda_samples_log_probs_and_grads():
    dev = "cuda"
    loc = fw.tensor([0.0, 1.0], device=dev, requires_grad=True)
    scale = fw.tensor([1.0, 2.0], device=dev)
    df = fw.tensor([4.0, 7.0], device=dev, requires_grad=True)
    x = D.StudentT(df, loc, scale).rsample((50,))
    x.sum().backward()
    assert x.device.type == "cuda" and df.grad.device.type == "cuda"
    mix = D.MixtureSameFamily(D.Categorical(logits=fw.zeros(2, device=dev)),
                              D.Normal(loc, scale))
    assert mix.log_prob(mix.sample((10,))).device.type == "cuda"
    for d in (D.VonMises(loc.detach(), scale), D.Gumbel(loc, scale),
              D.Binomial(fw.tensor([5.0, 50.0], device=dev), logits=loc),
              D.Multinomial(10, fw.tensor([0.2, 0.8], device=dev)),
              D.RelaxedOneHotCategorical(0.5, logits=fw.zeros(3, device=dev)),
              D.LKJCholesky(3, fw.tensor(2.0, device=dev)),
              D.ContinuousBernoulli(fw.tensor([0.2, 0.5], device=dev)),
              D.NegativeBinomial(fw.tensor([3.0], device=dev), fw.tensor([0.4], device=dev))):
        s = d.sample((3,))
        assert s.device.type == "cuda" and d.log_prob(s).device.type == "cuda", d
