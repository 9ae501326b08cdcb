"""NumPy float64 references for the litgpt port (test_litgpt*.py): RoPE tables written
from the papers' / Hugging Face's formulas (piecewise Llama 3 scaling, YaRN ramp), and a
whole-model forward read from a ``GPT``'s state dict and ``Config``, written independently
of the ported code (no shared helpers)."""

import math

import numpy as np

from ._checks import np_params

_erf = np.vectorize(math.erf)


def np_inv_freq(n_elem, base=10000, extra=None):
    """RoPE inverse frequencies; ``extra`` as litgpt's ``rope_adjustments`` (linear, Llama 3
    piecewise as in Hugging Face's ``_compute_llama3_parameters``, or YaRN)."""
    theta = 1.0 / base ** (np.arange(0, n_elem, 2, dtype=np.float64) / n_elem)
    if not extra:
        return theta
    factor = extra["factor"]
    if "beta_fast" in extra:
        def dim_of(rot):
            return n_elem * math.log(extra["original_max_seq_len"] / (rot * 2 * math.pi)) / (2 * math.log(base))
        lo = max(math.floor(dim_of(extra["beta_fast"])), 0)
        hi = min(math.ceil(dim_of(extra["beta_slow"])), n_elem // 2 - 1)
        hi = hi + 0.001 if lo == hi else hi
        ramp = np.clip((np.arange(n_elem // 2) - lo) / (hi - lo), 0, 1)
        return theta / factor * (1 - ramp) + theta * ramp
    if "low_freq_factor" in extra:
        orig, low, high = extra["original_max_seq_len"], extra["low_freq_factor"], extra["high_freq_factor"]
        wavelen = 2 * math.pi / theta
        out = np.where(wavelen > orig / low, theta / factor, theta)
        mid = (wavelen <= orig / low) & (wavelen >= orig / high)
        smooth = (orig / wavelen - low) / (high - low)
        return np.where(mid, (1 - smooth) * theta / factor + smooth * theta, out)
    return theta / factor


def np_rope_cache(seq_len, n_elem, base=10000, condense_ratio=1, extra=None):
    """``(cos, sin)`` of shape ``(seq_len, n_elem)``: angle ``pos / condense_ratio * theta_i``,
    the half-size table written twice (the rotate-half layout)."""
    ang = np.outer(np.arange(seq_len) / condense_ratio, np_inv_freq(n_elem, base, extra))
    ang = np.concatenate([ang, ang], -1)[:, :n_elem]
    return np.cos(ang), np.sin(ang)


def _norm(c, p, x, pre):
    if c.norm_class_name == "RMSNorm":
        w = p[pre + ".weight"] + (1.0 if "Gemma" in c.name else 0.0)
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + c.norm_eps) * w
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + c.norm_eps) * p[pre + ".weight"] + p[pre + ".bias"]


def _lin(p, x, pre):
    y = x @ p[pre + ".weight"].T
    return y + p[pre + ".bias"] if pre + ".bias" in p else y


def _gelu(x, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _rotate(x, cos, sin):
    """Rotate-half RoPE over the first ``cos.shape[-1]`` features of ``x`` (..., T, hs)."""
    n = cos.shape[-1]
    r, rest = x[..., :n], x[..., n:]
    rot = np.concatenate([-r[..., n // 2:], r[..., :n // 2]], -1)
    return np.concatenate([r * cos + rot * sin, rest], -1)


def np_attention(c, p, x, pre, cos, sin, block_idx, bool_mask_added=False):
    """litgpt's CausalSelfAttention (no cache): GQA by query groups, partial RoPE, the
    attention scale, soft-capping and sliding windows. ``bool_mask_added``: soft-capped
    scores get the causal mask *added* as 0/1 (what litgpt does with its boolean KV-cache
    mask, Lightning-AI/litgpt#1672), nothing masked."""
    B, T, _ = x.shape
    hs, nh, ng = c.head_size, c.n_head, c.n_query_groups
    qkv = _lin(p, x, pre + "qkv")
    q = qkv[..., :nh * hs].reshape(B, T, nh, hs).transpose(0, 2, 1, 3)
    k = qkv[..., nh * hs:(nh + ng) * hs].reshape(B, T, ng, hs).transpose(0, 2, 1, 3)
    v = qkv[..., (nh + ng) * hs:].reshape(B, T, ng, hs).transpose(0, 2, 1, 3)
    if c.norm_qk:  # the "default" type: one norm over head_size, shared by the heads
        q, k = _norm(c, p, q, pre + "norm_q"), _norm(c, p, k, pre + "norm_k")
    q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
    group = np.arange(nh) // (nh // ng)  # query head h reads key/value group h // q_per_kv
    k, v = k[:, group], v[:, group]
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(c.attention_scores_scalar or hs)
    if c.attention_logit_softcapping is not None:
        s = np.tanh(s / c.attention_logit_softcapping) * c.attention_logit_softcapping
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    allowed = j <= i
    if c.sliding_window_size is not None and c.sliding_window_indices[block_idx]:
        allowed &= j > i - c.sliding_window_size
    if bool_mask_added and c.attention_logit_softcapping is not None:
        y = _softmax(s + allowed) @ v
    else:
        y = _softmax(np.where(allowed, s, -np.inf)) @ v
    return _lin(p, y.transpose(0, 2, 1, 3).reshape(B, T, nh * hs), pre + "proj")


def np_moe_route(router_logits, k):
    """Top-``k`` experts per row (by value, descending) and the softmax over their logits."""
    idx = np.argsort(-router_logits, axis=-1, kind="stable")[:, :k]
    return _softmax(np.take_along_axis(router_logits, idx, -1)), idx


def np_mlp(c, p, x, pre):
    """GptNeoxMLP, LLaMAMLP, GemmaMLP or LLaMAMoE (top-k routing, softmax over the k)."""
    if c.mlp_class_name == "GptNeoxMLP":
        return _lin(p, _gelu(_lin(p, x, pre + "fc"), c.gelu_approximate), pre + "proj")
    if c.mlp_class_name in ("LLaMAMLP", "GemmaMLP"):
        a = _lin(p, x, pre + "fc_1")
        act = a / (1 + np.exp(-a)) if c.mlp_class_name == "LLaMAMLP" else _gelu(a, c.gelu_approximate)
        return _lin(p, act * _lin(p, x, pre + "fc_2"), pre + "proj")
    assert c.mlp_class_name == "LLaMAMoE", c.mlp_class_name
    flat = x.reshape(-1, x.shape[-1])
    probs, idx = np_moe_route(_lin(p, flat, pre + "gate"), c.n_expert_per_token)
    llama = type("C", (), dict(mlp_class_name="LLaMAMLP"))
    y = np.zeros_like(flat)
    for t in range(flat.shape[0]):
        for slot in range(c.n_expert_per_token):
            e = idx[t, slot]
            y[t] += probs[t, slot] * np_mlp(llama, p, flat[t], f"{pre}experts.{e}.")
    return y.reshape(x.shape)


def np_gpt(model, idx, bool_mask_added=False):
    """litgpt ``GPT.forward(idx)`` (no KV cache) in float64 NumPy: logits ``(B, T, V)``."""
    c, p = model.config, np_params(model.state_dict())
    idx = np.asarray(idx)
    T = idx.shape[1]
    tables = [np_rope_cache(T, c.rope_n_elem, c.rope_base, c.rope_condense_ratio, c.rope_adjustments)]
    if c.rope_local_base_freq is not None:  # Gemma 3: rope_indices picks 0 global / 1 local
        tables.append(np_rope_cache(T, c.rope_n_elem, c.rope_local_base_freq, c.rope_condense_ratio))
    x = p["transformer.wte.weight"][idx]
    if c.scale_embeddings:
        x = x * math.sqrt(c.n_embd)
    for i in range(c.n_layer):
        pre = f"transformer.h.{i}."
        n1 = _norm(c, p, x, pre + "norm_1")
        cos, sin = tables[c.rope_indices[i] if c.rope_indices is not None else 0]
        a = np_attention(c, p, n1, pre + "attn.", cos, sin, i, bool_mask_added)
        if c.post_attention_norm:
            a = _norm(c, p, a, pre + "post_attention_norm")
        if c.parallel_residual:
            n2 = n1 if c.shared_attention_norm else _norm(c, p, x, pre + "norm_2")
            x = a + x
        else:
            x = a + x
            n2 = _norm(c, p, x, pre + "norm_2")
        m = np_mlp(c, p, n2, pre + "mlp.")
        if c.post_mlp_norm:
            m = _norm(c, p, m, pre + "post_mlp_norm")
        x = m + x
    logits = _lin(p, _norm(c, p, x, "transformer.ln_f"), "lm_head")
    if c.final_logit_softcapping is not None:
        logits = np.tanh(logits / c.final_logit_softcapping) * c.final_logit_softcapping
    return logits
