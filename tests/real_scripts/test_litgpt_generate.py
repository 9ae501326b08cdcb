# ruff: noqa: E501  (the ported code's own lines are kept as written)
"""litgpt/generate/base.py's decoding (``_litgpt_generate.py``) on the tiny litgpt models
of test_litgpt.py, with token ids in place of a tokenizer: greedy generation against
NumPy argmaxes of full forward passes, top-k / top-p sampling against NumPy, the
exponential-race sampler that runs under ``torch.compile``, batched generation, and
generate.py main()'s ``next_token = torch.compile(next_token, mode="reduce-overhead")``.
"""

import numpy as np
import pytest

import framework as fw

from . import _litgpt_generate as G
from ._litgpt_generate import batched_generate_fn, generate, multinomial_num_samples_1, sample, sample_top_p
from ._litgpt_numpy import np_gpt
from ._litgpt_utils import tiny_gpt

torch = fw  # the original's ``torch.xxx`` calls read as ``fw.xxx``

PROMPT = [3, 17, 5, 40, 9]


def sharp_model(arch="llama3"):
    """A tiny model whose next token depends on the context (attention scaled up)."""
    model = tiny_gpt(arch).eval()
    with torch.no_grad():
        for block in model.transformer.h:
            block.attn.qkv.weight.mul_(3.0)
            block.attn.proj.weight.mul_(3.0)
    return model


def greedy_reference(model, prompt, n):
    out = list(prompt)
    for _ in range(n):
        out.append(int(np.argmax(np_gpt(model, np.array([out]))[0, -1])))
    return out


@pytest.mark.parametrize("arch", ["llama3", "pythia", "phi2", "mistral"])
def test_greedy_generate_is_argmax_of_full_forward(arch):
    """Mistral's sliding window (4) is shorter than the generation: the ring-buffer KV
    cache; its prompt is 4 tokens (a longer prefill raises, as litgpt's KVCache says)."""
    prompt = PROMPT[:4] if arch == "mistral" else PROMPT
    P = len(prompt)
    model = sharp_model(arch)
    model.max_seq_length = 14
    model.set_kv_cache(batch_size=1)
    out = generate(model, torch.tensor(prompt), 14, temperature=0.0)
    assert out.dtype == torch.int64 and out.shape == (14,)
    want = greedy_reference(model, prompt, 14 - P)
    assert out.tolist() == want
    assert len(set(want[P:])) > 2  # the continuation is not one repeated token
    # eos stops early (and is included); include_prompt=False drops the prompt
    model.set_kv_cache(batch_size=1)
    eos = want[P + 2]
    short = generate(model, torch.tensor(prompt), 14, temperature=0.0, eos_id=eos, include_prompt=False)
    assert short.tolist() == want[P:want.index(eos, P) + 1]
    if arch == "mistral":
        model.set_kv_cache(batch_size=1)
        with pytest.raises(ValueError, match="exceeds the sliding window size"):
            generate(model, torch.tensor(PROMPT), 14, temperature=0.0)


def test_batched_generate_matches_single_prompts():
    model = sharp_model()
    model.max_seq_length = 12
    prompts = torch.tensor([PROMPT, [1, 2, 44, 8, 30]])
    model.set_kv_cache(batch_size=2)
    steps = list(batched_generate_fn(model, prompts, 12, sample_args=dict(temperature=0.0), include_prompt=False, include_eos=True))
    assert len(steps) == 7
    for b in range(2):
        got = [int(step[b].item()) for step in steps]
        assert got == greedy_reference(model, prompts[b].tolist(), 7)[5:], b


def test_sample_top_k_and_top_p_against_numpy():
    logits = torch.randn(1, 3, 20, generator=torch.Generator().manual_seed(0))
    last = logits[0, -1].numpy().astype(np.float64)
    # top_p alone: drop the tokens whose ascending cumulative probability is <= 1 - top_p
    kept = sample_top_p(logits[0, -1], 0.6).numpy()
    order = np.argsort(last)
    cum = np.cumsum(np.exp(last[order]) / np.exp(last).sum())
    drop = order[cum <= 0.4]
    assert np.isneginf(kept[drop]).all() and np.isfinite(np.delete(kept, drop)).all() and 0 < len(drop) < 19
    assert np.isfinite(sample_top_p(logits[0, -1], 0.0).numpy()).sum() == 1  # the argmax always stays
    assert int(sample(logits, temperature=0.0).item()) == int(np.argmax(last))
    with pytest.raises(ValueError, match="top_p must be in"):
        sample(logits, top_p=1.5)
    # top_k=4, temperature 0.7, top_p 0.9: the draws' frequencies
    top4 = np.argsort(last)[-4:]
    p = np.exp(last[top4] / 0.7)
    p /= p.sum()
    keep = np.argsort(p)[::-1][: np.searchsorted(np.cumsum(np.sort(p)[::-1]), 0.9) + 1]
    want = np.zeros(20)
    want[top4[keep]] = p[keep] / p[keep].sum()
    torch.manual_seed(1)
    draws = [int(sample(logits, temperature=0.7, top_k=4, top_p=0.9).item()) for _ in range(600)]
    freq = np.bincount(draws, minlength=20) / 600
    assert set(np.nonzero(freq)[0]) <= set(top4[keep].tolist())
    assert np.abs(freq - want).max() < 0.06, (freq, want)


