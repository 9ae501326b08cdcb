"""Capture: run a function once under the tracer and return its Graph.

``capture_graph(fn, args)`` is the entry point the compiler, ONNX export and the functional
transforms share. Call arguments are replaced by data-less tensors (shapes may be sympy
symbols for dynamic dims), the function runs under :class:`compiler.tracer.Tracer`, and the
result is a functional Graph plus what the runtime needs to call it again (:class:`Capture`:
how to read each external, the output structure, scalar sources and guards).
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, field


from framework._state import tls
from framework.tensor import Tensor, meta_tensor

from .ir import Graph, symbol
from .pytree_nodes import (NodeArgContainers, check_output_leaf, flatten, get_path,
                           hidden_tensor_reads, map_tree)
from .symints import IntArgs
from .tracer import Tracer


def mark_dynamic(t: Tensor, dim: int) -> None:
    """Treat dimension ``dim`` of ``t`` as dynamic when a compiled function captures it."""
    dims = t.__dict__.setdefault("_fw_dynamic", set())
    dims.add(dim % max(t.ndim, 1))


@dataclass
class Capture:
    """A captured graph and the recipe to call it."""

    graph: Graph
    out_tree: object                      # nested structure (NodeSpecs) of OutLeaf leaves
    arg_paths: list                       # path of each graph tensor input in (args, kwargs)
    sym_locs: dict                        # symbol name -> [(input index, dim), ...]
    scalar_sources: dict                  # sympy symbol -> source tuple
    scalar_exprs: list                    # (scalar input Value, sympy expr), in input order
    scalar_guards: list
    int_guards: list
    grad_none: list = field(default_factory=list)  # (leaf tensor, was None) at capture
    attr_writes: list = field(default_factory=list)  # (module dict, key, output index)
    arg_writes: list = field(default_factory=list)  # (container path, key, output index)
    attr_reads: list = field(default_factory=list)  # guard bindings (compiler/attr_reads.py)
    requires_grad_sets: list = field(default_factory=list)  # (tensor input index, new flag)
    hyper_writes: list = field(default_factory=list)  # (param group, key, sympy expr)


# ---------------------------------------------------------------------------------------
# names of parameters, buffers and optimizer state reachable from fn
def _is_container(obj) -> bool:
    return (isinstance(obj, Tensor) or hasattr(obj, "named_parameters")
            or (hasattr(obj, "param_groups") and hasattr(obj, "state")))


_MODULE_TABLES = frozenset({"_parameters", "_buffers", "_modules"})


def _is_lr_scheduler(obj) -> bool:
    from framework.optim.lr_scheduler import LRScheduler
    return isinstance(obj, LRScheduler)


def _holds_state(obj) -> bool:
    """A module or optimizer (whose tensors a compiled function must track)."""
    return _is_container(obj) and not isinstance(obj, Tensor)


_MISSING = object()


class _Value:
    """A Python number/string read by the function: a binding checked by value."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class _TensorMeta:
    """A tensor attribute the trace read only the metadata of (``mask.size(0)``): a binding
    that holds while the attribute is a tensor of the same shape, dtype and device."""

    __slots__ = ("meta",)

    def __init__(self, t):
        self.meta = _tensor_meta(t)


def _tensor_meta(t) -> tuple:
    return tuple(t.shape), t.dtype, str(t.device), t.requires_grad


def binding_holds(where, obj) -> bool:
    """True while ``where`` still holds ``obj`` (the same object, or an equal value)."""
    cur = read_binding(where)
    if isinstance(obj, _Value):
        return type(cur) is type(obj.value) and cur == obj.value
    if isinstance(obj, _TensorMeta):
        return isinstance(cur, Tensor) and _tensor_meta(cur) == obj.meta
    return cur is obj


def read_binding(b):
    """The object a recorded binding holds now (see :func:`reachable`)."""
    kind = b[0]
    try:
        if kind == "cell":
            return b[1].cell_contents
        if kind == "global" or kind == "attr":
            return b[1].get(b[2], _MISSING)
        return b[1][b[2]]
    except (ValueError, KeyError, IndexError, TypeError):
        return _MISSING


