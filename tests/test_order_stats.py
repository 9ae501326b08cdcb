"""Order statistics and counting (framework/ops/order_stats.py): median/nanmedian, kthvalue,
mode, quantile/nanquantile, msort, searchsorted/bucketize, unique/unique_consecutive,
bincount, histc. Values against NumPy (NaN, ties, negative dims, keepdim, empty), errors,
gradients (gradcheck), fw.compile (fullgraph) against eager and ONNX export."""

import math

import numpy as np
import pytest

import framework as fw
from framework.ops.registry import OPS

NAN, INF = math.nan, math.inf
RNG = np.random.default_rng(1234)


def _np(t):
    return t.detach().numpy()


def _median_ref(a, axis, ignore_nan):
    """PyTorch's median(dim) rules per slice: lower median (first occurrence of the stable
    sort), the first NaN of a slice with NaN (nanmedian: only when all are NaN)."""
    a = np.moveaxis(a, axis, -1)
    out_v = np.empty(a.shape[:-1], a.dtype)
    out_i = np.empty(a.shape[:-1], np.int64)
    for idx in np.ndindex(*a.shape[:-1]):
        row = a[idx]
        nan = np.isnan(row) if row.dtype.kind == "f" else np.zeros(row.shape, bool)
        if nan.any() and (not ignore_nan or nan.all()):
            j = int(np.flatnonzero(nan)[0])
        else:
            vals = row[~nan]
            order = np.argsort(vals, kind="stable")
            j = int(np.flatnonzero(~nan)[order[(len(vals) - 1) // 2]])
        out_v[idx], out_i[idx] = row[j], j
    return out_v, out_i


# -- median / nanmedian --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_median_whole_tensor_is_the_lower_median(dtype):
    for n in (1, 4, 7, 10):
        a = RNG.integers(-20, 20, size=n).astype(dtype)
        got = fw.median(fw.tensor(a))
        assert got.shape == () and got.dtype is fw.tensor(a).dtype
        assert got.item() == np.sort(a)[(n - 1) // 2]
        if dtype != np.int64:
            assert got.item() == np.quantile(a, 0.5, method="lower")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("dim", [0, 1, -1, -3])
def test_median_dim_values_and_indices(dtype, dim):
    a = RNG.integers(-5, 5, size=(3, 6, 5)).astype(dtype)  # many ties
    v, i = fw.median(fw.tensor(a), dim)
    rv, ri = _median_ref(a, dim, False)
    np.testing.assert_array_equal(_np(v), rv)
    np.testing.assert_array_equal(_np(i), ri)
    assert i.dtype is fw.int64
    # the index points at an element equal to the value
    np.testing.assert_array_equal(np.take_along_axis(a, np.expand_dims(_np(i), dim), dim)
                                  .squeeze(dim), rv)
    vk, ik = fw.tensor(a).median(dim, keepdim=True)
    assert vk.shape == tuple(1 if k == dim % 3 else s for k, s in enumerate(a.shape))
    np.testing.assert_array_equal(_np(vk).squeeze(dim), rv)


def test_median_nan():
    a = np.array([[1.0, NAN, 3.0, NAN, 0.0], [2.0, 1.0, 5.0, 4.0, 3.0],
                  [NAN, NAN, NAN, NAN, NAN]], np.float32)
    x = fw.tensor(a)
    assert math.isnan(fw.median(x).item())
    v, i = fw.median(x, 1)
    np.testing.assert_array_equal(_np(v), [NAN, 3.0, NAN])
    assert i.tolist() == [1, 4, 0]  # the first NaN of a row with NaN
    v, i = fw.nanmedian(x, 1)
    np.testing.assert_array_equal(_np(v), [1.0, 3.0, NAN])
    assert i.tolist() == [0, 4, 0]
    rv, ri = _median_ref(a, 1, True)
    np.testing.assert_array_equal(_np(v), rv)
    assert i.tolist() == ri.tolist()
    assert fw.nanmedian(x).item() == 2.0  # lower median of 1, 3, 0, 2, 1, 5, 4, 3
    assert math.isnan(fw.nanmedian(fw.tensor([NAN, NAN])).item())
    b = RNG.standard_normal((4, 9))
    b[RNG.random((4, 9)) < 0.3] = NAN
    rv, ri = _median_ref(b, 0, True)
    v, i = fw.tensor(b).nanmedian(0)
    np.testing.assert_array_equal(_np(v), rv)
    np.testing.assert_array_equal(_np(i), ri)


def test_median_keepdim_without_dim_selects_last_dim_and_zero_d():
    x = fw.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    v, i = fw.median(x, keepdim=True)  # PyTorch: the dim overload with dim=-1
    assert v.tolist() == [[2.0], [4.0]] and i.tolist() == [[2], [2]]
    v, i = fw.median(fw.tensor(2.5), 0)
    assert v.shape == () and v.item() == 2.5 and i.item() == 0
    v, i = fw.kthvalue(fw.tensor(2.5), 1, -1, keepdim=True)
    assert v.shape == () and i.item() == 0


def test_median_empty():
    assert math.isnan(fw.median(fw.zeros(0)).item())
    assert math.isnan(fw.nanmedian(fw.zeros(2, 0)).item())
    with pytest.raises(fw.FwIndexError, match=r"median\(\): Expected reduction dim 1"):
        fw.median(fw.zeros(2, 0), 1)
    with pytest.raises(fw.FwIndexError, match=r"mode\(\): Expected reduction dim 0"):
        fw.mode(fw.zeros(0, 3), 0)
    v, i = fw.median(fw.zeros(0, 3), 1)  # the other dims may be empty
    assert v.shape == (0,) and i.shape == (0,)
    with pytest.raises(fw.ArgumentError, match=r"median\(\): the median of an empty int64"):
        fw.median(fw.zeros(0, dtype=fw.int64))


# -- kthvalue --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_kthvalue_matches_numpy(dtype):
    a = RNG.integers(-9, 9, size=(4, 7)).astype(dtype)
    for dim in (0, 1, -1, -2):
        n = a.shape[dim]
        for k in (1, (n + 1) // 2, n):
            v, i = fw.kthvalue(fw.tensor(a), k, dim)
            want = np.take(np.sort(a, axis=dim), k - 1, axis=dim)
            np.testing.assert_array_equal(_np(v), want)
            got = np.take_along_axis(a, np.expand_dims(_np(i), dim % 2), dim).squeeze(dim % 2)
            np.testing.assert_array_equal(got, want)
    v, i = fw.tensor(a).kthvalue(3, dim=0, keepdim=True)
    assert v.shape == (1, 7) and i.shape == (1, 7)


def test_kthvalue_nan_is_largest_and_ties_first_occurrence():
    x = fw.tensor([[NAN, 2.0, 1.0, 2.0, -INF]])
    assert fw.kthvalue(x, 1).values.item() == -INF
    v, i = fw.kthvalue(x, 3)
    assert v.item() == 2.0 and i.item() == 1
    v, i = fw.kthvalue(x, 4)
    assert v.item() == 2.0 and i.item() == 3
    assert math.isnan(fw.kthvalue(x, 5).values.item())


def test_kthvalue_errors():
    x = fw.randn(2, 3)
    with pytest.raises(fw.FwIndexError, match=r"kthvalue\(\): selected number k=4 out of range"):
        fw.kthvalue(x, 4)
    with pytest.raises(fw.FwIndexError, match=r"kthvalue\(\): selected number k=0"):
        fw.kthvalue(x, 0, 0)
    with pytest.raises(fw.FwIndexError, match=r"kthvalue\(\): .*dimension 0 of size 0"):
        fw.kthvalue(fw.zeros(0), 1)
    with pytest.raises(TypeError, match=r"kthvalue\(\): k must be an int"):
        fw.kthvalue(x, 1.5)
    with pytest.raises(fw.ArgumentError, match=r"kthvalue: dimension out of range"):
        fw.kthvalue(x, 1, 2)


# -- mode ------------------------------------------------------------------------------------
def _mode_ref(a, axis):
    a = np.moveaxis(a, axis, -1)
    out_v, out_i = np.empty(a.shape[:-1], a.dtype), np.empty(a.shape[:-1], np.int64)
    for idx in np.ndindex(*a.shape[:-1]):
        row = a[idx]
        vals, counts = np.unique(row, return_counts=True)
        best = vals[np.argmax(counts)]  # first maximum: the smallest value
        out_v[idx], out_i[idx] = best, np.flatnonzero(row == best)[-1]
    return out_v, out_i


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_mode_matches_reference(dtype):
    a = RNG.integers(0, 4, size=(5, 8, 3)).astype(dtype)
    for dim in (0, 1, 2, -1, -2):
        v, i = fw.mode(fw.tensor(a), dim)
        rv, ri = _mode_ref(a, dim)
        np.testing.assert_array_equal(_np(v), rv)
        np.testing.assert_array_equal(_np(i), ri)
    v, i = fw.tensor(a).mode(keepdim=True)
    assert v.shape == (5, 8, 1) and i.dtype is fw.int64


def test_mode_ties_smallest_value_last_index():
    v, i = fw.mode(fw.tensor([[3, 1, 3, 1, 2], [7, 7, 7, 7, 7]]))
    assert v.tolist() == [1, 7] and i.tolist() == [3, 4]
    v, i = fw.mode(fw.tensor([5.0, 4.0, 6.0]))  # all distinct: the smallest
    assert v.item() == 4.0 and i.item() == 1
    v, i = fw.mode(fw.tensor([NAN, NAN, 2.0]))  # NaNs never equal each other
    assert v.item() == 2.0 and i.item() == 2
    v, i = fw.mode(fw.tensor(3.0))
    assert v.item() == 3.0 and i.item() == 0


# -- quantile / nanquantile ----------------------------------------------------------------
INTERP = ["linear", "lower", "higher", "midpoint", "nearest"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("interpolation", INTERP)
def test_quantile_matches_numpy(dtype, interpolation):
    a = RNG.standard_normal((4, 7, 5)).astype(dtype)
    q = np.array([0.0, 0.1, 0.25, 0.5, 0.7, 1.0], dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)
    x, qt = fw.tensor(a), fw.tensor(q)
    for dim in (None, 0, 1, -1):
        for keepdim in (False, True):
            got = fw.quantile(x, qt, dim, keepdim, interpolation=interpolation)
            want = np.quantile(a, q, axis=dim, keepdims=keepdim, method=interpolation)
            assert got.shape == want.shape and got.dtype is x.dtype
            np.testing.assert_allclose(_np(got), want, **tol)
            got = x.quantile(0.3, dim=dim, keepdim=keepdim, interpolation=interpolation)
            want = np.quantile(a, 0.3, axis=dim, keepdims=keepdim, method=interpolation)
            assert got.shape == want.shape
            np.testing.assert_allclose(_np(got), want, **tol)


@pytest.mark.parametrize("interpolation", INTERP)
def test_quantile_nan_and_nanquantile(interpolation):
    a = RNG.standard_normal((5, 8))
    a[RNG.random((5, 8)) < 0.25] = NAN
    a[2] = NAN
    a[3, :] = np.arange(8.0)
    q = np.array([0.2, 0.5, 0.95])
    x, qt = fw.tensor(a), fw.tensor(q)
    got = _np(fw.quantile(x, qt, dim=1, interpolation=interpolation))
    np.testing.assert_allclose(got, np.quantile(a, q, axis=1, method=interpolation))
    assert np.isnan(got[:, np.isnan(a).any(1)]).all()
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanquantile(a, q, axis=1, method=interpolation)
    np.testing.assert_allclose(_np(fw.nanquantile(x, qt, dim=1, interpolation=interpolation)),
                               want)
    np.testing.assert_allclose(_np(fw.nanquantile(x, 0.4, interpolation=interpolation)),
                               np.nanquantile(a, 0.4, method=interpolation))
    assert math.isnan(fw.quantile(x, 0.4).item())


def test_quantile_zero_d_and_zero_d_q():
    x = fw.tensor(1.5, dtype=fw.float64)
    assert fw.quantile(x, 0.3).item() == 1.5
    assert fw.quantile(x, 0.3, dim=0, keepdim=True).shape == ()
    y = fw.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert fw.quantile(y, fw.tensor(0.5), dim=0).tolist() == [2.0, 3.5]
    assert fw.quantile(y, fw.tensor([0.5]), dim=0, keepdim=True).shape == (1, 1, 2)
    assert fw.quantile(y, 0.5, keepdim=True).shape == (1, 1)


def test_quantile_errors():
    x = fw.randn(3, 4)
    with pytest.raises(fw.ArgumentError, match=r"quantile\(\) q must be in the range \[0, 1\]"):
        fw.quantile(x, 1.5)
    with pytest.raises(fw.ArgumentError, match=r"nanquantile\(\) q values must be in the range"):
        fw.nanquantile(x, fw.tensor([0.5, -0.1]))
    with pytest.raises(fw.DTypeError, match=r"quantile\(\) input tensor must be either float or"):
        fw.quantile(fw.tensor([1, 2, 3]), 0.5)
    with pytest.raises(fw.DTypeError, match=r"quantile\(\) q tensor must be same dtype"):
        fw.quantile(x, fw.tensor([0.5], dtype=fw.float64))
    with pytest.raises(fw.ShapeError, match=r"quantile\(\) q must be a scalar or 1D tensor"):
        fw.quantile(x, fw.full((2, 2), 0.5))
    with pytest.raises(fw.ArgumentError, match=r"quantile\(\) interpolation must be one of"):
        fw.quantile(x, 0.5, interpolation="cubic")
    with pytest.raises(fw.ArgumentError, match=r"quantile\(\) input tensor must be non-empty"):
        fw.quantile(fw.zeros(0, 3), 0.5, dim=1)
    with pytest.raises(fw.ArgumentError, match=r"quantile: dimension out of range"):
        fw.quantile(x, 0.5, dim=2)
    with pytest.raises(TypeError, match=r"quantile\(\) q must be a float or a tensor"):
        fw.quantile(x, "half")


# -- msort -----------------------------------------------------------------------------------
def test_msort():
    a = RNG.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(_np(fw.msort(fw.tensor(a))), np.sort(a, axis=0))
    assert fw.tensor([[2, 1], [0, 3]]).msort().tolist() == [[0, 1], [2, 3]]


# -- searchsorted / bucketize ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_searchsorted_1d_matches_numpy(dtype):
    seq = np.sort(RNG.integers(-10, 10, size=12)).astype(dtype)  # with repeats
    vals = RNG.integers(-12, 12, size=(3, 5)).astype(dtype)
    for right in (False, True):
        got = fw.searchsorted(fw.tensor(seq), fw.tensor(vals), right=right)
        assert got.dtype is fw.int64 and got.shape == (3, 5)
        np.testing.assert_array_equal(_np(got), np.searchsorted(seq, vals,
                                                                "right" if right else "left"))
    got = fw.searchsorted(fw.tensor(seq), fw.tensor(vals), side="right", out_int32=True)
    assert got.dtype is fw.int32
    np.testing.assert_array_equal(_np(got), np.searchsorted(seq, vals, "right"))
    assert fw.searchsorted(fw.tensor(seq), 0).shape == ()
    assert fw.searchsorted(fw.tensor(seq), 0).item() == np.searchsorted(seq, 0)


def test_searchsorted_nd_sorter_nan_and_empty():
    seq = np.sort(RNG.standard_normal((2, 3, 6)), axis=-1)
    vals = RNG.standard_normal((2, 3, 4))
    got = _np(fw.searchsorted(fw.tensor(seq), fw.tensor(vals), right=True))
    for idx in np.ndindex(2, 3):
        np.testing.assert_array_equal(got[idx], np.searchsorted(seq[idx], vals[idx], "right"))
    raw = np.array([3.0, 1.0, 2.0, 5.0])
    sorter = np.argsort(raw)
    got = fw.searchsorted(fw.tensor(raw), fw.tensor([0.5, 2.0, 9.0]), sorter=fw.tensor(sorter))
    assert got.tolist() == np.searchsorted(raw, [0.5, 2.0, 9.0], sorter=sorter).tolist()
    # NaN values go after everything (PyTorch's binary search); int vs float promotes
    assert fw.searchsorted(fw.tensor([1.0, 2.0]), fw.tensor([NAN, 1.5])).tolist() == [2, 1]
    assert fw.searchsorted(fw.tensor([1, 2, 3]), fw.tensor([2.5])).tolist() == [2]
    assert fw.searchsorted(fw.zeros(0), fw.tensor([1.0, 2.0])).tolist() == [0, 0]
    assert fw.searchsorted(fw.tensor([1.0]), fw.zeros(0, 3)).shape == (0, 3)


def test_searchsorted_errors():
    s = fw.tensor([1.0, 2.0, 3.0])
    with pytest.raises(fw.ArgumentError, match=r"searchsorted\(\): side and right can't be"):
        fw.searchsorted(s, s, right=True, side="left")
    with pytest.raises(fw.ArgumentError, match=r"searchsorted\(\): side can only be"):
        fw.searchsorted(s, s, side="middle")
    with pytest.raises(fw.ShapeError, match=r"searchsorted\(\): boundaries tensor should be 1 "):
        fw.searchsorted(fw.zeros(2, 3), fw.zeros(3, 3))
    with pytest.raises(fw.ShapeError, match=r"searchsorted\(\): input value can be a scalar"):
        fw.searchsorted(fw.zeros(2, 3), 1.0)
    with pytest.raises(fw.ShapeError, match=r"searchsorted\(\): boundaries tensor should have "):
        fw.searchsorted(fw.tensor(1.0), s)
    with pytest.raises(fw.DTypeError, match=r"searchsorted\(\): sorter must be a tensor of long"):
        fw.searchsorted(s, s, sorter=fw.tensor([0, 1, 2], dtype=fw.int32))
    with pytest.raises(fw.ShapeError, match=r"searchsorted\(\): boundary and sorter must have"):
        fw.searchsorted(s, s, sorter=fw.tensor([0, 1]))


def test_bucketize():
    b = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    x = np.array([[1.0, 6.0, 9.0], [3.0, 6.0, 9.5]])
    got = fw.bucketize(fw.tensor(x), fw.tensor(b))
    assert got.tolist() == [[0, 3, 4], [1, 3, 5]]
    np.testing.assert_array_equal(_np(got), np.digitize(x, b, right=True))
    got = fw.bucketize(fw.tensor(x), fw.tensor(b), right=True, out_int32=True)
    assert got.dtype is fw.int32 and got.tolist() == [[1, 3, 5], [2, 3, 5]]
    np.testing.assert_array_equal(_np(got), np.digitize(x, b, right=False))
    assert fw.bucketize(4, fw.tensor(b)).item() == 2
    with pytest.raises(fw.ShapeError, match=r"bucketize\(\): boundaries tensor must be 1 dim"):
        fw.bucketize(fw.tensor(x), fw.tensor(x))


# -- unique / unique_consecutive --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_unique_matches_numpy(dtype):
    a = RNG.integers(0, 5, size=(4, 6)).astype(dtype)
    got = fw.unique(fw.tensor(a))
    np.testing.assert_array_equal(_np(got), np.unique(a))
    assert got.dtype is fw.tensor(a).dtype
    out, inv, cnt = fw.tensor(a).unique(return_inverse=True, return_counts=True)
    u, ui, uc = np.unique(a, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(_np(out), u)
    assert inv.shape == a.shape and inv.dtype is fw.int64 and cnt.dtype is fw.int64
    np.testing.assert_array_equal(_np(inv), ui.reshape(a.shape))
    np.testing.assert_array_equal(_np(cnt), uc)
    out, cnt = fw.unique(fw.tensor(a), sorted=False, return_counts=True)
    np.testing.assert_array_equal(_np(cnt), uc)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unique_dim_matches_numpy(dim):
    a = RNG.integers(0, 2, size=(6, 3, 5)).astype(np.int64)
    a = np.concatenate([a, a[:2]], axis=0)
    a = np.concatenate([a, a[:, :1]], axis=1)
    out, inv, cnt = fw.unique(fw.tensor(a), dim=dim, return_inverse=True, return_counts=True)
    u, ui, uc = np.unique(a, axis=dim, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(_np(out), u)
    np.testing.assert_array_equal(_np(inv), ui.reshape(-1))
    np.testing.assert_array_equal(_np(cnt), uc)
    np.testing.assert_array_equal(np.take(_np(out), _np(inv), axis=dim), a)


def test_unique_nan_zero_d_and_empty():
    a = np.array([2.0, NAN, 1.0, NAN, 2.0])
    out, cnt = fw.unique(fw.tensor(a), return_counts=True)
    np.testing.assert_array_equal(_np(out), np.unique(a, equal_nan=False))
    assert cnt.tolist() == [1, 2, 1, 1]
    out, inv = fw.unique(fw.tensor(3), return_inverse=True)
    assert out.tolist() == [3] and inv.shape == () and inv.item() == 0
    out, inv, cnt = fw.unique(fw.zeros(0, 2), return_inverse=True, return_counts=True)
    assert out.shape == (0,) and inv.shape == (0, 2) and cnt.shape == (0,)
    out, inv = fw.unique(fw.zeros(0, 2), dim=0, return_inverse=True)
    assert out.shape == (0, 2) and inv.shape == (0,)
    with pytest.raises(fw.ArgumentError, match=r"unique\(\): there are 0 sized dimensions"):
        fw.unique(fw.zeros(0, 2), dim=1)
    with pytest.raises(fw.ArgumentError, match=r"unique\(\): number of zero sized dimensions"):
        fw.unique(fw.zeros(0, 0), dim=1)
    with pytest.raises(fw.ArgumentError, match=r"unique: dimension out of range"):
        fw.unique(fw.zeros(2, 2), dim=2)


def test_unique_consecutive():
    a = np.array([1, 1, 2, 2, 3, 1, 1, 2])
    out, inv, cnt = fw.unique_consecutive(fw.tensor(a), return_inverse=True,
                                          return_counts=True)
    assert out.tolist() == [1, 2, 3, 1, 2]
    assert inv.tolist() == [0, 0, 1, 1, 2, 3, 3, 4] and cnt.tolist() == [2, 2, 1, 2, 1]
    assert fw.tensor(a.reshape(2, 4)).unique_consecutive(return_inverse=True)[1].shape == (2, 4)
    m = np.array([[1, 1, 0, 0, 1], [2, 2, 3, 3, 2]])
    out, inv, cnt = fw.unique_consecutive(fw.tensor(m), dim=1, return_inverse=True,
                                          return_counts=True)
    assert out.tolist() == [[1, 0, 1], [2, 3, 2]]
    assert inv.tolist() == [0, 0, 1, 1, 2] and cnt.tolist() == [2, 2, 1]
    nan = fw.unique_consecutive(fw.tensor([NAN, NAN, 1.0, 1.0]))
    assert _np(nan).shape == (3,)  # NaNs never equal each other
    assert fw.unique_consecutive(fw.zeros(0)).shape == (0,)


def test_unique_is_a_graph_break_and_meta_raises():
    with pytest.raises(fw.GraphBreak, match=r"unique\(\): a meta tensor has no data"):
        fw.unique(fw.randn(3).to("meta"))
    fn = fw.compile(lambda t: fw.unique(t * 2, return_counts=True)[1] + 1, mode="always")
    with pytest.warns(UserWarning, match="graph break"):
        got = fn(fw.tensor([1.0, 2.0, 2.0, 3.0]))
    assert got.tolist() == [2, 3, 2]


# -- bincount / histc ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [fw.int64, fw.int32, fw.uint8])
def test_bincount_matches_numpy(dtype):
    a = RNG.integers(0, 9, size=40)
    got = fw.bincount(fw.tensor(a).to(dtype))
    assert got.dtype is fw.int64
    np.testing.assert_array_equal(_np(got), np.bincount(a))
    np.testing.assert_array_equal(_np(fw.bincount(fw.tensor(a).to(dtype), minlength=20)),
                                  np.bincount(a, minlength=20))
    w = RNG.standard_normal(40)
    got = fw.tensor(a).to(dtype).bincount(weights=fw.tensor(w, dtype=fw.float32))
    assert got.dtype is fw.float32
    np.testing.assert_allclose(_np(got), np.bincount(a, weights=w), rtol=1e-5, atol=1e-5)
    got = fw.bincount(fw.tensor(a), weights=fw.tensor(a))
    assert got.dtype is fw.float64  # non-float32 weights -> float64 (PyTorch)
    np.testing.assert_array_equal(_np(got), np.bincount(a, weights=a))


def test_bincount_empty_and_errors():
    got = fw.bincount(fw.zeros(0, dtype=fw.int64))
    assert got.shape == (0,) and got.dtype is fw.int64
    assert fw.bincount(fw.zeros(0, dtype=fw.int64), minlength=3).tolist() == [0, 0, 0]
    with pytest.raises(fw.ArgumentError, match=r"bincount\(\): .*negative value -1"):
        fw.bincount(fw.tensor([1, -1]))
    with pytest.raises(fw.DTypeError, match=r"bincount\(\): only supports 1-d non-negative"):
        fw.bincount(fw.tensor([1.0]))
    with pytest.raises(fw.ShapeError, match=r"bincount\(\): only supports 1-d .*\[2, 2\]"):
        fw.bincount(fw.zeros(2, 2, dtype=fw.int64))
    with pytest.raises(fw.ShapeError, match=r"bincount\(\): weights should be 1-d"):
        fw.bincount(fw.tensor([1, 2]), weights=fw.ones(3))
    with pytest.raises(fw.ArgumentError, match=r"bincount\(\): minlength should be >= 0"):
        fw.bincount(fw.tensor([1, 2]), minlength=-1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histc_matches_numpy(dtype):
    a = RNG.standard_normal(500).astype(dtype)
    got = fw.histc(fw.tensor(a), bins=10)
    assert got.dtype is fw.tensor(a).dtype and got.shape == (10,)
    np.testing.assert_array_equal(_np(got), np.histogram(a, bins=10)[0])
    got = fw.tensor(a).histc(bins=7, min=-1, max=1.5)
    np.testing.assert_array_equal(_np(got), np.histogram(a, bins=7, range=(-1, 1.5))[0])
    assert _np(got).sum() == ((a >= -1) & (a <= 1.5)).sum()  # outside elements ignored


def test_histc_edges_constant_nan_and_errors():
    x = fw.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    assert fw.histc(x, bins=4, min=0, max=4).tolist() == [1.0, 1.0, 1.0, 2.0]  # max: last bin
    assert fw.histc(fw.tensor([2.0, 2.0]), bins=4).tolist() == [0.0, 0.0, 2.0, 0.0]  # [1, 3]
    assert fw.histc(fw.tensor([NAN, 1.0]), bins=2, min=0, max=2).tolist() == [0.0, 1.0]
    assert fw.histc(fw.zeros(0), bins=3).tolist() == [0.0, 0.0, 0.0]
    h = fw.histc(fw.tensor([1.0, 2.0], dtype=fw.float16), bins=2)
    assert h.dtype is fw.float16 and h.tolist() == [1.0, 1.0]
    with pytest.raises(fw.ArgumentError, match=r"histc\(\): range of \[nan, nan\] is not finite"):
        fw.histc(fw.tensor([NAN, 1.0]))
    with pytest.raises(fw.ArgumentError, match=r"histc\(\): bins must be > 0"):
        fw.histc(x, bins=0)
    with pytest.raises(fw.ArgumentError, match=r"histc\(\): max must be larger than min"):
        fw.histc(x, min=3, max=1)
    with pytest.raises(fw.DTypeError, match=r"histc\(\): input must be a floating point"):
        fw.histc(fw.tensor([1, 2]))


# -- API, autograd ---------------------------------------------------------------------------
def test_functions_methods_and_no_registered_op():
    for name in ("median", "nanmedian", "kthvalue", "mode", "quantile", "nanquantile", "msort",
                 "unique", "unique_consecutive", "bincount", "histc"):
        assert getattr(fw.Tensor, name) is getattr(fw, name) is getattr(fw.ops, name)
        assert name not in OPS
    assert fw.searchsorted is fw.ops.searchsorted and fw.bucketize is fw.ops.bucketize
    r = fw.tensor([[1.0, 3.0, 2.0]]).median(1)
    assert r.values.tolist() == [2.0] and r.indices.tolist() == [2]
    # the (values, indices) type max returns, named after the op (torch.return_types.median)
    assert type(r).__mro__[1:] == type(fw.max(fw.ones(2, 2), 1)).__mro__[1:]
    assert type(r).__name__ == "median"


def test_median_and_bool_errors_name_the_op():
    with pytest.raises(fw.DTypeError, match=r"median\(\): not implemented for bool"):
        fw.median(fw.tensor([True, False]))
    with pytest.raises(fw.ArgumentError, match=r"nanmedian: dimension out of range"):
        fw.nanmedian(fw.zeros(2), 1)
    with pytest.raises(TypeError, match=r"median\(\): expected a Tensor"):
        fw.median([1.0, 2.0])


def _distinct(*shape):
    n = int(np.prod(shape))
    return fw.tensor(RNG.permutation(n).reshape(shape) / 3.0 - 2.0, dtype=fw.float64,
                     requires_grad=True)


def test_gradcheck_median_kthvalue_quantile_mode():
    gc = fw.autograd.gradcheck
    assert gc(lambda t: fw.median(t), (_distinct(3, 5),))
    assert gc(lambda t: fw.median(t, 1).values, (_distinct(3, 6),))
    assert gc(lambda t: fw.nanmedian(t, 0, keepdim=True).values, (_distinct(4, 3),))
    assert gc(lambda t: fw.kthvalue(t, 2, 0).values, (_distinct(4, 3),))
    assert gc(lambda t: t.mode(-1).values, (_distinct(2, 5),))
    q = fw.tensor([0.1, 0.5, 0.83], dtype=fw.float64)
    for interp in INTERP:
        assert gc(lambda t, i=interp: fw.quantile(t, q, dim=1, interpolation=i),
                  (_distinct(3, 7),))
    assert gc(lambda t: fw.nanquantile(t, 0.35), (_distinct(2, 6),))


def test_median_gradient_goes_to_the_selected_element():
    x = fw.tensor([[4.0, 1.0, 3.0, 2.0]], requires_grad=True)
    fw.median(x, 1).values.sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0, 1.0]]
    x.grad = None
    fw.quantile(x, 0.5).backward()  # linear: halfway between 2 and 3
    assert x.grad.tolist() == [[0.0, 0.0, 0.5, 0.5]]


# -- fw.compile ------------------------------------------------------------------------------
COMPILED = {
    "median": lambda t: fw.median(t, 1),
    "median_all": lambda t: fw.median(t) * 2,
    "median_int": lambda t: fw.median((t.nan_to_num() * 3).to(fw.int64), 1),
    "nanmedian": lambda t: fw.nanmedian(t, 0, keepdim=True),
    "kthvalue": lambda t: fw.kthvalue(t, 3, -1),
    "mode": lambda t: fw.mode(t.round(), 0),
    "quantile": lambda t: fw.quantile(t, fw.tensor([0.2, 0.5, 1.0]), dim=1),
    "nanquantile": lambda t: fw.nanquantile(t, 0.3, interpolation="nearest"),
    "searchsorted": lambda t: fw.searchsorted(t.sort(dim=1).values, t, right=True),
    "bucketize": lambda t: fw.bucketize(t, fw.tensor([-1.0, 0.0, 0.5])),
}


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_compile_fullgraph_matches_eager(name, monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    f = COMPILED[name]
    fn = fw.compile(f, fullgraph=True, mode="always")
    for n in (7, 10):
        a = RNG.standard_normal((4, n)).astype(np.float32)
        a[1, 2] = a[3, 0] = NAN
        x = fw.tensor(a)
        if n == 10:
            fw.mark_dynamic(x, 1)
        got, want = fn(x), f(x)
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype is w.dtype
            np.testing.assert_array_equal(_np(g), _np(w))
    assert not fn.stats()["graph_breaks"]


def test_compile_backward_through_quantile(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def step(x):
        loss = fw.quantile(x, 0.25, dim=1).sum() + fw.median(x, 0).values.sum()
        loss.backward()
        return loss

    fn = fw.compile(step, fullgraph=True, mode="always")
    a = _distinct(3, 5).detach().requires_grad_()
    b = a.detach().clone().requires_grad_()
    np.testing.assert_allclose(fn(a).item(), step(b).item())
    np.testing.assert_allclose(_np(a.grad), _np(b.grad))


# -- ONNX ----------------------------------------------------------------------------------
ONNX = {
    "median_dim": lambda t: fw.median(t, 1),
    "nanmedian_dim": lambda t: fw.nanmedian(t, 0),
    "kthvalue": lambda t: fw.kthvalue(t, 2, 0, keepdim=True),
    "quantile": lambda t: fw.quantile(t, fw.tensor([0.25, 0.5, 0.9]), dim=1),
    "quantile_midpoint": lambda t: fw.quantile(t, 0.4, interpolation="midpoint"),
    "bucketize": lambda t: fw.bucketize(t, fw.tensor([-1.0, 0.0, 0.5]), right=True),
}


@pytest.mark.parametrize("name", sorted(ONNX))
def test_onnx_export_verify(name):
    pytest.importorskip("onnxruntime")
    a = RNG.standard_normal((4, 6)).astype(np.float32)
    fw.onnx.export(ONNX[name], (fw.tensor(a),), verify=True)
    a[0, 3] = a[2, 1] = NAN
    fw.onnx.export(ONNX[name], (fw.tensor(a),), verify=True)
