"""``fw.utils._pytree``: nested Python containers as (leaves, structure), as
``torch.utils._pytree``.

A pytree is a nest of registered containers (tuple, list, dict, namedtuple, OrderedDict,
defaultdict, deque, and ``None``, a node with no children) whose leaves are everything
else (tensors, numbers, strings...). ``tree_flatten`` gives the leaves in order and a
:class:`TreeSpec` that ``tree_unflatten`` turns back into the same structure; dict keys
keep their insertion order. ``register_pytree_node`` adds a container type of your own;
``fw.compile`` reads the same registry, so a registered class in a compiled function's
arguments or result is taken apart into graph inputs / outputs (flex attention's
``BlockMask`` is registered). Dataclasses stay leaves here, as in torch's ``_pytree``
(``fw.compile`` takes them apart by their fields all the same).

```python
leaves, spec = tree_flatten({"a": (1, 2), "b": [3, None]})   # [1, 2, 3], TreeSpec(dict...)
tree_unflatten([x * 10 for x in leaves], spec)               # {"a": (10, 20), "b": [30, None]}
```
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict, deque, namedtuple
from typing import Any, Callable, NamedTuple

from ..errors import ArgumentError, FwTypeError

__all__ = ["TreeSpec", "LeafSpec", "register_pytree_node", "tree_flatten", "tree_unflatten",
           "tree_leaves", "tree_structure", "tree_map", "tree_map_", "tree_map_only",
           "tree_all", "tree_any", "SUPPORTED_NODES"]


class NodeDef(NamedTuple):
    """How one container type is taken apart and put back together."""

    type: type
    flatten_fn: Callable        # obj -> (children, context)
    unflatten_fn: Callable      # (children, context) -> obj
    serialized_type_name: str | None


SUPPORTED_NODES: dict = {}


def register_pytree_node(cls, flatten_fn, unflatten_fn, *, serialized_type_name=None,
                         to_dumpable_context=None, from_dumpable_context=None,
                         flatten_with_keys_fn=None) -> None:
    """Make ``cls`` a container: ``flatten_fn(obj) -> (children, context)`` and
    ``unflatten_fn(children, context) -> obj``. The serialization and key-path hooks of
    torch's signature are not supported (spec serialization is not implemented)."""
    if cls in SUPPORTED_NODES:
        raise ArgumentError(f"register_pytree_node: {cls} is already registered as pytree "
                            "node")
    if to_dumpable_context is not None or from_dumpable_context is not None:
        raise NotImplementedError("register_pytree_node: to_dumpable_context / "
                                  "from_dumpable_context are not supported (TreeSpec "
                                  "serialization is not implemented)")
    if flatten_with_keys_fn is not None:
        raise NotImplementedError("register_pytree_node: flatten_with_keys_fn is not "
                                  "supported (key paths are not implemented)")
    name = serialized_type_name or f"{cls.__module__}.{cls.__qualname__}"
    SUPPORTED_NODES[cls] = NodeDef(cls, flatten_fn, unflatten_fn, name)


def _is_namedtuple(obj) -> bool:
    return isinstance(obj, tuple) and hasattr(type(obj), "_fields")


def _node_type(obj):
    """The registry key of ``obj``'s container type (``namedtuple`` for every namedtuple),
    or None for a leaf."""
    t = type(obj)
    if t in SUPPORTED_NODES:
        return t
    if _is_namedtuple(obj):
        return namedtuple
    return None


register_pytree_node(tuple, lambda t: (list(t), None), lambda c, _: tuple(c),
                     serialized_type_name="builtins.tuple")
register_pytree_node(list, lambda t: (list(t), None), lambda c, _: list(c),
                     serialized_type_name="builtins.list")
register_pytree_node(dict, lambda d: (list(d.values()), list(d)),
                     lambda c, keys: dict(zip(keys, c)), serialized_type_name="builtins.dict")
register_pytree_node(type(None), lambda _: ([], None), lambda c, _: None,
                     serialized_type_name="builtins.NoneType")
