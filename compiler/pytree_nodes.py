"""The containers a compiled function takes apart in its arguments and outputs.

Tuples, lists and dicts are walked inline (that is the hot path). Besides them a *node* is

- a namedtuple (a tuple whose class is part of the signature),
- an instance of a class registered with ``fw.utils._pytree.register_pytree_node`` (the
  same registry ``tree_flatten`` uses): its children come from its ``flatten_fn``, its
  context is part of the signature, and it is rebuilt with its ``unflatten_fn``,
- a dataclass instance (not registered, not itself a tuple, list or dict): its fields, in
  declaration order, are its children; it is rebuilt as a shallow copy with the fields
  replaced, so ``__post_init__`` does not run a second time.

A node's tensor leaves become graph inputs (or outputs), so a fresh object each call with
the same structure reuses the graph. :func:`flatten`, :func:`get_path` and :func:`map_tree`
are the walkers the capture, the guards and the runtime share; :class:`NodeArgContainers`
puts a capture's stand-ins into node arguments.
"""

from __future__ import annotations

import copy
import dataclasses

from collections import OrderedDict, defaultdict, deque, namedtuple

from framework.tensor import Tensor
from framework.utils._pytree import SUPPORTED_NODES

from .arg_writes import ArgContainers, _refuse

# registered in fw.utils._pytree but walked by compile's own rules (a deque stays a leaf)
BUILTIN = frozenset({tuple, list, dict, type(None), namedtuple, OrderedDict, defaultdict,
                     deque})
_PLAIN = (bool, int, float, str, type(None))
_PLAIN_TYPES = frozenset(_PLAIN)
_MISSING = object()
_FIELDS: dict = {}  # type -> its dataclass field names, or None (per type, computed once)


def dataclass_fields(t) -> tuple | None:
    """The field names of dataclass type ``t`` (None for any other type, for a dataclass
    that is also a tuple, list or dict: that is walked as one, and for a module)."""
    names = _FIELDS.get(t, _FIELDS)
    if names is _FIELDS:
        names = None
        if dataclasses.is_dataclass(t) and not issubclass(t, (tuple, list, dict, Tensor)) \
                and not hasattr(t, "named_parameters"):  # a module declared as a dataclass
            names = tuple(f.name for f in dataclasses.fields(t))
        _FIELDS[t] = names
    return names


def registered(t) -> bool:
    """True for a user class registered with ``register_pytree_node``."""
    return t in SUPPORTED_NODES and t not in BUILTIN


def is_node(obj) -> bool:
    """True for a registered object, a dataclass instance or a :class:`NodeSpec`."""
    t = type(obj)
    return t is NodeSpec or registered(t) or dataclass_fields(t) is not None


def take_apart(obj):
    """``(children, context)`` of a node (context: the field names of a dataclass), or
    None for anything else."""
    t = type(obj)
    if t is NodeSpec:
        return obj.children, obj.context
    if t in SUPPORTED_NODES and t not in BUILTIN:
        children, ctx = SUPPORTED_NODES[t].flatten_fn(obj)
        return list(children), ctx
    names = dataclass_fields(t)
    if names is None:
        return None
    return [getattr(obj, n) for n in names], names


def put_together(obj, children):
    """A node like ``obj`` (a node object or a :class:`NodeSpec`) holding ``children``."""
    if type(obj) is NodeSpec:
        return obj.build(children)
    t = type(obj)
    if registered(t):
        return SUPPORTED_NODES[t].unflatten_fn(children, take_apart(obj)[1])
    return _with_fields(obj, dataclass_fields(t), children)


def _with_fields(obj, names, values):
    new = copy.copy(obj)
    for n, v in zip(names, values):
        object.__setattr__(new, n, v)  # frozen dataclasses too
    return new


def hidden_values(obj, children, names=(), context=None) -> tuple:
    """(name, value) of the plain Python values (numbers, strings, None) ``obj`` holds as
    attributes outside its children and context: a trace that reads one bakes it, so the
    signature keeps them by value (a float field that is a child stays a runtime input)."""
    d = getattr(obj, "__dict__", None)
    if not d or len(d) <= len(names):  # a dataclass holding only its fields
        return ()
    out = []
    known = None
    for k, v in d.items():
        if type(v) in _PLAIN_TYPES and k not in names:
            if known is None:
                known = list(children)
                if isinstance(context, (tuple, list)):
                    known += context
                elif isinstance(context, dict):
                    known += context.values()
                else:
                    known.append(context)
            if all(v is not c for c in known):
                out.append((k, v))
    return tuple(out)


class Child:
    """A path step into child ``i`` of a node (``name``: a dataclass field)."""

    __slots__ = ("i", "name")

    def __init__(self, i, name=None):
        self.i, self.name = i, name

    def __eq__(self, other):
        return type(other) is Child and other.i == self.i and other.name == self.name

    def __hash__(self):
        return hash((Child, self.i))

    def __str__(self):
        return self.name if self.name is not None else str(self.i)

    __repr__ = __str__


