"""Guards: the signature of a call, and the checks a cached entry needs beyond it.

The *static key* of a call is cheap to compute and exact: grad mode (with the autocast
state inside an autocast region), and for every leaf of the arguments its kind — a tensor's
shape (a dynamic dim shows as ``*k``, equal dynamic sizes share ``k``), dtype, device,
requires_grad and whether ``.grad`` is set; a Python int/bool/str's value; a float's type
only (floats are runtime inputs); a NumPy scalar's or slice's value; any other object itself
(see :func:`_object_part`). Containers add their structure before their leaves: a tuple's or
list's type (a namedtuple's class) and length, a dict's keys, the keyword names, and for a
dataclass or a class registered with ``fw.utils._pytree.register_pytree_node`` its type,
its pytree context and the plain values it holds outside its children (see
compiler/pytree_nodes.py). The per-entry checks cover
what the trace read from outside the arguments: external tensors' shapes and dtypes, which
leaves had a ``.grad``, optimizer hyper-parameters that were baked (ints, bools) and the
answers of comparisons on runtime scalars.
"""

from __future__ import annotations

import types

from framework._state import tls
from framework.nn.modules.module import Module
from framework.tensor import Tensor

from .capture import binding_holds, get_path, reachable
from .pytree_nodes import (BUILTIN, SUPPORTED_NODES, dataclass_fields, hidden_values,
                           registered)
from .scalars import expr_source


class _DictKeys(tuple):
    """The keys of a dict argument, in order: which value is which graph input."""


def _leaves(obj, out):
    """Append the leaves of nested tuples/lists/dicts and nodes (the order of ``flatten``),
    each container preceded by its structure: ``(type, len)`` for a tuple or list (a
    namedtuple's class), a :class:`_DictKeys` for a dict, ``("node", type, context)`` for
    a registered object or a dataclass (compiler/pytree_nodes.py)."""
    for x in obj:
        t = type(x)
        if t is tuple or t is list:
            out.append((t, len(x)))
            _leaves(x, out)
        elif t is dict:
            out.append(_DictKeys(k if isinstance(k, _PLAIN) else ("id", id(k)) for k in x))
            _leaves(x.values(), out)
        elif t in _SCALAR_TYPES or isinstance(x, Tensor):
            out.append(x)
        elif t in SUPPORTED_NODES and t not in BUILTIN:
            children, ctx = SUPPORTED_NODES[t].flatten_fn(x)
            out.append(("node", t, (_freeze(ctx), hidden_values(x, children, (), ctx))))
            _leaves(children, out)
        elif isinstance(x, (tuple, list)):  # a namedtuple, a subclass
            out.append((t, len(x)))
            _leaves(x, out)
        elif isinstance(x, dict):
            keys = tuple(k if isinstance(k, _PLAIN) else ("id", id(k)) for k in x)
            out.append(_DictKeys(keys + ((t,),)))  # the subclass too
            _leaves(x.values(), out)
        else:
            names = dataclass_fields(t)
            if names is None:
                out.append(x)
                continue
            children = [getattr(x, n) for n in names]
            out.append(("node", t, hidden_values(x, children, names)))
            _leaves(children, out)


_SCALAR_TYPES = frozenset({int, float, bool, str, type(None)})
_ATOMS = _SCALAR_TYPES | {type, types.FunctionType}


def _freeze(ctx):
    """A pytree context as part of a cache key: hashable, compared by value."""
    t = type(ctx)
    if t in _ATOMS:
        return ctx
    if t is tuple:
        return tuple([_freeze(c) for c in ctx])
    if t is list:
        return (list, *[_freeze(c) for c in ctx])
    if t is dict:
        return (dict, *[(k, _freeze(v)) for k, v in ctx.items()])
    if isinstance(ctx, Tensor):
        return _Held(ctx)
    try:
        hash(ctx)
    except TypeError:
        return _ByValue(ctx)
    return ctx