register_pytree_node(namedtuple, lambda t: (list(t), type(t)), lambda c, cls: cls(*c),
                     serialized_type_name="collections.namedtuple")
register_pytree_node(OrderedDict, lambda d: (list(d.values()), list(d)),
                     lambda c, keys: OrderedDict(zip(keys, c)),
                     serialized_type_name="collections.OrderedDict")
register_pytree_node(defaultdict, lambda d: (list(d.values()), [d.default_factory, list(d)]),
                     lambda c, ctx: defaultdict(ctx[0], zip(ctx[1], c)),
                     serialized_type_name="collections.defaultdict")
register_pytree_node(deque, lambda d: (list(d), d.maxlen),
                     lambda c, maxlen: deque(c, maxlen=maxlen),
                     serialized_type_name="collections.deque")


class TreeSpec:
    """The structure of a pytree: the container ``type``, its ``context`` (dict keys,
    namedtuple class...) and one spec per child."""

    def __init__(self, type, context, children_specs):  # noqa: A002  (torch's name)
        self.type = type
        self.context = context
        self.children_specs = list(children_specs)
        self.num_nodes = 1 + sum(c.num_nodes for c in self.children_specs)
        self.num_leaves = sum(c.num_leaves for c in self.children_specs)
        self.num_children = len(self.children_specs)

    def is_leaf(self) -> bool:
        """True for the spec of a single leaf."""
        return False

    def child(self, index: int) -> TreeSpec:
        """The spec of child ``index``."""
        return self.children_specs[index]

    def children(self) -> list:
        """The child specs."""
        return list(self.children_specs)

    def unflatten(self, leaves):
        """The pytree of this structure holding ``leaves`` (as :func:`tree_unflatten`)."""
        return tree_unflatten(leaves, self)

    def flatten_up_to(self, tree) -> list:
        """The subtrees of ``tree`` at this spec's leaf positions: ``tree`` must have this
        structure down to them (it may go deeper below a leaf)."""
        out: list = []
        self._flatten_up_to(tree, out)
        return out

    def _flatten_up_to(self, tree, out) -> None:
        if self.is_leaf():
            out.append(tree)
            return
        kind = _node_type(tree)
        if kind is not self.type:
            raise ArgumentError(f"tree structure mismatch: expected a {self.type.__name__} "
                                f"node, got {type(tree).__name__}")
        children, ctx = SUPPORTED_NODES[kind].flatten_fn(tree)
        if kind in (dict, OrderedDict, defaultdict):
            keys = ctx[1] if kind is defaultdict else ctx
            want = self.context[1] if kind is defaultdict else self.context
            if set(keys) != set(want):
                raise ArgumentError(f"tree structure mismatch: dict keys {keys} differ from "
                                    f"{want}")
            by_key = dict(zip(keys, children))
            children = [by_key[k] for k in want]
        elif len(children) != self.num_children or ctx != self.context:
            raise ArgumentError(f"tree structure mismatch: {self.type.__name__} node with "
                                f"{len(children)} children (context {ctx!r}); expected "
                                f"{self.num_children} (context {self.context!r})")
        for spec, child in zip(self.children_specs, children):
            spec._flatten_up_to(child, out)

    def __eq__(self, other) -> bool:
        if not isinstance(other, TreeSpec):
            return NotImplemented
        return (self.type is other.type and self.context == other.context
                and self.children_specs == other.children_specs)

    def __hash__(self):
        return hash((self.type, self.num_nodes, self.num_leaves))

    def __repr__(self, indent: int = 0) -> str:
        head = f"TreeSpec({self.type.__name__}, {self.context}, ["
        if not self.children_specs:
            return head + "])"
        indent += 2
        parts = [self.children_specs[0].__repr__(indent)]
        parts += ["\n" + " " * indent + c.__repr__(indent) for c in self.children_specs[1:]]
        return head + ",".join(parts) + "])"


class LeafSpec(TreeSpec):
    """The spec of one leaf (printed ``*``)."""

    def __init__(self):
        super().__init__(None, None, [])
        self.num_nodes = 1
        self.num_leaves = 1

    def is_leaf(self) -> bool:
        return True

    def __repr__(self, indent: int = 0) -> str:
        return "*"


