"""Guards: the signature of a call, and the checks a cached entry needs beyond it.

The *static key* of a call is cheap to compute and exact: grad mode (with the autocast
state inside an autocast region), and for every leaf of the arguments its kind — a tensor's
shape (a dynamic dim shows as ``*k``, equal dynamic sizes share ``k``), dtype, device,
requires_grad and whether ``.grad`` is set; a Python int/bool/str's value; a float's type
only (floats are runtime inputs); a NumPy scalar's or slice's value; any other object itself
(see :func:`_object_part`). The per-entry checks cover
what the trace read from outside the arguments: external tensors' shapes and dtypes, which
leaves had a ``.grad``, optimizer hyper-parameters that were baked (ints, bools) and the
answers of comparisons on runtime scalars.
"""

from __future__ import annotations

from framework._state import tls
from framework.nn.modules.module import Module
from framework.tensor import Tensor

from .capture import binding_holds, get_path, reachable
from .scalars import expr_source


class _DictKeys(tuple):
    """The keys of a dict argument, in order: which value is which graph input."""


def _leaves(obj, out):
    """Append the leaves of nested tuples/lists/dicts (the order of ``flatten``); a dict
    also appends its keys first (as a :class:`_DictKeys`)."""
    for x in obj:
        if isinstance(x, (tuple, list)):
            _leaves(x, out)
        elif isinstance(x, dict):
            out.append(_DictKeys(k if isinstance(k, (str, int, float, bool, type(None)))
                                 else ("id", id(k)) for k in x))
            _leaves(x.values(), out)
        else:
            out.append(x)


def static_key(args, kwargs, dyn: set, marks: set):
    """(key, tensors) for a call; ``marks`` collects ``mark_dynamic`` dims seen."""
    ac = tls.autocast  # an autocast region changes the graph (casts): part of the mode
    parts = [tls.grad_enabled if ac is None else (tls.grad_enabled, ac.key)]
    tensors = []
    sizes: dict = {}
    leaves: list = []
    _leaves(args, leaves)
    if kwargs:
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
        elif type(leaf) is _DictKeys:
            parts.append(("dict keys", tuple(leaf)))
        elif isinstance(leaf, float):
            parts.append(float)
        elif leaf is None or isinstance(leaf, (int, str, bool)):
            parts.append((type(leaf), leaf))
        elif type(leaf).__module__ == "numpy" and getattr(leaf, "ndim", None) == 0:
            # a NumPy scalar (np.float32(lr)): by value; its id is reused by the next call's
            parts.append((type(leaf), leaf.item()))
        else:
            parts.append(_object_part(leaf))
    return tuple(parts), tensors


_PLAIN = (bool, int, float, str, type(None))


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


def describe_difference(old_key, new_key, names) -> str:
    """Which guard failed between two static keys, in words."""
    if old_key[0] != new_key[0]:
        (g0, a0), (g1, a1) = (_mode(old_key[0]), _mode(new_key[0]))
        if g0 != g1:
            return f"grad mode changed ({g0} -> {g1})"
        return f"autocast changed ({_fmt_autocast(a0)} -> {_fmt_autocast(a1)})"
    if len(old_key) != len(new_key):
        return "number of arguments changed"
    ti = 0
    for a, b in zip(old_key[1:], new_key[1:]):
        is_t = isinstance(a, tuple) and len(a) == 4
        name = names[ti] if is_t and ti < len(names) else "argument"
        if a != b:
            if _is_keys(a) and _is_keys(b):
                return f"keys of a dict argument changed ({_fmt_keys(a)} -> {_fmt_keys(b)})"
            if is_t and isinstance(b, tuple) and len(b) == 4:
                for what, x, y in zip(("shape", "dtype", "device", "requires_grad"), a, b):
                    if x != y:
                        return f"{what} of {name} changed ({_fmt(x)} -> {_fmt(y)})"
            return f"value of {name} changed ({a!r} -> {b!r})"
        if is_t:
            ti += 1
    return "unknown"


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


def size_changes(old_key, new_key):
    """(tensor index, dim) whose concrete sizes differ, or None if anything else differs."""
    if len(old_key) != len(new_key) or old_key[0] != new_key[0]:
        return None
    out = []
    ti = 0
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
        elif a != b:
            return None
    return out or None


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
        self.sym_locs = [locs[0] for locs in cap.sym_locs.values()]
        self.size_check = make_size_check(cap.graph, getattr(cap.graph, "sym_values", {}),
                                          list(cap.sym_locs))
        # the graph's meta rules are re-run once for each new combination of symbolic sizes
        # (topk's k past a shorter dim, a narrow past the end): such sizes miss the entry and
        # the call fails as it would eagerly
        self._graph, self._sym_names, self._sizes_ok = cap.graph, list(cap.sym_locs), set()
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
        if self.size_check is not None and not self.size_check(*sizes):
            return ("a relation between symbolic sizes that held at capture time "
                    f"({self.size_check.pairs}) no longer holds")
        if sizes and sizes not in self._sizes_ok:
            from framework.errors import ShapeError

            from .symbolic import check_assumptions
            try:
                check_assumptions(self._graph, dict(zip(self._sym_names, sizes)))
            except ShapeError as e:
                return f"the sizes {list(sizes)} break the capture's shape rules ({e})"
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
