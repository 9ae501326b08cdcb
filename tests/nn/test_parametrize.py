"""nn.utils.parametrize, nn.utils.parametrizations (weight_norm, spectral_norm) and the
legacy hook-based nn.utils.weight_norm / spectral_norm: PyTorch's class swap, state_dict
keys, right_inverse, caching, gradients, power iteration, fw.compile."""

import copy
import pickle
import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.autograd import gradcheck
from framework.errors import ArgumentError, FrameworkError, ShapeError
from framework.nn.utils import parametrize as P
from framework.nn.utils.parametrizations import _SpectralNorm, _WeightNorm
from framework.nn.utils.parametrize import ParametrizationError

F = nn.functional


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).t()

    def right_inverse(self, A):
        return A.triu()


class Double(nn.Module):
    def forward(self, X):
        return X * 2.0

    def right_inverse(self, A):
        return A / 2.0


class NoInverse(nn.Module):
    def forward(self, X):
        return X + 1.0


def _np(t):
    return t.detach().numpy()


# -- parametrize --------------------------------------------------------------------------
def test_register_swaps_class_and_moves_original():
    m = nn.Linear(4, 4)
    w0 = _np(m.weight).copy()
    P.register_parametrization(m, "weight", Symmetric())
    assert type(m).__name__ == "ParametrizedLinear" and isinstance(m, nn.Linear)
    assert P.type_before_parametrizations(m) is nn.Linear
    assert P.is_parametrized(m) and P.is_parametrized(m, "weight")
    assert not P.is_parametrized(m, "bias")
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original"]
    # right_inverse ran at registration: the original holds triu(w0)
    np.testing.assert_allclose(_np(m.parametrizations.weight.original), np.triu(w0))
    w = _np(m.weight)
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, np.triu(w0) + np.triu(w0, 1).T, rtol=1e-6)
    # another Linear is untouched (one class per parametrized instance)
    assert type(nn.Linear(2, 2)) is nn.Linear and "weight" not in vars(nn.Linear)


def test_assignment_uses_right_inverse_and_gradient_reaches_original():
    m = nn.Linear(3, 3)
    P.register_parametrization(m, "weight", Symmetric())
    a = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    a = a + a.T
    original = m.parametrizations.weight.original
    m.weight = fw.tensor(a)
    assert m.parametrizations.weight.original is original  # same object, new value
    np.testing.assert_allclose(_np(m.weight), a, rtol=1e-6)
    x = fw.randn(2, 3)
    m(x).sum().backward()
    g = x.sum(0).numpy()[None, :].repeat(3, 0)  # d sum(x W^T) / dW = 1 (x) sum_n x_n
    want = np.triu(g) + np.triu(g.T, 1)  # W = triu(O) + triu(O, 1)^T
    np.testing.assert_allclose(original.grad.numpy(), want, rtol=1e-5, atol=1e-6)


def test_chained_parametrizations_apply_in_order_and_invert_in_reverse():
    m = nn.Linear(3, 3)
    w0 = _np(m.weight).copy()
    P.register_parametrization(m, "weight", Double())
    P.register_parametrization(m, "weight", Symmetric())
    assert len(m.parametrizations.weight) == 2
    sym = np.triu(w0) + np.triu(w0, 1).T
    np.testing.assert_allclose(_np(m.weight), sym, rtol=1e-6)
    a = np.arange(9.0, dtype=np.float32).reshape(3, 3)
    a = a + a.T
    m.weight = fw.tensor(a)
    np.testing.assert_allclose(_np(m.parametrizations.weight.original), np.triu(a) / 2)
    np.testing.assert_allclose(_np(m.weight), a)


def test_right_inverse_tuple_gives_original0_original1():
    class Split(nn.Module):
        def forward(self, a, b):
            return a + b

        def right_inverse(self, w):
            return w * 0.25, w * 0.75

    m = nn.Linear(2, 3)
    w0 = _np(m.weight).copy()
    P.register_parametrization(m, "weight", Split())
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original0",
                                    "parametrizations.weight.original1"]
    o0, o1 = m.parametrizations.weight.original0, m.parametrizations.weight.original1
    assert isinstance(o0, nn.Parameter) and o0.requires_grad
    np.testing.assert_allclose(_np(o1), 0.75 * w0, rtol=1e-6)
    np.testing.assert_allclose(_np(m.weight), w0, rtol=1e-6)
    m.weight = fw.ones(3, 2)
    np.testing.assert_allclose(_np(o0), np.full((3, 2), 0.25))
    with pytest.raises(ArgumentError, match="sequence of tensors"):
        P.remove_parametrizations(m, "weight", leave_parametrized=False)
    P.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and isinstance(m.weight, nn.Parameter)
    np.testing.assert_allclose(_np(m.weight), np.ones((3, 2)))


