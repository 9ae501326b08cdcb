"""framework/ops/tensor_extra.py and framework/tensor_info.py: the Tensor methods PyTorch
has (metadata, memory no-ops, random in-place fills, fill_diagonal_, unfold, the scatter
family, put, shifts, angle, mvlgamma) — values against NumPy, gradients (gradcheck in
float64), distributions of the random fills (fixed seeds), and PyTorch's errors.

Forward values over dtypes, compiled == eager and ONNX == eager run from the records in
tests/opinfo_tensor_extra.py."""

import math

import numpy as np
import pytest

import framework as fw
from framework.autograd import gradcheck


def _rand(*shape, seed=0, grad=False, dtype=fw.float64):
    a = np.random.default_rng(seed).standard_normal(shape)
    return fw.tensor(a, dtype=dtype, requires_grad=grad)


# -- metadata -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,size,signed", [
    (fw.float32, 4, True), (fw.float64, 8, True), (fw.float16, 2, True), (fw.bfloat16, 2, True),
    (fw.int64, 8, True), (fw.int32, 4, True), (fw.int16, 2, True), (fw.int8, 1, True),
    (fw.uint8, 1, False), (fw.bool, 1, False)])
def test_metadata(dtype, size, signed):
    t = fw.zeros(2, 3, dtype=dtype)
    assert t.itemsize == size and t.nbytes == 6 * size and t[:, :2].nbytes == 4 * size
    assert t.ndimension() == 2 and fw.zeros(()).ndimension() == 0
    assert t.is_signed() is signed and fw.is_signed(t) is signed
    assert t.is_complex() is False and fw.is_complex(t) is False
    assert t.is_same_size(fw.ones(2, 3)) and not fw.is_same_size(t, fw.ones(3, 2))


def test_data_ptr_is_the_buffer_address():
    t = fw.arange(12.0).reshape(3, 4)
    assert t.data_ptr() == t.numpy().ctypes.data
    v = t[1:, 2:]
    assert v.data_ptr() - t.data_ptr() == v.storage_offset() * t.itemsize == 24
    assert t.reshape(12).data_ptr() == t.data_ptr()
    assert t.clone().data_ptr() != t.data_ptr()
    assert t.to("meta").data_ptr() == 0


def test_type_strings_and_casts():
    t = fw.ones(2)
    assert t.type() == "framework.FloatTensor" == fw.typename(t)
    assert fw.ones(2, dtype=fw.int64).type() == "framework.LongTensor"
    assert fw.ones(2, dtype=fw.bool).type() == "framework.BoolTensor"
    assert t.type(fw.float64).dtype is fw.float64
    assert t.type("framework.IntTensor").dtype is fw.int32
    assert t.type("torch.HalfTensor").dtype is fw.float16
    assert t.type(fw.float32) is t and t.type("framework.FloatTensor") is t
    for bad in ("float32", "framework.Nope", "framework.cuda"):
        with pytest.raises(fw.ArgumentError, match="invalid type"):
            t.type(bad)


def test_mH_and_adjoint_are_mT_for_real_tensors():
    x = _rand(2, 3, 4)
    assert x.mH.shape == (2, 4, 3) and fw.equal(x.mH, x.mT) and fw.equal(x.adjoint(), x.mT)
    assert fw.equal(_rand(3, 4).H, _rand(3, 4).T)
    with pytest.raises(fw.ArgumentError):
        fw.ones(3).mH


def test_aliases():
    assert fw.moveaxis is fw.movedim
    x = _rand(2, 3, 4)
    assert x.moveaxis(0, -1).shape == (3, 4, 2)
    assert x.ravel().shape == (24,) and fw.ravel(fw.tensor(5.0)).shape == (1,)
    np.testing.assert_array_equal(x.mT.ravel().numpy(), x.numpy().swapaxes(1, 2).ravel())
    h = fw.tensor([-2.0, -0.5, 0.25, 3.0])
    np.testing.assert_array_equal(h.hardshrink(1.0).numpy(), [-2.0, 0.0, 0.0, 3.0])
    assert fw.equal(h.hardshrink(), fw.nn.functional.hardshrink(h))


