"""``MaxPool2d`` followed by ``ReLU(inplace=True)`` (the spatial transformer tutorial's
localization net): max pooling's backward reads only its indices, so an in-place op on
its values is allowed, as in PyTorch; an in-place op on the indices is still caught."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import AutogradError


def _grads(seq, x, hooks=False):
    x.grad = None
    if hooks:
        with fw.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            seq(x).sum().backward()
    else:
        seq(x).sum().backward()
    return x.grad.numpy().copy()


@pytest.mark.parametrize("hooks", [False, True])
def test_inplace_relu_after_max_pool_backward_matches_out_of_place(hooks):
    fw.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3)
    x = fw.randn(2, 1, 8, 8, requires_grad=True)
    want = _grads(nn.Sequential(conv, nn.MaxPool2d(2, stride=2), nn.ReLU()), x)
    got = _grads(nn.Sequential(conv, nn.MaxPool2d(2, stride=2), nn.ReLU(True)), x, hooks)
    np.testing.assert_array_equal(got, want)
    assert np.abs(want).sum() > 0


def test_inplace_change_of_max_pool_indices_is_still_caught():
    x = fw.randn(1, 1, 4, 4, requires_grad=True)
    y, idx = fw.nn.functional.max_pool2d(x, 2, return_indices=True)
    idx.add_(1)
    with pytest.raises(AutogradError, match="output 1 of max_pool"):
        y.sum().backward()
