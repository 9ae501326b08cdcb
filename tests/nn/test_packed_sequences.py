"""nn.utils.rnn (PackedSequence, pack/pad helpers) and RNN/LSTM/GRU on packed input,
checked against running each sequence alone (batch of 1, no padding): outputs, h_n, c_n,
and input/weight/h_0 gradients (per-sequence runs summed)."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError, FrameworkError, ShapeError
from framework.nn.utils.rnn import (PackedSequence, pack_padded_sequence, pack_sequence,
                                    pad_packed_sequence, pad_sequence, unpack_sequence,
                                    unpad_sequence)

R = np.random.default_rng(11)


def t64(a, grad=False):
    return fw.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def np_(t):
    return t.detach().numpy()


def np_padded(seqs, batch_first, value=0.0, left=False):
    t_len = max(len(s) for s in seqs)
    out = np.full((len(seqs), t_len) + seqs[0].shape[1:], value)
    for b, s in enumerate(seqs):
        if left:
            out[b, t_len - len(s):] = s
        else:
            out[b, :len(s)] = s
    return out if batch_first else out.swapaxes(0, 1)


# ---------------------------------------------------------------------------------------
# the utilities
def test_module_is_exposed_and_packedsequence_is_a_namedtuple():
    assert nn.utils.rnn.PackedSequence is PackedSequence
    p = pack_sequence([t64([[1.0], [2.0], [3.0]]), t64([[4.0], [5.0]])])
    data, batch_sizes, sorted_indices, unsorted_indices = p
    assert p._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    np.testing.assert_array_equal(np_(data)[:, 0], [1, 4, 2, 5, 3])
    assert batch_sizes.dtype is fw.int64 and batch_sizes.device.type == "cpu"
    assert batch_sizes.tolist() == [2, 2, 1]
    assert sorted_indices is None and unsorted_indices is None
    assert not p.is_cuda and p.cpu() is p and p.to(fw.float64) is p
    q = p.float()
    assert q.data.dtype is fw.float32 and q.batch_sizes is p.batch_sizes
    with pytest.raises(FrameworkError, match="batch_sizes"):
        PackedSequence(data, "nope")


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_pad_round_trip(batch_first, enforce_sorted):
    lens = [5, 4, 4, 2, 1] if enforce_sorted else [2, 5, 1, 4, 4]
    seqs = [R.standard_normal((n, 3)) for n in lens]
    padded = np_padded(seqs, batch_first, value=7.0)
    x = t64(padded, grad=True)
    for lengths in (lens, fw.tensor(lens)):
        p = pack_padded_sequence(x, lengths, batch_first=batch_first,
                                 enforce_sorted=enforce_sorted)
        assert p.batch_sizes.tolist() == [5, 4, 3, 3, 1]
        assert p.data.shape == (sum(lens), 3)
        if enforce_sorted:
            assert p.sorted_indices is None
        else:
            order = p.sorted_indices.tolist()
            assert [lens[i] for i in order] == sorted(lens, reverse=True)
            assert p.unsorted_indices.tolist() == list(np.argsort(order))
        out, out_lens = pad_packed_sequence(p, batch_first=batch_first, padding_value=-1.0,
                                            total_length=7)
        assert out_lens.tolist() == lens and out_lens.dtype is fw.int64
        want = np_padded(seqs, batch_first, value=-1.0)
        pad_t = np.full((7 - want.shape[1 if batch_first else 0],) + want.shape[2:], -1.0)
        if batch_first:
            want = np.concatenate([want, np.broadcast_to(pad_t[None], (5,) + pad_t.shape)], 1)
        else:
            want = np.concatenate([want, np.broadcast_to(pad_t[:, None], (2, 5, 3))], 0)
        np.testing.assert_array_equal(np_(out), want)
    # gradients flow back to the valid positions only
    out, _ = pad_packed_sequence(p, batch_first=batch_first)
    (out * 3.0).sum().backward()
    mask = np_padded([np.ones_like(s) for s in seqs], batch_first)
    np.testing.assert_array_equal(x.grad.numpy(), 3.0 * mask)


def test_total_length_too_short_and_unpack_sequence():
    seqs = [t64(R.standard_normal((n, 2)), grad=True) for n in (3, 1, 4)]
    p = pack_sequence(seqs, enforce_sorted=False)
    with pytest.raises(ArgumentError, match="total_length=3 and max sequence length being 4"):
        pad_packed_sequence(p, total_length=3)
    back = unpack_sequence(p)
    for a, b in zip(back, seqs):
        np.testing.assert_array_equal(np_(a), np_(b))
    sum((a * a).sum() for a in back).backward()
    for s in seqs:
        np.testing.assert_allclose(s.grad.numpy(), 2 * np_(s))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_and_unpad_sequence(batch_first, side):
    raw = [R.standard_normal((n, 2, 2)) for n in (2, 4, 3)]
    seqs = [t64(a, grad=True) for a in raw]
    out = pad_sequence(seqs, batch_first=batch_first, padding_value=5.0, padding_side=side)
    np.testing.assert_array_equal(np_(out), np_padded(raw, batch_first, 5.0, side == "left"))
    (out * 2).sum().backward()
    for s in seqs:
        np.testing.assert_array_equal(s.grad.numpy(), np.full(s.shape, 2.0))
    if side == "right":
        lens = fw.tensor([2, 4, 3])
        for a, b in zip(unpad_sequence(out, lens, batch_first=batch_first), raw):
            np.testing.assert_array_equal(np_(a), b)
    with pytest.raises(ArgumentError, match="padding_side"):
        pad_sequence(seqs, padding_side="middle")
    with pytest.raises(ArgumentError, match="empty list"):
        pad_sequence([])


def test_pack_errors():
    x = fw.zeros(4, 3, 2)
    with pytest.raises(ArgumentError, match="pack_padded_sequence: `lengths` array must be "
                                            "sorted in decreasing order when `enforce_sorted`"):
        pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(ArgumentError, match="enforce_sorted"):
        pack_sequence([fw.zeros(1), fw.zeros(2)])
    with pytest.raises(ArgumentError, match="greater than 0"):
        pack_padded_sequence(x, [4, 2, 0])
    with pytest.raises(ArgumentError, match="greater than 0"):
        pack_padded_sequence(x, [0, 4, 2], enforce_sorted=False)
    with pytest.raises(ShapeError, match="larger than the sequence dimension"):
        pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ShapeError, match="larger than the sequence dimension"):
        pack_padded_sequence(x, [4, 3, 2, 1], batch_first=True)  # T = 3 when batch first
    with pytest.raises(ShapeError, match="equal to batch_size"):
        pack_padded_sequence(x, [4, 2])
    with pytest.raises(FrameworkError, match="lengths"):
        pack_padded_sequence(x, fw.tensor([[4, 2, 1]]))
    with pytest.raises(FrameworkError, match="PackedSequence"):
        pad_packed_sequence(x)


# ---------------------------------------------------------------------------------------
# RNN / LSTM / GRU on packed input vs one sequence at a time
def _state_loss(hn, lstm):
    if lstm:
        return (hn[0] ** 3).sum() + (hn[1] * 0.5).sum()
    return (hn ** 3).sum()


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_matches_per_sequence_runs(cls, num_layers, bidirectional, enforce_sorted):
    fw.manual_seed(3)
    lstm = cls is nn.LSTM
    m = cls(3, 4, num_layers=num_layers, bidirectional=bidirectional, dtype=fw.float64,
            batch_first=True)    # batch_first is irrelevant for packed input
    lens = [5, 5, 3, 2, 1] if enforce_sorted else [3, 5, 1, 5, 2]
    seqs = [t64(R.standard_normal((n, 3)), grad=True) for n in lens]
    d = 2 if bidirectional else 1
    h0 = t64(R.standard_normal((num_layers * d, 5, 4)), grad=True)
    c0 = t64(R.standard_normal((num_layers * d, 5, 4)), grad=True)
    hx = (h0, c0) if lstm else h0

    packed = pack_sequence(seqs, enforce_sorted=enforce_sorted)
    out, hn = m(packed, hx)
    assert isinstance(out, PackedSequence)
    assert out.batch_sizes is packed.batch_sizes and out.data.shape == (sum(lens), d * 4)
    padded, out_lens = pad_packed_sequence(out)
    assert out_lens.tolist() == lens
    ((padded ** 2).sum() + _state_loss(hn, lstm)).backward()
    got_grads = [s.grad.numpy().copy() for s in seqs + [h0] + ([c0] if lstm else [])]
    got_w = {n: p.grad.numpy().copy() for n, p in m.named_parameters()}
    m.zero_grad()
    for t in seqs + [h0, c0]:
        t.grad = None

    for b, s in enumerate(seqs):
        hb = (h0[:, b:b + 1], c0[:, b:b + 1]) if lstm else h0[:, b:b + 1]
        o, h = m(s.unsqueeze(0), hb)                 # batch_first: (1, L, I)
        np.testing.assert_allclose(np_(padded[:lens[b], b]), np_(o[0]), atol=1e-12)
        np.testing.assert_array_equal(np_(padded[lens[b]:, b]), 0.0)
        if lstm:
            np.testing.assert_allclose(np_(hn[0][:, b]), np_(h[0][:, 0]), atol=1e-12)
            np.testing.assert_allclose(np_(hn[1][:, b]), np_(h[1][:, 0]), atol=1e-12)
        else:
            np.testing.assert_allclose(np_(hn[:, b]), np_(h[:, 0]), atol=1e-12)
        ((o ** 2).sum() + _state_loss(h, lstm)).backward()
    want = [s.grad.numpy() for s in seqs + [h0] + ([c0] if lstm else [])]
    for g, w in zip(got_grads, want):
        np.testing.assert_allclose(g, w, atol=1e-10)
    for n, p in m.named_parameters():
        np.testing.assert_allclose(got_w[n], p.grad.numpy(), atol=1e-10, err_msg=n)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_packed_default_state_float32_and_pack_padded_input(cls):
    fw.manual_seed(0)
    m = cls(2, 3, num_layers=2, bidirectional=True)
    lens = [2, 4, 3]
    raw = [R.standard_normal((n, 2)).astype(np.float32) for n in lens]
    x = fw.tensor(np_padded(raw, batch_first=False).astype(np.float32))
    out, hn = m(pack_padded_sequence(x, lens, enforce_sorted=False))
    padded, _ = pad_packed_sequence(out, batch_first=True)
    assert padded.dtype is fw.float32 and padded.shape == (3, 4, 6)
    for b, a in enumerate(raw):
        o, h = m(fw.tensor(a))                       # unbatched reference
        np.testing.assert_allclose(np_(padded[b, :lens[b]]), np_(o), rtol=1e-5, atol=1e-6)
        h = h[0] if cls is nn.LSTM else h
        got = hn[0] if cls is nn.LSTM else hn
        np.testing.assert_allclose(np_(got[:, b]), np_(h), rtol=1e-5, atol=1e-6)


def test_packed_input_errors():
    m = nn.LSTM(3, 4)
    p = pack_sequence([fw.randn(3, 3), fw.randn(2, 3)])
    with pytest.raises(ShapeError, match="LSTM: expected hidden size"):
        m(p, (fw.zeros(1, 3, 4), fw.zeros(1, 2, 4)))
    with pytest.raises(ArgumentError, match="tuple"):
        m(p, fw.zeros(1, 2, 4))
    with pytest.raises(ShapeError, match="packed data"):
        nn.GRU(5, 4)(p)
    with pytest.raises(FrameworkError, match="Tensor or a PackedSequence"):
        nn.RNN(3, 4)([1, 2, 3])
