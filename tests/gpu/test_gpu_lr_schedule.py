"""A scheduled learning rate on device "cuda": one capture, values equal to eager."""

import numpy as np

import framework as fw
from framework import nn, optim


def _train(compiled: bool):
    fw.manual_seed(0)
    m = nn.Linear(4, 4).to("cuda")
    opt = optim.SGD(m.parameters(), lr=0.5, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, 1, 0.5)

    def step(x):
        loss = m(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    x = fw.randn(2, 4, device="cuda")
    for _ in range(4):
        fn(x)
        sched.step()
    return fn, m.weight.detach().cpu().numpy()


def test_sgd_momentum_with_a_schedule_compiles_once_on_cuda():
    """Regression: Triton's interpreter converting the runtime learning rate (a kernel
    argument) counted as baking it, so every new rate recompiled."""
    fn, compiled = _train(True)
    _, eager = _train(False)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    assert fn.stats()["captures"] == 1, fn.stats()["recompiles"]
