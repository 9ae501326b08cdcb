"""pytorch/tutorials ``intermediate_source/parametrizations.py`` and ``pruning_tutorial.py``
ported to fw.

Parametrizations: Symmetric / Skew / CayleyMap / MatrixExponential on Linear and Conv2d,
the ``parametrizations`` ModuleDict and ``.original``, ``cached()``, concatenation,
``right_inverse`` on assignment (also through two parametrizations), a pruning
parametrization, ``remove_parametrizations`` with and without ``leave_parametrized``; a
symmetric-weight layer trained eagerly and under ``fw.compile``.

Pruning: LeNet, random_unstructured / l1_unstructured / ln_structured on one module (masks,
``weight_orig``, forward pre-hooks, PruningContainer history), ``remove``, pruning by module
type, ``global_unstructured``, a custom BasePruningMethod, state_dict round trip, and a pruned
LeNet trained eagerly (pruned entries stay zero) and under ``fw.compile``.
"""

import io

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
import framework.nn.utils.parametrize as parametrize
import framework.nn.utils.prune as prune

from ._checks import assert_params_close, assert_stats, np_of


# ---- parametrizations --------------------------------------------------------------------
def symmetric(X):
    return X.triu() + X.triu(1).transpose(-1, -2)


class LinearSymmetric(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.weight = nn.Parameter(fw.rand(n_features, n_features))

    def forward(self, x):
        A = symmetric(self.weight)
        return x @ A


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


class Skew(nn.Module):
    def forward(self, X):
        A = X.triu(1)
        return A - A.transpose(-1, -2)

    def right_inverse(self, A):
        return A.triu(1)


class CayleyMap(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.register_buffer("Id", fw.eye(n))

    def forward(self, X):
        return fw.linalg.solve(self.Id - X, self.Id + X)

    def right_inverse(self, A):
        return fw.linalg.solve(A + self.Id, self.Id - A)


class MatrixExponential(nn.Module):
    def forward(self, X):
        return fw.matrix_exp(X)


class PruningParametrization(nn.Module):
    def __init__(self, X, p_drop=0.2):
        super().__init__()
        mask = fw.full_like(X, 1.0 - p_drop)
        self.mask = fw.bernoulli(mask)

    def forward(self, X):
        return X * self.mask

    def right_inverse(self, A):
        return A


def test_symmetric_and_skew_layers():
    fw.manual_seed(0)
    X = fw.rand(3, 3)
    A = symmetric(X)
    assert fw.allclose(A, A.T)
    layer = LinearSymmetric(3)
    out = layer(fw.rand(8, 3))
    assert out.shape == (8, 3)

    layer = nn.Linear(3, 3)
    parametrize.register_parametrization(layer, "weight", Symmetric())
    A = layer.weight
    assert fw.allclose(A, A.T)

    cnn = nn.Conv2d(in_channels=5, out_channels=8, kernel_size=3)
    parametrize.register_parametrization(cnn, "weight", Skew())
    k = np_of(cnn.weight[0, 1])
    np.testing.assert_allclose(k, -k.T)
    assert np.all(np.diag(k) == 0)


def test_inspecting_a_parametrized_module():
    layer = nn.Linear(3, 3)
    parametrize.register_parametrization(layer, "weight", Symmetric())
    assert "parametrizations" in repr(layer)
    assert isinstance(layer.parametrizations, nn.ModuleDict)
    assert isinstance(layer.parametrizations.weight[0], Symmetric)
    names = dict(layer.named_parameters())
    assert set(names) == {"bias", "parametrizations.weight.original"}
    weight_orig = layer.parametrizations.weight.original
    symmetric_ = Symmetric()
    assert fw.dist(layer.weight, symmetric_(weight_orig)).item() == 0.0


def test_cached():
    calls = []

    class NoisyParametrization(nn.Module):
        def forward(self, X):
            calls.append(1)
            return X

    layer = nn.Linear(4, 4)
    parametrize.register_parametrization(layer, "weight", NoisyParametrization())
    assert len(calls) == 1      # registration runs the parametrization once (a check)
    calls.clear()
    foo = layer.weight + layer.weight.T
    bar = layer.weight.sum()
    assert len(calls) == 3
    with parametrize.cached():
        foo = layer.weight + layer.weight.T
        bar = layer.weight.sum()
    assert len(calls) == 4      # one more: the cached value served all three reads
    assert foo.shape == (4, 4) and bar.ndim == 0


def test_concatenated_parametrizations():
    fw.manual_seed(0)
    layer = nn.Linear(3, 3)
    parametrize.register_parametrization(layer, "weight", Skew())
    parametrize.register_parametrization(layer, "weight", CayleyMap(3))
    X = layer.weight
    assert fw.dist(X.T @ X, fw.eye(3)).item() < 1e-5

    layer_orthogonal = nn.Linear(3, 3)
    parametrize.register_parametrization(layer_orthogonal, "weight", Skew())
    parametrize.register_parametrization(layer_orthogonal, "weight", MatrixExponential())
    X = layer_orthogonal.weight
    assert fw.dist(X.T @ X, fw.eye(3)).item() < 1e-5

    layer_spd = nn.Linear(3, 3)
    parametrize.register_parametrization(layer_spd, "weight", Symmetric())
    parametrize.register_parametrization(layer_spd, "weight", MatrixExponential())
    X = layer_spd.weight
    assert fw.dist(X, X.T).item() < 1e-5
    assert (fw.linalg.eigvalsh(X) > 0.).all()


def test_right_inverse_initialization():
    fw.manual_seed(0)
    layer = nn.Linear(3, 3)
    parametrize.register_parametrization(layer, "weight", Skew())
    X = fw.rand(3, 3)
    X = X - X.T
    layer.weight = X
    assert fw.dist(layer.weight, X).item() < 1e-6

    layer_orthogonal = nn.Linear(3, 3)
    parametrize.register_parametrization(layer_orthogonal, "weight", Skew())
    parametrize.register_parametrization(layer_orthogonal, "weight", CayleyMap(3))
    X = fw.empty(3, 3)
    nn.init.orthogonal_(X)
    if X.det() < 0.:
        X[0].neg_()
    layer_orthogonal.weight = X
    # The tutorial's CayleyMap.right_inverse, (A + I)^-1 (I - A), is minus the inverse of its
    # forward, so ``weight`` comes back as X^-1 = X^T, not X (PyTorch does the same); check
    # the chain right_inverse -> Skew -> CayleyMap against NumPy.
    Xn, Id = np_of(X).astype(np.float64), np.eye(3)
    S = np.linalg.solve(Xn + Id, Id - Xn)
    K = np.triu(S, 1) - np.triu(S, 1).T
    np.testing.assert_allclose(np_of(layer_orthogonal.weight), np.linalg.solve(Id - K, Id + K),
                               atol=1e-5)
    np.testing.assert_allclose(np_of(layer_orthogonal.weight), Xn.T, atol=1e-5)
    layer_orthogonal.weight = nn.init.orthogonal_(layer_orthogonal.weight)
    W = np_of(layer_orthogonal.weight)
    np.testing.assert_allclose(W.T @ W, np.eye(3), atol=1e-5)

    layer = nn.Linear(3, 4)
    X = fw.rand_like(layer.weight)
    parametrize.register_parametrization(layer, "weight", PruningParametrization(layer.weight))
    layer.weight = X
    mask = np_of(layer.parametrizations.weight[0].mask)
    np.testing.assert_allclose(np_of(layer.weight), np_of(X) * mask)


def test_remove_parametrizations():
    fw.manual_seed(0)
    layer = nn.Linear(3, 3)
    before = np_of(layer.weight).copy()
    parametrize.register_parametrization(layer, "weight", Skew())
    skew = np_of(layer.weight).copy()
    parametrize.remove_parametrizations(layer, "weight")
    assert not parametrize.is_parametrized(layer)
    assert isinstance(layer.weight, nn.Parameter)
    np.testing.assert_allclose(np_of(layer.weight), skew)

    layer = nn.Linear(3, 3)
    before = np_of(layer.weight).copy()
    parametrize.register_parametrization(layer, "weight", Skew())
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    # not quite "Same as Before" (the tutorial's comment): registering a parametrization
    # with a right_inverse initialises ``original`` to right_inverse(weight), as PyTorch does
    np.testing.assert_allclose(np_of(layer.weight), np.triu(before, 1))


def _sym_train(compiled, steps=6):
    fw.manual_seed(0)
    layer = nn.Linear(4, 4)
    parametrize.register_parametrization(layer, "weight", Symmetric())
    opt = fw.optim.SGD(layer.parameters(), lr=0.1)
    x = fw.randn(16, 4)
    target = x @ fw.tensor([[2., 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 3]])

    def step(x, target):
        loss = F.mse_loss(layer(x), target)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    fn = fw.compile(step) if compiled else step
    return layer, [fn(x, target).item() for _ in range(steps)], fn


def test_parametrized_training_eager_and_compiled():
    l_e, eager, _ = _sym_train(False)
    assert eager[-1] < eager[0]
    W = np_of(l_e.weight)
    np.testing.assert_allclose(W, W.T)
    l_c, comp, fn = _sym_train(True)
    np.testing.assert_allclose(comp, eager, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np_of(l_c.parametrizations.weight.original),
                               np_of(l_e.parametrizations.weight.original), rtol=1e-4, atol=1e-5)
    assert_stats(fn, num_recompiles=0)


# ---- pruning -----------------------------------------------------------------------------
class LeNet(nn.Module):
    def __init__(self):
        super(LeNet, self).__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, int(x.nelement() / x.shape[0]))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def test_prune_one_module():
    fw.manual_seed(0)
    device = fw.device("cuda" if fw.cuda.is_available() else "cpu")
    model = LeNet().to(device=device)
    module = model.conv1
    assert [n for n, _ in module.named_parameters()] == ["weight", "bias"]
    assert list(module.named_buffers()) == []

    prune.random_unstructured(module, name="weight", amount=0.3)
    assert [n for n, _ in module.named_parameters()] == ["bias", "weight_orig"]
    assert [n for n, _ in module.named_buffers()] == ["weight_mask"]
    mask = np_of(module.weight_mask)
    assert mask.sum() == 150 - 45                       # 30% of 150 entries
    np.testing.assert_allclose(np_of(module.weight), np_of(module.weight_orig) * mask)
    assert len(module._forward_pre_hooks) == 1

    prune.l1_unstructured(module, name="bias", amount=3)
    assert [n for n, _ in module.named_parameters()] == ["weight_orig", "bias_orig"]
    assert [n for n, _ in module.named_buffers()] == ["weight_mask", "bias_mask"]
    b = np.abs(np_of(module.bias_orig))
    assert set(np.flatnonzero(np_of(module.bias_mask) == 0)) == set(np.argsort(b)[:3])
    assert len(module._forward_pre_hooks) == 2

    prune.ln_structured(module, name="weight", amount=0.5, n=2, dim=0)
    w = np_of(module.weight)
    zero_channels = [c for c in range(6) if np.all(w[c] == 0)]
    assert len(zero_channels) == 3
    assert np.all(w[np_of(module.weight_mask) == 0] == 0) and np.all((w == 0) >= (mask == 0))
    for hook in module._forward_pre_hooks.values():
        if hook._tensor_name == "weight":
            break
    assert isinstance(hook, prune.PruningContainer)
    assert [type(h).__name__ for h in hook] == ["RandomUnstructured", "LnStructured"]

    keys = list(model.state_dict().keys())
    assert keys[:4] == ["conv1.weight_orig", "conv1.bias_orig", "conv1.weight_mask",
                        "conv1.bias_mask"]

    pruned = np_of(module.weight).copy()
    prune.remove(module, 'weight')
    assert [n for n, _ in module.named_parameters()] == ["bias_orig", "weight"]
    assert [n for n, _ in module.named_buffers()] == ["bias_mask"]
    np.testing.assert_allclose(np_of(module.weight), pruned)


def test_prune_by_type_and_global():
    fw.manual_seed(0)
    new_model = LeNet()
    for name, module in new_model.named_modules():
        if isinstance(module, fw.nn.Conv2d):
            prune.l1_unstructured(module, name='weight', amount=0.2)
        elif isinstance(module, fw.nn.Linear):
            prune.l1_unstructured(module, name='weight', amount=0.4)
    assert list(dict(new_model.named_buffers()).keys()) == [
        "conv1.weight_mask", "conv2.weight_mask", "fc1.weight_mask", "fc2.weight_mask",
        "fc3.weight_mask"]
    assert float(fw.sum(new_model.fc2.weight == 0)) == round(0.4 * 120 * 84)

    model = LeNet()
    parameters_to_prune = (
        (model.conv1, 'weight'),
        (model.conv2, 'weight'),
        (model.fc1, 'weight'),
        (model.fc2, 'weight'),
        (model.fc3, 'weight'),
    )
    allw = np.concatenate([np_of(m.weight).ravel() for m, _ in parameters_to_prune])
    prune.global_unstructured(
        parameters_to_prune,
        pruning_method=prune.L1Unstructured,
        amount=0.2,
    )
    zeros = sum(float(fw.sum(m.weight == 0)) for m, _ in parameters_to_prune)
    total = sum(m.weight.nelement() for m, _ in parameters_to_prune)
    assert zeros == round(0.2 * total)
    threshold = np.sort(np.abs(allw))[round(0.2 * total) - 1]
    for m, _ in parameters_to_prune:   # the globally smallest entries went, per layer unequal
        w = np.abs(np_of(m.weight_orig))
        np.testing.assert_array_equal(np_of(m.weight_mask) == 0, w <= threshold)


class FooBarPruningMethod(prune.BasePruningMethod):
    """Prune every other entry in a tensor
    """
    PRUNING_TYPE = 'unstructured'

    def compute_mask(self, t, default_mask):
        mask = default_mask.clone()
        mask.view(-1)[::2] = 0
        return mask


def foobar_unstructured(module, name):
    FooBarPruningMethod.apply(module, name)
    return module


def test_custom_pruning_method_and_state_dict_round_trip():
    fw.manual_seed(0)
    model = LeNet()
    foobar_unstructured(model.fc3, name='bias')
    np.testing.assert_array_equal(np_of(model.fc3.bias_mask), [0, 1] * 5)
    # pruning again acts on the unpruned entries only
    foobar_unstructured(model.fc3, name='bias')
    np.testing.assert_array_equal(np_of(model.fc3.bias_mask), [0, 0, 0, 1, 0, 0, 0, 1, 0, 0])

    buf = io.BytesIO()
    fw.save(model.state_dict(), buf)
    buf.seek(0)
    other = LeNet()
    foobar_unstructured(other.fc3, name='bias')
    other.load_state_dict(fw.load(buf))
    np.testing.assert_array_equal(np_of(other.fc3.bias_mask), np_of(model.fc3.bias_mask))
    x = fw.randn(2, 1, 32, 32)
    np.testing.assert_allclose(np_of(other(x)), np_of(model(x)), rtol=1e-6)


def _lenet_train(compiled, steps=4):
    fw.manual_seed(0)
    model = LeNet()
    prune.l1_unstructured(model.fc1, name='weight', amount=0.5)
    prune.ln_structured(model.conv2, name='weight', amount=0.25, n=2, dim=0)
    opt = fw.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = np.random.default_rng(0)
    x = fw.tensor(g.normal(size=(8, 1, 32, 32)).astype(np.float32))
    y = fw.tensor(g.integers(0, 10, 8))

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    fn = fw.compile(step) if compiled else step
    return model, [fn(x, y).item() for _ in range(steps)], fn


def test_pruned_lenet_trains_eager_and_compiled():
    m_e, eager, _ = _lenet_train(False)
    assert eager[-1] < eager[0]
    mask = np_of(m_e.fc1.weight_mask)
    assert np.all(np_of(m_e.fc1.weight)[mask == 0] == 0)
    m_c, comp, fn = _lenet_train(True)
    np.testing.assert_allclose(comp, eager, rtol=1e-4, atol=1e-5)
    assert_params_close(m_c, m_e)
    assert_stats(fn, num_recompiles=0)


def test_prune_bad_amount_raises():
    with pytest.raises((ValueError, TypeError)):
        prune.l1_unstructured(nn.Linear(3, 3), name="weight", amount=1.5)