def static_key(args, kwargs, dyn: set, marks: set):
    """(key, tensors) for a call; ``marks`` collects ``mark_dynamic`` dims seen."""
    ac = tls.autocast  # an autocast region changes the graph (casts): part of the mode
    parts = [tls.grad_enabled if ac is None else (tls.grad_enabled, ac.key)]
    tensors = []
    sizes: dict = {}
    leaves: list = []
    ni = 0  # int leaves seen: ("int", ni) in ``dyn`` is a symbolic int (compiler/symints.py)
    _leaves(args, leaves)
    if kwargs:  # the names too: f(x, b=y) and f(x, c=y) are different calls
        leaves.append(("kwargs", tuple(kwargs)))
        _leaves(kwargs.values(), leaves)
    for leaf in leaves:
        if isinstance(leaf, Tensor):
            idx = len(tensors)
            tensors.append(leaf)
            d = leaf.__dict__
            if d and "_fw_dynamic" in d:
                for dim in d["_fw_dynamic"]:
                    marks.add((idx, dim))
            shape = leaf.shape
            if dyn:
                shape = tuple(("*", sizes.setdefault(s, len(sizes)))
                              if (idx, i) in dyn and s > 1 else s
                              for i, s in enumerate(shape))
            # an argument with autograd history differs from a leaf: a backward() inside
            # the function must continue into that history (capture.py refuses it)
            rg = leaf.requires_grad if leaf.grad_fn is None else "non-leaf"
            parts.append((shape, leaf.dtype, leaf.device, rg))
        elif type(leaf) is tuple:  # a container's structure (see _leaves)
            parts.append(leaf)
        elif type(leaf) is _DictKeys:
            parts.append(("dict keys", tuple(leaf)))
        elif isinstance(leaf, float):
            parts.append(float)
        elif leaf.__class__ is int:  # a dynamic int by type only (0 and 1: by value)
            parts.append((int, _DYN) if dyn and ("int", ni) in dyn and leaf not in (0, 1)
                         else (int, leaf))
            ni += 1
        elif leaf is None or isinstance(leaf, (int, str, bool)):
            parts.append((type(leaf), leaf))
        elif type(leaf).__module__ == "numpy" and getattr(leaf, "ndim", None) == 0:
            # a NumPy scalar (np.float32(lr)): by value; its id is reused by the next call's
            parts.append((type(leaf), leaf.item()))
        else:
            parts.append(_object_part(leaf))
    return tuple(parts), tensors


_PLAIN = (bool, int, float, str, type(None))


class _Dyn:
    """The value part of a symbolic int's key (any value but 0 and 1)."""

    def __repr__(self):
        return "a value other than 0 or 1"


_DYN = _Dyn()


class _Held:
    """An unhashable argument compared by identity, kept alive by the cache key: a bare
    ``id()`` is taken over by the next call's fresh object (a stale entry would then hit)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return type(other) is _Held and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)

    def __repr__(self):
        return f"<{type(self.obj).__name__} object>"


class _ByValue:
    """An unhashable pytree context compared with ``==`` (as torch's TreeSpec compares
    contexts); one whose ``==`` does not give a bool is compared by identity."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        if type(other) is not _ByValue or type(other.obj) is not type(self.obj):
            return False
        if other.obj is self.obj:
            return True
        try:
            return bool(other.obj == self.obj)
        except Exception:  # noqa: BLE001  (an == that gives a tensor: identity only)
            return False

    def __hash__(self):
        return hash(type(self.obj))

    def __repr__(self):
        return repr(self.obj)


def _object_part(obj):
    """Any other argument: a slice by value; else the object (by value when hashable, else
    by identity, kept alive) with the plain values of its ``__dict__``, whose reads a
    capture cannot always record (``argparse.Namespace``, ``SimpleNamespace``: a config
    rebuilt or mutated between calls). An object holding only plain values is keyed by them."""
    if type(obj) is slice:
        return ("slice", (obj.start, obj.stop, obj.step))
    d = None if isinstance(obj, Module) else getattr(obj, "__dict__", None)
    plain = tuple((k, v) for k, v in d.items() if type(v) in _PLAIN) if type(d) is dict else ()
    try:
        hash(obj)
    except TypeError:
        if type(d) is dict and len(plain) == len(d):
            return ("object", type(obj), plain)
        return ("object", _Held(obj), plain)
    return ("object", obj, plain)


