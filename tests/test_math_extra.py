"""framework/ops/math_extra.py: hypot, logaddexp(2), diff, cross, rot90, diagonal, diag,
diag_embed, trace, tril/triu_indices, repeat_interleave, take, index_copy, index_fill,
cdist, logcumsumexp, cummax, cummin — values against NumPy, PyTorch's edge cases and
errors, gradients (gradcheck in float64), fw.compile (fullgraph) and ONNX export."""

import math

import numpy as np
import pytest

import framework as fw
from tests.function_checks import (check_compile_fullgraph, check_compiled_backward,
                                   check_onnx_export, rand_tensor as _rand, to_np as _np)

NAN, INF = math.nan, math.inf
FLOATS = [fw.float32, fw.float64]


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype is fw.float32 else dict(rtol=1e-12, atol=1e-12)


# -- hypot / logaddexp / logaddexp2 ---------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 1, 4), (3, 1)), ((0, 3), (3,))])
def test_binary_values(dtype, shapes):
    a, b = _rand(*shapes[0], dtype=dtype, seed=1) * 3, _rand(*shapes[1], dtype=dtype, seed=2) * 3
    for fn, ref in ((fw.hypot, np.hypot), (fw.logaddexp, np.logaddexp),
                    (fw.logaddexp2, np.logaddexp2)):
        out = fn(a, b)
        assert out.dtype is dtype and out.shape == np.broadcast_shapes(*shapes)
        np.testing.assert_allclose(_np(out), ref(_np(a), _np(b)), **_tol(dtype))


def test_binary_ieee_edge_cases():
    a = fw.tensor([INF, -INF, INF, -INF, NAN, 1.0, 3e38, 1e-30, 0.0, INF], dtype=fw.float32)
    b = fw.tensor([INF, -INF, -INF, 5.0, 1.0, NAN, 3e38, 1e-30, 0.0, NAN], dtype=fw.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        np.testing.assert_array_equal(_np(fw.logaddexp(a, b)), np.logaddexp(_np(a), _np(b)))
        np.testing.assert_array_equal(_np(fw.logaddexp2(a, b)), np.logaddexp2(_np(a), _np(b)))
        np.testing.assert_allclose(_np(fw.hypot(a, b)), np.hypot(_np(a), _np(b)), rtol=1e-6)
    assert fw.hypot(fw.tensor(INF), fw.tensor(NAN)).item() == INF  # IEEE
    # stability: tiny differences far from 0, and results far below 1
    x = fw.tensor([-50.0, 800.0], dtype=fw.float64)
    np.testing.assert_allclose(_np(fw.logaddexp(x, fw.tensor([0.0, 800.0], dtype=fw.float64))),
                               [np.logaddexp(-50.0, 0.0), 800 + math.log(2)], rtol=1e-14)


def test_binary_dtypes_and_errors():
    i = fw.tensor([3, 4])
    assert fw.hypot(i, fw.tensor([4.0, 3.0])).dtype is fw.float32
    assert fw.logaddexp(fw.tensor([1.0], dtype=fw.float16), fw.tensor([1.0])).dtype is fw.float32
    for fn in (fw.hypot, fw.logaddexp, fw.logaddexp2):
        with pytest.raises(fw.DTypeError, match=fn.__name__):
            fn(i, i)
        with pytest.raises(fw.ShapeError, match=fn.__name__):
            fn(fw.ones(2), fw.ones(3))
        with pytest.raises(TypeError, match="other"):
            fn(fw.ones(2), 1.0)


def test_binary_gradients():
    a, b = _rand(3, 4, grad=True), _rand(4, seed=3, grad=True)
    for fn in (fw.hypot, fw.logaddexp, fw.logaddexp2):
        assert fw.autograd.gradcheck(fn, (a, b))
    # equal arguments: the gradient is shared (0.5 each for logaddexp)
    x, y = fw.tensor([2.0], requires_grad=True), fw.tensor([2.0], requires_grad=True)
    fw.logaddexp(x, y).sum().backward()
    assert x.grad.tolist() == y.grad.tolist() == [0.5]
    x = fw.tensor([3.0, 1e30], dtype=fw.float64, requires_grad=True)
    fw.hypot(x, fw.tensor([4.0, 1e30], dtype=fw.float64)).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [0.6, 1 / math.sqrt(2)], rtol=1e-14)


def test_hypot_inplace_method():
    x = fw.tensor([3.0, 5.0])
    assert x.hypot_(fw.tensor([4.0, 12.0])) is x and x.tolist() == [5.0, 13.0]
    assert fw.tensor([1.0]).logaddexp(fw.tensor([1.0])).item() == pytest.approx(1 + math.log(2))