@functools.lru_cache(maxsize=4096)
def _global_names(code) -> tuple:
    """Names ``code`` (and the code objects nested in it) loads as globals -- not the
    attribute names that share ``co_names``. Cached per code object (immutable): every
    capture and every closure guard scans the functions it reaches."""
    return tuple(_scan_global_names(code))


def _scan_global_names(code) -> list:
    import dis
    names: list = []
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval not in names:
            names.append(ins.argval)
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            names += [n for n in _global_names(c) if n not in names]
    return names


def reachable(fn, args, depth: int = 2, bindings: list | None = None,
              objects: list | None = None) -> list:
    """(name, object) pairs ``fn`` can reach: its bound ``self``, itself (a module), the
    arguments, closure cells and referenced globals -- following helper functions and
    plain objects' attributes ``depth`` levels deep. With ``bindings``, also collects
    (where, object) for everything reached through a closure cell, a global, an attribute
    or an item, so a cached graph can check that those names still hold the same objects.
    With ``objects``, also collects the plain (non-module) objects whose attributes were
    followed."""
    import types
    out: list = []
    seen: set = set()

    def add(name, obj, level, where=None):
        if isinstance(obj, (int, float, str, bool, type(None))):
            # a number a global or closure variable of the code holds is baked: guard it
            # (attributes and items are not guarded: they often count steps or epochs)
            if where is not None and bindings is not None and where[0] in ("cell", "global"):
                bindings.append((where, _Value(obj)))
            return
        if isinstance(obj, (types.ModuleType, type)):
            return
        if type(obj).__module__.startswith("compiler."):
            # the compiler's own objects (a trainer's ``self.step = fw.compile(...)``): their
            # caches change on every capture, which must not look like a rebound name
            return
        if where is not None and bindings is not None:
            bindings.append((where, obj))
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if _is_container(obj):
            out.append((name, obj))
            if hasattr(obj, "named_modules"):
                held_by_module(obj, name, level)
            return
        if level >= depth:
            return
        if isinstance(obj, (types.FunctionType, types.MethodType)):
            scan(obj, name, level + 1)
        elif isinstance(obj, (list, tuple)):
            for i, x in enumerate(obj[:64]):
                add(f"{name}.{i}", x, level + 1, ("item", obj, i))
        elif isinstance(obj, dict):
            for k, x in list(obj.items())[:64]:
                add(f"{name}.{k}", x, level + 1, ("item", obj, k))
        elif hasattr(obj, "__dict__"):
            d = vars(obj)
            if objects is not None:
                objects.append(obj)
            # an lr scheduler rebinds its own lists (``_last_lr``) on every step() taken
            # outside the function: no binding guards (what a trace reads of them is
            # guarded by compiler/attr_reads.py), else each step would recompile
            quiet = _is_lr_scheduler(obj)
            for k, x in list(d.items())[:64]:
                add(f"{name}.{k}" if name else k, x, level + 1,
                    None if quiet else ("attr", d, k))

    def held_by_module(mod, name, level):
        # Optimizers and modules a module keeps as plain attributes (``self.opt =
        # Adam(...)``, ``self.layers = [Layer(...)]``) are neither parameters nor
        # submodules, but a step taken through them must be captured as state, not baked.
        for path, m in list(mod.named_modules())[:256]:
            d = vars(m)
            pre = ".".join(p for p in (name, path) if p)
            for k, x in list(d.items())[:64]:
                if k in _MODULE_TABLES:
                    continue
                sub = f"{pre}.{k}" if pre else k
                if _holds_state(x):
                    add(sub, x, level + 1, ("attr", d, k))
                elif isinstance(x, (list, tuple, dict)):
                    items = list(x.items() if isinstance(x, dict) else enumerate(x))[:64]
                    held = [(i, v) for i, v in items if _holds_state(v)]
                    if held and bindings is not None:
                        bindings.append((("attr", d, k), x))
                    for i, v in held:
                        add(f"{sub}.{i}", v, level + 2, ("item", x, i))

    def scan(f, prefix, level):
        target = getattr(f, "__self__", None)
        if target is not None:
            add(prefix if prefix else "", target, level)
        f = getattr(f, "__func__", f)
        code = getattr(f, "__code__", None)
        if code is None:
            return
        for name, cell in zip(code.co_freevars, f.__closure__ or ()):
            try:
                add(name, cell.cell_contents, level, ("cell", cell))
            except ValueError:
                continue
        glb = getattr(f, "__globals__", {})
        for name in _global_names(code):
            if name in glb:
                add(name, glb[name], level, ("global", glb, name))

    if _is_container(fn):
        add("", fn, 0)
    for i, a in enumerate(args):
        add(f"arg{i}", a, 0)
    scan(fn, "", 0)
    return out


