"""A compiled function that draws from Python's ``random`` or NumPy's global ``np.random``
while captured must not bake the draw into the graph (compiler/host_random.py)."""

import random
import warnings

import numpy as np
import pytest

import framework as fw


def _depth_fn(x):
    y = x
    for _ in range(random.randint(1, 4)):
        y = y * 2
    return y


def test_python_random_in_the_function_falls_back_to_eager_with_a_warning():
    cf = fw.compile(_depth_fn, mode="always")
    x = fw.ones(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for s in range(6):
            random.seed(s)
            got = cf(x)
            random.seed(s)
            np.testing.assert_array_equal(got.numpy(), _depth_fn(x).numpy())
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1 and "Python's `random` module" in msgs[0], msgs
    assert "running eagerly" in msgs[0]
    st = cf.stats()
    assert st["captures"] == 0 and st["eager_calls"] == 6


def test_capture_leaves_the_python_random_stream_as_eager_would():
    cf = fw.compile(_depth_fn, mode="always")
    random.seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cf(fw.ones(2))
    after_compiled = random.random()
    random.seed(3)
    _depth_fn(fw.ones(2))
    assert random.random() == after_compiled


def test_numpy_global_random_is_detected_and_fullgraph_raises():
    def f(x):
        return x * float(np.random.rand())
    with pytest.warns(UserWarning, match="np.random"):
        fw.compile(f, mode="always")(fw.ones(2))
    with pytest.raises(fw.GraphBreak, match="random"):
        fw.compile(_depth_fn, mode="always", fullgraph=True)(fw.ones(2))


def test_random_outside_the_function_is_fine():
    cf = fw.compile(lambda x, n: x * n, mode="always")
    for _ in range(3):
        n = random.randint(1, 2)
        assert cf(fw.ones(2), n).tolist() == [float(n)] * 2
    assert cf.stats()["eager_reason"] is None
