"""scatter_reduce / index_reduce (CPU): values against a NumPy reference loop for every
reduce x include_self x dtype, PyTorch's edge cases (NaN, integer mean, empty index,
0-d), errors, gradients (gradcheck in float64, tie splitting, zeros in prod), in-place
forms, fw.compile with fullgraph=True and ONNX export verified in onnxruntime."""

import math

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, DTypeError, FwIndexError, FwTypeError, ShapeError
from tests.opinfo_scatter_reduce import index_reduce_ref, scatter_reduce_ref

REDUCES = ("sum", "prod", "mean", "amax", "amin")
INDEX_REDUCES = ("prod", "mean", "amax", "amin")
DTYPES = (fw.float32, fw.float64, fw.int64)
NAN = math.nan


def _data(dt, shape, seed, low=-4, high=5):
    g = np.random.default_rng(seed)
    if dt.is_floating_point:
        return g.uniform(-2, 2, shape).astype(dt.np)
    return g.integers(low, high, shape).astype(dt.np)


def _case(dt, seed=0):
    """input (4, 5), src (7, 6), index (6, 5) along dim 0 with many repeats."""
    g = np.random.default_rng(seed + 100)
    return _data(dt, (4, 5), seed), g.integers(0, 4, (6, 5)), _data(dt, (7, 6), seed + 1)


def _check(got, want, dt):
    assert got.dtype is dt
    if dt.is_floating_point:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5 if dt is fw.float32 else 1e-12,
                                   atol=1e-6, equal_nan=True)
    else:
        np.testing.assert_array_equal(got.numpy(), want)


# -- values ------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", REDUCES)
def test_values_match_reference_loop(reduce, include_self, dt):
    x, idx, src = _case(dt)
    for dim in (0, -2):
        got = fw.scatter_reduce(fw.tensor(x), dim, fw.tensor(idx), fw.tensor(src), reduce,
                                include_self=include_self)
        _check(got, scatter_reduce_ref(x, dim, idx, src, reduce, include_self), dt)
    # along the last dim, as a method
    xt, it, st = x.T.copy(), idx.T.copy(), src.T.copy()
    got = fw.tensor(xt).scatter_reduce(-1, fw.tensor(it), fw.tensor(st), reduce,
                                       include_self=include_self)
    _check(got, scatter_reduce_ref(xt, 1, it, st, reduce, include_self), dt)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", INDEX_REDUCES)
def test_index_reduce_matches_reference_loop(reduce, include_self, dt):
    x = _data(dt, (4, 3, 5), 3)
    idx = np.array([1, 3, 1, 1, 0, 3], np.int64)
    for dim in (1, -1):
        d = dim % 3
        shape = list(x.shape)
        shape[d] = idx.size
        idx_d = idx % x.shape[d]
        source = _data(dt, tuple(shape), 4)
        got = fw.tensor(x).index_reduce(dim, fw.tensor(idx_d), fw.tensor(source), reduce,
                                        include_self=include_self)
        _check(got, index_reduce_ref(x, dim, idx_d, source, reduce, include_self), dt)


def test_unwritten_positions_keep_the_input_and_examples():
    x = fw.tensor([1.0, 2.0, 3.0, 4.0])
    i = fw.tensor([0, 1, 0, 1, 2, 1])
    s = fw.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    want = {("sum", True): [5, 14, 8, 4], ("sum", False): [4, 12, 5, 4],
            ("prod", True): [3, 96, 15, 4], ("prod", False): [3, 48, 5, 4],
            ("mean", True): [5 / 3, 3.5, 4, 4], ("mean", False): [2, 4, 5, 4],
            ("amax", True): [3, 6, 5, 4], ("amax", False): [3, 6, 5, 4],
            ("amin", True): [1, 2, 3, 4], ("amin", False): [1, 2, 5, 4]}
    for (red, inc), w in want.items():
        np.testing.assert_allclose(x.scatter_reduce(0, i, s, red, include_self=inc).numpy(),
                                   w, rtol=1e-6)