def test_remove_parametrizations_keeps_identity_or_restores_original():
    m = nn.Linear(3, 3)
    P.register_parametrization(m, "weight", Double())
    original = m.parametrizations.weight.original
    value = _np(m.weight).copy()
    P.remove_parametrizations(m, "weight", leave_parametrized=True)
    assert type(m) is nn.Linear and m.weight is original  # an optimizer keeps working
    np.testing.assert_allclose(_np(m.weight), value)
    assert not hasattr(m, "parametrizations") and list(m.state_dict()) == ["bias", "weight"]

    m = nn.Linear(3, 3)
    P.register_parametrization(m, "weight", Double())
    P.register_parametrization(m, "bias", Double())
    raw = _np(m.parametrizations.weight.original).copy()
    P.remove_parametrizations(m, "weight", leave_parametrized=False)
    np.testing.assert_allclose(_np(m.weight), raw)
    assert P.is_parametrized(m) and type(m).__name__ == "ParametrizedLinear"
    P.remove_parametrizations(m, "bias")
    assert type(m) is nn.Linear


def test_parametrized_buffer():
    m = nn.BatchNorm1d(3)
    P.register_parametrization(m, "running_var", Double())
    assert "parametrizations.running_var.original" in m.state_dict()
    assert not isinstance(m.parametrizations.running_var.original, nn.Parameter)
    np.testing.assert_allclose(_np(m.running_var), np.full(3, 1.0))  # 2 * (1 / 2)
    m.eval()
    out = m(fw.ones(2, 3))
    np.testing.assert_allclose(_np(out), np.ones((2, 3)) / np.sqrt(1 + 1e-5), rtol=1e-6)


def test_cached_evaluates_once_per_block():
    calls = []

    class Count(nn.Module):
        def forward(self, X):
            calls.append(1)
            return X * 1.0

    m = nn.Linear(2, 2)
    P.register_parametrization(m, "weight", Count())
    calls.clear()
    m.weight, m.weight
    assert len(calls) == 2
    calls.clear()
    with P.cached():
        a, b = m.weight, m.weight
        with P.cached():
            c = m.weight
    assert len(calls) == 1 and a is b is c
    m.weight
    assert len(calls) == 2  # the cache is dropped on exit


def test_registration_errors():
    m = nn.Linear(2, 3)
    with pytest.raises(ValueError, match="does not have a parameter, a buffer"):
        P.register_parametrization(m, "nope", Double())

    class Shrink(nn.Module):
        def forward(self, X):
            return X[:1]

    with pytest.raises(ShapeError, match="may not change the shape"):
        P.register_parametrization(m, "weight", Shrink())
    assert type(m) is nn.Linear and "weight" in m._parameters  # left untouched
    P.register_parametrization(m, "weight", Shrink(), unsafe=True)
    assert tuple(m.weight.shape) == (1, 2)

    class ToDouble(nn.Module):
        def forward(self, X):
            return X.double()

    with pytest.raises(ArgumentError, match="dtype"):
        P.register_parametrization(nn.Linear(2, 2), "weight", ToDouble())

    m = nn.Linear(2, 2)
    P.register_parametrization(m, "weight", NoInverse())
    with pytest.raises(ParametrizationError, match="NoInverse does not implement "
                                                   "right_inverse") as e:
        m.weight = fw.zeros(2, 2)
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, FrameworkError)
    with pytest.raises(ValueError, match="does not have a parametrization on bias"):
        P.remove_parametrizations(m, "bias")


def test_deepcopy_works_pickle_refused_state_dict_round_trip():
    m = nn.Linear(3, 3)
    P.register_parametrization(m, "weight", Symmetric())
    c = copy.deepcopy(m)
    assert type(c) is type(m)
    np.testing.assert_allclose(_np(c.weight), _np(m.weight))
    assert c.parametrizations.weight.original is not m.parametrizations.weight.original
    with pytest.raises(ParametrizationError, match="state_dict"):
        pickle.dumps(m)
    other = nn.Linear(3, 3)
    P.register_parametrization(other, "weight", Symmetric())
    other.load_state_dict(m.state_dict())
    x = fw.randn(2, 3)
    np.testing.assert_allclose(_np(other(x)), _np(m(x)), rtol=1e-6)


