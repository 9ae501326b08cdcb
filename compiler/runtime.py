"""The compiled function: guard-checked cache of captured, generated callables.

``CompiledFunction(fn)`` captures ``fn`` on the first call with a new signature, runs the
pass pipeline, generates NumPy code and caches it under the signature's static key (see
:mod:`compiler.guards`). Later calls with that signature skip the framework entirely:
arrays in, arrays out, write-backs and ``.grad`` assignments, done.
"""

from __future__ import annotations

import os
import time
import warnings
import weakref

import numpy as np

from framework._state import tls
from framework.autograd.forward_ad import has_tangents as _dual_inputs
from framework.errors import FrameworkError, GraphBreak
from framework.ops import registry as _fw_registry
from framework.tensor import Tensor

from . import log
from .arg_writes import replay as replay_arg_writes
from .capture import OutLeaf, _is_lr_scheduler, discover, get_path, map_tree, trace_step
from .guards import EntryGuards, describe_difference, size_changes, static_key
from .pytree_nodes import drop_argument_bindings
from .symints import all_ints, make_static, trace_with_fallbacks

RECOMPILE_LIMIT = 8
# fw.compiler.set_stance: "default", or "force_eager" (every call eager), or, on a cache miss,
# "eager_on_recompile" (run eagerly, capture nothing) / "fail_on_recompile" (raise)
STANCE = "default"
SUPPRESS_ERRORS = True  # fw._dynamo.config.suppress_errors: a compiler error runs eagerly
# backends that capture (guards, recompiles, graph breaks, fullgraph) but run the function
# eagerly, as PyTorch's debugging backends run the captured graph with eager kernels
EAGER_BACKENDS = ("eager", "aot_eager")
ALTERNATES = 3  # older entries kept per signature (tried when the current one's guards fail)
TIMING_CALLS = 3