def describe_difference(old_key, new_key, names, leaf_names=()) -> str:
    """Which guard failed between two static keys, in words (``names``: the tensor inputs'
    names; ``leaf_names``: the names of the new call's leaves, in ``flatten`` order)."""
    if old_key[0] != new_key[0]:
        (g0, a0), (g1, a1) = (_mode(old_key[0]), _mode(new_key[0]))
        if g0 != g1:
            return f"grad mode changed ({g0} -> {g1})"
        return f"autocast changed ({_fmt_autocast(a0)} -> {_fmt_autocast(a1)})"
    ti = li = 0
    for a, b in zip(old_key[1:], new_key[1:]):
        is_t = isinstance(a, tuple) and len(a) == 4
        name = names[ti] if is_t and ti < len(names) else \
            leaf_names[li] if li < len(leaf_names) else "argument"
        if a != b:
            if _is_keys(a) and _is_keys(b):
                return f"keys of a dict argument changed ({_fmt_keys(a)} -> {_fmt_keys(b)})"
            if is_t and isinstance(b, tuple) and len(b) == 4:
                for what, x, y in zip(("shape", "dtype", "device", "requires_grad"), a, b):
                    if x != y:
                        return f"{what} of {name} changed ({_fmt(x)} -> {_fmt(y)})"
            if is_t or isinstance(b, tuple) and len(b) == 4:
                return f"value of {_arg(name)} changed ({_what(a)} -> {_what(b)})"
            if _kind(a) == "kwargs" and _kind(b) == "kwargs":
                return f"keyword arguments changed ({list(a[1])} -> {list(b[1])})"
            if _kind(a) == "node" and _kind(b) == "node" and a[1] is b[1]:
                return _node_change(a, b)
            if _kind(a) is not None or _kind(b) is not None:
                return f"structure of an argument changed ({_what(a)} -> {_what(b)})"
            if a[:1] == b[:1] == ("object",):
                return _object_change(a, b, _arg(name))
            return f"value of {_arg(name)} changed ({_value(a)} -> {_value(b)})"
        if is_t:
            ti += 1
        if _kind(a) is None and not _is_keys(a):
            li += 1
    if len(old_key) != len(new_key):
        return "number of arguments changed"
    return "unknown"


def _node_change(a, b) -> str:
    """What differs between two parts of one node type (see _leaves)."""
    (ctx0, hid0), (ctx1, hid1) = (a[2], b[2]) if registered(a[1]) else ((None, a[2]),
                                                                         (None, b[2]))
    cls = a[1].__name__
    if ctx0 != ctx1:
        return f"pytree context of a {cls} argument changed ({_short(ctx0)} -> {_short(ctx1)})"
    return (f"attributes of a {cls} argument outside its pytree children changed "
            f"({_short(dict(hid0))} -> {_short(dict(hid1))})")


def _kind(part):
    """"seq" / "node" / "kwargs" for a structure part of a static key (see _leaves)."""
    if type(part) is not tuple or not part:
        return None
    if isinstance(part[0], type) and len(part) == 2 and issubclass(part[0], (tuple, list)):
        return "seq"
    if part[0] in ("node", "kwargs"):
        return part[0]
    return None


def _what(part) -> str:
    kind = _kind(part)
    if kind == "seq":
        return f"{part[0].__name__} of {part[1]}"
    if kind == "node":
        return f"a {part[1].__name__}"
    if kind == "kwargs":
        return "keyword arguments"
    if isinstance(part, tuple) and len(part) == 4:
        return "a tensor"
    if _is_keys(part):
        return "a dict"
    return _value(part)


