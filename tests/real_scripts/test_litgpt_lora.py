# ruff: noqa: E501  (the ported code's own lines are kept as written)
"""litgpt/lora.py (``_litgpt_lora.py``) on tiny litgpt models: LoRALinear and
LoRAQKVLinear against NumPy (grouped ``conv1d`` when q/k/v have equal sizes, the split
path under GQA, ``zero_pad``'s ``index_copy_`` when only some of q/k/v adapt),
``mark_only_lora_as_trainable``, fine-tuning with the body of litgpt/finetune/lora.py's
``fit`` (chunked lm head, ``logits[-1] = logits[-1][..., :-1, :]``, its warm-up + cosine
``SequentialLR``), the same step under ``torch.compile``, loading a base checkpoint into
the LoRA model, and ``merge_lora_weights``.
"""

import math

import numpy as np
import pytest

import framework as fw

from ._checks import assert_compiled_matches_eager, grad_leaves
from ._litgpt_lora import GPT, Config, LoRALinear, LoRAQKVLinear, lora_filter, mark_only_lora_as_trainable, merge_lora_weights
from ._litgpt_model import GPT as BaseGPT
from ._litgpt_utils import ARCHS, TINY, chunked_cross_entropy

torch = fw  # the original's ``torch.xxx`` calls read as ``fw.xxx``

LORA = dict(lora_r=4, lora_alpha=8, lora_dropout=0.0, lora_query=True, lora_key=False, lora_value=True,
            lora_projection=True, lora_mlp=True, lora_head=True)


def lora_config(arch, **kw):
    name, over = ARCHS[arch]
    return Config.from_name(name, **{**TINY, **over, **LORA, **kw})


def lora_gpt(arch, seed=0, **kw):
    fw.manual_seed(seed)
    return GPT(lora_config(arch, **kw))


def get_lr_scheduler(optimizer, warmup_steps: int, max_steps: int):  # finetune/lora.py
    # linear warmup followed by cosine annealing
    scheduler1 = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: step / warmup_steps)
    scheduler2 = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=(max_steps - warmup_steps))
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [scheduler1, scheduler2], milestones=[warmup_steps])


def make_finetune_step(model, optimizer):
    """finetune/lora.py ``fit``'s body (one micro-batch per step)."""

    def step(input_ids, targets):
        logits = model(input_ids, lm_head_chunk_size=128)
        # shift the targets such that output n predicts token n+1
        logits[-1] = logits[-1][..., :-1, :]
        loss = chunked_cross_entropy(logits, targets[..., 1:])
        loss.backward()  # fabric.backward(loss / train.gradient_accumulation_iters(devices, num_nodes))
        optimizer.step()
        optimizer.zero_grad()
        return loss.detach()

    return step


def data(n=2, B=4, T=9, vocab=48, seed=0):
    """Synthetic instruction data: t[i+1] = (3 t[i] + 1) mod vocab; the batch is both the
    input and the (shifted) target, as litgpt's SFT batches are."""
    g = np.random.default_rng(seed)
    rows = [g.integers(0, vocab, size=(B, 1))]
    for _ in range(T - 1):
        rows.append((3 * rows[-1] + 1) % vocab)
    seq = torch.tensor(np.concatenate(rows, 1))
    return [seq for _ in range(n)]


def finetune(arch, compiled, steps=6, **kw):
    model = lora_gpt(arch, **kw)
    mark_only_lora_as_trainable(model)
    trainable_params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable_params, lr=3e-2, weight_decay=0.0, betas=(0.9, 0.95))
    scheduler = get_lr_scheduler(optimizer, warmup_steps=2, max_steps=steps)
    step = make_finetune_step(model, optimizer)
    if compiled:
        step = torch.compile(step, mode="always")
    losses = []
    for batch in data(steps):
        losses.append(float(step(batch, batch)))
        scheduler.step()
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, step


def np_qkv_delta(layer):
    """``scaling * B @ A`` per enabled part of q/k/v, zeros for the others (NumPy)."""
    A = layer.lora_A.detach().numpy().astype(np.float64)
    B = layer.lora_B.detach().numpy().astype(np.float64)
    q = layer.head_size * layer.n_head
    kv = layer.head_size * layer.n_query_groups
    sizes = [q, kv, kv]
    out, a, b = [], 0, 0
    for enabled, size in zip(layer.enable_lora, sizes):
        if enabled:
            out.append(B[b:b + size] @ A[a:a + layer.r])
            a, b = a + layer.r, b + size
        else:
            out.append(np.zeros((size, A.shape[1])))
    return np.concatenate(out) * layer.scaling