class Entry:
    """One compiled specialization."""

    def __init__(self, cap, graph, kernel, source, plan, guards, tensor_names):
        self.cap = cap
        self.graph = graph
        self.kernel = kernel
        self.source = source
        self.plan = plan
        self.guards = guards
        self.tensor_names = tensor_names
        self.bufs: dict = {}
        self.decision = None
        self.times = {"compiled": [], "eager": []}
        consts = list(graph.constants.items())
        self.fetch = [graph.sources.get(v.name, ("tensor", t)) for v, t in consts]
        pos = {v: i for i, (v, _) in enumerate(consts)}
        ipos = {v: i for i, v in enumerate(graph.inputs)}
        self.writebacks = []   # (kind, index) of targets the kernel returns values for
        self.bumped = []       # every mutated tensor (version counters)
        for t, v in graph.mutations:
            where = ("c", pos[t]) if t in pos else ("i", ipos[t])
            self.bumped.append(where)
            if plan.into_target.get(v) is not t:
                self.writebacks.append(where)
        self.grad_leaves = []
        for leaf, _ in graph.grad_writes:
            if leaf in pos:
                src = self.fetch[pos[leaf]]
                self.grad_leaves.append(("c", src[1]))
            else:
                self.grad_leaves.append(("i", ipos[leaf]))
        self.out_meta = [(o.dtype, o.device) for o in graph.outputs]
        self.grad_meta = [(v.dtype, v.device) if v is not None else None
                          for _, v in graph.grad_writes]
        self.sym_locs = [(locs[0]) for locs in cap.sym_locs.values()]
        self.sym_names = list(cap.sym_locs) + [n for n, _, _ in cap.int_syms]
        self.n_tensor_inputs = len(cap.arg_paths)
        self.backward = None
        self.param_tensors = []
        self.graphs = None  # compiler.cudagraphs.EntryGraphs under mode="reduce-overhead"

    def run(self, args, kwargs, tensors):
        """Call the generated kernel and apply write-backs; return the output structure."""
        inputs, consts, sizes = self.gather(tensors)
        outs, wbs, grads = self.kernel(inputs, consts, sizes, self.buffers(sizes))
        return self.finish(args, kwargs, tensors, inputs, consts, sizes, outs, wbs, grads)

    def gather(self, tensors):
        """The kernel's operands for this call: ``(inputs, constants, sizes)`` (inputs:
        the tensor arguments' buffers, then the runtime scalars)."""
        inputs = [t._data for t in tensors]
        if self.guards._scalar_fn is not None:
            inputs += self.guards.last_scalars
        consts = []
        for src in self.fetch:
            kind = src[0]
            if kind == "tensor":
                consts.append(src[1]._data)
            elif kind == "attr":  # a module's plain tensor attribute, read now
                consts.append(src[1][src[2]]._data)
            elif kind == "grad":
                consts.append(src[1].grad._data)
            else:
                consts.append(tensors[src[1]].grad._data)
        sizes = tuple(tensors[i].shape[d] for i, d in self.sym_locs) \
            if not self.cap.int_syms else self.guards.last_sizes  # with the int arguments'
        return inputs, consts, sizes

    def buffers(self, sizes):
        """The planned scratch buffers for these sizes (NumPy code)."""
        bufs = self.bufs.get(sizes)
        if bufs is None:
            from .codegen.numpy import buffers_for
            bufs = buffers_for(self.bufs, self.plan, self.sym_names, sizes)
        return bufs

    def finish(self, args, kwargs, tensors, inputs, consts, sizes, outs, wbs, grads):
        """Apply the kernel's write-backs, versions and ``.grad`` assignments; return the
        output structure."""
        for (kind, i), val in zip(self.writebacks, wbs):
            target = consts[i] if kind == "c" else inputs[i]
            if type(target) is np.ndarray:
                np.copyto(target, val, casting="unsafe")
            else:  # a device buffer
                from framework.backends import get_backend
                t = self.fetch[i][1] if kind == "c" else tensors[i]
                get_backend(t.device).copy_into(target, val)
        for kind, i in self.bumped:
            t = self.fetch[i][1] if kind == "c" else tensors[i]
            if isinstance(t, Tensor):
                t._storage.version += 1
        for i, flag in self.cap.requires_grad_sets:  # ``x.requires_grad = True`` inside
            tensors[i].requires_grad = flag
        for (kind, ref), g, meta in zip(self.grad_leaves, grads, self.grad_meta):
            leaf = ref if kind == "c" else tensors[ref]
            leaf.grad = None if g is None else Tensor._wrap(as_buffer(g), meta[0], meta[1])
        results = [Tensor._wrap(as_buffer(o), dt, dev) for o, (dt, dev) in
                   zip(outs, self.out_meta)]
        if self.backward is not None and tls.grad_enabled:
            from .differentiable import link
            link(self, results, tensors, self.param_tensors,
                 inputs[:self.n_tensor_inputs], sizes, inputs[self.n_tensor_inputs:])
        for d, k, i in self.cap.attr_writes:  # module attributes a forward hook sets
            d[k] = results[i]
        if self.cap.arg_writes:  # ``cache[k] = t`` into a dict the caller passed
            replay_arg_writes(self.cap.arg_writes, results, args, kwargs)
        if self.cap.hyper_writes:  # ``group['lr'] = lr`` inside the function
            _replay_hyper_writes(self.cap, args, kwargs)
        tree = self.cap.out_tree
        if type(tree) is OutLeaf and tree.kind == "v":
            return results[tree.x]
        return map_tree(tree, lambda leaf: _leaf(leaf, results, args, kwargs, self))


def _leaf_names(fn, args, kwargs) -> list:
    """The names of a call's argument leaves (``batch_x``), for recompile reasons."""
    from .capture import _param_names, _path_name, flatten
    pnames = _param_names(fn)
    return [_path_name(p, pnames) for p, _ in flatten((args, kwargs))]


def as_buffer(x):
    """A kernel result as a tensor buffer: device buffers as they are, else a NumPy array."""
    return x if hasattr(x, "data_ptr") else np.asarray(x)


def _leaf(leaf, results, args, kwargs, entry):
    kind, x = leaf.kind, leaf.x
    if kind == "v":
        return results[x]
    if kind == "s":
        from .guards import read_source
        env = {s: float(read_source(src, args, kwargs))
               for s, src in entry.cap.scalar_sources.items()}
        return int(x.subs(env)) if x.is_integer else float(x.subs(env))  # a symbolic int
    return x


def _replay_hyper_writes(cap, args, kwargs) -> None:
    """Set the optimizer hyper-parameters the function assigns, from this call's scalars
    (all read before any is written, as the trace read them)."""
    fn = getattr(cap, "hyper_fn", None)
    if fn is None:
        fn = cap.hyper_fn = _make_hyper_fn(cap)
    for (group, key, _), value in zip(cap.hyper_writes, fn(args, kwargs)):
        group[key] = value


