# ruff: noqa: E501  (the ported script's own lines are kept as written)
"""openai/whisper (model.py whole, audio.py's log-Mel path, decoding.py) ported to ``fw``.

The ports are in _whisper_model.py, _whisper_decoding.py and _whisper_decoding_task.py. Whisper
has no training script: the training test is a teacher-forced cross-entropy step on a tiny
model (what fine-tuning code does with ``model(mel, tokens)``). Reference values come from
NumPy: the log-Mel spectrogram from the STFT formula, the whole encoder/decoder forward in
float64.
"""

import base64
import gzip
from contextlib import nullcontext
from functools import partial
from math import erf

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
from framework.errors import DTypeError

from . import _whisper_decoding as D
from . import _whisper_decoding_task as DT
from . import _whisper_model as W
from ._checks import (assert_compiled_matches_eager, assert_onnx_export_matches, grad_leaves,
                      np_layer_norm, np_linear, np_params)

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``

TOKENIZER = D.get_tokenizer(False)
DIMS = dict(n_mels=80, n_audio_ctx=8, n_audio_state=16, n_audio_head=2, n_audio_layer=1,
            n_vocab=TOKENIZER.vocab_size, n_text_ctx=16, n_text_state=16, n_text_head=2,
            n_text_layer=2)
N_AUDIO_SAMPLES = 2 * DIMS["n_audio_ctx"] * W.HOP_LENGTH  # 16 mel frames -> 8 audio positions


def make_model(seed=0, **over):
    """A tiny Whisper; positional_embedding is ``torch.empty`` in the original (a checkpoint
    fills it), so it is initialised here."""
    fw.manual_seed(seed)
    model = W.Whisper(W.ModelDimensions(**{**DIMS, **over}))
    with fw.no_grad():
        model.decoder.positional_embedding.normal_(0.0, 0.1)
    return model


