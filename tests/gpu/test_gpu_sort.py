"""sort / argsort / topk on device "cuda" (the host-sorting ``argsort`` kernel): PyTorch's
order (NaN largest, stable ties both ways), results kept on the device, autograd through
the values, and ``fw.compile`` capturing the op whole on the GPU path."""

import math

import numpy as np

import framework as fw

NAN = math.nan


def test_order_and_device():
    x = fw.tensor([[1.0, NAN, 3.0, 3.0, -0.0, 0.0]], device="cuda")
    v, i = fw.sort(x, descending=True)
    assert v.device.type == "cuda" and i.device.type == "cuda" and i.dtype is fw.int64
    np.testing.assert_array_equal(v.cpu().numpy(), [[NAN, 3.0, 3.0, 1.0, -0.0, 0.0]])
    assert i.cpu().tolist() == [[1, 2, 3, 0, 4, 5]]
    assert fw.argsort(x).cpu().tolist() == [[4, 5, 0, 2, 3, 1]]


def test_bool_uint8_and_strided_input():
    b = fw.tensor([True, False, True, False], device="cuda")
    assert fw.argsort(b, descending=True).cpu().tolist() == [0, 2, 1, 3]
    u = fw.tensor([3, 255, 0, 255], dtype=fw.uint8, device="cuda")
    v, i = fw.topk(u, 3)
    assert v.cpu().tolist() == [255, 255, 3] and i.cpu().tolist() == [1, 3, 0]
    a = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    xt = fw.tensor(a, device="cuda").t()  # a transposed (non-contiguous) view
    np.testing.assert_array_equal(fw.argsort(xt, dim=1).cpu().numpy(),
                                  np.argsort(a.T, axis=1, kind="stable"))


def test_values_backward_on_device():
    x = fw.tensor([[3.0, 1.0, 2.0]], device="cuda", requires_grad=True)
    x.topk(2).values.sum().backward()
    assert x.grad.device.type == "cuda" and x.grad.cpu().tolist() == [[1.0, 0.0, 1.0]]


def test_compiled_topk_on_device(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    fn = fw.compile(lambda t: t.topk(3).values * 2, fullgraph=True, mode="always")
    x = fw.tensor(np.random.default_rng(2).standard_normal((4, 9)).astype(np.float32),
                  device="cuda")
    got = fn(x)
    assert got.device.type == "cuda" and not fn.stats()["graph_breaks"]
    np.testing.assert_array_equal(got.cpu().numpy(), (x.topk(3).values * 2).cpu().numpy())
