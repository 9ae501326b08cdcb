# ruff: noqa: E501, F841, UP006, UP015, UP035, UP045  (the ported script's own lines are kept as written)
"""meta-llama/llama ported to ``fw``: ``llama/model.py`` (in _llama_model.py, fairscale's
parallel layers at world size 1) and ``llama/generation.py``'s ``Llama.build`` /
``generate`` / ``text_completion`` / ``chat_completion`` / ``sample_top_p``.

Changed beyond the rename: ``device="cuda"`` / ``torch.cuda.HalfTensor`` read ``DEVICE`` /
``torch.HalfTensor`` (the tests run on the cpu); ``build`` leaves out the NCCL process group,
the fairscale model-parallel initialisation and ``torch.cuda.set_device``; the SentencePiece
tokenizer is a toy character tokenizer with the same interface (bos 1, eos 2, pad -1).
llama is inference-only: the training tests write a short loop around the model (it calls
``Transformer.forward.__wrapped__``, the forward without its ``@torch.inference_mode()``).
"""

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import List, Literal, Optional, Tuple, TypedDict

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F

from ._checks import assert_stats
from ._llama_model import (DEVICE, ModelArgs, RMSNorm, Transformer, apply_rotary_emb,
                           precompute_freqs_cis, repeat_kv)

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``


# ---- llama/tokenizer.py: a character tokenizer with SentencePiece's interface -------------------

class Tokenizer:
    """tokenizing and encoding/decoding text (characters instead of SentencePiece)."""
    CHARS = " abcdefghijklmnopqrstuvwxyz.,[]/<>SYINT\n"

    def __init__(self, model_path: str = ""):
        self.n_words: int = 3 + len(self.CHARS)
        self.bos_id: int = 1
        self.eos_id: int = 2
        self.pad_id: int = -1

    def encode(self, s: str, bos: bool, eos: bool) -> List[int]:
        assert type(s) is str
        t = [3 + self.CHARS.index(c) for c in s if c in self.CHARS]
        if bos:
            t = [self.bos_id] + t
        if eos:
            t = t + [self.eos_id]
        return t

    def decode(self, t: List[int]) -> str:
        return "".join(self.CHARS[i - 3] for i in t if i >= 3)


# ---- llama/generation.py ----------------------------------------------------------------------

Role = Literal["system", "user", "assistant"]


class Message(TypedDict):
    role: Role
    content: str


Dialog = List[Message]

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"

SPECIAL_TAGS = [B_INST, E_INST, "<<SYS>>", "<</SYS>>"]
UNSAFE_ERROR = "Error: special tags are not allowed as part of the prompt."


