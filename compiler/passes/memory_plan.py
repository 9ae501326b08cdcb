"""Memory plan: which node outputs are computed into reusable, preallocated buffers.

A value can live in a planned buffer when its op can write into ``out=`` (the codegen's
``OUT_OPS``) and it does not escape the call (graph outputs, new ``.grad`` tensors and
views of those are fresh arrays each call). Buffers are recycled by liveness: a buffer
whose last reader (through any view of it) has run is free for a later value of the same
shape and dtype; an elementwise op may take over the buffer of an input that dies at that
very op (in place). A write-back ``target <- value`` whose value is the last thing written
to the target is computed straight into the target's memory when the old contents are no
longer read, so the update needs no copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from framework.ops.registry import ELEMENTWISE

from ..ir import Graph, Value


@dataclass
class Plan:
    """Value -> buffer slot; slot -> (shape, dtype); value -> external written in place."""

    slot: dict = field(default_factory=dict)
    slots: list = field(default_factory=list)
    into_target: dict = field(default_factory=dict)   # value -> mutation target Value
    escaping: set = field(default_factory=set)


def _root(v: Value) -> Value:
    while v.producer is not None and v.producer.op.is_view:
        v = v.producer.inputs[0]
    return v


def plan(graph: Graph, out_ops) -> Plan:
    """Compute the buffer plan of ``graph`` (``out_ops(node)`` says if a node can write
    into ``out=``)."""
    p = Plan()
    order = {n: i for i, n in enumerate(graph.nodes)}
    end = len(graph.nodes)
    last: dict = {}  # root value -> index of its last read
    for i, n in enumerate(graph.nodes):
        for x in n.inputs:
            if isinstance(x, Value):
                last[_root(x)] = i
    for o in graph.outputs:
        if isinstance(o, Value):
            p.escaping.add(_root(o))
    for _t, v in graph.grad_writes:
        if v is not None:
            p.escaping.add(_root(v))
    for t, v in graph.mutations:
        last[_root(v)] = end
        last[_root(t)] = max(last.get(_root(t), -1), end if t.kind == "input" else -1)

    # write-backs computed in place into the target
    for t, v in graph.mutations:
        n = v.producer
        if (n is None or n.op.is_view or not out_ops(n) or _root(v) in p.escaping
                or v.shape != t.shape or v.dtype is not t.dtype or t.kind == "input"):
            continue
        if last.get(t, -1) > order[n] or any(_root(x) is t for x in n.inputs
                                              if isinstance(x, Value)
                                              and n.op.group not in ELEMENTWISE):
            continue
        if any(_root(x) is t and x is not t for x in n.inputs if isinstance(x, Value)):
            continue  # a strided view of the target as input: overlap is not exact
        p.into_target[v] = t

    free: dict = {}
    dying: dict = {}
    for v, i in last.items():
        dying.setdefault(i, []).append(v)
    for i, n in enumerate(graph.nodes):
        released = [v for v in dying.get(i, ()) if v in p.slot]
        if n.op.group in ELEMENTWISE and n.op.name != "where":  # exact overlap is fine
            ins = [x for x in n.inputs if isinstance(x, Value)]
            early = [v for v in released
                     if all(x is v for x in ins if _root(x) is v)]
            for v in early:
                free.setdefault(_key(v), []).append(p.slot[v])
            released = [v for v in released if v not in early]
        for o in n.outputs:
            if (o in p.into_target or o in p.escaping or not out_ops(n)
                    or not _plannable(o)):
                continue
            lst = free.get(_key(o))
            if lst:
                p.slot[o] = lst.pop()
            else:
                p.slot[o] = len(p.slots)
                p.slots.append((o.shape, o.dtype))
            if o not in last:  # never read: free right away
                free.setdefault(_key(o), []).append(p.slot[o])
        for v in released:
            free.setdefault(_key(v), []).append(p.slot[v])
    return p


def _key(v: Value):
    return (tuple(str(s) for s in v.shape), v.dtype)


def _plannable(v: Value) -> bool:
    return v.kind == "node"


def run(graph: Graph, out_ops=None) -> Graph:
    """The graph with ``graph.plan`` attached (a copy; nodes unchanged)."""
    from . import clone_graph
    from ..codegen.numpy import can_write_out
    g, _ = clone_graph(graph)
    g.plan = plan(g, out_ops or can_write_out)
    g.passes.append("memory_plan")
    return g
