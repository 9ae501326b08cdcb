"""Namedtuples, dataclasses and classes registered with ``fw.utils._pytree`` as arguments
and outputs of ``fw.compile``: their tensors are graph inputs/outputs (a fresh object each
call reuses the graph), their structure is part of the signature, and outputs come back
as the same types. Every compiled result is checked against eager on every call."""

import warnings
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np
import pytest

import framework as fw
from compiler.pytree_nodes import flatten
from framework import nn
from framework.errors import GraphBreak
from framework.nn.attention.flex_attention import (BlockMask, and_masks, create_block_mask,
                                                   flex_attention)
from framework.utils import _pytree as pt

P = namedtuple("P", ["a", "b"])
Q = namedtuple("Q", ["b", "a"])  # same arity, fields the other way round


@dataclass
class Batch:
    x: object
    y: object
    scale: int = 2
    temperature: float = 1.0


@dataclass
class Other:
    x: object
    y: object
    scale: int = 2
    temperature: float = 1.0


@dataclass(frozen=True)
class Frozen:
    x: object
    y: object


@dataclass
class Output:
    logits: object
    loss: object = None
    extras: list = field(default_factory=list)


class Pair:
    """A user class registered as a pytree node, with a context (its ``mode``)."""

    def __init__(self, first, second, mode="add"):
        self.first, self.second, self.mode = first, second, mode


pt.register_pytree_node(Pair, lambda p: ([p.first, p.second], p.mode),
                        lambda children, mode: Pair(*children, mode=mode),
                        serialized_type_name="tests.compiler.Pair")


def _close(got, want):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def _same_tree(got, want):
    """Same structure (dataclasses taken apart, as fw.compile does) and values."""
    g_items, w_items = list(flatten(got)), list(flatten(want))
    assert [p for p, _ in g_items] == [p for p, _ in w_items]
    for (_, g), (_, w) in zip(g_items, w_items):
        if isinstance(w, fw.Tensor):
            _close(g, w)
        else:
            assert g == w


# ---------------------------------------------------------------------------------------
# no stale results: each of these reused the first call's graph (or returned data-less
# stand-ins) before containers other than tuple/list/dict were taken apart
def test_namedtuple_class_is_part_of_the_signature():
    def f(p):
        return p.a * 10 + p.b

    cf = fw.compile(f, mode="always")
    t1, t2 = fw.full((3,), 1.0), fw.full((3,), 2.0)
    for make in (P, Q, P, Q):
        _close(cf(make(t1, t2)), f(make(t1, t2)))
    st = cf.stats()
    assert st["captures"] == 2, st
    assert st["recompiles"] == ["structure of an argument changed (P of 2 -> Q of 2)"]


def test_keyword_names_and_nesting_are_part_of_the_signature():
    def f(x, b=None, c=None):
        return x + b if b is not None else x - c

    cf = fw.compile(f, mode="always")
    x, y = fw.ones(3), fw.full((3,), 5.0)
    _close(cf(x, b=y), f(x, b=y))
    _close(cf(x, c=y), f(x, c=y))          # was served by the b= graph: 6 instead of -4
    assert cf.stats()["recompiles"] == ["keyword arguments changed (['b'] -> ['c'])"]

    def g(a, b):
        return a[0] * 10 + b[0] if isinstance(a, tuple) else a * 10 + b[1]

    cg = fw.compile(g, mode="always")
    _close(cg((x, y), (y,)), g((x, y), (y,)))
    _close(cg((x,), (y, x)), g((x,), (y, x)))  # same three leaves, another nesting
    assert cg.stats()["recompiles"] == ["structure of an argument changed (tuple of 2 -> "
                                        "tuple of 1)"]


def test_dataclass_output_holds_this_calls_values():
    cf = fw.compile(lambda x: Output(x * 2, (x * x).sum(), [x + 1]), mode="always")
    for _ in range(3):
        x = fw.randn(4)
        out = cf(x)
        assert type(out) is Output and isinstance(out.extras, list)
        _close(out.logits, x * 2)
        _close(out.loss, (x * x).sum())
        _close(out.extras[0], x + 1)
    assert cf.stats()["captures"] == 1 and cf.stats()["cache_hits"] == 2


# ---------------------------------------------------------------------------------------
# dataclass arguments
def test_dataclass_argument_rebuilt_each_call_reuses_the_graph():
    def step(batch):
        return (batch.x * batch.scale + batch.y / batch.temperature).sum(-1)

    cf = fw.compile(step, mode="always")
    for i in range(4):  # new object, new tensors, new float each call
        b = Batch(fw.randn(2, 3), fw.randn(2, 3), temperature=1.0 + i)
        _close(cf(b), step(b))
    st = cf.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0, st
    assert "def graph(batch_x, batch_y" in str(cf.graph(b))  # the fields are graph inputs