# -- weight_norm ---------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_decomposition_reproduces_weight(dim):
    m = nn.Conv1d(3, 4, 2)
    w0 = _np(m.weight).copy()
    nn.utils.parametrizations.weight_norm(m, dim=dim)
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original0",
                                    "parametrizations.weight.original1"]
    g, v = m.parametrizations.weight.original0, m.parametrizations.weight.original1
    if dim is None:
        want_g = np.linalg.norm(w0)
        assert tuple(g.shape) == ()
    else:
        axes = tuple(a for a in range(3) if a != dim)
        want_g = np.sqrt((w0 ** 2).sum(axes, keepdims=True))
    np.testing.assert_allclose(_np(g), want_g, rtol=1e-6)
    np.testing.assert_allclose(_np(v), w0)
    np.testing.assert_allclose(_np(m.weight), w0, rtol=1e-5, atol=1e-7)


def test_weight_norm_gradients_flow_to_g_and_v():
    rng = np.random.default_rng(1)
    wn = _WeightNorm(0)
    g = fw.tensor(rng.uniform(0.5, 2.0, (3, 1)), requires_grad=True)
    v = fw.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda g, v: wn(g, v), (g, v))
    m = nn.Linear(4, 3)
    nn.utils.parametrizations.weight_norm(m)
    x = fw.randn(5, 4)
    m(x).pow(2).sum().backward()
    g, v = m.parametrizations.weight.original0, m.parametrizations.weight.original1
    assert g.grad is not None and tuple(g.grad.shape) == (3, 1)
    assert v.grad is not None and tuple(v.grad.shape) == (3, 4)
    # g and v stay the magnitude/direction after an SGD step: the weight row norms are g
    opt = optim.SGD(m.parameters(), lr=0.1)
    opt.step()
    np.testing.assert_allclose(np.linalg.norm(_np(m.weight), axis=1), _np(g)[:, 0], rtol=1e-5)


