"""Python's and NumPy's global generators across a capture that ends in a graph break.

The eager run after a break repeats the function from the start, so the draws made before
the break must be undone, or the compiled program draws different numbers than the same
program uncompiled (a DQN's ``random.sample`` of its replay memory before a masked
assignment, found porting the PyTorch DQN tutorial)."""

import random

import numpy as np
import pytest

import framework as fw


def _fn(x):
    k = random.randrange(1000)
    j = int(np.random.randint(1000))
    y = x[x > 0]  # data-dependent shape: a graph break
    return y.sum() + k + 1000 * j


@pytest.mark.parametrize("compiled", [False, True])
def test_draws_before_a_graph_break_are_not_repeated(compiled):
    x = fw.tensor([1.0, -2.0, 3.0])
    random.seed(0)
    np.random.seed(0)
    want = [_fn(x).item() for _ in range(3)]
    f = fw.compile(_fn, mode="always")
    random.seed(0)
    np.random.seed(0)
    if compiled:
        with pytest.warns(UserWarning, match="graph break"):
            got = [f(x).item() for _ in range(3)]
        assert f.stats()["captures"] == 0
    else:
        got = [_fn(x).item() for _ in range(3)]
    assert got == want
