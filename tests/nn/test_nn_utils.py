"""nn.utils: gradient clipping and parameter <-> vector conversion."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError, ShapeError
from framework.nn.utils import (clip_grad_norm_, clip_grad_value_, parameters_to_vector,
                                vector_to_parameters)


def _params_with_grads(grads):
    ps = []
    for g in grads:
        p = nn.Parameter(fw.zeros(*np.shape(g)))
        p.grad = fw.tensor(np.asarray(g, np.float32))
        ps.append(p)
    return ps


def test_clip_grad_norm_scales_and_returns_total():
    g1, g2 = np.array([3.0, 4.0]), np.array([[12.0]])
    ps = _params_with_grads([g1, g2])
    total = clip_grad_norm_(ps, max_norm=6.5)
    assert float(total) == pytest.approx(13.0)
    coef = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(ps[0].grad.numpy(), g1 * coef, rtol=1e-6)
    np.testing.assert_allclose(ps[1].grad.numpy(), g2 * coef, rtol=1e-6)
    # already small: unchanged, total still reported
    ps = _params_with_grads([g1])
    assert float(clip_grad_norm_(ps, 100.0)) == pytest.approx(5.0)
    np.testing.assert_allclose(ps[0].grad.numpy(), g1)


def test_clip_grad_norm_other_norms_and_edge_cases():
    ps = _params_with_grads([[1.0, -7.0], [2.0]])
    assert float(clip_grad_norm_(ps, 1.0, norm_type=math.inf)) == pytest.approx(7.0)
    np.testing.assert_allclose(ps[0].grad.numpy(), np.array([1.0, -7.0]) / (7 + 1e-6),
                               rtol=1e-6)
    ps = _params_with_grads([[1.0, -2.0], [3.0]])
    assert float(clip_grad_norm_(ps, 100.0, norm_type=1)) == pytest.approx(6.0)
    p = nn.Parameter(fw.zeros(2))
    assert float(clip_grad_norm_([p], 1.0)) == 0.0  # no grads at all
    bad = _params_with_grads([[float("nan"), 1.0]])
    with pytest.raises(ArgumentError, match="non-finite"):
        clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    single = _params_with_grads([[3.0, 4.0]])[0]
    assert float(clip_grad_norm_(single, 1.0)) == pytest.approx(5.0)


def test_clip_grad_value():
    ps = _params_with_grads([[-3.0, 0.5, 2.0]])
    clip_grad_value_(ps, 1.0)
    np.testing.assert_allclose(ps[0].grad.numpy(), [-1.0, 0.5, 1.0])


def test_parameters_vector_round_trip():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = parameters_to_vector(model.parameters())
    assert vec.shape == (3 * 2 + 2 + 2 + 1,)
    np.testing.assert_allclose(vec.detach().numpy()[:6], model[0].weight.detach().numpy().ravel())
    (vec * fw.arange(11.0)).sum().backward()  # differentiable
    np.testing.assert_allclose(model[0].bias.grad.numpy(), [6.0, 7.0])
    new = fw.arange(11.0)
    vector_to_parameters(new, model.parameters())
    assert model[1].bias.tolist() == [10.0] and model[0].weight.requires_grad
    np.testing.assert_allclose(model[0].weight.detach().numpy(), np.arange(6.0).reshape(2, 3))
    with pytest.raises(ShapeError, match="11"):
        vector_to_parameters(fw.zeros(5), model.parameters())
    with pytest.raises(TypeError):
        parameters_to_vector(fw.zeros(3))