def test_integer_mean_floors_like_pytorch():
    x = fw.tensor([0, 7, -1, 5])
    i = fw.tensor([0, 0, 1, 1, 2])
    s = fw.tensor([-3, -4, 2, -1, -6])
    # (0-3-4)/3 = -2.33 -> -3; (7+2-1)/3 = 2.67 -> 2; (-1-6)/2 = -3.5 -> -4; 5 untouched
    assert x.scatter_reduce(0, i, s, "mean").tolist() == [-3, 2, -4, 5]
    # without self: -7/2 -> -4; 1/2 -> 0; -6 -> -6
    assert x.scatter_reduce(0, i, s, "mean", include_self=False).tolist() == [-4, 0, -6, 5]


def test_nan_propagates_through_amax_and_amin():
    x = fw.tensor([NAN, 1.0, 2.0, NAN])
    i = fw.tensor([0, 1, 1, 2, 3])
    s = fw.tensor([5.0, NAN, 3.0, -1.0, 0.0])
    for red in ("amax", "amin"):
        got = x.scatter_reduce(0, i, s, red).numpy()
        assert np.isnan(got[[0, 1, 3]]).all() and got[2] == (2.0 if red == "amax" else -1.0)
        got = x.scatter_reduce(0, i, s, red, include_self=False).numpy()
        # the input's NaN at a written position takes no part without include_self
        assert got[0] == 5.0 and np.isnan(got[1]) and got[2] == -1.0 and got[3] == 0.0


def test_empty_index_zero_d_and_larger_src():
    x = fw.tensor([[1.0, 2.0], [3.0, 4.0]])
    empty = fw.scatter_reduce(x, 0, fw.zeros(0, 2, dtype=fw.int64), fw.zeros(0, 2), "prod")
    assert empty.tolist() == x.tolist() and empty._data is not x._data
    # an empty index skips the shape rule, as in PyTorch
    assert fw.scatter_reduce(x, 1, fw.zeros(0, dtype=fw.int64), fw.ones(5), "sum").tolist() \
        == x.tolist()
    z = fw.tensor(2.0)
    assert fw.scatter_reduce(z, 0, fw.tensor([0, 0]), fw.tensor([3.0, 4.0]), "prod").item() \
        == 24.0
    assert fw.scatter_reduce(z, -1, fw.tensor(0), fw.tensor(5.0), "amin",
                             include_self=False).item() == 5.0
    big = fw.arange(12.0).reshape(3, 4)
    got = fw.scatter_reduce(x, 0, fw.tensor([[1], [1]]), big, "sum")
    assert got.tolist() == [[1.0, 2.0], [3.0 + 0.0 + 4.0, 4.0]]


def test_bool_and_half_dtypes():
    b = fw.tensor([False, True, False])
    i = fw.tensor([0, 0, 2])
    s = fw.tensor([True, False, False])
    assert b.scatter_reduce(0, i, s, "sum").tolist() == [True, True, False]
    assert b.scatter_reduce(0, i, s, "amin", include_self=False).tolist() == [False, True, False]
    with pytest.raises(DTypeError, match="scatter_reduce.*mean.*bool"):
        b.scatter_reduce(0, i, s, "mean")
    for dt in (fw.float16, fw.bfloat16):
        h = fw.tensor([1.0, 2.0, 3.0], dtype=dt)
        got = h.scatter_reduce(0, i, fw.tensor([0.5, 0.25, 2.0], dtype=dt), "mean")
        first = float(np.float32(1.75 / 3).astype(dt.np))
        assert got.dtype is dt and got.float().tolist() == [first, 2.0, 2.5]


# -- in place ----------------------------------------------------------------------------
def test_in_place_forms_write_into_the_tensor():
    x = fw.tensor([1.0, 2.0, 3.0])
    buf, v = x._data, x._storage.version
    out = x.scatter_reduce_(0, fw.tensor([2, 2]), fw.tensor([5.0, 7.0]), "amax",
                            include_self=False)
    assert out is x and x._data is buf and x._storage.version > v and x.tolist() == [1.0, 2.0, 7.0]
    y = fw.ones(2, 3)
    assert y.index_reduce_(1, fw.tensor([0, 0]), fw.full((2, 2), 3.0), "prod") is y
    assert y.tolist() == [[9.0, 1.0, 1.0]] * 2
    leaf = fw.ones(3, requires_grad=True)
    with pytest.raises(Exception, match="leaf"):
        leaf.scatter_reduce_(0, fw.tensor([0]), fw.ones(1), "sum")