class Llama:
    @staticmethod
    def build(
        ckpt_dir: str,
        tokenizer_path: str,
        max_seq_len: int,
        max_batch_size: int,
        model_parallel_size: Optional[int] = None,
        seed: int = 1,
    ) -> "Llama":
        if model_parallel_size is None:
            model_parallel_size = int(os.environ.get("WORLD_SIZE", 1))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))

        # seed must be the same in all processes
        torch.manual_seed(seed)

        if local_rank > 0:
            sys.stdout = open(os.devnull, "w")

        start_time = time.time()
        checkpoints = sorted(Path(ckpt_dir).glob("*.pth"))
        assert len(checkpoints) > 0, f"no checkpoint files found in {ckpt_dir}"
        assert model_parallel_size == len(
            checkpoints
        ), f"Loading a checkpoint for MP={len(checkpoints)} but world size is {model_parallel_size}"
        ckpt_path = checkpoints[0]  # get_model_parallel_rank()
        checkpoint = torch.load(ckpt_path, map_location="cpu")
        with open(Path(ckpt_dir) / "params.json", "r") as f:
            params = json.loads(f.read())

        model_args: ModelArgs = ModelArgs(
            max_seq_len=max_seq_len,
            max_batch_size=max_batch_size,
            **params,
        )
        tokenizer = Tokenizer(model_path=tokenizer_path)
        model_args.vocab_size = tokenizer.n_words
        torch.set_default_tensor_type(torch.HalfTensor)  # torch.cuda.HalfTensor
        model = Transformer(model_args)
        model.load_state_dict(checkpoint, strict=False)
        print(f"Loaded in {time.time() - start_time:.2f} seconds")

        return Llama(model, tokenizer)

    def __init__(self, model: Transformer, tokenizer: Tokenizer):
        self.model = model
        self.tokenizer = tokenizer

    @torch.inference_mode()
    def generate(
        self,
        prompt_tokens: List[List[int]],
        max_gen_len: int,
        temperature: float = 0.6,
        top_p: float = 0.9,
        logprobs: bool = False,
        echo: bool = False,
    ) -> Tuple[List[List[int]], Optional[List[List[float]]]]:
        params = self.model.params
        bsz = len(prompt_tokens)
        assert bsz <= params.max_batch_size, (bsz, params.max_batch_size)

        min_prompt_len = min(len(t) for t in prompt_tokens)
        max_prompt_len = max(len(t) for t in prompt_tokens)
        assert max_prompt_len <= params.max_seq_len
        total_len = min(params.max_seq_len, max_gen_len + max_prompt_len)

        pad_id = self.tokenizer.pad_id
        tokens = torch.full((bsz, total_len), pad_id, dtype=torch.long, device=DEVICE)
        for k, t in enumerate(prompt_tokens):
            tokens[k, : len(t)] = torch.tensor(t, dtype=torch.long, device=DEVICE)
        if logprobs:
            token_logprobs = torch.zeros_like(tokens, dtype=torch.float)

        prev_pos = 0
        eos_reached = torch.tensor([False] * bsz, device=DEVICE)
        input_text_mask = tokens != pad_id
        if min_prompt_len == total_len:
            logits = self.model.forward(tokens, prev_pos)
            token_logprobs = -F.cross_entropy(
                input=logits.transpose(1, 2),
                target=tokens,
                reduction="none",
                ignore_index=pad_id,
            )

        for cur_pos in range(min_prompt_len, total_len):
            logits = self.model.forward(tokens[:, prev_pos:cur_pos], prev_pos)
            if temperature > 0:
                probs = torch.softmax(logits[:, -1] / temperature, dim=-1)
                next_token = sample_top_p(probs, top_p)
            else:
                next_token = torch.argmax(logits[:, -1], dim=-1)

            next_token = next_token.reshape(-1)
            # only replace token if prompt has already been generated
            next_token = torch.where(
                input_text_mask[:, cur_pos], tokens[:, cur_pos], next_token
            )
            tokens[:, cur_pos] = next_token
            if logprobs:
                token_logprobs[:, prev_pos + 1 : cur_pos + 1] = -F.cross_entropy(
                    input=logits.transpose(1, 2),
                    target=tokens[:, prev_pos + 1 : cur_pos + 1],
                    reduction="none",
                    ignore_index=pad_id,
                )
            eos_reached |= (~input_text_mask[:, cur_pos]) & (
                next_token == self.tokenizer.eos_id
            )
            prev_pos = cur_pos
            if all(eos_reached):
                break

        if logprobs:
            token_logprobs = token_logprobs.tolist()
        out_tokens, out_logprobs = [], []
        for i, toks in enumerate(tokens.tolist()):
            # cut to max gen len
            start = 0 if echo else len(prompt_tokens[i])
            toks = toks[start : len(prompt_tokens[i]) + max_gen_len]
            probs = None
            if logprobs:
                probs = token_logprobs[i][start : len(prompt_tokens[i]) + max_gen_len]
            # cut to eos tok if any
            if self.tokenizer.eos_id in toks:
                eos_idx = toks.index(self.tokenizer.eos_id)
                toks = toks[:eos_idx]
                probs = probs[:eos_idx] if logprobs else None
            out_tokens.append(toks)
            out_logprobs.append(probs)
        return (out_tokens, out_logprobs if logprobs else None)

    def text_completion(
        self,
        prompts: List[str],
        temperature: float = 0.6,
        top_p: float = 0.9,
        max_gen_len: Optional[int] = None,
        logprobs: bool = False,
        echo: bool = False,
    ):
        if max_gen_len is None:
            max_gen_len = self.model.params.max_seq_len - 1
        prompt_tokens = [self.tokenizer.encode(x, bos=True, eos=False) for x in prompts]
        generation_tokens, generation_logprobs = self.generate(
            prompt_tokens=prompt_tokens,
            max_gen_len=max_gen_len,
            temperature=temperature,
            top_p=top_p,
            logprobs=logprobs,
            echo=echo,
        )
        if logprobs:
            return [
                {
                    "generation": self.tokenizer.decode(t),
                    "tokens": [self.tokenizer.decode(x) for x in t],
                    "logprobs": logprobs_i,
                }
                for t, logprobs_i in zip(generation_tokens, generation_logprobs)
            ]
        return [{"generation": self.tokenizer.decode(t)} for t in generation_tokens]

    def chat_completion(
        self,
        dialogs: List[Dialog],
        temperature: float = 0.6,
        top_p: float = 0.9,
        max_gen_len: Optional[int] = None,
        logprobs: bool = False,
    ):
        if max_gen_len is None:
            max_gen_len = self.model.params.max_seq_len - 1
        prompt_tokens = []
        unsafe_requests = []
        for dialog in dialogs:
            unsafe_requests.append(
                any([tag in msg["content"] for tag in SPECIAL_TAGS for msg in dialog])
            )
            if dialog[0]["role"] == "system":
                dialog = [
                    {
                        "role": dialog[1]["role"],
                        "content": B_SYS
                        + dialog[0]["content"]
                        + E_SYS
                        + dialog[1]["content"],
                    }
                ] + dialog[2:]
            assert all([msg["role"] == "user" for msg in dialog[::2]]) and all(
                [msg["role"] == "assistant" for msg in dialog[1::2]]
            ), (
                "model only supports 'system', 'user' and 'assistant' roles, "
                "starting with 'system', then 'user' and alternating (u/a/u/a/u...)"
            )
            dialog_tokens: List[int] = sum(
                [
                    self.tokenizer.encode(
                        f"{B_INST} {(prompt['content']).strip()} {E_INST} {(answer['content']).strip()} ",
                        bos=True,
                        eos=True,
                    )
                    for prompt, answer in zip(
                        dialog[::2],
                        dialog[1::2],
                    )
                ],
                [],
            )
            assert (
                dialog[-1]["role"] == "user"
            ), f"Last message must be from user, got {dialog[-1]['role']}"
            dialog_tokens += self.tokenizer.encode(
                f"{B_INST} {(dialog[-1]['content']).strip()} {E_INST}",
                bos=True,
                eos=False,
            )
            prompt_tokens.append(dialog_tokens)

        generation_tokens, generation_logprobs = self.generate(
            prompt_tokens=prompt_tokens,
            max_gen_len=max_gen_len,
            temperature=temperature,
            top_p=top_p,
            logprobs=logprobs,
        )
        return [
            {
                "generation": {
                    "role": "assistant",
                    "content": self.tokenizer.decode(t) if not unsafe else UNSAFE_ERROR,
                }
            }
            for t, unsafe in zip(generation_tokens, unsafe_requests)
        ]


