"""optim.swa_utils: AveragedModel (SWA / EMA) vs NumPy, SWALR vs its formula, update_bn."""

import math
import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.data import DataLoader, TensorDataset
from framework.errors import ArgumentError
from framework.optim import swa_utils
from framework.optim.swa_utils import (SWALR, AveragedModel, get_ema_avg_fn,
                                       get_ema_multi_avg_fn, get_swa_avg_fn,
                                       get_swa_multi_avg_fn, update_bn)


def _net():
    fw.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4, dtype=fw.float64), nn.BatchNorm1d(4, dtype=fw.float64),
                         nn.Linear(4, 2, dtype=fw.float64))


def _snapshots(model, n, rng):
    """Set ``model``'s parameters and buffers to ``n`` random states, yielding each as
    NumPy arrays (parameters, buffers)."""
    for _ in range(n):
        with fw.no_grad():
            for t in list(model.parameters()) + [model[1].running_mean, model[1].running_var]:
                t.copy_(fw.tensor(rng.standard_normal(t.shape)))
        yield ([p.detach().numpy().copy() for p in model.parameters()],
               [b.numpy().copy() for b in model.buffers()])


@pytest.mark.parametrize("how", ["default", "avg_fn", "multi_avg_fn"])
def test_swa_average_matches_mean(how):
    model = _net()
    kw = {"avg_fn": dict(avg_fn=get_swa_avg_fn()),
          "multi_avg_fn": dict(multi_avg_fn=get_swa_multi_avg_fn())}.get(how, {})
    swa = AveragedModel(model, **kw)
    seen = []
    for params, buffers in _snapshots(model, 5, np.random.default_rng(0)):
        swa.update_parameters(model)
        seen.append(params)
        for got, want in zip(swa.module.parameters(), zip(*seen)):
            np.testing.assert_allclose(got.detach().numpy(), np.mean(want, 0), rtol=1e-12,
                                       atol=1e-14)
        for got, want in zip(swa.module.buffers(), buffers):  # copied, not averaged
            np.testing.assert_array_equal(got.numpy(), want)
    assert int(swa.n_averaged) == 5 and swa.n_averaged.dtype is fw.int64
    x = fw.randn(6, 3, dtype=fw.float64)
    swa.eval()
    np.testing.assert_array_equal(swa(x).detach().numpy(), swa.module(x).detach().numpy())


@pytest.mark.parametrize("how", ["multi_avg_fn", "avg_fn"])
def test_ema_matches_numpy(how):
    decay = 0.9
    model = _net()
    kw = dict(multi_avg_fn=get_ema_multi_avg_fn(decay)) if how == "multi_avg_fn" else \
        dict(avg_fn=get_ema_avg_fn(decay))
    ema = AveragedModel(model, use_buffers=True, **kw)
    ref = None
    for params, buffers in _snapshots(model, 4, np.random.default_rng(1)):
        ema.update_parameters(model)
        current = params + buffers
        if ref is None:
            ref = [c.copy() for c in current]
        elif how == "multi_avg_fn":  # lerp(ema, current, 1 - decay)
            ref = [r + (1 - decay) * (c - r) for r, c in zip(ref, current)]
        else:
            ref = [decay * r + (1 - decay) * c for r, c in zip(ref, current)]
        got = list(ema.module.parameters()) + list(ema.module.buffers())
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g.detach().numpy(), r, rtol=1e-12, atol=1e-14)


def test_averaged_model_copies_and_moves():
    model = nn.Linear(2, 2)
    swa = AveragedModel(model, device="cpu")
    assert swa.module is not model and swa.module.weight is not model.weight
    with fw.no_grad():
        model.weight.add_(1.0)
    assert not np.allclose(swa.module.weight.detach().numpy(), model.weight.detach().numpy())
    assert set(swa.state_dict()) == {"n_averaged", "module.weight", "module.bias"}
    assert [p is q for p, q in zip(swa.parameters(), swa.module.parameters())] == [True, True]
    with pytest.raises(TypeError, match="nn.Module"):
        AveragedModel(fw.zeros(2))


def test_ema_helpers_check_decay():
    for fn in (get_ema_avg_fn, get_ema_multi_avg_fn):
        with pytest.raises(ArgumentError, match="Invalid decay value 1.5"):
            fn(1.5)
        with pytest.raises(ValueError, match="Invalid decay value"):
            fn(-0.1)
    assert set(swa_utils.__all__) >= {"AveragedModel", "SWALR", "update_bn", "get_ema_avg_fn",
                                      "get_swa_avg_fn", "get_ema_multi_avg_fn",
                                      "get_swa_multi_avg_fn"}
    assert optim.swa_utils is swa_utils


