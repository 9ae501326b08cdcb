"""bentrevett/pytorch-seq2seq legacy notebook 6 (Attention is All You Need) ported to fw;
the code lives in ``_s2s_nb6_transformer.py`` as published, the data in ``_s2s_data.py``
(batch-first BucketIterator-like batches).

Checked: ``make_src_mask``/``make_trg_mask`` and the whole model (post-norm layers,
``energy.masked_fill(mask == 0, -1e10)``, ``/ sqrt(head_dim)`` as a one-element tensor,
``tok * sqrt(hid_dim) + pos``) against NumPy; causality and padding; ``initialize_weights``;
training with Adam(lr=0.0005) and ``clip_grad_norm_``; the compiled training step against
eager; ONNX export of the encoder and of the full forward (dynamic batch and lengths);
``translate_sentence`` and ``translate_sentence_vectorized``."""
# ruff: noqa: N806

from functools import partial

import numpy as np
import pytest

import framework as fw

from . import _s2s_data as D
from . import _s2s_nb6_transformer as nb6
from ._checks import (
    assert_compiled_matches_eager,
    assert_onnx_export_matches,
    grad_leaves,
    np_layer_norm,
    np_linear,
    np_of,
    np_params,
)

DEVICE = fw.device("cpu")
HID, LAYERS, HEADS, PF = 16, 2, 4, 32


@pytest.fixture(scope="module")
def data():
    train, valid, en_vocab, de_vocab = D.prepare(n_train=48, n_valid=16)
    batches = D.legacy_batches(train, en_vocab, de_vocab, 8, batch_first=True)
    valid_batches = D.legacy_batches(valid, en_vocab, de_vocab, 8, batch_first=True)
    return batches, valid_batches, valid, en_vocab, de_vocab


def _model(en_vocab, de_vocab, dropout=0.1, seed=0):
    fw.manual_seed(seed)
    enc = nb6.Encoder(len(de_vocab), HID, LAYERS, HEADS, PF, dropout, DEVICE)
    dec = nb6.Decoder(len(en_vocab), HID, LAYERS, HEADS, PF, dropout, DEVICE)
    model = nb6.Seq2Seq(enc, dec, de_vocab["<pad>"], en_vocab["<pad>"], DEVICE).to(DEVICE)
    model.apply(nb6.initialize_weights)
    return model


def test_masks_match_numpy(data):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab)
    src, trg = batches[1].src, batches[1].trg
    src_mask, trg_mask = model.make_src_mask(src), model.make_trg_mask(trg)
    assert src_mask.dtype == trg_mask.dtype == fw.bool
    np.testing.assert_array_equal(src_mask.numpy(), (src.numpy() != 1)[:, None, None, :])
    T = trg.shape[1]
    want = (trg.numpy() != 1)[:, None, None, :] & np.tril(np.ones((T, T), bool))
    assert trg_mask.shape == (8, 1, T, T)
    np.testing.assert_array_equal(trg_mask.numpy(), want)


def test_initialize_weights_is_xavier_on_matrices(data):
    *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab)
    for name, p in model.named_parameters():
        if p.dim() > 1:
            fan_out, fan_in = p.shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            assert 0.5 * bound < np.abs(np_of(p)).max() <= bound + 1e-7, name
        elif "layer_norm.weight" in name:
            np.testing.assert_array_equal(np_of(p), 1.0)
    assert nb6.count_parameters(model) == sum(p.numel() for p in model.parameters())