def test_dataclass_structure_changes_recompile_with_a_reason():
    def step(batch):
        return batch.x * batch.scale + (0 if batch.y is None else batch.y)

    cf = fw.compile(step, mode="always")
    x, y = fw.randn(3), fw.randn(3)
    for b in (Batch(x, y), Batch(x, y, scale=3), Batch(x, None, scale=3), Other(x, y)):
        _close(cf(b), step(b))
    assert cf.stats()["recompiles"] == [
        "value of argument batch_scale changed (2 -> 3) -> dynamic",  # a symbolic int now
        "value of argument batch_y changed (a tensor -> None)",
        "structure of an argument changed (a Batch -> a Other)"]


def test_frozen_dataclass_and_the_same_object_mutated_between_calls():
    def f(p):
        return p.x - p.y

    cf = fw.compile(f, mode="always")
    for _ in range(3):  # hashing a frozen dataclass compared its tensors: an error before
        p = Frozen(fw.randn(3), fw.randn(3))
        _close(cf(p), f(p))
    b = Batch(fw.randn(3), fw.randn(3))
    cb = fw.compile(lambda b: b.x + b.y, mode="always")
    for _ in range(3):  # one object whose field is rebound outside: no recompile
        b.x = fw.randn(3)
        _close(cb(b), b.x + b.y)
    assert cf.stats()["captures"] == 1 and cb.stats()["captures"] == 1


def test_dataclass_argument_in_a_training_step():
    fw.manual_seed(0)
    model = nn.Linear(4, 2)
    ref = nn.Linear(4, 2)
    ref.load_state_dict(model.state_dict())
    opt, ref_opt = (fw.optim.SGD(m.parameters(), lr=0.1) for m in (model, ref))

    def make_step(m, o):
        def step(batch):
            loss = nn.functional.mse_loss(m(batch.x), batch.y)
            o.zero_grad()
            loss.backward()
            o.step()
            return Output(loss.detach(), extras=[m.weight.sum().detach()])
        return step

    compiled, eager = fw.compile(make_step(model, opt)), make_step(ref, ref_opt)
    for _ in range(5):
        b = Batch(fw.randn(8, 4), fw.randn(8, 2))
        got, want = compiled(b), eager(b)
        _same_tree(got, want)
    _close(model.weight.detach(), ref.weight.detach())
    assert compiled.stats()["captures"] == 1