# -- memory: pin_memory, resize_, apply_ --------------------------------------------------
def test_pin_memory_is_a_no_op():
    t = fw.ones(3)
    assert t.pin_memory() is t and not t.is_pinned() and not t.pin_memory().is_pinned()


def test_resize_shrinks_as_a_view_and_grows_zero_filled():
    t = fw.arange(6.0)
    assert t.resize_(2, 2) is t and t.shape == (2, 2)
    np.testing.assert_array_equal(t.numpy(), [[0, 1], [2, 3]])
    t[0, 0] = 9.0  # still the original buffer
    t.resize_((3, 3))
    np.testing.assert_array_equal(t.numpy().ravel(), [9, 1, 2, 3, 0, 0, 0, 0, 0])
    assert t.resize_(9).shape == (9,) and t.resize_(0).numel() == 0
    u = fw.ones(2, 2)
    assert u.resize_as_(fw.zeros(4)).shape == (4,)


def test_resize_errors():
    with pytest.raises(fw.AutogradError, match="require grad"):
        fw.ones(3, requires_grad=True).resize_(2)
    with pytest.raises(fw.ArgumentError, match="negative"):
        fw.ones(3).resize_(-1)
    with pytest.raises(fw.ArgumentError, match="contiguous"):
        fw.ones(3, 4).t().resize_(2)
    with pytest.raises(fw.DeviceError):
        fw.ones(3, device="meta").resize_(2)


def test_apply_():
    t = fw.tensor([[1.0, -2.0], [3.0, 0.5]])
    data = t._data
    assert t.apply_(lambda v: v * v + 1) is t and t._data is data
    np.testing.assert_array_equal(t.numpy(), [[2.0, 5.0], [10.0, 1.25]])
    i = fw.tensor([1, 2, 3]).apply_(lambda v: v * 10)
    assert i.dtype is fw.int64 and i.tolist() == [10, 20, 30]
    with pytest.raises(fw.DeviceError, match="CPU"):
        fw.ones(2, device="meta").apply_(abs)
    with pytest.raises(fw.AutogradError):
        fw.ones(2, requires_grad=True).apply_(abs)


# -- random fills -------------------------------------------------------------------------
def test_bernoulli_and_multinomial_methods():
    fw.manual_seed(3)
    p = fw.full((4000,), 0.3)
    b = p.bernoulli()
    assert set(np.unique(b.numpy())) <= {0.0, 1.0} and abs(b.mean().item() - 0.3) < 0.03
    assert abs(fw.zeros(4000).bernoulli(0.8).mean().item() - 0.8) < 0.03
    w = fw.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 0.0]])
    idx = w.multinomial(1000, replacement=True)
    assert idx.shape == (2, 1000) and (idx[1] == 0).all()
    assert abs((idx[0] == 2).float().mean().item() - 0.75) < 0.05
    assert sorted(w[:1].multinomial(2).tolist()[0]) == [1, 2]


def _seeded(fill, seed=7):
    fw.manual_seed(seed)
    return fill()


@pytest.mark.parametrize("fill", [
    lambda: fw.empty(100).random_(10), lambda: fw.empty(100, dtype=fw.int32).random_(-3, 4),
    lambda: fw.empty(100).geometric_(0.2), lambda: fw.empty(100).log_normal_(),
    lambda: fw.empty(100, dtype=fw.float64).cauchy_(1.0, 2.0)])
def test_random_fills_are_reproducible(fill):
    a, b, c = _seeded(fill), _seeded(fill), _seeded(fill, 8)
    assert fw.equal(a, b) and not fw.equal(a, c)
    g1, g2 = fw.Generator().manual_seed(5), fw.Generator().manual_seed(5)
    t1, t2 = fw.empty(50), fw.empty(50)
    t1.cauchy_(generator=g1).geometric_(0.5, generator=g1).random_(5, generator=g1)
    t2.cauchy_(generator=g2).geometric_(0.5, generator=g2).random_(5, generator=g2)
    assert fw.equal(t1, t2)


