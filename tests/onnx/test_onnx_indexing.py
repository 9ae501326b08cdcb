"""Indexing (x[key] and x[key] = v) exported with a dynamic leading dim: ints, negative
bounds, strided slices, None and index tensors at every position, checked in onnxruntime
at two sizes of the dynamic dim."""

import numpy as np
import pytest

import framework as fw
from framework.ops.indexing import index_put_key


# (shape, key) with tensors in the key given as numpy arrays
KEYS = [
    ((5, 4), (slice(1, -1), -3)),
    ((5, 4), (slice(None, None, 2), slice(1, None))),
    ((5, 4), (slice(-3, None), None, 1)),
    ((5, 4, 3), (Ellipsis, -1)),
    ((5, 4), (np.array(-5), 0)),
    ((5, 4), (np.array([0, 4, -1]),)),
    ((5, 4), (slice(None), np.array([[1, 3], [0, 2]]))),
    ((5, 4, 3), (np.array([1, 2]), slice(None), np.array([0, 2]))),  # not adjacent
    ((5, 4, 3), (slice(1, None), np.array([3, 0]), np.array([2, 1]))),  # adjacent
    ((5, 4, 3), (2, slice(None), np.array([1, 0]))),
    ((5, 4), (np.array([[0], [2]]), np.array([1, 3]))),  # broadcast index shapes
]


def _split(key):
    tensors = [fw.tensor(k) for k in key if isinstance(k, np.ndarray)]

    def rebuild(ts):
        it = iter(ts)
        return tuple(next(it) if isinstance(k, np.ndarray) else k for k in key)
    return tensors, rebuild


@pytest.mark.parametrize("shape,key", KEYS, ids=[str(k) for _, k in KEYS])
def test_getitem_dynamic_leading_dim(shape, key):
    tensors, rebuild = _split(key)
    x = fw.randn(*shape)
    names = ["x"] + [f"i{j}" for j in range(len(tensors))]
    fw.onnx.export(lambda x, *ts: x[rebuild(ts)], (x, *tensors), input_names=names,
                   dynamic_axes={"x": {0: "n"}}, verify=True)


SET_KEYS = [pytest.param(s, k, id=str(k)) for s, k in KEYS]


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape,key", SET_KEYS)
def test_setitem_and_accumulating_index_put(shape, key, accumulate):
    tensors, rebuild = _split(key)
    x = fw.randn(*shape)
    v = fw.randn(*x[rebuild(tensors)].shape)

    def f(x, v, *ts):
        return index_put_key(x, rebuild(ts), v, accumulate=accumulate)

    fw.onnx.export(f, (x, v, *tensors), verify=True)


def test_kv_cache_sliced_by_a_dynamic_batch(tmp_path):
    """llama's ``cache_k[:bsz, start_pos : start_pos + seqlen] = xk`` then
    ``cache_k[:bsz, : start_pos + seqlen]``, with bsz an exported dynamic dim: the slice bound
    is symbolic while the cache's own dims are static (min(bsz, 6) meets bsz)."""
    ort = pytest.importorskip("onnxruntime")
    cache = fw.zeros(6, 8, 4)

    def f(x):
        cache.zero_()
        b, t, _ = x.shape
        cache[:b, 2:2 + t] = x * 2
        return cache[:b, :2 + t].sum(1)

    path = str(tmp_path / "kv.onnx")
    with pytest.warns(UserWarning, match="in place"):
        fw.onnx.export(f, (fw.randn(2, 3, 4),), path, input_names=["x"],
                       dynamic_axes={"x": {0: "b"}})
    sess = ort.InferenceSession(path)
    for b in (2, 5):
        x = fw.randn(b, 3, 4)
        np.testing.assert_allclose(sess.run(None, {"x": x.numpy()})[0], f(x).numpy(),
                                   rtol=1e-6, atol=1e-6)
