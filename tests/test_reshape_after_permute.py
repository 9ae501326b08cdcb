"""``reshape`` of a permuted 4-d / 5-d tensor that cannot be viewed copies row-major.

Since clone() preserves a channels-last layout, reshape's copy kept a channels-last-looking
layout and the reshape then failed with NumPy's "Incompatible shape for in-place
modification". The backward of a depthwise conv over a 1x1 map (ConvNeXt's last stage on
small images) reshapes exactly such a tensor."""

import numpy as np

import framework as fw
import framework.nn.functional as F


def test_reshape_of_a_permuted_5d_tensor_with_unit_dims():
    x = fw.randn(4, 16, 1, 1)
    y = x.reshape(4, 16, 1, 1, 1).permute(2, 1, 0, 3, 4)
    z = y.reshape(1, 64, 1, 1)
    np.testing.assert_array_equal(
        z.numpy(), x.numpy().reshape(4, 16, 1, 1, 1).transpose(2, 1, 0, 3, 4).reshape(1, 64, 1, 1))
    assert z.is_contiguous()


def test_reshape_of_a_channels_last_looking_permute():
    x = fw.randn(2, 3, 4, 5)
    y = x.permute(0, 2, 3, 1).permute(0, 3, 1, 2).transpose(1, 2)  # (2, 4, 3, 5)
    np.testing.assert_array_equal(y.reshape(8, 15).numpy(),
                                  x.numpy().transpose(0, 2, 1, 3).reshape(8, 15))
    np.testing.assert_array_equal(y.flatten(1).numpy(),
                                  x.numpy().transpose(0, 2, 1, 3).reshape(2, -1))


def test_depthwise_conv_backward_on_a_1x1_map():
    fw.manual_seed(0)
    x = fw.randn(4, 16, 1, 1)
    w = fw.randn(16, 1, 7, 7, requires_grad=True)
    F.conv2d(x, w, padding=3, groups=16).sum().backward()
    want = np.zeros((16, 1, 7, 7), np.float32)
    want[:, 0, 3, 3] = x.numpy()[:, :, 0, 0].sum(0)  # only the centre tap sees the pixel
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-5, atol=1e-6)
