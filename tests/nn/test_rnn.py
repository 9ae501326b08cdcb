"""RNN/LSTM/GRU and their cells against a NumPy implementation of PyTorch's equations
(gate orders, bidirectional multi-layer stacking, batch_first, initial states),
gradients via finite differences in float64."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError, ShapeError
from tests.param_grad import numeric_param_grad

R = np.random.default_rng(5)


def t64(a, grad=False):
    return fw.tensor(a, dtype=fw.float64, requires_grad=grad)


def sig(x):
    return 1 / (1 + np.exp(-x))


def np_cell(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    gi = x @ w_ih.T + b_ih
    gh = h @ w_hh.T + b_hh
    hs = h.shape[-1]
    if mode == "LSTM":
        g = gi + gh
        i, f, gg, o = (g[:, k * hs:(k + 1) * hs] for k in range(4))
        c = sig(f) * c + sig(i) * np.tanh(gg)
        return sig(o) * np.tanh(c), c
    if mode == "GRU":
        r = sig(gi[:, :hs] + gh[:, :hs])
        z = sig(gi[:, hs:2 * hs] + gh[:, hs:2 * hs])
        n = np.tanh(gi[:, 2 * hs:] + r * gh[:, 2 * hs:])
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0)), None


def np_rnn(m, x, h0, c0):
    """Sequence-first reference using the module's parameters by name."""
    mode = m.mode
    dirs = 2 if m.bidirectional else 1
    layer_in = x
    hn, cn = [], []
    for layer in range(m.num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w = [getattr(m, n + sfx).detach().numpy() for n in ("weight_ih", "weight_hh")]
            b = [getattr(m, n + sfx).detach().numpy() if m.bias else 0.0
                 for n in ("bias_ih", "bias_hh")]
            idx = layer * dirs + d
            h, c = h0[idx], None if c0 is None else c0[idx]
            seq = [None] * x.shape[0]
            order = range(x.shape[0] - 1, -1, -1) if d else range(x.shape[0])
            for t in order:
                h, c = np_cell(mode, layer_in[t], h, c, w[0], w[1], b[0], b[1])
                seq[t] = h
            outs.append(np.stack(seq))
            hn.append(h)
            cn.append(c)
        layer_in = np.concatenate(outs, -1)
    return layer_in, np.stack(hn), (np.stack(cn) if c0 is not None else None)


@pytest.mark.parametrize("cls,kw", [
    (nn.LSTM, dict(num_layers=2, bidirectional=True, batch_first=True)),
    (nn.GRU, dict(num_layers=2, bidirectional=True, batch_first=True)),
    (nn.LSTM, dict(num_layers=1)),
    (nn.GRU, dict(num_layers=3, bias=False)),
    (nn.RNN, dict(num_layers=2, bidirectional=True)),
    (nn.RNN, dict(nonlinearity="relu", batch_first=True)),
])
def test_recurrent_matches_reference_with_initial_states(cls, kw):
    m = cls(3, 4, **kw).double()
    dirs = 2 if m.bidirectional else 1
    n, t = 2, 5
    x = R.standard_normal((n, t, 3) if m.batch_first else (t, n, 3))
    h0 = R.standard_normal((m.num_layers * dirs, n, 4))
    c0 = R.standard_normal(h0.shape) if cls is nn.LSTM else None
    hx = (t64(h0), t64(c0)) if cls is nn.LSTM else t64(h0)
    out, hn = m(t64(x), hx)
    xs = x.transpose(1, 0, 2) if m.batch_first else x
    ro, rh, rc = np_rnn(m, xs, h0, c0)
    if m.batch_first:
        ro = ro.transpose(1, 0, 2)
    np.testing.assert_allclose(out.detach().numpy(), ro, atol=1e-12)
    if cls is nn.LSTM:
        np.testing.assert_allclose(hn[0].detach().numpy(), rh, atol=1e-12)
        np.testing.assert_allclose(hn[1].detach().numpy(), rc, atol=1e-12)
    else:
        np.testing.assert_allclose(hn.detach().numpy(), rh, atol=1e-12)
    # default zero states == explicit zeros
    out0 = m(t64(x))[0].detach().numpy()
    zeros = np.zeros(h0.shape)
    ref0 = np_rnn(m, xs, zeros, zeros if cls is nn.LSTM else None)[0]
    np.testing.assert_allclose(out0, ref0.transpose(1, 0, 2) if m.batch_first else ref0,
                               atol=1e-12)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_recurrent_gradcheck(cls):
    m = cls(2, 2, num_layers=2, bidirectional=True).double()
    x = t64(R.standard_normal((3, 1, 2)), True)
    h0 = t64(R.standard_normal((4, 1, 2)), True)
    params = list(m.parameters())[:4]  # the first layer/direction's weights

    def f(x, h0):
        if cls is nn.LSTM:
            out, (h, c) = m(x, (h0, h0 * 0.5))
            return out, h, c
        out, h = m(x, h0)
        return out, h

    assert fw.autograd.gradcheck(f, (x, h0))
    # parameter gradients against finite differences of the loss
    loss = (m(x)[0] ** 2).sum()
    loss.backward()
    for p in params:
        num = numeric_param_grad(p, lambda: (m(x)[0] ** 2).sum().item())
        np.testing.assert_allclose(p.grad.numpy(), num, rtol=1e-5, atol=1e-7)


def test_cells_match_reference():
    for cls, mode in ((nn.LSTMCell, "LSTM"), (nn.GRUCell, "GRU"), (nn.RNNCell, "RNN_TANH")):
        m = cls(3, 4).double()
        x, h = R.standard_normal((2, 3)), R.standard_normal((2, 4))
        c = R.standard_normal((2, 4))
        w = (m.weight_ih.detach().numpy(), m.weight_hh.detach().numpy(),
             m.bias_ih.detach().numpy(), m.bias_hh.detach().numpy())
        rh, rc = np_cell(mode, x, h, c, *w)
        if mode == "LSTM":
            oh, oc = m(t64(x), (t64(h), t64(c)))
            np.testing.assert_allclose(oc.detach().numpy(), rc, atol=1e-12)
        else:
            oh = m(t64(x), t64(h))
        np.testing.assert_allclose(oh.detach().numpy(), rh, atol=1e-12)
        assert list(m.state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        unb = m(t64(x[0]))
        assert (unb[0] if mode == "LSTM" else unb).shape == (4,)
    relu = nn.RNNCell(3, 4, nonlinearity="relu", bias=False).double()
    x, h = R.standard_normal((2, 3)), R.standard_normal((2, 4))
    ref = np.maximum(x @ relu.weight_ih.detach().numpy().T + h @ relu.weight_hh.detach().numpy().T,
                     0)
    np.testing.assert_allclose(relu(t64(x), t64(h)).detach().numpy(), ref, atol=1e-12)
    assert repr(relu) == "RNNCell(3, 4, bias=False, nonlinearity=relu)"


def test_names_init_repr_unbatched_and_dropout():
    fw.manual_seed(0)
    m = nn.LSTM(3, 16, num_layers=2, bidirectional=True, dropout=0.5)
    names = list(m.state_dict())
    assert names[:8] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                         "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                         "bias_hh_l0_reverse"]
    assert m.weight_ih_l0.shape == (64, 3) and m.weight_ih_l1.shape == (64, 32)
    assert nn.GRU(3, 5).weight_hh_l0.shape == (15, 5)
    bound = 1 / math.sqrt(16)
    allw = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    assert np.abs(allw).max() <= bound and np.abs(allw).max() > 0.95 * bound
    assert repr(m) == "LSTM(3, 16, num_layers=2, dropout=0.5, bidirectional=True)"
    x = fw.randn(4, 3)
    out, (h, c) = m(x)
    assert out.shape == (4, 32) and h.shape == (4, 16) and c.shape == (4, 16)
    m.eval()
    a, b = m(x)[0], m(x)[0]
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    m.train()
    a, b = m(x)[0], m(x)[0]
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())


def test_errors():
    m = nn.GRU(3, 4, num_layers=2)
    with pytest.raises(ShapeError, match="input_size"):
        m(fw.randn(5, 2, 4))
    with pytest.raises(ShapeError, match="hidden size"):
        m(fw.randn(5, 2, 3), fw.zeros(1, 2, 4))
    with pytest.raises(ArgumentError, match="tuple"):
        nn.LSTM(3, 4)(fw.randn(5, 2, 3), fw.zeros(1, 2, 4))
    with pytest.raises(ArgumentError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ArgumentError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ArgumentError, match="dropout"):
        nn.LSTM(3, 4, dropout=1.5)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("reverse,bias", [(False, True), (True, False)])
def test_layer_ops_kernel_decomposition_and_bptt(kind, reverse, bias):
    from framework.ops import rnn_ops
    from framework.ops.registry import OPS
    name = kind.split("_")[0]
    g = rnn_ops.GATES[name]
    hs, t_len, n, i = 2, 3, 2, 3
    x = t64(R.standard_normal((t_len, n, i)), True)
    states = [t64(R.standard_normal((n, hs)), True) for _ in range(2 if name == "lstm" else 1)]
    w = [t64(R.standard_normal((g * hs, i)) * 0.7, True),
         t64(R.standard_normal((g * hs, hs)) * 0.7, True)]
    b = [t64(R.standard_normal(g * hs) * 0.5, True) for _ in range(2)] if bias else []
    attrs = {"reverse": reverse}
    if name == "rnn":
        attrs["nonlinearity"] = kind.split("_")[1]

    def run(*a):
        return fw.ops.apply(OPS[name], *a, **attrs)

    inputs = (x, *states, *w, *b)
    kernel = [o.detach().numpy() for o in run(*inputs)]
    decomp = [o.detach().numpy() for o in OPS[name].decomp(*inputs, **attrs)]
    for k, d in zip(kernel, decomp):
        np.testing.assert_allclose(k, d, atol=1e-12)
    # the NumPy reference cell, step by step
    mode = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN_" + kind.split("_")[-1].upper()}[name]
    h = states[0].detach().numpy()
    c = states[1].detach().numpy() if name == "lstm" else None
    bi = [v.detach().numpy() for v in b] or [0.0, 0.0]
    ys = [None] * t_len
    for t in (range(t_len - 1, -1, -1) if reverse else range(t_len)):
        h, c = np_cell(mode, x.detach().numpy()[t], h, c, w[0].detach().numpy(),
                       w[1].detach().numpy(), *bi)
        ys[t] = h
    np.testing.assert_allclose(kernel[0], np.stack(ys), atol=1e-12)
    assert fw.autograd.gradcheck(run, inputs)


def test_lstm_op_second_order():
    from framework.ops import rnn_ops
    x = t64(R.standard_normal((2, 1, 2)), True)
    h0, c0 = t64(R.standard_normal((1, 2)), True), t64(R.standard_normal((1, 2)), True)
    w_ih = t64(R.standard_normal((8, 2)) * 0.5, True)
    w_hh = t64(R.standard_normal((8, 2)) * 0.5, True)
    assert fw.autograd.gradgradcheck(
        lambda a, h, c, u, v: rnn_ops.lstm(a, h, c, u, v, reverse=True)[0], (x, h0, c0, w_ih,
                                                                            w_hh))


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_flatten_parameters_keeps_weights_and_outputs(cls):
    # word_language_model calls model.rnn.flatten_parameters() after loading a checkpoint
    fw.manual_seed(0)
    m = cls(3, 4, num_layers=2)
    x = fw.randn(5, 2, 3)
    before = [p.detach().numpy().copy() for p in m.parameters()]
    out0 = m(x)[0].detach().numpy()
    assert m.flatten_parameters() is None
    for p, b in zip(m.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), b)
    np.testing.assert_array_equal(m(x)[0].detach().numpy(), out0)