def test_random_ranges():
    fw.manual_seed(0)
    t = fw.empty(20000)
    data = t._data
    assert t.random_(3, 7) is t and t._data is data and t._version == 1
    v = t.numpy()
    assert set(np.unique(v)) == {3.0, 4.0, 5.0, 6.0}
    assert abs(v.mean() - 4.5) < 0.03
    assert set(np.unique(fw.empty(2000, dtype=fw.int64).random_(5).numpy())) == set(range(5))
    assert set(np.unique(fw.empty(2000, dtype=fw.int8).random_(**{"from": -2, "to": 1})
                         .numpy())) == {-2, -1, 0}
    assert set(np.unique(fw.empty(200, dtype=fw.bool).random_().numpy())) == {False, True}
    u8 = fw.empty(20000, dtype=fw.uint8).random_().numpy()
    assert u8.min() == 0 and u8.max() == 255
    i8 = fw.empty(20000, dtype=fw.int8).random_().numpy()
    assert i8.min() >= 0 and i8.max() == 127
    h = fw.empty(20000, dtype=fw.float16).random_().numpy()  # [0, 2**11]
    assert h.min() >= 0 and h.max() <= 2048 and h.max() > 1900 and (h == np.round(h)).all()
    f = fw.empty(1000).random_().numpy()
    assert f.max() <= 2 ** 24 and f.max() > 2 ** 23 and (f == np.round(f)).all()


def test_random_errors():
    with pytest.raises(fw.ArgumentError, match="'from' to be less than 'to'"):
        fw.empty(3).random_(5, 5)
    with pytest.raises(fw.ArgumentError, match="out of bounds"):
        fw.empty(3, dtype=fw.uint8).random_(0, 300)
    with pytest.raises(fw.ArgumentError, match="out of bounds"):
        fw.empty(3, dtype=fw.int8).random_(-200, 0)
    with pytest.raises(TypeError):
        fw.empty(3).random_(1, 2, 3)
    with pytest.raises(fw.AutogradError):
        fw.empty(3, requires_grad=True).random_()


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_geometric_moments(p):
    fw.manual_seed(1)
    v = fw.empty(40000, dtype=fw.float64).geometric_(p).numpy()
    assert v.min() >= 1 and (v == np.round(v)).all()
    assert abs(v.mean() - 1 / p) < 0.03 / p
    assert abs(v.var() - (1 - p) / p ** 2) < 0.06 * (1 - p) / p ** 2
    assert abs((v == 1).mean() - p) < 0.01  # P(X = 1) = p
    i = fw.empty(1000, dtype=fw.int64).geometric_(p)
    assert i.dtype is fw.int64 and i.min().item() >= 1
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(fw.ArgumentError, match="geometric_"):
            fw.empty(2).geometric_(bad)


def test_log_normal_moments():
    fw.manual_seed(2)
    v = fw.empty(40000, dtype=fw.float64).log_normal_(0.5, 0.75).numpy()
    assert v.min() > 0
    logs = np.log(v)
    assert abs(logs.mean() - 0.5) < 0.02 and abs(logs.std() - 0.75) < 0.02
    d = fw.empty(40000).log_normal_().numpy()  # defaults mean=1, std=2
    assert abs(np.log(d).mean() - 1.0) < 0.05 and abs(np.log(d).std() - 2.0) < 0.05
    with pytest.raises(fw.ArgumentError, match="std"):
        fw.empty(2).log_normal_(0.0, 0.0)
    with pytest.raises(fw.DTypeError):
        fw.empty(2, dtype=fw.int64).log_normal_()


def test_cauchy_quantiles():
    fw.manual_seed(4)
    v = fw.empty(40000, dtype=fw.float64).cauchy_(2.0, 0.5).numpy()
    q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])  # quartiles: median -/+ sigma
    assert abs(med - 2.0) < 0.02 and abs(q1 - 1.5) < 0.03 and abs(q3 - 2.5) < 0.03
    f = fw.empty(40000).cauchy_().numpy()
    assert f.dtype == np.float32 and abs(np.median(f)) < 0.03
    with pytest.raises(fw.ArgumentError, match="sigma"):
        fw.empty(2).cauchy_(0.0, -1.0)
    with pytest.raises(fw.DTypeError):
        fw.empty(2, dtype=fw.int32).cauchy_()


