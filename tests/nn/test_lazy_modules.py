"""Lazy modules (UninitializedParameter placeholders, shape inference on the first forward,
cls_to_become), nn.utils.skip_init and nn.utils.stateless.functional_call."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.errors import ArgumentError, FrameworkError, ShapeError
from framework.nn.parameter import is_lazy
from framework.nn.utils.stateless import functional_call


def _np(t):
    return t.detach().numpy()


# -- placeholders ------------------------------------------------------------------------
def test_uninitialized_parameter_and_buffer():
    p = nn.UninitializedParameter()
    assert isinstance(p, nn.Parameter) and is_lazy(p) and p.requires_grad
    assert repr(p) == "<UninitializedParameter>"
    with pytest.raises(ValueError, match="uninitialized parameter") as e:
        p + 1.0
    assert isinstance(e.value, FrameworkError)
    p.materialize((2, 3))
    assert type(p) is nn.Parameter and tuple(p.shape) == (2, 3) and not is_lazy(p)
    b = nn.UninitializedBuffer(dtype=fw.float64)
    b.materialize(4)
    assert type(b) is fw.Tensor and tuple(b.shape) == (4,) and b.dtype is fw.float64


# -- LazyLinear -----------------------------------------------------------------------------
def test_lazy_linear_infers_in_features_and_becomes_linear():
    fw.manual_seed(0)
    m = nn.LazyLinear(4)
    weight, bias = m.weight, m.bias
    assert isinstance(weight, nn.UninitializedParameter) and m.has_uninitialized_params()
    assert list(m.state_dict()) == ["weight", "bias"]
    y = m(fw.randn(2, 3, 6))
    assert type(m) is nn.Linear and m.in_features == 6 and tuple(y.shape) == (2, 3, 4)
    assert m.weight is weight and m.bias is bias  # materialized in place
    assert tuple(m.weight.shape) == (4, 6) and type(m.weight) is nn.Parameter
    bound = 1 / math.sqrt(6)
    assert np.abs(_np(m.weight)).max() <= bound and np.abs(_np(m.bias)).max() <= bound
    assert not m._forward_pre_hooks
    assert repr(m) == "Linear(in_features=6, out_features=4, bias=True)"
    np.testing.assert_allclose(_np(m(fw.ones(1, 6))), _np(m.weight).sum(1)[None] +
                               _np(m.bias), rtol=1e-5)
    nobias = nn.LazyLinear(2, bias=False)
    nobias(fw.randn(3, 5))
    assert nobias.bias is None and tuple(nobias.weight.shape) == (2, 5)


def test_lazy_linear_trains_with_optimizer_after_dry_run():
    fw.manual_seed(1)
    model = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
    x, y = fw.randn(16, 3), fw.randn(16, 1)
    model(x)  # dry run
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear]
    opt = optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0]


def test_lazy_to_dtype_before_first_forward():
    m = nn.LazyLinear(3).double()
    assert m.weight.dtype is fw.float64 and is_lazy(m.weight)
    m(fw.randn(2, 4, dtype=fw.float64))
    assert m.weight.dtype is fw.float64 and tuple(m.weight.shape) == (3, 4)


def test_lazy_state_dict_load_materializes():
    src = nn.Linear(5, 2)
    dst = nn.LazyLinear(2)
    dst.load_state_dict(src.state_dict())
    assert not dst.has_uninitialized_params() and tuple(dst.weight.shape) == (2, 5)
    x = fw.randn(3, 5)
    np.testing.assert_allclose(_np(dst(x)), _np(src(x)), rtol=1e-6)
    assert type(dst) is nn.Linear
    # a state dict saved before the first forward keeps its placeholders
    lazy_sd = nn.LazyLinear(2).state_dict()
    assert all(is_lazy(v) for v in lazy_sd.values())
    again = nn.LazyLinear(2)
    again.load_state_dict(lazy_sd)
    assert again.has_uninitialized_params()


# -- lazy convolutions --------------------------------------------------------------------
@pytest.mark.parametrize("cls,base,shape", [
    (nn.LazyConv1d, nn.Conv1d, (2, 3, 9)),
    (nn.LazyConv2d, nn.Conv2d, (2, 3, 6, 7)),
    (nn.LazyConv3d, nn.Conv3d, (1, 3, 4, 5, 4)),
    (nn.LazyConvTranspose1d, nn.ConvTranspose1d, (2, 3, 5)),
    (nn.LazyConvTranspose2d, nn.ConvTranspose2d, (2, 3, 4, 4)),
    (nn.LazyConvTranspose3d, nn.ConvTranspose3d, (1, 3, 3, 3, 3)),
])
def test_lazy_conv_infers_in_channels(cls, base, shape):
    fw.manual_seed(2)
    m = cls(4, 2)
    assert m.has_uninitialized_params()
    x = fw.randn(*shape)
    y = m(x)
    assert type(m) is base and m.in_channels == 3
    w_shape = (3, 4) if base.__name__.startswith("ConvTranspose") else (4, 3)
    assert tuple(m.weight.shape) == w_shape + (2,) * (len(shape) - 2)
    ref = base(3, 4, 2)
    ref.load_state_dict(m.state_dict())
    np.testing.assert_allclose(_np(y), _np(ref(x)), rtol=1e-5, atol=1e-6)


def test_lazy_conv_unbatched_groups_and_errors():
    m = nn.LazyConv2d(6, 3, groups=2, padding=1, bias=False)
    y = m(fw.randn(4, 5, 5))  # unbatched (C, H, W)
    assert m.in_channels == 4 and tuple(m.weight.shape) == (6, 2, 3, 3) and m.bias is None
    assert tuple(y.shape) == (6, 5, 5)
    with pytest.raises(ArgumentError, match=r"in_channels \(3\) must be divisible by groups"):
        nn.LazyConv1d(4, 1, groups=2)(fw.randn(1, 3, 5))
    with pytest.raises(ShapeError, match="Expected 3D \\(unbatched\\) or 4D \\(batched\\)"):
        nn.LazyConv2d(4, 1)(fw.randn(3, 5))


# -- lazy norms --------------------------------------------------------------------------
@pytest.mark.parametrize("cls,base,shape", [
    (nn.LazyBatchNorm1d, nn.BatchNorm1d, (4, 3)),
    (nn.LazyBatchNorm1d, nn.BatchNorm1d, (4, 3, 5)),
    (nn.LazyBatchNorm2d, nn.BatchNorm2d, (4, 3, 2, 2)),
    (nn.LazyBatchNorm3d, nn.BatchNorm3d, (2, 3, 2, 2, 2)),
])
def test_lazy_batch_norm(cls, base, shape):
    m = cls()
    assert list(m.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                    "num_batches_tracked"]
    x = fw.randn(*shape)
    y = m(x)
    assert type(m) is base and m.num_features == 3
    np.testing.assert_allclose(_np(m.weight), np.ones(3))
    ref = base(3)
    np.testing.assert_allclose(_np(y), _np(ref(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(m.running_mean), _np(ref.running_mean), rtol=1e-5,
                               atol=1e-7)
    assert int(m.num_batches_tracked) == 1


def test_lazy_norm_options_and_instance_norm():
    m = nn.LazyBatchNorm1d(affine=False, track_running_stats=False)
    assert not m.has_uninitialized_params()
    m(fw.randn(3, 2))
    assert type(m) is nn.BatchNorm1d and m.weight is None and m.running_mean is None
    inorm = nn.LazyInstanceNorm1d(affine=True)
    inorm(fw.randn(5, 7))  # unbatched (C, L): 5 channels
    assert type(inorm) is nn.InstanceNorm1d and tuple(inorm.weight.shape) == (5,)


# -- skip_init -----------------------------------------------------------------------------
def test_skip_init():
    m = nn.utils.skip_init(nn.Linear, 3, 4, dtype=fw.float64)
    assert type(m) is nn.Linear and tuple(m.weight.shape) == (4, 3)
    assert m.weight.device == fw.device("cpu") and m.weight.dtype is fw.float64
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    bn = nn.utils.skip_init(nn.BatchNorm2d, 5)
    assert tuple(bn.running_mean.shape) == (5,) and bn.running_mean.device.type == "cpu"
    with pytest.raises(TypeError, match="Expected a Module"):
        nn.utils.skip_init(int)

    class NoDevice(nn.Module):
        def __init__(self, n):
            super().__init__()

    with pytest.raises(ValueError, match="'device' arg"):
        nn.utils.skip_init(NoDevice, 3)


# -- functional_call --------------------------------------------------------------------
def test_functional_call_replaces_then_restores():
    m = nn.Linear(3, 2)
    w0 = _np(m.weight).copy()
    w = fw.randn(2, 3, requires_grad=True)
    x = fw.randn(4, 3)
    out = functional_call(m, {"weight": w}, (x,))
    np.testing.assert_allclose(_np(out), _np(x) @ _np(w).T + _np(m.bias), rtol=1e-5)
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.tile(_np(x).sum(0), (2, 1)), rtol=1e-5)
    assert m.weight.grad is None and isinstance(m.weight, nn.Parameter)
    np.testing.assert_array_equal(_np(m.weight), w0)
    # a tuple of dicts, a single non-tuple arg, kwargs
    seq = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    out = functional_call(seq, ({"0.weight": fw.eye(3)}, {"0.bias": fw.zeros(3)}), x)
    np.testing.assert_allclose(_np(out), np.maximum(_np(x), 0))
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        functional_call(seq, ({"0.bias": fw.zeros(3)}, {"0.bias": fw.ones(3)}), x)
    assert nn.utils.stateless.functional_call is functional_call


def test_functional_call_strict_tied_and_restores_on_error():
    m = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="Missing key\\(s\\): 'bias'"):
        functional_call(m, {"weight": fw.zeros(2, 2)}, fw.ones(1, 2), strict=True)
    with pytest.raises(RuntimeError, match="Unexpected key\\(s\\): 'extra'"):
        functional_call(m, {"weight": fw.zeros(2, 2), "bias": fw.zeros(2),
                            "extra": fw.zeros(1)}, fw.ones(1, 2), strict=True)

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2, bias=False)
            self.b = nn.Linear(2, 2, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    t = Tied()
    out = functional_call(t, {"a.weight": 2 * fw.eye(2)}, fw.ones(1, 2))
    np.testing.assert_allclose(_np(out), [[4.0, 4.0]])  # b.weight followed a.weight
    out = functional_call(t, {"a.weight": 2 * fw.eye(2)}, fw.ones(1, 2), tie_weights=False)
    assert not np.allclose(_np(out), [[4.0, 4.0]])
    with pytest.raises(ValueError, match="which are tied"):
        functional_call(t, {"a.weight": fw.eye(2), "b.weight": fw.eye(2) * 3}, fw.ones(1, 2))
    w0 = _np(m.weight).copy()
    with pytest.raises(ShapeError):
        functional_call(m, {"weight": fw.zeros(5, 5)}, fw.ones(1, 2))
    assert isinstance(m.weight, nn.Parameter)
    np.testing.assert_array_equal(_np(m.weight), w0)
