"""nn.SyncBatchNorm without a distributed group is batch norm (as PyTorch's falls back to
F.batch_norm when there is nothing to synchronize), and convert_sync_batchnorm swaps the
layers in place of BatchNorm*d, sharing their parameters and buffers."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ShapeError


@pytest.mark.parametrize("shape, ref", [((6, 3), nn.BatchNorm1d), ((6, 3, 5), nn.BatchNorm1d),
                                        ((4, 3, 5, 5), nn.BatchNorm2d),
                                        ((2, 3, 2, 3, 4), nn.BatchNorm3d)])
def test_sync_batch_norm_is_batch_norm(shape, ref):
    fw.manual_seed(0)
    sync, plain = nn.SyncBatchNorm(3, momentum=0.3), ref(3, momentum=0.3)
    with fw.no_grad():
        for m in (sync, plain):
            m.weight.copy_(fw.tensor([0.5, 2.0, -1.0]))
            m.bias.copy_(fw.tensor([0.1, 0.0, 0.3]))
    for _ in range(2):
        x = fw.randn(*shape) * 3 + 1
        np.testing.assert_allclose(sync(x).detach().numpy(), plain(x).detach().numpy(),
                                   rtol=1e-6)
    np.testing.assert_allclose(sync.running_var.numpy(), plain.running_var.numpy(), rtol=1e-6)
    assert int(sync.num_batches_tracked) == 2
    sync.eval(), plain.eval()
    np.testing.assert_allclose(sync(x).detach().numpy(), plain(x).detach().numpy(), rtol=1e-6)
    assert list(sync.state_dict()) == list(plain.state_dict())


def test_convert_sync_batchnorm_shares_parameters_and_modes():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4),
                          nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4 * 4 * 4, affine=False)))
    model[1].eval()
    weight, mean = model[1].weight, model[1].running_mean
    out = nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group="group")
    assert isinstance(out[1], nn.SyncBatchNorm) and isinstance(out[2][1], nn.SyncBatchNorm)
    assert out[1].weight is weight and out[1].running_mean is mean
    assert not out[1].training and out[2][1].training and out[1].process_group == "group"
    assert out[2][1].weight is None and isinstance(out[0], nn.Conv2d)
    y = out(fw.randn(2, 2, 6, 6))
    assert y.shape == (2, 64)


def test_sync_batch_norm_errors_and_compile():
    m = nn.SyncBatchNorm(3)
    with pytest.raises(ShapeError, match="at least 2D"):
        m(fw.randn(3))
    with pytest.raises(ShapeError, match="non-zero"):
        nn.SyncBatchNorm(0)(fw.randn(2, 0))
    x = fw.randn(4, 3, 5)
    m.eval()
    np.testing.assert_allclose(fw.compile(m, mode="always")(x).detach().numpy(),
                               m(x).detach().numpy(), rtol=1e-6)
