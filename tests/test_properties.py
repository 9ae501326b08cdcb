"""Hypothesis property tests against NumPy: broadcasting, reductions, indexing."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import framework as fw
from framework.errors import FwIndexError, ShapeError

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
_floats = st.floats(-100, 100, allow_nan=False, width=32)


def _arrays(shape, dtype=np.float32):
    return hnp.arrays(dtype, shape, elements=_floats if dtype == np.float32 else None)


@SETTINGS
@given(st.data(), hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                    max_side=4))
def test_broadcasting_binary_ops_match_numpy(data, shapes):
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    a = data.draw(_arrays(sa))
    c = data.draw(_arrays(sb))
    ta, tc = fw.tensor(a), fw.tensor(c)
    for fn in (np.add, np.multiply, np.maximum, np.subtract):
        got = getattr(fw, {"multiply": "mul", "subtract": "sub"}.get(fn.__name__,
                                                                     fn.__name__))(ta, tc)
        assert got.shape == out_shape
        np.testing.assert_allclose(got.numpy(), fn(a, c), rtol=1e-6)
    assert (ta < tc).tolist() == (a < c).tolist()
    np.testing.assert_allclose(fw.where(ta > 0, ta, tc).numpy(), np.where(a > 0, a, c))


@SETTINGS
@given(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
       hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
def test_broadcast_errors_agree_with_numpy(sa, sb):
    try:
        want = np.broadcast_shapes(sa, sb)
    except ValueError:
        with pytest.raises(ShapeError, match="not broadcastable"):
            fw.zeros(sa) + fw.zeros(sb)
        return
    assert (fw.zeros(sa) + fw.zeros(sb)).shape == want
    assert fw.broadcast_tensors(fw.zeros(sa), fw.zeros(sb))[0].shape == want


@st.composite
def _reduction_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    x = draw(_arrays(shape))
    dims = draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda d:
                         d % len(shape), max_size=len(shape)))
    return x, tuple(dims) if dims else None, draw(st.booleans())


@SETTINGS
@given(_reduction_case())
def test_reductions_match_numpy(case):
    x, dims, keepdim = case
    t = fw.tensor(x)
    axis = dims
    for name, ref in (("sum", np.sum), ("mean", np.mean), ("amax", np.max),
                      ("amin", np.min)):
        got = getattr(t, name)(dims, keepdim) if dims is not None else \
            getattr(t, name)(keepdim=keepdim) if name not in ("amax", "amin") else \
            getattr(t, name)(None, keepdim)
        want = ref(x.astype(np.float64), axis=axis, keepdims=keepdim)
        assert got.shape == np.shape(want), (name, dims, keepdim)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-3)
    if dims is not None and len(dims) == 1:
        d = dims[0]
        np.testing.assert_array_equal(t.argmax(d, keepdim).numpy(),
                                      np.argmax(x, axis=d, keepdims=keepdim))
        np.testing.assert_allclose(t.var(d, keepdim=keepdim, correction=0).numpy(),
                                   np.var(x.astype(np.float64), axis=d, keepdims=keepdim),
                                   rtol=1e-3, atol=1e-2)
        np.testing.assert_allclose(t.cumsum(d).numpy(), np.cumsum(x, axis=d, dtype=np.float64),
                                   rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(t.logsumexp(d, keepdim).numpy(),
                                   np.log(np.exp(x.astype(np.float64)).sum(d,
                                                                            keepdims=keepdim)),
                                   rtol=1e-4, atol=1e-6)


@st.composite
def _basic_index_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))
    idx = draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))
    return shape, idx


def _has_negative_step(idx):
    items = idx if isinstance(idx, tuple) else (idx,)
    return any(isinstance(k, slice) and k.step is not None and k.step < 0 for k in items)


@SETTINGS
@given(_basic_index_case())
def test_basic_indexing_matches_numpy(case):
    shape, idx = case
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    t = fw.tensor(x)
    if _has_negative_step(idx):  # PyTorch has no negative steps either
        with pytest.raises(FwIndexError, match="step"):
            t[idx]
        return
    got = t[idx]
    want = x[idx]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)
    # it is a view: writing through it reaches the base
    if want.size:
        got.fill_(-1.0)
        x2 = x.copy()
        x2[idx] = -1.0
        np.testing.assert_array_equal(t.numpy(), x2)


@SETTINGS
@given(st.data())
def test_setitem_with_basic_index_matches_numpy(data):
    shape, idx = data.draw(_basic_index_case())
    if _has_negative_step(idx):
        return
    x = np.zeros(shape, np.float32)
    target_shape = x[idx].shape
    v = data.draw(_arrays(target_shape))
    t = fw.tensor(x)
    t[idx] = fw.tensor(v)
    x[idx] = v
    np.testing.assert_array_equal(t.numpy(), x)


@SETTINGS
@given(st.data())
def test_integer_array_indexing_matches_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    idx = data.draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(
        min_dims=0, max_dims=2, max_side=3)))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    t = fw.tensor(x)
    key = tuple(fw.tensor(i.astype(np.int64)) for i in idx)
    np.testing.assert_array_equal(t[key].numpy(), x[idx])
    y = t.clone()
    y[key] = -1.0
    x2 = x.copy()
    x2[idx] = -1.0
    np.testing.assert_array_equal(y.numpy(), x2)


@SETTINGS
@given(st.data())
def test_boolean_mask_indexing_matches_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    x = data.draw(_arrays(shape))
    k = data.draw(st.integers(1, len(shape)))
    mask = data.draw(hnp.arrays(np.bool_, shape[:k]))
    t = fw.tensor(x)
    np.testing.assert_array_equal(t[fw.tensor(mask)].numpy(), x[mask])
    y = t.clone()
    y[fw.tensor(mask)] = 0.5
    x2 = x.copy()
    x2[mask] = 0.5
    np.testing.assert_array_equal(y.numpy(), x2)
