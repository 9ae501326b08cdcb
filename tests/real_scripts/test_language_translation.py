# ruff: noqa: E501, UP008, UP018  (the ported script's own lines are kept as written)
"""pytorch/examples language_translation (src/model.py, src/data.py masks, main.py) ported to fw.

The model, the mask helpers, greedy decoding and the train/validate loops are the
original's with `torch` -> `fw`; the Multi30k data and spaCy tokenizers are replaced by a
synthetic parallel corpus (target = reversed source) with variable lengths and padding.
"""

import math
from functools import partial

import numpy as np
import onnxruntime as ort
import pytest

import framework as fw
from framework import nn
from framework.nn.utils.rnn import pad_sequence
from framework.utils.data import DataLoader

from ._checks import np_layer_norm, np_linear, np_params

DEVICE = fw.device("cpu")
SPECIAL_SYMBOLS = {"<unk>": 0, "<pad>": 1, "<bos>": 2, "<eos>": 3}
VOCAB = 12  # 4 specials + 8 "words"


# ---- src/model.py --------------------------------------------------------------------------

class PositionalEncoding(nn.Module):
    def __init__(
        self,
        emb_size,
        dropout,
        maxlen=5000
    ):
        super(PositionalEncoding, self).__init__()
        den = fw.exp(- fw.arange(0, emb_size, 2)* math.log(10000) / emb_size)
        pos = fw.arange(0, maxlen).reshape(maxlen, 1)
        pos_embedding = fw.zeros((maxlen, emb_size))
        pos_embedding[:, 0::2] = fw.sin(pos * den)
        pos_embedding[:, 1::2] = fw.cos(pos * den)
        pos_embedding = pos_embedding.unsqueeze(-2)

        self.dropout = nn.Dropout(dropout)
        self.register_buffer('pos_embedding', pos_embedding)

    def forward(self, token_embedding):
        return self.dropout(token_embedding + self.pos_embedding[:token_embedding.size(0), :])


class Translator(nn.Module):
    def __init__(
            self,
            num_encoder_layers,
            num_decoder_layers,
            embed_size,
            num_heads,
            src_vocab_size,
            tgt_vocab_size,
            dim_feedforward,
            dropout
        ):
        super(Translator, self).__init__()

        # Output of embedding must be equal (embed_size)
        self.src_embedding = nn.Embedding(src_vocab_size, embed_size)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embed_size)

        self.pos_enc = PositionalEncoding(embed_size, dropout)

        self.transformer = nn.Transformer(
            d_model=embed_size,
            nhead=num_heads,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            dim_feedforward=dim_feedforward,
            dropout=dropout
        )

        self.ff = nn.Linear(embed_size, tgt_vocab_size)

        self._init_weights()

    def _init_weights(self):
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src, trg, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_key_padding_mask):

        src_emb = self.pos_enc(self.src_embedding(src))
        tgt_emb = self.pos_enc(self.tgt_embedding(trg))

        outs = self.transformer(
            src_emb,
            tgt_emb,
            src_mask,
            tgt_mask,
            None,
            src_padding_mask,
            tgt_padding_mask,
            memory_key_padding_mask
        )

        return self.ff(outs)

    def encode(self, src, src_mask):

        embed = self.src_embedding(src)

        pos_enc = self.pos_enc(embed)

        return self.transformer.encoder(pos_enc, src_mask)

    def decode(self, tgt, memory, tgt_mask):

        embed = self.tgt_embedding(tgt)

        pos_enc = self.pos_enc(embed)

        return self.transformer.decoder(pos_enc, memory, tgt_mask)


# ---- src/data.py (masks and collation; the dataset itself is synthetic) ---------------------

def generate_square_subsequent_mask(size, device):
    mask = (fw.triu(fw.ones((size, size), device=device)) == 1).transpose(0, 1)
    mask = mask.float().masked_fill(mask == 0, float('-inf')).masked_fill(mask == 1, float(0.0))
    return mask


