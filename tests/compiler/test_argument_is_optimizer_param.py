"""A compiled step given a tensor that is also a parameter of an optimizer it reaches (neural
style's ``LBFGS([input_img])`` with ``input_img`` passed in): the graph took the gradient on
its stand-in for the argument while the optimizer stepped the real tensor, so the first
update was lost without a word. It now runs eagerly with a warning naming the argument."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework import optim
from framework.errors import GraphBreak


def _run(compile_mode=None):
    w = fw.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    x = fw.tensor([1.0, 2.0, 3.0])

    def step(w, x):
        loss = (w * x).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    f = step if compile_mode is None else fw.compile(step, **compile_mode)
    losses = [float(f(w, x)) for _ in range(4)]
    return losses, w.detach().numpy(), f


def test_the_step_runs_eagerly_and_matches_eager():
    want_losses, want_w, _ = _run()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses, w, f = _run({"mode": "always"})
    np.testing.assert_allclose(losses, want_losses, rtol=1e-6)
    np.testing.assert_allclose(w, want_w, rtol=1e-6)
    assert "argument 'w' is also a parameter of an optimizer" in f.stats()["eager_reason"]
    assert any("argument 'w'" in str(c.message) for c in caught)


def test_fullgraph_raises():
    with pytest.raises(GraphBreak, match="argument 'w' is also a parameter"):
        _run({"fullgraph": True})


def _input_grad_run(compiled):
    fw.manual_seed(0)
    w = fw.ones(3, requires_grad=True)
    lin = fw.nn.Linear(3, 1)
    opt = optim.SGD(lin.parameters(), lr=0.1)

    def step(x):
        loss = lin(x).square().sum()
        opt.zero_grad()   # the model's grads only: x.grad accumulates over the calls
        loss.backward()
        opt.step()
        return loss
    f = fw.compile(step, mode="always") if compiled else step
    losses = [float(f(w)) for _ in range(4)]
    return losses, w.grad.numpy(), lin.weight.detach().numpy(), f


def test_an_input_whose_grad_accumulates_over_calls_compiles_and_matches_eager():
    """The argument's existing .grad is read by the graph (backward accumulates into it);
    this used to recompile on every call and crash on a missing guard value."""
    want = _input_grad_run(False)
    got = _input_grad_run(True)
    for a, b in zip(got[:3], want[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    st = got[3].stats()
    assert st["captures"] == 2 and st["eager_reason"] is None  # .grad None, then a tensor
    assert st["cache_hits"] == 2
