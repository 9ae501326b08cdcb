"""An argument's ``requires_grad`` switched on inside a compiled function (an FGSM
attack's ``data.requires_grad = True``) stays switched on for the caller, as in eager."""

import numpy as np
import pytest

import framework as fw
from framework import nn


@pytest.mark.parametrize("how", ["attribute", "method"])
def test_input_requires_grad_set_inside_compiled_fn_reaches_caller(how):
    fw.manual_seed(0)
    m = nn.Linear(3, 2)

    def attack(x):
        if how == "attribute":
            x.requires_grad = True
        else:
            x.requires_grad_()
        loss = m(x).square().sum()
        m.zero_grad()
        loss.backward()
        return (x + 0.1 * x.grad.data.sign()).detach()

    cf = fw.compile(attack, mode="always")
    for _ in range(3):
        x = fw.randn(4, 3)
        xe, xc = x.clone(), x.clone()
        want = attack(xe)
        got = cf(xc)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)
        assert xc.requires_grad and xc.is_leaf and xc.grad is not None
        np.testing.assert_allclose(xc.grad.numpy(), xe.grad.numpy(), rtol=1e-6)
    st = cf.stats()
    assert st["eager_reason"] is None and st["eager_calls"] == 0, st
    assert st["cache_hits"] >= 1


def test_input_requires_grad_untouched_when_fn_does_not_set_it():
    m = nn.Linear(3, 2)
    cf = fw.compile(lambda x: m(x).sum(), mode="always")
    for _ in range(2):
        x = fw.randn(4, 3)
        cf(x)
        assert not x.requires_grad and x.grad is None