def _arg(name) -> str:
    return name if name == "argument" else f"argument {name}"


def _object_change(a, b, what) -> str:
    """Two ("object", obj, plain attributes) parts (see _object_part), in words."""
    objs = [p[1].obj if type(p[1]) is _Held else p[1] for p in (a, b)]
    if a[1] == b[1]:  # the same object (or equal ones): its plain attributes changed
        return f"attributes of {what} changed ({_short(dict(a[2]))} -> {_short(dict(b[2]))})"
    names = [o.__name__ if isinstance(o, type) else type(o).__name__ for o in objs]
    if names[0] == names[1]:
        return f"value of {what} changed (another {names[1]} object)"
    return f"value of {what} changed (a {names[0]} -> a {names[1]})"


def _value(part) -> str:
    """A leaf's part of a static key, as the value it stands for."""
    if isinstance(part, tuple) and len(part) == 2 and part[0] in _PLAIN:
        return _short(part[1])
    if isinstance(part, tuple) and part[:1] == ("object",):
        return _short(part[1])
    if part is float:
        return "a float"
    return _short(part)


def _short(x) -> str:
    import reprlib
    r = reprlib.Repr()
    r.maxstring = r.maxother = 60
    return r.repr(x)


def _is_keys(part) -> bool:
    return isinstance(part, tuple) and part[:1] == ("dict keys",)


def _fmt_keys(part) -> str:
    return "[" + ", ".join("<object>" if isinstance(k, tuple) else repr(k) for k in part[1]) + "]"


def _mode(part):
    """(grad mode, autocast key) of a static key's first part."""
    return part if isinstance(part, tuple) else (part, ())


def _fmt_autocast(key) -> str:
    return ", ".join(f"{dev} {dt}" for dev, dt in key) or "off"


def _fmt(x):
    if isinstance(x, tuple):
        return "[" + ", ".join("*" if isinstance(s, tuple) else str(s) for s in x) + "]"
    return getattr(x, "name", x)


def size_changes(old_key, new_key, static_ints=()):
    """(tensor index, dim) whose concrete sizes differ and ("int", ordinal) of the int
    arguments whose values differ (but those in ``static_ints``), or None if anything
    else differs."""
    if len(old_key) != len(new_key) or old_key[0] != new_key[0]:
        return None
    out = []
    ti = ni = 0
    for a, b in zip(old_key[1:], new_key[1:]):
        is_t = isinstance(a, tuple) and len(a) == 4 and isinstance(b, tuple) and len(b) == 4
        if is_t:
            if a[1:] != b[1:] or len(a[0]) != len(b[0]):
                return None
            for d, (x, y) in enumerate(zip(a[0], b[0])):
                if x != y:
                    if isinstance(x, tuple) or isinstance(y, tuple):
                        return None
                    out.append((ti, d))
            ti += 1
        elif _is_int(a) and _is_int(b):
            if a != b and a[1] is not _DYN and b[1] is not _DYN and ni not in static_ints:
                out.append(("int", ni))  # (_DYN: dynamic already)
            ni += 1
        elif a != b:
            return None
    return out or None


def _is_int(part) -> bool:
    return type(part) is tuple and len(part) == 2 and part[0] is int


