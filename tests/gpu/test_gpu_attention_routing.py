"""The models people train reach the fused ``flash_attention`` op on "cuda":
``MultiheadAttention(need_weights=False)``, the Transformer layers with an ``is_causal``
hint (or a stack that detects the causal mask) and the demo GPT, with the CPU's values and
gradients. Ops are counted with ``fw.profiler`` (it records eager dispatches without
acting as a tracer, so the stacks' mask detection runs as in normal use)."""

import copy

import numpy as np
import pytest

import framework as fw
from framework import nn

R = np.random.default_rng(21)


def _op_counts(prof):
    return {e.name: e.count for e in prof.key_averages() if e.kind == "op"}


def _compare(module, arrays, call, masks=(), tol=3e-5):
    """``call(module, *arrays, *masks)`` on the CPU and on a cuda copy, forward and backward
    of a random projection: the cuda op counts (forward, backward), after checking that the
    outputs and the gradients of the float ``arrays`` and of the parameters agree."""
    dev_module = copy.deepcopy(module).to("cuda")
    cpu_in = [fw.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays] + \
        [fw.tensor(a) for a in masks]
    dev_in = [fw.tensor(a, device="cuda", requires_grad=a.dtype.kind == "f")
              for a in arrays] + [fw.tensor(a, device="cuda") for a in masks]
    ref = call(module, *cpu_in)
    cot = R.standard_normal(ref.shape).astype(np.float32)
    (ref * fw.tensor(cot)).sum().backward()
    with fw.profiler.profile() as fwd_prof:
        out = call(dev_module, *dev_in)
    with fw.profiler.profile() as bwd_prof:
        (out * fw.tensor(cot, device="cuda")).sum().backward()
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.detach().cpu().numpy(), ref.detach().numpy(), rtol=tol,
                               atol=tol)
    for a, b in zip(dev_in, cpu_in):
        if b.requires_grad:
            np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.numpy(), rtol=tol,
                                       atol=tol)
    for (name, p), q in zip(dev_module.named_parameters(), module.parameters()):
        np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=name)
    return _op_counts(fwd_prof), _op_counts(bwd_prof)


def _causal(n, dtype=bool):
    if dtype is bool:
        return np.triu(np.ones((n, n), bool), 1)          # MHA's rule: True = not allowed
    return np.triu(np.full((n, n), -np.inf, np.float32), 1)


@pytest.mark.parametrize("case", ["self", "cross-batch-first", "causal-hint"])
def test_mha_need_weights_false_runs_the_fused_op(case):
    fw.manual_seed(0)
    m = nn.MultiheadAttention(16, 2, batch_first=case == "cross-batch-first")
    x = R.standard_normal((6, 2, 16)).astype(np.float32)
    if case == "self":
        fwd, bwd = _compare(m, [x], lambda mod, a: mod(a, a, a, need_weights=False)[0])
    elif case == "cross-batch-first":
        mem = R.standard_normal((2, 9, 16)).astype(np.float32)
        fwd, bwd = _compare(m, [x.transpose(1, 0, 2).copy(), mem],
                            lambda mod, a, b: mod(a, b, b, need_weights=False)[0])
    else:
        def call(mod, a, mask):
            return mod(a, a, a, attn_mask=mask, is_causal=True, need_weights=False)[0]
        fwd, bwd = _compare(m, [x], call, masks=[_causal(6)])
        # the hint replaced the mask: the CPU values above are the explicit mask's too
        with fw.no_grad():
            a, mask = fw.tensor(x), fw.tensor(_causal(6))
            np.testing.assert_allclose(call(m, a, mask).numpy(),
                                       m(a, a, a, attn_mask=mask)[0].numpy(), atol=1e-6)
    assert fwd["flash_attention"] == 1 and "softmax" not in fwd
    assert bwd["flash_attention_backward"] == 1 and "softmax" not in bwd


@pytest.mark.parametrize("case", ["need-weights", "key-padding", "dropout"])
def test_mha_calls_the_fused_op_cannot_take_stay_on_the_math_path(case):
    fw.manual_seed(1)
    m = nn.MultiheadAttention(8, 2, dropout=0.5 if case == "dropout" else 0.0)
    x = R.standard_normal((5, 2, 8)).astype(np.float32)
    if case == "dropout":
        dev = copy.deepcopy(m).to("cuda")
        a = fw.tensor(x, device="cuda")
        with fw.profiler.profile() as prof:
            dev(a, a, a, need_weights=False)
        counts = _op_counts(prof)
        assert "flash_attention" not in counts and counts["softmax"] == 1
        dev.eval()                                         # no dropout in eval mode
        with fw.profiler.profile() as prof:
            dev(a, a, a, need_weights=False)
        assert _op_counts(prof)["flash_attention"] == 1
        return
    if case == "need-weights":
        fwd, _ = _compare(m, [x], lambda mod, a: mod(a, a, a)[0])
    else:
        kpm = np.zeros((2, 5), bool)
        kpm[1, 3:] = True
        def call(mod, a, k):
            return mod(a, a, a, key_padding_mask=k, need_weights=False)[0]
        fwd, _ = _compare(m, [x], call, masks=[kpm])
    assert "flash_attention" not in fwd and fwd["softmax"] == 1


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_with_the_causal_hint(norm_first):
    fw.manual_seed(2)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True,
                                       norm_first=norm_first)
    x = R.standard_normal((2, 7, 16)).astype(np.float32)
    fwd, bwd = _compare(layer, [x], lambda mod, a, mask: mod(a, src_mask=mask, is_causal=True),
                        masks=[_causal(7, float)])
    assert fwd["flash_attention"] == 1 and bwd["flash_attention_backward"] == 1


def test_stacks_detect_the_causal_mask_on_cuda():
    fw.manual_seed(3)
    model = nn.Transformer(16, 2, 2, 1, 32, dropout=0.0, batch_first=True)
    src = R.standard_normal((2, 5, 16)).astype(np.float32)
    tgt = R.standard_normal((2, 6, 16)).astype(np.float32)
    mask = model.generate_square_subsequent_mask(6).numpy()

    def call(mod, s, t, m):      # no hints: the decoder finds that tgt_mask is causal
        return mod(s, t, tgt_mask=m)
    fwd, bwd = _compare(model, [src, tgt], call, masks=[mask])
    # 2 encoder self-attentions (no mask), decoder self (causal) and cross attention
    assert fwd["flash_attention"] == 4 and bwd["flash_attention_backward"] == 4


def test_demo_gpt_runs_the_fused_op():
    from framework.demo.model import GPT, GPTConfig
    fw.manual_seed(4)
    model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16))
    ids = R.integers(0, 13, (2, 8))
    fwd, bwd = _compare(model, [ids], lambda mod, i: mod(i))
    assert fwd["flash_attention"] == 2 and "softmax" not in fwd
    assert bwd["flash_attention_backward"] == 2