def _audio(n, seed=0):
    """``n`` clips of N_AUDIO_SAMPLES at 16 kHz: two tones per clip plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_AUDIO_SAMPLES) / W.SAMPLE_RATE
    out = []
    for i in range(n):
        f1, f2 = 300 + 500 * i, 2000 + 700 * i
        out.append(0.5 * np.sin(2 * np.pi * f1 * t) + 0.2 * np.sin(2 * np.pi * f2 * t)
                   + 0.01 * rng.standard_normal(t.shape))
    return np.stack(out).astype(np.float32)


# ---- audio.py -------------------------------------------------------------------------------------

def _np_log_mel(audio, n_mels=80):
    """The log-Mel formula in NumPy float64: reflect-pad n_fft // 2, periodic Hann frames,
    |rfft|^2, drop the last frame, mel projection, log10 clamp, 8 dB dynamic range."""
    n_fft, hop = W.N_FFT, W.HOP_LENGTH
    x = np.pad(audio.astype(np.float64), [(0, 0)] * (audio.ndim - 1) + [(n_fft // 2, n_fft // 2)], mode="reflect")
    n_frames = 1 + (x.shape[-1] - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([x[..., i * hop:i * hop + n_fft] * window for i in range(n_frames)], -1)
    mag = np.abs(np.fft.rfft(frames, axis=-2)) ** 2  # (..., n_fft // 2 + 1, n_frames)
    mel = W.librosa_mel_filters(W.SAMPLE_RATE, n_fft, n_mels).astype(np.float64) @ mag[..., :-1]
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def test_log_mel_spectrogram_matches_numpy_stft_formula():
    audio = _audio(2)
    for src in (audio[0], fw.from_numpy(audio[0])):  # the ndarray and the tensor inputs
        mel = W.log_mel_spectrogram(src)
        assert mel.shape == (80, N_AUDIO_SAMPLES // W.HOP_LENGTH) and mel.dtype == fw.float32
        np.testing.assert_allclose(mel.numpy(), _np_log_mel(audio[0]), rtol=1e-4, atol=1e-4)
    # batched audio and 128 mels; padding appends zeros before the STFT
    mel = W.log_mel_spectrogram(fw.from_numpy(audio), n_mels=128, padding=W.HOP_LENGTH * 3)
    padded = np.pad(audio, [(0, 0), (0, W.HOP_LENGTH * 3)])
    np.testing.assert_allclose(mel.numpy(), _np_log_mel(padded, 128), rtol=1e-4, atol=1e-4)
    assert mel.shape == (2, 128, 16 + 3)
    # the 8-dB floor is applied: (log_spec + 4) / 4 spans at most 2
    assert float(mel.max() - mel.min()) <= 2.0 + 1e-6


def test_mel_filterbank_is_slaney_triangles():
    fb = W.mel_filters("cpu", 80).numpy()
    assert fb.shape == (80, 201) and fb.dtype == np.float32 and (fb >= 0).all()
    peaks = fb.argmax(1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > 190  # centres rise to Nyquist
    # slaney norm: each row's triangle has peak 2 / (f_hi - f_lo); in the linear (< 1 kHz) part
    # the mel spacing is 200/3 Hz per mel unit, so f_hi - f_lo = 2 * step
    step = (45.245640471924965 / 81) * 200 / 3  # hz_to_mel(8000) / (n_mels + 1), in Hz
    assert fb[10].max() <= 2 / (2 * step) + 1e-6
    with pytest.raises(AssertionError, match="Unsupported n_mels"):
        W.mel_filters("cpu", 40)


def test_pad_or_trim_tensor_and_ndarray():
    a = np.arange(24, dtype=np.float32).reshape(2, 12)
    for arr in (a, fw.from_numpy(a)):
        trimmed = W.pad_or_trim(arr, 5)
        padded = W.pad_or_trim(arr, 15)
        np.testing.assert_array_equal(np.asarray(trimmed), a[:, :5])
        np.testing.assert_array_equal(np.asarray(padded), np.pad(a, [(0, 0), (0, 3)]))
        np.testing.assert_array_equal(np.asarray(W.pad_or_trim(arr, 1, axis=0)), a[:1])
        np.testing.assert_array_equal(np.asarray(W.pad_or_trim(arr, 4, axis=0)), np.pad(a, [(0, 2), (0, 0)]))
    assert fw.is_tensor(W.pad_or_trim(fw.from_numpy(a), 15))


# ---- model.py: forward against NumPy ------------------------------------------------------------

def _np_gelu(x):
    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


def _np_conv1d(p, x, pre, stride):
    w, b = p[pre + ".weight"], p[pre + ".bias"]
    x = np.pad(x, [(0, 0), (0, 0), (1, 1)])
    n_out = (x.shape[-1] - 3) // stride + 1
    cols = np.stack([x[..., i * stride:i * stride + 3] for i in range(n_out)], 1)  # B, T, C, 3
    return np.einsum("btck,ock->bot", cols, w) + b[:, None]


def _np_mha(p, pre, x, xa, n_head, causal):
    lin = partial(np_linear, p)
    q = lin(x, pre + ".query")
    k = (xa if xa is not None else x) @ p[pre + ".key.weight"].T
    v = lin(xa if xa is not None else x, pre + ".value")
    B, T, C = q.shape
    heads = lambda t: t.reshape(t.shape[0], t.shape[1], n_head, -1).transpose(0, 2, 1, 3)  # noqa: E731
    s = heads(q) @ heads(k).transpose(0, 1, 3, 2) / np.sqrt(C // n_head)
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    o = (w / w.sum(-1, keepdims=True)) @ heads(v)
    return lin(o.transpose(0, 2, 1, 3).reshape(B, T, C), pre + ".out"), s


def _np_block(p, pre, x, xa, n_head, causal):
    ln, lin = partial(np_layer_norm, p), partial(np_linear, p)
    x = x + _np_mha(p, pre + ".attn", ln(x, pre + ".attn_ln"), None, n_head, causal)[0]
    if xa is not None:
        x = x + _np_mha(p, pre + ".cross_attn", ln(x, pre + ".cross_attn_ln"), xa, n_head, False)[0]
    h = _np_gelu(lin(ln(x, pre + ".mlp_ln"), pre + ".mlp.0"))
    return x + lin(h, pre + ".mlp.2")


def _np_whisper(model, mel, tokens):
    """Whisper.forward in NumPy float64."""
    p = np_params(model.state_dict())
    d = model.dims
    x = _np_gelu(_np_conv1d(p, mel.numpy().astype(np.float64), "encoder.conv1", 1))
    x = _np_gelu(_np_conv1d(p, x, "encoder.conv2", 2)).transpose(0, 2, 1)
    inv = np.exp(-np.log(10000) / (d.n_audio_state // 2 - 1) * np.arange(d.n_audio_state // 2))
    t = np.arange(d.n_audio_ctx)[:, None] * inv[None]
    x = x + np.concatenate([np.sin(t), np.cos(t)], 1)
    for i in range(d.n_audio_layer):
        x = _np_block(p, f"encoder.blocks.{i}", x, None, d.n_audio_head, False)
    xa = np_layer_norm(p, x, "encoder.ln_post")
    tok = tokens.numpy()
    y = p["decoder.token_embedding.weight"][tok] + p["decoder.positional_embedding"][:tok.shape[1]]
    for i in range(d.n_text_layer):
        y = _np_block(p, f"decoder.blocks.{i}", y, xa, d.n_text_head, True)
    return np_layer_norm(p, y, "decoder.ln") @ p["decoder.token_embedding.weight"].T, xa


def test_forward_matches_numpy_both_attention_paths():
    model = make_model()
    mel = fw.randn(2, 80, 16)
    tokens = fw.randint(0, DIMS["n_vocab"], (2, 6))
    want, want_xa = _np_whisper(model, mel, tokens)
    with fw.no_grad():
        logits = model(mel, tokens)
        np.testing.assert_allclose(model.embed_audio(mel).numpy(), want_xa, rtol=1e-4, atol=1e-4)
        with W.disable_sdpa():
            assert not W.MultiHeadAttention.use_sdpa
            manual = model.logits(tokens, model.embed_audio(mel))
        assert W.MultiHeadAttention.use_sdpa
    assert logits.dtype == fw.float32 and logits.shape == (2, 6, DIMS["n_vocab"])
    np.testing.assert_allclose(logits.numpy(), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(manual.numpy(), want, rtol=1e-4, atol=1e-4)


def test_qk_path_returns_masked_scores():
    """The non-SDPA branch returns the (detached, float32) pre-softmax scores with the
    causal mask buffer added: -inf above the diagonal."""
    model = make_model()
    attn = model.decoder.blocks[0].attn
    x = fw.randn(2, 5, 16, requires_grad=True)
    with W.disable_sdpa():
        out, qk = attn(x, mask=model.decoder.mask)
    assert qk.shape == (2, 2, 5, 5) and not qk.requires_grad and out.requires_grad
    p = np_params(model.state_dict())
    want_out, s = _np_mha(p, "decoder.blocks.0.attn", x.detach().numpy().astype(np.float64), None, 2, True)
    np.testing.assert_allclose(qk.numpy(), s, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.detach().numpy(), want_out, rtol=1e-4, atol=1e-5)
    assert model.decoder.mask.shape == (16, 16) and "decoder.mask" not in model.state_dict()
    sdpa_out, sdpa_qk = attn(x, mask=model.decoder.mask)
    assert sdpa_qk is None
    np.testing.assert_allclose(sdpa_out.detach().numpy(), want_out, rtol=1e-4, atol=1e-5)


def test_sinusoids_and_alignment_heads():
    s = W.sinusoids(8, 6).numpy()
    inv = np.exp(-np.log(10000) / 2 * np.arange(3))
    t = np.arange(8)[:, None] * inv
    np.testing.assert_allclose(s, np.concatenate([np.sin(t), np.cos(t)], 1), rtol=1e-6, atol=1e-6)
    model = make_model(n_text_layer=4, n_text_head=2)
    heads = model.alignment_heads
    assert heads.is_sparse and heads.dtype == fw.bool
    np.testing.assert_array_equal(heads.to_dense().numpy(), [[0, 0], [0, 0], [1, 1], [1, 1]])
    assert "alignment_heads" not in model.state_dict()
    want = np.array([[1, 0], [0, 0], [0, 1], [1, 1]], dtype=bool)
    dump = base64.b85encode(gzip.compress(want.tobytes()))
    model.set_alignment_heads(dump)
    np.testing.assert_array_equal(model.alignment_heads.to_dense().numpy(), want)
    np.testing.assert_array_equal(model.alignment_heads.indices().numpy(), np.nonzero(want))
    model.to(fw.float64)  # a sparse bool buffer survives module casts
    assert model.alignment_heads.dtype == fw.bool and model.encoder.conv1.weight.dtype == fw.float64


# ---- kv cache (install_kv_cache_hooks) ------------------------------------------------------------

def test_kv_cache_decoding_equals_full_forward():
    model = make_model()
    model.eval()
    mel = fw.randn(2, 80, 16)
    tokens = fw.randint(0, DIMS["n_vocab"], (2, 7))
    with fw.no_grad():
        audio_features = model.embed_audio(mel)
        full = model.logits(tokens, audio_features)
        cache, hooks = model.install_kv_cache_hooks()
        assert len(hooks) == 4 * DIMS["n_text_layer"]  # key + value of attn and cross_attn
        steps = [model.decoder(tokens[:, :3], audio_features, kv_cache=cache)]
        for i in range(3, 7):
            steps.append(model.decoder(tokens[:, i:i + 1], audio_features, kv_cache=cache))
        blk = model.decoder.blocks[0]
        assert cache[blk.attn.key].shape == (2, 7, 16)  # self-attention grew by one per step
        assert cache[blk.cross_attn.value].shape == (2, 8, 16)  # cross-attention computed once
        for h in hooks:
            h.remove()
        again = model.logits(tokens, audio_features)
    assert cache[blk.attn.key].shape == (2, 7, 16)  # removed hooks no longer write
    np.testing.assert_allclose(fw.cat(steps, dim=1).numpy(), full.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(again.numpy(), full.numpy())


def test_compiled_decoder_with_kv_cache_hooks_matches_eager():
    """``fw.compile(model.decoder)`` called as PyTorchInference calls it: the hooks write
    into the cache dict that is also the ``kv_cache`` argument; the compiled calls must
    leave the same cache (real tensors) and logits as eager ones."""
    model = make_model()
    model.eval()
    mel = fw.randn(2, 80, 16)
    tokens = fw.randint(0, DIMS["n_vocab"], (2, 7))
    decoder = fw.compile(model.decoder, mode="always")
    with fw.no_grad():
        audio_features = model.embed_audio(mel)
        full = model.logits(tokens, audio_features)
        cache, hooks = model.install_kv_cache_hooks()
        steps = [decoder(tokens[:, :3], audio_features, kv_cache=cache)]
        for i in range(3, 7):
            steps.append(decoder(tokens[:, i:i + 1], audio_features, kv_cache=cache))
    for h in hooks:
        h.remove()
    np.testing.assert_allclose(fw.cat(steps, dim=1).numpy(), full.numpy(), rtol=1e-4, atol=1e-5)
    with fw.no_grad():  # the same steps eagerly, into a second cache
        cache2, hooks = model.install_kv_cache_hooks()
        model.decoder(tokens[:, :3], audio_features, kv_cache=cache2)
        for i in range(3, 7):
            model.decoder(tokens[:, i:i + 1], audio_features, kv_cache=cache2)
    for h in hooks:
        h.remove()
    assert list(cache) == list(cache2)
    for module in cache2:
        np.testing.assert_allclose(cache[module].numpy(), cache2[module].numpy(), rtol=1e-5, atol=1e-6)
    blk = model.decoder.blocks[1]
    assert cache[blk.attn.value].shape == (2, 7, 16) and cache[blk.cross_attn.key].shape == (2, 8, 16)
    st = decoder.stats()
    assert st["eager_reason"] is None and st["captures"] <= 3, st  # then the length is dynamic


class FullForwardInference(D.Inference):
    """Reference inference without a cache: the whole sequence every step."""

    def __init__(self, model):
        self.model = model

    def logits(self, tokens, audio_features):
        return self.model.decoder(tokens, audio_features)

    def rearrange_kv_cache(self, source_indices):
        pass


def _decode_task(model, **options):
    task = DT.DecodingTask(model, D.DecodingOptions(**options))
    return task


@pytest.mark.parametrize("options", [dict(fp16=False), dict(fp16=False, without_timestamps=True, language="en"),
                                     dict(fp16=False, beam_size=2)])
def test_decode_with_kv_cache_equals_decode_without(options):
    model = make_model(seed=1)
    model.eval()
    n_audio = 1 if "beam_size" in options else 2  # beam search broadcasts one audio over beams
    mel = W.log_mel_spectrogram(fw.from_numpy(_audio(n_audio)))
    task = _decode_task(model, **options)
    got = task.run(mel)
    ref_task = _decode_task(model, **options)
    if "beam_size" in options:
        ref_task.decoder.inference = ref_task.inference = FullForwardInference(model)
    else:
        ref_task.inference = FullForwardInference(model)
    want = ref_task.run(mel)
    assert not task.inference.kv_cache and not task.inference.hooks  # cleanup_caching ran
    assert not model.decoder.blocks[0].attn.key._forward_hooks
    for g, w in zip(got, want, strict=True):
        assert g.tokens == w.tokens and g.language == w.language
        assert g.avg_logprob == pytest.approx(w.avg_logprob, rel=1e-4, abs=1e-6)
        assert g.no_speech_prob == pytest.approx(w.no_speech_prob, rel=1e-4, abs=1e-7)
        assert len(g.tokens) > 0 and g.text == TOKENIZER.decode(g.tokens).strip()
        assert not set(g.tokens) & set(task.logit_filters[1].suppress_tokens)


def test_model_decode_and_detect_language():
    model = make_model(seed=2)
    model.eval()
    mel = W.log_mel_spectrogram(fw.from_numpy(_audio(2)))
    single = model.decode(mel[0], D.DecodingOptions(fp16=False, sample_len=4))
    assert isinstance(single, D.DecodingResult) and len(single.tokens) <= 4
    tokens, probs = model.detect_language(mel)
    assert tokens.shape == (2,) and set(probs[0]) == {"en", "de"}
    assert sum(probs[1].values()) == pytest.approx(1.0, rel=1e-5)
    with fw.no_grad():
        logits = model.logits(fw.tensor([[TOKENIZER.sot]] * 2), model.embed_audio(mel))[:, 0]
    lang = list(TOKENIZER.all_language_tokens)
    np.testing.assert_array_equal(tokens.numpy(), np.array(lang)[logits[:, lang].numpy().argmax(-1)])
    results = model.decode(mel, language=None, fp16=False, sample_len=3)
    assert [r.language for r in results] == [max(p, key=p.get) for p in probs]
    lang_id = model.decode(mel, task="lang_id", fp16=False)
    assert lang_id[1].language_probs == pytest.approx(probs[1])


# ---- decoding.py: logit filters and GreedyDecoder --------------------------------------------------

def test_suppress_blank_and_suppress_tokens():
    tk = TOKENIZER
    logits = fw.zeros(2, tk.vocab_size)
    blank = DT.SuppressBlank(tk, sample_begin=3)
    blank.apply(logits, fw.zeros(2, 4, dtype=fw.long))  # past the beginning: nothing
    assert fw.isfinite(logits).all()
    blank.apply(logits, fw.zeros(2, 3, dtype=fw.long))
    assert np.isneginf(logits.numpy()[:, [tk.encode(" ")[0], tk.eot]]).all()
    assert np.isfinite(logits.numpy()).sum() == 2 * (tk.vocab_size - 2)
    task = _decode_task(make_model(), fp16=False)
    suppress = [f for f in task.logit_filters if isinstance(f, DT.SuppressTokens)][0]
    assert suppress.suppress_tokens == sorted({*tk.non_speech_tokens, tk.transcribe, tk.translate, tk.sot, tk.sot_prev, tk.sot_lm, tk.no_speech})
    logits = fw.randn(2, tk.vocab_size)
    suppress.apply(logits, None)
    assert np.isneginf(logits.numpy()[:, suppress.suppress_tokens]).all()


def test_apply_timestamp_rules():
    tk = TOKENIZER
    ts = tk.timestamp_begin
    rules = DT.ApplyTimestampRules(tk, sample_begin=3, max_initial_timestamp_index=2)
    sot = list(tk.sot_sequence)

    def run(tokens, logits=None):
        logits = fw.zeros(len(tokens), tk.vocab_size) if logits is None else logits
        rules.apply(logits, fw.tensor(tokens))
        return np.isneginf(logits.numpy())

    neg = run([sot, sot])  # at the beginning: only timestamps up to the max initial one
    assert neg[:, :ts].all() and not neg[:, ts:ts + 3].any() and neg[:, ts + 3:].all()
    neg = run([sot + [ts + 1, 5]])  # after text: timestamps up to the last one are banned
    assert neg[0, tk.no_timestamps] and neg[0, ts:ts + 2].all() and not neg[0, ts + 2:].any()
    logits = fw.zeros(1, tk.vocab_size)
    logits[0, tk.eot] = 5.0  # (else the timestamp mass beats eot and eot is banned too)
    neg = run([sot + [5, ts + 2]], logits)  # a lone timestamp: next is a timestamp or eot, no text
    assert neg[0, :tk.eot].all() and not neg[0, tk.eot] and neg[0, ts:ts + 2].all()
    assert not neg[0, ts + 2:].any()
    neg = run([sot + [ts + 1, ts + 2]])  # a pair: next must be text
    assert neg[0, ts:].all() and not neg[0, :tk.eot].any()
    # timestamp probability mass above every text token: text is suppressed
    logits = fw.zeros(1, tk.vocab_size)
    logits[0, ts:] = 3.0
    neg = run([sot + [5, 6]], logits)
    assert neg[0, :ts].all() and not neg[0, ts + 1:].any()


def test_greedy_decoder_update_and_finalize():
    eot = TOKENIZER.eot
    dec = D.GreedyDecoder(temperature=0.0, eot=eot)
    tokens = fw.tensor([[1, 2], [1, eot]])
    logits = fw.tensor([[0.0, 3.0, 1.0] + [0.0] * 51, [5.0, 0.0, 0.0] + [0.0] * 51])
    sum_logprobs = fw.zeros(2)
    tokens, completed = dec.update(tokens, logits, sum_logprobs)
    assert tokens.tolist() == [[1, 2, 1], [1, eot, eot]] and not bool(completed)
    lp = logits.numpy() - np.log(np.exp(logits.numpy()).sum(-1, keepdims=True))
    np.testing.assert_allclose(sum_logprobs.numpy(), [lp[0, 1], 0.0], rtol=1e-6)  # finished rows add nothing
    tokens, completed = dec.update(tokens, fw.full((2, 54), -1.0).index_fill_(1, fw.tensor([eot]), 2.0), sum_logprobs)
    assert bool(completed) and tokens[:, -1].tolist() == [eot, eot]
    out, lps = dec.finalize(tokens.reshape(1, 2, -1), sum_logprobs.reshape(1, 2))
    assert out.shape == (1, 2, 5) and (out[..., -1] == eot).all() and isinstance(lps[0][0], float)
    sampler = D.GreedyDecoder(temperature=1.0, eot=eot)  # Categorical sampling path
    fw.manual_seed(0)
    picks = [sampler.update(fw.tensor([[1]]), fw.tensor([[0.0, 8.0] + [-8.0] * 52]), fw.zeros(1))[0][0, -1].item() for _ in range(20)]
    assert picks.count(1) >= 18


# ---- training: teacher-forced cross-entropy on a tiny model ---------------------------------------

def _batches(steps, batch=4):
    """Audio whose tones pick the transcript: 4 clips, each with its own fixed token string."""
    mel = W.log_mel_spectrogram(fw.from_numpy(_audio(4)))
    texts = ["abc", "cab", "bca", "aab"]
    sot = list(TOKENIZER.sot_sequence_including_notimestamps)
    tokens = fw.tensor([sot + TOKENIZER.encode(t) + [TOKENIZER.eot] for t in texts])
    return [(mel, tokens)] * steps


def _train(compiled, steps=5):
    model = make_model(seed=3)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def train_step(mel, tokens):
        logits = model(mel, tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    step = fw.compile(train_step, mode="always") if compiled else train_step
    losses = [step(mel, tokens).item() for mel, tokens in _batches(steps)]
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, step


def test_training_lowers_loss():
    losses, _, _ = _train(False, steps=12)
    assert np.isfinite(losses).all() and losses[-1] < 0.6 * losses[0], losses


def test_compiled_training_step_matches_eager():
    assert_compiled_matches_eager(_train, captures=1, num_recompiles=0, eager_reason=None)


def test_gradcheck_float64_attention_and_conv():
    """Whisper's LayerNorm computes in float32 (``x.float()``), and so does the qk path's
    softmax (``qk.float()``), so the float64 check covers the SDPA path: causal
    self-attention with the mask buffer, cross-attention and the casting Conv1d. The qk path's
    gradients are then compared with the SDPA path's."""
    model = make_model(n_audio_state=4, n_text_state=4, n_text_head=2, n_text_ctx=4).double()
    attn, cross = model.decoder.blocks[0].attn, model.decoder.blocks[0].cross_attn
    x, xa = fw.randn(2, 3, 4, dtype=fw.float64), fw.randn(2, 5, 4, dtype=fw.float64)
    mel = fw.randn(1, 80, 6, dtype=fw.float64)
    leaves = grad_leaves(attn.query.weight, attn.key.weight, cross.value.weight, cross.out.bias,
                         model.encoder.conv2.weight, x)
    names = ["query.weight", "key.weight", "value.weight", "out.bias"]

    def f(wq, wk, wv, bo, wc, x):
        y = fw.func.functional_call(attn, dict(zip(names[:2], (wq, wk))), (x,), {"mask": model.decoder.mask})[0]
        y = fw.func.functional_call(cross, dict(zip(names[2:], (wv, bo))), (y, xa))[0]
        conv = model.encoder.conv2._conv_forward(mel[:, :4], wc, model.encoder.conv2.bias)
        return y.sum(-1) * y.mean(), conv

    assert fw.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-6)
    grads = []
    for ctx in (W.disable_sdpa, nullcontext):
        with ctx():
            out = f(*leaves)
        grads.append(fw.autograd.grad(out[0].sum(), leaves[:4] + leaves[5:]))
    for g_qk, g_sdpa in zip(*grads):
        np.testing.assert_allclose(g_qk.numpy(), g_sdpa.numpy(), rtol=1e-5, atol=1e-6)