class EntryGuards:
    """The dynamic checks of one cache entry (externals, leaves, scalars)."""

    def __init__(self, cap, leaves_none, containers=(), bindings=()):
        self.externals = []
        for v, t in cap.graph.constants.items():
            src = cap.graph.sources.get(v.name, ("tensor", t))
            self.externals.append((v.name, src, tuple(v.shape), v.dtype))
        self.leaves_none = leaves_none
        self.containers = list(containers)
        self.bindings = list(bindings)
        from .symbolic import make_size_check
        from .symints import make_guard_fn, names_of
        self.sym_locs = [locs[0] for locs in cap.sym_locs.values()]
        names = list(cap.sym_locs) + [n for n, _, _ in cap.int_syms]  # the sizes' order
        self.size_check = make_size_check(cap.graph, getattr(cap.graph, "sym_values", {}),
                                          names)
        # symbolic ints: read from the arguments; their guards (what the trace assumed)
        self.int_paths = [p for _, p, _ in cap.int_syms]
        self.int_check = make_guard_fn(cap.symint_guards, names)
        self._int_info = (cap.symint_guards, names, names_of(cap))  # for messages
        # the graph's meta rules are re-run once for each new combination of symbolic sizes
        # (topk's k past a shorter dim, a narrow past the end): such sizes miss the entry and
        # the call fails as it would eagerly
        self._graph, self._sym_names, self._sizes_ok = cap.graph, names, set()
        self._assumptions = None  # symbolic.AssumptionCheck, made on the first new sizes
        self.fingerprint = structure(self.containers)
        ins = {v: i for i, v in enumerate(cap.graph.inputs)}
        read = {src[1] for src in cap.graph.sources.values() if src[0] == "arg_grad"}
        self.input_grad_none = [ins[leaf] for leaf, _ in cap.graph.grad_writes
                                if leaf in ins and ins[leaf] not in read]
        self.int_guards = cap.int_guards
        self.scalar_sources = cap.scalar_sources
        self.cmp = cap.scalar_guards
        self._scalar_fn = make_scalar_fn(cap) if cap.scalar_sources else None

    def check(self, args, kwargs, tensors):
        """None when the entry applies, else the failing guard in words."""
        sizes = tuple(tensors[i].shape[d] for i, d in self.sym_locs)
        if self.int_paths:
            sizes += tuple(get_path((args, kwargs), p) for p in self.int_paths)
            self.last_sizes = sizes
            bad = self.int_check(*sizes) if self.int_check is not None else -1
            if bad >= 0:
                from .symints import describe_failure
                return describe_failure(self._int_info, bad, sizes)
        if self.size_check is not None and not self.size_check(*sizes):
            return ("a relation between symbolic sizes that held at capture time "
                    f"({self.size_check.pairs}) no longer holds")
        if sizes and sizes not in self._sizes_ok:
            from framework.errors import ShapeError
            if self._assumptions is None:
                from .symbolic import AssumptionCheck
                self._assumptions = AssumptionCheck(self._graph, self._sym_names)
            try:
                self._assumptions(sizes)
            except ShapeError as e:
                return f"the sizes {list(sizes)} break the capture's shape rules ({e})"
            if len(self._sizes_ok) > 4096:  # a decoding loop: a new position every call
                self._sizes_ok.clear()
            self._sizes_ok.add(sizes)
        for where, obj in self.bindings:
            if not binding_holds(where, obj):
                return f"a name the function reads was rebound ({where[0]} {where[-1]!r})"
        if self.containers and structure(self.containers) != self.fingerprint:
            return ("the set of parameters, buffers or optimizer state tensors, or a "
                    "module's train/eval mode, changed")
        for name, src, shape, dtype in self.externals:
            kind = src[0]
            if kind == "tensor":
                t = src[1]
            elif kind == "attr":
                t = src[1].get(src[2])
                if not isinstance(t, Tensor) or t.device != src[3].device:
                    return f"attribute {src[2]!r} is no longer a {src[3].device} tensor"
            elif kind == "grad":
                t = src[1].grad
            else:
                t = tensors[src[1]].grad
            if t is None:
                return f"{name} is None"
            if t.shape != shape or t.dtype is not dtype:
                return f"{name} changed to {t.dtype.name}{list(t.shape)}"
        for i in self.input_grad_none:
            if tensors[i].grad is not None:
                return f"input {i} has a .grad now (backward() would accumulate into it)"
        for leaf, was_none in self.leaves_none:
            if (leaf.grad is None) != was_none:
                return f"whether a parameter's .grad is None changed ({list(leaf.shape)})"
        for src, value in self.int_guards:
            cur = read_source(src, args, kwargs)
            if cur != value:
                return f"hyper-parameter {src[-1]!r} changed ({value!r} -> {cur!r})"
        if self._scalar_fn is not None:
            vals, bad = self._scalar_fn(args, kwargs)
            if bad >= 0:
                expr, op, other, result = self.cmp[bad]
                if self._int_info[2]:  # over symbolic ints: name them as the arguments
                    from .symints import renamed
                    expr = renamed(expr, self._int_info[2])
                return f"comparison {expr} {op} {other} changed to {not result}"
            self.last_scalars = vals
        return None


