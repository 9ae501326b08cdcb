"""``out=`` on the ``fw.*`` functions (framework/out_arg.py), with PyTorch's rules."""

import warnings

import numpy as np
import pytest

import framework as fw


def test_out_receives_the_result_and_is_returned():
    x, y = fw.rand(5, 3), fw.rand(5, 3)
    result = fw.empty(5, 3)
    assert fw.add(x, y, out=result) is result
    np.testing.assert_array_equal(result.numpy(), x.numpy() + y.numpy())
    t = fw.ones(4, 4)
    y3 = fw.rand_like(t)
    fw.matmul(t, t.T, out=y3)
    np.testing.assert_array_equal(y3.numpy(), np.full((4, 4), 4.0, np.float32))
    s = fw.empty(3)
    fw.sum(x, 0, out=s)
    np.testing.assert_allclose(s.numpy(), x.numpy().sum(0), rtol=1e-6)
    assert fw.add(x, y, alpha=2, out=fw.empty(5, 3)).shape == (5, 3)


def test_out_dtype_cast_and_refusal():
    i = fw.ones(3, dtype=fw.int64)
    f = fw.zeros(3)
    fw.add(i, i, out=f)   # int -> float out is allowed
    assert f.dtype is fw.float32 and f.tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(fw.DTypeError, match="can't be cast to the desired output type int64"):
        fw.add(f, f, out=fw.zeros(3, dtype=fw.int64))


def test_out_resize_warns_unless_empty():
    x = fw.rand(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = fw.empty(0)
        fw.mul(x, 2, out=e)
    assert e.shape == (2, 3)
    with pytest.warns(UserWarning, match="resized"):
        o = fw.zeros(4)
        fw.mul(x, 2, out=o)
    np.testing.assert_array_equal(o.numpy(), x.numpy() * 2)


def test_out_refuses_autograd_and_accepts_no_grad():
    a = fw.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        fw.mul(a, 2, out=fw.empty(3))
    with fw.no_grad():
        assert fw.mul(a, 2, out=fw.empty(3)).tolist() == [2.0, 2.0, 2.0]


def test_tuple_outs():
    v, i = fw.empty(0), fw.empty(0, dtype=fw.int64)
    res = fw.max(fw.tensor([[1., 3.], [4., 2.]]), 1, out=(v, i))
    assert v.tolist() == [3.0, 4.0] and i.tolist() == [1, 0]
    assert res.values is v and res.indices is i