def _optimized_tensors(fn, args, kwargs) -> dict:
    """id -> tensor for the parameters of the optimizers ``fn`` can reach."""
    return {id(p): p for opt in optimizers(fn, (args, kwargs or {}))
            for group in opt.param_groups for p in group["params"]}


def optimizers(fn, args) -> list:
    """The optimizers ``fn`` can reach (their state may be created by a first step)."""
    return [o for _, o in reachable(fn, args) if hasattr(o, "param_groups")]


def discover(fn, args) -> tuple[dict, list]:
    """id(tensor) -> (name, kind) for modules/optimizers reachable from ``fn`` and ``args``,
    and the list of leaves (parameters) whose ``.grad`` the function may change."""
    names: dict = {}
    leaves: list = []
    seen: set = set()

    def visit(obj, prefix):
        if id(obj) in seen:
            return
        if isinstance(obj, Tensor):
            seen.add(id(obj))
            names.setdefault(id(obj), (prefix, None))
            if obj.requires_grad and obj.grad_fn is None:
                leaves.append(obj)
            return
        if hasattr(obj, "named_parameters") and hasattr(obj, "named_buffers"):
            seen.add(id(obj))
            pre = f"{prefix}." if prefix else ""
            for n, p in obj.named_parameters():
                names.setdefault(id(p), (pre + n, "param"))
                leaves.append(p)
            for n, b in obj.named_buffers():
                if b is not None:
                    names.setdefault(id(b), (pre + n, "buffer"))
        elif hasattr(obj, "param_groups") and hasattr(obj, "state"):
            seen.add(id(obj))
            for gi, group in enumerate(obj.param_groups):
                for pi, p in enumerate(group["params"]):
                    pname = names.get(id(p), (f"{prefix}.p{gi}_{pi}", None))[0]
                    names.setdefault(id(p), (pname, "param"))
                    leaves.append(p)
                    for k, s in obj.state.get(p, {}).items():
                        if isinstance(s, Tensor):
                            names.setdefault(id(s), (f"{prefix}.{pname}.{k}", "buffer"))

    candidates = reachable(fn, args)
    # modules before optimizers so parameters keep their module path
    candidates.sort(key=lambda c: hasattr(c[1], "param_groups"))
    for prefix, obj in candidates:
        visit(obj, prefix)
    uniq = {id(p): p for p in leaves}
    return names, list(uniq.values())


# ---------------------------------------------------------------------------------------
def _dynamic_spec(dynamic, idx, name, t):
    """dim -> symbol name (or None for automatic naming) for one tensor input."""
    spec = {d: None for d in t.__dict__.get("_fw_dynamic", ())}
    if dynamic is True:
        spec.update({d: None for d in range(t.ndim)})
    elif isinstance(dynamic, dict):
        entry = dynamic.get(name, dynamic.get(idx))
        if isinstance(entry, dict):
            spec.update({d % max(t.ndim, 1): n for d, n in entry.items()})
        elif entry is not None:
            spec.update({d % max(t.ndim, 1): None for d in entry})
    elif isinstance(dynamic, (set, frozenset)):
        spec.update({d: None for (i, d) in dynamic if i == idx})
    return spec


