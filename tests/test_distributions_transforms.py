"""fw.distributions transforms (log-abs-det-Jacobians vs finite differences, inverses,
caching, composition), TransformedDistribution (LogNormal == Normal through exp, cdf,
shapes) and the constraints module."""

import math

import numpy as np
import pytest

import framework as fw
from framework import distributions as D
from framework.distributions import constraints as C
from framework.distributions import transforms as T

F64 = fw.float64


def t(x, **kw):
    return fw.tensor(x, dtype=F64, **kw)


X = np.array([-3.0, -0.7, 0.0, 0.4, 2.5])
TRANSFORMS = {
    "exp": T.ExpTransform(),
    "affine": T.AffineTransform(1.5, -2.0),
    "affine_tensor": T.AffineTransform(t([0.0, 1.0, 2.0, 3.0, 4.0]), t([0.5, -1, 2, 3, -4])),
    "sigmoid": T.SigmoidTransform(),
    "tanh": T.TanhTransform(),
    "compose": T.ComposeTransform([T.AffineTransform(0.5, 1.5), T.TanhTransform()]),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_log_abs_det_jacobian_vs_finite_difference(name):
    tr = TRANSFORMS[name]
    x = t(X)
    y = tr(x)
    h = 1e-6
    fd = (tr(t(X + h)).numpy() - tr(t(X - h)).numpy()) / (2 * h)
    np.testing.assert_allclose(tr.log_abs_det_jacobian(x, y).numpy(), np.log(np.abs(fd)),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(tr.inv(y).numpy(), X, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(tr.inv.log_abs_det_jacobian(y, x).numpy(),
                               -tr.log_abs_det_jacobian(x, y).numpy())
    assert tr.inv.inv is tr and tr.bijective
    assert bool(tr.codomain.check(y).all())


def test_sign_and_shapes():
    assert T.ExpTransform().sign == 1 and T.AffineTransform(0.0, -2.0).sign == -1
    assert T.ComposeTransform([T.ExpTransform(), T.AffineTransform(0.0, -1.0)]).sign == -1
    aff = T.AffineTransform(t(np.zeros(3)), 2.0, event_dim=1)
    x = t(np.ones((4, 3)))
    assert aff.forward_shape((4, 1)) == (4, 3)
    np.testing.assert_allclose(aff.log_abs_det_jacobian(x, aff(x)).numpy(), 3 * math.log(2))
    assert aff.domain.event_dim == 1


def test_cache_makes_the_inverse_exact():
    tanh = T.TanhTransform(cache_size=1)
    x = t([30.0])  # tanh(x) rounds to 1: atanh would give inf without the cache
    y = tanh(x)
    assert tanh.inv(y) is x
    assert math.isinf(T.TanhTransform().inv(y).item())
    d = D.TransformedDistribution(D.Normal(t([0.0]), 10.0), [T.TanhTransform(cache_size=1)])
    s = d.rsample((100,))
    assert np.isfinite(d.log_prob(s).detach().numpy()).all()
    with pytest.raises(ValueError):
        T.ExpTransform(cache_size=2)


def test_lognormal_is_a_transformed_normal():
    loc, scale = t([0.0, 0.5]), t([1.0, 0.3])
    a = D.LogNormal(loc, scale)
    b = D.TransformedDistribution(D.Normal(loc, scale), T.ExpTransform())
    x = t([[0.5, 2.0], [1.0, 1.5]])
    np.testing.assert_allclose(a.log_prob(x).numpy(), b.log_prob(x).numpy())
    xn = x.numpy()
    want = (-(np.log(xn) - loc.numpy()) ** 2 / (2 * scale.numpy() ** 2)
            - np.log(scale.numpy() * xn) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(a.log_prob(x).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(a.cdf(x).numpy(), b.cdf(x).numpy())
    fw.manual_seed(5)
    sa = a.sample((3,))
    fw.manual_seed(5)
    np.testing.assert_array_equal(sa.numpy(), b.sample((3,)).numpy())
    assert a.batch_shape == b.batch_shape == (2,) and a.has_rsample and b.has_rsample
    with pytest.raises(ValueError, match="support"):
        a.log_prob(t([-1.0, 1.0]))


def test_transformed_distribution_cdf_icdf_and_decreasing_maps():
    base = D.Normal(t([0.0]), t([1.0]))
    d = D.TransformedDistribution(base, [T.AffineTransform(1.0, -2.0)])  # N(1, 2^2)
    ref = D.Normal(t([1.0]), t([2.0]))
    x = t([[-1.0], [0.3], [2.0]])
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref.log_prob(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(d.cdf(x).numpy(), ref.cdf(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(d.icdf(t([[0.2]])).numpy(), ref.icdf(t([[0.2]])).numpy())
    # a sigmoid of a normal (logit-normal) lives in (0, 1)
    ln = D.TransformedDistribution(D.Normal(0.0, 1.0), T.SigmoidTransform())
    s = ln.sample((1000,)).numpy()
    assert np.all((s > 0) & (s < 1)) and abs(s.mean() - 0.5) < 0.05
    with pytest.raises(ValueError, match="Transform"):
        D.TransformedDistribution(base, "exp")


def test_transformed_event_dims_and_expand():
    base = D.Normal(t(np.zeros((2, 3))), 1.0)
    aff = T.AffineTransform(0.0, t([1.0, 2.0, 3.0]), event_dim=1)
    d = D.TransformedDistribution(base, aff)
    assert d.batch_shape == (2,) and d.event_shape == (3,)
    x = t(np.ones((2, 3)))
    want = (base.log_prob(x / t([1.0, 2.0, 3.0])).numpy().sum(-1) - math.log(6.0))
    np.testing.assert_allclose(d.log_prob(x).numpy(), want, rtol=1e-12)
    e = D.LogNormal(t([0.0]), 1.0).expand((4, 1))
    assert type(e) is D.LogNormal and e.sample().shape == (4, 1)


def test_transform_equality():
    assert T.ExpTransform() == T.ExpTransform()
    assert T.AffineTransform(1.0, 2.0) == T.AffineTransform(1.0, 2.0)
    assert T.AffineTransform(1.0, 2.0) != T.AffineTransform(1.0, 3.0)
    assert T.AffineTransform(t([1.0]), 2.0) == T.AffineTransform(t([1.0]), 2.0)
    assert T.ExpTransform().inv == T.ExpTransform().inv
    assert T.ExpTransform() != T.SigmoidTransform()


CONSTRAINT_CASES = [
    (C.real, [0.0, -1e30, float("nan")], [True, True, False]),
    (C.positive, [1.0, 0.0, -1.0], [True, False, False]),
    (C.nonnegative, [1.0, 0.0, -1.0], [True, True, False]),
    (C.unit_interval, [0.0, 1.0, 1.5], [True, True, False]),
    (C.boolean, [0.0, 1.0, 0.5], [True, True, False]),
    (C.nonnegative_integer, [0.0, 3.0, 1.5, -1.0], [True, True, False, False]),
    (C.positive_integer, [0.0, 3.0], [False, True]),
    (C.integer_interval(0, 2), [0.0, 2.0, 3.0, 1.5], [True, True, False, False]),
    (C.greater_than(2.0), [2.0, 2.5], [False, True]),
    (C.greater_than_eq(2.0), [2.0, 1.5], [True, False]),
    (C.less_than(2.0), [2.0, 1.5], [False, True]),
    (C.interval(-1.0, 1.0), [-1.0, 1.0, 1.1], [True, True, False]),
    (C.half_open_interval(-1.0, 1.0), [-1.0, 1.0], [True, False]),
]


@pytest.mark.parametrize("constraint,values,expected", CONSTRAINT_CASES,
                         ids=[repr(c[0]) for c in CONSTRAINT_CASES])
def test_elementwise_constraints(constraint, values, expected):
    assert constraint.check(t(values)).numpy().tolist() == expected
    assert constraint.event_dim == 0


def test_event_constraints():
    assert C.simplex.check(t([[0.2, 0.8], [0.5, 0.6], [-0.1, 1.1]])).numpy().tolist() == \
        [True, False, False]
    assert C.one_hot.check(t([[0, 1, 0], [1, 1, 0]])).numpy().tolist() == [True, False]
    L = t([[[1.0, 0.0], [2.0, 3.0]], [[1.0, 1.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, 1.0]]])
    assert C.lower_triangular.check(L).numpy().tolist() == [True, False, True]
    assert C.lower_cholesky.check(L).numpy().tolist() == [True, False, False]
    M = t([[[2.0, 1.0], [1.0, 2.0]], [[1.0, 2.0], [2.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]])
    assert C.positive_definite.check(M).numpy().tolist() == [True, False, False]
    assert C.positive_semidefinite.check(M).numpy().tolist() == [True, False, True]
    assert C.symmetric.check(t([[[1.0, 2.0], [3.0, 1.0]]])).numpy().tolist() == [False]
    assert C.square.check(fw.zeros(4, 2, 3)).numpy().tolist() == [False] * 4
    ind = C.independent(C.positive, 2)
    assert ind.event_dim == 2 and repr(ind) == "IndependentConstraint(GreaterThan(" \
        "lower_bound=0.0), 2)"
    assert ind.check(t(np.ones((3, 2, 2)))).shape == (3,)
    with pytest.raises(ValueError, match="dim"):
        ind.check(t([1.0]))
    assert C.real_vector.check(t([[1.0, float("nan")], [1.0, 2.0]])).numpy().tolist() == \
        [False, True]


def test_dependent_constraints_and_reprs():
    assert C.is_dependent(C.dependent) and not C.is_dependent(C.real)
    assert C.is_dependent(D.Uniform.support) and D.Uniform.support.event_dim == 0
    assert D.Categorical.support.is_discrete
    with pytest.raises(ValueError, match="dependent"):
        C.dependent.check(t([1.0]))
    assert repr(C.positive) == "GreaterThan(lower_bound=0.0)"
    assert repr(C.unit_interval) == "Interval(lower_bound=0.0, upper_bound=1.0)"
    assert repr(C.simplex) == "Simplex()"
    assert repr(D.Categorical(logits=fw.zeros(3)).support) == \
        "IntegerInterval(lower_bound=0, upper_bound=2)"
    assert D.Normal.arg_constraints["scale"] is C.positive
