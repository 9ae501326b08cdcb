"""framework/ops/torch_gaps.py on device "cuda": empty_strided lays the device buffer out
with the requested strides, poisson samples on the device (and honours a generator),
asarray aliases device tensors and copies host arrays onto the device, gradient stays on
the device."""

import numpy as np

import framework as fw


def test_empty_strided_on_device():
    t = fw.empty_strided((2, 3), (1, 2), device="cuda")
    assert t.device.type == "cuda" and t.stride() == (1, 2) and not t.is_contiguous()
    assert t.cpu().tolist() == [[0.0] * 3] * 2
    t.copy_(fw.arange(6.0).reshape(2, 3).to("cuda"))
    assert (t + 1).cpu().tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def test_poisson_on_device():
    fw.manual_seed(0)
    s = fw.poisson(fw.full((4000,), 4.0, device="cuda"))
    assert s.device.type == "cuda" and s.dtype is fw.float32
    assert abs(s.mean().item() - 4.0) < 0.2 and abs(s.var().item() - 4.0) < 0.4
    g1, g2 = fw.Generator("cuda").manual_seed(3), fw.Generator("cuda").manual_seed(3)
    r = fw.full((64,), 20.0, device="cuda")
    assert fw.equal(fw.poisson(r, generator=g1), fw.poisson(r, generator=g2))


def test_asarray_and_gradient_on_device():
    x = fw.arange(4.0, device="cuda")
    y = fw.asarray(x)
    y[0] = 9.0
    assert x.cpu().tolist() == [9.0, 1.0, 2.0, 3.0]
    a = fw.asarray(np.arange(3.0), device="cuda")
    assert a.device.type == "cuda" and a.dtype is fw.float64
    c = np.array([0.0, 1.0, 3.0, 4.0, 7.0])
    (d,) = fw.gradient(fw.tensor(c ** 2, device="cuda"), spacing=[fw.tensor(c, device="cuda")],
                       edge_order=2)
    assert d.device.type == "cuda"
    np.testing.assert_allclose(d.cpu().numpy(), 2 * c, rtol=1e-10, atol=1e-10)