# -- SWALR ----------------------------------------------------------------------------------
def _expected(lr0, swa_lr, n, epochs, strategy):
    t = min(1.0, n / max(1, epochs)) if epochs else 1.0
    alpha = (1 - math.cos(math.pi * t)) / 2 if strategy == "cos" else t
    return swa_lr * alpha + lr0 * (1 - alpha)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("epochs", [0, 1, 5])
def test_swalr_schedule(strategy, epochs):
    w1, w2 = fw.zeros(1, requires_grad=True), fw.zeros(1, requires_grad=True)
    opt = optim.SGD([{"params": [w1]}, {"params": [w2], "lr": 0.5}], lr=1.0)
    sched = SWALR(opt, swa_lr=[0.1, 0.2], anneal_epochs=epochs, anneal_strategy=strategy)
    assert [g["swa_lr"] for g in opt.param_groups] == [0.1, 0.2]
    for n in range(9):
        want = [_expected(1.0, 0.1, n, epochs, strategy), _expected(0.5, 0.2, n, epochs,
                                                                    strategy)]
        np.testing.assert_allclose(sched.get_last_lr(), want, rtol=1e-12)
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], want, rtol=1e-12)
        opt.step()
        sched.step()


def test_swalr_state_dict_and_errors():
    w = fw.zeros(1, requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    sched = SWALR(opt, swa_lr=0.05, anneal_epochs=3)
    opt.step()
    sched.step()
    state = sched.state_dict()
    assert state["anneal_epochs"] == 3 and "optimizer" not in state
    opt2 = optim.SGD([fw.zeros(1, requires_grad=True)], lr=1.0)
    sched2 = SWALR(opt2, swa_lr=0.05, anneal_epochs=3)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == sched.last_epoch
    with pytest.raises(ArgumentError, match="anneal_strategy must by one of"):
        SWALR(opt, swa_lr=0.1, anneal_strategy="exp")
    for bad in (-1, 2.5):
        with pytest.raises(ArgumentError, match="anneal_epochs must be equal or greater"):
            SWALR(opt, swa_lr=0.1, anneal_epochs=bad)
    with pytest.raises(ArgumentError, match="same length"):
        SWALR(opt, swa_lr=[0.1, 0.2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # get_lr outside step warns, as in PyTorch
        with pytest.raises(UserWarning, match="get_last_lr"):
            sched.get_lr()


# -- update_bn ----------------------------------------------------------------------------
def test_update_bn_recomputes_dataset_statistics():
    model = _net()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 3)) * 2 + 1
    bn = model[1]
    bn.momentum = 0.3
    model.eval()
    with fw.no_grad():
        h = model[0](fw.tensor(x)).numpy()
    # one batch: exactly the dataset's mean and unbiased variance
    update_bn([fw.tensor(x)], model)
    np.testing.assert_allclose(bn.running_mean.numpy(), h.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), h.var(0, ddof=1), rtol=1e-12)
    assert bn.momentum == 0.3 and not model.training and int(bn.num_batches_tracked) == 1
    # equal batches from a DataLoader of (input, target) pairs: the cumulative average of
    # the batch statistics (the mean is the dataset mean)
    loader = DataLoader(TensorDataset(fw.tensor(x), fw.zeros(12)), batch_size=4)
    model.train()
    update_bn(loader, model, device="cpu")
    batches = h.reshape(3, 4, 4)
    np.testing.assert_allclose(bn.running_mean.numpy(), h.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), batches.var(1, ddof=1).mean(0),
                               rtol=1e-12)
    assert model.training and int(bn.num_batches_tracked) == 3


def test_update_bn_on_an_averaged_model_and_without_batchnorm():
    model = _net()
    swa = AveragedModel(model)
    for _ in _snapshots(model, 2, np.random.default_rng(3)):
        swa.update_parameters(model)
    x = fw.randn(8, 3, dtype=fw.float64)
    update_bn([x], swa)
    with fw.no_grad():
        h = swa.module[0](x).numpy()
    np.testing.assert_allclose(swa.module[1].running_mean.numpy(), h.mean(0), rtol=1e-12)
    lin = nn.Linear(3, 1)
    before = lin.weight.detach().numpy().copy()
    update_bn([fw.randn(2, 3)], lin)  # nothing to do
    np.testing.assert_array_equal(lin.weight.detach().numpy(), before)
