"""bentrevett/pytorch-seq2seq legacy notebook 4 (packed padded sequences, masked attention,
inference with attention maps) ported to fw; the code lives in ``_s2s_nb4_packed.py`` as
published, the data in ``_s2s_data.py`` (BucketIterator-like batches sorted within the
batch, ``include_lengths=True``).

The packed encoder is checked against running each sentence alone, without padding (and
with ``enforce_sorted=False`` on an unsorted batch); the masked attention against NumPy.
Under ``fw.compile`` the lengths (``pack_padded_sequence`` reads them on the host) and the
teacher-forcing coin are graph breaks: the step runs eagerly with eager's numbers."""

import random
import warnings

import numpy as np
import pytest

import framework as fw
from framework.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import _s2s_data as D
from . import _s2s_nb4_packed as nb4
from ._checks import assert_onnx_export_matches, assert_stats, grad_leaves, np_of

DEVICE = fw.device("cpu")
EMB, ENC_HID, DEC_HID = 16, 16, 32


@pytest.fixture(scope="module")
def data():
    train, valid, en_vocab, de_vocab = D.prepare(n_train=48, n_valid=16)
    batches = D.legacy_batches(train, en_vocab, de_vocab, 8, include_lengths=True,
                               sort_within_batch=True)
    valid_batches = D.legacy_batches(valid, en_vocab, de_vocab, 8, include_lengths=True,
                                     sort_within_batch=True)
    return batches, valid_batches, valid, en_vocab, de_vocab


def _model(en_vocab, de_vocab, dropout=0.5, seed=0, init=True):
    fw.manual_seed(seed)
    attn = nb4.Attention(ENC_HID, DEC_HID)
    enc = nb4.Encoder(len(de_vocab), EMB, ENC_HID, DEC_HID, dropout)
    dec = nb4.Decoder(len(en_vocab), EMB, ENC_HID, DEC_HID, dropout, attn)
    model = nb4.Seq2Seq(enc, dec, de_vocab["<pad>"], DEVICE).to(DEVICE)
    if init:
        model.apply(nb4.init_weights)
    return model


def test_packed_encoder_equals_each_sentence_alone(data):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab, init=False).eval()  # default init: larger weights
    src, src_len = batches[0].src
    lens = src_len.tolist()
    assert lens == sorted(lens, reverse=True) and len(set(lens)) > 1
    with fw.no_grad():
        outputs, hidden = model.encoder(src, src_len)
        assert outputs.shape == (max(lens), 8, 2 * ENC_HID) and hidden.shape == (8, DEC_HID)
        for b, n in enumerate(lens):
            o, h = model.encoder(src[:n, b:b + 1], fw.tensor([n]))
            np.testing.assert_allclose(outputs.numpy()[:n, b], o.numpy()[:, 0], rtol=1e-5,
                                       atol=1e-6)
            assert np.all(outputs.numpy()[n:, b] == 0)  # pad steps: zeros
            np.testing.assert_allclose(hidden.numpy()[b], h.numpy()[0], rtol=1e-5, atol=1e-6)


def test_enforce_sorted_false_keeps_the_batch_order(data):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab, init=False).eval()
    src, src_len = batches[0].src
    perm = [3, 0, 7, 5, 1, 6, 2, 4]
    src_u, len_u = src[:, perm], src_len[perm]
    embedded = model.encoder.embedding(src_u)
    with fw.no_grad():
        packed = pack_padded_sequence(embedded, len_u.to("cpu"), enforce_sorted=False)
        out_u, hid_u = model.encoder.rnn(packed)
        out_u, lens_u = pad_packed_sequence(out_u)
        out_s, hid_s = model.encoder.rnn(pack_padded_sequence(model.encoder.embedding(src),
                                                              src_len))
        out_s, _ = pad_packed_sequence(out_s)
    np.testing.assert_array_equal(lens_u.numpy(), len_u.numpy())
    np.testing.assert_allclose(out_u.numpy(), out_s.numpy()[:, perm], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hid_u.numpy(), hid_s.numpy()[:, perm], rtol=1e-6, atol=1e-7)
    with pytest.raises(fw.errors.ArgumentError, match="sorted in decreasing order"):
        pack_padded_sequence(embedded, len_u)


def test_masked_attention_matches_numpy(data):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab, init=False).eval()
    src, src_len = batches[0].src
    mask = model.create_mask(src)
    np.testing.assert_array_equal(mask.numpy(), (src.numpy() != de_vocab["<pad>"]).T)
    with fw.no_grad():
        encoder_outputs, hidden = model.encoder(src, src_len)
        a = model.decoder.attention(hidden, encoder_outputs, mask).numpy()
    att = model.decoder.attention
    w, b, v = (np_of(t).astype(np.float64) for t in (att.attn.weight, att.attn.bias,
                                                       att.v.weight))
    L = src.shape[0]
    h = np.repeat(hidden.numpy()[:, None].astype(np.float64), L, axis=1)
    e = np.transpose(encoder_outputs.numpy(), (1, 0, 2))
    score = (np.tanh(np.concatenate([h, e], -1) @ w.T + b) @ v.T)[..., 0]
    score = np.where(mask.numpy(), score, -1e10)
    want = np.exp(score - score.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6)
    assert np.all(a[~mask.numpy()] == 0.0)