def _tensor_attributes(fn, args) -> list:
    """(``vars`` of each module ``fn`` reaches, its tensor attributes now): what a forward
    hook may replace with a traced tensor (pruning's and legacy weight_norm's ``weight``)."""
    snaps, seen = [], set()
    for _, c in reachable(fn, args):
        if not (hasattr(c, "named_parameters") and hasattr(c, "modules")):
            continue
        for m in c.modules():
            if id(m) not in seen:
                seen.add(id(m))
                d = vars(m)
                # every value, not only tensors: an attribute that was None before the
                # trace set it (a cached mask) must be put back to None, not deleted
                snaps.append((d, dict(d)))
                # a buffer rebound inside the function (litgpt's KVCache: ``self.k =
                # self.k.to(k.dtype)``) lives in ``_buffers``, not in ``vars(m)``
                bufs = d.get("_buffers")
                if isinstance(bufs, dict):
                    snaps.append((bufs, dict(bufs)))
    return snaps


def _traced_attributes(snaps) -> list:
    """(dict, key, tensor) of the module attributes the trace set to a traced tensor."""
    found = []
    for d, old in snaps:
        for k, v in list(d.items()):
            if isinstance(v, Tensor) and v._data is None and v is not old.get(k):
                found.append((d, k, v))
    return found


def _restore_tensor_attributes(snaps, found) -> None:
    for d, k, _ in found:
        old = next(o for dd, o in snaps if dd is d)
        if k in old:
            d[k] = old[k]
        else:
            d.pop(k, None)


