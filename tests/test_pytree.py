"""fw.utils._pytree: flatten / unflatten / map over nested containers, as torch's."""

from collections import OrderedDict, defaultdict, deque, namedtuple

import pytest

import framework as fw
from framework.errors import FwTypeError
from framework.utils import _pytree as pt

Point = namedtuple("Point", ["x", "y"])


def test_flatten_order_and_round_trip_of_every_builtin_node():
    tree = {"b": (1, [2, 3]), "a": Point(4, None), "c": OrderedDict(z=5, y=6),
            "d": defaultdict(list, {"k": 7}), "e": deque([8, 9], maxlen=3), "f": None}
    leaves, spec = pt.tree_flatten(tree)
    assert leaves == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # dict keys in insertion order, not sorted
    back = pt.tree_unflatten(leaves, spec)
    assert back == tree
    assert type(back["a"]) is Point and type(back["c"]) is OrderedDict
    assert back["d"].default_factory is list and back["e"].maxlen == 3
    assert list(back) == ["b", "a", "c", "d", "e", "f"]
    assert spec.num_leaves == 9 and pt.tree_structure(tree) == spec


def test_none_is_a_node_without_children_and_tensors_are_leaves():
    leaves, spec = pt.tree_flatten(None)
    assert leaves == [] and not spec.is_leaf() and spec.num_children == 0
    assert pt.tree_unflatten([], spec) is None
    t = fw.ones(2)
    leaves, spec = pt.tree_flatten([t, (None, t)])
    assert len(leaves) == 2 and leaves[0] is t and spec.num_nodes == 5
    assert pt.tree_leaves(t) == [t] and pt.tree_structure(t).is_leaf()


def test_treespec_repr_and_equality():
    spec = pt.tree_structure((1, [2, None], {"a": 3}))
    assert repr(spec) == ("TreeSpec(tuple, None, [*,\n  TreeSpec(list, None, [*,\n"
                          "    TreeSpec(NoneType, None, [])]),\n  TreeSpec(dict, ['a'], [*])])")
    assert repr(pt.LeafSpec()) == "*"
    assert spec == pt.tree_structure((7, [8, None], {"a": 9}))
    assert spec != pt.tree_structure((7, [8, None], {"b": 9}))
    assert spec != pt.tree_structure((7, (8, None), {"a": 9}))


def test_tree_map_with_several_trees_and_is_leaf():
    a = {"x": (1, 2), "y": [3]}
    b = {"y": [30], "x": (10, 20)}  # same keys in another order: matched by key
    assert pt.tree_map(lambda p, q: p + q, a, b) == {"x": (11, 22), "y": [33]}
    # a leaf of the first tree may be a whole subtree of the others
    assert pt.tree_map(lambda p, q: (p, q), [1, 2], [[5, 6], 7]) == [(1, [5, 6]), (2, 7)]
    with pytest.raises(fw.ArgumentError, match="mismatch"):
        pt.tree_map(lambda p, q: p, [1, 2], [1, 2, 3])
    with pytest.raises(fw.ArgumentError, match="keys"):
        pt.tree_map(lambda p, q: p, {"a": 1}, {"b": 1})
    pairs = pt.tree_map(lambda p: len(p), [(1, 2), (3,)], is_leaf=lambda n: isinstance(n, tuple))
    assert pairs == [2, 1]


def test_tree_map_only_and_predicates():
    t = fw.ones(2)
    out = pt.tree_map_only(fw.Tensor, lambda x: x.shape, {"t": t, "n": 3, "s": "a"})
    assert out == {"t": t.shape, "n": 3, "s": "a"}
    assert pt.tree_map_only((int, float), lambda x: -x, [1, 2.5, "a"]) == [-1, -2.5, "a"]
    assert pt.tree_all(lambda x: x > 0, [1, (2, 3)]) and not pt.tree_any(lambda x: x > 5, [1])
    seen = []
    assert pt.tree_map_(seen.append, (1, [2])) == (1, [2]) and seen == [1, 2]


def test_register_pytree_node_for_a_user_class():
    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b

    pt.register_pytree_node(Pair, lambda p: ([p.a, p.b], None), lambda c, _: Pair(*c),
                            serialized_type_name="tests.Pair")
    try:
        leaves, spec = pt.tree_flatten([Pair(1, (2, 3))])
        assert leaves == [1, 2, 3]
        back = pt.tree_unflatten([4, 5, 6], spec)
        assert isinstance(back[0], Pair) and back[0].a == 4 and back[0].b == (5, 6)
        with pytest.raises(fw.ArgumentError, match="already registered"):
            pt.register_pytree_node(Pair, lambda p: ([], None), lambda c, _: Pair(0, 0))
    finally:
        del pt.SUPPORTED_NODES[Pair]


def test_unflatten_errors_name_the_problem():
    _, spec = pt.tree_flatten([1, 2])
    with pytest.raises(fw.ArgumentError, match="length 3 but the spec refers to a pytree "
                                               "that holds 2 items"):
        pt.tree_unflatten([1, 2, 3], spec)
    with pytest.raises(FwTypeError, match="TreeSpec"):
        pt.tree_unflatten([1], [1])
    with pytest.raises(NotImplementedError, match="serialization"):
        pt.register_pytree_node(int, lambda x: ([], None), lambda c, _: 0,
                                to_dumpable_context=str)
