"""bentrevett/pytorch-seq2seq legacy notebook 5 (convolutional seq2seq) ported to fw; the
code lives in ``_s2s_nb5_conv.py`` as published, the data in ``_s2s_data.py``
(batch-first BucketIterator-like batches).

Checked: the whole model (Conv1d + GLU blocks, ``* sqrt(0.5)`` residuals, positional
embeddings, the decoder's causal padding filled with the pad index, attention over the
encoder's conved/combined outputs) against a NumPy formula; causality; training; the
compiled training step against eager; float64 gradcheck through the GLU path; ONNX export
of the full forward; greedy ``translate_sentence``."""
# ruff: noqa: N806

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F

from . import _s2s_data as D
from . import _s2s_nb5_conv as nb5
from ._checks import (
    assert_compiled_matches_eager,
    assert_onnx_export_matches,
    grad_leaves,
    np_of,
    np_params,
)

DEVICE = fw.device("cpu")
EMB, HID, LAYERS, KERNEL = 8, 16, 2, 3


@pytest.fixture(scope="module")
def data():
    train, valid, en_vocab, de_vocab = D.prepare(n_train=48, n_valid=16)
    batches = D.legacy_batches(train, en_vocab, de_vocab, 8, batch_first=True)
    valid_batches = D.legacy_batches(valid, en_vocab, de_vocab, 8, batch_first=True)
    return batches, valid_batches, valid, en_vocab, de_vocab


def _model(en_vocab, de_vocab, dropout=0.25, seed=0, kernel=KERNEL):
    fw.manual_seed(seed)
    enc = nb5.Encoder(len(de_vocab), EMB, HID, LAYERS, kernel, dropout, DEVICE)
    dec = nb5.Decoder(len(en_vocab), EMB, HID, LAYERS, kernel, dropout, en_vocab["<pad>"],
                      DEVICE)
    return nb5.Seq2Seq(enc, dec).to(DEVICE)


def test_glu_and_scale():
    x = fw.randn(2, 6, 5)
    a, b = x.numpy()[:, :3], x.numpy()[:, 3:]
    np.testing.assert_allclose(F.glu(x, dim=1).numpy(), a / (1 + np.exp(-b)), rtol=1e-6)
    enc = nb5.Encoder(5, 4, 6, 1, 3, 0.0, DEVICE)
    assert enc.scale.shape == (1,) and enc.scale.dtype == fw.float32
    assert enc.scale.item() == pytest.approx(np.sqrt(0.5))
    with pytest.raises(AssertionError, match="Kernel size must be odd"):
        nb5.Encoder(5, 4, 6, 1, 4, 0.0, DEVICE)


def _np_conv1d(x, w, b):  # x (B, C, T) already padded, w (O, C, K)
    K = w.shape[2]
    T = x.shape[2] - K + 1
    cols = np.stack([x[:, :, j:j + T] for j in range(K)], -1)  # (B, C, T, K)
    return np.einsum("bctk,ock->bot", cols, w) + b[None, :, None]


def _np_glu(x):
    h = x.shape[1] // 2
    return x[:, :h] / (1 + np.exp(-x[:, h:]))


def _np_forward(sd, src, trg, kernel, pad_idx):
    p = np_params(sd)
    s = np.sqrt(0.5)

    def lin(x, pre):
        return x @ p[pre + ".weight"].T + p[pre + ".bias"]

    def embed(tokens, pre):
        return p[pre + ".tok_embedding.weight"][tokens] + \
            p[pre + ".pos_embedding.weight"][np.arange(tokens.shape[1])][None]

    emb = embed(src, "encoder")
    x = lin(emb, "encoder.emb2hid").transpose(0, 2, 1)
    pad = (kernel - 1) // 2
    for i in range(LAYERS):
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
        x = (_np_glu(_np_conv1d(xp, p[f"encoder.convs.{i}.weight"],
                                p[f"encoder.convs.{i}.bias"])) + x) * s
    enc_conved = lin(x.transpose(0, 2, 1), "encoder.hid2emb")
    enc_combined = (enc_conved + emb) * s

    emb = embed(trg, "decoder")
    x = lin(emb, "decoder.emb2hid").transpose(0, 2, 1)
    for i in range(LAYERS):
        xp = np.concatenate([np.full(x.shape[:2] + (kernel - 1,), float(pad_idx)), x], 2)
        conved = _np_glu(_np_conv1d(xp, p[f"decoder.convs.{i}.weight"],
                                    p[f"decoder.convs.{i}.bias"]))
        combined = (lin(conved.transpose(0, 2, 1), "decoder.attn_hid2emb") + emb) * s
        energy = combined @ enc_conved.transpose(0, 2, 1)
        attention = np.exp(energy - energy.max(2, keepdims=True))
        attention /= attention.sum(2, keepdims=True)
        attended = lin(attention @ enc_combined, "decoder.attn_emb2hid")
        conved = (conved + attended.transpose(0, 2, 1)) * s
        x = (conved + x) * s
    out = lin(lin(x.transpose(0, 2, 1), "decoder.hid2emb"), "decoder.fc_out")
    return out, attention