def trace(fn, args, kwargs=None, *, input_names=None, names=None, dynamic=None,
          leaves=None, specialize_floats=False, grad_sentinels=False,
          lift_free=False, attribute_outputs=False, dynamic_ints=None) -> Capture:
    """Run ``fn(*args, **kwargs)`` under a tracer and return the :class:`Capture`.

    Module attributes the trace set to traced tensors (a forward pre-hook's ``weight``)
    are put back afterwards; with ``attribute_outputs`` they also become extra graph
    outputs, listed in ``cap.attr_writes`` as (dict, key, output index), so the compiled
    call can set them as the eager call would. ``dynamic_ints``: ordinals of the int
    leaves traced as symbols (compiler/symints.py)."""
    from framework import random as fwrandom
    kwargs = kwargs or {}
    attr_snaps = _tensor_attributes(fn, (args, kwargs))
    attr_found: list = []
    attr_writes: list = []
    arg_writes: list = []
    containers = NodeArgContainers()
    passed: set = set()  # ids of the tensors passed as arguments
    graph = Graph()
    tracer = Tracer(graph, names)
    tracer.lift_free = lift_free
    sym_by_size: dict = {}
    sym_values: dict = {}
    sym_locs: dict = {}
    ints = IntArgs(tracer, graph, dynamic_ints, sym_values)
    arg_paths = []
    standins = {}
    standin_list: list = []  # (stand-in, the argument's requires_grad), in input order
    with_history: dict = {}  # standins of arguments whose autograd history is outside
    pnames = _param_names(fn)
    stepped = _optimized_tensors(fn, args, kwargs) if leaves else {}

    def standin(path, a):
        if isinstance(a, Tensor):
            passed.add(id(a))
            if id(a) in stepped:
                tracer.graph_break(
                    f"argument {_path_name(path, pnames)!r} is also a parameter of an optimizer "
                    "the function reaches: the graph would take its gradient on the argument "
                    "while the optimizer steps the parameter (pass it only one way)")
            idx = len(arg_paths)
            nm = (input_names[idx] if input_names and idx < len(input_names)
                  else _path_name(path, pnames))
            spec = _dynamic_spec(dynamic, idx, nm, a)
            shape = []
            for d, s in enumerate(a.shape):
                if d in spec and isinstance(s, int) and s > 1:
                    sname = spec[d]
                    key = sname if sname is not None else s
                    sym = sym_by_size.get(key)
                    if sym is None:
                        sym = symbol(sname if sname is not None else f"s{len(graph.symbols)}")
                        graph.symbols[sym.name] = sym
                        sym_by_size[key] = sym
                        sym_values[sym.name] = s
                    sym_locs.setdefault(sym.name, []).append((idx, d))
                    shape.append(sym)
                else:
                    shape.append(s)
            v = graph.add_input(nm, tuple(shape), a.dtype, "input", device=a.device)
            t = meta_tensor(tuple(shape), a.dtype, a.device)
            t.requires_grad = a.requires_grad
            if a.grad is not None and tuple(shape) == tuple(a.shape):
                # backward() accumulates into the argument's .grad: read as ("arg_grad", i)
                t._grad = a.grad
            tracer.fn.define_external(t, v)
            tracer.watch(t)
            tracer.keep.append(t)
            arg_paths.append(path)
            standins[id(t)] = idx
            standin_list.append((t, a.requires_grad))
            if a.requires_grad and a.grad_fn is not None:
                with_history[id(t)] = nm
            return t
        if type(a) is int:
            return ints.standin(path, a, _path_name(path, pnames))
        if isinstance(a, float) and not specialize_floats:
            return tracer.scalar_from(a, ("arg", path), _path_name(path, pnames))
        if getattr(type(a), "_fw_sparse", False):  # its parts would be baked in as constants
            tracer.graph_break("a sparse tensor argument (a sparse constant captured from a "
                               "closure is supported; sparse inputs are not)")
        return a

    # stand-ins go into the caller's own dicts/lists (put back in ``finally`` below)
    try:
        new_args = containers.rebuild(args, (0,), standin)
        new_kwargs = containers.rebuild(kwargs, (1,), standin)
    except BaseException:
        containers.restore()
        raise
    # leaves passed as arguments are traced through their stand-ins (and their .grad read
    # as the argument's: ``arg_grad``), not as captured state
    leaves = [p for p in leaves or () if id(p) not in passed]
    for p in leaves:
        tracer.watch(p)
    grad_none = [(p, p.grad is None) for p in leaves]
    sentinels = {}
    if grad_sentinels:
        # A leaf without .grad gets a zero stand-in: if nothing reads it (zero_grad ran
        # first), whether .grad was None does not matter and needs no guard.
        from framework.creation import zeros
        for p, none in grad_none:
            if none:
                s = zeros(p.shape, dtype=p.dtype, device=p.device)
                p.grad = s
                tracer.grad_owner[id(s)] = p
                sentinels[id(s)] = s
    rng = fwrandom.raw_state()
    prev = tls.tracer
    optmod = _optim_module()
    prev_hook = optmod._hyper_hook if optmod is not None else None
    if optmod is not None:
        optmod._hyper_hook = None if specialize_floats else tracer.hyper
    tls.tracer = tracer
    from . import host_random
    from .attr_reads import AttributeReads
    plain_objects: list = []
    import types  # a callable object is reached through its bound __call__ (vmap's _Flat)
    plain_fn = isinstance(fn, (types.FunctionType, types.MethodType)) or _is_container(fn)
    reachable(fn if plain_fn else fn.__call__, (args, kwargs), depth=3,
              objects=plain_objects)
    attr_reads = AttributeReads(plain_objects)
    try:
        host_rng = host_random.snapshot()
        try:
            with attr_reads, ints, host_random.locate_draws([]) as draws:
                out = fn(*new_args, **new_kwargs)
        except BaseException:
            # a graph break: the eager run that follows repeats the draws made before it
            host_random.restore(host_rng)
            raise
        host_random.check_unchanged(host_rng, getattr(fn, "__qualname__", type(fn).__name__),
                                    draws)
        tls.tracer = prev
        graph.output_requires_grad = []  # per graph output, as traced (see _out_leaf)
        out_tree = map_tree(out, lambda x: _out_leaf(tracer, graph, x), spec=True)
        attr_found = _traced_attributes(attr_snaps)
        if attribute_outputs:
            attr_writes = [(d, k, _out_leaf(tracer, graph, v).x) for d, k, v in attr_found]
            where = getattr(fn, "__qualname__", type(fn).__name__)
            arg_writes = [(path, k, _out_leaf(tracer, graph, v).x) for path, k, v in
                          containers.writes(where, lambda p: _path_name(p, pnames))]
        needs_grad = tls.grad_enabled and any(
            isinstance(x, Tensor) and x.requires_grad and not _backward_done(x)
            for _, x in flatten(out))
        if any(i in tracer.ext for i in sentinels):
            raise _SentinelReadError()
        changes = tracer.grad_changes()
        for leaf, g in changes:
            if g is not None and id(g) in sentinels:
                continue
            if g is not None and id(leaf) in with_history:
                raise _history_break(with_history[id(leaf)])
            if id(leaf) in standins:
                lv = graph.inputs[standins[id(leaf)]]
            else:
                lv = tracer.ext.get(id(leaf)) or tracer.value_of(leaf)
            graph.grad_writes.append((lv, None if g is None else tracer.value_of(g)))
        graph.mutations = tracer.fn.mutations()
        # ``x.requires_grad = True`` / ``x.requires_grad_()`` on an argument (an FGSM
        # attack's input): replayed on the caller's tensor after each compiled call
        rg_sets = [(i, t.requires_grad) for i, (t, rg) in enumerate(standin_list)
                   if t.requires_grad != rg]
    finally:
        tls.tracer = prev
        containers.restore()
        if optmod is not None:
            optmod._hyper_hook = prev_hook
        tracer.restore()
        _restore_tensor_attributes(attr_snaps, attr_found or _traced_attributes(attr_snaps))
        fwrandom.set_raw_state(rng)
    _attribute_sources(tracer, graph, attr_reads)
    graph.sources = {v.name: _source(src, standins) for v, src in tracer.sources.items()}
    hidden = hidden_tensor_reads(args, kwargs, graph)
    if hidden is not None:
        from framework.errors import GraphBreak
        raise GraphBreak(f"graph break: {hidden}")
    graph.custom_functions = tuple(tracer.custom_functions)
    scalar_exprs = [(v, e) for e, v in tracer.scalar_inputs.items()]
    graph.passes.append("capture")
    graph.sym_values = sym_values
    if sym_values:
        from .symbolic import check_assumptions
        check_assumptions(graph, sym_values)
    cap = Capture(graph, out_tree, arg_paths, sym_locs, dict(tracer.scalar_sources),
                  scalar_exprs, tracer.scalar_guards, tracer.int_guards, grad_none)
    ints.finish(cap, sym_locs)
    cap.outputs_require_grad = needs_grad
    cap.output_requires_grad = graph.output_requires_grad
    cap.attr_writes = attr_writes
    cap.arg_writes = arg_writes
    cap.requires_grad_sets = rg_sets
    cap.attr_reads = attr_reads.bindings()  # module attributes the graph baked: guards
    cap.lifted = list(tracer.lifted)
    cap.fn, cap.args, cap.kwargs = fn, args, kwargs
    cap.input_requires_grad = [get_path((args, kwargs), p).requires_grad for p in arg_paths]
    cap.grad_none = [] if grad_sentinels else [(p, True) for p, none in grad_none if none]
    known = {id(p) for p in leaves or ()}
    for leaf, _g in changes:  # leaves seen only during the trace: guard a missing .grad
        if id(leaf) not in known and id(leaf) not in standins and \
                tracer.ext_state[id(leaf)].grad is None:
            cap.grad_none.append((leaf, True))
    return cap