# -- errors ------------------------------------------------------------------------------
def test_errors_name_the_op_and_the_argument():
    x, s = fw.zeros(3, 4), fw.ones(3, 4)
    i = fw.zeros(3, 4, dtype=fw.int64)
    with pytest.raises(ArgumentError, match="scatter_reduce: reduce must be one of.*'max'"):
        fw.scatter_reduce(x, 0, i, s, "max")
    with pytest.raises(DTypeError, match="scatter_reduce.*float32 and float64"):
        fw.scatter_reduce(x, 0, i, s.double(), "sum")
    with pytest.raises(DTypeError, match="scatter_reduce: index.*float32"):
        fw.scatter_reduce(x, 0, i.float(), s, "sum")
    with pytest.raises(FwTypeError, match="scatter_reduce: expected src to be a Tensor"):
        fw.scatter_reduce(x, 0, i, 1.0, "sum")
    with pytest.raises(ArgumentError, match="scatter_reduce: dimension out of range"):
        fw.scatter_reduce(x, 2, i, s, "sum")
    with pytest.raises(ShapeError, match="scatter_reduce.*same number of dimensions as input"):
        fw.scatter_reduce(x, 0, i[0], s, "sum")
    with pytest.raises(ShapeError, match="scatter_reduce.*same number of dimensions as src"):
        fw.scatter_reduce(x, 0, i, s[0], "sum")
    with pytest.raises(ShapeError, match=r"scatter_reduce: expected index \[3, 5\]"):
        fw.scatter_reduce(x, 0, fw.zeros(3, 5, dtype=fw.int64), fw.ones(3, 5), "sum")
    with pytest.raises(ShapeError, match=r"no larger than src \[2, 4\]"):
        fw.scatter_reduce(x, 1, i, fw.ones(2, 4), "sum")
    with pytest.raises(FwIndexError, match="scatter_reduce: index 3 is out of bounds for "
                                           "dimension 0 with size 3"):
        fw.scatter_reduce(x, 0, i + 3, s, "amax")
    with pytest.raises(FwIndexError, match="scatter_reduce: index -1 is out of bounds"):
        fw.scatter_reduce(x, 1, i - 1, s, "amax")
    with pytest.raises(FwTypeError, match="include_self must be a bool"):
        fw.scatter_reduce(x, 0, i, s, "sum", include_self="yes")


def test_index_reduce_errors():
    x = fw.zeros(3, 4)
    with pytest.raises(ArgumentError, match="index_reduce: reduce must be one of prod, mean, "
                                            "amax, amin, got 'sum'"):
        x.index_reduce(0, fw.tensor([0]), fw.ones(1, 4), "sum")
    with pytest.raises(FwIndexError, match="index_reduce: index is supposed to be a vector"):
        x.index_reduce(0, fw.tensor([[0]]), fw.ones(1, 4), "prod")
    with pytest.raises(DTypeError, match="index_reduce: index must be an integer"):
        x.index_reduce(0, fw.tensor([0.0]), fw.ones(1, 4), "prod")
    with pytest.raises(DTypeError, match="index_reduce.*float32 and int64"):
        x.index_reduce(0, fw.tensor([0]), fw.ones(1, 4, dtype=fw.int64), "prod")
    with pytest.raises(ShapeError, match=r"index_reduce: number of indices \(2\) should be "
                                         r"equal to source.size\(dim\) \(1\)"):
        x.index_reduce(0, fw.tensor([0, 1]), fw.ones(1, 4), "prod")
    with pytest.raises(ShapeError, match="index_reduce: source shape must match input shape"):
        x.index_reduce(0, fw.tensor([0]), fw.ones(1, 3), "prod")
    with pytest.raises(ShapeError, match="index_reduce: source must have the same number"):
        x.index_reduce(0, fw.tensor([0]), fw.ones(1, 4, 1), "prod")
    with pytest.raises(FwIndexError, match="index_reduce: index 3 is out of bounds"):
        x.index_reduce(0, fw.tensor([3]), fw.ones(1, 4), "amax")


