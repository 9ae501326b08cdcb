"""fw.cond / fw.while_loop on device "cuda": eager kernels, and compiled graphs whose
control-flow step reads the predicate on the host and runs the chosen Triton kernels."""

import numpy as np
import pytest

import framework as fw
from framework import nn, optim


@pytest.fixture(autouse=True)
def _strict(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    monkeypatch.setenv("FW_VERIFY_PASSES", "1")


def _host(t):
    return t.detach().cpu().numpy()


def test_compiled_cond_and_while_on_cuda():
    fw.manual_seed(0)
    lin = nn.Linear(4, 4).to("cuda")

    def f(x, flag):
        y = fw.cond(flag, lambda a: lin(a).relu() + 1, lambda a: a * 2, (x,))
        zero = fw.zeros((), dtype=fw.int64, device="cuda")
        return fw.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * 0.5), (zero, y))

    cf = fw.compile(f, mode="always", fullgraph=True)
    x = fw.randn(3, 4, device="cuda")
    with fw.no_grad():
        for v in (True, False, True):
            flag = fw.tensor(v, device="cuda")
            (i1, a1), (i2, a2) = cf(x, flag), f(x, flag)
            assert i1.item() == i2.item() == 3
            np.testing.assert_allclose(_host(a1), _host(a2), rtol=1e-5, atol=1e-6)
        steps = [s.describe() for s in cf._entry_for((x, flag), {}).plan.steps]
    assert cf.stats()["captures"] == 1
    assert any(s.startswith("cond (") for s in steps)
    assert any(s.startswith("while_loop (") for s in steps)


def _train(compiled: bool):
    fw.manual_seed(0)
    lin = nn.Linear(4, 4).to("cuda")
    opt = optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)

    def step(x, flag):
        y = fw.cond(flag, lambda a: lin(a).tanh(), lambda a: a * 2, (x,))
        loss = y.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fn = fw.compile(step, mode="always", fullgraph=True) if compiled else step
    x = fw.randn(5, 4, device="cuda")
    losses = [fn(x, fw.tensor(v, device="cuda")).item() for v in (True, False, True)]
    return losses, _host(lin.weight)


def test_training_step_with_cond_on_cuda_matches_eager():
    le, we = _train(False)
    lc, wc = _train(True)
    np.testing.assert_allclose(lc, le, rtol=1e-5)
    np.testing.assert_allclose(wc, we, rtol=1e-5, atol=1e-6)