def test_function_that_changes_a_dataclass_argument_runs_eagerly():
    def f(b):
        b.x = b.x * 2  # eager mode changes the caller's object; a compiled call could not
        return b.x

    with pytest.raises(GraphBreak, match="sets attribute 'x' of the Batch argument 'b'"):
        fw.compile(f, fullgraph=True)(Batch(fw.ones(2), fw.ones(2)))
    cf = fw.compile(f)
    b = Batch(fw.ones(2), fw.ones(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _close(cf(b), fw.full((2,), 2.0))
    assert b.x.tolist() == [2.0, 2.0] and "running eagerly" in str(caught[0].message)

    def g(out):
        out.extras.append(out.logits + 1)  # a list inside a dataclass argument
        return out.logits

    with pytest.raises(GraphBreak, match="writes into a container inside the argument "
                                         "'out_extras'"):
        fw.compile(g, fullgraph=True)(Output(fw.ones(2)))


def test_tensor_attribute_outside_the_fields_is_not_baked():
    @dataclass
    class WithMask:
        x: object

        def __post_init__(self):
            self.mask = self.x > 0  # not a field: a trace would bake this call's tensor

    f = fw.compile(lambda w: w.x * w.mask, fullgraph=True)
    with pytest.raises(GraphBreak, match="tensor attribute 'mask' of a WithMask argument"):
        f(WithMask(fw.randn(3)))


def test_output_object_that_is_not_a_node_is_refused():
    class Box:
        def __init__(self, t):
            self.t = t

    with pytest.raises(GraphBreak, match=r"holds a tensor in Box \('t'\)"):
        fw.compile(lambda x: Box(x * 2), fullgraph=True)(fw.ones(2))


# ---------------------------------------------------------------------------------------
# outputs
def test_namedtuple_and_nested_outputs_keep_their_types():
    def f(x):
        return {"p": P(x + 1, [x * 2, Frozen(x, x - 1)]), "n": 3}

    cf = fw.compile(f, mode="always")
    for _ in range(3):
        x = fw.randn(3)
        got = cf(x)
        assert type(got["p"]) is P and type(got["p"].b[1]) is Frozen and got["n"] == 3
        _same_tree(got, f(x))


def test_compiled_forward_returning_a_dataclass_gets_a_compiled_backward():
    lin = nn.Linear(4, 3)
    fwd = fw.compile(lambda x: Output(lin(x), lin(x).square().mean()), mode="always")
    for _ in range(3):
        x = fw.randn(5, 4)
        lin.zero_grad()
        out = fwd(x)
        out.loss.backward()
        got = lin.weight.grad.numpy().copy()
        lin.zero_grad()
        lin(x).square().mean().backward()
        np.testing.assert_allclose(got, lin.weight.grad.numpy(), rtol=1e-5)
    assert fwd.stats()["captures"] == 1 and fwd.stats()["eager_calls"] == 0


# ---------------------------------------------------------------------------------------
# classes registered with fw.utils._pytree.register_pytree_node
def test_registered_class_argument_and_output():
    def f(p):
        s = p.first + p.second if p.mode == "add" else p.first * p.second
        return Pair(s, s.sum(), mode=p.mode)

    cf = fw.compile(f, mode="always")
    for mode in ("add", "add", "mul", "add"):
        p = Pair(fw.randn(3), fw.randn(3), mode)
        got, want = cf(p), f(p)
        assert type(got) is Pair and got.mode == mode
        _close(got.first, want.first)
        _close(got.second, want.second)
    st = cf.stats()
    assert st["captures"] == 2 and st["entries"] == 2, st
    assert st["recompiles"] == ["pytree context of a Pair argument changed ('add' -> 'mul')"]


def test_nested_registered_dataclass_namedtuple_list_and_dict():
    def f(p):
        inner = p.first                                  # a Batch inside a Pair
        s = sum(inner.x) + inner.y["q"].a * inner.y["q"].b
        return Pair(P(s * p.second, [s.sum()]), Output(s), mode="out")

    cf = fw.compile(f, mode="always")
    for _ in range(3):
        p = Pair(Batch([fw.randn(3), fw.randn(3)], {"q": P(fw.randn(3), fw.randn(3))}),
                 fw.randn(3))
        got, want = cf(p), f(p)
        assert type(got) is Pair and type(got.first) is P and type(got.second) is Output
        _same_tree(got.first, want.first)
        _close(got.second.logits, want.second.logits)
    assert cf.stats()["captures"] == 1


def test_pytree_utilities_use_the_same_registry():
    p = Pair(fw.ones(2), [fw.zeros(2)], mode="mul")
    leaves, spec = pt.tree_flatten({"p": p})
    assert len(leaves) == 2 and spec.child(0).type is Pair and spec.child(0).context == "mul"
    doubled = pt.tree_map(lambda t: t + 1, p)
    assert type(doubled) is Pair and doubled.mode == "mul"
    assert doubled.first.tolist() == [2.0, 2.0] and doubled.second[0].tolist() == [1.0, 1.0]
    bm = create_block_mask(lambda b, h, q, k: q >= k, None, None, 8, 8, BLOCK_SIZE=4)
    leaves, spec = pt.tree_flatten(bm)
    assert [tuple(t.shape) for t in pt.tree_leaves(bm)] == [(1, 1, 2, 2)] * 2
    back = pt.tree_unflatten(leaves, spec)
    assert type(back) is BlockMask and back.to_dense().tolist() == bm.to_dense().tolist()


# ---------------------------------------------------------------------------------------
# flex attention's BlockMask
def _causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def _window(b, h, q_idx, kv_idx):
    return q_idx - kv_idx <= 2


def test_fresh_block_mask_each_call_reuses_the_graph():
    def attend(q, k, v, bm):
        return flex_attention(q, k, v, block_mask=bm)

    cf = fw.compile(attend, mode="always")
    fw.manual_seed(0)
    for _ in range(3):
        q, k, v = (fw.randn(1, 2, 8, 4) for _ in range(3))
        bm = create_block_mask(_causal, None, None, 8, 8, BLOCK_SIZE=4)
        _close(cf(q, k, v, bm), attend(q, k, v, bm))
    assert cf.stats()["captures"] == 1 and cf.stats()["num_recompiles"] == 0
    # another mask function is another structure
    both = and_masks(_causal, _window)
    bm = create_block_mask(both, None, None, 8, 8, BLOCK_SIZE=4)
    _close(cf(q, k, v, bm), attend(q, k, v, bm))
    why = cf.stats()["recompiles"]
    assert len(why) == 1 and why[0].startswith("pytree context of a BlockMask argument "
                                               "changed"), why
    bm = create_block_mask(both, None, None, 8, 8, BLOCK_SIZE=4)   # same function again
    _close(cf(q, k, v, bm), attend(q, k, v, bm))
    assert cf.stats()["captures"] == 2


def test_block_mask_from_a_compiled_function_is_a_real_block_mask():
    make = fw.compile(lambda: create_block_mask(_causal, 2, None, 8, 8, BLOCK_SIZE=4),
                      mode="always")
    want = create_block_mask(_causal, 2, None, 8, 8, BLOCK_SIZE=4)
    for _ in range(2):
        got = make()
        assert type(got) is BlockMask and got.shape == want.shape
        assert got.to_dense().tolist() == want.to_dense().tolist()
        assert got.kv_indices.tolist() == want.kv_indices.tolist()
    assert make.stats()["captures"] == 1 and make.stats()["eager_calls"] == 0
