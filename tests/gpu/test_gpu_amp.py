"""Automatic mixed precision on "cuda" (the simulated device runs Triton's interpreter, so
these stay few and small): PyTorch's CUDA policy (float16 matmuls, float32 softmax /
layer_norm / sum / losses, promotion), float32 gradients of float32 parameters, and
GradScaler skipping an overflowing step."""

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.nn import functional as F

F16, F32 = fw.float16, fw.float32


def test_cuda_policy_and_float32_gradients():
    fw.manual_seed(0)
    lin = nn.Linear(8, 4).to("cuda")
    ln = nn.LayerNorm(4).to("cuda")
    x = fw.randn(3, 8).to("cuda")
    t = fw.tensor([0, 1, 3]).to("cuda")
    with fw.autocast("cuda"):
        assert fw.is_autocast_enabled() and fw.get_autocast_dtype("cuda") is F16
        h = lin(x)
        assert h.dtype is F16 and (x @ x.t()).dtype is F16
        assert F.softmax(h, 1).dtype is F32 and ln(h).dtype is F32
        assert h.sum().dtype is F32 and h.exp().dtype is F32 and F.relu(h).dtype is F16
        assert fw.cat([h, x[:, :4]]).dtype is F32
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            F.binary_cross_entropy(fw.sigmoid(h), fw.zeros(3, 4).to("cuda"))
        loss = F.cross_entropy(ln(h), t)
    assert loss.dtype is F32
    loss.backward()
    ref = F.cross_entropy(ln(lin(x)), t)  # float32 reference on the same parameters
    assert abs(ref.item() - loss.item()) < 2e-2
    for p in list(lin.parameters()) + list(ln.parameters()):
        assert p.grad.dtype is F32 and p.grad.device.type == "cuda"


def test_grad_scaler_on_cuda_unscales_and_skips_overflowing_steps():
    scaler = fw.amp.GradScaler("cuda", init_scale=4.0, growth_interval=2)
    p = nn.Parameter(fw.ones(2).to("cuda"))
    opt = optim.SGD([p], lr=1.0)
    with fw.autocast("cuda"):
        loss = (p * p).sum()
    scaler.scale(loss).backward()  # d/dp = 2p, times the scale
    assert p.grad.cpu().tolist() == [8.0, 8.0]
    scaler.step(opt)
    scaler.update()
    np.testing.assert_allclose(p.detach().cpu().numpy(), [-1.0, -1.0])
    p.grad = fw.tensor([float("inf"), 1.0]).to("cuda")
    scaler.step(opt)
    scaler.update()
    np.testing.assert_allclose(p.detach().cpu().numpy(), [-1.0, -1.0])  # skipped
    assert scaler.get_scale() == 2.0