def create_mask(src, tgt, pad_idx, device):

    # Get sequence length
    src_seq_len = src.shape[0]
    tgt_seq_len = tgt.shape[0]

    # Generate the mask
    tgt_mask = generate_square_subsequent_mask(tgt_seq_len, device)
    src_mask = fw.zeros((src_seq_len, src_seq_len),device=device).type(fw.bool)

    # Overlay the mask over the original input
    src_padding_mask = (src == pad_idx).transpose(0, 1)
    tgt_padding_mask = (tgt == pad_idx).transpose(0, 1)
    return src_mask, tgt_mask, src_padding_mask, tgt_padding_mask


def _tensor_transform(token_ids):
    return fw.cat(
        (fw.tensor([SPECIAL_SYMBOLS["<bos>"]]),
         fw.tensor(token_ids),
         fw.tensor([SPECIAL_SYMBOLS["<eos>"]]))
    )


def _collate_fn(batch):
    src_batch, tgt_batch = [], []
    for src_sample, tgt_sample in batch:
        src_batch.append(_tensor_transform(src_sample))
        tgt_batch.append(_tensor_transform(tgt_sample))

    src_batch = pad_sequence(src_batch, padding_value=SPECIAL_SYMBOLS["<pad>"])
    tgt_batch = pad_sequence(tgt_batch, padding_value=SPECIAL_SYMBOLS["<pad>"])
    return src_batch, tgt_batch