def child_at(obj, step):
    """``obj[step]``, or the child a :class:`Child` step names."""
    if type(step) is not Child:
        return obj[step]
    if step.name is not None and type(obj) is not NodeSpec:
        return getattr(obj, step.name)
    return take_apart(obj)[0][step.i]


def get_path(obj, path):
    """The leaf of ``obj`` at ``path``."""
    for p in path:
        obj = child_at(obj, p)
    return obj


def flatten(obj, path=()):
    """Yield (path, leaf) for every leaf of nested tuples/lists/dicts and nodes."""
    if registered(type(obj)) or type(obj) is NodeSpec:
        children, ctx = take_apart(obj)
        for i, x in enumerate(children):
            yield from flatten(x, path + (Child(i),))
    elif isinstance(obj, (tuple, list)):
        for i, x in enumerate(obj):
            yield from flatten(x, path + (i,))
    elif isinstance(obj, dict):
        for k, x in obj.items():
            yield from flatten(x, path + (k,))
    else:
        names = dataclass_fields(type(obj))
        if names is None:
            yield path, obj
            return
        for i, n in enumerate(names):
            yield from flatten(getattr(obj, n), path + (Child(i, n),))


class NodeSpec:
    """A node of a captured function's output (``Capture.out_tree``): its children (trees
    of output leaves) and how to rebuild the object on every compiled call."""

    __slots__ = ("type", "context", "children", "template")

    def __init__(self, obj, children, context):
        self.type, self.context, self.children = type(obj), context, children
        self.template = None
        if not registered(self.type):  # a dataclass: a copy without the traced tensors
            self.template = _with_fields(obj, context, [None] * len(context))
            _refuse_tensors(self.template, "an output")
        else:
            _refuse_tensors(context, "an output's pytree context")

    def build(self, children):
        """The output object holding ``children``."""
        if self.template is None:
            return SUPPORTED_NODES[self.type].unflatten_fn(children, self.context)
        return _with_fields(self.template, self.context, children)

    def __repr__(self):
        return f"{self.type.__name__}(*{self.children!r})"


def map_tree(obj, fn, spec=False):
    """Rebuild nested tuples/lists/dicts and nodes with ``fn`` applied to every leaf; a
    :class:`NodeSpec` is built into its object. ``spec``: nodes become NodeSpecs instead
    (a captured output's structure: the user's unflatten_fn only ever sees real values)."""
    t = type(obj)
    if t is tuple or t is list:
        return t([map_tree(x, fn, spec) for x in obj])
    if t is dict:
        return {k: map_tree(x, fn, spec) for k, x in obj.items()}
    if t is NodeSpec or registered(t):
        children, ctx = take_apart(obj)
        children = [map_tree(x, fn, spec) for x in children]
        return NodeSpec(obj, children, ctx) if spec else put_together(obj, children)
    if isinstance(obj, (tuple, list)) and not hasattr(obj, "_fields"):
        return t(map_tree(x, fn, spec) for x in obj)
    if isinstance(obj, tuple):  # namedtuple
        return t(*[map_tree(x, fn, spec) for x in obj])
    if isinstance(obj, dict):
        return {k: map_tree(x, fn, spec) for k, x in obj.items()}
    names = dataclass_fields(t)
    if names is not None:
        children = [map_tree(getattr(obj, n), fn, spec) for n in names]
        return NodeSpec(obj, children, names) if spec else _with_fields(obj, names, children)
    return fn(obj)


def _refuse_tensors(obj, what) -> None:
    """A GraphBreak when ``obj`` (an output's leaf or template) holds a tensor where the
    compiled call could not replace it: it would return the trace's data-less stand-in."""
    items = ()
    if isinstance(obj, (tuple, list)):
        items = enumerate(obj)
    elif isinstance(obj, dict):
        items = obj.items()
    elif isinstance(getattr(obj, "__dict__", None), dict) and not isinstance(obj, type):
        items = vars(obj).items()
    for k, v in items:
        if isinstance(v, Tensor) and v._data is None:  # a trace's stand-in
            from framework.errors import GraphBreak
            raise GraphBreak(
                f"{what} holds a tensor in {type(obj).__name__} ({k!r}) that is not one of "
                "its pytree children, so a compiled call cannot return it; make the class "
                "a dataclass with that field, or register it with "
                "fw.utils._pytree.register_pytree_node")


def check_output_leaf(x) -> None:
    """Refuse a constant output that holds tensors (an object that is not a node)."""
    if not isinstance(x, _PLAIN):
        _refuse_tensors(x, "an output")


