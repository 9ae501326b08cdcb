"""scatter_reduce / index_reduce on device "cuda" (the host-computing kernel): the CPU's
values for every reduce x include_self, results kept on the device, strided and expanded
inputs, index range errors, gradients on the device equal to the CPU's, and fw.compile
capturing the op whole on the GPU path."""

import math

import numpy as np
import pytest

import framework as fw
from framework.errors import FwIndexError

REDUCES = ("sum", "prod", "mean", "amax", "amin")


def _case(dt, seed):
    g = np.random.default_rng(seed)
    if dt.is_floating_point:
        x, src = g.uniform(-2, 2, (4, 5)), g.uniform(-2, 2, (7, 6))
        x[1, 1], src[2, 3] = math.nan, math.nan
    else:
        x, src = g.integers(-4, 5, (4, 5)), g.integers(-4, 5, (7, 6))
    return x.astype(dt.np), g.integers(0, 4, (6, 5)), src.astype(dt.np)


@pytest.mark.parametrize("dt", [fw.float32, fw.int64, fw.bfloat16], ids=lambda d: d.name)
@pytest.mark.parametrize("reduce", REDUCES)
def test_values_match_cpu_and_stay_on_device(reduce, dt):
    x, idx, src = _case(dt, 1)
    for inc in (True, False):
        want = fw.scatter_reduce(fw.tensor(x), 0, fw.tensor(idx), fw.tensor(src), reduce,
                                 include_self=inc)
        got = fw.scatter_reduce(fw.tensor(x, device="cuda"), 0, fw.tensor(idx, device="cuda"),
                                fw.tensor(src, device="cuda"), reduce, include_self=inc)
        assert got.device.type == "cuda" and got.dtype is dt
        wide = np.float64 if dt.is_floating_point else np.int64  # (bfloat16 NaN compares)
        np.testing.assert_array_equal(got.cpu().numpy().astype(wide), want.numpy().astype(wide))


def test_strided_inputs_index_reduce_and_in_place():
    a = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    xt = fw.tensor(a, device="cuda").t()  # (4, 5), transposed view
    src = fw.tensor(np.ones((4, 3), np.float32) * 2, device="cuda")
    got = xt.index_reduce(1, fw.tensor([4, 0, 4], device="cuda"), src, "prod")
    want = fw.tensor(a).t().index_reduce(1, fw.tensor([4, 0, 4]), fw.ones(4, 3) * 2, "prod")
    assert got.device.type == "cuda"
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
    y = fw.zeros(3, device="cuda")
    assert y.scatter_reduce_(0, fw.tensor([1, 1], device="cuda"),
                             fw.tensor([2.0, 3.0], device="cuda"), "amax",
                             include_self=False) is y
    assert y.cpu().tolist() == [0.0, 3.0, 0.0]


def test_index_errors_name_the_op():
    x = fw.zeros(3, device="cuda")
    with pytest.raises(FwIndexError, match="scatter_reduce: index 3 is out of bounds"):
        x.scatter_reduce(0, fw.tensor([3], device="cuda"), fw.ones(1, device="cuda"), "sum")
    with pytest.raises(FwIndexError, match="index_reduce: index -1 is out of bounds"):
        x.index_reduce(0, fw.tensor([-1], device="cuda"), fw.ones(1, device="cuda"), "mean")


@pytest.mark.parametrize("reduce", REDUCES)
def test_backward_on_device_matches_cpu(reduce):
    g = np.random.default_rng(3)
    x = g.uniform(0.5, 2, (3, 4)).astype(np.float32)
    src = g.uniform(0.5, 2, (5, 4)).astype(np.float32)
    idx = g.integers(0, 3, (4, 3))
    grads = []
    for dev in ("cpu", "cuda"):
        a = fw.tensor(x, device=dev, requires_grad=True)
        b = fw.tensor(src, device=dev, requires_grad=True)
        out = fw.scatter_reduce(a, 0, fw.tensor(idx, device=dev), b, reduce,
                                include_self=False)
        (out * fw.arange(4.0, device=dev)).sum().backward()
        assert a.grad.device.type == dev and b.grad.device.type == dev
        grads.append((a.grad.cpu().numpy(), b.grad.cpu().numpy()))
    for c, d in zip(*grads):
        np.testing.assert_allclose(d, c, rtol=1e-6, atol=1e-7)


def test_compiled_on_device_fullgraph(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    x, idx, src = _case(fw.float32, 4)
    i = fw.tensor(idx, device="cuda")

    def f(a, b):
        return fw.scatter_reduce(a * 2, 0, i, b, "mean", include_self=False).exp()
    cf = fw.compile(f, fullgraph=True, mode="always")
    a, b = fw.tensor(x, device="cuda"), fw.tensor(src, device="cuda")
    got = cf(a, b)
    assert got.device.type == "cuda" and not cf.stats()["graph_breaks"]
    np.testing.assert_allclose(got.cpu().numpy(), f(a, b).cpu().numpy(), rtol=1e-6,
                               equal_nan=True)