# ---- fp16: the subclasses cast weights to the input's dtype -----------------------------------

def _fp16_linear_conv(model):
    """Linear / Conv1d weights to fp16 (what a half checkpoint loaded without a cast gives)."""
    for m in model.modules():
        if isinstance(m, (W.Linear, W.Conv1d)):
            m.weight.data = m.weight.data.half()
            if m.bias is not None:
                m.bias.data = m.bias.data.half()


def test_fp16_weights_with_float32_input_compute_in_float32():
    model = make_model()
    mel = fw.randn(2, 80, 16)
    tokens = fw.randint(0, DIMS["n_vocab"], (2, 5))
    _fp16_linear_conv(model)
    assert model.encoder.conv1.weight.dtype == fw.float16
    with fw.no_grad():
        out = model(mel, tokens)
    ref = make_model()
    with fw.no_grad():  # the same weights, rounded to fp16 and kept in float32
        for (_, pr), (_, ph) in zip(ref.named_parameters(), model.named_parameters()):
            pr.copy_(ph.float())
        want = ref(mel, tokens)
    assert out.dtype == fw.float32
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_fp16_input_with_float32_weights_and_whole_half_model():
    model = make_model()
    mel = fw.randn(2, 80, 16)
    tokens = fw.randint(0, DIMS["n_vocab"], (2, 5))
    with fw.no_grad():
        want = model(mel, tokens)
        xa = model.embed_audio(mel.half())  # DecodingOptions(fp16=True) runs the model so
        got = model.logits(tokens, xa)
    assert xa.dtype == fw.float16 and got.dtype == fw.float32  # logits are .float()'ed
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0.05, atol=0.05)
    res16 = model.decode(W.log_mel_spectrogram(fw.from_numpy(_audio(1)))[0], fp16=True)
    assert res16.audio_features.dtype == fw.float16 and len(res16.tokens) > 0
    # model.half() keeps LayerNorm's weight fp16 while LayerNorm.forward feeds it x.float():
    # PyTorch's CPU layer_norm refuses that mix ("mixed dtype (CPU)") and so does fw
    model.half()
    with pytest.raises(DTypeError, match="layer_norm"):
        model(mel, tokens)


# ---- ONNX export -----------------------------------------------------------------------------------

class _Logits(fw.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, audio_features):
        return self.model.logits(tokens, audio_features)


class _EmbedAudio(fw.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, mel):
        return self.model.embed_audio(mel)


def test_onnx_export_encoder_and_decoder(tmp_path):
    model = make_model()
    model.eval()
    mel = fw.randn(2, 80, 16)
    assert_onnx_export_matches(_EmbedAudio(model), mel, tmp_path / "enc.onnx", sub_batch=1,
                               input_names=["mel"], dynamic_axes={"mel": {0: "batch"}})
    with fw.no_grad():
        xa = model.embed_audio(mel)
    tokens = fw.randint(0, DIMS["n_vocab"], (2, 6))
    assert_onnx_export_matches(_Logits(model), (tokens, xa), tmp_path / "dec.onnx", sub_batch=1,
                               input_names=["tokens", "audio_features"],
                               dynamic_axes={"tokens": {0: "batch"}, "audio_features": {0: "batch"}})
    with W.disable_sdpa():
        assert_onnx_export_matches(_Logits(model), (tokens, xa), tmp_path / "dec_qk.onnx")
