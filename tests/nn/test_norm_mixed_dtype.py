"""PyTorch's mixed-type normalization: a float16/bfloat16 input with float32 weights (or
running statistics) is computed in float32 and returned in the input's dtype (CLIP's fp16
ResNet keeps BatchNorm in float32; layer/group norm under the same rule)."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import DTypeError


def _ref(x, fn):
    """``fn`` on the float32 copy of ``x``, cast back to ``x``'s dtype (no autograd)."""
    with fw.no_grad():
        return fn(x.float()).to(x.dtype)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_half_input_float_params(training):
    fw.manual_seed(0)
    bn, bn32 = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    with fw.no_grad():
        for m in (bn, bn32):
            m.weight.copy_(fw.tensor([0.5, 2.0, -1.0]))
            m.running_var.fill_(2.0)
    bn.train(training), bn32.train(training)
    x = (fw.randn(4, 3, 5, 5) * 3 + 1).half().requires_grad_()
    y = bn(x)
    want = _ref(x.detach(), bn32)
    assert y.dtype == fw.float16 and bn.running_mean.dtype == fw.float32
    np.testing.assert_array_equal(y.detach().numpy(), want.numpy())
    np.testing.assert_allclose(bn.running_mean.numpy(), bn32.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), bn32.running_var.numpy(), rtol=1e-6)
    y.float().sum().backward()
    assert x.grad.dtype == fw.float16 and bn.weight.grad.dtype == fw.float32


def test_layer_and_group_norm_reduced_input_float_params():
    fw.manual_seed(0)
    ln, gn = nn.LayerNorm(6), nn.GroupNorm(2, 4)
    with fw.no_grad():
        ln.weight.normal_(), gn.bias.normal_()
    ln.requires_grad_(False), gn.requires_grad_(False)
    for dt in (fw.float16, fw.bfloat16):
        x = fw.randn(2, 6).to(dt)
        np.testing.assert_array_equal(ln(x).float().numpy(), _ref(x, ln).float().numpy())
        assert ln(x).dtype == dt
        x4 = fw.randn(2, 4, 3).to(dt)
        assert gn(x4).dtype == dt
        np.testing.assert_array_equal(gn(x4).float().numpy(), _ref(x4, gn).float().numpy())
    # the other mix (float32 input, float16 weight) stays an error, as on PyTorch's CPU
    with pytest.raises(DTypeError, match="layer_norm"):
        nn.LayerNorm(6).half()(fw.randn(2, 6))


def test_batch_norm_half_input_compiled_matches_eager():
    fw.manual_seed(0)
    bn = nn.BatchNorm2d(3).requires_grad_(False)
    x = fw.randn(4, 3, 2, 2).half()
    step = fw.compile(lambda x: bn(x) * 2, mode="always")
    eager = bn(x) * 2
    mean = bn.running_mean.numpy().copy()
    bn.running_mean.zero_(), bn.running_var.fill_(1.0)
    got = step(x)
    assert got.dtype == fw.float16
    np.testing.assert_array_equal(got.numpy(), eager.numpy())
    np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-6)