def synthetic_corpus(n, seed):
    """(source words, target words) pairs: target = reversed source, lengths 2..5."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        words = rng.integers(4, VOCAB, size=int(rng.integers(2, 6))).tolist()
        pairs.append((words, words[::-1]))
    return pairs


# ---- main.py ------------------------------------------------------------------------------

def greedy_decode(model, src, src_mask, max_len, start_symbol, end_symbol):

    # Move to device
    src = src.to(DEVICE)
    src_mask = src_mask.to(DEVICE)

    # Encode input
    memory = model.encode(src, src_mask)

    # Output will be stored here
    ys = fw.ones(1, 1).fill_(start_symbol).type(fw.long).to(DEVICE)

    # For each element in our translation (which could range up to the maximum translation length)
    for _ in range(max_len-1):

        # Decode the encoded representation of the input
        memory = memory.to(DEVICE)
        tgt_mask = (generate_square_subsequent_mask(ys.size(0), DEVICE).type(fw.bool)).to(DEVICE)
        out = model.decode(ys, memory, tgt_mask)

        # Reshape
        out = out.transpose(0, 1)

        # Covert to probabilities and take the max of these probabilities
        prob = model.ff(out[:, -1])
        _, next_word = fw.max(prob, dim=1)
        next_word = next_word.item()

        # Now we have an output which is the vector representation of the translation
        ys = fw.cat([ys, fw.ones(1, 1).type_as(src.data).fill_(next_word)], dim=0)
        if next_word == end_symbol:
            break

    return ys


def train(model, train_dl, loss_fn, optim, special_symbols):

    # Object for accumulating losses
    losses = 0

    # Put model into training mode
    model.train()
    for src, tgt in train_dl:

        src = src.to(DEVICE)
        tgt = tgt.to(DEVICE)

        # We need to reshape the input slightly to fit into the transformer
        tgt_input = tgt[:-1, :]

        # Create masks
        src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = create_mask(src, tgt_input, special_symbols["<pad>"], DEVICE)

        # Pass into model, get probability over the vocab out
        logits = model(src, tgt_input, src_mask, tgt_mask,src_padding_mask, tgt_padding_mask, src_padding_mask)

        # Reset gradients before we try to compute the gradients over the loss
        optim.zero_grad()

        # Get original shape back
        tgt_out = tgt[1:, :]

        # Compute loss and gradient over that loss
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
        loss.backward()

        # Step weights
        optim.step()

        # Accumulate a running loss for reporting
        losses += loss.item()

    # Return the average loss
    return losses / len(list(train_dl))


def validate(model, valid_dl, loss_fn, special_symbols):

    # Object for accumulating losses
    losses = 0

    # Turn off gradients a moment
    model.eval()

    for src, tgt in valid_dl:

        src = src.to(DEVICE)
        tgt = tgt.to(DEVICE)

        # We need to reshape the input slightly to fit into the transformer
        tgt_input = tgt[:-1, :]

        # Create masks
        src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = create_mask(src, tgt_input, special_symbols["<pad>"], DEVICE)

        # Pass into model, get probability over the vocab out
        logits = model(src, tgt_input, src_mask, tgt_mask,src_padding_mask, tgt_padding_mask, src_padding_mask)

        # Get original shape back, compute loss, accumulate that loss
        tgt_out = tgt[1:, :]
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
        losses += loss.item()

    # Return the average loss
    return losses / len(list(valid_dl))


# ---- test harness ----------------------------------------------------------------------------

def _model(dropout=0.1, dtype=None):
    model = Translator(num_encoder_layers=1, num_decoder_layers=1, embed_size=32, num_heads=2,
                       src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, dim_feedforward=64,
                       dropout=dropout).to(DEVICE)
    return model if dtype is None else model.to(dtype)


def _setup(seed=0, dropout=0.1):
    fw.manual_seed(seed)
    model = _model(dropout)
    loss_fn = fw.nn.CrossEntropyLoss(ignore_index=SPECIAL_SYMBOLS["<pad>"])
    optim = fw.optim.Adam(model.parameters(), lr=5e-3, betas=(0.9, 0.98), eps=1e-9)
    return model, loss_fn, optim


def _loaders():
    train_dl = DataLoader(synthetic_corpus(48, 0), batch_size=8, collate_fn=_collate_fn)
    valid_dl = DataLoader(synthetic_corpus(16, 1), batch_size=8, collate_fn=_collate_fn)
    return train_dl, valid_dl


def test_collate_pads_variable_lengths_time_major():
    src, tgt = _collate_fn([([4, 5], [5, 4]), ([6, 7, 8], [8, 7, 6])])
    assert src.shape == (5, 2) and src.dtype == fw.int64
    np.testing.assert_array_equal(src.numpy()[:, 0], [2, 4, 5, 3, 1])
    np.testing.assert_array_equal(tgt.numpy()[:, 1], [2, 8, 7, 6, 3])
    src_mask, tgt_mask, src_pad, tgt_pad = create_mask(src, tgt[:-1, :], 1, DEVICE)
    assert src_mask.dtype == fw.bool and not src_mask.numpy().any()
    np.testing.assert_array_equal(src_pad.numpy(), [[0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    m = tgt_mask.numpy()
    assert m.dtype == np.float32 and np.all(np.isneginf(m[np.triu_indices(4, 1)]))
    assert np.all(m[np.tril_indices(4)] == 0)
    np.testing.assert_array_equal(m, nn.Transformer.generate_square_subsequent_mask(4).numpy())


def _np_reference(sd, src, tgt, src_mask, tgt_mask, src_pad, tgt_pad, mem_pad, nhead):
    """Translator.forward in NumPy (float64) from the state dict, PyTorch's post-norm layout."""
    p = np_params(sd)
    ln, lin = partial(np_layer_norm, p), partial(np_linear, p)

    def additive(mask):
        if mask is None:
            return 0.0
        m = mask.numpy()
        return np.where(m, -np.inf, 0.0) if m.dtype == bool else m.astype(np.float64)

    def mha(q_in, kv_in, pre, attn_mask, kpm):  # (L, N, E), (S, N, E)
        w, b = p[pre + ".in_proj_weight"], p[pre + ".in_proj_bias"]
        e = q_in.shape[-1]
        q = q_in @ w[:e].T + b[:e]
        k = kv_in @ w[e:2 * e].T + b[e:2 * e]
        v = kv_in @ w[2 * e:].T + b[2 * e:]
        L, N, _ = q.shape
        S = k.shape[0]
        d = e // nhead
        q = q.reshape(L, N, nhead, d).transpose(1, 2, 0, 3)
        k = k.reshape(S, N, nhead, d).transpose(1, 2, 0, 3)
        v = v.reshape(S, N, nhead, d).transpose(1, 2, 0, 3)
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + additive(attn_mask)
        if kpm is not None:
            s = s + np.where(kpm.numpy(), -np.inf, 0.0)[:, None, None, :]
        s = np.exp(s - s.max(-1, keepdims=True))
        o = (s / s.sum(-1, keepdims=True)) @ v  # (N, H, L, d)
        o = o.transpose(2, 0, 1, 3).reshape(L, N, e)
        return lin(o, pre + ".out_proj")

    def ff(x, pre):
        return lin(np.maximum(lin(x, pre + ".linear1"), 0.0), pre + ".linear2")

    pe = p["pos_enc.pos_embedding"]
    x = p["src_embedding.weight"][src.numpy()] + pe[:src.shape[0]]
    y = p["tgt_embedding.weight"][tgt.numpy()] + pe[:tgt.shape[0]]
    pre = "transformer.encoder.layers.0"
    x = ln(x + mha(x, x, pre + ".self_attn", src_mask, src_pad), pre + ".norm1")
    x = ln(x + ff(x, pre), pre + ".norm2")
    mem = ln(x, "transformer.encoder.norm")
    pre = "transformer.decoder.layers.0"
    y = ln(y + mha(y, y, pre + ".self_attn", tgt_mask, tgt_pad), pre + ".norm1")
    y = ln(y + mha(y, mem, pre + ".multihead_attn", None, mem_pad), pre + ".norm2")
    y = ln(y + ff(y, pre), pre + ".norm3")
    y = ln(y, "transformer.decoder.norm")
    return lin(y, "ff")