class _SentinelReadError(Exception):
    """A leaf's missing .grad was read: capture again with a guard on it."""


def trace_step(fn, args, kwargs=None, on_retry=None, **kw) -> Capture:
    """:func:`trace`, first with .grad stand-ins (no None-ness guards), then without them
    if the function read a missing .grad (backward without zero_grad)."""
    try:
        return trace(fn, args, kwargs, grad_sentinels=True, **kw)
    except _SentinelReadError:
        if on_retry is not None:
            on_retry()
        return trace(fn, args, kwargs, grad_sentinels=False, **kw)


def _optim_module():
    import sys
    return sys.modules.get("framework.optim.optimizer")


def _attribute_sources(tracer, graph, attr_reads) -> None:
    """A plain tensor attribute of a module (not a parameter or buffer: a cached mask) that
    the graph only reads is fetched from the attribute on every call, with a guard on its
    shape, dtype and device instead of its identity: rebinding it (a new mask for another
    sequence length, then back) does not recompile."""
    mutated = {target for target, _ in graph.mutations}
    for key, (d, name, read) in list(attr_reads.reads.items()):
        t = getattr(read, "obj", None)           # compiler.attr_reads._Same
        if t is None or t.requires_grad:
            continue
        v = tracer.ext.get(id(t))
        if v is None:  # only its metadata was read (``mask.size(0) != n``): guard that
            attr_reads.reads[key] = (d, name, _TensorMeta(t))
            continue
        src = tracer.sources.get(v)
        if src is None or src[0] != "tensor" or src[1] is not t or v in mutated:
            continue
        tracer.sources[v] = ("attr", d, name, t)
        del attr_reads.reads[key]                # no identity guard for it


