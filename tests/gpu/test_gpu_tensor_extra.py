"""framework/ops/tensor_extra.py and framework/tensor_info.py on device "cuda": the
composites stay on the device and match the CPU (gradients too), the random fills are
seeded and in range, and the CPU-only methods refuse the device with PyTorch's errors."""

import numpy as np
import pytest

import framework as fw


def _pair(*shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return fw.tensor(a), fw.tensor(a, device="cuda")


def _same(got, want):
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_metadata_on_device():
    c, g = _pair(3, 4)
    assert g.data_ptr() == g._data.data_ptr() and g[1:].data_ptr() - g.data_ptr() == 16
    assert g.type() == "framework.cuda.FloatTensor"
    assert g.type("framework.cuda.LongTensor").device.type == "cuda"
    back = g.type("framework.DoubleTensor")
    assert back.device.type == "cpu" and back.dtype is fw.float64
    assert c.type("torch.cuda.FloatTensor").device.type == "cuda"
    assert g.nbytes == 48 and g.itemsize == 4 and g.is_signed() and not g.is_pinned()
    with pytest.raises(fw.DeviceError, match="pin"):
        g.pin_memory()
    with pytest.raises(fw.DeviceError, match="CPU"):
        g.apply_(abs)
    with pytest.raises(fw.DeviceError, match="CPU"):
        g.resize_(2)


def test_composites_on_device_match_cpu():
    c, g = _pair(4, 6)
    _same(g.unfold(1, 3, 2), c.unfold(1, 3, 2))
    _same(g.sum_to_size(1, 6), c.sum_to_size(1, 6))
    _same(g.narrow_copy(0, 1, 2), c.narrow_copy(0, 1, 2))
    m = fw.tensor(np.random.default_rng(1).random((4, 6)) < 0.5)
    src_c, src_g = _pair(24, seed=2)
    _same(g.masked_scatter(m.to("cuda"), src_g), c.masked_scatter(m, src_c))
    s_c, s_g = _pair(2, 6, seed=3)
    _same(fw.slice_scatter(g, s_g, 0, 1, None, 2), fw.slice_scatter(c, s_c, 0, 1, None, 2))
    _same(fw.select_scatter(g, s_g[0], 0, 3), fw.select_scatter(c, s_c[0], 0, 3))
    _same(fw.diagonal_scatter(g, s_g[0, :4], 1), fw.diagonal_scatter(c, s_c[0, :4], 1))
    i = fw.tensor([0, -1, 7])
    _same(g.put(i.to("cuda"), src_g[:3]), c.put(i, src_c[:3]))
    _same(g.clone().put_(i.to("cuda"), src_g[:3], accumulate=True),
          c.clone().put_(i, src_c[:3], accumulate=True))
    _same(fw.angle(g), fw.angle(c))
    _same(fw.mvlgamma(g.abs() + 1, 2), fw.mvlgamma(c.abs() + 1, 2))
    _same(g.clone().fill_diagonal_(5.0, wrap=True), c.clone().fill_diagonal_(5.0, wrap=True))


def test_gradients_on_device_match_cpu():
    c, g = _pair(4, 6)
    s_c, s_g = _pair(4, seed=5)
    grads = []
    for x, s in ((c, s_c), (g, s_g)):
        x, s = x.clone().requires_grad_(), s.clone().requires_grad_()
        m = fw.tensor([True, False, True], device=x.device)  # 8 of the (4, 3) elements
        out = x.unfold(1, 2, 2).sum(-1) * 2
        src = fw.cat([s, s * 3])
        out = fw.masked_scatter(out, m, src).pow(2).sum() + \
            fw.diagonal_scatter(x, s, 0).pow(2).sum()
        out.backward()
        grads.append((x.grad, s.grad))
    for gd, cd in zip(grads[1], grads[0]):
        _same(gd, cd)


def test_shifts_on_device():
    for dt in (fw.int64, fw.int32, fw.uint8):
        a = fw.tensor([1, 3, 5, 100], dtype=dt)
        s = fw.tensor([0, 1, 7, 9], dtype=dt)
        ga, gs = a.to("cuda"), s.to("cuda")
        for got, want in ((ga << gs, a << s), (ga >> gs, a >> s), (ga << 3, a << 3),
                          (ga >> 2, a >> 2)):
            assert got.device.type == "cuda" and got.dtype is dt
            assert got.cpu().tolist() == want.tolist()


@pytest.mark.parametrize("fill", [
    lambda t: t.random_(3, 9), lambda t: t.geometric_(0.4), lambda t: t.log_normal_(0.0, 0.5),
    lambda t: t.cauchy_(), lambda t: t.random_()])
def test_random_fills_on_device(fill):
    fw.manual_seed(11)
    a = fill(fw.empty(2000, device="cuda"))
    fw.manual_seed(11)
    b = fill(fw.empty(2000, device="cuda"))
    assert a.device.type == "cuda" and fw.equal(a.cpu(), b.cpu())
    v = a.cpu().numpy()
    assert np.isfinite(v).all()


def test_random_fill_ranges_on_device():
    fw.manual_seed(0)
    r = fw.empty(4000, device="cuda").random_(3, 9).cpu().numpy()
    assert set(np.unique(r)) == set(range(3, 9))
    geo = fw.empty(4000, device="cuda").geometric_(0.5).cpu().numpy()
    assert geo.min() >= 1 and abs(geo.mean() - 2.0) < 0.1
    i = fw.empty(100, dtype=fw.int32, device="cuda").random_(-5, 5)
    assert i.device.type == "cuda" and -5 <= i.min().item() and i.max().item() < 5
