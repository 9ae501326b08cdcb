# ruff: noqa: E501  (the ported code's own lines are kept as written)
"""Training, ``fw.compile`` and ONNX export of the litgpt port (see test_litgpt.py).

The step is the body of litgpt/pretrain.py's ``fit`` loop: ``model(input_ids)``,
``chunked_cross_entropy``, ``fabric.backward(loss / accumulation)``,
``fabric.clip_gradients(model, optimizer, max_norm)``, ``optimizer.step()``,
``optimizer.zero_grad()`` and the scheduler; Fabric's calls are written as the plain
calls they make on one device. The data is a learnable synthetic stream (each token a
fixed function of the previous one) cut into ``block_size + 1`` windows as pretrain.py's
data modules do.
"""

import math

import numpy as np
import pytest

import framework as fw

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches
from ._litgpt_model import GPT
from ._litgpt_utils import ARCHS, DEEPSEEK_LIKE, chunked_cross_entropy, tiny_gpt
from ._litgpt_config import Config

torch = fw  # the original's ``torch.xxx`` calls read as ``fw.xxx``

ALL = list(ARCHS)


def synthetic_batches(n_batches, micro_batch_size=4, block_size=8, vocab=48, seed=0, distinct=2):
    """``train_data`` rows of ``block_size + 1`` tokens, t[i+1] = (5 t[i] + 3) mod vocab:
    ``distinct`` batches, cycled (a small training set, a few epochs)."""
    g = np.random.default_rng(seed)
    out = []
    for _ in range(distinct):
        start = g.integers(0, vocab, size=(micro_batch_size, 1))
        rows = [start]
        for _ in range(block_size):
            rows.append((5 * rows[-1] + 3) % vocab)
        out.append(torch.tensor(np.concatenate(rows, 1)))
    return [out[i % distinct] for i in range(n_batches)]


def make_train_step(model, optimizer, max_norm=1.0, accumulation=1):
    """pretrain.py's ``fit`` body for one optimizer step (no accumulation); the scheduler
    steps outside (a Python-side lr update inside a compiled function makes fw run it
    eagerly, with a warning, as torch.compile needs the lr as a tensor for that)."""

    def train_step(train_data):
        input_ids = train_data[:, 0 : model.max_seq_length].contiguous().long()
        targets = train_data[:, 1 : (model.max_seq_length + 1)].contiguous().long()
        logits = model(input_ids)
        loss = chunked_cross_entropy(logits, targets)
        (loss / accumulation).backward()  # fabric.backward(loss / train.gradient_accumulation_iters(...))
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # fabric.clip_gradients(model, optimizer, max_norm=train.max_norm)
        optimizer.step()
        optimizer.zero_grad()
        return loss.detach()

    return train_step


def run(arch, compiled, steps=4, config=None):
    """``steps`` training steps of a tiny ``arch`` model (AdamW, warm-up then cosine as
    pretrain.py's ``get_lr`` through a LambdaLR); returns (losses, state, step)."""
    if config is not None:
        fw.manual_seed(0)
    model = tiny_gpt(arch) if config is None else GPT(config)
    model.max_seq_length = 8
    model.apply(model._init_weights)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-2, weight_decay=0.02, betas=(0.9, 0.95))
    warmup, max_iters = 2, 20

    def get_lr(it):  # pretrain.py's get_lr, relative to the base lr
        if it < warmup:
            return (it + 1) / warmup
        decay_ratio = (it - warmup) / (max_iters - warmup)
        return 0.1 + 0.5 * (1.0 + math.cos(math.pi * decay_ratio)) * 0.9

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, get_lr)
    step = make_train_step(model, optimizer)
    if compiled:
        step = torch.compile(step, mode="always")
    losses = []
    for batch in synthetic_batches(steps):
        losses.append(float(step(batch)))
        scheduler.step()
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    state["lr"] = np.array([g["lr"] for g in optimizer.param_groups])
    return losses, state, step


@pytest.mark.parametrize("arch", ALL)
def test_training_lowers_the_loss(arch):
    losses, _, _ = run(arch, compiled=False, steps=10)
    assert np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2]), losses
    assert all(np.isfinite(losses))


@pytest.mark.parametrize("arch", [a for a in ALL if a != "mixtral"])
def test_compiled_training_step_matches_eager(arch):
    """One capture (after the eager warm-up call that creates AdamW's state), no recompile
    as the scheduled lr changes, and the same losses and weights as eager."""
    assert_compiled_matches_eager(lambda c: run(arch, c), captures=1, num_recompiles=0,
                                  graph_breaks=[], eager_reason=None, min_cache_hits=2)


@pytest.mark.parametrize("config", ["mixtral", "deepseek"])
def test_moe_compiled_step_is_a_graph_break_and_matches_eager(config):
    """LLaMAMoE routes with ``torch.where(mask)`` (nonzero: a data-dependent shape). As
    under torch.compile this cannot be captured into one graph; fw runs the whole step
    eagerly with a warning naming the line (fw has no partial graphs around a break)."""
    cfg = Config(**DEEPSEEK_LIKE) if config == "deepseek" else None
    with pytest.warns(UserWarning, match=r"nonzero\(\) at .*_litgpt_layers.py"):
        fn = assert_compiled_matches_eager(lambda c: run("mixtral", c, config=cfg), captures=0)
    st = fn.stats()
    assert st["eager_calls"] == 4 and "nonzero" in st["eager_reason"], st