# -- diff -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + [fw.int64])
def test_diff_values(dtype):
    x = fw.tensor(np.random.default_rng(0).integers(-9, 9, (3, 7))).to(dtype)
    a = _np(x)
    for n, dim in ((1, -1), (2, 1), (3, 0), (0, 1), (9, -1), (7, 1)):
        np.testing.assert_array_equal(_np(fw.diff(x, n, dim)), np.diff(a, n, dim))
    pre, app = fw.ones(3, 2, dtype=dtype), fw.zeros(3, 1, dtype=dtype)
    np.testing.assert_array_equal(_np(x.diff(2, -1, pre, app)),
                                  np.diff(a, 2, -1, prepend=_np(pre), append=_np(app)))
    np.testing.assert_array_equal(_np(fw.diff(x, 0, 1, prepend=pre)), a)  # n=0: input
    assert fw.diff(fw.ones(0, 4), dim=0).shape == (0, 4)
    assert fw.diff(fw.ones(2, 0)).shape == (2, 0)


def test_diff_bool_errors_and_grad():
    b = fw.tensor([True, False, False, True])
    assert fw.diff(b).tolist() == [True, False, True]
    with pytest.raises(fw.ShapeError, match="diff"):
        fw.diff(fw.tensor(1.0))
    with pytest.raises(fw.ArgumentError, match="order must be non-negative"):
        fw.diff(fw.ones(3), -1)
    with pytest.raises(fw.ShapeError, match="prepend"):
        fw.diff(fw.ones(2, 3), prepend=fw.ones(3))
    with pytest.raises(fw.ShapeError, match="append"):
        fw.diff(fw.ones(2, 3), dim=1, append=fw.ones(3, 1))
    with pytest.raises(fw.ArgumentError, match="diff"):
        fw.diff(fw.ones(2, 3), dim=2)
    x, p = _rand(3, 5, grad=True), _rand(3, 1, seed=4, grad=True)
    assert fw.autograd.gradcheck(lambda t, q: fw.diff(t, 2, prepend=q), (x, p))


# -- cross ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + [fw.int64])
def test_cross_values(dtype):
    a = fw.tensor(np.random.default_rng(0).integers(-5, 5, (4, 3, 2))).to(dtype)
    b = fw.tensor(np.random.default_rng(1).integers(-5, 5, (1, 3, 2))).to(dtype)
    np.testing.assert_array_equal(_np(fw.cross(a, b, dim=1)), np.cross(_np(a), _np(b), axis=1))
    np.testing.assert_array_equal(_np(a.cross(b, dim=-2)), np.cross(_np(a), _np(b), axis=1))
    np.testing.assert_array_equal(_np(fw.cross(a, b)), np.cross(_np(a), _np(b), axis=1))
    c = fw.tensor(np.random.default_rng(2).integers(-5, 5, (3, 3))).to(dtype)
    # dim=None: the first dim of size 3 (dim 0 here, not the last one)
    np.testing.assert_array_equal(_np(fw.cross(c, c.flip(1))), np.cross(_np(c), _np(c)[:, ::-1],
                                                                         axis=0))
    assert fw.cross(fw.ones(0, 3), fw.ones(0, 3)).shape == (0, 3)
    assert fw.cross(fw.ones(3, dtype=fw.int32), fw.ones(3)).dtype is fw.float32


def test_cross_errors_and_grad():
    with pytest.raises(fw.ShapeError, match="no dimension of size 3"):
        fw.cross(fw.ones(2, 4), fw.ones(2, 4))
    with pytest.raises(fw.ShapeError, match="must have length 3"):
        fw.cross(fw.ones(3, 4), fw.ones(3, 4), dim=1)
    with pytest.raises(fw.ShapeError, match="same number of dimensions"):
        fw.cross(fw.ones(2, 3), fw.ones(3))
    with pytest.raises(fw.ShapeError, match="cross"):
        fw.cross(fw.ones(2, 3), fw.ones(4, 3), dim=1)
    assert fw.autograd.gradcheck(lambda a, b: fw.cross(a, b, dim=-1),
                                 (_rand(2, 3, grad=True), _rand(1, 3, seed=5, grad=True)))


# -- rot90 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [-5, -1, 0, 1, 2, 3, 4, 6])
def test_rot90(k):
    x = fw.arange(24.0).reshape(2, 3, 4)
    for dims in ((0, 1), (1, 2), (2, 0), (-1, -3)):
        out = fw.rot90(x, k, dims)
        np.testing.assert_array_equal(_np(out), np.rot90(_np(x), k, dims))
    np.testing.assert_array_equal(_np(x.rot90()), np.rot90(_np(x)))


