"""Optimizers and modules that a module keeps as plain attributes (the forward-forward
example's ``self.opt = Adam(self.parameters())`` and ``self.layers = [Layer(...)]``) are
state of a compiled function reached only through that module: their tensors must be
tracked, not baked into the graph at capture time."""

import numpy as np

import framework as fw
from framework import nn, optim


class _SelfTraining(nn.Linear):
    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out)
        self.opt = optim.Adam(self.parameters(), lr=0.03)


def _adam_steps(compiled, steps=5):
    fw.manual_seed(0)
    m = _SelfTraining(6, 4)
    x = fw.randn(8, 6)

    def step(x):  # reaches the optimizer only as m.opt
        m.opt.zero_grad()
        loss = m(x).square().mean()
        loss.backward()
        m.opt.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    losses = [fn(x).item() for _ in range(steps)]
    state = m.opt.state[m.weight]
    return losses, m.weight.detach().numpy().copy(), state["exp_avg_sq"].numpy().copy(), fn


def test_optimizer_held_as_module_attribute_steps_like_eager():
    le, we, ve, _ = _adam_steps(False)
    lc, wc, vc, fn = _adam_steps(True)
    assert fn.stats()["cache_hits"] >= 3 and fn.stats()["num_recompiles"] == 0
    np.testing.assert_allclose(lc, le, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wc, we, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vc, ve, rtol=1e-5, atol=1e-6)


class _ListNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(3, 5), nn.Linear(5, 2)]   # not registered submodules

    def predict(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x.sum(1)


def test_modules_in_a_plain_list_are_not_baked():
    fw.manual_seed(0)
    net = _ListNet()
    x = fw.randn(4, 3)
    cf = fw.compile(net.predict, mode="always")
    with fw.no_grad():
        cf(x)
        cf(x)
        net.layers[1].weight.mul_(-2.0)              # trained further between calls
        net.layers[1].bias.fill_(0.5)
        np.testing.assert_allclose(cf(x).numpy(), net.predict(x).numpy(), rtol=1e-6)
        net.layers[0] = nn.Linear(3, 5)              # a replaced layer: recompiles
        np.testing.assert_allclose(cf(x).numpy(), net.predict(x).numpy(), rtol=1e-6)