def test_training_lowers_loss_and_translate_sentence(data):
    batches, valid_batches, valid, en_vocab, de_vocab = data
    random.seed(1234)
    model = _model(en_vocab, de_vocab)
    assert nb4.count_parameters(model) == sum(p.numel() for p in model.parameters())
    optimizer = fw.optim.Adam(model.parameters())
    criterion = fw.nn.CrossEntropyLoss(ignore_index=en_vocab["<pad>"])
    fw.manual_seed(1)
    valid0 = nb4.evaluate(model, valid_batches, criterion)
    losses = [nb4.train(model, batches, optimizer, criterion, 1) for _ in range(12)]
    valid1 = nb4.evaluate(model, valid_batches, criterion)
    assert losses[-1] < 0.92 * losses[0], losses
    assert valid1 < 0.95 * valid0, (valid0, valid1)
    assert nb4.epoch_time(0.0, 125.5) == (2, 5)

    SRC, TRG = D.Field(de_vocab), D.Field(en_vocab)
    for sentence in (valid[0]["de"], valid[0]["de"].split()):  # a string or tokens
        translation, attention = nb4.translate_sentence(sentence, SRC, TRG, model, DEVICE,
                                                        max_len=6)
        assert 1 <= len(translation) <= 6 and all(t in en_vocab for t in translation)
        n_src = len(valid[0]["de"].split()) + 2
        assert attention.shape == (len(translation), 1, n_src)
        np.testing.assert_allclose(attention.numpy().sum(-1), 1.0, rtol=1e-5)


def _compiled_run(data, compiled):
    batches, *_, en_vocab, de_vocab = data
    random.seed(0)
    model = _model(en_vocab, de_vocab)
    optimizer = fw.optim.Adam(model.parameters())
    criterion = fw.nn.CrossEntropyLoss(ignore_index=en_vocab["<pad>"])

    def train_step(src, src_len, trg):
        # train()'s body for one batch
        optimizer.zero_grad()
        output = model(src, src_len, trg)
        output_dim = output.shape[-1]
        output = output[1:].view(-1, output_dim)
        trg = trg[1:].view(-1)
        loss = criterion(output, trg)
        loss.backward()
        fw.nn.utils.clip_grad_norm_(model.parameters(), 1)
        optimizer.step()
        return loss

    fn = fw.compile(train_step, mode="always") if compiled else train_step
    model.train()
    fw.manual_seed(2)
    losses = [float(fn(*b.src, b.trg)) for b in batches[:3]]
    return losses, [np_of(p).copy() for p in model.parameters()], fn


def test_compiled_training_step_breaks_at_the_lengths_and_matches_eager(data):
    want_losses, want_params, _ = _compiled_run(data, False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses, params, fn = _compiled_run(data, True)
    st = assert_stats(fn, captures=0, eager_calls=3)
    assert "tolist()" in st["eager_reason"] and "_s2s_nb4_packed.py" in st["eager_reason"]
    assert sum("running eagerly" in str(w.message) for w in caught) == 1
    np.testing.assert_allclose(losses, want_losses, rtol=1e-6)
    for a, b in zip(params, want_params):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_compiled_masked_attention_matches_eager(data):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab, init=False).eval()
    attention = fw.compile(model.decoder.attention, mode="always")
    with fw.no_grad():
        for b in batches[:4]:
            src, src_len = b.src
            encoder_outputs, hidden = model.encoder(src, src_len)
            mask = model.create_mask(src)
            np.testing.assert_allclose(attention(hidden, encoder_outputs, mask).numpy(),
                                       model.decoder.attention(hidden, encoder_outputs,
                                                               mask).numpy(),
                                       rtol=1e-5, atol=1e-6)
    # source lengths 8, 8, 8, 7: one capture, one recompile to a dynamic length
    st = assert_stats(attention, captures=2, num_recompiles=1, eager_reason=None)
    assert st["recompiles"][0].endswith("-> dynamic"), st


def test_packed_encoder_gradcheck_float64():
    fw.manual_seed(0)
    enc = nb4.Encoder(6, 3, 2, 3, 0.0).double().eval()
    src = fw.tensor([[1, 2, 3], [4, 5, 1], [2, 1, 1], [3, 1, 1]])  # lengths 4, 3, 2 (pad 1)
    src_len = fw.tensor([4, 3, 2])
    leaves = grad_leaves(enc.embedding.weight, enc.rnn.weight_hh_l0_reverse, enc.fc.weight)
    names = ["embedding.weight", "rnn.weight_hh_l0_reverse", "fc.weight"]

    def f(*ws):
        return fw.func.functional_call(enc, dict(zip(names, ws)), (src, src_len))

    assert fw.autograd.gradcheck(f, leaves)


def test_onnx_export_attention_and_encoder_refusal(data, tmp_path):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab, init=False).eval()
    src, src_len = batches[-1].src
    with fw.no_grad():
        encoder_outputs, hidden = model.encoder(src, src_len)
    mask = model.create_mask(src)
    assert_onnx_export_matches(model.decoder.attention, (hidden, encoder_outputs, mask),
                               tmp_path / "attn.onnx")
    # GAP: pack_padded_sequence reads the lengths on the host; export refuses, naming it
    with pytest.raises(fw.errors.GraphBreak, match="tolist"):
        fw.onnx.export(model.encoder, (src, src_len), str(tmp_path / "enc.onnx"))
