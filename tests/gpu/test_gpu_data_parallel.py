"""``nn.parallel.data_parallel`` / ``nn.DataParallel`` on the one cuda device (the
simulated one without a GPU); the CPU side is in tests/nn/test_parallel.py."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import DeviceError


def test_data_parallel_on_one_gpu_moves_inputs_and_checks_module_device():
    fw.manual_seed(0)
    m = nn.Linear(2, 3).cuda()
    x = fw.randn(4, 2, requires_grad=True)
    y = nn.parallel.data_parallel(m, x, range(1))
    assert y.device == fw.device("cuda:0")
    y.sum().backward()
    assert x.grad.device == fw.device("cpu") and m.weight.grad.device == fw.device("cuda:0")
    np.testing.assert_allclose(y.detach().cpu().numpy(),
                               x.detach().numpy() @ m.weight.detach().cpu().numpy().T
                               + m.bias.detach().cpu().numpy(), rtol=1e-5, atol=1e-6)
    assert nn.DataParallel(m)(x).device == fw.device("cuda:0")
    with pytest.raises(DeviceError, match="device_ids\\[0\\]"):
        nn.parallel.data_parallel(nn.Linear(2, 2), x, [0])
    with pytest.raises(NotImplementedError, match="one GPU per process"):
        nn.parallel.data_parallel(m, x, [0, 1])
