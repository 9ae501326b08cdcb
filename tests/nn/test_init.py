"""nn.init: bounds, moments, fan computation, gains, reproducibility under a seed."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError, ShapeError
from framework.nn import init


def arr(x):
    return x.detach().numpy()


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    with pytest.raises(ArgumentError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ArgumentError):
        init.calculate_gain("leaky_relu", True)


def test_fans():
    assert init._calculate_fan_in_and_fan_out(fw.empty(5, 3)) == (3, 5)
    assert init._calculate_fan_in_and_fan_out(fw.empty(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ShapeError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(fw.empty(4))
    with pytest.raises(ArgumentError, match="fan_in, fan_out"):
        init.kaiming_uniform_(fw.empty(3, 3), mode="fan_avg")


def test_simple_fills():
    t = fw.empty(3, 4)
    assert np.all(arr(init.constant_(t, 2.5)) == 2.5)
    assert np.all(arr(init.ones_(t)) == 1) and np.all(arr(init.zeros_(t)) == 0)
    np.testing.assert_array_equal(arr(init.eye_(fw.empty(3, 4))), np.eye(3, 4))
    with pytest.raises(ShapeError):
        init.eye_(fw.empty(2, 2, 2))
    d = arr(init.dirac_(fw.empty(2, 2, 3, 3)))
    assert d[0, 0, 1, 1] == 1 and d[1, 1, 1, 1] == 1 and d.sum() == 2


def test_parameters_init_in_place_without_autograd_error():
    p = nn.Parameter(fw.empty(20, 10))
    out = init.normal_(p, 1.0, 0.5)
    assert out is p and p.requires_grad and p.grad_fn is None


@pytest.mark.parametrize("shape", [(200, 100), (64, 16, 3, 3)])
def test_uniform_family_bounds_and_spread(shape):
    fan_in = int(np.prod(shape[1:]))
    fan_out = shape[0] * int(np.prod(shape[2:]))
    cases = [
        (lambda t: init.uniform_(t, -0.3, 0.7), -0.3, 0.7),
        (lambda t: init.xavier_uniform_(t, gain=2.0),
         *(s * 2.0 * math.sqrt(6 / (fan_in + fan_out)) for s in (-1, 1))),
        (lambda t: init.kaiming_uniform_(t, a=0, nonlinearity="relu"),
         *(s * math.sqrt(2) * math.sqrt(3 / fan_in) for s in (-1, 1))),
        (lambda t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="tanh"),
         *(s * 5 / 3 * math.sqrt(3 / fan_out) for s in (-1, 1))),
    ]
    for fill, lo, hi in cases:
        v = arr(fill(fw.empty(*shape)))
        assert v.min() >= lo and v.max() <= hi
        assert v.min() < lo + 0.05 * (hi - lo) and v.max() > hi - 0.05 * (hi - lo)
        assert abs(v.mean() - (lo + hi) / 2) < 0.02 * (hi - lo)


def test_normal_family_std():
    t = fw.empty(300, 200)
    fan_in, fan_out = 200, 300
    for fill, std in [(lambda x: init.normal_(x, 0.0, 0.2), 0.2),
                      (lambda x: init.xavier_normal_(x), math.sqrt(2 / (fan_in + fan_out))),
                      (lambda x: init.kaiming_normal_(x, nonlinearity="relu"),
                       math.sqrt(2 / fan_in)),
                      (lambda x: init.kaiming_normal_(x, mode="fan_out"),
                       math.sqrt(2 / (1 + 0.01 ** 2)) / math.sqrt(fan_out))]:
        v = arr(fill(t))
        assert abs(v.std() / std - 1) < 0.03 and abs(v.mean()) < 0.05 * std


def test_trunc_normal():
    v = arr(init.trunc_normal_(fw.empty(200, 100), mean=1.0, std=2.0, a=-1.0, b=2.0))
    assert v.min() >= -1.0 and v.max() <= 2.0
    assert v.min() < -0.95 and v.max() > 1.95
    # truncated N(1, 2^2) on [-1, 2]: mean = 1 + 2 (phi(-1) - phi(0.5)) / (Phi(0.5) - Phi(-1))
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    mean = 1 + 2 * (phi(-1) - phi(0.5)) / (Phi(0.5) - Phi(-1))
    assert abs(v.mean() - mean) < 0.02
    with pytest.raises(ArgumentError):
        init.trunc_normal_(fw.empty(3), a=1.0, b=0.0)


def test_trunc_normal_on_meta_draws_nothing():
    # ``with fw.device("meta"): model = ...`` (shape-only builds) must not sample the weights
    state = fw.get_rng_state()
    with fw.device("meta"):
        w = init.trunc_normal_(fw.empty(3000, 1000), std=0.02)
    assert w.device.type == "meta" and tuple(w.shape) == (3000, 1000)
    np.testing.assert_array_equal(fw.get_rng_state().numpy(), state.numpy())
    with pytest.raises(ArgumentError):
        init.trunc_normal_(fw.empty(3, device="meta"), a=1.0, b=0.0)


def test_orthogonal():
    for shape in [(6, 4), (4, 6), (3, 2, 2)]:
        q = arr(init.orthogonal_(fw.empty(*shape), gain=2.0)).reshape(shape[0], -1)
        if q.shape[0] <= q.shape[1]:
            np.testing.assert_allclose(q @ q.T, 4 * np.eye(q.shape[0]), atol=1e-5)
        else:
            np.testing.assert_allclose(q.T @ q, 4 * np.eye(q.shape[1]), atol=1e-5)


def test_reproducible_under_seed_and_generator():
    draws = []
    for _ in range(2):
        fw.manual_seed(123)
        draws.append([arr(f(fw.empty(5, 4))).copy() for f in (
            init.uniform_, init.normal_, init.xavier_uniform_, init.kaiming_normal_,
            init.trunc_normal_, init.orthogonal_)])
    for a, b in zip(*draws):
        np.testing.assert_array_equal(a, b)
    g = fw.Generator().manual_seed(5)
    a = arr(init.kaiming_uniform_(fw.empty(4, 4), generator=g)).copy()
    g.manual_seed(5)
    np.testing.assert_array_equal(a, arr(init.kaiming_uniform_(fw.empty(4, 4), generator=g)))


def test_zero_element_warns():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(fw.empty(0, 3))
