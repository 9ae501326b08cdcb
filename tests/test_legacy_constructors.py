"""PyTorch's legacy constructors: ``fw.Tensor(*sizes)``, ``fw.Tensor(data)`` and the typed
``fw.FloatTensor`` / ``fw.LongTensor`` / ... classes (framework/legacy_constructors.py)."""

import numpy as np
import pytest

import framework as fw
from framework.errors import FwTypeError


def test_tensor_with_sizes_is_an_uninitialised_default_dtype_tensor():
    t = fw.Tensor(3, 4)
    assert t.shape == (3, 4) and t.dtype is fw.float32 and not t.requires_grad
    assert fw.Tensor(5).shape == (5,)  # not a 0-d tensor holding 5
    assert fw.Tensor(fw.Size([2, 1])).shape == (2, 1)
    assert fw.Tensor().shape == (0,)
    p = fw.nn.Parameter(fw.Tensor(2, 3))  # the published nn.Parameter(torch.Tensor(i, o))
    assert p.shape == (2, 3) and p.requires_grad


def test_tensor_from_data_is_float_and_follows_the_default_dtype():
    assert fw.Tensor([1, 2]).dtype is fw.float32  # not int64 as fw.tensor
    assert fw.Tensor([1, 2]).tolist() == [1.0, 2.0]
    assert fw.Tensor(np.array([[1, 2]], dtype=np.int32)).dtype is fw.float32
    assert fw.Tensor((2, 3)).tolist() == [2.0, 3.0]  # a tuple is data, not sizes
    old = fw.get_default_dtype()
    fw.set_default_dtype(fw.float64)
    try:
        assert fw.Tensor([1]).dtype is fw.float64 and fw.Tensor(2).dtype is fw.float64
    finally:
        fw.set_default_dtype(old)


def test_tensor_of_a_tensor_is_an_alias_that_keeps_autograd():
    a = fw.ones(3, requires_grad=True)
    b = fw.Tensor(a)
    (b * 2).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 2.0, 2.0])
    c = fw.zeros(2)
    fw.Tensor(c).add_(1)
    np.testing.assert_array_equal(c.numpy(), [1.0, 1.0])  # shares storage


@pytest.mark.parametrize("bad", [(2.5,), ("ab",), (fw.tensor([1, 2]),), (2, [3])])
def test_tensor_rejects_what_pytorch_rejects(bad):
    with pytest.raises(FwTypeError, match="Tensor()"):
        fw.Tensor(*bad)


def test_typed_legacy_classes_convert_and_check_instances():
    f = fw.FloatTensor(np.array([[1, 0], [2, 3]], dtype=np.int32))
    assert f.dtype is fw.float32 and f.tolist() == [[1.0, 0.0], [2.0, 3.0]]
    assert fw.LongTensor(np.array([0, 2, 1])).dtype is fw.int64
    assert fw.LongTensor([1.7]).tolist() == [1]
    assert fw.DoubleTensor(2, 2).dtype is fw.float64 and fw.DoubleTensor(2, 2).shape == (2, 2)
    assert fw.BoolTensor([1, 0]).tolist() == [True, False]
    assert fw.ByteTensor([255]).dtype is fw.uint8
    assert isinstance(fw.ones(2), fw.FloatTensor) and not isinstance(fw.ones(2), fw.LongTensor)
    assert isinstance(fw.tensor([1]), fw.LongTensor)
    assert fw.typename(fw.ones(1)) == "framework.FloatTensor"
    with pytest.raises(FwTypeError, match="LongTensor"):
        fw.LongTensor(fw.ones(2))


def test_set_default_tensor_type_sets_the_default_dtype_and_device():
    """llama's ``torch.set_default_tensor_type(torch.cuda.HalfTensor)`` before building."""
    try:
        with pytest.warns(UserWarning, match="deprecated as of PyTorch 2.1"):
            fw.set_default_tensor_type(fw.HalfTensor)
        assert fw.get_default_dtype() is fw.float16 and fw.zeros(2).dtype is fw.float16
        assert fw.nn.Linear(2, 3).weight.dtype is fw.float16 and fw.arange(3).dtype is fw.int64
        assert fw.tensor([1.5]).dtype is fw.float16
        with pytest.warns(UserWarning):
            fw.set_default_tensor_type("torch.DoubleTensor")
        assert fw.ones(1).dtype is fw.float64 and fw.get_default_device().type == "cpu"
        with pytest.warns(UserWarning), pytest.raises(FwTypeError, match="only floating-point"):
            fw.set_default_tensor_type(fw.LongTensor)
        with pytest.warns(UserWarning), pytest.raises(FwTypeError, match="invalid type"):
            fw.set_default_tensor_type(fw.float32)
        with pytest.warns(UserWarning), pytest.raises(FwTypeError, match="invalid type"):
            fw.set_default_tensor_type("torch.cuda.Nope")
    finally:
        fw.set_default_dtype(fw.float32)
        fw.set_default_device(None)
    assert fw.zeros(1).dtype is fw.float32


def test_set_default_tensor_type_cuda_name(monkeypatch):
    import framework.cuda
    monkeypatch.setattr(framework.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning), pytest.raises(FwTypeError, match="not available"):
        fw.set_default_tensor_type("torch.cuda.HalfTensor")
    assert fw.get_default_dtype() is fw.float32  # unchanged
    monkeypatch.setattr(framework.cuda, "is_available", lambda: True)
    try:
        with pytest.warns(UserWarning):
            fw.set_default_tensor_type("torch.cuda.HalfTensor")
        assert fw.get_default_dtype() is fw.float16 and fw.get_default_device().type == "cuda"
    finally:
        fw.set_default_dtype(fw.float32)
        fw.set_default_device(None)