def test_compiled_sampler_is_the_exponential_race():
    """Under torch.compile ``multinomial_num_samples_1`` draws ``argmax(p / Exp(1))``
    instead of ``torch.multinomial``: the same categorical distribution."""
    seen = []

    def draw(probs):
        seen.append(torch._dynamo.is_compiling())
        return multinomial_num_samples_1(probs)

    compiled = torch.compile(draw, mode="always", fullgraph=True)
    probs = torch.tensor([0.1, 0.0, 0.6, 0.3])
    torch.manual_seed(0)
    draws = [int(compiled(probs).item()) for _ in range(800)]
    assert seen == [True] and compiled.stats()["captures"] == 1
    freq = np.bincount(draws, minlength=4) / 800
    assert freq[1] == 0 and np.abs(freq - probs.numpy()).max() < 0.05, freq
    eager = [int(multinomial_num_samples_1(probs).item()) for _ in range(400)]
    assert np.abs(np.bincount(eager, minlength=4) / 400 - probs.numpy()).max() < 0.06


def test_seeded_sampling_is_reproducible():
    model = sharp_model()
    model.max_seq_length = 12
    runs = []
    for seed in (7, 7, 8):
        model.set_kv_cache(batch_size=1)
        torch.manual_seed(seed)
        runs.append(generate(model, torch.tensor(PROMPT), 12, temperature=1.0, top_k=10).tolist())
    assert runs[0] == runs[1] and runs[0] != runs[2] and runs[0][:5] == PROMPT


def test_compiled_next_token_matches_eager():
    """generate.py main(): ``next_token = torch.compile(next_token, mode="reduce-overhead")``
    (generate_fn looks ``next_token`` up as a module global). The prefill and the first
    decode step capture; after that ``input_pos_maxp1`` (a Python int that grows by one
    each step and slices the cache) is dynamic, so decoding does not recompile per token."""
    model = sharp_model()
    model.max_seq_length = 16
    model.set_kv_cache(batch_size=1)
    eager = generate(model, torch.tensor(PROMPT), 16, temperature=0.0).tolist()
    saved = G.next_token
    G.next_token = torch.compile(saved, mode="reduce-overhead")
    try:
        model.set_kv_cache(batch_size=1)
        out = generate(model, torch.tensor(PROMPT), 16, temperature=0.0).tolist()
        st = G.next_token.stats()
    finally:
        G.next_token = saved
    assert out == eager
    assert st["graph_breaks"] == [] and st["eager_reason"] is None, st
    assert st["captures"] == 2 and st["recompiles"] == ["shape of input_pos changed ([5] -> [1]) -> dynamic"], st


def test_compiled_next_token_with_a_cache_in_another_dtype():
    """``set_kv_cache(dtype=torch.bfloat16)`` with float32 activations: KVCache.forward
    rebinds its buffers (``self.k = self.k.to(k.dtype)``) inside the compiled function.
    fw used to leave the capture's data-less tensor in ``_buffers`` (a wrong answer or a
    crash on the next call); the rebinding is now replayed after each call."""
    runs = []
    for compiled in (False, True):
        model = sharp_model()
        model.max_seq_length = 16
        saved = G.next_token
        if compiled:
            G.next_token = torch.compile(saved, mode="always")
        try:
            outs = []
            for prompt in (PROMPT, [7, 7, 1, 30, 2]):
                model.set_kv_cache(batch_size=1, dtype=torch.bfloat16)
                outs.append(generate(model, torch.tensor(prompt), 14, temperature=0.0).tolist())
            cache = model.transformer.h[1].attn.kv_cache
            assert cache.k.dtype == torch.float32 and cache.k._data is not None
            runs.append((outs, cache.k.numpy().copy()))
        finally:
            G.next_token = saved
    assert runs[0][0] == runs[1][0]
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-5, atol=1e-6)
