# ruff: noqa: E501  (the ported code's own lines are kept as written)
"""Lightning-AI/litgpt's model code ported to ``fw`` (``_litgpt_config.py``,
``_litgpt_model.py`` + ``_litgpt_layers.py`` + ``_litgpt_rope.py``), checked on tiny
versions of its named configs: a Pythia (GPT-NeoX, parallel residual), a Llama 3.2 (GQA,
Llama 3 RoPE scaling), Gemma 1 (MQA, GemmaMLP), Gemma 2 (sliding windows, soft-capping,
post norms), Gemma 3 (qk norms, local/global RoPE), a Mixtral (LLaMAMoE), a Phi-2 (shared
attention norm, partial RoPE), a Mistral (sliding window KV ring buffer) and
LLaMA-2-7B-32K (``rope_condense_ratio``), plus a DeepSeek-like config (latent attention,
grouped top-k router, shared experts).

This file: configs, RoPE tables, forward passes against NumPy, mixture-of-experts routing,
gradients, the KV cache and the model's API. Training / compile / ONNX are in
test_litgpt_training.py, generation in test_litgpt_generate.py, LoRA in test_litgpt_lora.py.
"""

import numpy as np
import pytest

import framework as fw

from ._checks import grad_leaves
from ._litgpt_config import Config, check_indicator_and_length, find_multiple, name_to_config
from ._litgpt_model import (
    GPT,
    GroupedTopkRouter,
    KVCache,
    LLaMAMoE,
    batched_index_select,
    build_mask_cache,
    build_rope_cache,
    qkv_reassemble,
)
from ._litgpt_numpy import np_gpt, np_inv_freq, np_mlp, np_moe_route, np_rope_cache
from ._litgpt_utils import DEEPSEEK_LIKE, tiny_config, tiny_gpt, tokens

torch = fw  # the original's ``torch.xxx`` calls read as ``fw.xxx``


# ---- config.py ---------------------------------------------------------------------------------

def test_config_from_name_and_derived_fields():
    assert find_multiple(50254, 512) == 50688 and find_multiple(512, 512) == 512
    p = Config.from_name("pythia-14m")
    assert (p.padded_vocab_size, p.head_size, p.n_query_groups, p.intermediate_size, p.rope_n_elem) == (50304, 32, 4, 512, 8)
    assert p.mlp_class.__name__ == "GptNeoxMLP" and p.norm_class is torch.nn.LayerNorm
    assert "pythia-14m-deduped" not in name_to_config and "Llama-3.2-1B-Instruct" in name_to_config
    assert Config.from_name("Meta-Llama-3.1-8B-Instruct").name == "Llama-3.1-8B-Instruct"  # by hf name
    assert Config.from_name("meta-llama/Llama-3.2-1B").n_query_groups == 8  # by org/name
    g = Config.from_name("Gemma-2-2b", n_layer=3)
    assert g.sliding_window_indices == [1, 0, 1] and g.norm_class.keywords == {"add_unit_offset": True}
    assert Config.from_name("Mistral-7B-v0.1", n_layer=2).sliding_window_indices == [1, 1]
    assert tiny_config("phi2").rope_n_elem == 4 and tiny_config("llama2_32k").rope_condense_ratio == 8
    with pytest.raises(ValueError, match="not a supported config name"):
        Config.from_name("gpt-5")
    with pytest.raises(ValueError, match="needs to set the `intermediate_size`"):
        Config(mlp_class_name="LLaMAMLP")
    with pytest.raises(ValueError, match="must only contain 0 and 1"):
        check_indicator_and_length([0, 2], name="x", required_length=2)