@pytest.mark.parametrize("n_query_groups,enable", [(4, (True, True, True)), (4, (True, False, True)), (2, (True, False, True)), (1, (False, True, True))])
def test_lora_qkv_linear_matches_numpy(n_query_groups, enable):
    fw.manual_seed(0)
    hs, nh = 4, 4
    out = (nh + 2 * n_query_groups) * hs
    layer = LoRAQKVLinear(16, out, head_size=hs, n_head=nh, n_query_groups=n_query_groups, r=2, lora_alpha=6, enable_lora=enable)
    with torch.no_grad():
        layer.lora_B.normal_(0.0, 0.5)
    assert layer.scaling == 3.0 and layer.lora_A.shape == (2 * sum(enable), 16)
    x = torch.randn(2, 5, 16)
    delta = np_qkv_delta(layer)
    W = layer.linear.weight.detach().numpy() + delta
    want = x.numpy() @ W.T + layer.linear.bias.detach().numpy()
    np.testing.assert_allclose(layer(x).detach().numpy(), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.get_lora_AB().numpy(), delta, rtol=1e-4, atol=1e-6)
    if not all(enable):
        assert layer.lora_ind.tolist() == [i for i in range(out) if enable[min(2, (i >= nh * hs) + (i >= (nh + n_query_groups) * hs))]]
    # gradients of A and B by finite differences (float64)
    layer64 = layer.to(torch.float64)
    x64 = x.to(torch.float64)

    def f(A, B):
        return torch.func.functional_call(layer64, {"lora_A": A, "lora_B": B}, (x64[:, :2],))

    assert torch.autograd.gradcheck(f, grad_leaves(layer64.lora_A, layer64.lora_B), eps=1e-6, atol=1e-6)


def test_lora_linear_forward_and_merge():
    fw.manual_seed(0)
    layer = LoRALinear(6, 5, r=3, lora_alpha=3, bias=True)
    assert float(layer.lora_B.abs().sum()) == 0 and layer.lora_A.detach().numpy().std() > 0.1  # B = 0, A = kaiming
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 6)
    want = x.numpy() @ (layer.linear.weight.detach().numpy() + layer.lora_B.detach().numpy() @ layer.lora_A.detach().numpy()).T + layer.linear.bias.detach().numpy()
    np.testing.assert_allclose(layer(x).detach().numpy(), want, rtol=1e-5, atol=1e-5)
    layer.merge()
    assert layer.merged
    np.testing.assert_allclose(layer(x).detach().numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.linear(x).detach().numpy(), want, rtol=1e-5, atol=1e-5)
    assert LoRALinear(6, 5, r=0).forward(x).shape == (4, 5)


@pytest.mark.parametrize("arch", ["llama3", "pythia", "mixtral"])
def test_only_lora_params_train_and_merge_keeps_the_output(arch):
    model = lora_gpt(arch)
    frozen = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    losses, state, _ = finetune(arch, compiled=False)
    model.load_state_dict(state)
    mark_only_lora_as_trainable(model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("mlp" in n for n in trainable) and "lm_head.lora_A" in trainable
    for n, before in frozen.items():
        changed = not np.array_equal(state[n], before)
        assert changed == ("lora_" in n), n  # only LoRA parameters moved
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2]), losses
    model.eval()
    idx = data(1)[0][:, :8]
    with torch.no_grad():
        before = model(idx).numpy()
    merge_lora_weights(model)
    assert all(m.merged for m in model.modules() if isinstance(m, LoRALinear) and m.r > 0)
    with torch.no_grad():
        after = model(idx).numpy()
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)
    # the merged weights are the base weights plus the NumPy delta
    qkv = model.transformer.h[0].attn.qkv
    np.testing.assert_allclose(qkv.linear.weight.detach().numpy(), frozen["transformer.h.0.attn.qkv.linear.weight"] + np_qkv_delta(qkv), rtol=1e-5, atol=1e-6)


def test_mark_only_lora_bias_options_and_lora_filter():
    model = lora_gpt("pythia")
    mark_only_lora_as_trainable(model, bias="all")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "transformer.h.0.attn.qkv.linear.bias" in trainable and "transformer.h.0.norm_1.bias" in trainable
    assert "transformer.h.0.attn.qkv.linear.weight" not in trainable
    with pytest.raises(NotImplementedError):
        mark_only_lora_as_trainable(model, bias="some")
    saved = {k: v for k, v in model.state_dict().items() if lora_filter(k, v)}
    assert saved and all("lora_" in k for k in saved) and len(saved) == sum("lora_" in k for k in model.state_dict())


def test_lora_finetune_compiled_matches_eager():
    assert_compiled_matches_eager(lambda c: finetune("llama3", c), captures=1, num_recompiles=0,
                                  graph_breaks=[], eager_reason=None)


def test_sequential_lr_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = get_lr_scheduler(opt, warmup_steps=3, max_steps=9)
    lrs = []
    for _ in range(9):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [0.1 * s / 3 for s in range(3)] + [0.05 * (1 + math.cos(math.pi * s / 6)) for s in range(6)]
    np.testing.assert_allclose(lrs, want, rtol=1e-6, atol=1e-9)


def test_base_checkpoint_loads_into_lora_model():
    """finetune/lora.py loads the base model's checkpoint with ``strict=False``; the LoRA
    modules' ``_load_from_state_dict`` map ``qkv.weight`` -> ``qkv.linear.weight`` etc."""
    fw.manual_seed(3)
    base = BaseGPT(lora_config("llama3"))
    model = lora_gpt("llama3", seed=9)
    result = model.load_state_dict(base.state_dict(), strict=False)
    assert result.unexpected_keys == [] and all("lora_" in k for k in result.missing_keys)
    assert model.lm_head.linear.weight.detach().numpy().tolist() == base.lm_head.weight.detach().numpy().tolist()
    idx = data(1)[0][:, :8]
    with torch.no_grad():
        np.testing.assert_allclose(model(idx).numpy(), base(idx).numpy(), rtol=1e-5, atol=1e-6)  # B = 0