def test_forward_matches_numpy_reference_with_masks():
    """The whole Translator (nn.Transformer, post-norm, float causal mask, bool key padding
    masks on the encoder, decoder and memory) against a NumPy formula from the state dict."""
    fw.manual_seed(1)
    model = _model().eval()
    src, tgt = _collate_fn([([4, 5, 6, 7], [7, 6, 5, 4]), ([8, 9], [9, 8]), ([10], [10])])
    tgt_input = tgt[:-1, :]
    masks = create_mask(src, tgt_input, 1, DEVICE)
    src_mask, tgt_mask, src_pad, tgt_pad = masks
    with fw.no_grad():
        out = model(src, tgt_input, src_mask, tgt_mask, src_pad, tgt_pad, src_pad).numpy()
    ref = _np_reference(model.state_dict(), src, tgt_input, src_mask, tgt_mask, src_pad,
                        tgt_pad, src_pad, nhead=2)
    assert out.shape == (tgt_input.shape[0], 3, VOCAB)
    # the query rows at target pads are compared too
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    # CrossEntropyLoss(ignore_index=<pad>): the mean over the non-pad targets only
    loss_fn = fw.nn.CrossEntropyLoss(ignore_index=SPECIAL_SYMBOLS["<pad>"])
    tgt_out = tgt[1:, :].reshape(-1).numpy()
    flat = ref.reshape(-1, VOCAB)
    logp = flat - flat.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    keep = tgt_out != SPECIAL_SYMBOLS["<pad>"]
    want = -logp[np.arange(len(tgt_out)), tgt_out][keep].mean()
    got = loss_fn(fw.tensor(out).reshape(-1, VOCAB), tgt[1:, :].reshape(-1)).item()
    assert keep.sum() < len(keep) and got == pytest.approx(want, rel=1e-5)