# ---------------------------------------------------------------------------------------
# stand-ins inside node arguments
class NodeArgContainers(ArgContainers):
    """:class:`ArgContainers` that also takes nodes apart: a dataclass argument gets the
    stand-ins in its own fields (so the function, and anything else holding the object,
    sees one object, as for lists and dicts) and gets its fields back afterwards; a
    registered object is rebuilt with its ``unflatten_fn``. Any change the function makes
    to such an argument is refused (a graph break): the compiled call could not repeat it."""

    def __init__(self):
        super().__init__()
        self.nodes: list = []  # (object, path, original values, installed values, names)

    def rebuild(self, obj, path, fn):
        t = type(obj)
        if registered(t):
            children, ctx = SUPPORTED_NODES[t].flatten_fn(obj)
            new = [self.rebuild(x, path + (Child(i),), fn) for i, x in enumerate(children)]
            out = SUPPORTED_NODES[t].unflatten_fn(new, ctx)
            d = getattr(out, "__dict__", None)
            if isinstance(d, dict):
                self.nodes.append((out, path, None, dict(d), None))
            return out
        names = dataclass_fields(t)
        if names is None:
            return super().rebuild(obj, path, fn)
        fresh = id(obj) not in self._ids
        self._ids.add(id(obj))
        original = [getattr(obj, n) for n in names]
        new = [self.rebuild(x, path + (Child(i, n),), fn)
               for i, (n, x) in enumerate(zip(names, original))]
        if not fresh:
            return _with_fields(obj, names, new)
        for n, v in zip(names, new):
            object.__setattr__(obj, n, v)
        self.nodes.append((obj, path, original, new, names))
        return obj

    def writes(self, where: str, name_of) -> list:
        found = super().writes(where, name_of)
        for path, _, _ in found:
            if any(type(p) is Child for p in path):
                _refuse(where, f"writes into a container inside the argument "
                               f"{name_of(path)!r} (a node: dataclass or registered class)")
        for obj, path, _, installed, names in self.nodes:
            what = f"the {type(obj).__name__} argument {name_of(path)!r}"
            if names is None:  # a rebuilt registered object: compare its attributes
                now = vars(obj)
                changed = [k for k in set(now) | set(installed)
                           if now.get(k, _MISSING) is not installed.get(k, _MISSING)]
            else:
                changed = [n for n, v in zip(names, installed) if getattr(obj, n) is not v]
            if changed:
                _refuse(where, f"sets attribute {sorted(changed)[0]!r} of {what}")
        return found

    def restore(self) -> None:
        super().restore()
        for obj, _, original, _, names in reversed(self.nodes):
            if names is not None:
                for n, v in zip(names, original):
                    object.__setattr__(obj, n, v)


def hidden_tensor_reads(args, kwargs, graph) -> str | None:
    """The first tensor the trace read from an argument node's attribute that is not one
    of the node's children (it would be baked from this call's object), in words."""
    hidden: dict = {}

    def walk(obj, path, depth):
        if depth > 32:
            return
        parts = take_apart(obj) if is_node(obj) else None
        if parts is not None:
            children = parts[0]
            d = getattr(obj, "__dict__", None)
            if isinstance(d, dict):
                for k, v in d.items():
                    for x in (v.values() if isinstance(v, dict) else
                              v if isinstance(v, (list, tuple)) else (v,)):
                        if hasattr(x, "named_parameters") and hasattr(x, "buffers"):
                            ts = list(x.parameters()) + list(x.buffers())  # a module
                        else:
                            ts = (x,)
                        for t in ts:
                            if isinstance(t, Tensor) and all(t is not c for c in children):
                                hidden.setdefault(id(t), (type(obj).__name__, k))
        elif isinstance(obj, (list, tuple)):
            children = obj
        elif isinstance(obj, dict):
            children = list(obj.values())
        else:
            return
        for c in children:
            walk(c, path, depth + 1)

    walk((args, kwargs), (), 0)
    if not hidden:
        return None
    for v, t in graph.constants.items():
        src = graph.sources.get(v.name, ("tensor", t))
        # ("attr", dict, name, tensor): read from the first call's object on every call
        t = src[1] if src[0] == "tensor" else src[3] if src[0] == "attr" else None
        if id(t) in hidden:
            cls, attr = hidden[id(t)]
            return (f"the function reads the tensor attribute {attr!r} of a {cls} argument, "
                    f"which is not one of its pytree children (a fresh {cls} would reuse "
                    "this call's tensor); include it in the flatten_fn's children or make "
                    "it a dataclass field")
    return None


def drop_argument_bindings(bindings, args) -> list:
    """``bindings`` without those on an item of a container or an attribute of a node
    inside ``args``: the signature checks them on every call (a binding would check the
    first call's object, and keep it alive)."""
    ids: set = set()

    def walk(obj):
        if id(obj) in ids:
            return
        if is_node(obj):
            ids.add(id(obj))
            d = getattr(obj, "__dict__", None)
            if isinstance(d, dict):
                ids.add(id(d))
            for x in take_apart(obj)[0]:
                walk(x)
        elif isinstance(obj, (list, tuple, dict)):
            ids.add(id(obj))
            for x in (obj.values() if isinstance(obj, dict) else obj):
                walk(x)
    walk(args)
    return [(where, obj) for where, obj in bindings
            if not (where[0] in ("item", "attr") and id(where[1]) in ids)]
