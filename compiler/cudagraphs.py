"""CUDA graphs for ``fw.compile(mode="reduce-overhead")`` on "cuda".

Each compiled entry (one signature) keeps one graph per set of concrete sizes. The first
call of a new set is a *warm-up*: the generated code runs normally, but on **static
buffers** (copies of the tensor arguments, and one-element device buffers for the runtime
scalars such as a learning rate or AdamW's bias corrections), which compiles and autotunes
every kernel the capture will launch; then the same code is captured into a
``fw.cuda.CUDAGraph``. Later calls copy the arguments into the static inputs, write the
scalars, replay the graph and return **fresh copies** of the graph's outputs and
gradients (PyTorch returns its static outputs, which the next replay overwrites; here each
result costs one device copy, and no result is ever overwritten).

What the graph reads by address -- parameters, buffers, optimizer state -- is checked on
every call: when one was replaced (``p.data = ...``, a new optimizer state) the graph is
captured again (``stats()["cudagraph_invalidations"]``). In-place updates of them (the
optimizer step inside a compiled training step) land in their own memory, which the graph
holds, so they carry over from replay to replay. Guard failures recompile as usual: the
new entry gets graphs of its own.

A compiled forward whose outputs require grad is graphed too: its compiled backward
(linked to the fresh outputs) keeps the caller's tensors, never the static buffers, and
runs without a graph. An entry runs without graphs, with one warning and the reason in
``stats()["cudagraph_skips"]``, when its capture fails (a host synchronisation, a random
op, a host copy inside the compiled code).
"""

from __future__ import annotations

import warnings

import numpy as np

GRAPH_LIMIT = 8  # graphs kept per entry (least recently used evicted beyond it)


class EntryGraphs:
    """The CUDA graphs of one compiled entry, keyed by sizes (and by the scalar values
    when those cannot be read from device memory)."""

    def __init__(self, entry, name: str, stats: dict):
        self.entry, self.name, self.stats = entry, name, stats
        self.graphs: dict = {}
        self.skip = None
        self.device_scalars = _scalars_in_kernels_only(entry.plan)

    def __call__(self, args, kwargs, tensors):
        e = self.entry
        if self.skip is not None:
            self._note_skip()
            return e.run(args, kwargs, tensors)
        inputs, consts, sizes = e.gather(tensors)
        scalars = inputs[e.n_tensor_inputs:]
        by_value = not (self.device_scalars and
                        all(isinstance(v, float) for v in scalars))
        key = (sizes, tuple(scalars) if by_value else None)
        if e.bumped and _aliased(inputs[:e.n_tensor_inputs] + consts):
            self._note_skip("arguments share memory with each other or with parameters while "
                            "the function mutates tensors", this_call=True)
            return e.run(args, kwargs, tensors)
        g = self.graphs.pop(key, None)  # re-inserted last: least recently used first
        if g is not None:
            why = g.stale(consts)
            if why is not None:
                self.stats["cudagraph_invalidations"].append(why)
                g.close()
                g = None
        if g is None:
            return self._new(key, by_value, args, kwargs, tensors, inputs, consts, sizes)
        self.graphs[key] = g
        self.stats["cudagraph_replays"] += 1
        return g.replay(args, kwargs, tensors, inputs, consts, sizes)

    def _new(self, key, by_value, args, kwargs, tensors, inputs, consts, sizes):
        while len(self.graphs) >= GRAPH_LIMIT:
            old = next(iter(self.graphs))
            self.graphs.pop(old).close()
            self.stats["cudagraph_invalidations"].append(
                f"evicted the graph for sizes {old[0]} (at most {GRAPH_LIMIT} per signature)")
        g = _Graphed(self.entry, inputs, consts, by_value)
        result = g.warm_up(args, kwargs, tensors, inputs, consts, sizes)
        try:
            g.capture(sizes)
        except Exception as exc:  # what cannot be captured: run without graphs from now on
            g.close()
            self.skip = f"{type(exc).__name__}: {exc}"
            self._note_skip()
            return result
        self.graphs[key] = g
        self.stats["cudagraph_captures"] += 1
        return result

    def _note_skip(self, reason: str | None = None, this_call: bool = False) -> None:
        """Record (once per reason) and warn that calls run without a graph."""
        reason = reason or self.skip
        if reason in self.stats["cudagraph_skips"]:
            return
        self.stats["cudagraph_skips"].append(reason)
        which = "this call runs" if this_call else "calls of this signature run"
        warnings.warn(f"fw.compile({self.name}, mode='reduce-overhead'): {which} without a "
                      f"CUDA graph: {reason}", stacklevel=4)
        if not this_call:
            for g in self.graphs.values():
                g.close()
            self.graphs.clear()