def sample_top_p(probs, p):
    """
    Perform top-p (nucleus) sampling on a probability distribution.
    """
    probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True)
    probs_sum = torch.cumsum(probs_sort, dim=-1)
    mask = probs_sum - probs_sort > p
    probs_sort[mask] = 0.0
    probs_sort.div_(probs_sort.sum(dim=-1, keepdim=True))
    next_token = torch.multinomial(probs_sort, num_samples=1)
    next_token = torch.gather(probs_idx, -1, next_token)
    return next_token


# ---- a training loop around the inference-only model --------------------------------------------

ARGS = dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=43, multiple_of=16,
            max_batch_size=4, max_seq_len=24)
TEXT = "the cat sat on the mat. the dog sat on the log. "


def make_model(seed=0, **kw):
    torch.manual_seed(seed)
    return Transformer(ModelArgs(**{**ARGS, **kw}))


def batches(tok, n, bsz=4, seqlen=16, seed=0):
    """Random windows of the encoded TEXT (next-token targets are the window shifted by one)."""
    ids = np.array(tok.encode(TEXT * 4, bos=False, eos=False))
    g = np.random.default_rng(seed)
    for _ in range(n):
        ix = g.integers(0, len(ids) - seqlen - 1, bsz)
        yield torch.tensor(np.stack([ids[i:i + seqlen + 1] for i in ix]))


def train_step(model, optimizer, tokens):
    """One AdamW step of next-token cross-entropy through Transformer.forward."""
    # the KV cache is inference state; written under autograd it would tie each step's graph
    # to the last one (backward would then raise "a second time", as in PyTorch): cut it
    for layer in model.layers:
        layer.attention.cache_k.detach_()
        layer.attention.cache_v.detach_()
    logits = Transformer.forward.__wrapped__(model, tokens[:, :-1], 0)  # no inference_mode
    loss = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:])
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss


def train(model, steps, step_fn=None, lr=1e-2):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    step_fn = step_fn or train_step
    return [float(step_fn(model, optimizer, t)) for t in batches(Tokenizer(), steps)], optimizer


# ---- tests ------------------------------------------------------------------------------------

def _np(t):
    return t.detach().numpy().astype(np.float64)


def _np_rope(x, start=0):
    hd = x.shape[-1]
    ang = np.outer(np.arange(start, start + x.shape[1]), 1.0 / 10000.0 ** (np.arange(0, hd, 2) / hd))
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * ang)[None, :, None, :]
    return np.stack([z.real, z.imag], -1).reshape(x.shape)


def _np_forward(model, tokens):
    """Transformer.forward(tokens, 0) in NumPy float64 (causal GQA attention, RoPE, SwiGLU)."""
    p = {k: _np(v) for k, v in model.state_dict().items()}
    a = model.params
    hd, rep = a.dim // a.n_heads, a.n_heads // a.n_kv_heads
    tok = tokens.numpy()
    B, T = tok.shape

    def rms(x, w):
        return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + a.norm_eps) * w

    h = p["tok_embeddings.weight"][tok]
    causal = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(a.n_layers):
        pre = f"layers.{i}."
        x = rms(h, p[pre + "attention_norm.weight"])
        q = _np_rope((x @ p[pre + "attention.wq.weight"].T).reshape(B, T, a.n_heads, hd))
        k = _np_rope((x @ p[pre + "attention.wk.weight"].T).reshape(B, T, a.n_kv_heads, hd))
        v = (x @ p[pre + "attention.wv.weight"].T).reshape(B, T, a.n_kv_heads, hd)
        k, v = np.repeat(k, rep, 2), np.repeat(v, rep, 2)
        q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + causal
        s = np.exp(s - s.max(-1, keepdims=True))
        o = (s / s.sum(-1, keepdims=True)) @ v
        h = h + o.transpose(0, 2, 1, 3).reshape(B, T, -1) @ p[pre + "attention.wo.weight"].T
        x = rms(h, p[pre + "ffn_norm.weight"])
        g = x @ p[pre + "feed_forward.w1.weight"].T
        f = (g / (1 + np.exp(-g))) * (x @ p[pre + "feed_forward.w3.weight"].T)
        h = h + f @ p[pre + "feed_forward.w2.weight"].T
    return rms(h, p["norm.weight"]) @ p["output.weight"].T


def test_structure_and_fairscale_stand_ins():
    model = make_model()
    att = model.layers[0].attention
    assert (att.n_local_heads, att.n_local_kv_heads, att.n_rep, att.head_dim) == (4, 2, 2, 8)
    assert att.wk.weight.shape == (16, 32) and att.wo.weight.shape == (32, 32)
    # hidden_dim = multiple_of * ceil(int(2 * 4 * dim / 3) / multiple_of) = 16 * ceil(85 / 16)
    assert model.layers[0].feed_forward.w1.weight.shape == (96, 32)
    assert att.cache_k.shape == (4, 24, 2, 8) and float(att.cache_k.abs().sum()) == 0.0
    assert "layers.0.attention.cache_k" not in model.state_dict()  # plain attributes, not buffers
    assert model.freqs_cis.shape == (48, 4) and model.freqs_cis.dtype == fw.complex64
    assert sorted(model.state_dict()) == sorted(n for n, _ in model.named_parameters())