def test_rot90_errors_and_grad():
    with pytest.raises(fw.ArgumentError, match="rotation dims == 2"):
        fw.rot90(fw.ones(2, 2), 1, (0,))
    with pytest.raises(fw.ShapeError, match="total dims >= 2"):
        fw.rot90(fw.ones(3))
    with pytest.raises(fw.ArgumentError, match="different"):
        fw.rot90(fw.ones(2, 2), 1, (0, -2))
    with pytest.raises(fw.ArgumentError, match="rot90"):
        fw.rot90(fw.ones(2, 2), 1, (0, 2))
    assert fw.autograd.gradcheck(lambda t: fw.rot90(t, 1, (1, 0)), (_rand(2, 3, grad=True),))


# -- diagonal / diag / diag_embed / trace -------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + [fw.int64, fw.bool])
def test_diagonal_and_diag(dtype):
    a = np.random.default_rng(0).integers(0, 3, (2, 4, 3, 5))
    x = fw.tensor(a).to(dtype)
    a = _np(x)
    for off in (-4, -1, 0, 1, 2, 6):
        for d1, d2 in ((0, 1), (1, 3), (3, 1), (-1, -2), (0, 2)):
            np.testing.assert_array_equal(_np(fw.diagonal(x, off, d1, d2)),
                                          np.diagonal(a, off, d1, d2))
        m = x[0, :, 0]
        np.testing.assert_array_equal(_np(fw.diag(m, off)), np.diag(_np(m), off))
        np.testing.assert_array_equal(_np(m.diag(off)), np.diag(_np(m), off))
        v = x[0, 0, 0]
        np.testing.assert_array_equal(_np(fw.diag(v, off)), np.diag(_np(v), off))
    np.testing.assert_array_equal(_np(x.diagonal()), np.diagonal(a))
    assert fw.diagonal(fw.ones(0, 3)).shape == (0,)


def _diag_embed_ref(a, offset, dim1, dim2):
    n = a.shape[-1]
    m = n + abs(offset)
    out = np.zeros(a.shape[:-1] + (m, m), a.dtype)
    for i in range(n):
        r, c = (i, i + offset) if offset >= 0 else (i - offset, i)
        out[..., r, c] = a[..., i]
    nd = a.ndim + 1
    return np.moveaxis(out, (-2, -1), (dim1 % nd, dim2 % nd))


@pytest.mark.parametrize("dtype", FLOATS + [fw.int32])
def test_diag_embed(dtype):
    x = _rand(2, 3, 4, dtype=fw.float64).to(dtype)
    for off in (-2, 0, 1):
        for d1, d2 in ((-2, -1), (0, 2), (-1, 0), (1, 3)):
            out = fw.diag_embed(x, off, d1, d2)
            ref = _diag_embed_ref(_np(x), off, d1, d2)
            assert out.dtype is dtype
            np.testing.assert_array_equal(_np(out), ref)
            # the round trip of PyTorch's definition
            np.testing.assert_array_equal(_np(fw.diagonal(out, off, d1, d2)), _np(x))
    assert fw.diag_embed(fw.ones(3, 0), 2).shape == (3, 2, 2)
    assert fw.diag_embed(fw.tensor([True, False])).tolist() == [[True, False], [False, False]]


def test_trace_and_diagonal_errors_grads():
    assert fw.trace(fw.arange(12).reshape(3, 4)).item() == 0 + 5 + 10
    t = fw.trace(fw.arange(4, dtype=fw.int32).reshape(2, 2))
    assert t.dtype is fw.int64 and t.item() == 3
    assert fw.arange(9.0).reshape(3, 3).trace().item() == 12.0
    with pytest.raises(fw.ShapeError, match="trace"):
        fw.trace(fw.ones(3))
    with pytest.raises(fw.ShapeError, match="diag"):
        fw.diag(fw.ones(2, 2, 2))
    with pytest.raises(fw.ArgumentError, match="diagonal"):
        fw.diagonal(fw.ones(3))
    with pytest.raises(fw.ArgumentError, match="identical"):
        fw.diagonal(fw.ones(3, 3), 0, 1, -1)
    with pytest.raises(fw.ArgumentError, match="identical"):
        fw.diag_embed(fw.ones(3), 0, 0, -2)
    with pytest.raises(fw.ArgumentError, match="diag_embed"):
        fw.diag_embed(fw.tensor(1.0))
    x = _rand(3, 4, 2, grad=True)
    assert fw.autograd.gradcheck(lambda t: fw.diagonal(t, 1, 0, 1), (x,))
    assert fw.autograd.gradcheck(lambda t: fw.diag_embed(t, -1, 0, 2), (x,))
    assert fw.autograd.gradcheck(lambda t: fw.trace(t[:, :, 0]), (x,))
    m = fw.ones(3, 3, requires_grad=True)
    fw.trace(m).backward()
    np.testing.assert_array_equal(_np(m.grad), np.eye(3))