# -- fill_diagonal_ -------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 3), (3, 5), (5, 3), (7, 3), (4, 3), (3, 3, 3), (1, 1)])
@pytest.mark.parametrize("wrap", [False, True])
def test_fill_diagonal_matches_numpy(shape, wrap):
    a = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    t = fw.tensor(a)
    assert t.fill_diagonal_(-1.5, wrap=wrap) is t
    np.fill_diagonal(a, -1.5, wrap=wrap)
    np.testing.assert_array_equal(t.numpy(), a)


def test_fill_diagonal_dtypes_gradient_and_errors():
    i = fw.zeros(3, 3, dtype=fw.int64).fill_diagonal_(7)
    assert i.dtype is fw.int64 and i.diagonal().tolist() == [7, 7, 7]
    assert fw.zeros(2, 2, dtype=fw.bool).fill_diagonal_(True).tolist() == [[True, False],
                                                                         [False, True]]
    x = _rand(3, 3, grad=True)
    y = x * 2
    y.fill_diagonal_(0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * (1 - np.eye(3)))
    with pytest.raises(fw.ArgumentError, match="larger than 1"):
        fw.zeros(3).fill_diagonal_(1)
    with pytest.raises(fw.ShapeError, match="equal length"):
        fw.zeros(2, 3, 3).fill_diagonal_(1)


# -- unfold, sum_to_size, narrow_copy -----------------------------------------------------
def test_unfold_values_as_pytorch_docs():
    x = fw.arange(1.0, 8.0)
    np.testing.assert_array_equal(x.unfold(0, 2, 1).numpy(), [[1, 2], [2, 3], [3, 4], [4, 5],
                                                              [5, 6], [6, 7]])
    np.testing.assert_array_equal(x.unfold(0, 2, 2).numpy(), [[1, 2], [3, 4], [5, 6]])
    y = fw.arange(24.0).reshape(2, 3, 4)
    w = y.unfold(1, 2, 1)
    assert w.shape == (2, 2, 4, 2)
    want = np.lib.stride_tricks.sliding_window_view(y.numpy(), 2, axis=1)
    np.testing.assert_array_equal(w.numpy(), want)
    assert fw.tensor(3.0).unfold(0, 1, 1).shape == (1,)
    assert fw.tensor(3.0).unfold(0, 0, 1).shape == (0,)


def test_unfold_gradient_and_errors():
    x = _rand(3, 7, grad=True)
    assert gradcheck(lambda t: t.unfold(1, 3, 2), (x,))
    assert gradcheck(lambda t: t.unfold(0, 2, 1) * 1.5, (x,))
    x.unfold(1, 3, 1).sum().backward()  # overlapping windows: counts of use
    np.testing.assert_array_equal(x.grad.numpy()[0], [1, 2, 3, 3, 3, 2, 1])
    with pytest.raises(fw.ArgumentError, match="maximum size"):
        fw.ones(3).unfold(0, 4, 1)
    with pytest.raises(fw.ArgumentError, match="step"):
        fw.ones(3).unfold(0, 2, 0)
    with pytest.raises(fw.ArgumentError):
        fw.ones(3).unfold(1, 1, 1)


def test_sum_to_size():
    x = _rand(2, 3, 4)
    assert x.sum_to_size(2, 3, 4) is x
    np.testing.assert_allclose(x.sum_to_size(3, 1).numpy(), x.numpy().sum(0).sum(1,
                                                                                 keepdims=True))
    np.testing.assert_allclose(x.sum_to_size((1, 1)).numpy(), [[x.numpy().sum()]])
    assert fw.ones(2, 3, dtype=fw.int32).sum_to_size(3).dtype is fw.int64  # as sum
    with pytest.raises(fw.ShapeError, match="not expandable"):
        x.sum_to_size(2, 4)
    with pytest.raises(fw.ShapeError, match="not expandable"):
        fw.ones(3).sum_to_size(2, 3)
    g = _rand(2, 3, grad=True)
    assert gradcheck(lambda t: t.sum_to_size(1, 3), (g,))


