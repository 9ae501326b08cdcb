"""``scaled_dot_product_attention`` on "cuda": the fused ``flash_attention`` op (forward)
and ``flash_attention_backward`` (gradients) run when the call allows it, with the CPU
math path's values and gradients; ``fw.nn.attention.sdpa_kernel`` picks or forbids them;
a compiled GPT-style block keeps the fused op as a backend step."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework._state import tls
from framework.errors import NoKernelError
from framework.nn import functional as F
from framework.nn.attention import SDPBackend, sdpa_kernel


class _Ops:
    """A minimal tracer noting the op names dispatched (forward and backward)."""

    def __init__(self):
        self.names = []

    def record(self, op, args, attrs, outs):
        self.names.append(op.name)

    def mutate(self, target, value):
        pass

    def alias(self, src, dst):
        pass

    def graph_break(self, what):
        pass

    def __enter__(self):
        tls.tracer = self
        return self

    def __exit__(self, *exc):
        tls.tracer = None


def _inputs(shape_q, shape_k, shape_v, seed=0, dtype=fw.float32):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (shape_q, shape_k, shape_v)]
    cpu = [fw.tensor(a).to(dtype).requires_grad_() for a in arrays]
    dev = [fw.tensor(a, device="cuda").to(dtype).requires_grad_() for a in arrays]
    return cpu, dev


def _check(cpu, dev, tol=2e-5, **kw):
    """sdpa on cuda == sdpa on the CPU (values and gradients); the op names seen on cuda
    (forward, then backward)."""
    with _Ops() as ops:
        out = F.scaled_dot_product_attention(*dev, **kw)
        forward = list(ops.names)
        cot = np.random.default_rng(5).standard_normal(out.shape).astype(np.float32)
        (out * fw.tensor(cot, device="cuda").to(out.dtype)).sum().backward()
    ref = F.scaled_dot_product_attention(*cpu, **kw)
    (ref * fw.tensor(cot).to(ref.dtype)).sum().backward()
    assert out.device.type == "cuda" and out.dtype is ref.dtype
    np.testing.assert_allclose(out.detach().cpu().float().numpy(),
                               ref.detach().float().numpy(), rtol=tol, atol=tol)
    for a, b in zip(dev, cpu):
        np.testing.assert_allclose(a.grad.cpu().float().numpy(), b.grad.float().numpy(),
                                   rtol=tol, atol=tol)
    return forward, ops.names[len(forward):]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_sdpa_on_cuda_runs_the_fused_op(causal):
    cpu, dev = _inputs((2, 3, 9, 16), (2, 3, 12, 16), (2, 3, 12, 8))
    forward, backward = _check(cpu, dev, is_causal=causal)
    assert forward == ["flash_attention"]
    assert "flash_attention_backward" in backward
    assert "softmax" not in backward and "matmul" not in backward


def test_gqa_3d_and_l_greater_than_s():
    cpu, dev = _inputs((1, 4, 7, 8), (1, 2, 5, 8), (1, 2, 5, 8), seed=1)
    forward, _ = _check(cpu, dev, is_causal=True, enable_gqa=True, scale=0.7)
    assert forward == ["flash_attention"]  # key/value heads by index: no expand, no copy
    cpu, dev = _inputs((3, 6, 8), (3, 10, 8), (3, 10, 4), seed=2)  # (H, L, E), no batch
    assert "flash_attention" in _check(cpu, dev)[0]


@pytest.mark.parametrize("dtype", [fw.float16, fw.bfloat16], ids=["fp16", "bf16"])
def test_half_precision(dtype):
    cpu, dev = _inputs((1, 2, 16, 32), (1, 2, 16, 32), (1, 2, 16, 32), seed=3, dtype=dtype)
    assert "flash_attention" in _check(cpu, dev, tol=3e-2, is_causal=True)[0]


def test_strided_heads_from_a_fused_projection():
    """q, k, v as (B, L, H, D) -> (B, H, L, D) views of one qkv projection (no copies)."""
    rng = np.random.default_rng(4)
    qkv = rng.standard_normal((2, 6, 3 * 16)).astype(np.float32)

    def split(t):
        q, k, v = t.split(16, -1)
        return [x.reshape(2, 6, 2, 8).transpose(1, 2) for x in (q, k, v)]
    cpu = split(fw.tensor(qkv, requires_grad=True))
    dev_leaf = fw.tensor(qkv, device="cuda", requires_grad=True)
    dev = split(dev_leaf)
    assert not dev[0].is_contiguous()
    with _Ops() as ops:
        out = F.scaled_dot_product_attention(*dev, is_causal=True)
    ref = F.scaled_dot_product_attention(*cpu, is_causal=True)
    assert "flash_attention" in ops.names and "contiguous" not in ops.names
    np.testing.assert_allclose(out.detach().cpu().numpy(), ref.detach().numpy(), atol=2e-5)


@pytest.mark.parametrize("kw,dtype,dim", [
    (dict(attn_mask="bool"), fw.float32, 8),
    (dict(dropout_p=0.5), fw.float32, 8),
    ({}, fw.float64, 8),
    ({}, fw.float32, 160),
], ids=["mask", "dropout", "float64", "head-dim-160"])
def test_unsupported_calls_take_the_math_path(kw, dtype, dim):
    _, dev = _inputs((1, 1, 4, dim), (1, 1, 4, dim), (1, 1, 4, dim), dtype=dtype)
    if kw.get("attn_mask") == "bool":
        kw = dict(attn_mask=fw.ones(4, 4, dtype=fw.bool, device="cuda").tril())
    with _Ops() as ops:
        F.scaled_dot_product_attention(*dev, **kw)
    assert "flash_attention" not in ops.names and "softmax" in ops.names


def test_sdpa_kernel_selects_and_refuses():
    cpu, dev = _inputs((1, 2, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8))
    with sdpa_kernel(SDPBackend.MATH), _Ops() as ops:
        F.scaled_dot_product_attention(*dev)
    assert "flash_attention" not in ops.names
    with sdpa_kernel([SDPBackend.MATH, SDPBackend.FLASH_ATTENTION], set_priority=True), \
            _Ops() as ops:
        F.scaled_dot_product_attention(*dev)
    assert "flash_attention" not in ops.names  # math first by priority
    with sdpa_kernel([SDPBackend.MATH, SDPBackend.FLASH_ATTENTION]), _Ops() as ops:
        F.scaled_dot_product_attention(*dev)
    assert "flash_attention" in ops.names  # default priority: flash first
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        with pytest.raises(NoKernelError, match="No available kernel.*needs tensors on cuda"):
            F.scaled_dot_product_attention(*cpu)
        mask = fw.ones(4, 4, dtype=fw.bool, device="cuda")
        with pytest.raises(RuntimeError, match="FLASH_ATTENTION does not take an attn_mask"):
            F.scaled_dot_product_attention(*dev, attn_mask=mask)
        F.scaled_dot_product_attention(*dev)  # allowed: the fused kernel
    with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]):
        with pytest.raises(NoKernelError, match="EFFICIENT_ATTENTION is not implemented"):
            F.scaled_dot_product_attention(*dev)
    with pytest.raises(TypeError, match="SDPBackend"):
        with sdpa_kernel("flash"):
            pass
    assert fw.nn.attention.flash_sdp_enabled() and fw.nn.attention.math_sdp_enabled()
    big = fw.zeros(65536, 1, 1, 8, device="cuda")  # batch x heads beyond the kernel's grid
    assert fw.nn.attention.select_backend(big, big, big) is SDPBackend.MATH
    assert "batch x heads" in fw.nn.attention.flash_unsupported_reason(big, big, big, None,
                                                                         0.0, False)


def test_backend_switches():
    _, dev = _inputs((1, 1, 4, 8), (1, 1, 4, 8), (1, 1, 4, 8))
    cuda_backend = fw.backends.cuda
    cuda_backend.enable_flash_sdp(False)
    try:
        assert not cuda_backend.flash_sdp_enabled()
        with _Ops() as ops:
            F.scaled_dot_product_attention(*dev)
        assert "flash_attention" not in ops.names
        cuda_backend.enable_math_sdp(False)
        with pytest.raises(NoKernelError, match="every backend is disabled|not implemented"):
            F.scaled_dot_product_attention(*dev)
    finally:
        cuda_backend.enable_flash_sdp(True)
        cuda_backend.enable_math_sdp(True)


class _Block(nn.Module):
    """A GPT-style pre-norm block: causal self-attention through sdpa plus an MLP."""

    def __init__(self, e=32, heads=2):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(e), nn.LayerNorm(e)
        self.qkv, self.proj = nn.Linear(e, 3 * e), nn.Linear(e, e)
        self.mlp = nn.Sequential(nn.Linear(e, 2 * e), nn.GELU(), nn.Linear(2 * e, e))

    def forward(self, x):
        b, t, e = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(e, -1)
        q, k, v = (z.reshape(b, t, self.heads, e // self.heads).transpose(1, 2)
                   for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, e))
        return x + self.mlp(self.ln2(x))


def test_compiled_gpt_block_keeps_the_fused_op():
    fw.manual_seed(0)
    block = _Block()
    x = np.random.default_rng(6).standard_normal((2, 10, 32)).astype(np.float32)
    ref = block(fw.tensor(x))
    ref.square().mean().backward()
    want = [p.grad.numpy().copy() for p in block.parameters()]
    block.zero_grad()
    block.to("cuda")

    def step(t):
        loss = block(t).square().mean()
        loss.backward()
        return loss

    cf = fw.compile(step)
    xd = fw.tensor(x, device="cuda")
    loss = cf(xd)
    np.testing.assert_allclose(loss.cpu().numpy(), ref.square().mean().detach().numpy(),
                               rtol=1e-5)
    for p, w in zip(block.parameters(), want):
        np.testing.assert_allclose(p.grad.cpu().numpy(), w, rtol=1e-4, atol=1e-5)
    labels = [s.describe() for s in cf._entry_for((xd,), {}).plan.steps]
    assert any(s.startswith("flash_attention (backend kernel") for s in labels), labels
    assert any(s.startswith("flash_attention_backward (backend kernel") for s in labels)


@pytest.mark.gpu
@pytest.mark.parametrize("shape_q,shape_k,causal", [
    ((2, 8, 300, 64), (2, 2, 300, 64), True),      # GQA, ragged tail, GPU tiles
    ((1, 4, 200, 128), (1, 4, 333, 128), False),   # head dim 128, L != S
], ids=["gqa-d64-causal", "d128-full"])
def test_fused_attention_values_on_a_real_gpu(shape_q, shape_k, causal):
    """bf16 on the GPU (tensor cores) against the float32 math path on the same rounded
    inputs: every result within 3% of its largest magnitude (bf16 rounds O, dO and P)."""
    assert not fw.cuda.is_simulated(), "unset FW_TRITON_INTERPRET to test the real device"
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (shape_q, shape_k, shape_k)]
    dev = [fw.tensor(a, device="cuda").to(fw.bfloat16).requires_grad_() for a in arrays]
    cpu = [fw.tensor(a).to(fw.bfloat16).float().requires_grad_() for a in arrays]
    cot = rng.standard_normal(shape_q[:3] + shape_k[-1:]).astype(np.float32)
    with _Ops() as ops:
        out = F.scaled_dot_product_attention(*dev, is_causal=causal, enable_gqa=True)
    assert ops.names == ["flash_attention"]
    (out.float() * fw.tensor(cot, device="cuda")).sum().backward()
    ref = F.scaled_dot_product_attention(*cpu, is_causal=causal, enable_gqa=True)
    (ref * fw.tensor(cot)).sum().backward()
    for got, want in [(out, ref)] + [(a.grad, b.grad) for a, b in zip(dev, cpu)]:
        got, want = got.detach().cpu().float().numpy(), want.detach().numpy()
        assert np.abs(got - want).max() <= 3e-2 * np.abs(want).max() + 1e-3


def test_attention_benchmark_smoke(capsys):
    """``python -m framework.bench attention`` (and the kernels bench) on the simulated
    device: the fused path checked against the math path."""
    from framework.bench import __main__ as bench_main, attention as bench
    if not fw.cuda.is_simulated():
        pytest.skip("the timed run belongs to .ci/gpu_check on a real GPU")
    assert "attention" in bench_main.SUBCOMMANDS
    assert bench.main(["--device", "cuda"]) == 0
    assert "max |flash - math|" in capsys.readouterr().out
    assert bench.flops(1, 1, 4, 2, True, True) == 3.5 * 4 * (4 * 4 * 2) * 0.5