def test_weight_norm_compile_training_matches_eager(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def build():
        fw.manual_seed(3)
        m = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
        nn.utils.parametrizations.weight_norm(m[0])
        nn.utils.parametrizations.weight_norm(m[2], dim=None)
        return m, optim.SGD(m.parameters(), lr=0.2)

    (m1, o1), (m2, o2) = build(), build()
    x, y = fw.randn(6, 5), fw.tensor([0, 1, 2, 0, 1, 2])

    def step(m, o):
        loss = F.cross_entropy(m(x), y)
        o.zero_grad()
        loss.backward()
        o.step()
        return loss

    compiled = fw.compile(lambda: step(m1, o1), fullgraph=True, mode="always")
    losses = []
    for _ in range(3):
        a, b = compiled(), step(m2, o2)
        np.testing.assert_allclose(float(a), float(b), rtol=1e-5)
        losses.append(float(a))
    assert losses[-1] < losses[0]
    assert not compiled.stats()["graph_breaks"]
    np.testing.assert_allclose(_np(m1[0].weight), _np(m2[0].weight), rtol=1e-5, atol=1e-6)


def test_legacy_weight_norm_keys_hook_and_remove():
    m = nn.Linear(4, 3)
    w0 = _np(m.weight).copy()
    with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
        nn.utils.weight_norm(m)
    assert list(m.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert tuple(m.weight_g.shape) == (3, 1)
    np.testing.assert_allclose(_np(m.weight_g)[:, 0], np.linalg.norm(w0, axis=1), rtol=1e-6)
    np.testing.assert_allclose(_np(m.weight), w0, rtol=1e-5, atol=1e-7)
    with fw.no_grad():
        m.weight_g.mul_(2.0)
    out = m(fw.ones(1, 4))  # the pre-hook recomputes weight = g * v / ||v||
    np.testing.assert_allclose(_np(out), (2 * w0).sum(1)[None] + _np(m.bias), rtol=1e-5)
    out.sum().backward()
    assert m.weight_g.grad is not None and m.weight_v.grad is not None
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nn.utils.weight_norm(m)
    other = nn.Linear(4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nn.utils.weight_norm(other)
    other.load_state_dict(m.state_dict())
    x = fw.randn(2, 4)
    np.testing.assert_allclose(_np(other(x)), _np(m(x)), rtol=1e-6)
    nn.utils.remove_weight_norm(m)
    assert list(m.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(_np(m.weight), 2 * w0, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        nn.utils.remove_weight_norm(m)


# -- spectral_norm -------------------------------------------------------------------------
def _top_sv(w, dim=0):
    w = np.moveaxis(w, dim, 0)
    return np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0]


def test_spectral_norm_sigma_matches_svd_and_eval_uses_stored_vectors():
    fw.manual_seed(0)
    m = nn.Linear(7, 5)
    nn.utils.parametrizations.spectral_norm(m)
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original",
                                    "parametrizations.weight.0._u",
                                    "parametrizations.weight.0._v"]
    sn = m.parametrizations.weight[0]
    w = _np(m.parametrizations.weight.original)
    for _ in range(5):
        m(fw.randn(1, 7))
    u, v = _np(sn._u), _np(sn._v)
    sigma = u @ w @ v
    np.testing.assert_allclose(sigma, _top_sv(w), rtol=1e-4)
    assert _top_sv(_np(m.weight)) == pytest.approx(1.0, rel=1e-4)
    # training mode runs the power iteration (buffers change), eval mode freezes them
    with fw.no_grad():
        sn._u.copy_(fw.tensor(np.eye(5, dtype=np.float32)[0]))
    m(fw.randn(1, 7))
    assert not np.allclose(_np(sn._u), np.eye(5)[0])
    m.eval()
    u, v = _np(sn._u).copy(), _np(sn._v).copy()
    np.testing.assert_allclose(_np(m.weight), w / (u @ w @ v), rtol=1e-6)
    m(fw.randn(1, 7))
    np.testing.assert_array_equal(_np(sn._u), u)
    np.testing.assert_array_equal(_np(sn._v), v)


def test_spectral_norm_dims_and_vectors():
    fw.manual_seed(1)
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(3, 4, 3))
    assert tuple(conv.parametrizations.weight[0]._u.shape) == (4,)
    assert tuple(conv.parametrizations.weight[0]._v.shape) == (27,)
    tconv = nn.utils.parametrizations.spectral_norm(nn.ConvTranspose2d(3, 5, 2))
    assert tuple(tconv.parametrizations.weight[0]._u.shape) == (5,)  # dim=1 by default
    tconv.eval()
    w = _np(tconv.parametrizations.weight.original)
    assert _top_sv(_np(tconv.weight), 1) == pytest.approx(1.0, rel=1e-3)
    assert _top_sv(w, 1) > 0
    vec = nn.Module()
    vec.weight = nn.Parameter(fw.tensor([3.0, 4.0]))
    nn.utils.parametrizations.spectral_norm(vec)
    np.testing.assert_allclose(_np(vec.weight), [0.6, 0.8], rtol=1e-6)


def test_spectral_norm_gradcheck_and_errors():
    fw.manual_seed(2)
    w = fw.randn(4, 3, dtype=fw.float64)
    sn = _SpectralNorm(w, dim=0).eval()
    x = fw.tensor(_np(w), requires_grad=True)
    assert gradcheck(lambda t: sn(t), (x,))
    with pytest.raises(IndexError, match="Dimension out of range"):
        _SpectralNorm(w, dim=2)
    with pytest.raises(ValueError, match="n_power_iterations to be positive"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="no parameter or buffer with name 'kernel'"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), "kernel")


def test_spectral_norm_compile_matches_eager(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    fw.manual_seed(4)
    m1 = nn.utils.parametrizations.spectral_norm(nn.Linear(6, 4))
    m2 = copy.deepcopy(m1)
    compiled = fw.compile(m1, fullgraph=True, mode="always")
    for _ in range(3):
        x = fw.randn(2, 6)
        np.testing.assert_allclose(_np(compiled(x)), _np(m2(x)), rtol=1e-5, atol=1e-6)
    # the in-place power-iteration updates of the buffers were written back
    np.testing.assert_allclose(_np(m1.parametrizations.weight[0]._u),
                               _np(m2.parametrizations.weight[0]._u), rtol=1e-5, atol=1e-6)


def test_legacy_spectral_norm_keys_power_iteration_and_remove():
    fw.manual_seed(5)
    m = nn.utils.spectral_norm(nn.Linear(6, 4))
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    w = _np(m.weight_orig)
    for _ in range(30):
        m(fw.randn(1, 6))
    np.testing.assert_allclose(_np(m.weight_u) @ w @ _np(m.weight_v), _top_sv(w), rtol=1e-4)
    m.eval()
    u = _np(m.weight_u).copy()
    m(fw.randn(1, 6))
    np.testing.assert_array_equal(_np(m.weight_u), u)
    assert _top_sv(_np(m.weight)) == pytest.approx(1.0, rel=1e-4)
    m(fw.randn(2, 6)).sum().backward()
    assert m.weight_orig.grad is not None
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        nn.utils.spectral_norm(m)
    expected = _np(m.weight).copy()
    nn.utils.remove_spectral_norm(m)
    assert list(m.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(_np(m.weight), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(m)
    t = nn.utils.spectral_norm(nn.ConvTranspose1d(3, 5, 2))
    assert tuple(t.weight_u.shape) == (5,)
