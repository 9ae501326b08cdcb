"""Optimizers with sparse gradients (nn.Embedding(sparse=True)): SparseAdam against a NumPy
reimplementation of PyTorch's lazy Adam, sparse Adagrad and SGD against NumPy / the dense
path, and the refusals (other optimizers, dense gradients to SparseAdam, bad options)."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn, optim

BATCHES = [[1, 4, 1, 7], [2, 2, 9], [4, 0, 1, 1, 3], [8]]


def _model(sparse, seed=0):
    fw.manual_seed(seed)
    return nn.Embedding(10, 3, sparse=sparse)


def _loss(emb, rows):
    out = emb(fw.tensor(rows))
    return (out * fw.arange(1.0, 4.0)).pow(2).sum()


def _grad_np(w, rows):
    """d/dw of sum((w[rows] * [1, 2, 3])^2), as a dense array (duplicates summed)."""
    c = np.arange(1.0, 4.0) ** 2
    g = np.zeros_like(w)
    np.add.at(g, rows, 2 * w[rows] * c)
    return g


def _sparse_adam_np(w, steps, lr, beta1, beta2, eps, maximize=False):
    """PyTorch's SparseAdam, written densely: moments and weights change only at the rows
    of each step's gradient; the bias correction uses the parameter's step count."""
    w = w.astype(np.float64).copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, rows in enumerate(steps, 1):
        g = _grad_np(w, rows)
        if maximize:
            g = -g
        present = np.unique(rows)
        gp = g[present]
        m[present] += (gp - m[present]) * (1 - beta1)
        v[present] += (gp * gp - v[present]) * (1 - beta2)
        step_size = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        w[present] -= step_size * m[present] / (np.sqrt(v[present]) + eps)
    return w


@pytest.mark.parametrize("maximize", [False, True])
def test_sparse_adam_matches_numpy_reference(maximize):
    emb = _model(True)
    w0 = emb.weight.detach().numpy().astype(np.float64)
    opt = optim.SparseAdam(emb.parameters(), lr=0.05, betas=(0.8, 0.95), eps=1e-6,
                           maximize=maximize)
    for rows in BATCHES:
        opt.zero_grad()
        _loss(emb, rows).backward()
        assert isinstance(emb.weight.grad, fw.sparse.SparseTensor)
        opt.step()
    want = _sparse_adam_np(w0, BATCHES, 0.05, 0.8, 0.95, 1e-6, maximize)
    np.testing.assert_allclose(emb.weight.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    untouched = [5, 6]  # never looked up: never changed
    np.testing.assert_array_equal(emb.weight.detach().numpy()[untouched], w0[untouched])
    assert opt.state[emb.weight]["step"] == len(BATCHES)


def test_sparse_adam_is_lazy_unlike_adam():
    sparse, dense = _model(True), _model(False)
    o1 = optim.SparseAdam(sparse.parameters(), lr=0.1)
    o2 = optim.Adam(dense.parameters(), lr=0.1)
    for rows in ([1, 2], [1]):  # row 2's moments decay under Adam, not under SparseAdam
        for e, o in ((sparse, o1), (dense, o2)):
            o.zero_grad()
            _loss(e, rows).backward()
            o.step()
    a, b = sparse.weight.detach().numpy(), dense.weight.detach().numpy()
    np.testing.assert_allclose(a[1], b[1], rtol=1e-4, atol=1e-6)
    assert np.abs(a[2] - b[2]).max() > 1e-4


def test_sparse_adam_state_dict_round_trip():
    emb = _model(True)
    opt = optim.SparseAdam(emb.parameters(), lr=0.05)
    for rows in BATCHES[:2]:
        opt.zero_grad()
        _loss(emb, rows).backward()
        opt.step()
    emb2 = _model(True)
    emb2.load_state_dict(emb.state_dict())
    opt2 = optim.SparseAdam(emb2.parameters(), lr=0.05)
    opt2.load_state_dict(opt.state_dict())
    for e, o in ((emb, opt), (emb2, opt2)):
        o.zero_grad()
        _loss(e, BATCHES[2]).backward()
        o.step()
    np.testing.assert_allclose(emb.weight.detach().numpy(), emb2.weight.detach().numpy())


def test_sparse_sgd_matches_dense_sgd():
    for kw in ({}, {"momentum": 0.9}, {"weight_decay": 0.1, "maximize": True},
               {"momentum": 0.5, "nesterov": True}):
        s, d = _model(True), _model(False)
        os_, od = optim.SGD(s.parameters(), lr=0.1, **kw), optim.SGD(d.parameters(), lr=0.1, **kw)
        for rows in BATCHES:
            for e, o in ((s, os_), (d, od)):
                o.zero_grad()
                _loss(e, rows).backward()
                o.step()
        np.testing.assert_allclose(s.weight.detach().numpy(), d.weight.detach().numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=str(kw))


def test_sparse_adagrad_matches_numpy_reference():
    emb = _model(True)
    w = emb.weight.detach().numpy().astype(np.float64)
    lr, lr_decay, eps, init = 0.1, 0.01, 1e-10, 0.1
    opt = optim.Adagrad(emb.parameters(), lr=lr, lr_decay=lr_decay, eps=eps,
                        initial_accumulator_value=init)
    acc = np.full_like(w, init)
    for t, rows in enumerate(BATCHES, 1):
        opt.zero_grad()
        _loss(emb, rows).backward()
        opt.step()
        g = _grad_np(w, rows)
        present = np.unique(rows)
        clr = lr / (1 + (t - 1) * lr_decay)
        acc[present] += g[present] ** 2
        w[present] -= clr * g[present] / (np.sqrt(acc[present]) + eps)
    np.testing.assert_allclose(emb.weight.detach().numpy(), w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,hint", [(optim.Adam, ", please consider SparseAdam instead"),
                                      (optim.AdamW, ", please consider SparseAdam instead"),
                                      (optim.RMSprop, ""), (optim.Adadelta, ""),
                                      (optim.NAdam, ""), (optim.Adamax, "")])
def test_other_optimizers_refuse_sparse_gradients(cls, hint):
    emb = _model(True)
    opt = cls(emb.parameters())
    _loss(emb, [1, 2]).backward()
    with pytest.raises(NotImplementedError,
                       match=f"^{cls.__name__} does not support sparse gradients{hint}$"):
        opt.step()


def test_refusals_of_sparse_capable_optimizers():
    emb = _model(False)
    opt = optim.SparseAdam(emb.parameters())
    _loss(emb, [1]).backward()
    with pytest.raises(NotImplementedError, match="SparseAdam does not support dense "
                                                  "gradients, please consider Adam instead"):
        opt.step()
    with pytest.raises(fw.ArgumentError, match="Invalid learning rate: 0.0"):
        optim.SparseAdam(emb.parameters(), lr=0.0)
    with pytest.raises(fw.ArgumentError, match="Invalid epsilon value: -1"):
        optim.SparseAdam(emb.parameters(), eps=-1)
    sp = _model(True)
    _loss(sp, [1]).backward()
    with pytest.raises(NotImplementedError, match="weight_decay option is not compatible"):
        optim.Adagrad(sp.parameters(), weight_decay=0.1).step()
    with pytest.raises(NotImplementedError, match="`fused` does not support sparse"):
        optim.SGD(sp.parameters(), lr=0.1, fused=True).step()