class _Graphed:
    """One captured call: static inputs, the graph, its output and gradient buffers."""

    def __init__(self, entry, inputs, consts, by_value: bool):
        from framework.backends.cuda import empty
        n = entry.n_tensor_inputs
        self.entry = entry
        self.static_in = [empty(b.shape, b.dtype, b.alloc.device) for b in inputs[:n]]
        # constants read by address (parameters, buffers, optimizer state), or copied in
        # like arguments (.grad of a parameter or argument: replaced freely between calls)
        self.copied = [i for i, src in enumerate(entry.fetch) if src[0] != "tensor"]
        self.static_const = list(consts)
        for i in self.copied:
            b = consts[i]
            self.static_const[i] = empty(b.shape, b.dtype, b.alloc.device)
        self.bound = [(i, _identity(consts[i])) for i in range(len(consts))
                      if i not in set(self.copied)]
        scalars = inputs[n:]
        self.by_value = by_value
        self.scalars = list(scalars) if by_value else \
            [empty((), np.float32) for _ in scalars]
        copied = set(self.copied)
        self.back = [(kind, i) for kind, i in entry.bumped if kind == "i" or i in copied]
        self.graph = None
        self.outs = self.grads = ()
        self._static_allocs = {id(b.alloc) for b in self.static_in} | \
            {id(self.static_const[i].alloc) for i in self.copied}

    # -- per call --------------------------------------------------------------------
    def _load(self, inputs, consts) -> None:
        """Copy this call's arguments, copied constants and scalars into the statics."""
        from framework.backends import cuda_runtime as rt
        for dst, src in zip(self.static_in, inputs):
            _copy(dst, src)
        for i in self.copied:
            _copy(self.static_const[i], consts[i])
        if not self.by_value:
            for buf, v in zip(self.scalars, inputs[self.entry.n_tensor_inputs:]):
                bits = int(np.array(v, np.float32).view(np.uint32))
                rt.memset_d32(buf.alloc, buf.offset * 4, bits, 1)

    def _store_back(self, inputs, consts) -> None:
        """Mutated arguments (and copied constants) go back into the caller's tensors."""
        for kind, i in self.back:
            if kind == "i":
                _copy(inputs[i], self.static_in[i])
            else:
                _copy(consts[i], self.static_const[i])

    def _operands(self) -> list:
        return self.static_in + self.scalars

    def warm_up(self, args, kwargs, tensors, inputs, consts, sizes):
        """Run the compiled code on the static buffers (compiling, loading and autotuning
        what the capture will launch); returns this call's result."""
        e = self.entry
        self._load(inputs, consts)
        outs, wbs, grads = e.kernel(self._operands(), self.static_const, sizes,
                                    e.buffers(sizes))
        self._store_back(inputs, consts)
        outs = [self._own(o) for o in outs]
        grads = [None if g is None else self._own(g) for g in grads]
        return e.finish(args, kwargs, tensors, inputs, consts, sizes, outs, wbs, grads)

    def _own(self, buf):
        """``buf``, or a copy when it is (a view of) a static buffer the next call
        overwrites."""
        if hasattr(buf, "alloc") and id(buf.alloc) in self._static_allocs:
            return _copy_out(buf)
        return buf

    def capture(self, sizes) -> None:
        """Capture the compiled code's device work on the static buffers into a graph."""
        from framework.cuda_graphs import CUDAGraph, graph
        e = self.entry
        g = CUDAGraph()
        with graph(g, capture_error_mode="thread_local"):
            outs, wbs, grads = e.kernel(self._operands(), self.static_const, sizes,
                                        e.buffers(sizes))
        if wbs:
            raise NotImplementedError("the compiled code returns write-backs (NumPy code)")
        self.graph, self.outs, self.grads = g, tuple(outs), tuple(grads)

    def replay(self, args, kwargs, tensors, inputs, consts, sizes):
        """Copy in, replay, copy back and out; returns this call's result."""
        self._load(inputs, consts)
        self.graph.replay()
        self._store_back(inputs, consts)
        outs = [_copy_out(o) for o in self.outs]
        grads = [None if g is None else _copy_out(g) for g in self.grads]
        return self.entry.finish(args, kwargs, tensors, inputs, consts, sizes, outs, (),
                                 grads)

    def stale(self, consts) -> str | None:
        """Why the graph no longer fits this call's constants (None when it does)."""
        names = [v.name for v in self.entry.graph.constants]
        for i, ident in self.bound:
            if _identity(consts[i]) != ident:
                return (f"{names[i]} was replaced (new memory): its graph is captured "
                        "again")
        for i in self.copied:
            if consts[i].shape != self.static_const[i].shape:
                return f"{names[i]} changed shape: its graph is captured again"
        return None

    def close(self) -> None:
        """Release the graph and the static buffers."""
        if self.graph is not None:
            self.graph.reset()
        self.graph, self.outs, self.grads = None, (), ()
        self.static_in, self.static_const, self.scalars = [], [], []