class ClosureGuard:
    """What a cached trace of ``fn`` read besides its arguments: closure cells, globals,
    attributes and items it reached (and the numbers baked from them), and the parameters,
    buffers and train modes of the modules and optimizers among them. ``holds()`` turns
    False once any of it was rebound or replaced, so the caller traces again (``fw.grad``
    and ``fw.vmap`` cache traces per argument signature)."""

    def __init__(self, fn, args, attr_reads=()):
        self.bindings: list = list(attr_reads)  # what the trace read (capture.attr_reads)
        self.containers = [o for _, o in reachable(fn, args, bindings=self.bindings)
                           if not isinstance(o, Tensor)]
        self.fingerprint = structure(self.containers)

    def holds(self) -> bool:
        """True while every binding still holds the object (or number) it held."""
        for where, obj in self.bindings:
            if not binding_holds(where, obj):
                return False
        return not self.containers or structure(self.containers) == self.fingerprint


def structure(containers) -> tuple:
    """Identities of the parameters and buffers of modules and of the parameters and state
    tensors of optimizers: replacing any of them (a new layer, ``load_state_dict`` of an
    optimizer) invalidates graphs that captured the old ones."""
    ids = []
    for c in containers:
        if hasattr(c, "param_groups"):
            for g in c.param_groups:
                for p in g["params"]:
                    ids.append(id(p))
                    st = c.state.get(p)
                    if st:
                        ids.extend(id(v) for v in st.values() if isinstance(v, Tensor))
        else:
            _module_ids(c, ids, set())
    return tuple(ids)


def _module_ids(m, ids: list, seen: set) -> None:
    """Append the train flag and the parameter and buffer identities of ``m`` and its
    submodules (one walk over the module dicts: this runs on every compiled call)."""
    if id(m) in seen:
        return
    seen.add(id(m))
    ids.append(m.training)
    ids.extend(map(id, m._parameters.values()))
    ids.extend(map(id, m._buffers.values()))
    for child in m._modules.values():
        if child is not None:
            _module_ids(child, ids, seen)


def read_source(src, args, kwargs):
    """Read the Python value a scalar/int guard came from."""
    kind = src[0]
    if kind == "arg":
        return get_path((args, kwargs), src[1])
    if kind == "hyper":
        v = src[1][src[2]]
        for i in src[3:]:
            v = v[i]
        return v
    raise ValueError(f"unknown source {src!r}")


def make_scalar_fn(cap):
    """A generated function (args, kwargs) -> values of the graph's scalar inputs."""
    lines = ["def scalars(args, kwargs):"]
    glb = {"_read": read_source}
    for i, (sym, src) in enumerate(cap.scalar_sources.items()):
        glb[f"_src{i}"] = src
        lines.append(f"    {sym.name} = float(_read(_src{i}, args, kwargs))")
    for i, (expr, op, other, result) in enumerate(cap.scalar_guards):
        oth = expr_source(other) if hasattr(other, "free_symbols") else repr(float(other))
        sym = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}[op]
        lines.append(f"    if ({expr_source(expr)} {sym} {oth}) != {result!r}:")
        lines.append(f"        return None, {i}")
    vals = [expr_source(e) for _, e in cap.scalar_exprs]
    lines.append(f"    return [{', '.join(vals)}], -1")
    import math
    glb.update(_math=math, inf=math.inf, nan=math.nan)
    exec(compile("\n".join(lines), "<fw-scalars>", "exec"), glb)
    return glb["scalars"]
