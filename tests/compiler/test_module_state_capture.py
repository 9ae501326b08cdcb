"""Module state a compiled function reads or sets besides parameters and buffers (found by
porting pytorch/examples' word_language_model): plain tensor attributes, a mask cached on
the module, and an RNN's hidden state returned next to the loss of a training step."""

import numpy as np
import pytest

import framework as fw
from framework import nn


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = fw.tensor(2.0)    # a plain attribute, neither parameter nor buffer

    def forward(self, x):
        return x * self.scale


def test_rebinding_a_tensor_attribute_is_seen_by_the_compiled_function():
    m = _Scaled()
    f = fw.compile(m, mode="always")
    x = fw.ones(3)
    np.testing.assert_array_equal(f(x).numpy(), [2.0, 2.0, 2.0])
    m.scale = fw.tensor(3.0)
    np.testing.assert_array_equal(f(x).numpy(), [3.0, 3.0, 3.0])   # not the stale 2.0
    assert f.stats()["captures"] == 1      # read from the attribute on every call
    m.scale = fw.tensor([1.0, 2.0, 3.0])   # another shape: a recompile, then right
    np.testing.assert_array_equal(f(x).numpy(), [1.0, 2.0, 3.0])
    assert "changed to float32[3]" in f.stats()["recompiles"][0]


class _CachedMask(nn.Module):
    """TransformerModel's pattern: build a mask once per length, keep it on the module."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.mask = None

    def forward(self, x):
        if self.mask is None or self.mask.size(0) != len(x):
            self.mask = fw.tril(fw.ones(len(x), len(x))) * 2
        return self.lin(x) + self.mask.sum(1, keepdim=True)


def test_a_mask_cached_on_the_module_compiles_and_follows_eager():
    fw.manual_seed(0)
    m, ref = _CachedMask(), _CachedMask()
    ref.load_state_dict(m.state_dict())
    f = fw.compile(lambda x: m(x), mode="always")
    captures = []
    for n in (3, 3, 5, 5, 3, 3) * 3:      # like epochs whose last batch is shorter
        x = fw.randn(n, 4)
        np.testing.assert_allclose(f(x).detach().numpy(), ref(x).detach().numpy(), rtol=1e-6)
        assert m.mask.shape == ref.mask.shape == (n, n)
        assert m.mask.requires_grad == ref.mask.requires_grad == False  # noqa: E712
        captures.append(f.stats()["captures"])
    st = f.stats()
    assert st["eager_calls"] == 0 and not st["graph_breaks"]
    # once each (mask, length) pair was seen, switching back and forth never recompiles
    assert captures[-1] == captures[6] and st["num_recompiles"] < 8, st["recompiles"]


def _lstm_step(model, head, opt):
    def step(x, y, hidden):
        opt.zero_grad()
        hidden = tuple(h.detach() for h in hidden)
        out, hidden = model(x, hidden)
        loss = (head(out) - y).square().mean()
        loss.backward()
        opt.step()
        return loss, hidden
    return step


def _lstm_setup():
    fw.manual_seed(0)
    model, head = nn.LSTM(3, 5), nn.Linear(5, 1)
    opt = fw.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.1)
    return model, head, opt


def test_training_step_returning_the_rnn_hidden_state_compiles():
    model, head, opt = _lstm_setup()
    model_r, head_r, opt_r = _lstm_setup()
    f = fw.compile(_lstm_step(model, head, opt), mode="always")
    ref = _lstm_step(model_r, head_r, opt_r)
    hidden = hidden_r = (fw.zeros(1, 2, 5), fw.zeros(1, 2, 5))
    for i in range(4):
        x, y = fw.randn(4, 2, 3), fw.randn(4, 2, 1)
        loss, hidden = f(x, y, hidden)
        loss_r, hidden_r = ref(x, y, hidden_r)
        np.testing.assert_allclose(loss.item(), loss_r.item(), rtol=1e-5)
        for h, h_r in zip(hidden, hidden_r):
            np.testing.assert_allclose(h.numpy(), h_r.detach().numpy(), rtol=1e-5, atol=1e-6)
    st = f.stats()
    assert st["eager_reason"] is None and st["eager_calls"] == 0 and st["captures"] == 1
    # the freed history is not handed back: backward through it fails in eager mode too
    assert not hidden[0].requires_grad


def test_step_returning_a_tensor_its_backward_did_not_reach_warns():
    w = fw.ones(3, requires_grad=True)
    v = fw.ones(3, requires_grad=True)

    def step(x):
        loss = (w * x).sum()
        loss.backward()
        return loss, v * x       # v * x still has a live graph: needs a compiled backward

    f = fw.compile(step, mode="always")
    with pytest.warns(UserWarning, match="backward\\(\\) inside"):
        _, other = f(fw.ones(3))
    assert other.requires_grad and "backward() inside" in f.stats()["eager_reason"]
