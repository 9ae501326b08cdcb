"""In-place view methods (unsqueeze_, squeeze_, t_, transpose_, swapdims_) and the
deprecated ``add_(alpha, other)`` overload that old PyTorch tutorials use."""

import numpy as np
import pytest

import framework as fw


def test_unsqueeze_squeeze_transpose_in_place_keep_identity_and_storage():
    x = fw.tensor([1, 2, 3])
    y = x.unsqueeze_(-1)
    assert y is x and x.shape == (3, 1)
    np.testing.assert_array_equal(x.numpy(), [[1], [2], [3]])
    x.t_()
    assert x.shape == (1, 3)
    m = fw.arange(6).view(2, 3)
    m.t_()
    assert m.shape == (3, 2) and not m.is_contiguous() and m.numpy()[2, 1] == 5
    x.transpose_(0, 1)
    assert x.shape == (3, 1)
    x.swapdims_(0, 1).squeeze_()
    assert x.shape == (3,)
    z = fw.zeros(2, 1, 3)
    v = z.view(6)
    z.squeeze_(1).t_()[0, 1] = 5.0  # still the same storage
    assert z.shape == (3, 2) and v.numpy()[3] == 5.0


def test_unsqueeze_in_place_gradient_and_leaf_error():
    w = fw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = w * 2
    y.unsqueeze_(0)
    assert y.shape == (1, 3)
    (y * fw.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 4.0, 6.0])
    with pytest.raises(fw.AutogradError, match="leaf"):
        w.unsqueeze_(0)
    with fw.no_grad():
        w.unsqueeze_(0)
    assert w.shape == (1, 3)


def test_unsqueeze_in_place_inside_compile_and_on_an_input():
    def inner(x):
        y = x * 2
        y.unsqueeze_(-1)
        return y.sum(0)

    f = fw.compile(inner, mode="always")
    x = fw.arange(4.0)
    for _ in range(3):
        np.testing.assert_allclose(f(x).numpy(), [12.0])
    assert f.stats()["eager_reason"] is None

    def outer(x):
        x.unsqueeze_(-1)
        return x * 2

    g = fw.compile(outer, mode="always")
    with pytest.warns(UserWarning, match=r"unsqueeze_"):
        out = g(fw.arange(3.0))
    assert out.shape == (3, 1)


def test_deprecated_add_alpha_overload():
    p = fw.ones(3)
    with pytest.warns(UserWarning, match="deprecated"):
        p.add_(-0.5, fw.full((3,), 2.0))
    np.testing.assert_allclose(p.numpy(), [0.0, 0.0, 0.0])
    with pytest.warns(UserWarning, match="deprecated"):
        np.testing.assert_allclose(fw.sub(fw.ones(2), 2, fw.ones(2)).numpy(), [-1.0, -1.0])
    with pytest.raises(TypeError, match="deprecated"):
        fw.add(fw.ones(2), fw.ones(2), fw.ones(2))