def _make_hyper_fn(cap):
    """A generated function (args, kwargs) -> the assigned hyper-parameter values (plain
    Python: sympy's ``subs`` on every training step would cost more than the step)."""
    import math

    from .guards import read_source
    from .scalars import expr_source
    glb = {"_read": read_source, "_math": math, "inf": math.inf, "nan": math.nan}
    lines = ["def hyper(args, kwargs):"]
    for i, (sym, src) in enumerate(cap.scalar_sources.items()):
        glb[f"_src{i}"] = src
        lines.append(f"    {sym.name} = float(_read(_src{i}, args, kwargs))")
    values = ", ".join(f"float({expr_source(e)})" for _, _, e in cap.hyper_writes)
    lines.append(f"    return [{values}]")
    exec(compile("\n".join(lines), "<fw-hyper-writes>", "exec"), glb)
    return glb["hyper"]


_LIVE: weakref.WeakSet = weakref.WeakSet()  # for fw.compiler.reset()


class RecompileError(FrameworkError, RuntimeError):
    """A recompile under ``fw.compiler.set_stance("fail_on_recompile")``."""


def live_compiled_functions() -> list:
    """Every CompiledFunction still alive."""
    return list(_LIVE)


class CompiledFunction:
    """What ``fw.compile(fn)`` returns (see :func:`framework.compile`)."""

    def __init__(self, fn, *, backend="auto", dynamic=None, fullgraph=False, mode=None):
        self.fn = fn
        self.backend = backend
        self.dynamic = dynamic
        self.fullgraph = fullgraph
        self.mode = mode
        self.reset()
        _LIVE.add(self)
        try:
            self.__name__ = getattr(fn, "__name__", type(fn).__name__)
            self.__doc__ = fn.__doc__
            self.__wrapped__ = fn
        except AttributeError:
            pass

    def reset(self) -> None:
        """Forget the graphs and what recompiles learned (``fw.compiler.reset``)."""
        self.cache: dict = {}
        self.alternates: dict = {}  # key -> older entries whose guards may hold again
        self.dyn: set = set()  # (tensor index, dim) and ("int", ordinal): dynamic
        self.static_ints: set = set()  # int ordinals a capture had to specialize
        self.marks: set = set()
        self.eager_reason = None
        self.last_key = None
        self._stats = {"calls": 0, "captures": 0, "cache_hits": 0, "recompiles": [],
                       "eager_calls": 0, "graph_breaks": [], "decisions": [],
                       "compile_time_s": [], "cudagraph_captures": 0, "cudagraph_replays": 0,
                       "cudagraph_invalidations": [], "cudagraph_skips": []}
        self._limit_warned = False

    # -- public ------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if tls.tracer is not None:  # called while an outer capture traces: inline
            return self.fn(*args, **kwargs)
        st = self._stats
        st["calls"] += 1
        if _fw_registry._forward_ad_hook is not None and _dual_inputs(args, kwargs):
            return self._eager_for_duals(args, kwargs)
        if self.eager_reason is not None or STANCE == "force_eager":
            st["eager_calls"] += 1
            return self.fn(*args, **kwargs)
        key, tensors = static_key(args, kwargs, self.dyn, self.marks)
        entry = self.cache.get(key)
        if entry is not None:
            why = entry.guards.check(args, kwargs, tensors)
            if why is not None:
                entry = self._alternate(key, args, kwargs, tensors)
        else:
            why = None
        if entry is None and STANCE != "default":
            return self._miss_under_stance(why, args, kwargs)
        if entry is None:
            entry = self._miss(key, why, args, kwargs)
            if entry is None:
                st["eager_calls"] += 1
                return self.fn(*args, **kwargs)
            key, tensors = static_key(args, kwargs, self.dyn, self.marks)
            if entry.guards.check(args, kwargs, tensors) is not None:
                # the capture does not describe this very call (a trace that changed what
                # its guards read): run it eagerly, the next call uses or replaces the entry
                st["eager_calls"] += 1
                return self.fn(*args, **kwargs)
        else:
            st["cache_hits"] += 1
        if entry.decision == "compiled":
            if entry.graphs is not None:
                return entry.graphs(args, kwargs, tensors)
            return entry.run(args, kwargs, tensors)
        if entry.decision == "eager":
            st["eager_calls"] += 1
            return self.fn(*args, **kwargs)
        return self._timed(entry, args, kwargs, tensors)

    def _miss_under_stance(self, why, args, kwargs):
        """A call no cached entry serves while ``fw.compiler.set_stance`` forbids capturing:
        run it eagerly ("eager_on_recompile") or raise ("fail_on_recompile")."""
        if STANCE == "fail_on_recompile":
            raise RecompileError(f"fw.compile({self.__name__}): detected a recompile while "
                                 "the compiler stance is 'fail_on_recompile' ("
                                 f"{why or 'no compiled entry for these arguments yet'})")
        self._stats["eager_calls"] += 1
        return self.fn(*args, **kwargs)

    def _alternate(self, key, args, kwargs, tensors):
        """An older entry of this signature whose guards hold now (a module's cached mask
        set back to an earlier length): it becomes the current entry, with no recompile."""
        olds = self.alternates.get(key, ())
        for i, e in enumerate(olds):
            if e.guards.check(args, kwargs, tensors) is None:
                olds[i] = self.cache[key]
                self.cache[key] = e
                return e
        return None

    def _eager_for_duals(self, args, kwargs):
        """A capture replaces tensors by placeholders, which would drop the tangents of
        dual tensors (forward AD): such a call runs eagerly (a graph break)."""
        msg = "dual tensors (forward-mode AD tangents) as inputs cannot be captured"
        if self.fullgraph:
            raise GraphBreak(f"fw.compile({self.__name__}): {msg}")
        self._stats["eager_calls"] += 1
        self._stats["graph_breaks"].append(msg)
        warnings.warn(f"fw.compile({self.__name__}): {msg}; running eagerly", stacklevel=3)
        return self.fn(*args, **kwargs)

    def stats(self) -> dict:
        """Captures, cache hits, recompiles (with the failing guard), decisions, times."""
        s = dict(self._stats)
        for k in ("recompiles", "cudagraph_invalidations", "cudagraph_skips"):
            s[k] = list(s[k])
        s["num_recompiles"] = len(s["recompiles"])
        s["eager_reason"] = self.eager_reason
        s["entries"] = len(self.cache)
        return s

    def graph(self, *args, **kwargs):
        """The (optimized) Graph this function runs for these arguments."""
        return self._entry_for(args, kwargs).graph

    def code(self, *args, **kwargs) -> str:
        """The generated NumPy source for these arguments."""
        return self._entry_for(args, kwargs).source

    kernels = code

    # -- internals ---------------------------------------------------------------------
    def _entry_for(self, args, kwargs):
        key, tensors = static_key(args, kwargs, self.dyn, self.marks)
        entry = self.cache.get(key)
        if entry is None or entry.guards.check(args, kwargs, tensors) is not None:
            entry = self._build(args, kwargs, store=False)
            if entry is None:
                raise GraphBreak(f"{self.__name__}: cannot be captured "
                                 f"({self.eager_reason or 'see warnings'})")
        return entry

    def _miss(self, key, why, args, kwargs):
        st = self._stats
        if self.marks - self.dyn:
            self.dyn |= self.marks
        if self.dynamic is True and not self.dyn:
            _, tensors = static_key(args, kwargs, set(), set())
            self.dyn |= {(i, d) for i, t in enumerate(tensors) for d in range(t.ndim)}
            self.dyn |= all_ints(args, kwargs) - {("int", k) for k in self.static_ints}
        if self.cache and why is None:
            prev = self.last_key if self.last_key in self.cache else next(iter(self.cache))
            names = self.cache[prev].tensor_names
            why = describe_difference(prev, key, names, _leaf_names(self.fn, args, kwargs))
            changed = size_changes(prev, key, self.static_ints)
            if changed and self.dynamic is not False:
                self.dyn |= set(changed)
                why += " -> dynamic"
        if self.cache or why is not None:
            if len(st["recompiles"]) >= RECOMPILE_LIMIT:
                if not self._limit_warned:
                    self._limit_warned = True
                    warnings.warn(f"fw.compile({self.__name__}): recompile limit "
                                  f"({RECOMPILE_LIMIT}) reached; last failing guard: {why}. "
                                  "Running eagerly for new signatures.", stacklevel=3)
                return None
            st["recompiles"].append(why)
            log.emit("recompiles", f"recompiling {self.__name__}: {why}")
        return self._build(args, kwargs, store=True)

    def _build(self, args, kwargs, store):
        st = self._stats
        t0 = time.perf_counter()
        names, leaves = discover(self.fn, args)
        opt_state = _snapshot_optimizers(self.fn, args)
        py_state = _snapshot_attributes(self.fn, args)
        try:
            cap = self._trace_specializing(args, kwargs, names, leaves, opt_state)
            created = _restore_optimizers(opt_state, replay=cap.hyper_writes)
            _restore_attributes(py_state)
        except GraphBreak as e:
            try:
                _restore_optimizers(opt_state)
            except GraphBreak:
                pass
            _restore_attributes(py_state, check=False)
            if self.fullgraph:
                raise
            self.eager_reason = str(e)
            st["graph_breaks"].append(str(e))
            warnings.warn(f"fw.compile({self.__name__}): {e}; running eagerly", stacklevel=4)
            return None
        except Exception as e:
            # The function (or the compiler) failed while capturing. Running it eagerly
            # re-raises a genuine error of the function; anything else is a compiler
            # limitation reported once. FW_COMPILE_STRICT=1 (the compiler tests) raises.
            try:
                _restore_optimizers(opt_state)
            except GraphBreak:
                pass
            _restore_attributes(py_state, check=False)
            if self.fullgraph or os.environ.get("FW_COMPILE_STRICT") == "1" or \
                    getattr(e, "compile_raises", False):  # fw.library: a missing fake
                raise
            self.eager_reason = f"capture failed: {type(e).__name__}: {e}"
            warnings.warn(f"fw.compile({self.__name__}): {self.eager_reason}; running eagerly",
                          stacklevel=4)
            return None
        if created:
            # optimizer state was created during the trace: let one eager call create it
            st["decisions"].append({"decision": "eager warm-up",
                                    "reason": "optimizer state is created on this call"})
            return None
        st["captures"] += 1
        needs_grad = _outputs_need_grad(cap)
        if needs_grad and store:
            from .differentiable import unsupported_reason
            why = unsupported_reason(cap.graph)
            if why is not None:
                msg = f"outputs require grad and {why} is not supported: running eagerly"
                if self.fullgraph:
                    raise NotImplementedError(f"fw.compile({self.__name__}): {msg}")
                self.eager_reason = msg
                st["graph_breaks"].append(msg)
                warnings.warn(f"fw.compile({self.__name__}): {msg}", stacklevel=4)
                return None
        try:
            entry = build_entry(cap, leaves, with_backward=needs_grad,
                                backend="numpy" if self.backend in EAGER_BACKENDS else
                                self.backend)
        except Exception as e:  # a compiler limitation: run this function eagerly
            if make_static(self, cap.int_ordinals, f"code generation failed ({e})"):
                return self._build(args, kwargs, store)  # (GPU codegen: a symbolic key)
            strict = not SUPPRESS_ERRORS or os.environ.get("FW_COMPILE_STRICT") == "1"
            if self.fullgraph or (strict and not isinstance(e, NotImplementedError)):
                raise
            self.eager_reason = f"{type(e).__name__}: {e}"
            warnings.warn(f"fw.compile({self.__name__}): {e}; running eagerly", stacklevel=4)
            return None
        st["compile_time_s"].append(time.perf_counter() - t0)
        if self.mode in ("always", "max-autotune") or \
                os.environ.get("FW_COMPILE_MODE") == "always":
            entry.decision = "compiled"
        if self.backend in EAGER_BACKENDS:
            entry.decision = "eager"
        if self.mode == "reduce-overhead" and _device_type(entry.graph) == "cuda":
            from .cudagraphs import EntryGraphs  # CPU: the default mode's behaviour
            entry.decision = "compiled"
            entry.graphs = EntryGraphs(entry, self.__name__, st)
        if store:
            key, _ = static_key(args, kwargs, self.dyn, self.marks)
            if key in self.cache:  # its guards failed: keep it, they may hold again
                olds = self.alternates.setdefault(key, [])
                olds.insert(0, self.cache[key])
                del olds[ALTERNATES:]
            self.cache[key] = entry
            self.last_key = key
        return entry

    def _trace_specializing(self, args, kwargs, names, leaves, opt_state):
        """Trace with the current dynamic dims and ints; when the program constrains a
        symbolic dim (a shape check against a parameter), retry with fewer symbols: the
        ints static, batch dims only, then none (see compiler/symints.py)."""
        def attempt(dims, ints):
            return trace_step(self.fn, args, kwargs, names=names, leaves=leaves,
                              on_retry=lambda: _restore_optimizers(opt_state, replay=[]),
                              dynamic=dims or None, attribute_outputs=True, dynamic_ints=ints)
        return trace_with_fallbacks(self, attempt,
                                    lambda: _restore_optimizers(opt_state, replay=[]))

    def _timed(self, entry, args, kwargs, tensors):
        times = entry.times
        which = "compiled" if len(times["compiled"]) <= len(times["eager"]) else "eager"
        t0 = time.process_time()  # CPU time: robust to other processes on a busy machine
        if which == "compiled":
            out = entry.run(args, kwargs, tensors)
        else:
            self._stats["eager_calls"] += 1
            out = self.fn(*args, **kwargs)
        times[which].append(time.process_time() - t0)
        if len(times["eager"]) >= TIMING_CALLS and len(times["compiled"]) >= TIMING_CALLS:
            c, e = min(times["compiled"][1:]), min(times["eager"])
            entry.decision = "compiled" if c <= e else "eager"
            self._stats["decisions"].append({"decision": entry.decision, "compiled_s": c,
                                             "eager_s": e})
        return out


