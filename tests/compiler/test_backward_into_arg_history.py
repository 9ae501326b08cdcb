"""A compiled function whose ``loss.backward()`` reaches an argument with autograd history
recorded outside it (a GAN's generator step fed the ``fake`` batch of the discriminator
step). Eager backward continues into that history; compiled code used to stop at the
argument and silently drop those gradients. It now falls back to eager (fullgraph raises),
and the cache tells such an argument apart from a leaf."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import GraphBreak


def _models():
    fw.manual_seed(0)
    return nn.Linear(3, 3), nn.Linear(3, 1)


def _step(lin, head):
    def step(h):
        lin.zero_grad()
        head.zero_grad()
        loss = head(h).square().sum()
        loss.backward()
        return loss
    return step


def _grads(compiled, inputs):
    lin, head = _models()
    step = _step(lin, head)
    f = fw.compile(step, mode="always") if compiled else step
    out = []
    for make in inputs:
        h = make(lin)
        loss = f(h)
        out.append((loss.item(), lin.weight.grad, head.weight.grad.numpy().copy(), h.grad))
    return out, f


def _history(lin):
    return lin(fw.randn(4, 3))


def _leaf(lin):
    return fw.randn(4, 3, requires_grad=True)


def _check(inputs):
    eager, _ = _grads(False, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp, f = _grads(True, inputs)
    for (le, we, he, ge), (lc, wc, hc, gc) in zip(eager, comp):
        assert lc == pytest.approx(le, rel=1e-6)
        np.testing.assert_allclose(hc, he, rtol=1e-6)
        assert (we is None) == (wc is None)
        if we is not None:
            np.testing.assert_allclose(wc.numpy(), we.numpy(), rtol=1e-6)
        assert (ge is None) == (gc is None)
    return f


def test_backward_into_an_arguments_history_matches_eager():
    fw.manual_seed(1)
    f = _check([_history] * 3)
    assert "reaches argument 'h'" in f.stats()["eager_reason"]


def test_leaf_then_non_leaf_argument_is_not_a_cache_hit():
    fw.manual_seed(1)
    f = _check([_leaf, _leaf, _history])
    st = f.stats()
    assert st["captures"] == 1 and "requires_grad of h changed" in st["recompiles"][0]


def test_fullgraph_raises_and_forward_only_still_compiles():
    lin, head = _models()
    with pytest.raises(GraphBreak, match="autograd history"):
        fw.compile(_step(lin, head), fullgraph=True)(lin(fw.randn(4, 3)))
    # without backward() inside, a non-leaf argument is fine: the compiled forward's
    # gradient flows back into its history when the caller runs backward
    fwd = fw.compile(lambda h: head(h).square().sum(), mode="always", fullgraph=True)
    x = fw.randn(4, 3)
    lin.zero_grad()
    fwd(lin(x)).backward()
    got = lin.weight.grad.numpy().copy()
    lin.zero_grad()
    head(lin(x)).square().sum().backward()
    np.testing.assert_allclose(got, lin.weight.grad.numpy(), rtol=1e-5)
