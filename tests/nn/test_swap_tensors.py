"""``fw.utils.swap_tensors`` and the ``fw.__future__`` module-conversion flags."""

import numpy as np

import framework as fw
from framework import nn


def test_swap_tensors_exchanges_contents_and_class():
    a, b = fw.arange(2), nn.Parameter(fw.ones(3, dtype=fw.float32))
    b.grad = fw.full((3,), 7.0)
    a.note = "a"
    fw.utils.swap_tensors(a, b)
    assert type(a) is nn.Parameter and type(b) is fw.Tensor
    assert a.shape == (3,) and a.dtype == fw.float32 and a.requires_grad
    np.testing.assert_array_equal(a.grad.numpy(), [7.0, 7.0, 7.0])
    assert b.shape == (2,) and b.dtype == fw.int64 and not b.requires_grad and b.grad is None
    assert b.note == "a" and not hasattr(a, "note")
    with fw.no_grad():
        a.add_(1)  # each now owns the other's storage
    np.testing.assert_array_equal(a.detach().numpy(), [2.0, 2.0, 2.0])


def test_module_conversion_flags():
    m = nn.Linear(2, 3)
    w = m.weight
    try:
        fw.__future__.set_swap_module_params_on_conversion(True)
        m.double()
        assert m.weight is w and w.dtype == fw.float64 and isinstance(w, nn.Parameter)
    finally:
        fw.__future__.set_swap_module_params_on_conversion(False)
    try:
        fw.__future__.set_overwrite_module_params_on_conversion(True)
        m.float()
        assert m.weight is not w and m.weight.dtype == fw.float32 and w.dtype == fw.float64
        assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    finally:
        fw.__future__.set_overwrite_module_params_on_conversion(False)
    w = m.weight
    m.double()  # default: param.data = ..., same object
    assert m.weight is w and w.dtype == fw.float64