def build_entry(cap, leaves, with_backward=False, backend="auto"):
    """Passes, fusion, code generation for one capture."""
    from .passes import fuse, run_pipeline
    n_user = len(cap.graph.outputs)
    if with_backward:  # the forward also returns its random draws, for the backward
        from .differentiable import random_outputs
        cap.graph.outputs = cap.graph.outputs + random_outputs(cap.graph)
    graph = run_pipeline(cap.graph)
    log.emit("graph", str(graph))
    groups = fuse.run(graph)
    log.emit("fusion", fuse.describe(groups))
    kernel, source, plan = generate_kernel(graph, groups, backend)
    log.emit("code", source)
    from .capture import reachable
    bindings: list = []
    containers = [o for _, o in reachable(cap.fn, cap.args, bindings=bindings)
                  if not isinstance(o, Tensor)]
    # items of the dicts/lists (and attributes of the dataclasses and registered pytree
    # nodes) passed as arguments are checked by the static key on every call; a binding
    # would check the first call's container instead (which a replayed ``cache[k] = t``
    # changes on every call)
    bindings = drop_argument_bindings(bindings + cap.attr_reads, (cap.args, cap.kwargs))
    cap.args = cap.kwargs = None  # do not keep the first call's arguments alive
    guards = EntryGuards(cap, cap.grad_none, containers, bindings)
    names = [v.name for v in graph.inputs if v.kind == "input"]
    entry = Entry(cap, graph, kernel, source, plan, guards, names)
    if with_backward:
        from .differentiable import plan_backward
        entry.backward = plan_backward(cap, graph, backend, n_user)
        entry.param_tensors = [t for v, t in graph.constants.items()
                               if v in entry.backward.diff_consts]
        log.emit("code", entry.backward.source)
    return entry