# ---- RoPE --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(),
    dict(base=500000, condense_ratio=8),
    dict(base=500000, extra_config=dict(factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_seq_len=8192)),
    dict(extra_config=dict(factor=4.0)),
    dict(extra_config=dict(factor=4.0, beta_fast=32, beta_slow=1, original_max_seq_len=64)),
])
def test_build_rope_cache_matches_numpy(kw):
    cos, sin = build_rope_cache(seq_len=20, n_elem=16, **kw)
    extra = kw.get("extra_config")
    rc, rs = np_rope_cache(20, 16, kw.get("base", 10000), kw.get("condense_ratio", 1), extra)
    assert cos.shape == (20, 16) and cos.dtype == fw.float32
    np.testing.assert_allclose(cos.numpy(), rc, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(sin.numpy(), rs, rtol=1e-5, atol=2e-6)


def test_llama3_rope_scaling_is_piecewise():
    # the three regimes of Llama 3's scaling all occur at n_elem 16 and base 500000
    theta = np_inv_freq(16, 500000)
    scaled = np_inv_freq(16, 500000, dict(factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_seq_len=8192))
    assert (scaled == theta).any() and np.isclose(scaled, theta / 32).any()
    assert ((scaled < theta) & (scaled > theta / 32)).any()
    cos, sin = build_rope_cache(4, 3)  # odd n_elem: the doubled table is cut to n_elem
    assert cos.shape == (4, 3)
    cos, sin = build_rope_cache(5, 4, rope_local_base_freq=100.0)
    assert cos.shape == (5, 4, 2)
    np.testing.assert_allclose(cos[..., 1].numpy(), np_rope_cache(5, 4, 100.0)[0], rtol=1e-5, atol=1e-6)


# ---- forward against NumPy ---------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["pythia", "llama3", "gemma", "gemma2", "gemma3", "mixtral", "phi2", "mistral", "llama2_32k"])
def test_forward_matches_numpy(arch):
    model = tiny_gpt(arch)
    idx = tokens()
    with torch.no_grad():
        got = model(idx)
    assert got.shape == (2, 10, 48)
    np.testing.assert_allclose(got.numpy(), np_gpt(model, idx.numpy()), rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("arch", ["pythia", "phi2", "gemma2"])
def test_forward_float64_matches_numpy(arch):
    """Float64 weights and activations. RMSNorm computes in float32 (``x.float()``, as
    written), and the RoPE table is built in float32: hence the tolerances."""
    model = tiny_gpt(arch).to(torch.float64)
    assert model.cos.dtype == fw.float64 and model.lm_head.weight.dtype == fw.float64
    idx = tokens()
    with torch.no_grad():
        got = model(idx)
    assert got.dtype == fw.float64
    tol = 1e-6 if model.config.norm_class_name == "LayerNorm" else 2e-5
    np.testing.assert_allclose(got.numpy(), np_gpt(model, idx.numpy()), rtol=tol, atol=tol)


def test_deepseek_like_latent_attention_and_grouped_router():
    fw.manual_seed(0)
    model = GPT(Config(**DEEPSEEK_LIKE))
    blocks = model.transformer.h
    assert type(blocks[0].mlp).__name__ == "LLaMAMLP" and isinstance(blocks[1].mlp, LLaMAMoE)
    assert isinstance(blocks[1].mlp.gate, GroupedTopkRouter) and type(blocks[0].attn).__name__ == "MultiheadLatentAttention"
    model.apply(model._init_weights)
    with torch.no_grad():
        blocks[1].mlp.gate.weight.normal_(0.0, 0.5)
        blocks[1].mlp.gate.e_score_correction_bias.copy_(torch.tensor([0.0, 0.3, -0.2, 0.1]))
    x = torch.randn(6, 32)
    w, i = blocks[1].mlp.gate(x)
    # NumPy: sigmoid scores; group score = sum of its top-2 (biased) scores; keep the best
    # group; top-2 biased experts inside it; weights are the unbiased scores, normalized
    s = 1 / (1 + np.exp(-(x.numpy() @ blocks[1].mlp.gate.weight.detach().numpy().T)))
    biased = s + np.array([0.0, 0.3, -0.2, 0.1])
    best_group = biased.reshape(6, 2, 2).sum(-1).argmax(-1)
    want_idx = np.sort(best_group[:, None] * 2 + np.arange(2)[None], -1)
    got_idx = np.sort(i.numpy(), -1)
    np.testing.assert_array_equal(got_idx, want_idx)
    want_w = np.take_along_axis(s, want_idx, -1)
    want_w = want_w / want_w.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.sort(w.detach().numpy(), -1), np.sort(want_w, -1), rtol=1e-5)
    idx = tokens()
    model.eval()
    with torch.no_grad():
        full = model(idx).numpy()
        model.set_kv_cache(batch_size=2)
        steps = [model(idx[:, :4], torch.arange(4)).numpy()]
        steps += [model(idx[:, t:t + 1], torch.tensor([t])).numpy() for t in range(4, 10)]
    np.testing.assert_allclose(np.concatenate(steps, 1), full, rtol=1e-4, atol=1e-5)


# ---- mixture of experts ------------------------------------------------------------------------

def test_moe_routing_matches_numpy_topk():
    config = tiny_config("mixtral")
    fw.manual_seed(3)
    moe = LLaMAMoE(config)
    x = torch.randn(2, 5, 32)
    p = {k: v.numpy().astype(np.float64) for k, v in moe.state_dict().items()}
    logits = x.numpy().reshape(-1, 32) @ p["gate.weight"].T
    probs, indices = torch.topk(moe.gate(x.view(-1, 32)), config.n_expert_per_token)
    want_p, want_i = np_moe_route(logits, 2)
    np.testing.assert_array_equal(indices.numpy(), want_i)
    np.testing.assert_allclose(probs.softmax(dim=1, dtype=torch.float).detach().numpy(), want_p, rtol=1e-5)
    assert len(set(want_i[:, 0])) > 1  # the tokens do go to different experts
    with torch.no_grad():
        y = moe(x)
    np.testing.assert_allclose(y.numpy(), np_mlp(config, p, x.numpy().astype(np.float64), ""), rtol=1e-4, atol=1e-6)
    # every expert's weights get a gradient only from the tokens routed to it
    moe(x).pow(2).sum().backward()
    used = set(want_i.ravel().tolist())
    for e, expert in enumerate(moe.experts):
        g = expert.fc_1.weight.grad
        assert (g is not None and float(g.abs().sum()) > 0) == (e in used), e
    assert moe.gate.weight.grad is not None and float(moe.gate.weight.grad.abs().sum()) > 0


def test_moe_gradcheck_float64():
    """Finite differences of the logits through the router. litgpt computes some pieces in
    float32 even for float64 inputs (RMSNorm's ``x.float()``, the router's
    ``softmax(dtype=torch.float)``): LayerNorm stands in for RMSNorm, and the step ``eps``
    is large enough for the router's float32 rounding."""
    fw.manual_seed(0)
    model = GPT(tiny_config("mixtral", n_layer=1, n_embd=8, n_head=2, n_query_groups=1, intermediate_size=4, n_expert=3,
                            norm_class_name="LayerNorm", vocab_size=8, padded_vocab_size=8)).to(torch.float64)
    idx = torch.tensor([[1, 7, 3]])
    names = ["transformer.h.0.mlp.gate.weight", "transformer.h.0.mlp.experts.1.fc_1.weight", "transformer.h.0.norm_2.weight"]
    params = dict(model.named_parameters())

    def f(*ws):
        return torch.func.functional_call(model, dict(zip(names, ws)), (idx,))

    assert torch.autograd.gradcheck(f, grad_leaves(*(params[n] for n in names)), eps=1e-3, atol=1e-4)


def test_gemma2_gradcheck_float64():
    """Soft-capped attention scores and logits, a sliding-window layer, post norms (as
    LayerNorm, and a large ``eps`` for the float32 softmax of soft-capped scores: see
    test_moe_gradcheck_float64)."""
    fw.manual_seed(0)
    model = GPT(tiny_config("gemma2", n_embd=8, n_head=2, n_query_groups=1, head_size=2, intermediate_size=6, sliding_window_size=2,
                            attention_logit_softcapping=2.0, final_logit_softcapping=3.0, norm_class_name="LayerNorm",
                            vocab_size=8, padded_vocab_size=8)).to(torch.float64)
    idx = torch.tensor([[1, 7, 3, 2]])
    assert model.transformer.h[0].attn.apply_sliding_window_attention and not model.transformer.h[1].attn.apply_sliding_window_attention
    names = ["transformer.h.0.attn.qkv.weight", "transformer.h.0.post_attention_norm.weight", "transformer.h.1.attn.proj.weight"]
    params = dict(model.named_parameters())

    def f(*ws):
        return torch.func.functional_call(model, dict(zip(names, ws)), (idx,))

    assert torch.autograd.gradcheck(f, grad_leaves(*(params[n] for n in names)), eps=1e-3, atol=1e-3)


# ---- KV cache ----------------------------------------------------------------------------------

def _decode(model, idx, prefill=4, maxp1=False, batch_size=None, pos2d=False):
    """Prefill ``prefill`` tokens then one token at a time through the KV cache, as
    generate does; the logits of every position, concatenated."""
    B, T = idx.shape
    model.set_kv_cache(batch_size=batch_size or B)
    spans = [(0, prefill)] + [(t, t + 1) for t in range(prefill, T)]
    out = []
    with torch.no_grad():
        for t0, t1 in spans:
            input_pos = torch.arange(t0, t1)
            if pos2d:  # a batched input_pos (B, T): batched_index_select / index_copy_ per row
                input_pos = input_pos.unsqueeze(0).expand(B, -1).contiguous()
            out.append(model(idx[:, t0:t1], input_pos, input_pos_maxp1=t1 if maxp1 else None).numpy())
    return np.concatenate(out, 1)


@pytest.mark.parametrize("arch", ["pythia", "llama3", "gemma", "gemma2", "gemma3", "mixtral", "phi2", "mistral", "llama2_32k"])
def test_kv_cache_decoding_equals_full_forward(arch):
    """Decoding past the sliding window (4) too: Mistral's layers and the local layers of
    Gemma 2/3 keep a ring buffer of 4 positions. Gemma 2 without attention soft-capping
    here (see the next test)."""
    kw = dict(attention_logit_softcapping=None) if arch == "gemma2" else {}
    model = tiny_gpt(arch, **kw).eval()
    idx = tokens()
    with torch.no_grad():
        full = model(idx).numpy()
    np.testing.assert_allclose(_decode(model, idx), full, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_decode(model, idx, maxp1=True), full, rtol=1e-4, atol=1e-5)
    if model.config.sliding_window_size:
        layer0 = model.transformer.h[0].attn.kv_cache
        assert layer0.is_sliding_window and layer0.k.shape[2] == 4  # the ring buffer


def test_kv_cache_with_softcapping_adds_the_boolean_mask():
    """litgpt's soft-capped attention adds ``mask`` to the scores; the KV-cache mask is
    boolean, so a cached forward adds 1 to the allowed scores and masks nothing
    (Lightning-AI/litgpt#1672, open upstream). fw does what torch does: the cached prefill
    equals NumPy with a 0/1 mask added, not the causal forward."""
    assert (torch.zeros(2) + torch.tensor([True, False])).tolist() == [1.0, 0.0]
    model = tiny_gpt("gemma2", attention_logit_softcapping=5.0, sliding_window_size=8).eval()
    idx = tokens(T=6)
    model.set_kv_cache(batch_size=2)
    with torch.no_grad():
        cached = model(idx, torch.arange(6), input_pos_maxp1=6).numpy()
    np.testing.assert_allclose(cached, np_gpt(model, idx.numpy(), bool_mask_added=True), rtol=1e-4, atol=1e-5)
    assert np.abs(cached - np_gpt(model, idx.numpy())).max() > 1e-2


def test_kv_cache_buffers_batch_views_and_batched_positions():
    model = tiny_gpt("llama3").eval()
    idx = tokens(B=2)
    with torch.no_grad():
        full = model(idx).numpy()
    # a cache for 3 rows used by 2 (KVCache writes through ``self.k[:bs, ...]``), and a
    # batched (B, T) input_pos (batched_index_select, then ``t[i].index_copy_`` per row)
    np.testing.assert_allclose(_decode(model, idx, batch_size=3), full, rtol=1e-4, atol=1e-5)
    cache = model.transformer.h[1].attn.kv_cache
    k = cache.k.numpy()
    assert k.shape == (3, 2, 16, 8) and (k[2] == 0).all() and (k[:2, :, 10:] == 0).all()
    assert (np.abs(k[:2, :, :10]).sum(-1) > 0).all()
    model.clear_kv_cache()
    assert model.mask_cache is None and cache is not model.transformer.h[1].attn.kv_cache
    np.testing.assert_allclose(_decode(model, idx, pos2d=True), full, rtol=1e-4, atol=1e-5)
    # the cached k equals the roped keys of the full forward (NumPy: roped x @ W_k)
    k2 = model.transformer.h[0].attn.kv_cache.k.numpy()[:, :, :10]
    c = model.config
    with torch.no_grad():
        h = model.transformer.h[0].norm_1(model.transformer.wte(idx)).numpy().astype(np.float64)
    w = model.transformer.h[0].attn.qkv.weight.detach().numpy().astype(np.float64)
    kk = (h @ w[c.n_head * 8:(c.n_head + 2) * 8].T).reshape(2, 10, 2, 8).transpose(0, 2, 1, 3)
    cos, sin = np_rope_cache(10, 8, c.rope_base, 1, c.rope_adjustments)
    kk = kk * cos + np.concatenate([-kk[..., 4:], kk[..., :4]], -1) * sin
    np.testing.assert_allclose(k2, kk, rtol=1e-4, atol=1e-5)
    t = torch.arange(24.0).view(2, 3, 4)
    got = batched_index_select(t, 1, torch.tensor([[2, 0], [1, 1]]))
    assert got.shape == (2, 2, 2, 4)  # (batch of idx, t's dim 0, idx_size, t's dim 2)
    np.testing.assert_array_equal(got.numpy()[0], t.numpy()[:, [2, 0]])
    np.testing.assert_array_equal(got.numpy()[1], t.numpy()[:, [1, 1]])


def test_kv_cache_module_and_mask_cache():
    cache = KVCache((1, 2, 5, 3), (1, 2, 5, 3))
    assert dict(cache.state_dict()) == {} and cache.max_cache_len == 5
    k = torch.ones(1, 2, 2, 3, dtype=torch.float64)
    kf, vf = cache(torch.tensor([3, 1]), k, 2 * k)
    assert cache.k.dtype == torch.float64  # moved to the activations' dtype, as written
    np.testing.assert_array_equal(kf.numpy()[0, 0, :, 0], [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(vf.numpy()[0, 1, :, 2], [0, 2, 0, 2, 0])
    cache.reset_parameters()
    assert float(cache.k.abs().sum()) == 0
    m = build_mask_cache(4)
    assert m.shape == (1, 1, 4, 4) and m.dtype == torch.bool
    np.testing.assert_array_equal(m.numpy()[0, 0], np.tril(np.ones((4, 4), bool)))


# ---- model API ---------------------------------------------------------------------------------

def test_max_seq_length_setter_and_input_checks(capsys):
    model = tiny_gpt("pythia")
    assert model.max_seq_length == 16 and model.cos.shape == (16, 2)
    with pytest.raises(ValueError, match="block size is only 16"):
        model.max_seq_length = 17
    model.max_seq_length = 8
    assert model.cos.shape == (8, 2) and "cos" not in model.state_dict()
    np.testing.assert_allclose(model.cos.numpy(), np_rope_cache(8, 2)[0], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="Cannot forward sequence of length 9"):
        model(tokens(T=9))
    with pytest.raises(TypeError, match="set_kv_cache"):
        model(tokens(T=2), torch.arange(2))
    model.set_kv_cache(batch_size=1)
    assert model.mask_cache.shape == (1, 1, 8, 8)
    capsys.readouterr()
    model.max_seq_length = 12  # longer than the mask cache: litgpt prints a warning
    assert "Call 'set_kv_cache' before doing any forwards" in capsys.readouterr().out
    with pytest.raises(ValueError, match="input_pos.shape"):
        model(tokens(B=1, T=2), torch.arange(3))
    with pytest.raises(ValueError, match="Positions in 'input_pos' must be"):
        model(tokens(B=1, T=2), torch.arange(2), input_pos_maxp1=13)
    model.reset_parameters()
    assert model.cos.shape == (12, 2)


def test_init_weights_chunked_lm_head_and_state_dict():
    model = tiny_gpt("llama3", n_embd=64, intermediate_size=128)
    model.apply(model._init_weights)
    w = model.transformer.h[0].mlp.fc_1.weight.detach().numpy()
    assert abs(w.std() - 0.02) < 2e-3 and abs(w.mean()) < 2e-3
    assert abs(model.transformer.wte.weight.detach().numpy().std() - 0.02) < 2e-3
    pythia = tiny_gpt("pythia")
    pythia.apply(pythia._init_weights)
    assert float(pythia.transformer.h[0].attn.qkv.bias.abs().sum()) == 0
    keys = list(model.state_dict())
    assert "transformer.h.0.attn.qkv.weight" in keys and not any(k in ("cos", "sin") or "kv_cache" in k for k in keys)
    idx = tokens(T=10)
    with torch.no_grad():
        chunks = pythia(idx, lm_head_chunk_size=4)
        full = pythia(idx)
    assert isinstance(chunks, list) and [c.shape[1] for c in chunks] == [4, 4, 2]
    np.testing.assert_allclose(torch.cat(chunks, dim=1).numpy(), full.numpy(), rtol=1e-6, atol=1e-6)


def test_legacy_interleaved_qkv_checkpoint_loads():
    """A checkpoint from before litgpt split q/k/v by kind stores ``attn.attn.weight`` as
    [Q.., K, V] per query group; CausalSelfAttention._load_from_state_dict reassembles it."""
    src = tiny_gpt("llama3")
    c = src.config
    q_per_kv, hs = c.n_head // c.n_query_groups, c.head_size
    legacy = {}
    for k, v in src.state_dict().items():
        if k.endswith("attn.qkv.weight") or k.endswith("attn.qkv.bias"):
            q, kk, vv = v.split([c.n_head * hs, c.n_query_groups * hs, c.n_query_groups * hs])
            per_group = [torch.cat([q[g * q_per_kv * hs:(g + 1) * q_per_kv * hs], kk[g * hs:(g + 1) * hs], vv[g * hs:(g + 1) * hs]])
                         for g in range(c.n_query_groups)]
            legacy[k.replace("attn.qkv.", "attn.attn.")] = torch.cat(per_group)
        else:
            legacy[k] = v
    assert "transformer.h.1.attn.attn.weight" in legacy
    np.testing.assert_array_equal(qkv_reassemble(legacy["transformer.h.0.attn.attn.weight"], c).numpy(),
                                  src.transformer.h[0].attn.qkv.weight.detach().numpy())
    dst = tiny_gpt("llama3", seed=5)
    dst.load_state_dict(legacy)
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[k].numpy(), v.numpy(), err_msg=k)