def _np_forward(sd, src, trg, src_mask, trg_mask):
    p = np_params(sd)
    lin, ln = partial(np_linear, p), partial(np_layer_norm, p)

    def mha(q, k, v, mask, pre):
        B, d = q.shape[0], q.shape[-1]
        hd = d // HEADS
        Q, K, V = (lin(x, f"{pre}.fc_{n}").reshape(B, -1, HEADS, hd).transpose(0, 2, 1, 3)
                   for x, n in ((q, "q"), (k, "k"), (v, "v")))
        energy = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(hd)
        energy = np.where(mask == 0, -1e10, energy)
        a = np.exp(energy - energy.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        x = (a @ V).transpose(0, 2, 1, 3).reshape(B, -1, d)
        return lin(x, f"{pre}.fc_o"), a

    def ff(x, pre):
        return lin(np.maximum(lin(x, pre + ".fc_1"), 0), pre + ".fc_2")

    def embed(tokens, pre):
        return p[pre + ".tok_embedding.weight"][tokens] * np.sqrt(HID) + \
            p[pre + ".pos_embedding.weight"][np.arange(tokens.shape[1])][None]

    x = embed(src, "encoder")
    for i in range(LAYERS):
        pre = f"encoder.layers.{i}"
        x = ln(x + mha(x, x, x, src_mask, pre + ".self_attention")[0], pre + ".self_attn_layer_norm")
        x = ln(x + ff(x, pre + ".positionwise_feedforward"), pre + ".ff_layer_norm")
    y = embed(trg, "decoder")
    for i in range(LAYERS):
        pre = f"decoder.layers.{i}"
        y = ln(y + mha(y, y, y, trg_mask, pre + ".self_attention")[0], pre + ".self_attn_layer_norm")
        attended, attention = mha(y, x, x, src_mask, pre + ".encoder_attention")
        y = ln(y + attended, pre + ".enc_attn_layer_norm")
        y = ln(y + ff(y, pre + ".positionwise_feedforward"), pre + ".ff_layer_norm")
    return lin(y, "decoder.fc_out"), attention


def test_forward_matches_numpy_reference(data):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab).eval()
    src, trg = batches[1].src, batches[1].trg[:, :-1]
    with fw.no_grad():
        output, attention = model(src, trg)
    want, want_attention = _np_forward(model.state_dict(), src.numpy(), trg.numpy(),
                                       model.make_src_mask(src).numpy(),
                                       model.make_trg_mask(trg).numpy())
    np.testing.assert_allclose(output.numpy(), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(attention.numpy(), want_attention, rtol=1e-4, atol=1e-6)
    assert np.all(attention.numpy()[src.numpy()[:, None, None, :].repeat(trg.shape[1], 2)
                                    .repeat(HEADS, 1) == 1] < 1e-30)


def test_decoder_is_causal_and_ignores_source_padding(data):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab).eval()
    src, trg = batches[0].src[:1, :5], batches[0].trg[:1, :-1]
    changed = trg.clone()
    changed[:, 3:] = 9
    padded = fw.cat([src, fw.ones(1, 3, dtype=fw.long)], 1)  # three more <pad> tokens
    with fw.no_grad():
        a, _ = model(src, trg)
        b, _ = model(src, changed)
        c, _ = model(padded, trg)
    np.testing.assert_allclose(a.numpy()[:, :3], b.numpy()[:, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.numpy()[:, 3:], b.numpy()[:, 3:])
    np.testing.assert_allclose(c.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


def test_training_lowers_loss_and_translates(data):
    batches, valid_batches, valid, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab)
    optimizer = fw.optim.Adam(model.parameters(), lr=0.0005)
    criterion = fw.nn.CrossEntropyLoss(ignore_index=en_vocab["<pad>"])
    fw.manual_seed(1)
    valid0 = nb6.evaluate(model, valid_batches, criterion)
    losses = [nb6.train(model, batches, optimizer, criterion, 1) for _ in range(10)]
    valid1 = nb6.evaluate(model, valid_batches, criterion)
    assert losses[-1] < 0.87 * losses[0], losses
    assert valid1 < 0.9 * valid0, (valid0, valid1)

    SRC, TRG = D.Field(de_vocab), D.Field(en_vocab)
    translation, attention = nb6.translate_sentence(valid[0]["de"], SRC, TRG, model, DEVICE,
                                                    max_len=6)
    assert 1 <= len(translation) <= 6 and all(t in en_vocab for t in translation)
    n_src = len(valid[0]["de"].split()) + 2
    assert attention.shape == (1, HEADS, len(translation), n_src)
    # the batched version: 0-d tensors appended to Python lists, then torch.LongTensor(...)
    src = valid_batches[0].src[:3]
    preds, attention = nb6.translate_sentence_vectorized(src, SRC, TRG, model, DEVICE,
                                                         max_len=5)
    assert len(preds) == 3 and all(t in en_vocab for s in preds for t in s)
    assert attention.shape[:2] == (3, HEADS) and attention.shape[3] == src.shape[1]
    tokens, _ = nb6.translate_sentence(
        [de_vocab.itos[int(i)] for i in src[0] if int(i) not in (1, 2, 3)], SRC, TRG, model,
        DEVICE, max_len=5)
    assert tokens[:len(preds[0])] == preds[0]


def _compiled_run(data, compiled):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab)
    optimizer = fw.optim.Adam(model.parameters(), lr=0.0005)
    criterion = fw.nn.CrossEntropyLoss(ignore_index=en_vocab["<pad>"])

    def train_step(src, trg, clip):
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
    losses = [float(fn(b.src, b.trg, 1)) for b in batches[:5]]  # source lengths 8, 7, 8, 8, 8
    return losses, [np_of(p).copy() for p in model.parameters()], fn


def test_compiled_training_step_matches_eager(data):
    fn = assert_compiled_matches_eager(lambda c: _compiled_run(data, c), captures=2,
                                       num_recompiles=1, cache_hits=2, eager_reason=None)
    assert fn.stats()["recompiles"][0].endswith("-> dynamic")


def test_attention_layer_gradcheck_float64():
    fw.manual_seed(0)
    mha = nb6.MultiHeadAttentionLayer(4, 2, 0.0, DEVICE).double().eval()
    q, kv = grad_leaves(fw.randn(2, 3, 4, dtype=fw.float64), fw.randn(2, 5, 4, dtype=fw.float64))
    mask = fw.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()[:, None, None, :]
    assert fw.autograd.gradcheck(lambda q, kv: mha(q, kv, kv, mask), (q, kv))


def test_onnx_export_encoder_and_full_forward(data, tmp_path):
    batches, *_, en_vocab, de_vocab = data
    model = _model(en_vocab, de_vocab).eval()
    src, trg = batches[1].src, batches[1].trg[:, :-1]
    src_mask = model.make_src_mask(src)
    assert_onnx_export_matches(model.encoder, (src, src_mask), tmp_path / "encoder.onnx")
    axes = {"src": {0: "batch", 1: "src_len"}, "trg": {0: "batch", 1: "trg_len"}}
    assert_onnx_export_matches(model, (src, trg), tmp_path / "transformer.onnx", sub_batch=3,
                               dynamic_axes=axes)
    # another batch and lengths through the same file
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(tmp_path / "transformer.onnx"),
                                providers=["CPUExecutionProvider"])
    src2, trg2 = batches[2].src[:5, :6], batches[2].trg[:5, :4]
    with fw.no_grad():
        want = model(src2, trg2)[0].numpy()
    got = sess.run(None, {"src": src2.numpy(), "trg": trg2.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