def generate_kernel(graph, groups, backend="auto"):
    """(kernel, source, plan) for ``graph``: NumPy code on the CPU; on CUDA the GPU
    renderer (compiler/codegen/triton_group.py, same contract)."""
    from .codegen.numpy import can_write_out, compile_graph
    from .passes.memory_plan import plan as make_plan
    dev = _device_type(graph)
    if backend == "numpy" and dev != "cpu":
        raise NotImplementedError(f"fw.compile(backend='numpy'): the graph is on {dev}; "
                                  "use backend='auto'")
    if backend == "triton" and dev == "cpu":
        raise NotImplementedError("fw.compile(backend='triton') compiles CUDA graphs; this "
                                  "graph is on the CPU (use backend='auto')")
    if dev != "cpu":
        try:
            from .codegen import triton_group
        except ImportError as e:
            raise NotImplementedError("fw.compile: graphs on CUDA tensors need "
                                      "compiler/codegen/triton_group.py") from e
        return triton_group.compile_graph(graph, groups)
    graph.plan = make_plan(graph, can_write_out)
    return compile_graph(graph, groups)


def _device_type(graph) -> str:
    for v in graph.values():
        if v.device is not None and v.device.type not in ("cpu", "meta"):
            return v.device.type
    return "cpu"


def _outputs_need_grad(cap) -> bool:
    from framework._state import tls
    if not tls.grad_enabled:
        return False
    return bool(getattr(cap, "outputs_require_grad", False))