def test_rmsnorm_rope_and_repeat_kv_match_numpy():
    fw.manual_seed(0)
    norm = RMSNorm(8, eps=1e-5)
    norm.weight.data.normal_()
    x = fw.randn(3, 5, 8)
    xn = _np(x)
    ref = xn / np.sqrt((xn ** 2).mean(-1, keepdims=True) + 1e-5) * _np(norm.weight)
    np.testing.assert_allclose(norm(x).detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    assert norm(x.half()).dtype == fw.float32  # type_as(half) times the float32 weight

    head_dim, T = 8, 6
    freqs_cis = precompute_freqs_cis(head_dim, T)  # torch.polar(ones, angles): complex64
    ang = np.outer(np.arange(T), 1.0 / 10000.0 ** (np.arange(0, head_dim, 2) / head_dim))
    assert freqs_cis.dtype == fw.complex64 and freqs_cis.shape == (T, head_dim // 2)
    np.testing.assert_allclose(freqs_cis.numpy(), np.exp(1j * ang), rtol=1e-5, atol=1e-6)
    xq, xk = fw.randn(2, T, 4, head_dim), fw.randn(2, T, 2, head_dim)
    oq, ok = apply_rotary_emb(xq, xk, freqs_cis)
    for a, o in ((xq, oq), (xk, ok)):
        assert o.shape == a.shape and o.dtype == fw.float32
        np.testing.assert_allclose(o.numpy(), _np_rope(_np(a)), rtol=1e-5, atol=1e-5)
    oq16, _ = apply_rotary_emb(xq.half(), xk.half(), freqs_cis)
    assert oq16.dtype == fw.float16  # computed in complex64, cast back with type_as
    np.testing.assert_allclose(oq16.float().numpy(), oq.numpy(), rtol=1e-2, atol=1e-2)

    kv = fw.randn(2, 3, 2, 4)
    np.testing.assert_array_equal(repeat_kv(kv, 3).numpy(), np.repeat(kv.numpy(), 3, axis=2))
    assert repeat_kv(kv, 1) is kv


def test_forward_matches_numpy_and_is_inference_mode():
    model = make_model()
    for prm in model.parameters():  # weights larger than the init: attention is not uniform
        prm.data.normal_(0.0, 0.3)
    tokens = fw.randint(0, 43, (2, 9))
    out = model(tokens, 0)
    np.testing.assert_allclose(out.numpy(), _np_forward(model, tokens), rtol=1e-4, atol=1e-4)
    assert out.dtype == fw.float32 and not out.requires_grad and fw.is_inference(out)


def test_incremental_decoding_with_the_cache_equals_a_full_forward():
    model = make_model()
    for prm in model.parameters():
        prm.data.normal_(0.0, 0.3)
    tokens = fw.randint(0, 43, (3, 12))
    full = model(tokens, 0).numpy()
    # a prompt of 5, then one token at a time (mask None), then a chunk of 3 at start_pos 8
    # (the mask hstack-ed with zeros for the cached positions)
    parts = [model(tokens[:, :5], 0)]
    parts += [model(tokens[:, t:t + 1], t) for t in range(5, 8)]
    parts.append(model(tokens[:, 8:11], 8))
    parts.append(model(tokens[:, 11:], 11))
    np.testing.assert_allclose(fw.cat(parts, 1).numpy(), full, rtol=1e-5, atol=1e-5)
    # a smaller batch reads its rows of the cache only
    np.testing.assert_allclose(model(tokens[:2, 11:], 11).numpy(), full[:2, 11:], rtol=1e-5,
                               atol=1e-5)


def test_sample_top_p_matches_the_nucleus():
    probs = fw.tensor([[0.1, 0.5, 0.05, 0.3, 0.05], [0.2, 0.2, 0.2, 0.2, 0.2]])
    g = np.zeros((2, 5))
    fw.manual_seed(0)
    for _ in range(600):
        nt = sample_top_p(probs, 0.75)
        assert nt.shape == (2, 1) and nt.dtype == fw.int64
        g[0, nt[0, 0].item()] += 1
        g[1, nt[1, 0].item()] += 1
    # row 0: sorted 0.5, 0.3 | 0.1 ...: the mass before 0.1 is 0.8 > 0.75, so {1, 3} remain
    assert g[0, [0, 2, 4]].sum() == 0
    assert abs(g[0, 1] / 600 - 0.5 / 0.8) < 0.06
    # row 1 (ties): 4 of the 5 tokens remain (mass before the 5th is 0.8 > 0.75)
    assert (g[1] > 0).sum() == 4 and abs(g[1].max() / 600 - 0.25) < 0.06
    # the in-place edits happen on sort's output, not on probs
    np.testing.assert_array_equal(probs.numpy()[0], np.float32([0.1, 0.5, 0.05, 0.3, 0.05]))


def test_training_lowers_loss():
    model = make_model()
    losses, _ = train(model, 15)
    assert losses[0] == pytest.approx(math.log(43), rel=0.1) and losses[-1] < 0.6 * losses[0], losses


def test_compiled_training_step_matches_eager():
    m1 = make_model()
    l1, _ = train(m1, 4)
    m2 = make_model()
    step = fw.compile(train_step, mode="always")
    l2, _ = train(m2, 4, step_fn=step)
    assert_stats(step, eager_reason=None, captures=1, num_recompiles=0, graph_breaks=[])
    np.testing.assert_allclose(l2, l1, rtol=1e-4, atol=1e-5)
    for (n, a), (_, b) in zip(m1.named_parameters(), m2.named_parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=n)


def test_compiled_decoding_matches_eager():
    model = make_model()
    for prm in model.parameters():
        prm.data.normal_(0.0, 0.3)
    tokens = fw.randint(0, 43, (2, 10))
    full = model(tokens, 0).numpy()
    fwd = fw.compile(model.forward, mode="always")
    parts = [fwd(tokens[:, :4], 0)] + [fwd(tokens[:, t:t + 1], t) for t in range(4, 10)]
    np.testing.assert_allclose(fw.cat(parts, 1).numpy(), full, rtol=1e-5, atol=1e-5)
    st = fwd.stats()
    assert st["graph_breaks"] == [] and st["eager_reason"] is None, st
    # start_pos (a Python int slicing the cache and freqs_cis) becomes a symbolic int on its
    # second value, as with dynamo's automatic dynamic shapes: the prefill, then one
    # capture that serves every decoding position
    assert st["captures"] == 2 and st["recompiles"] == [
        "shape of tokens changed ([2, 4] -> [2, 1]) -> dynamic"], st
    assert "s0 + 1" in str(fwd.graph(tokens[:, 9:10], 9))  # the cache prefix's length


def _greedy_reference(model, prompt, n):
    toks = list(prompt)
    for _ in range(n):
        with fw.no_grad():
            logits = model(torch.tensor([toks]), 0)
        toks.append(int(logits[0, -1].argmax()))
    return toks


def test_generate_greedy_top_p_logprobs_and_echo():
    tok = Tokenizer()
    model = make_model()
    train(model, 15)
    llama = Llama(model, tok)
    prompts = ["the cat", "the do"]
    ptoks = [tok.encode(x, bos=True, eos=False) for x in prompts]
    out, lps = llama.generate(ptoks, max_gen_len=6, temperature=0, logprobs=True)
    for p, o in zip(ptoks, out):  # different prompt lengths: each row continues its own prompt
        assert p + o == _greedy_reference(model, p, 6)[:len(p) + len(o)] and len(o) == 6
    # logprobs: log-softmax of the full forward at each generated token
    for p, o, lp in zip(ptoks, out, lps):
        seq = torch.tensor([p + o])
        with fw.no_grad():
            logits = model(seq, 0)[0].numpy().astype(np.float64)
        ls = logits - logits.max(-1, keepdims=True)
        ls = ls - np.log(np.exp(ls).sum(-1, keepdims=True))
        want = [ls[len(p) + j - 1, o[j]] for j in range(6)]
        np.testing.assert_allclose(lp, want, rtol=1e-4, atol=1e-5)
    res = llama.text_completion(["the cat"], temperature=0, max_gen_len=6, echo=True)
    assert res[0]["generation"] == "the cat" + tok.decode(out[0])
    fw.manual_seed(1)
    a = llama.text_completion(prompts, temperature=0.8, top_p=0.9, max_gen_len=8)
    fw.manual_seed(1)
    b = llama.text_completion(prompts, temperature=0.8, top_p=0.9, max_gen_len=8)
    assert a == b and all(len(r["generation"]) <= 8 for r in a)
    # top_p -> 0 keeps only the most likely token: greedy
    c = llama.text_completion(["the cat"], temperature=0.8, top_p=1e-6, max_gen_len=6)
    assert c[0]["generation"] == tok.decode(out[0])


def test_generate_stops_at_eos_and_chat_completion():
    tok = Tokenizer()
    tok.eos_id = 0  # with the output layer zeroed every logit ties: argmax picks token 0
    model = make_model(max_seq_len=64, max_batch_size=2)
    with fw.no_grad():
        model.output.weight.zero_()
    llama = Llama(model, tok)
    out, _ = llama.generate([tok.encode("ab", bos=True, eos=False)], max_gen_len=5, temperature=0)
    assert out == [[]]  # cut at the eos
    dialogs = [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
               [{"role": "user", "content": "[INST] x"}]]
    res = llama.chat_completion(dialogs, temperature=0, max_gen_len=3)
    assert res[0]["generation"] == {"role": "assistant", "content": ""}
    assert res[1]["generation"]["content"] == UNSAFE_ERROR


@pytest.fixture
def restore_default_type():
    yield
    fw.set_default_dtype(fw.float32)
    fw.set_default_device(None)


def test_build_loads_a_checkpoint_in_half_precision(tmp_path, restore_default_type, capsys):
    model = make_model()
    train(model, 10)
    ckpt_dir = tmp_path / "llama-tiny"
    ckpt_dir.mkdir()
    sd = dict(model.state_dict())
    sd["rope.freqs"] = fw.ones(4)  # Meta's checkpoints carry it: strict=False skips it
    torch.save(sd, str(ckpt_dir / "consolidated.00.pth"))
    params = {k: v for k, v in ARGS.items() if k not in ("vocab_size", "max_batch_size", "max_seq_len")}
    (ckpt_dir / "params.json").write_text(json.dumps(params))

    with pytest.warns(UserWarning, match="set_default_tensor_type"):
        llama = Llama.build(str(ckpt_dir), "tokenizer.model", max_seq_len=24, max_batch_size=2)
    assert "Loaded in" in capsys.readouterr().out
    m = llama.model
    assert m.layers[0].attention.wq.weight.dtype == fw.float16 and m.freqs_cis.dtype == fw.complex64
    assert m.layers[0].attention.cache_k.dtype == fw.float16 and torch.zeros(1).dtype == fw.float16
    tokens = fw.randint(0, 43, (2, 8))
    out = m(tokens, 0)
    assert out.dtype == fw.float32  # self.output(h).float()
    ref = _np_forward(model, tokens)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0.05, atol=0.05)
    assert (out.numpy().argmax(-1) == ref.argmax(-1)).mean() > 0.9
    fw.set_default_dtype(fw.float32)
    res = llama.text_completion(["the cat"], temperature=0, max_gen_len=4)
    assert len(res[0]["generation"]) == 4


def test_gradcheck_float64(monkeypatch):
    # RMSNorm and apply_rotary_emb compute in x.float() (float32, as in PyTorch): finite
    # differences of a float64 model would see float32 rounding. Keep float64 throughout.
    monkeypatch.setattr(fw.Tensor, "float", lambda self: self)
    model = make_model(dim=8, n_layers=1, n_heads=2, n_kv_heads=1, vocab_size=5, multiple_of=4,
                       max_seq_len=4, max_batch_size=2).to(torch.float64)
    model.freqs_cis = model.freqs_cis.to(torch.complex128)
    tokens = fw.tensor([[0, 3, 1, 2], [4, 2, 2, 0]])
    names = ["layers.0.attention.wq.weight", "layers.0.attention.wk.weight",
             "layers.0.attention_norm.weight", "norm.weight"]
    params = dict(model.named_parameters())
    for n in names:
        params[n].data.normal_(0.0, 0.5)
    monkeypatch.setattr(Transformer, "forward", Transformer.forward.__wrapped__)

    def f(*ws):
        for layer in model.layers:
            layer.attention.cache_k = layer.attention.cache_k.detach()
            layer.attention.cache_v = layer.attention.cache_v.detach()
        logits = fw.func.functional_call(model, dict(zip(names, ws)), (tokens[:, :-1], 0))
        return F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:])

    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert fw.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_onnx_export_full_sequence_forward(tmp_path):
    """The complex RoPE (view_as_complex, a multiply by the torch.polar table, view_as_real)
    exports as real (..., 2) pairs; the KV-cache writes are in-place updates ONNX drops
    (the forward reads back what it wrote, so the outputs are right)."""
    ort = pytest.importorskip("onnxruntime")
    model = make_model()
    model.eval()
    path = str(tmp_path / "llama.onnx")
    with pytest.warns(UserWarning, match="updates .* in place"):
        fw.onnx.export(model, (fw.randint(0, 43, (2, 8)), 0), path, input_names=["tokens"],
                       output_names=["logits"], dynamic_axes={"tokens": {0: "B"}})
    sess = ort.InferenceSession(path)
    for b in (2, 4):
        tokens = fw.randint(0, 43, (b, 8))
        (y,) = sess.run(None, {"tokens": tokens.numpy()})
        np.testing.assert_allclose(y, model(tokens, 0).numpy(), rtol=1e-4, atol=1e-5)