# -- tril_indices / triu_indices ------------------------------------------------------------
@pytest.mark.parametrize("row,col", [(4, 4), (3, 5), (5, 2), (0, 3), (3, 0), (1, 1)])
def test_tri_indices(row, col):
    for off in (-6, -1, 0, 2, 7):
        lo = fw.tril_indices(row, col, off)
        hi = fw.triu_indices(row, col, off)
        assert lo.dtype is fw.int64 and lo.shape[0] == 2
        np.testing.assert_array_equal(_np(lo), np.stack(np.tril_indices(row, off, col))
                                      .reshape(2, -1))
        np.testing.assert_array_equal(_np(hi), np.stack(np.triu_indices(row, off, col))
                                      .reshape(2, -1))
    assert fw.tril_indices(3, 3, dtype=fw.int32).dtype is fw.int32
    with pytest.raises(fw.ArgumentError, match="tril_indices"):
        fw.tril_indices(-1, 3)
    with pytest.raises(fw.DTypeError, match="triu_indices"):
        fw.triu_indices(3, 3, dtype=fw.bool)


# -- repeat_interleave --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + [fw.int64])
def test_repeat_interleave_values(dtype):
    x = fw.arange(6).reshape(2, 3).to(dtype)
    a = _np(x)
    np.testing.assert_array_equal(_np(fw.repeat_interleave(x, 2)), np.repeat(a, 2))
    np.testing.assert_array_equal(_np(x.repeat_interleave(3, dim=-1)), np.repeat(a, 3, -1))
    np.testing.assert_array_equal(_np(x.repeat_interleave(0, dim=0)), np.repeat(a, 0, 0))
    r = fw.tensor([2, 0, 3])
    np.testing.assert_array_equal(_np(fw.repeat_interleave(x, r, dim=1)),
                                  np.repeat(a, [2, 0, 3], 1))
    np.testing.assert_array_equal(_np(fw.repeat_interleave(x, r, dim=1, output_size=5)),
                                  np.repeat(a, [2, 0, 3], 1))
    np.testing.assert_array_equal(_np(fw.repeat_interleave(x, fw.tensor([3]), dim=0)),
                                  np.repeat(a, 3, 0))
    np.testing.assert_array_equal(_np(fw.repeat_interleave(x, fw.tensor(2), dim=1,
                                                           output_size=6)), np.repeat(a, 2, 1))
    flat = fw.repeat_interleave(x, fw.tensor([1, 0, 2, 0, 0, 1], dtype=fw.int32))
    np.testing.assert_array_equal(_np(flat), np.repeat(a.reshape(-1), [1, 0, 2, 0, 0, 1]))
    assert fw.repeat_interleave(fw.ones(0, 2), fw.tensor([], dtype=fw.int64), 0).shape == (0, 2)


def test_repeat_interleave_single_argument_form():
    r = fw.tensor([2, 0, 1, 3])
    out = fw.repeat_interleave(r)
    assert out.dtype is fw.int64 and out.tolist() == [0, 0, 2, 3, 3, 3]
    assert fw.repeat_interleave(r.to(fw.int32)).dtype is fw.int32
    assert fw.repeat_interleave(r, output_size=6).tolist() == [0, 0, 2, 3, 3, 3]
    assert fw.repeat_interleave(fw.tensor([0, 0])).tolist() == []
    assert fw.repeat_interleave(fw.tensor(3)).tolist() == [0, 0, 0]