def test_narrow_copy_is_a_contiguous_copy():
    x = fw.arange(12.0).reshape(3, 4)
    c = x.narrow_copy(1, 1, 2)
    assert c.is_contiguous() and c.shape == (3, 2)
    c[0, 0] = 100.0
    assert x[0, 1].item() == 1.0
    assert fw.equal(fw.narrow_copy(x, 0, -1, 1), x[2:])


# -- scatters ---------------------------------------------------------------------------
def test_masked_scatter_values_gradient_and_in_place():
    x = fw.zeros(2, 4)
    m = fw.tensor([[True, False, True, False], [False, False, True, True]])
    src = fw.arange(1.0, 9.0).reshape(2, 4)
    np.testing.assert_array_equal(x.masked_scatter(m, src).numpy(),
                                  [[1, 0, 2, 0], [0, 0, 3, 4]])
    y = fw.ones(2, 4)
    assert y.masked_scatter_(m[0], src) is y  # the mask broadcast over the rows
    np.testing.assert_array_equal(y.numpy(), [[1, 1, 2, 1], [3, 1, 4, 1]])
    a, s = _rand(2, 4, grad=True), _rand(9, seed=1, grad=True)
    assert gradcheck(lambda u, v: fw.masked_scatter(u, m, v), (a, s))
    fw.masked_scatter(a, m, s).sum().backward()
    np.testing.assert_array_equal(s.grad.numpy(), [1, 1, 1, 1, 0, 0, 0, 0, 0])


def test_masked_scatter_errors():
    m = fw.tensor([True, True, False])
    with pytest.raises(fw.DTypeError, match="boolean"):
        fw.zeros(3).masked_scatter(m.to(fw.uint8), fw.ones(3))
    with pytest.raises(fw.DTypeError, match="same dtypes"):
        fw.zeros(3).masked_scatter(m, fw.ones(3, dtype=fw.float64))
    with pytest.raises(fw.ShapeError, match="at least as many"):
        fw.zeros(3).masked_scatter(m, fw.ones(1))
    with pytest.raises(fw.ShapeError):
        fw.zeros(3).masked_scatter_(fw.ones(2, 3, dtype=fw.bool), fw.ones(6))


