"""fw.library custom ops on the cuda device (simulated without a GPU): eager, compiled,
and gradients through the op."""

import numpy as np
import pytest

import framework as fw
from framework import Tensor


@pytest.fixture
def sq():
    @fw.library.custom_op("t_gpu_lib::sq_plus", mutates_args=())
    def sq_plus(x: Tensor, c: float) -> Tensor:
        return x * x + c   # written with fw ops: runs on the device
    sq_plus.register_fake(lambda x, c: fw.empty_like(x))

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    def backward(ctx, g):
        x, = ctx.saved_tensors
        return 2 * g * x, None
    sq_plus.register_autograd(backward, setup_context=setup_context)
    yield sq_plus
    sq_plus._destroy()


def test_eager_and_compiled_on_cuda(sq):
    x = fw.randn(6).to("cuda")
    xn = x.cpu().numpy()
    y = sq(x, 1.5)
    assert y.device.type == "cuda"
    np.testing.assert_allclose(y.cpu().numpy(), xn * xn + 1.5, rtol=1e-6)
    f = fw.compile(lambda x: sq(x, 1.5) * 2)
    for _ in range(2):
        np.testing.assert_allclose(f(x).cpu().numpy(), 2 * (xn * xn + 1.5), rtol=1e-6)
    assert f.stats()["captures"] == 1 and f.stats()["eager_reason"] is None
    assert "t_gpu_lib::sq_plus" in f.kernels(x)


def test_gradient_on_cuda(sq):
    x = fw.randn(5).to("cuda").requires_grad_(True)
    sq(x, 0.0).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), 2 * x.detach().cpu().numpy(), rtol=1e-6)
