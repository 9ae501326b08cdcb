"""Non-tensor arguments of a compiled function are guarded by what the graph baked from them.

They were keyed by ``id()``, which the next call's fresh object takes over once the previous
one is freed: ``f(x, np.float32(3))`` replayed the graph built for 2, ``x[slice(0, 4)]`` the
one for ``slice(0, 2)``, and a config (``argparse.Namespace`` / ``SimpleNamespace``, whose
attribute reads the capture cannot record) rebuilt or mutated between calls kept its first
values. All returned wrong numbers silently."""

import argparse
import fractions
import types

import numpy as np
import pytest

import framework as fw


def test_numpy_scalar_argument_is_guarded_by_value():
    f = fw.compile(lambda x, s: x * s, mode="always")
    x = fw.ones(2)
    got = [f(x, np.float32(v)).numpy()[0] for v in (2.0, 3.0, 3.0, 4.0)]
    assert got == [2.0, 3.0, 3.0, 4.0]
    st = f.stats()
    assert st["captures"] == 3 and "numpy.float32" in st["recompiles"][0], st


def test_numpy_int_argument_in_a_training_step():
    fw.manual_seed(0)
    lin = fw.nn.Linear(3, 1)
    opt = fw.optim.SGD(lin.parameters(), lr=0.1)

    def step(x, scale):
        loss = (lin(x) * scale).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    f = fw.compile(step, mode="always")
    x = fw.ones(2, 3)
    w0 = lin.weight.detach().numpy().copy()
    f(x, np.int64(1))
    f(x, np.int64(3))
    # each step's gradient is 2 * scale per weight: lr * 2 * (1 + 3) in all
    np.testing.assert_allclose(lin.weight.detach().numpy(), w0 - 0.1 * 2 * 4, rtol=1e-6)


def test_numpy_int_index_argument():
    """Indices drawn with NumPy (``np.random.permutation``) select the right row each call."""
    f = fw.compile(lambda x, i: x[i] * 2, mode="always")
    x = fw.arange(5.0)
    assert [f(x, i).item() for i in np.array([3, 0, 4, 1])] == [6.0, 0.0, 8.0, 2.0]


def test_slice_argument_is_guarded_by_value():
    f = fw.compile(lambda x, s: x[s].sum(), mode="always")
    x = fw.arange(6.0)
    assert [f(x, slice(0, k)).item() for k in (2, 3, 4, 2)] == [1.0, 3.0, 6.0, 1.0]
    assert f.stats()["captures"] == 3


@pytest.mark.parametrize("make", [types.SimpleNamespace, argparse.Namespace])
def test_config_object_rebuilt_or_mutated_between_calls(make):
    f = fw.compile(lambda x, cfg: x * cfg.scale, mode="always")
    x = fw.ones(2)
    assert [f(x, make(scale=s)).numpy()[0] for s in (2.0, 3.0, 4.0, 2.0)] == [2, 3, 4, 2]
    assert f.stats()["captures"] == 3  # the same values hit the entry again
    cfg = make(scale=2.0, layers=[1, 2])  # not all plain: keyed by identity + plain values
    g = fw.compile(lambda x, cfg: x * cfg.scale, mode="always")
    got = []
    for s in (2.0, 5.0):
        cfg.scale = s
        got.append(g(x, cfg).numpy()[0])
    assert got == [2.0, 5.0]


def test_hashable_values_and_modules():
    f = fw.compile(lambda x, q: x * float(q), mode="always")
    x = fw.ones(1)
    assert [f(x, fractions.Fraction(k, 2)).item() for k in (1, 3, 1)] == [0.5, 1.5, 0.5]
    assert f.stats()["captures"] == 2
    g = fw.compile(lambda x, d: x.to(d) * 2, mode="always")
    assert [g(x, fw.device("cpu")).item() for _ in range(3)] == [2.0] * 3
    assert g.stats()["captures"] == 1  # an equal fresh device hits the entry
    lin = fw.nn.Linear(1, 1)
    h = fw.compile(lambda x, m: m(x), mode="always")
    h(x, lin)
    h(x, lin)
    assert h.stats()["captures"] == 1