def test_slice_select_diagonal_scatter():
    a = fw.zeros(8, 8)
    out = fw.slice_scatter(a, fw.ones(2, 8), start=6)
    assert out[6:].sum().item() == 16 and out[:6].sum().item() == 0
    out = a.slice_scatter(fw.ones(8, 2), dim=1, start=2, end=6, step=2)
    np.testing.assert_array_equal(out[0].numpy(), [0, 0, 1, 0, 1, 0, 0, 0])
    s = fw.select_scatter(fw.zeros(2, 2), fw.ones(2), 0, 0)
    np.testing.assert_array_equal(s.numpy(), [[1, 1], [0, 0]])
    d = fw.diagonal_scatter(fw.zeros(3, 3), fw.ones(2), 1)
    np.testing.assert_array_equal(d.numpy(), [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    d = fw.zeros(2, 3, 3).diagonal_scatter(fw.arange(6.0).reshape(2, 3), 0, 1, 2)
    np.testing.assert_array_equal(d.diagonal(0, 1, 2).numpy(), [[0, 1, 2], [3, 4, 5]])
    assert a.slice_scatter(fw.ones(2, 8, dtype=fw.float64), start=6).dtype is fw.float32


def test_scatter_gradients():
    x = _rand(4, 5, grad=True)
    s2, s1, sd = _rand(2, 5, seed=1, grad=True), _rand(4, seed=2, grad=True), \
        _rand(3, seed=3, grad=True)
    assert gradcheck(lambda u, v: fw.slice_scatter(u, v, 0, 1, None, 2), (x, s2))
    assert gradcheck(lambda u, v: fw.select_scatter(u, v, 1, -2), (x, s1))
    assert gradcheck(lambda u, v: fw.diagonal_scatter(u, v, -1), (x, sd))
    fw.diagonal_scatter(x, sd, -1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 1 - np.eye(4, 5, -1))


def test_scatter_shape_errors():
    with pytest.raises(fw.ShapeError, match="slice size"):
        fw.slice_scatter(fw.zeros(4, 4), fw.ones(3, 4), start=2)
    with pytest.raises(fw.ArgumentError, match="step"):
        fw.slice_scatter(fw.zeros(4), fw.ones(4), step=0)
    with pytest.raises(fw.ShapeError):
        fw.select_scatter(fw.zeros(2, 3), fw.ones(2), 0, 1)
    with pytest.raises(fw.FwIndexError, match="out of range"):
        fw.select_scatter(fw.zeros(2, 3), fw.ones(3), 0, 2)
    with pytest.raises(fw.ShapeError, match="diagonal size"):
        fw.diagonal_scatter(fw.zeros(3, 3), fw.ones(3), 1)
    with pytest.raises(fw.ArgumentError):
        fw.diagonal_scatter(fw.zeros(3), fw.ones(1))


# -- put ------------------------------------------------------------------------------------
def test_put_values_and_gradient():
    x = fw.zeros(2, 3)
    idx = fw.tensor([0, -1, 2])
    np.testing.assert_array_equal(x.put(idx, fw.tensor([1.0, 2.0, 3.0])).numpy(),
                                  [[1, 0, 3], [0, 0, 2]])
    y = fw.ones(2, 3)
    assert y.put_(fw.tensor([1, 1]), fw.tensor([2.0, 5.0]), accumulate=True) is y
    assert y.tolist() == [[1, 8, 1], [1, 1, 1]]
    a, s = _rand(3, 4, grad=True), _rand(2, 2, seed=1, grad=True)
    i2 = fw.tensor([[5, 0], [-1, 7]])
    assert gradcheck(lambda u, v: fw.put(u, i2, v), (a, s))
    assert gradcheck(lambda u, v: fw.put(u, fw.tensor([[1, 1], [1, 2]]), v, True), (a, s))


def test_put_errors():
    with pytest.raises(fw.DTypeError, match="long"):
        fw.zeros(3).put(fw.tensor([0], dtype=fw.int32), fw.ones(1))
    with pytest.raises(fw.DTypeError, match="same dtype"):
        fw.zeros(3).put(fw.tensor([0]), fw.ones(1, dtype=fw.float64))
    with pytest.raises(fw.ShapeError, match="same number of elements"):
        fw.zeros(3).put(fw.tensor([0, 1]), fw.ones(3))
    with pytest.raises(fw.FwIndexError, match="out of bounds"):
        fw.zeros(2, 3).put_(fw.tensor([6]), fw.ones(1))
    with pytest.raises(fw.FwIndexError):
        fw.zeros(0).put(fw.tensor([0]), fw.ones(1))


# -- shifts, angle, mvlgamma --------------------------------------------------------------
def test_shift_operators():
    a = fw.tensor([1, -3, 5, 64], dtype=fw.int32)
    assert (a << 2).tolist() == [4, -12, 20, 256] and (a >> 1).tolist() == [0, -2, 2, 32]
    assert (a << fw.tensor([0, 1, 31, 32], dtype=fw.int32)).tolist() == [1, -6, -2 ** 31, 0]
    assert (a >> fw.tensor([0, 1, 31, 40], dtype=fw.int32)).tolist() == [1, -2, 0, 0]
    assert (fw.tensor([-8]) >> 100).tolist() == [-1] and (fw.tensor([-8]) << -1).tolist() == [0]
    assert (2 << fw.tensor([1, 3])).tolist() == [4, 16] and (64 >> fw.tensor([2])).tolist() == [16]
    assert (fw.tensor([200], dtype=fw.uint8) >> 7).tolist() == [1]
    assert (fw.tensor([200], dtype=fw.uint8) << 1).tolist() == [144]  # wraps
    assert (a << fw.tensor([1])).dtype is fw.int64  # promotion, as PyTorch
    b = a.clone()
    data = b._data
    b <<= 1
    b >>= fw.tensor([1, 1, 1, 2], dtype=fw.int32)
    assert b._data is data and b.tolist() == [1, -3, 5, 32] and b._version == 2
    c = fw.tensor([3, 4])
    assert c.bitwise_left_shift_(2) is c and c.tolist() == [12, 16]
    assert fw.equal(fw.bitwise_right_shift(c, 2), c >> 2)


def test_shift_errors():
    with pytest.raises(fw.DTypeError, match="integer"):
        fw.ones(2) << 1
    with pytest.raises(fw.DTypeError, match="integer"):
        fw.tensor([True]) >> fw.tensor([True])
    with pytest.raises(fw.DTypeError):
        fw.tensor([1]) << fw.tensor([1.0])
    with pytest.raises(TypeError):
        fw.bitwise_left_shift(1, 2)


def test_angle():
    x = fw.tensor([2.0, -1.0, 0.0, -0.0, math.nan, -math.inf, math.inf])
    np.testing.assert_array_equal(fw.angle(x).numpy(), np.float32(
        [0, math.pi, 0, 0, math.nan, math.pi, 0]))
    i = fw.tensor([-2, 0, 3]).angle()
    assert i.dtype is fw.float32 and i.tolist() == pytest.approx([math.pi, 0, 0])
    d = _rand(4, grad=True)
    assert fw.angle(d).dtype is fw.float64
    fw.angle(d).sum().backward()
    np.testing.assert_array_equal(d.grad.numpy(), np.zeros(4))


def test_mvlgamma():
    x = fw.tensor([1.5, 2.0, 4.25], dtype=fw.float64)
    for p in (1, 2, 3):
        want = [p * (p - 1) / 4 * math.log(math.pi) + sum(math.lgamma(v - j / 2)
                                                          for j in range(p)) for v in x.tolist()]
        np.testing.assert_allclose(fw.mvlgamma(x, p).numpy(), want, rtol=1e-12)
        np.testing.assert_allclose(x.mvlgamma(p).numpy(), want, rtol=1e-12)
    y = x.clone()
    assert y.mvlgamma_(2) is y and fw.allclose(y, fw.mvlgamma(x, 2))
    assert fw.tensor([3, 4]).mvlgamma(2).dtype is fw.float32
    g = (x + 1).requires_grad_()
    assert gradcheck(lambda t: fw.mvlgamma(t, 3), (g,))
    with pytest.raises(fw.ArgumentError, match="p"):
        fw.mvlgamma(x, 0)
    with pytest.raises(fw.ArgumentError, match=r"\(p-1\)/2"):
        fw.mvlgamma(x, 4)
    with pytest.raises(fw.DTypeError):
        fw.tensor([3, 4]).mvlgamma_(1)


def test_unfold_without_overlap_is_a_view_of_its_input():
    base = fw.arange(24.0).reshape(2, 12)
    windows = base.unfold(1, 3, 4)                  # step > size: gaps between windows
    assert windows.shape == (2, 3, 3) and windows._base is not None
    windows.fill_(-1.0)
    expect = np.arange(24.0).reshape(2, 12)
    expect[:, [0, 1, 2, 4, 5, 6, 8, 9, 10]] = -1.0
    np.testing.assert_array_equal(base.numpy(), expect)
    col = fw.arange(10.0).reshape(2, 5).t()         # a strided input
    np.testing.assert_array_equal(col.unfold(0, 2, 2).numpy(),
                                  [[[0, 1], [5, 6]], [[2, 3], [7, 8]]])
    src = fw.arange(5.0)
    overlapping = src.unfold(0, 2, 1)               # an overlapping view, as in PyTorch
    overlapping[1].fill_(-1.0)
    assert overlapping.shape == (4, 2) and src.numpy().tolist() == [0, -1, -1, 3, 4]
    assert overlapping.numpy().tolist() == [[0, -1], [-1, -1], [-1, 3], [3, 4]]