def test_repeat_interleave_errors_and_grad():
    x = fw.ones(2, 3)
    with pytest.raises(fw.ArgumentError, match="negative"):
        fw.repeat_interleave(x, -1)
    with pytest.raises(fw.ArgumentError, match="negative"):
        fw.repeat_interleave(x, fw.tensor([1, -1, 1]), dim=1)
    with pytest.raises(fw.ShapeError, match="same size as input"):
        fw.repeat_interleave(x, fw.tensor([1, 2]), dim=1)
    with pytest.raises(fw.DTypeError, match="Long or Int"):
        fw.repeat_interleave(x, fw.tensor([1.0, 2.0]), dim=0)
    with pytest.raises(fw.ShapeError, match="0-dim or 1-dim"):
        fw.repeat_interleave(x, fw.ones(2, 2, dtype=fw.int64), dim=0)
    with pytest.raises(fw.ArgumentError, match="output_size"):
        fw.repeat_interleave(x, fw.tensor([1, 2]), dim=0, output_size=4)
    with pytest.raises(fw.ArgumentError, match="output_size"):
        fw.repeat_interleave(x, 2, dim=0, output_size=3)
    with pytest.raises(fw.ArgumentError, match="repeat_interleave"):
        fw.repeat_interleave(x, 2, dim=2)
    t = _rand(2, 3, grad=True)
    assert fw.autograd.gradcheck(lambda u: fw.repeat_interleave(u, 2, dim=1), (t,))
    assert fw.autograd.gradcheck(
        lambda u: fw.repeat_interleave(u, fw.tensor([3, 0, 1]), dim=1), (t,))
    t.repeat_interleave(fw.tensor([3, 0, 1]), dim=1).sum().backward()
    assert t.grad.tolist() == [[3.0, 0.0, 1.0]] * 2


# -- take -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + [fw.int64])
def test_take(dtype):
    x = fw.arange(12).reshape(3, 4).to(dtype)
    idx = fw.tensor([[0, -1, 5], [11, -12, 3]])
    np.testing.assert_array_equal(_np(fw.take(x, idx)), np.take(_np(x), _np(idx)))
    np.testing.assert_array_equal(_np(x.take(fw.tensor(2))), np.take(_np(x), 2))
    assert fw.take(x, fw.tensor([], dtype=fw.int64)).shape == (0,)
    assert fw.take(fw.tensor(7.0), fw.tensor([0, -1])).tolist() == [7.0, 7.0]
    with pytest.raises(fw.FwIndexError, match="take"):
        fw.take(x, fw.tensor([12]))
    with pytest.raises(fw.FwIndexError, match="take"):
        fw.take(x, fw.tensor([-13]))
    with pytest.raises(fw.FwIndexError, match="empty"):
        fw.take(fw.ones(0), fw.tensor([0]))
    with pytest.raises(fw.DTypeError, match="take"):
        fw.take(x, fw.tensor([1], dtype=fw.int32))
    t = _rand(3, 4, grad=True)
    assert fw.autograd.gradcheck(lambda u: fw.take(u, fw.tensor([[1, 1], [-1, 0]])), (t,))


# -- index_copy / index_fill ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + [fw.int64])
def test_index_copy_values(dtype):
    x = fw.zeros(3, 4, 2, dtype=dtype)
    src = fw.arange(16).reshape(2, 4, 2).to(dtype)
    out = fw.index_copy(x, 0, fw.tensor([2, 0]), src)
    ref = np.zeros((3, 4, 2))
    ref[[2, 0]] = _np(src)
    np.testing.assert_array_equal(_np(out), ref)
    src1 = fw.arange(6).reshape(3, 1, 2).to(dtype)
    ref = np.zeros((3, 4, 2))
    ref[:, [3]] = _np(src1)
    np.testing.assert_array_equal(_np(x.index_copy(-2, fw.tensor([3]), src1)), ref)
    np.testing.assert_array_equal(_np(x), 0)  # functional form leaves x alone
    assert x.index_copy_(1, fw.tensor([3]), src1) is x
    np.testing.assert_array_equal(_np(x), ref)
    s = fw.tensor(5.0).to(dtype)
    assert fw.index_copy(fw.tensor(1.0).to(dtype), 0, fw.tensor([0]), s).item() == 5


def test_index_copy_errors_and_grads():
    x = fw.zeros(3, 2)
    with pytest.raises(fw.FwIndexError, match="index_copy"):
        fw.index_copy(x, 0, fw.tensor([3]), fw.ones(1, 2))
    with pytest.raises(fw.FwIndexError, match="index_copy"):
        fw.index_copy(x, 0, fw.tensor([-1]), fw.ones(1, 2))
    with pytest.raises(fw.ShapeError, match="index_copy"):
        fw.index_copy(x, 0, fw.tensor([0, 1]), fw.ones(1, 2))
    with pytest.raises(fw.DTypeError, match="same dtype"):
        fw.index_copy(x, 0, fw.tensor([0]), fw.ones(1, 2, dtype=fw.float64))
    with pytest.raises(fw.DTypeError, match="long"):
        fw.index_copy(x, 0, fw.tensor([0.0]), fw.ones(1, 2))
    with pytest.raises(fw.ShapeError, match="index_copy"):
        fw.index_copy(x, 0, fw.tensor([[0]]), fw.ones(1, 2))
    inp, src = _rand(4, 3, grad=True), _rand(4, 2, seed=7, grad=True)
    idx = fw.tensor([2, 0])
    assert fw.autograd.gradcheck(lambda a, b: fw.index_copy(a, 1, idx, b), (inp, src))
    g = fw.arange(12.0, dtype=fw.float64).reshape(4, 3)
    (fw.index_copy(inp, 1, idx, src) * g).sum().backward()
    np.testing.assert_array_equal(_np(inp.grad), _np(g) * np.array([0, 1, 0]))
    np.testing.assert_array_equal(_np(src.grad), _np(g)[:, [2, 0]])