# -- gradients ---------------------------------------------------------------------------
def _leaves(seed, zeros=False):
    g = np.random.default_rng(seed)
    x = g.uniform(0.5, 2.0, (3, 4)) * g.choice([-1, 1], (3, 4))
    src = g.uniform(0.5, 2.0, (5, 4)) * g.choice([-1, 1], (5, 4))
    if zeros:
        x[0, 1] = 0.0
        src[[0, 1, 3], [2, 2, 0]] = 0.0
    return (fw.tensor(x, dtype=fw.float64, requires_grad=True),
            fw.tensor(src, dtype=fw.float64, requires_grad=True))


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", REDUCES)
def test_gradcheck(reduce, include_self):
    x, src = _leaves(1, zeros=reduce == "prod")
    idx = fw.tensor(np.random.default_rng(2).integers(0, 3, (4, 3)))  # smaller than src

    def f(a, b):
        return fw.scatter_reduce(a, 0, idx, b, reduce, include_self=include_self)
    assert fw.autograd.gradcheck(f, (x, src))
    if reduce != "prod":  # (prod: second order is not exact with zeros; checked below)
        assert fw.autograd.gradgradcheck(f, (x, src))


def test_prod_gradients_with_zeros_and_second_order():
    x = fw.tensor([[0.0, 2.0, 3.0]], dtype=fw.float64, requires_grad=True)
    s = fw.tensor([[0.0, 0.0, 1.5], [2.0, 0.0, 4.0]], dtype=fw.float64, requires_grad=True)
    i = fw.zeros(2, 3, dtype=fw.int64)
    for inc in (True, False):
        def f(a, b, inc=inc):
            return fw.scatter_reduce(a, 0, i, b, "prod", include_self=inc)
        assert fw.autograd.gradcheck(f, (x, s))
    x2, s2 = _leaves(5)
    i2 = fw.tensor(np.random.default_rng(6).integers(0, 3, (5, 4)))
    assert fw.autograd.gradgradcheck(lambda a, b: fw.scatter_reduce(a, 0, i2, b, "prod"),
                                     (x2, s2))


@pytest.mark.parametrize("reduce", INDEX_REDUCES)
def test_index_reduce_gradcheck(reduce):
    x, _ = _leaves(7)
    src = fw.tensor(np.random.default_rng(8).uniform(0.5, 2.0, (3, 5)), dtype=fw.float64,
                    requires_grad=True)
    idx = fw.tensor([3, 0, 3, 1, 3])
    for inc in (True, False):
        assert fw.autograd.gradcheck(
            lambda a, b, inc=inc: fw.index_reduce(a, 1, idx, b, reduce, include_self=inc),
            (x, src))


def test_amax_gradient_is_split_among_ties():
    x = fw.tensor([1.0, 0.0], requires_grad=True)
    s = fw.tensor([1.0, 1.0, 0.5], requires_grad=True)
    fw.scatter_reduce(x, 0, fw.tensor([0, 0, 0]), s, "amax").sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1 / 3, 1.0])
    np.testing.assert_allclose(s.grad.numpy(), [1 / 3, 1 / 3, 0.0])


def test_excluded_self_takes_no_share_of_the_gradient():
    """include_self=False: an input value equal to the result was not reduced, so src
    keeps the whole gradient (PyTorch gives it half here; see the module docstring)."""
    x = fw.tensor([3.0, 5.0], requires_grad=True)
    s = fw.tensor([3.0, 1.0], requires_grad=True)
    out = fw.scatter_reduce(x, 0, fw.tensor([0, 0]), s, "amax", include_self=False)
    out.sum().backward()
    assert out.tolist() == [3.0, 5.0]
    assert s.grad.tolist() == [1.0, 0.0] and x.grad.tolist() == [0.0, 1.0]


def test_sum_and_mean_gradients():
    x = fw.zeros(3, requires_grad=True)
    s = fw.ones(4, requires_grad=True)
    i = fw.tensor([0, 0, 2, 0])
    fw.scatter_reduce(x, 0, i, s, "mean", include_self=False).sum().backward()
    np.testing.assert_allclose(s.grad.numpy(), [1 / 3, 1 / 3, 1.0, 1 / 3])
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0, 0.0])
    x.grad = s.grad = None
    fw.scatter_reduce(x, 0, i, s, "sum").sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0] and s.grad.tolist() == [1.0] * 4