_LEAF = LeafSpec()


def _flatten(tree, is_leaf, leaves: list) -> TreeSpec:
    if is_leaf is not None and is_leaf(tree):
        leaves.append(tree)
        return _LEAF
    kind = _node_type(tree)
    if kind is None:
        leaves.append(tree)
        return _LEAF
    children, ctx = SUPPORTED_NODES[kind].flatten_fn(tree)
    return TreeSpec(kind, ctx, [_flatten(c, is_leaf, leaves) for c in children])


def tree_flatten(tree, is_leaf: Callable[[Any], bool] | None = None):
    """``(leaves, spec)``: the leaves in order (left to right, dicts in key order) and
    the structure. ``is_leaf(x)`` True stops the descent at ``x``."""
    leaves: list = []
    spec = _flatten(tree, is_leaf, leaves)
    return leaves, spec


def _unflatten(spec: TreeSpec, it):
    if spec.is_leaf():
        return next(it)
    children = [_unflatten(c, it) for c in spec.children_specs]
    return SUPPORTED_NODES[spec.type].unflatten_fn(children, spec.context)


def tree_unflatten(leaves, treespec: TreeSpec):
    """The pytree of structure ``treespec`` holding ``leaves`` in order."""
    if not isinstance(treespec, TreeSpec):
        raise FwTypeError(f"tree_unflatten(leaves, treespec): expected treespec to be a "
                          f"TreeSpec, got {type(treespec).__name__}")
    leaves = list(leaves)
    if len(leaves) != treespec.num_leaves:
        raise ArgumentError(f"tree_unflatten(leaves, treespec): `leaves` has length "
                            f"{len(leaves)} but the spec refers to a pytree that holds "
                            f"{treespec.num_leaves} items ({treespec})")
    return _unflatten(treespec, iter(leaves))


def tree_leaves(tree, is_leaf=None) -> list:
    """The leaves of ``tree``, in order."""
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None) -> TreeSpec:
    """The :class:`TreeSpec` of ``tree``."""
    return tree_flatten(tree, is_leaf)[1]


def tree_map(func, tree, *rests, is_leaf=None):
    """``tree`` with ``func(leaf, *matching leaves of rests)`` at every leaf; each of
    ``rests`` must have ``tree``'s structure (down to its leaves)."""
    leaves, spec = tree_flatten(tree, is_leaf)
    columns = [leaves] + [spec.flatten_up_to(r) for r in rests]
    return tree_unflatten([func(*xs) for xs in zip(*columns)], spec)


def tree_map_(func, tree, *rests, is_leaf=None):
    """Call ``func`` on every leaf for its side effects; returns ``tree`` itself."""
    leaves, spec = tree_flatten(tree, is_leaf)
    columns = [leaves] + [spec.flatten_up_to(r) for r in rests]
    for xs in zip(*columns):
        func(*xs)
    return tree


def _type_filter(type_or_types_or_pred):
    if isinstance(type_or_types_or_pred, (type, tuple)):
        return lambda x: isinstance(x, type_or_types_or_pred)
    if callable(type_or_types_or_pred):
        return type_or_types_or_pred
    raise FwTypeError(f"tree_map_only: expected a type, a tuple of types or a predicate, got "
                      f"{type(type_or_types_or_pred).__name__}")


def tree_map_only(type_or_types_or_pred, func, tree, is_leaf=None):
    """``tree_map`` that applies ``func`` only to leaves of the given type(s) (or for which
    the predicate is true); other leaves are kept as they are."""
    keep = _type_filter(type_or_types_or_pred)
    return tree_map(lambda x: func(x) if keep(x) else x, tree, is_leaf=is_leaf)


def tree_all(pred, tree, is_leaf=None) -> bool:
    """True when ``pred`` holds for every leaf."""
    return all(pred(x) for x in tree_leaves(tree, is_leaf))


def tree_any(pred, tree, is_leaf=None) -> bool:
    """True when ``pred`` holds for some leaf."""
    return any(pred(x) for x in tree_leaves(tree, is_leaf))