@pytest.mark.parametrize("dtype", FLOATS + [fw.int64, fw.bool])
def test_index_fill_values(dtype):
    x = fw.zeros(3, 4, dtype=dtype)
    v = True if dtype is fw.bool else 7
    ref = np.zeros((3, 4), dtype=_np(x).dtype)
    ref[:, [1, 3]] = v
    np.testing.assert_array_equal(_np(fw.index_fill(x, 1, fw.tensor([1, -1, 1]), v)), ref)
    np.testing.assert_array_equal(_np(x.index_fill(-1, fw.tensor([3, 1]), fw.tensor(v))), ref)
    assert x.index_fill_(0, fw.tensor(2), v) is x
    assert _np(x)[2].all() and not _np(x)[:2].any()
    assert fw.index_fill(fw.tensor(1).to(dtype), 0, fw.tensor([0]), v).item() == v
    assert fw.index_fill(x, 0, fw.tensor([], dtype=fw.int64), v).tolist() == x.tolist()


def test_index_fill_errors_and_grads():
    with pytest.raises(fw.FwIndexError, match="index_fill"):
        fw.index_fill(fw.zeros(3, 2), 1, fw.tensor([2]), 1.0)
    with pytest.raises(fw.ShapeError, match="0-dimensional value"):
        fw.index_fill(fw.zeros(3, 2), 1, fw.tensor([0]), fw.ones(1))
    with pytest.raises(fw.ArgumentError, match="index_fill"):
        fw.index_fill(fw.zeros(3, 2), 2, fw.tensor([0]), 1.0)
    x, val = _rand(3, 4, grad=True), fw.tensor(2.0, dtype=fw.float64, requires_grad=True)
    assert fw.autograd.gradcheck(lambda a, v: fw.index_fill(a, 1, fw.tensor([0, 2]), v),
                                 (x, val))
    fw.index_fill(x, 1, fw.tensor([0, 2]), val).sum().backward()
    assert val.grad.item() == 6.0
    np.testing.assert_array_equal(_np(x.grad), [[0, 1, 0, 1]] * 3)


# -- cdist ----------------------------------------------------------------------------------
def _cdist_ref(a, b, p):
    d = np.abs(a[..., :, None, :] - b[..., None, :, :])
    if p == 0:
        return (d != 0).sum(-1).astype(a.dtype)
    if p == INF:
        return d.max(-1)
    return (d ** p).sum(-1) ** (1.0 / p)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", [0, 0.5, 1, 1.5, 2, 3, INF])
def test_cdist_values(dtype, p):
    a, b = _rand(2, 4, 3, dtype=dtype), _rand(5, 3, seed=1, dtype=dtype)
    a = fw.cat([a, b[:1].expand(2, 1, 3)], 1)  # a zero distance
    np.testing.assert_allclose(_np(fw.cdist(a, b, p)), _cdist_ref(_np(a), _np(b), p),
                               rtol=1e-5 if dtype is fw.float32 else 1e-12, atol=1e-6)


def test_cdist_mm_path_shapes_and_errors():
    a, b = _rand(30, 4), _rand(3, 2, 4, seed=1)
    ref = _cdist_ref(_np(a), _np(b), 2)
    for mode in ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                 "donot_use_mm_for_euclid_dist"):
        out = fw.cdist(a, b, compute_mode=mode)
        assert out.shape == (3, 30, 2)
        np.testing.assert_allclose(_np(out), ref, rtol=1e-10, atol=1e-10)
    assert fw.cdist(fw.ones(0, 3), fw.ones(2, 3)).shape == (0, 2)
    np.testing.assert_array_equal(_np(fw.cdist(fw.ones(2, 0), fw.ones(3, 0), INF)), 0)
    with pytest.raises(fw.ShapeError, match="same number of columns"):
        fw.cdist(fw.ones(2, 3), fw.ones(2, 4))
    with pytest.raises(fw.ShapeError, match="at least 2D"):
        fw.cdist(fw.ones(3), fw.ones(2, 3))
    with pytest.raises(fw.ArgumentError, match="non-negative p"):
        fw.cdist(fw.ones(2, 3), fw.ones(2, 3), -1.0)
    with pytest.raises(fw.ArgumentError, match="compute_mode"):
        fw.cdist(fw.ones(2, 3), fw.ones(2, 3), compute_mode="fast")
    with pytest.raises(fw.DTypeError, match="floating"):
        fw.cdist(fw.ones(2, 3, dtype=fw.int64), fw.ones(2, 3))
    with pytest.raises(fw.ShapeError, match="cdist"):
        fw.cdist(fw.ones(2, 2, 3), fw.ones(3, 2, 3))