def _identity(buf) -> tuple:
    return (id(buf.alloc), buf.offset, buf.shape, buf._strides, buf.dtype)


def _aliased(bufs) -> bool:
    allocs = [id(b.alloc) for b in bufs if hasattr(b, "alloc")]
    return len(set(allocs)) != len(allocs)


def _copy(dst, src) -> None:
    """``dst[...] = src`` on the device: a byte copy when both are dense alike, else the
    copy kernel."""
    if dst is src:
        return
    from framework.backends import cuda_runtime as rt
    from framework.backends.cuda import copy_into
    if dst.shape == src.shape and dst.dtype == src.dtype and dst.is_contiguous() and \
            src.is_contiguous():
        if dst.nbytes:
            rt.copy_d2d(dst.alloc, dst.offset * dst.itemsize, src.alloc,
                        src.offset * src.itemsize, dst.nbytes)
        return
    copy_into(dst, src)


def _copy_out(buf):
    """A fresh dense copy of a graph buffer (other results pass through)."""
    if not hasattr(buf, "alloc"):
        return buf
    from framework.backends.cuda import empty
    out = empty(buf.shape, buf.dtype, buf.alloc.device)
    _copy(out, buf)
    return out


def _scalars_in_kernels_only(plan) -> bool:
    """True when every runtime scalar of the plan is read only by generated kernels (which
    can load it from a device buffer); else the graphs bake the values and are keyed by
    them."""
    from .codegen.triton_group import _KernelStep, _MatmulStep
    graph = getattr(plan, "graph", None)
    if graph is None:
        return False
    ids = {id(v) for v in graph.inputs if v.kind == "scalar_input"}
    if not ids:
        return True
    for step in plan.steps:
        if isinstance(step, _KernelStep):
            continue
        if isinstance(step, _MatmulStep):
            nodes = [step.node] + ([step.bias_add[0]] if step.bias_add else [])
        elif hasattr(step, "node"):
            nodes = [step.node]
        else:
            return False
        if any(id(x) in ids for n in nodes for x in n.inputs):
            return False
    ends = list(graph.outputs) + [v for _, v in graph.grad_writes] + \
        [v for _, v in graph.mutations]
    return not any(id(v) in ids for v in ends)