@pytest.mark.parametrize("arch", ["llama3", "gemma2"])
def test_compiled_model_trains_like_eager(arch):
    """pretrain.py's ``model = torch.compile(model)``: the compiled forward (an
    OptimizedModule that still answers ``max_seq_length``), eager backward through it."""
    results = []
    for compiled in (False, True):
        model = tiny_gpt(arch)
        model.max_seq_length = 8
        model.apply(model._init_weights)
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-2)
        if compiled:
            model = torch.compile(model, mode="always")
        assert model.max_seq_length == 8
        losses = []
        for train_data in synthetic_batches(4):
            logits = model(train_data[:, 0:model.max_seq_length])
            loss = chunked_cross_entropy(logits, train_data[:, 1:(model.max_seq_length + 1)])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        results.append((losses, {k: v.numpy().copy() for k, v in model.state_dict().items()}))
    st = model.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0 and st["eager_calls"] == 0, st
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-4, atol=1e-5)
    # the first gradients agree to ~3e-7 (relative); AdamW's m / sqrt(v) magnifies that for
    # an element whose gradient is near zero, hence atol 1e-4 on the weights
    for k, v in results[0][1].items():
        np.testing.assert_allclose(results[1][1]["_orig_mod." + k], v, rtol=1e-4, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("pos2d", [False, True])
def test_compiled_cached_forward_matches_eager(pos2d):
    """``model(idx, input_pos)`` under torch.compile: the KV-cache writes (``index_copy_``
    into ``self.k[:bs, ...]``, per row for a (B, T) input_pos) reach the buffers."""
    runs = []
    for compiled in (False, True):
        model = tiny_gpt("llama3").eval()
        idx = torch.randint(0, 48, (2, 8), generator=torch.Generator().manual_seed(5))
        step = torch.compile(lambda x, pos: model(x, pos), mode="always") if compiled else (lambda x, pos: model(x, pos))
        model.set_kv_cache(batch_size=3)
        outs = []
        with torch.no_grad():
            for t0, t1 in [(0, 4), (4, 5), (5, 6), (6, 7), (7, 8)]:
                pos = torch.arange(t0, t1)
                if pos2d:
                    pos = pos.unsqueeze(0).expand(2, -1).contiguous()
                outs.append(step(idx[:, t0:t1], pos).numpy())
        runs.append((np.concatenate(outs, 1), model.transformer.h[1].attn.kv_cache.k.numpy().copy()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-5, atol=1e-6)
    assert np.abs(runs[1][1][:2, :, :8]).sum() > 0 and (runs[1][1][2] == 0).all()
    st = step.stats()
    assert st["captures"] == 2 and st["eager_calls"] == 0, st  # the prefill, then decoding


def test_chunked_cross_entropy_matches_plain():
    logits = torch.randn(2, 6, 11)
    targets = torch.randint(0, 11, (2, 6))
    targets[0, 2] = -100
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1))
    for got in (chunked_cross_entropy(logits, targets, chunk_size=0), chunked_cross_entropy(logits, targets, chunk_size=5),
                chunked_cross_entropy(list(logits.split(4, dim=1)), targets), chunked_cross_entropy(list(logits.split(4, dim=1)), targets, chunk_size=0)):
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)


@pytest.mark.parametrize("arch", [a for a in ALL if a != "mixtral"])
def test_onnx_export_eval_matches_onnxruntime(arch, tmp_path):
    model = tiny_gpt(arch).eval()
    idx = torch.randint(0, 48, (3, 10), generator=torch.Generator().manual_seed(4))
    assert_onnx_export_matches(model, (idx,), tmp_path / f"{arch}.onnx", sub_batch=1,
                               input_names=["idx"], output_names=["logits"], dynamic_axes={"idx": {0: "B"}})


def test_moe_onnx_export_refuses_nonzero(tmp_path):
    """GAP: ONNX has NonZero, but fw's export has no data-dependent output shapes yet."""
    model = tiny_gpt("mixtral").eval()
    with pytest.raises(torch.GraphBreak, match="nonzero"):
        torch.onnx.export(model, (torch.randint(0, 48, (1, 6)),), str(tmp_path / "moe.onnx"))


def test_kv_prefill_onnx_export_static(tmp_path):
    """The KV-cache prefill (``model(idx, input_pos)``) exports at a fixed length; the
    cache writes are not part of an ONNX model, and export says so."""
    ort = pytest.importorskip("onnxruntime")
    model = tiny_gpt("llama3").eval()
    model.set_kv_cache(batch_size=1)
    idx = torch.randint(0, 48, (1, 5), generator=torch.Generator().manual_seed(2))
    path = str(tmp_path / "prefill.onnx")
    with pytest.warns(UserWarning, match=r"kv_cache.k.*in place"):
        torch.onnx.export(model, (idx, torch.arange(5)), path, input_names=["idx", "input_pos"])
    (out,) = ort.InferenceSession(path).run(None, {"idx": idx.numpy(), "input_pos": np.arange(5)})
    model.clear_kv_cache()
    with torch.no_grad():
        np.testing.assert_allclose(out, model(idx).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.xfail(strict=True, reason="GAP: a Python test on a dynamic size (GPT.forward's "
                   "`if self.max_seq_length < T: raise`) cannot be traced with T symbolic: "
                   "fw.compile(dynamic=True) recaptures for every length, fw.onnx.export refuses")
def test_dynamic_sequence_length_despite_a_size_check(tmp_path):
    model = tiny_gpt("llama3").eval()
    fn = torch.compile(lambda idx: model(idx), dynamic=True, mode="always")
    with torch.no_grad():
        for T in (5, 7, 9):
            fn(torch.randint(0, 48, (1, T)))
    assert fn.stats()["captures"] == 1, fn.stats()