def _snapshot_optimizers(fn, args):
    snaps = []
    from .capture import optimizers
    for obj in optimizers(fn, args):
        groups = [{k: v for k, v in g.items() if k != "params"} for g in obj.param_groups]
        snaps.append((obj, {p: set(s) for p, s in obj.state.items()}, groups))
    return snaps


def _restore_optimizers(snaps, replay=None) -> bool:
    """Undo what a trace did to optimizers: drop state entries it created (returns True
    if there were any) and put back hyper-parameters it changed. A hyper-parameter set to
    a runtime scalar of the trace (``group['lr'] = lr``, ``lr`` an argument) is appended
    to ``replay`` as ``(group, key, sympy expr)`` for the compiled code to redo each call;
    any other change raises GraphBreak (a scheduler stepped inside the function would
    only run at capture time)."""
    changed = False
    moved = []
    for opt, before, groups in snaps:
        for p in list(opt.state):
            if p not in before:
                del opt.state[p]
                changed = True
            else:
                for k in list(opt.state[p]):
                    if k not in before[p]:
                        del opt.state[p][k]
                        changed = True
        for g, old in zip(opt.param_groups, groups):
            for k, v in old.items():
                if g.get(k) is not v:
                    if replay is not None and _replayable(g.get(k)):
                        replay.append((g, k, g[k].expr))
                    else:
                        moved.append(k)
                    g[k] = v
    if moved:
        raise GraphBreak(f"optimizer hyper-parameters {sorted(set(moved))} were changed inside "
                         "the compiled function (lr_scheduler.step() inside it?); Python-side "
                         "updates only run at capture time: call the scheduler outside")
    return changed


