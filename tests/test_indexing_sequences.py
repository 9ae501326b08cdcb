"""Python sequences as indices: a ``range`` indexes like the list of its values (PyTorch
accepts any sequence), for reads, writes and gradients."""

import numpy as np

import framework as fw


def test_range_index_read_write_and_grad():
    a = np.arange(20, dtype=np.float32).reshape(4, 5)
    x = fw.tensor(a)
    np.testing.assert_array_equal(x[range(1, 4)].numpy(), a[1:4])
    np.testing.assert_array_equal(x[range(4), [0, 2, 4, 1]].numpy(), a[range(4), [0, 2, 4, 1]])
    y = fw.tensor([3, 1, 0, 2])
    np.testing.assert_array_equal(x[range(x.shape[0]), y].numpy(), a[np.arange(4), [3, 1, 0, 2]])
    # the forward-forward example's label overlay: x_[range(n), y] = x.max()
    z = x.clone()
    z[range(z.shape[0]), y] = x.max()
    want = a.copy()
    want[np.arange(4), [3, 1, 0, 2]] = a.max()
    np.testing.assert_array_equal(z.numpy(), want)
    z[range(4), 0] = -1.0                       # a range with an int
    assert (z.numpy()[:, 0] == -1).all()
    assert x[range(0)].shape == (0, 5)
    w = fw.tensor(a, requires_grad=True)
    w[range(0, 4, 2), 1].sum().backward()
    g = np.zeros_like(a)
    g[[0, 2], 1] = 1.0
    np.testing.assert_array_equal(w.grad.numpy(), g)
