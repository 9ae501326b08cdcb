"""PyTorch's rules for the ambiguous channels-last shapes (found porting the memory-format
tutorial): ``to(memory_format=)`` restrides ``N1HW`` / ``NC11`` tensors while
``contiguous(memory_format=)`` leaves them, ``preserve_format`` reads the layout from the
strides' order (``suggest_memory_format``), and ``is_contiguous(memory_format=)`` on another
rank is False rather than an error."""

import numpy as np
import pytest

import framework as fw
from framework.errors import ShapeError


@pytest.mark.parametrize("shape,cl_strides", [((4, 1, 4, 4), (16, 1, 4, 1)),
                                              ((4, 3, 1, 1), (3, 1, 3, 3)),
                                              ((2, 3, 4, 5), (60, 1, 15, 3))])
def test_to_restrides_contiguous_does_not(shape, cl_strides):
    x = fw.randn(*shape)
    y = x.to(memory_format=fw.channels_last)
    assert y.stride() == cl_strides
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert y.to(memory_format=fw.channels_last) is y
    assert y.clone().stride() == fw.empty_like(y).stride() == cl_strides
    assert fw.empty(*shape, memory_format=fw.channels_last).stride() == cl_strides
    assert fw.zeros_like(x, memory_format=fw.channels_last).stride() == cl_strides
    assert x.to(fw.float64, memory_format=fw.channels_last).stride() == cl_strides
    ambiguous = shape != (2, 3, 4, 5)
    assert (x.contiguous(memory_format=fw.channels_last) is x) == ambiguous
    # a row-major tensor stays row-major under preserve_format
    assert fw.empty_like(x).stride() == x.stride() and x.clone().stride() == x.stride()


def test_all_ones_planes_cannot_be_marked_channels_last():
    y = fw.randn(4, 1, 1, 1).to(memory_format=fw.channels_last)
    assert y.stride() == (1, 1, 1, 1) and fw.empty_like(y).stride() == (1, 1, 1, 1)


def test_preserve_format_follows_stride_order_of_non_dense_views():
    x = fw.randn(2, 3, 8, 8).to(memory_format=fw.channels_last)[:, :, ::2, ::2]
    assert not x.is_contiguous(memory_format=fw.channels_last)
    assert x.clone().stride() == (48, 1, 12, 3)                 # channels-last, as PyTorch
    assert x.transpose(2, 3).clone().is_contiguous()             # no longer NHWC-ordered


def test_is_contiguous_with_another_rank_is_false():
    for t in (fw.tensor(1.0), fw.randn(2, 3), fw.randn(2, 3, 4, 5, 6)):
        assert t.is_contiguous(memory_format=fw.channels_last) is False
    assert fw.randn(2, 3, 4, 5).is_contiguous(memory_format=fw.channels_last_3d) is False
    with pytest.raises(ShapeError, match="rank 4"):
        fw.randn(2, 3).contiguous(memory_format=fw.channels_last)


def test_randint_requires_grad():
    x = fw.randint(1, 10, (2, 3), dtype=fw.float32, requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.dtype == fw.float32
    assert fw.randint_like(x, 5, requires_grad=True).requires_grad
    with pytest.raises(fw.AutogradError, match="floating point"):
        fw.randint(0, 3, (2,), requires_grad=True)


def test_conv_modules_call_the_functional_api(monkeypatch):
    calls = []
    orig = fw.nn.functional.conv2d

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return orig(*args, **kwargs)

    monkeypatch.setattr(fw.nn.functional, "conv2d", spy)
    fw.nn.Conv2d(3, 4, 3)(fw.randn(1, 3, 5, 5))
    assert calls == [(1, 3, 5, 5)]