def _replayable(value) -> bool:
    """A value the compiled code can recompute on each call: a runtime scalar of the
    trace (its later reads inside the trace used the same expression). A plain number is
    not: a hyper-parameter read after it would read the group at call time instead."""
    from .scalars import ScalarProxy
    return isinstance(value, ScalarProxy) and getattr(value.owner, "scalar_sources", None) \
        is not None and value.expr.free_symbols <= set(value.owner.scalar_sources)


_SCALARS = (int, float, str, bool, type(None))


def _snapshot_attributes(fn, args):
    """The Python-number/string attributes of the user's plain objects ``fn`` reaches (a
    trainer's ``self.step`` counter): a trace that changes one would bake the change into
    capture time only."""
    objects: list = []
    from .capture import reachable
    for _, o in reachable(fn, args, objects=objects):
        if hasattr(o, "named_parameters") and hasattr(o, "modules"):
            objects += list(o.modules())     # a user module's own counters too
    snaps, seen = [], set()
    for obj in objects:
        scheduler = _is_lr_scheduler(obj)
        if id(obj) in seen or not scheduler and \
                type(obj).__module__.split(".")[0] in ("framework", "compiler"):
            continue
        seen.add(id(obj))
        d = vars(obj)
        if scheduler:
            # lr_scheduler.step() in the function: its counters (and last lrs) move even
            # where the lr does not (StepLR between milestones); SequentialLR's children too
            objects += [s for s in getattr(obj, "_schedulers", ()) if id(s) not in seen]
            snaps.append((obj, d, {k: list(v) if type(v) is list else v for k, v in d.items()
                                   if type(v) in _SCALARS or _scalar_list(v)}))
            continue
        snaps.append((obj, d, {k: v for k, v in d.items()
                               if type(v) in _SCALARS and k != "training"}))
    return snaps


def _scalar_list(v) -> bool:
    return type(v) is list and all(type(x) in _SCALARS for x in v)


def _restore_attributes(snaps, check: bool = True) -> None:
    """Put back the attributes a trace changed; with ``check``, raise GraphBreak naming
    them (the function then runs eagerly, so the change happens on every call)."""
    moved, scheduler_moved = [], False
    for obj, d, old in snaps:
        for k, v in old.items():
            if k not in d or d[k] is not v and not (type(d[k]) is type(v) and d[k] == v):
                moved.append(f"{type(obj).__name__}.{k}")
                scheduler_moved = scheduler_moved or _is_lr_scheduler(obj)
                d[k] = v
    if moved and check:
        hint = ("call lr_scheduler.step() outside the compiled function" if scheduler_moved
                else "keep counters outside the compiled function, or in a tensor")
        raise GraphBreak(f"Python attributes {sorted(set(moved))} were changed inside the "
                         f"compiled function; such updates would only run at capture time "
                         f"({hint})")


__all__ = ["CompiledFunction", "get_path"]