# -- fw.compile ---------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [fw.float32, fw.int64], ids=lambda d: d.name)
@pytest.mark.parametrize("reduce", REDUCES)
def test_compiled_fullgraph_matches_eager(reduce, dt, monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    x, idx, src = _case(dt, 9)
    i = fw.tensor(idx)
    for inc in (True, False):
        def f(a, b, inc=inc):
            return fw.scatter_reduce(a * 2, 0, i, b, reduce, include_self=inc) + 1
        cf = fw.compile(f, fullgraph=True, mode="always")
        got = cf(fw.tensor(x), fw.tensor(src))
        assert not cf.stats()["graph_breaks"]
        _check(got, f(fw.tensor(x), fw.tensor(src)).numpy(), dt)
        assert "_impl_scatter_reduce" in cf.code(fw.tensor(x), fw.tensor(src))


def test_compiled_index_reduce_in_place_and_backward(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    x, _, src = _case(fw.float32, 10)

    def inplace(a, b):
        a.index_reduce_(0, fw.tensor([2, 0, 2]), b[:3, :5], "amin", include_self=False)
        return a.sum()
    xc, xe = fw.tensor(x), fw.tensor(x)
    cf = fw.compile(inplace, fullgraph=True, mode="always")
    np.testing.assert_allclose(cf(xc, fw.tensor(src)).item(), inplace(xe, fw.tensor(src)).item(),
                               rtol=1e-6)
    np.testing.assert_array_equal(xc.numpy(), xe.numpy())

    def step(a, b):
        fw.scatter_reduce(a, 0, fw.tensor([[0, 1], [0, 1]]), b, "prod").sum().backward()
        return a.grad
    a1 = fw.tensor(x, requires_grad=True)
    a2 = fw.tensor(x, requires_grad=True)
    got = fw.compile(step, mode="always")(a1, fw.tensor(src))
    np.testing.assert_allclose(got.numpy(), step(a2, fw.tensor(src)).numpy(), rtol=1e-6)


# -- ONNX ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [fw.float32, fw.int64], ids=lambda d: d.name)
@pytest.mark.parametrize("reduce", REDUCES)
def test_onnx_export_verifies(reduce, dt):
    x, idx, src = _case(dt, 11)
    if dt.is_floating_point:
        x[1, 2], src[3, 4] = NAN, NAN
    i = fw.tensor(idx)
    for inc in (True, False):
        fw.onnx.export(lambda a, b, inc=inc: fw.scatter_reduce(a, 0, i, b, reduce,
                                                               include_self=inc),
                       (fw.tensor(x), fw.tensor(src)), verify=True)


def test_onnx_index_reduce_dynamic_and_0d():
    x = fw.tensor(_data(fw.float32, (4, 3), 12))
    s = fw.tensor(_data(fw.float32, (5, 3), 13))
    i = fw.tensor([3, 0, 3, 1, 3])
    fw.onnx.export(lambda a, b: fw.index_reduce(a, 0, i, b, "mean", include_self=False),
                   (x, s), verify=True, dynamic_axes={"a": {1: "n"}, "b": {1: "n"}})
    fw.onnx.export(lambda a, b: fw.scatter_reduce(a, 0, fw.tensor([0, 0]), b, "prod"),
                   (fw.tensor(3.0), fw.tensor([2.0, 5.0])), verify=True)
    fw.onnx.export(lambda a, b: fw.scatter_reduce(a, 0, fw.zeros(0, 3, dtype=fw.int64), b,
                                                  "amax"), (x, s), verify=True)


def test_onnx_opset_requirements():
    x, idx, src = _case(fw.float32, 14)
    i = fw.tensor(idx)
    # below opset 18 (no max/min reductions in ScatterElements) amax/amin go through the
    # exporter's loop of plain scatters (compiler/onnx_lowering/scatter_compat.py)
    for red in ("amax", "amin"):
        fw.onnx.export(lambda a, b, red=red: fw.scatter_reduce(a, 0, i, b, red),
                       (fw.tensor(x), fw.tensor(src)), opset_version=17, verify=True)
    for red in ("sum", "prod", "mean"):
        fw.onnx.export(lambda a, b, red=red: fw.scatter_reduce(a, 0, i, b, red,
                                                               include_self=False),
                       (fw.tensor(x), fw.tensor(src)), opset_version=17, verify=True)