def _backward_done(t) -> bool:
    """True when backward() already ran through ``t``'s graph or part of it: a training
    step's loss, or an RNN's final hidden state returned next to it (a backward from it
    would reach a freed node and fail in eager mode too, so it needs no compiled backward;
    it is returned without grad)."""
    node = t.grad_fn
    seen, todo = set(), [node] if node is not None else []
    while todo:
        node = todo.pop()
        if getattr(node, "freed", False):
            return True
        for nxt, _ in getattr(node, "next_functions", ()):
            if nxt is not None and not isinstance(nxt, Tensor) and id(nxt) not in seen:
                seen.add(id(nxt))
                todo.append(nxt)
    return False


def _history_break(name):
    from framework.errors import GraphBreak
    return GraphBreak(
        f"backward() inside the function reaches argument {name!r}, whose autograd history "
        "was recorded outside it: eager backward continues into that history (e.g. into "
        "another model's parameters), which compiled code cannot do; compute it inside the "
        "function or pass it detached")


def _source(src, standins):
    if src[0] == "grad" and id(src[1]) in standins:
        return ("arg_grad", standins[id(src[1])])
    return src


class OutLeaf:
    """A leaf of a captured function's output: graph output ``v`` i, scalar expression
    ``s``, or constant ``c``."""

    __slots__ = ("kind", "x")

    def __init__(self, kind, x):
        self.kind, self.x = kind, x


def _out_leaf(tracer, graph, x):
    if isinstance(x, Tensor):
        v = tracer.value_of(x)
        graph.outputs.append(v)
        graph.output_requires_grad.append(x.requires_grad)
        return OutLeaf("v", len(graph.outputs) - 1)
    if type(x).__name__ in ("ScalarProxy", "SymInt"):  # a runtime scalar, a symbolic int
        if type(x).__name__ == "SymInt":
            x = x.owner.as_scalar(x)  # its symbols become scalar sources (read per call)
        return OutLeaf("s", x.expr)
    check_output_leaf(x)
    return OutLeaf("c", x)


def _param_names(fn) -> list:
    import inspect
    target = fn.forward if hasattr(fn, "forward") and hasattr(fn, "named_parameters") else fn
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _path_name(path, pnames=()) -> str:
    if len(path) >= 2 and path[0] == 1:
        head = str(path[1])
    elif len(path) >= 2 and path[1] < len(pnames):
        head = pnames[path[1]]
    else:
        head = f"arg{path[1]}" if len(path) >= 2 else "arg"
    return "_".join([head] + [str(p) for p in path[2:]])


def capture_graph(fn, args, kwargs=None, *, input_names=None, param_names=None,
                  dynamic=None) -> Graph:
    """Run ``fn`` once under the tracer and return its functional Graph.

    ``param_names``: id(tensor) -> name for externals (defaults to the named parameters and
    buffers of ``fn`` when it is an nn.Module, and of modules/optimizers it references).
    ``dynamic``: True (every dim of every input), or {input name or index: {dim: "batch"}}
    / {input: [dims]} to make those dims sympy symbols (named when a name is given).
    """
    names, leaves = discover(fn, args)
    if param_names:
        for k, n in param_names.items():
            names[k] = (n, names.get(k, (None, None))[1])
    cap = trace(fn, tuple(args), kwargs, input_names=input_names, names=names,
                dynamic=dynamic, leaves=leaves, specialize_floats=True)
    return cap.graph
