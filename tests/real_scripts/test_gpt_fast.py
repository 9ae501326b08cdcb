# ruff: noqa: E501, E731, UP006, UP035, UP045  (the ported script's own lines are kept as written)
"""pytorch-labs/gpt-fast ``model.py`` and the decoding half of ``generate.py`` ported to ``fw``.

The model (ModelArgs, KVCache, Transformer, TransformerBlock, Attention with its fused wqkv
and load hook, FeedForward, RMSNorm, rotary embeddings) and the decoding functions
(multinomial_sample_one_no_sync, logits_to_probs, sample, prefill, decode_one_token,
decode_n_tokens, speculative_decode, generate) are the original's code with ``torch`` ->
``fw``. Left out: the tokenizer, the CLI/profiling main(), quantization and tensor
parallelism. gpt-fast has no training; the tests check decoding against a NumPy forward pass.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
from framework import Tensor
from framework.nn import functional as F

torch = fw  # the scripts' ``torch.xxx`` calls read as ``fw.xxx``


# ---- model.py ---------------------------------------------------------------------------------

def find_multiple(n: int, k: int) -> int:
    if n % k == 0:
        return n
    return n + k - (n % k)

@dataclass
class ModelArgs:
    block_size: int = 2048
    vocab_size: int = 32000
    n_layer: int = 32
    n_head: int = 32
    dim: int = 4096
    intermediate_size: int = None
    n_local_heads: int = -1
    head_dim: int = 64
    rope_base: float = 10000
    norm_eps: float = 1e-5

    def __post_init__(self):
        if self.n_local_heads == -1:
            self.n_local_heads = self.n_head
        if self.intermediate_size is None:
            hidden_dim = 4 * self.dim
            n_hidden = int(2 * hidden_dim / 3)
            self.intermediate_size = find_multiple(n_hidden, 256)
        self.head_dim = self.dim // self.n_head

    @classmethod
    def from_name(cls, name: str):
        if name in transformer_configs:
            return cls(**transformer_configs[name])
        # fuzzy search
        config = [config for config in transformer_configs if config in str(name).upper() or config in str(name)]

        # We may have two or more configs matched (e.g. "7B" and "Mistral-7B"). Find the best config match,
        # take longer name (as it have more symbols matched)
        if len(config) > 1:
            config.sort(key=len, reverse=True)
            assert len(config[0]) != len(config[1]), name # make sure only one 'best' match

        return cls(**transformer_configs[config[0]])


transformer_configs = {
    "CodeLlama-7b-Python-hf": dict(block_size=16384, vocab_size=32000, n_layer=32, dim = 4096, rope_base=1000000),
    "7B": dict(n_layer=32, n_head=32, dim=4096),
    "13B": dict(n_layer=40, n_head=40, dim=5120),
    "30B": dict(n_layer=60, n_head=52, dim=6656),
    "34B": dict(n_layer=48, n_head=64, dim=8192, vocab_size=32000, n_local_heads=8, intermediate_size=22016, rope_base=1000000), # CodeLlama-34B-Python-hf
    "70B": dict(n_layer=80, n_head=64, dim=8192, n_local_heads=8, intermediate_size=28672),
    "Mistral-7B": dict(n_layer=32, n_head=32, n_local_heads=8, dim=4096, intermediate_size=14336, vocab_size=32000),
    "stories15M": dict(n_layer=6, n_head=6, dim=288),
    "stories110M": dict(n_layer=12, n_head=12, dim=768),
    # added for the tests: the tiny config of the brief
    "fw-tiny": dict(block_size=32, vocab_size=64, n_layer=2, n_head=4, n_local_heads=2, dim=32, intermediate_size=48),
    "fw-draft": dict(block_size=32, vocab_size=64, n_layer=1, n_head=2, n_local_heads=1, dim=16, intermediate_size=24),
}

class KVCache(nn.Module):
    def __init__(self, max_batch_size, max_seq_length, n_heads, head_dim, dtype=torch.bfloat16):
        super().__init__()
        cache_shape = (max_batch_size, n_heads, max_seq_length, head_dim)
        self.register_buffer('k_cache', torch.zeros(cache_shape, dtype=dtype))
        self.register_buffer('v_cache', torch.zeros(cache_shape, dtype=dtype))

    def update(self, input_pos, k_val, v_val):
        # input_pos: [S], k_val: [B, H, S, D]
        assert input_pos.shape[0] == k_val.shape[2]

        k_out = self.k_cache
        v_out = self.v_cache
        k_out[:, :, input_pos] = k_val
        v_out[:, :, input_pos] = v_val

        return k_out, v_out

class Transformer(nn.Module):
    def __init__(self, config: ModelArgs) -> None:
        super().__init__()
        self.config = config

        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.dim, eps=config.norm_eps)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)

        self.freqs_cis: Optional[Tensor] = None
        self.mask_cache: Optional[Tensor] = None
        self.max_batch_size = -1
        self.max_seq_length = -1

    def setup_caches(self, max_batch_size, max_seq_length):
        if self.max_seq_length >= max_seq_length and self.max_batch_size >= max_batch_size:
            return
        head_dim = self.config.dim // self.config.n_head
        max_seq_length = find_multiple(max_seq_length, 8)
        self.max_seq_length = max_seq_length
        self.max_batch_size = max_batch_size
        dtype=self.output.weight.dtype
        for b in self.layers:
            b.attention.kv_cache = KVCache(max_batch_size, max_seq_length, self.config.n_local_heads, head_dim, dtype)

        self.freqs_cis = precompute_freqs_cis(self.config.block_size, self.config.dim // self.config.n_head, self.config.rope_base, dtype)
        self.causal_mask = torch.tril(torch.ones(self.max_seq_length, self.max_seq_length, dtype=torch.bool))

    def forward(self, idx: Tensor, input_pos: Optional[Tensor] = None) -> Tensor:
        assert self.freqs_cis is not None, "Caches must be initialized first"
        mask = self.causal_mask[None, None, input_pos]
        freqs_cis = self.freqs_cis[input_pos]
        x = self.tok_embeddings(idx)

        for i, layer in enumerate(self.layers):
            x = layer(x, input_pos, freqs_cis, mask)
        x = self.norm(x)
        logits = self.output(x)
        return logits

    @classmethod
    def from_name(cls, name: str):
        return cls(ModelArgs.from_name(name))


class TransformerBlock(nn.Module):
    def __init__(self, config: ModelArgs) -> None:
        super().__init__()
        self.attention = Attention(config)
        self.feed_forward = FeedForward(config)
        self.ffn_norm = RMSNorm(config.dim, config.norm_eps)
        self.attention_norm = RMSNorm(config.dim, config.norm_eps)

    def forward(self, x: Tensor, input_pos: Tensor, freqs_cis: Tensor, mask: Tensor) -> Tensor:
        h = x + self.attention(self.attention_norm(x), freqs_cis, mask, input_pos)
        out = h + self.feed_forward(self.ffn_norm(h))
        return out


class Attention(nn.Module):
    def __init__(self, config: ModelArgs):
        super().__init__()
        assert config.dim % config.n_head == 0

        total_head_dim = (config.n_head + 2 * config.n_local_heads) * config.head_dim
        # key, query, value projections for all heads, but in a batch
        self.wqkv = nn.Linear(config.dim, total_head_dim, bias=False)
        self.wo = nn.Linear(config.dim, config.dim, bias=False)
        self.kv_cache = None

        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.n_local_heads = config.n_local_heads
        self.dim = config.dim
        self._register_load_state_dict_pre_hook(self.load_hook)

    def load_hook(self, state_dict, prefix, *args):
        if prefix + "wq.weight" in state_dict:
            wq = state_dict.pop(prefix + "wq.weight")
            wk = state_dict.pop(prefix + "wk.weight")
            wv = state_dict.pop(prefix + "wv.weight")
            state_dict[prefix + "wqkv.weight"] = torch.cat([wq, wk, wv])

    def forward(self, x: Tensor, freqs_cis: Tensor, mask: Tensor, input_pos: Optional[Tensor] = None) -> Tensor:
        bsz, seqlen, _ = x.shape

        kv_size = self.n_local_heads * self.head_dim
        q, k, v = self.wqkv(x).split([self.dim, kv_size, kv_size], dim=-1)

        q = q.view(bsz, seqlen, self.n_head, self.head_dim)
        k = k.view(bsz, seqlen, self.n_local_heads, self.head_dim)
        v = v.view(bsz, seqlen, self.n_local_heads, self.head_dim)

        q = apply_rotary_emb(q, freqs_cis)
        k = apply_rotary_emb(k, freqs_cis)

        q, k, v = map(lambda x: x.transpose(1, 2), (q, k, v))

        if self.kv_cache is not None:
            k, v = self.kv_cache.update(input_pos, k, v)

        k = k.repeat_interleave(self.n_head // self.n_local_heads, dim=1)
        v = v.repeat_interleave(self.n_head // self.n_local_heads, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0)

        y = y.transpose(1, 2).contiguous().view(bsz, seqlen, self.dim)

        y = self.wo(y)
        return y


class FeedForward(nn.Module):
    def __init__(self, config: ModelArgs) -> None:
        super().__init__()
        self.w1 = nn.Linear(config.dim, config.intermediate_size, bias=False)
        self.w3 = nn.Linear(config.dim, config.intermediate_size, bias=False)
        self.w2 = nn.Linear(config.intermediate_size, config.dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        output = self._norm(x.float()).type_as(x)
        return output * self.weight


def precompute_freqs_cis(
    seq_len: int, n_elem: int, base: int = 10000,
    dtype: torch.dtype = torch.bfloat16
) -> Tensor:
    freqs = 1.0 / (base ** (torch.arange(0, n_elem, 2)[: (n_elem // 2)].float() / n_elem))
    t = torch.arange(seq_len, device=freqs.device)
    freqs = torch.outer(t, freqs)
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs)
    cache = torch.stack([freqs_cis.real, freqs_cis.imag], dim=-1)
    return cache.to(dtype=dtype)


def apply_rotary_emb(x: Tensor, freqs_cis: Tensor) -> Tensor:
    xshaped = x.float().reshape(*x.shape[:-1], -1, 2)
    freqs_cis = freqs_cis.view(1, xshaped.size(1), 1, xshaped.size(3), 2)
    x_out2 = torch.stack(
        [
            xshaped[..., 0] * freqs_cis[..., 0] - xshaped[..., 1] * freqs_cis[..., 1],
            xshaped[..., 1] * freqs_cis[..., 0] + xshaped[..., 0] * freqs_cis[..., 1],
        ],
        -1,
    )

    x_out2 = x_out2.flatten(3)
    return x_out2.type_as(x)


# ---- generate.py (decoding) -------------------------------------------------------------------

def multinomial_sample_one_no_sync(probs_sort): # Does multinomial sampling without a cuda synchronization
    q = torch.empty_like(probs_sort).exponential_(1)
    return torch.argmax(probs_sort / q, dim=-1, keepdim=True).to(dtype=torch.int)

def logits_to_probs(logits, temperature: float = 1.0, top_k: Optional[int] = None):
    logits = logits / max(temperature, 1e-5)

    if top_k is not None:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        pivot = v.select(-1, -1).unsqueeze(-1)
        logits = torch.where(logits < pivot, -float("Inf"), logits)
    probs = torch.nn.functional.softmax(logits, dim=-1)
    return probs

def sample(logits, temperature: float = 1.0, top_k: Optional[int] = None):
    probs = logits_to_probs(logits[0, -1], temperature, top_k)
    idx_next = multinomial_sample_one_no_sync(probs)
    return idx_next, probs

def prefill(model: Transformer, x: torch.Tensor, input_pos: torch.Tensor, **sampling_kwargs) -> torch.Tensor:
    # input_pos: [B, S]
    logits = model(x, input_pos)
    return sample(logits, **sampling_kwargs)[0]

def decode_one_token(model: Transformer, x: torch.Tensor, input_pos: torch.Tensor, **sampling_kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    # input_pos: [B, 1]
    assert input_pos.shape[-1] == 1
    logits = model(x, input_pos)
    return sample(logits, **sampling_kwargs)

def decode_n_tokens(model: Transformer, cur_token: torch.Tensor, input_pos: torch.Tensor, num_new_tokens: int, callback=lambda _: _, **sampling_kwargs):
    new_tokens, new_probs = [], []
    for i in range(num_new_tokens):
        with torch.backends.cuda.sdp_kernel(enable_flash=False, enable_mem_efficient=False, enable_math=True): # Actually better for Inductor to codegen attention here
            next_token, next_prob = decode_one_token(
                model, cur_token, input_pos, **sampling_kwargs
            )
            input_pos += 1
            new_tokens.append(next_token.clone())
            callback(new_tokens[-1])
            new_probs.append(next_prob.clone())
            cur_token = next_token.view(1, -1)

    return new_tokens, new_probs


def model_forward(model, x, input_pos):
    return model(x, input_pos)

def speculative_decode(
    model: Transformer,
    draft_model: Transformer,
    cur_token: torch.Tensor,
    input_pos: int,
    speculate_k: int,
    **sampling_kwargs
) -> torch.Tensor:
    # draft model inference sequentially
    device = cur_token.device
    orig_input_pos = torch.tensor([input_pos], dtype=torch.int64, device=cur_token.device)
    draft_tokens, draft_probs = decode_n_tokens(draft_model, cur_token.view(1, -1), orig_input_pos.clone(), speculate_k, **sampling_kwargs)

    draft_tokens = torch.cat(draft_tokens)
    # parallel inference on target model using draft tokens
    target_logits = model_forward(
        model,
        torch.cat([cur_token.view(1), draft_tokens]).view(1, -1),
        torch.arange(input_pos, input_pos + speculate_k + 1, device=cur_token.device)
    )
    target_probs = logits_to_probs(target_logits[0], **sampling_kwargs)
    draft_probs = torch.stack(draft_probs)
    # q: target prob, p: draft prob
    # q >= p: always accept draft token
    # q < p: q/p prob to accept draft token
    p = draft_probs[torch.arange(0, speculate_k, device=device), draft_tokens]
    q = target_probs[torch.arange(0, speculate_k, device=device), draft_tokens]
    accept_draft_prob = torch.minimum(torch.ones(()), q[:speculate_k]/ p)
    rejected_locations = (torch.rand_like(accept_draft_prob) > accept_draft_prob).nonzero()

    if rejected_locations.shape[0] == 0: # All draft tokens have been accepted
        accept_length = speculate_k + 1
        last_token = multinomial_sample_one_no_sync(target_probs[-1])
        # fill last token into draft model
        model_forward(
            draft_model,
            draft_tokens[-1].view(1, -1),
            orig_input_pos + speculate_k,
        )
        return torch.cat([draft_tokens, last_token])
    else:
        accept_length = rejected_locations[0].item()
        p = draft_probs[accept_length]
        q = target_probs[accept_length]
        new = q - p
        new = torch.where(new > 0, new, 0.0)
        new = new / new.sum()
        next_token = multinomial_sample_one_no_sync(new)
        return torch.cat([draft_tokens[:accept_length], next_token])

@torch.no_grad()
def generate(
    model: Transformer,
    prompt: torch.Tensor,
    max_new_tokens: int,
    *,
    interactive: bool,
    draft_model: Transformer,
    speculate_k: Optional[int] = 8,
    callback = lambda x: x,
    **sampling_kwargs
) -> torch.Tensor:
    """
    Takes a conditioning sequence (prompt) as input and continues to generate as many tokens as requested.
    """

    is_speculative = draft_model is not None
    # create an empty tensor of the expected final shape and fill in the current tokens
    T = prompt.size(0)
    T_new = T + max_new_tokens
    if interactive:
        max_seq_length = 350
    else:
        max_seq_length = min(T_new, model.config.block_size)

    device, dtype = prompt.device, prompt.dtype
    max_seq_length = max_seq_length + speculate_k + 1 if is_speculative else max_seq_length
    with torch.device(device):
        model.setup_caches(max_batch_size=1, max_seq_length=max_seq_length)
        if is_speculative and draft_model is not model:
            draft_model.setup_caches(max_batch_size=1, max_seq_length=max_seq_length)

    # create an empty tensor of the expected final shape and fill in the current tokens
    empty = torch.empty(T_new, dtype=dtype, device=device)
    empty[:T] = prompt
    seq = empty
    input_pos = torch.arange(0, T, device=device)

    next_token = prefill(model, prompt.view(1, -1), input_pos, **sampling_kwargs)
    if is_speculative:
        prefill(draft_model, prompt.view(1, -1), input_pos, **sampling_kwargs)
    seq[T] = next_token

    input_pos = torch.tensor([T], device=device, dtype=torch.int)
    accept_counts = [0] * (speculate_k + 1)

    if is_speculative:
        input_pos = input_pos.item()  # for speculative decoding easier to keep on host
        while input_pos < T_new - 1:
            cur_token = next_token.view(())

            next_tokens = speculative_decode(
                model, draft_model, cur_token, input_pos, speculate_k, **sampling_kwargs
            )

            accept_counts[len(next_tokens) - 1] += 1
            num_added = min(T_new - input_pos - 1, len(next_tokens))
            seq[input_pos + 1 : input_pos + num_added + 1] = next_tokens[: num_added]
            for i in next_tokens[: num_added,]:
                callback(i)
            input_pos = input_pos + num_added
            next_token = next_tokens[-1]
    else:
        generated_tokens, _ = decode_n_tokens(model, next_token.view(1, -1), input_pos, max_new_tokens - 1, callback=callback, **sampling_kwargs)
        seq[T + 1:] = torch.cat(generated_tokens)

    generate_stats = {
        'accept_counts': accept_counts
    }
    return seq, generate_stats


# ---- tests ------------------------------------------------------------------------------------

PROMPT = [1, 5, 9, 3, 17]


def _model(name="fw-tiny", seed=0):
    fw.manual_seed(seed)
    return Transformer.from_name(name).eval()


def _sharp_model():
    """The tiny model with attention scaled up, so that the next token depends on the
    context (a random tiny model's argmax mostly follows the current token alone)."""
    model = _model()
    with torch.no_grad():
        for layer in model.layers:
            layer.attention.wqkv.weight.mul_(3.0)
            layer.attention.wo.weight.mul_(4.0)
    return model


def _np_forward(model, tokens):
    """The model's logits for ``tokens`` (a list of ids) as NumPy formulas, no cache."""
    cfg = model.config
    sd = {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()
          if "kv_cache" not in k}
    hd, nh, nkv, eps = cfg.head_dim, cfg.n_head, cfg.n_local_heads, cfg.norm_eps
    T = len(tokens)
    ang = np.arange(T)[:, None] / cfg.rope_base ** (np.arange(0, hd, 2) / hd)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def rope(x):  # x: [T, H, hd] with (even, odd) pairs rotated by position
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, b * cos + a * sin
        return out

    x = sd["tok_embeddings.weight"][tokens]
    causal = np.tril(np.ones((T, T), bool))
    for i in range(cfg.n_layer):
        p = f"layers.{i}."
        h = rms(x, sd[p + "attention_norm.weight"]) @ sd[p + "attention.wqkv.weight"].T
        q = rope(h[:, :cfg.dim].reshape(T, nh, hd))
        k = rope(h[:, cfg.dim:cfg.dim + nkv * hd].reshape(T, nkv, hd))
        v = h[:, cfg.dim + nkv * hd:].reshape(T, nkv, hd)
        k, v = np.repeat(k, nh // nkv, axis=1), np.repeat(v, nh // nkv, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd)
        s = np.where(causal, s, -np.inf)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        y = np.einsum("hts,shd->thd", a, v).reshape(T, cfg.dim)
        x = x + y @ sd[p + "attention.wo.weight"].T
        f = rms(x, sd[p + "ffn_norm.weight"])
        g = f @ sd[p + "feed_forward.w1.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (f @ sd[p + "feed_forward.w3.weight"].T)) @ sd[p + "feed_forward.w2.weight"].T
    return rms(x, sd["norm.weight"]) @ sd["output.weight"].T


def test_model_args_from_name():
    a = ModelArgs.from_name("Mistral-7B-Instruct")
    assert (a.n_layer, a.n_local_heads, a.intermediate_size, a.head_dim) == (32, 8, 14336, 128)
    b = ModelArgs.from_name("stories15M")
    assert b.intermediate_size == find_multiple(int(2 * 4 * 288 / 3), 256) == 768
    c = ModelArgs.from_name("fw-tiny")
    assert (c.head_dim, c.n_local_heads) == (8, 2)


def test_prefill_matches_numpy_forward():
    model = _model()
    model.setup_caches(max_batch_size=1, max_seq_length=16)
    assert model.max_seq_length == 16 and model.causal_mask.dtype == fw.bool
    toks = [3, 7, 1, 60, 12, 5, 9, 33]
    with fw.no_grad():
        logits = model(fw.tensor([toks]), fw.arange(len(toks)))
    np.testing.assert_allclose(logits[0].numpy(), _np_forward(model, toks), rtol=1e-4, atol=1e-5)


def test_incremental_decoding_matches_full_forward():
    model = _model()
    model.setup_caches(max_batch_size=1, max_seq_length=16)
    toks = [3, 7, 1, 60, 12, 5, 9, 33]
    ref = _np_forward(model, toks)
    steps = []
    with fw.no_grad():
        steps.append(model(fw.tensor([toks[:3]]), fw.arange(3))[0].numpy())
        for t in range(3, len(toks)):
            pos = fw.tensor([t], dtype=fw.int)
            steps.append(model(fw.tensor([[toks[t]]]), pos)[0].numpy())
    np.testing.assert_allclose(np.concatenate(steps), ref, rtol=1e-4, atol=1e-5)
    # the cache holds exactly the written positions; the rest is still zero
    kc = model.layers[0].attention.kv_cache.k_cache.numpy()
    assert kc.shape == (1, 2, 16, 8) and np.abs(kc[:, :, :8]).min(axis=(0, 1, 3)).all() >= 0
    assert (kc[:, :, len(toks):] == 0).all() and (np.abs(kc[:, :, :len(toks)]).sum((0, 1, 3)) > 0).all()


@pytest.mark.parametrize("kw", [dict(temperature=0.0), dict(temperature=0.8, top_k=1)])
def test_greedy_generate_is_argmax_of_full_forward(kw):
    model = _sharp_model()
    seen = []
    seq, stats = generate(model, fw.tensor(PROMPT, dtype=fw.int), 8, interactive=False,
                          draft_model=None, callback=lambda t: seen.append(int(t.item())), **kw)
    out = seq.tolist()
    assert out[:len(PROMPT)] == PROMPT and len(out) == len(PROMPT) + 8 and seq.dtype == fw.int32
    for t in range(len(PROMPT), len(out)):
        assert out[t] == int(np.argmax(_np_forward(model, out[:t])[-1])), (t, out)
    assert seen == out[len(PROMPT) + 1:]


def test_sampling_respects_top_k_and_seed():
    fw.manual_seed(0)
    logits = fw.randn(1, 1, 64)
    probs = logits_to_probs(logits[0, -1], temperature=0.7, top_k=5)
    p = probs.numpy()
    top5 = np.argsort(logits[0, -1].numpy())[-5:]
    assert (p[np.setdiff1d(np.arange(64), top5)] == 0).all()
    ref = np.exp(logits[0, -1].numpy()[top5] / 0.7)
    np.testing.assert_allclose(p[top5], ref / ref.sum(), rtol=1e-5)
    fw.manual_seed(3)
    draws = [int(multinomial_sample_one_no_sync(probs).item()) for _ in range(400)]
    assert set(draws) <= set(top5.tolist()) and len(set(draws)) >= 4
    freq = np.bincount(draws, minlength=64)[top5] / 400  # exponential race = categorical
    assert np.abs(freq - p[top5]).max() < 0.08, (freq, p[top5])
    runs = []
    for seed in (7, 7, 8):
        model = _model()
        fw.manual_seed(seed)
        runs.append(generate(model, fw.tensor(PROMPT, dtype=fw.int), 8, interactive=False,
                             draft_model=None, temperature=0.8, top_k=5)[0].tolist())
    assert runs[0] == runs[1] and runs[0] != runs[2]


def _generate_with(compiled_names, kw, new=10, draft=None, k=3, **compile_kw):
    """generate() with the module-level functions in ``compiled_names`` swapped for their
    fw.compile'd versions, as generate.py's main() rebinds its globals."""
    g = globals()
    saved = {n: g[n] for n in compiled_names}
    try:
        for n in compiled_names:
            g[n] = torch.compile(saved[n], **compile_kw.get(n, {}))
        model = _sharp_model()
        draft_model = model if draft == "self" else None if draft in (None, "noisy") else _model(draft, 1)
        if draft == "noisy":  # the target with perturbed output weights: agrees only sometimes
            draft_model = _sharp_model()
            with torch.no_grad():
                draft_model.output.weight.add_(torch.randn(draft_model.output.weight.shape, generator=torch.Generator().manual_seed(2)) * 0.05)
        fw.manual_seed(11)
        seq, stats = generate(model, fw.tensor(PROMPT, dtype=fw.int), new, interactive=False,
                              draft_model=draft_model, speculate_k=k, **kw)
        stats["k_cache"] = model.layers[-1].attention.kv_cache.k_cache.numpy().copy()
        return seq.tolist(), stats, {n: g[n] for n in compiled_names}
    finally:
        g.update(saved)


@pytest.mark.parametrize("kw", [dict(temperature=0.0), dict(temperature=0.8, top_k=5)])
@pytest.mark.parametrize("mode", ["reduce-overhead", "always"])
def test_compiled_decode_one_token_matches_eager_without_recompiles(kw, mode):
    eager, st_e, _ = _generate_with([], kw)
    comp, st_c, fns = _generate_with(["decode_one_token"], kw, decode_one_token=dict(mode=mode, fullgraph=True))
    assert comp == eager
    np.testing.assert_allclose(st_c["k_cache"], st_e["k_cache"], rtol=1e-5, atol=1e-6)
    st = fns["decode_one_token"].stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0 and st["graph_breaks"] == [], st
    assert st["calls"] == 9 and st["eager_reason"] is None, st
    if mode == "always":
        assert st["cache_hits"] == 8 and st["eager_calls"] == 0, st


def test_compiled_prefill_dynamic_and_speculative_model_forward():
    kw = dict(temperature=0.0)
    eager, _, _ = _generate_with([], kw, new=16)
    comp, _, fns = _generate_with(["prefill", "decode_one_token"], kw, new=16,
                                  prefill=dict(fullgraph=True, dynamic=True, mode="always"),
                                  decode_one_token=dict(mode="always", fullgraph=True))
    assert comp == eager and fns["prefill"].stats()["eager_calls"] == 0
    both = dict(model_forward=dict(mode="always", fullgraph=True),
                decode_one_token=dict(mode="always", fullgraph=True))
    spec, stats, fns = _generate_with(["model_forward", "decode_one_token"], kw, new=16, draft="noisy", **both)
    assert spec == eager and _mixed(stats["accept_counts"])
    st = fns["model_forward"].stats()  # a second module (the draft) is a second entry
    assert st["captures"] == 2 and st["eager_calls"] == 0 and "value of argument" in st["recompiles"][0], st
    assert fns["decode_one_token"].stats()["num_recompiles"] == 0
    spec, stats, fns = _generate_with(["model_forward", "decode_one_token"], kw, new=16, draft="self", **both)
    assert spec == eager and stats["accept_counts"] == [0, 0, 0, 4]
    # k+1 target tokens, then 1 draft token (sizes 0/1 are specialized, as torch), then dynamic
    assert fns["model_forward"].stats()["recompiles"] == [
        "shape of x changed ([1, 4] -> [1, 1]) -> dynamic", "shape of x changed ([1, 1] -> [1, *])"]


def _mixed(counts):
    """Rounds that rejected the first draft token and rounds that accepted some."""
    return counts[0] > 0 and sum(counts[1:]) > 0


def test_speculative_decode_greedy_equals_target_greedy():
    kw = dict(temperature=0.0)
    target, _, _ = _generate_with([], kw, new=16)
    for draft, check in (("fw-draft", lambda c: c[0] > 0), ("noisy", _mixed), ("self", lambda c: c == [0, 0, 0, 4])):
        out, stats, _ = _generate_with([], kw, new=16, draft=draft, k=3)
        assert out == target, draft  # greedy speculation is exact, whatever the draft
        assert check(stats["accept_counts"]), (draft, stats)
    sampled, stats, _ = _generate_with([], dict(temperature=0.8, top_k=5), new=16, draft="noisy", k=3)
    assert len(sampled) == len(PROMPT) + 16 and max(sampled) < 64 and sum(stats["accept_counts"]) >= 4


def _split_wqkv_state_dict(model):
    """A checkpoint in the original Llama layout: separate wq / wk / wv per layer."""
    cfg, sd = model.config, {}
    kv = cfg.n_local_heads * cfg.head_dim
    for key, v in model.state_dict().items():
        if key.endswith("wqkv.weight"):
            p = key[: -len("wqkv.weight")]
            wq, wk, wv = v.split([cfg.dim, kv, kv])
            sd[p + "wq.weight"], sd[p + "wk.weight"], sd[p + "wv.weight"] = wq.clone(), wk.clone(), wv.clone()
        else:
            sd[key] = v.clone()
    return sd


def test_load_hook_fuses_wq_wk_wv_into_wqkv(tmp_path):
    src = _model()
    sd = _split_wqkv_state_dict(src)
    assert "layers.1.attention.wk.weight" in sd and "layers.1.attention.wqkv.weight" not in sd
    checkpoint_path = tmp_path / "model.pth"
    torch.save(sd, str(checkpoint_path))
    # generate.py's _load_model: build on the meta device, load with assign=True
    with torch.device('meta'):
        model = Transformer.from_name("fw-tiny")
    assert model.output.weight.device.type == "meta"
    checkpoint = torch.load(str(checkpoint_path), mmap=True, weights_only=True)
    result = model.load_state_dict(checkpoint, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    model = model.to(device="cpu", dtype=torch.float32).eval()
    for key, v in src.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key].numpy(), v.numpy(), err_msg=key)
    # and into an existing model with the default strict load
    fresh = _model(seed=5)
    fresh.load_state_dict(_split_wqkv_state_dict(src))
    np.testing.assert_array_equal(fresh.layers[0].attention.wqkv.weight.detach().numpy(),
                                  src.layers[0].attention.wqkv.weight.detach().numpy())
    toks = [4, 8, 15, 16, 23, 42]
    model.setup_caches(1, 8)
    with torch.no_grad():
        got = model(torch.tensor([toks]), torch.arange(len(toks)))[0].numpy()
    np.testing.assert_allclose(got, _np_forward(src, toks), rtol=1e-4, atol=1e-5)


def test_onnx_export_of_prefill_forward(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _model()
    model.setup_caches(max_batch_size=1, max_seq_length=16)
    idx, pos = torch.tensor([[3, 7, 1, 60, 12]]), torch.arange(5)
    path = str(tmp_path / "prefill.onnx")
    with pytest.warns(UserWarning, match="kv_cache.k_cache"):
        fw.onnx.export(model, (idx, pos), path, input_names=["idx", "input_pos"], output_names=["logits"],
                       dynamic_axes={"idx": {1: "seq"}, "input_pos": {0: "seq"}, "logits": {1: "seq"}})
    sess = ort.InferenceSession(path)
    for toks in ([3, 7, 1, 60, 12], [9, 2, 44, 5, 6, 7, 1, 30]):
        (out,) = sess.run(None, {"idx": np.array([toks], np.int64), "input_pos": np.arange(len(toks))})
        np.testing.assert_allclose(out[0], _np_forward(model, toks), rtol=1e-4, atol=1e-5)


class IndexCopyKVCache(KVCache):
    """The KV cache update written with ``index_copy_`` (a later gpt-fast spelling)."""

    def update(self, input_pos, k_val, v_val):
        k_out = self.k_cache
        v_out = self.v_cache
        # generate.py's decode positions are int32; index_copy_ takes int64 only (as torch)
        k_out.index_copy_(2, input_pos.long(), k_val)
        v_out.index_copy_(2, input_pos.long(), v_val)
        return k_out, v_out


def test_index_copy_kv_cache_eager_and_compiled():
    kw = dict(temperature=0.0)
    ref, _, _ = _generate_with([], kw, new=8)
    g = globals()
    saved = g["KVCache"]
    try:
        g["KVCache"] = IndexCopyKVCache
        eager, _, _ = _generate_with([], kw, new=8)
        comp, _, fns = _generate_with(["decode_one_token"], kw, new=8,
                                      decode_one_token=dict(mode="always", fullgraph=True))
    finally:
        g["KVCache"] = saved
    assert eager == ref and comp == ref
    with pytest.raises(fw.errors.DTypeError, match="index_copy.*int64"):
        torch.zeros(1, 2, 4, 3).index_copy_(2, torch.tensor([1], dtype=torch.int), torch.ones(1, 2, 1, 3))
    assert fns["decode_one_token"].stats()["num_recompiles"] == 0
