"""Slice bounds that are one-element integer tensors (``masks[..., :size[0], :size[1]]`` in
SAM's postprocessing) read their values, as in torch: the result's shape is plain ints
(it was sympy Integers, which ``F.interpolate`` then refused as "dynamic")."""

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F


def test_tensor_slice_bounds_give_int_sizes():
    x = fw.randn(1, 2, 8, 8)
    size = fw.tensor([5, 7])
    y = x[..., :size[0], :size[1]]
    assert y.shape == (1, 2, 5, 7) and all(type(d) is int for d in y.shape)
    np.testing.assert_array_equal(y.numpy(), x.numpy()[..., :5, :7])
    z = x[:, :, size[0] - 8:, fw.tensor(1):size[1]:fw.tensor(2)]  # negative start, step
    np.testing.assert_array_equal(z.numpy(), x.numpy()[:, :, -3:, 1:7:2])
    out = F.interpolate(y, size=(10, 14), mode="bilinear", align_corners=False)
    assert out.shape == (1, 2, 10, 14)


def test_tensor_slice_bounds_in_setitem():
    x = fw.zeros(4, 6)
    x[:fw.tensor(2), fw.tensor(3):] = 1.0
    want = np.zeros((4, 6), np.float32)
    want[:2, 3:] = 1.0
    np.testing.assert_array_equal(x.numpy(), want)


def test_a_float_tensor_bound_is_refused():
    with pytest.raises(TypeError, match="integer tensors"):
        fw.randn(4)[:fw.tensor(2.0)]