def test_padding_positions_do_not_change_real_outputs():
    """Key padding masks: extending the source with pads (masked) leaves outputs unchanged."""
    fw.manual_seed(0)
    model = _model(dropout=0.0).eval()
    src, tgt = _collate_fn([([4, 5, 6], [6, 5, 4])])
    src_long = fw.cat([src, fw.full((3, 1), 1, dtype=fw.long)])
    tgt_input = tgt[:-1, :]
    outs = []
    with fw.no_grad():
        for s in (src, src_long):
            src_mask, tgt_mask, src_pad, tgt_pad = create_mask(s, tgt_input, 1, DEVICE)
            outs.append(model(s, tgt_input, src_mask, tgt_mask, src_pad, tgt_pad, src_pad).numpy())
    assert np.isfinite(outs[1]).all()
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_training_lowers_loss_and_greedy_decode_translates():
    model, loss_fn, optim = _setup()
    train_dl, valid_dl = _loaders()
    val0 = validate(model, valid_dl, loss_fn, SPECIAL_SYMBOLS)
    train_losses = [train(model, train_dl, loss_fn, optim, SPECIAL_SYMBOLS) for _ in range(10)]
    val1 = validate(model, valid_dl, loss_fn, SPECIAL_SYMBOLS)
    assert train_losses[-1] < 0.7 * train_losses[0], train_losses
    assert val1 < 0.8 * val0, (val0, val1)

    model.eval()
    src = _tensor_transform([4, 5, 6]).view(-1, 1)
    num_tokens = src.shape[0]
    src_mask = (fw.zeros(num_tokens, num_tokens)).type(fw.bool)
    with fw.no_grad():
        tgt_tokens = greedy_decode(model, src, src_mask, max_len=num_tokens + 5,
                                   start_symbol=SPECIAL_SYMBOLS["<bos>"],
                                   end_symbol=SPECIAL_SYMBOLS["<eos>"]).flatten()
    out = list(tgt_tokens.cpu().numpy())
    assert tgt_tokens.dtype == fw.int64 and out[0] == 2
    assert 2 <= len(out) <= num_tokens + 5
    assert all(0 <= t < VOCAB for t in out)


def test_greedy_decode_matches_full_forward_argmax():
    """Each decoded token is the argmax of the full model on the prefix (encode/decode/ff)."""
    fw.manual_seed(3)
    model = _model(dropout=0.0).eval()
    src = _tensor_transform([7, 4, 9, 5]).view(-1, 1)
    n = src.shape[0]
    with fw.no_grad():
        ys = greedy_decode(model, src, fw.zeros(n, n).type(fw.bool), max_len=6,
                           start_symbol=2, end_symbol=-1)
        assert ys.shape == (6, 1)
        for i in range(1, 6):
            prefix = ys[:i]
            src_mask, tgt_mask, _, _ = create_mask(src, prefix, 1, DEVICE)
            logits = model(src, prefix, src_mask, tgt_mask, None, None, None)
            assert int(logits[-1, 0].argmax()) == int(ys[i, 0])


def _compiled_run(compiled):
    model, loss_fn, optim = _setup(seed=0, dropout=0.1)
    # batches of 2: the padded lengths vary from batch to batch (7, 7, 5, 7, 5, 6)
    batches = list(DataLoader(synthetic_corpus(12, 0), batch_size=2, collate_fn=_collate_fn))
    pad = SPECIAL_SYMBOLS["<pad>"]

    def step(src, tgt):
        tgt_input = tgt[:-1, :]
        src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = create_mask(src, tgt_input, pad, DEVICE)
        logits = model(src, tgt_input, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, src_padding_mask)
        optim.zero_grad()
        tgt_out = tgt[1:, :]
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
        loss.backward()
        optim.step()
        return loss

    model.train()
    fn = fw.compile(step, mode="always") if compiled else step
    fw.manual_seed(5)  # the same dropout masks in both runs
    losses = [float(fn(src, tgt)) for src, tgt in batches]
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, fn, [tuple(s.shape) for s, _ in batches]


