"""LSTM with ``proj_size`` (``h_t = W_hr (o_t * tanh(c_t))``) against a step-by-step NumPy
reference: (bi)directional, stacked, batch_first, unbatched, packed sequences, dropout,
``fw.compile``, ONNX export; gradients via finite differences in float64; PyTorch's
parameter names, shapes and order; the argument errors."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError, ShapeError
from framework.nn.utils.rnn import pack_sequence, pad_packed_sequence
from framework.ops import rnn_ops
from framework.ops.registry import OPS
from tests.param_grad import numeric_param_grad

R = np.random.default_rng(7)
IN, H, P = 3, 4, 2         # input, hidden and projection sizes


def t64(a, grad=False):
    return fw.tensor(a, dtype=fw.float64, requires_grad=grad)


def sig(x):
    return 1 / (1 + np.exp(-x))


def np_proj_lstm(m, x, h0, c0):
    """Sequence-first reference using the module's parameters by name."""
    dirs = 2 if m.bidirectional else 1
    layer_in, hn, cn = x, [], []
    for layer in range(m.num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh, w_hr = (getattr(m, n + sfx).detach().numpy()
                                for n in ("weight_ih", "weight_hh", "weight_hr"))
            b = sum(getattr(m, n + sfx).detach().numpy() for n in ("bias_ih", "bias_hh")) \
                if m.bias else 0.0
            h, c = h0[layer * dirs + d], c0[layer * dirs + d]
            seq = [None] * x.shape[0]
            for t in (range(x.shape[0] - 1, -1, -1) if d else range(x.shape[0])):
                a = layer_in[t] @ w_ih.T + h @ w_hh.T + b
                i, f, g, o = (a[:, k * H:(k + 1) * H] for k in range(4))
                c = sig(f) * c + sig(i) * np.tanh(g)
                h = (sig(o) * np.tanh(c)) @ w_hr.T
                seq[t] = h
            outs.append(np.stack(seq))
            hn.append(h)
            cn.append(c)
        layer_in = np.concatenate(outs, -1)
    return layer_in, np.stack(hn), np.stack(cn)


@pytest.mark.parametrize("kw", [
    dict(),
    dict(bidirectional=True),
    dict(num_layers=2, batch_first=True),
    dict(num_layers=2, bidirectional=True, batch_first=True, bias=False),
])
def test_matches_reference_with_and_without_initial_states(kw):
    m = nn.LSTM(IN, H, proj_size=P, **kw).double()
    dirs = 2 if m.bidirectional else 1
    n, t = 2, 4
    x = R.standard_normal((n, t, IN) if m.batch_first else (t, n, IN))
    h0 = R.standard_normal((m.num_layers * dirs, n, P))
    c0 = R.standard_normal((m.num_layers * dirs, n, H))
    xs = x.transpose(1, 0, 2) if m.batch_first else x
    for hx, (rh0, rc0) in [((t64(h0), t64(c0)), (h0, c0)),
                           (None, (np.zeros(h0.shape), np.zeros(c0.shape)))]:
        out, (hn, cn) = m(t64(x), hx)
        ro, rh, rc = np_proj_lstm(m, xs, rh0, rc0)
        assert out.shape == x.shape[:2] + (P * dirs,)
        np.testing.assert_allclose(out.detach().numpy(),
                                   ro.transpose(1, 0, 2) if m.batch_first else ro, atol=1e-12)
        np.testing.assert_allclose(hn.detach().numpy(), rh, atol=1e-12)
        np.testing.assert_allclose(cn.detach().numpy(), rc, atol=1e-12)


def test_unbatched_input_matches_a_batch_of_one():
    m = nn.LSTM(IN, H, num_layers=2, bidirectional=True, proj_size=P).double()
    x, h0, c0 = (R.standard_normal(s) for s in ((3, IN), (4, P), (4, H)))
    out, (hn, cn) = m(t64(x), (t64(h0), t64(c0)))
    assert (out.shape, hn.shape, cn.shape) == ((3, 2 * P), (4, P), (4, H))
    ro, rh, rc = np_proj_lstm(m, x[:, None], h0[:, None], c0[:, None])
    for got, ref in ((out, ro[:, 0]), (hn, rh[:, 0]), (cn, rc[:, 0])):
        np.testing.assert_allclose(got.detach().numpy(), ref, atol=1e-12)


def test_parameter_names_shapes_order_init_and_repr():
    m = nn.LSTM(IN, H, num_layers=2, bidirectional=True, proj_size=P)
    want = []
    for layer in range(2):
        for sfx in ("", "_reverse"):
            size_in = IN if layer == 0 else 2 * P
            want += [(f"weight_ih_l{layer}{sfx}", (4 * H, size_in)),
                     (f"weight_hh_l{layer}{sfx}", (4 * H, P)),
                     (f"bias_ih_l{layer}{sfx}", (4 * H,)), (f"bias_hh_l{layer}{sfx}", (4 * H,)),
                     (f"weight_hr_l{layer}{sfx}", (P, H))]
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == want
    assert list(m.state_dict()) == [n for n, _ in want]
    assert [len(ws) for ws in m.all_weights] == [5] * 4
    assert all(ws[-1] is getattr(m, n) for ws, n in zip(
        m.all_weights, ["weight_hr_l0", "weight_hr_l0_reverse", "weight_hr_l1",
                        "weight_hr_l1_reverse"]))
    bound = 1 / math.sqrt(H)
    for _, p in m.named_parameters():
        a = p.detach().numpy()
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.2 * bound
    assert repr(m) == "LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)"
    nobias = nn.LSTM(IN, H, bias=False, proj_size=P)
    assert [n for n, _ in nobias.named_parameters()] == ["weight_ih_l0", "weight_hh_l0",
                                                         "weight_hr_l0"]
    other = nn.LSTM(IN, H, num_layers=2, bidirectional=True, proj_size=P)
    other.load_state_dict(m.state_dict())
    x = fw.randn(3, 2, IN)
    np.testing.assert_allclose(other(x)[0].detach().numpy(), m(x)[0].detach().numpy())


def test_gradients_match_finite_differences():
    m = nn.LSTM(2, 3, num_layers=2, bidirectional=True, proj_size=1).double()
    x = t64(R.standard_normal((3, 1, 2)), True)
    h0 = t64(R.standard_normal((4, 1, 1)), True)
    c0 = t64(R.standard_normal((4, 1, 3)), True)

    def f(x, h0, c0):
        out, (h, c) = m(x, (h0, c0))
        return out, h, c

    assert fw.autograd.gradcheck(f, (x, h0, c0))

    def loss():
        out, (h, c) = m(x, (h0, c0))
        return (out ** 2).sum() + h.sum() + (c ** 2).sum()

    loss().backward()
    for name in ("weight_hr_l0", "weight_hr_l1_reverse", "weight_hh_l1"):
        p = getattr(m, name)
        num = numeric_param_grad(p, lambda: loss().item())
        np.testing.assert_allclose(p.grad.numpy(), num, rtol=1e-5, atol=1e-7, err_msg=name)


def test_layer_op_kernel_decomposition_and_bptt_without_bias():
    """The per-layer ``lstm`` op with ``w_hr``: NumPy kernel == unrolled decomposition, and
    its backpropagation through time (the VJP rule) against finite differences."""
    x = t64(R.standard_normal((3, 2, IN)), True)
    h0, c0 = t64(R.standard_normal((2, P)), True), t64(R.standard_normal((2, H)), True)
    w_ih = t64(R.standard_normal((4 * H, IN)) * 0.7, True)
    w_hh = t64(R.standard_normal((4 * H, P)) * 0.7, True)
    w_hr = t64(R.standard_normal((P, H)) * 0.7, True)

    def run(*a):
        return rnn_ops.lstm(*a[:5], None, None, a[5])

    inputs = (x, h0, c0, w_ih, w_hh, w_hr)
    kernel = run(*inputs)
    decomp = OPS["lstm"].decomp(*inputs, reverse=False, proj=True)
    assert [tuple(k.shape) for k in kernel] == [(3, 2, P), (2, P), (2, H)]
    for k, d in zip(kernel, decomp):
        np.testing.assert_allclose(k.detach().numpy(), d.detach().numpy(), atol=1e-12)
    assert fw.autograd.gradcheck(run, inputs)
    with pytest.raises(ShapeError, match="w_hr"):
        rnn_ops.lstm(x, h0, c0, w_ih, w_hh, w_hr=t64(np.zeros((P, H + 1))))


def test_errors_name_the_argument():
    for bad in (-1, H, H + 3):
        with pytest.raises(ArgumentError, match="proj_size") as e:
            nn.LSTM(IN, H, proj_size=bad)
        assert isinstance(e.value, ValueError)
    with pytest.raises(ArgumentError, match="smaller than hidden_size"):
        nn.LSTM(IN, H, proj_size=H)
    with pytest.raises(ArgumentError, match="proj_size"):
        nn.LSTM(IN, H, proj_size=1.5)
    for cls in (nn.RNN, nn.GRU):
        with pytest.raises(ArgumentError, match="proj_size argument is only supported for LSTM"):
            cls(IN, H, proj_size=P)
    m = nn.LSTM(IN, H, num_layers=2, proj_size=P)
    x = fw.randn(5, 2, IN)
    with pytest.raises(ShapeError, match="hidden size"):      # h_0 has the projected size
        m(x, (fw.zeros(2, 2, H), fw.zeros(2, 2, H)))
    with pytest.raises(ShapeError, match="cell size"):        # c_0 keeps hidden_size
        m(x, (fw.zeros(2, 2, P), fw.zeros(2, 2, P)))
    packed = pack_sequence([fw.randn(3, IN), fw.randn(2, IN)])
    with pytest.raises(ShapeError, match="hidden size"):
        m(packed, (fw.zeros(2, 2, H), fw.zeros(2, 2, H)))


def test_dropout_between_layers():
    m = nn.LSTM(IN, H, num_layers=2, dropout=0.5, proj_size=P).double()
    x = t64(R.standard_normal((4, 2, IN)))
    a, b = m(x)[0], m(x)[0]
    assert a.shape == (4, 2, P) and not np.allclose(a.detach().numpy(), b.detach().numpy())
    a.sum().backward()
    assert m.weight_hr_l0.grad is not None
    m.eval()
    zeros = (np.zeros((2, 2, P)), np.zeros((2, 2, H)))
    np.testing.assert_allclose(m(x)[0].detach().numpy(),
                               np_proj_lstm(m, x.numpy(), *zeros)[0], atol=1e-12)


def test_packed_sequences_match_per_sequence_runs():
    m = nn.LSTM(IN, H, num_layers=2, bidirectional=True, proj_size=P).double()
    lens = (3, 5, 2)
    seqs = [t64(R.standard_normal((n, IN)), True) for n in lens]
    h0, c0 = t64(R.standard_normal((4, 3, P))), t64(R.standard_normal((4, 3, H)))
    out, (hn, cn) = m(pack_sequence(seqs, enforce_sorted=False), (h0, c0))
    padded, got_lens = pad_packed_sequence(out, batch_first=True)
    assert padded.shape == (3, 5, 2 * P) and got_lens.tolist() == list(lens)
    for k, s in enumerate(seqs):
        o, (h, c) = m(s, (h0[:, k], c0[:, k]))
        np.testing.assert_allclose(padded[k, :lens[k]].detach().numpy(), o.detach().numpy(),
                                   atol=1e-12)
        np.testing.assert_allclose(hn[:, k].detach().numpy(), h.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(cn[:, k].detach().numpy(), c.detach().numpy(), atol=1e-12)
    (padded.sum() + hn.sum()).backward()
    assert m.weight_hr_l1_reverse.grad is not None and seqs[2].grad.shape == (2, IN)


def test_compile_matches_eager_forward_and_gradients():
    m = nn.LSTM(IN, H, num_layers=2, bidirectional=True, batch_first=True, proj_size=P).double()
    x = t64(R.standard_normal((2, 4, IN)))

    def loss(x):
        out, (h, c) = m(x)
        return (out ** 2).sum() + h.sum() + (c ** 2).sum()

    cf = fw.compile(loss, fullgraph=True, mode="always")
    compiled = cf(x)
    compiled.backward()
    grads = {n: p.grad.numpy().copy() for n, p in m.named_parameters()}
    m.zero_grad()
    eager = loss(x)
    eager.backward()
    assert not cf.stats()["graph_breaks"]
    assert abs(compiled.item() - eager.item()) < 1e-12
    for n, p in m.named_parameters():
        np.testing.assert_allclose(grads[n], p.grad.numpy(), atol=1e-12, err_msg=n)
    outs = fw.compile(m, fullgraph=True)(x)
    np.testing.assert_allclose(outs[0].detach().numpy(), m(x)[0].detach().numpy(), atol=1e-12)


def test_onnx_export_unrolls_the_projection():
    pytest.importorskip("onnxruntime")
    m = nn.LSTM(IN, H, bidirectional=True, batch_first=True, proj_size=P).eval()
    x = fw.randn(2, 3, IN)
    model = fw.onnx.export(m, (x,), input_names=["x"], dynamic_axes={"x": {0: "batch"}},
                           verify=True)             # verify: onnxruntime == eager
    assert "LSTM" not in {n.op_type for n in model.graph.node}   # ONNX's has no W_hr
    with pytest.raises(NotImplementedError, match="proj_size.*static sequence length"):
        fw.onnx.export(m, (x,), input_names=["x"], dynamic_axes={"x": {1: "seq"}})