def test_cdist_gradients():
    a, b = _rand(2, 3, 4, grad=True), _rand(2, 5, 4, seed=1, grad=True)
    for p in (1.5, 2, 3):
        assert fw.autograd.gradcheck(lambda x, y, _p=p: fw.cdist(x, y, _p), (a, b))
    assert fw.autograd.gradcheck(
        lambda x, y: fw.cdist(x, y, compute_mode="use_mm_for_euclid_dist"), (a, b))
    # a zero distance has a zero (not NaN) gradient, as in PyTorch
    x = fw.ones(1, 2, dtype=fw.float64, requires_grad=True)
    fw.cdist(x, fw.ones(1, 2, dtype=fw.float64)).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0]]


# -- logcumsumexp / cummax / cummin ---------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,dim", [((7,), 0), ((3, 9), 1), ((5, 2, 3), -3), ((4, 0), 0),
                                       ((0, 4), 1), ((2, 1), 1)])
def test_logcumsumexp_values(dtype, shape, dim):
    x = _rand(*shape, dtype=dtype) * 30
    np.testing.assert_allclose(_np(fw.logcumsumexp(x, dim)),
                               np.logaddexp.accumulate(_np(x), axis=dim), **_tol(dtype))


def test_logcumsumexp_range_and_special_values():
    x = fw.tensor([-1000.0, 0.0, 1000.0, -INF, 1000.0, NAN, 1.0])
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(_np(x.logcumsumexp(0)), np.logaddexp.accumulate(_np(x)))
    assert fw.logcumsumexp(fw.tensor([-INF, -INF]), 0).tolist() == [-INF, -INF]
    assert fw.logcumsumexp(fw.tensor(3.0), 0).item() == 3.0
    with pytest.raises(fw.DTypeError, match="logcumsumexp"):
        fw.logcumsumexp(fw.tensor([1, 2]), 0)
    with pytest.raises(fw.ArgumentError, match="logcumsumexp"):
        fw.logcumsumexp(fw.ones(2), 1)
    assert fw.autograd.gradcheck(lambda t: fw.logcumsumexp(t, 1), (_rand(3, 6, grad=True),))


def _cum_ref(a, axis, is_max):
    """PyTorch's loop: a NaN always takes over; ties take the latest index."""
    a = np.moveaxis(a, axis, -1)
    vals, idx = np.empty_like(a), np.zeros(a.shape, np.int64)
    for pos in np.ndindex(a.shape[:-1]):
        best, bi = None, 0
        for j, v in enumerate(a[pos]):
            isnan = isinstance(v, float | np.floating) and np.isnan(v)
            better = best is None or (v >= best if is_max else v <= best)
            bnan = best is not None and isinstance(best, float | np.floating) and np.isnan(best)
            if isnan or (not bnan and better):
                best, bi = v, j
            vals[pos + (j,)], idx[pos + (j,)] = best, bi
    return np.moveaxis(vals, -1, axis), np.moveaxis(idx, -1, axis)


@pytest.mark.parametrize("dtype", FLOATS + [fw.int64, fw.int32, fw.bool])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cummax_cummin_values(dtype, dim):
    a = np.random.default_rng(3).integers(0, 3, (5, 9)).astype(np.float64)
    x = fw.tensor(a).to(dtype)
    for fn, is_max in ((fw.cummax, True), (fw.cummin, False)):
        out = fn(x, dim)
        v, i = _cum_ref(_np(x), dim, is_max)
        assert out.values.dtype is dtype and out.indices.dtype is fw.int64
        np.testing.assert_array_equal(_np(out.values), v)
        np.testing.assert_array_equal(_np(out.indices), i)
        vals, idx = out  # a tuple too
        assert vals is out.values and idx is out.indices