def test_compiled_training_step_matches_eager():
    """Forward, backward and Adam under fw.compile == eager, with dropout, over batches of
    different padded lengths: one static capture, then one dynamic capture for all lengths
    (the positional encoding's ``pe[:x.size(0)]`` keeps the length symbolic)."""
    l1, s1, _, shapes = _compiled_run(False)
    l2, s2, fn, _ = _compiled_run(True)
    assert len(set(shapes)) == 3, shapes
    st = fn.stats()
    # the first call runs eagerly (it creates Adam's state); then static, then dynamic
    assert st["eager_reason"] is None and st["captures"] == 2, st
    assert st["num_recompiles"] == 1 and st["recompiles"][0].endswith("-> dynamic"), st
    assert st["cache_hits"] == len(shapes) - 3, st
    np.testing.assert_allclose(l1, l2, rtol=1e-4, atol=1e-5)
    for k in s1:
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_gradcheck_float64():
    """Finite differences through attention with causal + key padding masks (float64)."""
    fw.manual_seed(0)
    model = Translator(1, 1, 4, 2, 6, 6, 6, 0.0).to(fw.float64)
    src, tgt = _collate_fn([([4, 5], [5, 4]), ([5], [5])])
    tgt_input = tgt[:-1, :]
    src_mask, tgt_mask, src_pad, tgt_pad = create_mask(src, tgt_input, 1, DEVICE)
    names = ["src_embedding.weight", "transformer.encoder.layers.0.self_attn.in_proj_weight",
             "transformer.decoder.layers.0.self_attn.in_proj_bias",
             "transformer.decoder.layers.0.multihead_attn.in_proj_weight",
             "transformer.decoder.norm.weight", "ff.weight"]
    params = dict(model.named_parameters())

    def f(*ws):
        return fw.func.functional_call(
            model, dict(zip(names, ws)),
            (src, tgt_input, src_mask, tgt_mask, src_pad, tgt_pad, src_pad))

    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert fw.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def _model_inputs(pairs):
    src, tgt = _collate_fn(pairs)
    tgt_input = tgt[:-1, :]
    src_mask, tgt_mask, src_pad, tgt_pad = create_mask(src, tgt_input, 1, DEVICE)
    return (src, tgt_input, src_mask, tgt_mask, src_pad, tgt_pad, src_pad)


def test_onnx_export_eval_matches_onnxruntime(tmp_path):
    """Eval-mode export with dynamic lengths and batch, run on a batch of another shape."""
    fw.manual_seed(0)
    model = _model().eval()
    names = ["src", "trg", "src_mask", "tgt_mask", "src_padding_mask", "tgt_padding_mask",
             "memory_key_padding_mask"]
    axes = [{0: "S", 1: "N"}, {0: "T", 1: "N"}, {0: "S", 1: "S"}, {0: "T", 1: "T"},
            {0: "N", 1: "S"}, {0: "N", 1: "T"}, {0: "N", 1: "S"}]
    path = str(tmp_path / "translator.onnx")
    fw.onnx.export(model, _model_inputs([([4, 5, 6], [6, 5, 4]), ([7, 8], [8, 7])]), path,
                   input_names=names, dynamic_axes=dict(zip(names, axes)))
    sess = ort.InferenceSession(path)
    args = _model_inputs([([4, 5, 6, 9, 10], [10, 9, 6, 5, 4]), ([7, 8], [8, 7]), ([7], [7])])
    (y,) = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})
    with fw.no_grad():
        ref = model(*args).numpy()
    assert y.shape == (6, 3, VOCAB)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def test_state_dict_save_load_roundtrip(tmp_path):
    model, loss_fn, optim = _setup()
    train_dl, valid_dl = _loaders()
    train(model, train_dl, loss_fn, optim, SPECIAL_SYMBOLS)
    fw.save(model.state_dict(), str(tmp_path / "best.pt"))
    fw.manual_seed(9)
    other = _model()
    other.load_state_dict(fw.load(str(tmp_path / "best.pt")))
    assert validate(other, valid_dl, loss_fn, SPECIAL_SYMBOLS) == pytest.approx(
        validate(model, valid_dl, loss_fn, SPECIAL_SYMBOLS), rel=1e-6)
