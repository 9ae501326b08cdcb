"""``fw.nn.parallel`` (DataParallel, data_parallel, DistributedDataParallel) and the small
import-compatibility pieces scripts like pytorch/examples' dcgan rely on."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import DeviceError, DistributedError


def test_import_forms_of_the_examples_work():
    import framework.backends.cudnn as cudnn
    import framework.nn.parallel as parallel
    cudnn.benchmark = True
    try:
        assert fw.backends.cudnn is cudnn and fw.backends.cudnn.benchmark is True
    finally:
        cudnn.benchmark = False
    assert nn.parallel is parallel and nn.DataParallel is parallel.DataParallel
    t = fw.randn(2)
    assert t.is_xpu is False and t.is_mps is False and t.is_cuda is False


def test_dataparallel_without_accelerator_calls_the_module(monkeypatch):
    monkeypatch.setattr(fw.accelerator, "is_available", lambda: False)
    fw.manual_seed(0)
    inner = nn.Linear(3, 2)
    dp = nn.DataParallel(inner)
    assert dp.device_ids == [] and dp.module is inner
    assert list(dp.state_dict()) == ["module.weight", "module.bias"]
    x = fw.randn(4, 3, requires_grad=True)
    y = dp(x)
    np.testing.assert_array_equal(y.detach().numpy(), inner(x).detach().numpy())
    y.sum().backward()
    assert inner.weight.grad is not None and x.grad.shape == (4, 3)
    with pytest.raises(DeviceError, match="could not be determined"):
        nn.parallel.data_parallel(inner, x, range(1))


def test_distributed_data_parallel_needs_a_process_group():
    with pytest.raises(DistributedError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