def test_cummax_ties_nan_and_edges():
    assert fw.cummax(fw.tensor([1.0, 1.0]), 0).indices.tolist() == [0, 1]
    x = fw.tensor([1.0, NAN, 5.0, NAN, 0.0])
    v, i = fw.cummax(x, 0)
    np.testing.assert_array_equal(_np(v), [1.0, NAN, NAN, NAN, NAN])
    assert i.tolist() == [0, 1, 1, 3, 3]
    assert fw.cummin(x, 0).indices.tolist() == [0, 1, 1, 3, 3]
    v, i = fw.cummin(fw.tensor(2.0), 0)
    assert v.item() == 2.0 and i.item() == 0 and i.ndim == 0
    assert fw.cummax(fw.ones(0, 3), 0).values.shape == (0, 3)
    assert fw.tensor([3, 1, 4]).cummax(0).values.tolist() == [3, 3, 4]
    with pytest.raises(fw.ArgumentError, match="cummin"):
        fw.cummin(fw.ones(2), 1)


def test_cummax_gradient():
    x = fw.tensor([[1.0, 3.0, 2.0, 3.0, 0.5]], dtype=fw.float64, requires_grad=True)
    fw.cummax(x, 1).values.sum().backward()
    assert x.grad.tolist() == [[1.0, 2.0, 0.0, 2.0, 0.0]]  # ties go to the latest index
    assert fw.autograd.gradcheck(lambda t: fw.cummin(t, 0).values, (_rand(6, 3, grad=True),))


# -- fw.compile (fullgraph) ------------------------------------------------------------------
_SRC = _rand(4, 2, seed=9, dtype=fw.float32)
COMPILE_CASES = {
    "hypot": lambda x, y: fw.hypot(x, y),
    "logaddexp": lambda x, y: fw.logaddexp(x, y) + fw.logaddexp2(y, x),
    "diff": lambda x, y: fw.diff(x, 2, 1, prepend=y),
    "cross": lambda x, y: fw.cross(x[:, :3], x[:, 1:4] * y, dim=1),
    "rot90": lambda x, y: fw.rot90(x, 3, (1, 0)),
    "diagonal": lambda x, y: fw.diagonal(x, 1) + fw.trace(x),
    "diag_embed": lambda x, y: fw.diag_embed(y, -1, 0, 2),
    "diag": lambda x, y: fw.diag(y[:, 0], 1),
    "tril_indices": lambda x, y: x[tuple(fw.tril_indices(4, 5, 1))],
    "repeat_interleave": lambda x, y: fw.repeat_interleave(x, 2, dim=0),
    "repeat_interleave_tensor": lambda x, y: fw.repeat_interleave(
        x, fw.tensor([1, 0, 3, 1]), dim=0, output_size=5),
    "take": lambda x, y: fw.take(x, fw.tensor([[0, -1], [7, 3]])),
    "index_copy": lambda x, y: fw.index_copy(x, 1, fw.tensor([4, 0]), _SRC),
    "index_fill": lambda x, y: fw.index_fill(x, 1, fw.tensor([-1, 2]), -3.0),
    "cdist": lambda x, y: fw.cdist(x, y.expand(4, 5) + 1.0) + fw.cdist(x, x, 1.0).sum(),
    "logcumsumexp": lambda x, y: fw.logcumsumexp(x * 10, 1),
    "cummax": lambda x, y: fw.cummax(x, 1).values + fw.cummin(x, 0).indices,
}


@pytest.mark.parametrize("name", sorted(COMPILE_CASES))
def test_compile_fullgraph_matches_eager(name, monkeypatch):
    check_compile_fullgraph(COMPILE_CASES[name], monkeypatch)


def test_compile_backward_through_composites(monkeypatch):
    def step(x):
        loss = (fw.logcumsumexp(x, 1) + fw.cummax(x, 1).values).sum() + fw.hypot(x, x).sum()
        loss.backward()
        return loss

    check_compiled_backward(step, monkeypatch)


def test_tensor_repeats_without_output_size_is_a_graph_break():
    fn = fw.compile(lambda x: fw.repeat_interleave(x, fw.tensor([1, 2]), dim=0),
                    fullgraph=True, mode="always")
    with pytest.raises(fw.GraphBreak):
        fn(fw.ones(2, 3))


# -- ONNX -----------------------------------------------------------------------------------
ONNX_CASES = ["hypot", "logaddexp", "diff", "cross", "rot90", "diagonal", "diag_embed",
              "repeat_interleave", "repeat_interleave_tensor", "take", "index_copy",
              "index_fill", "cdist", "logcumsumexp", "cummax"]


@pytest.mark.parametrize("name", ONNX_CASES)
def test_onnx_export_verify(name):
    check_onnx_export(COMPILE_CASES[name])
