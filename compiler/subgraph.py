"""Subgraphs of control-flow ops: trace Python functions into Graphs of their own.

``fw.cond`` and ``fw.while_loop`` capture each function they are given (the branches; the
loop's condition and body) with a fresh :class:`SubgraphTracer` and Graph. The operands
become the subgraph's first inputs; every tensor the function reads from outside -- module
parameters, tensors of the enclosing trace, closed-over constants -- becomes an extra input
(its name is the outer value's), so the enclosing graph passes it in explicitly and the
control-flow node lists everything its subgraphs read. The functions of one node share one
input list: the operands, then the union of what each of them reads.
"""

from __future__ import annotations

import sympy

from framework._state import tls
from framework.control_flow import flatten_tree, unflatten_tree
from framework.errors import ArgumentError, FwTypeError, GraphBreak
from framework.tensor import meta_tensor

from .ir import Graph
from .scalars import ScalarProxy
from .tracer import Tracer, _has_proxy


class SubgraphTracer(Tracer):
    """A tracer whose outside tensors all become graph inputs (recorded in ``free``)."""

    def __init__(self, graph: Graph, parent, what: str):
        super().__init__(graph)
        self.parent = parent
        self.what = what
        # a node recorded under no_grad in a trace that fw.grad differentiates keeps its mark
        self.lift_free = getattr(parent, "lift_free", False)
        self.free: list = []
        self.grads: list = []   # (free tensor, its .grad before the trace)

    def _external(self, t):
        v = self.graph.add_input(self._outer_name(t), t.shape, t.dtype, "input",
                                 device=t.device)
        self.free.append(t)
        self.grads.append((t, t.grad))
        self.fn.define_external(t, v)
        self.keep.append(t)
        return v

    def _outer_name(self, t) -> str:
        return _free_name(self.parent, t)

    def scalar(self, a):
        if isinstance(a, ScalarProxy):
            self._runtime_scalar()
        return super().scalar(a)

    def _bake_attrs(self, attrs):
        if any(_has_proxy(v) for v in attrs.values()):
            self._runtime_scalar()
        return attrs

    def _runtime_scalar(self):
        raise GraphBreak(f"graph break: {self.what}: a runtime Python float (a float "
                         "argument of the compiled function, an optimizer hyper-parameter) "
                         "is used inside a control-flow function; pass it as a tensor operand")

    def hyper(self, group, key, value):
        """An optimizer step inside a control-flow function: not captured."""
        raise GraphBreak(f"graph break: {self.what}: an optimizer step inside a "
                         "control-flow function cannot be captured")


def trace_function(what: str, name: str, fn, flat, spec, parent):
    """(graph, output structure, free tensors) of ``fn`` called on stand-ins of the
    tensors ``flat`` rebuilt into ``spec``."""
    g = Graph()
    tracer = SubgraphTracer(g, parent, what)
    standins = []
    for i, t in enumerate(flat):
        v = g.add_input(_operand_name(parent, t, i), t.shape, t.dtype, "input",
                        device=t.device)
        s = meta_tensor(t.shape, t.dtype, t.device)
        tracer.fn.define_external(s, v)
        tracer.keep.append(s)
        standins.append(s)
    prev = tls.tracer
    tls.tracer = tracer
    try:
        out = fn(*unflatten_tree(spec, iter(standins)))
    finally:
        tls.tracer = prev
    leaves: list = []
    out_spec = flatten_tree(out, leaves)
    for i, x in enumerate(leaves):
        if not hasattr(x, "_storage"):
            raise FwTypeError(f"{what}: {name} must return tensors (possibly in nested "
                              f"tuples/lists/dicts), got {type(x).__name__} at output {i}")
    g.outputs = [tracer.value_of(x) for x in leaves]
    if any(t.grad is not grad for t, grad in tracer.grads):
        for t, grad in tracer.grads:
            t.grad = grad
        raise ArgumentError(f"{what}: {name} sets the .grad of a tensor it reads (backward() "
                            "inside a control-flow function); call backward() outside")
    written = [t for t, _ in tracer.fn.mutations()]
    if written:
        i = g.inputs.index(written[0])
        which = f"operand {i}" if i < len(flat) else f"the outside tensor {written[0].name}"
        raise ArgumentError(f"{what}: {name} modifies {which} in place; control-flow "
                            "functions must not mutate their inputs or the tensors they read "
                            "(clone first)")
    g.passes.append(f"capture ({what} {name})")
    return g, out_spec, tracer.free


def trace_functions(what: str, fns, flat, spec):
    """Trace each (name, fn) of ``fns`` on the operands ``flat``; return (graphs, output
    structures, free tensors), the graphs' inputs being the operands then every free
    tensor (the union over the functions, in first-use order)."""
    parent = tls.tracer
    traced = [trace_function(what, name, fn, flat, spec, parent)
              for name, fn in fns]
    free: list = []
    for _, _, f in traced:
        for t in f:
            if not any(t is u for u in free):
                free.append(t)
    n = len(flat)
    graphs = []
    for g, _, f in traced:
        own = {id(t): v for t, v in zip(f, g.inputs[n:])}
        extra = []
        for t in free:
            v = own.get(id(t))
            if v is None:  # read by another function only: an unused input here
                v = g.add_input(_free_name(parent, t), t.shape, t.dtype, "input",
                                device=t.device)
            extra.append(v)
        g.inputs = g.inputs[:n] + extra
        g.symbols = _symbols(g)
        graphs.append(g)
    return graphs, [s for _, s, _ in traced], free


def _symbols(graph) -> dict:
    """The dynamic-size symbols the graph's inputs use (name -> symbol, sorted)."""
    syms: dict = {}
    for v in graph.inputs:
        for s in v.shape:
            if isinstance(s, sympy.Basic):
                for x in s.free_symbols:
                    syms[x.name] = x
    return dict(sorted(syms.items()))


def _free_name(parent, t) -> str:
    """The name of an outside tensor in the enclosing trace (its Value's, its module
    path), else "free"."""
    if parent is None:
        return "free"
    v = parent.fn.current(t)
    if v is not None:
        return v.name
    return parent.names.get(id(t), ("free",))[0]


def _operand_name(parent, t, i) -> str:
    v = parent.fn.current(t) if parent is not None else None
    return v.name if v is not None else f"arg{i}"


__all__ = ["SubgraphTracer", "trace_function", "trace_functions"]