def test_forward_matches_numpy_reference(data):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab).eval()
    src, trg = batches[0].src, batches[0].trg[:, :-1]
    with fw.no_grad():
        output, attention = model(src, trg)
    want, want_attention = _np_forward(model.state_dict(), src.numpy(), trg.numpy(), KERNEL,
                                       en_vocab["<pad>"])
    assert output.shape == (8, trg.shape[1], len(en_vocab))
    np.testing.assert_allclose(output.numpy(), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(attention.numpy(), want_attention, rtol=1e-4, atol=1e-6)


def test_decoder_is_causal(data):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab, kernel=5).eval()
    src, trg = batches[0].src[:2], batches[0].trg[:2, :-1]
    changed = trg.clone()
    changed[:, 4:] = 7
    with fw.no_grad():
        a, _ = model(src, trg)
        b, _ = model(src, changed)
    np.testing.assert_allclose(a.numpy()[:, :4], b.numpy()[:, :4], rtol=1e-6, atol=1e-7)
    assert not np.allclose(a.numpy()[:, 4:], b.numpy()[:, 4:])


def test_training_lowers_loss_and_translate_sentence(data):
    batches, valid_batches, valid, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab)
    assert nb5.count_parameters(model) == sum(p.numel() for p in model.parameters())
    optimizer = fw.optim.Adam(model.parameters())
    criterion = fw.nn.CrossEntropyLoss(ignore_index=en_vocab["<pad>"])
    fw.manual_seed(1)
    valid0 = nb5.evaluate(model, valid_batches, criterion)
    losses = [nb5.train(model, batches, optimizer, criterion, 0.1) for _ in range(15)]
    valid1 = nb5.evaluate(model, valid_batches, criterion)
    assert losses[-1] < 0.93 * losses[0], losses
    assert valid1 < 0.95 * valid0, (valid0, valid1)

    SRC, TRG = D.Field(de_vocab), D.Field(en_vocab)
    translation, attention = nb5.translate_sentence(valid[0]["de"], SRC, TRG, model, DEVICE,
                                                    max_len=6)
    assert 1 <= len(translation) <= 6 and all(t in en_vocab for t in translation)
    n_src = len(valid[0]["de"].split()) + 2
    assert attention.shape == (1, len(translation), n_src)  # the last step's attention
    np.testing.assert_allclose(attention.numpy().sum(-1), 1.0, rtol=1e-5)


def _compiled_run(data, compiled):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab)
    optimizer = fw.optim.Adam(model.parameters())
    criterion = fw.nn.CrossEntropyLoss(ignore_index=en_vocab["<pad>"])
    clip = 0.1

    def train_step(src, trg):
        # train()'s body for one batch
        optimizer.zero_grad()
        output, _ = model(src, trg[:, :-1])
        output_dim = output.shape[-1]
        output = output.contiguous().view(-1, output_dim)
        trg = trg[:, 1:].contiguous().view(-1)
        loss = criterion(output, trg)
        loss.backward()
        fw.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return loss

    fn = fw.compile(train_step, mode="always") if compiled else train_step
    model.train()
    fw.manual_seed(2)  # the same dropout masks
    losses = [float(fn(b.src, b.trg)) for b in batches[:5]]  # source lengths 8, 7, 8, 8, 8
    return losses, [np_of(p).copy() for p in model.parameters()], fn


def test_compiled_training_step_matches_eager(data):
    """Adam's warm-up call, a capture, one recompile when the length changes (to a dynamic
    length), then cache hits."""
    fn = assert_compiled_matches_eager(lambda c: _compiled_run(data, c), captures=2,
                                       num_recompiles=1, cache_hits=2, eager_reason=None)
    assert fn.stats()["recompiles"][0].endswith("-> dynamic")


def test_gradcheck_float64_through_the_glu_blocks():
    fw.manual_seed(0)
    enc = nb5.Encoder(6, 3, 2, 2, 3, 0.0, DEVICE)
    dec = nb5.Decoder(7, 3, 2, 2, 3, 0.0, 1, DEVICE)
    model = nb5.Seq2Seq(enc, dec).double().eval()
    src, trg = fw.tensor([[2, 3, 4, 5], [2, 5, 1, 1]]), fw.tensor([[2, 4, 6], [2, 6, 1]])
    names = ["encoder.convs.1.weight", "decoder.convs.0.weight", "decoder.attn_emb2hid.weight"]
    params = dict(model.named_parameters())
    leaves = grad_leaves(*(params[n] for n in names))

    def f(*ws):
        return fw.func.functional_call(model, dict(zip(names, ws)), (src, trg))

    assert fw.autograd.gradcheck(f, leaves)


def test_onnx_export_full_forward(data, tmp_path):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab).eval()
    src, trg = batches[1].src, batches[1].trg[:, :-1]
    assert_onnx_export_matches(model, (src, trg), tmp_path / "convs2s.onnx", sub_batch=3,
                               dynamic_axes={"src": {0: "batch"}, "trg": {0: "batch"}})
    assert_onnx_export_matches(model.encoder, src, tmp_path / "encoder.onnx")
