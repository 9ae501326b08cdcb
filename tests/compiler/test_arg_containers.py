"""Dicts and lists passed to a compiled function: which value is which input (the dict's
keys are part of the signature), and the writes the function makes into them (replayed by
the compiled call, or a graph break when they cannot be)."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import GraphBreak


def test_dict_argument_key_order_and_keys_are_part_of_the_signature():
    def f(d):
        return d["a"] - d["b"]

    cf = fw.compile(f, mode="always")
    x, y = fw.ones(3), fw.zeros(3)
    np.testing.assert_array_equal(cf({"a": x, "b": y}).numpy(), [1, 1, 1])
    # same shapes, other insertion order: a graph that read inputs by position gave -1
    np.testing.assert_array_equal(cf({"b": y, "a": x}).numpy(), [1, 1, 1])
    st = cf.stats()
    assert st["captures"] == 2 and "keys of a dict argument changed (['a', 'b'] -> ['b', 'a'])" \
        in st["recompiles"][0], st
    with pytest.raises(KeyError):
        cf({"c": x, "b": y})  # the function's own error, not a reused graph


def test_write_into_a_dict_argument_is_replayed():
    def f(x, d):
        d["y"] = x * 2
        return x + 1

    cf = fw.compile(f, mode="always")
    for _ in range(3):
        d, x = {}, fw.randn(3)
        out = cf(x, d)
        np.testing.assert_allclose(out.numpy(), x.numpy() + 1)
        assert list(d) == ["y"]
        np.testing.assert_allclose(d["y"].numpy(), 2 * x.numpy())
    assert cf.stats()["captures"] == 1 and cf.stats()["cache_hits"] == 2


def test_state_kept_in_a_dict_argument_matches_eager():
    def g(x, d):
        if d:
            x = x + d["y"]
        d["y"] = x * 2
        return x + 1

    cf = fw.compile(g, mode="always")
    d_eager, d_comp = {}, {}
    for _ in range(4):
        want = g(fw.ones(3), d_eager)
        got = cf(fw.ones(3), d_comp)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        np.testing.assert_array_equal(d_comp["y"].numpy(), d_eager["y"].numpy())
    st = cf.stats()
    assert st["captures"] == 2 and st["num_recompiles"] == 1, st  # empty dict, then filled


def test_appends_to_a_list_argument_are_replayed_in_order():
    def f(x, out):
        out.append(x.sum())
        out.append(x * 3)
        return x

    cf = fw.compile(f, mode="always")
    for _ in range(2):
        out, x = [fw.zeros(())], fw.randn(4)
        cf(x, out)
        assert len(out) == 3 and float(out[0]) == 0.0
        np.testing.assert_allclose(out[1].numpy(), x.numpy().sum(), rtol=1e-6)
        np.testing.assert_allclose(out[2].numpy(), 3 * x.numpy())


def test_forward_hook_writing_into_a_cache_also_passed_as_an_argument():
    """whisper's kv cache: forward hooks hold the cache dict in a closure and the model also
    reads it as its ``kv_cache`` argument; both must see one dict during the capture."""
    fw.manual_seed(0)
    lin = nn.Linear(4, 4, bias=False)
    cache: dict = {}

    def save(module, _, output):
        cache[module] = output if module not in cache else fw.cat([cache[module], output], 1)
        return cache[module]

    handle = lin.register_forward_hook(save)

    def step(x, kv_cache):
        k = lin(x)
        return (k * kv_cache[lin][:, :1]).sum(-1) if lin in kv_cache else k.sum(-1)

    ref_cache: dict = {}
    cf = fw.compile(step, mode="always")
    with fw.no_grad():
        xs = [fw.randn(2, 1, 4) for _ in range(4)]
        got = [cf(x, cache) for x in xs]
        assert cache[lin].shape == (2, 4, 4)
        outs = []
        for x in xs:  # eager reference with the same hook on a fresh cache
            cache_now = dict(ref_cache)
            cache.clear()
            cache.update(cache_now)
            outs.append(step(x, cache))
            ref_cache = dict(cache)
    handle.remove()
    for a, b in zip(got, outs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert all(t._data is not None for t in ref_cache.values())  # no traced stand-in escaped


@pytest.mark.parametrize("body, what", [
    (lambda d, x: d.pop("a"), "deletes key 'a'"),
    (lambda d, x: d.__setitem__("n", 3), "stores a int under key 'n'"),
])
def test_writes_that_cannot_be_replayed_are_graph_breaks(body, what):
    def f(x, d):
        body(d, x)
        return x * 2

    cf = fw.compile(f, mode="always")
    d = {"a": fw.ones(2)}
    with pytest.warns(UserWarning, match=what):
        cf(fw.ones(2), d)
    assert cf.stats()["eager_reason"] is not None
    assert d["n"] == 3 if "n" in what else "a" not in d  # the eager run made the write once
    strict = fw.compile(f, mode="always", fullgraph=True)
    d = {"a": fw.ones(2)}
    with pytest.raises(GraphBreak, match=what):
        strict(fw.ones(2), d)
    assert list(d) == ["a"] and d["a"]._data is not None  # put back as it was


def test_replaced_list_item_is_a_graph_break():
    def f(x, lst):
        lst[0] = x
        return x

    cf = fw.compile(f, mode="always", fullgraph=True)
    with pytest.raises(GraphBreak, match="removes or replaces items of the list argument"):
        cf(fw.ones(2), [fw.zeros(2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lst = [fw.zeros(2)]
        out = fw.compile(lambda x, lst: x + lst[0], mode="always")(fw.ones(2), lst)
        np.testing.assert_array_equal(out.numpy(), [1, 1])  # reading is fine
