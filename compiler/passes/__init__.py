"""Graph passes: each module has ``run(graph) -> Graph``, a pure function returning a new
graph whose header (``graph.passes``) names the pass and how long it took.

Shared helpers: :func:`clone_graph` (copy a graph, mapping old Values to new ones) and
:func:`rebuild` (copy a graph while letting a callback replace nodes).
"""

from __future__ import annotations

import time

from ..ir import Graph, Node, Value, subgraphs

PIPELINE = ("functionalize", "simplify", "fold", "cse", "dce", "remat")


def _copy_value(v: Value, g: Graph) -> Value:
    nv = Value(v.name, v.shape, v.dtype, v.kind, None, v.index, device=v.device)
    g._names.add(v.name)
    return nv


def rebuild(graph: Graph, visit=None) -> tuple[Graph, dict]:
    """Copy ``graph``; ``visit(new_graph, node, mapped_inputs)`` may emit replacement nodes
    and return the list of Values standing for the node's outputs (or None to copy it)."""
    g = Graph()
    g.copy_meta(graph)
    vmap: dict = {}
    for v in graph.inputs:
        nv = _copy_value(v, g)
        g.inputs.append(nv)
        vmap[v] = nv
    for v, t in graph.constants.items():
        nv = _copy_value(v, g)
        g.constants[nv] = t
        vmap[v] = nv
    for n in graph.nodes:
        ins = tuple(vmap[x] if isinstance(x, Value) else x for x in n.inputs)
        repl = visit(g, n, ins) if visit is not None else None
        if repl is None:
            outs = tuple(_copy_value(o, g) for o in n.outputs)
            nn = Node(n.op, ins, n.attrs, outs)
            nn.region, nn.region_out = n.region, n.region_out
            for o in outs:
                o.producer = nn
            g.nodes.append(nn)
            repl = outs
        for o, r in zip(n.outputs, repl):
            vmap[o] = r
    g.outputs = [vmap.get(o, o) if isinstance(o, Value) else o for o in graph.outputs]
    g.mutations = [(vmap[t], vmap[v]) for t, v in graph.mutations]
    g.grad_writes = [(vmap[t], None if v is None else vmap[v]) for t, v in graph.grad_writes]
    for k in ("sources", "meta"):
        if hasattr(graph, k):
            setattr(g, k, getattr(graph, k))
    return g, vmap


def clone_graph(graph: Graph) -> tuple[Graph, dict]:
    """A copy of ``graph`` and the old -> new Value map."""
    return rebuild(graph)


def substitute(graph: Graph, repl: dict) -> None:
    """Replace Values per ``repl`` in node inputs, outputs and write-backs (in place; only
    for graphs a pass has just copied)."""
    if not repl:
        return

    def r(x):
        while isinstance(x, Value) and x in repl:
            x = repl[x]
        return x
    for n in graph.nodes:
        n.inputs = tuple(r(x) for x in n.inputs)
    graph.outputs = [r(o) for o in graph.outputs]
    graph.mutations = [(t, r(v)) for t, v in graph.mutations]
    graph.grad_writes = [(t, None if v is None else r(v)) for t, v in graph.grad_writes]


def uses(graph: Graph) -> dict:
    """Value -> number of uses (node inputs, outputs, mutations, grad writes)."""
    count: dict = {}
    for n in graph.nodes:
        for x in n.inputs:
            if isinstance(x, Value):
                count[x] = count.get(x, 0) + 1
    for o in graph.outputs:
        if isinstance(o, Value):
            count[o] = count.get(o, 0) + 1
    for t, v in graph.mutations:
        count[t] = count.get(t, 0) + 1
        count[v] = count.get(v, 0) + 1
    for t, v in graph.grad_writes:
        count[t] = count.get(t, 0) + 1
        if v is not None:
            count[v] = count.get(v, 0) + 1
    return count


def timed(name: str, fn, graph: Graph) -> Graph:
    """Run one pass and note its name and time in the result's header."""
    t0 = time.perf_counter()
    g = fn(graph)
    dt = (time.perf_counter() - t0) * 1e3
    if g.passes and g.passes[-1] == name:
        g.passes[-1] = f"{name} ({dt:.1f} ms)"
    return g


def run_pipeline(graph: Graph, names=PIPELINE, verify: bool | None = None) -> Graph:
    """Apply the named passes in order, verifying after each one when asked (or when the
    environment variable ``FW_VERIFY_PASSES=1`` is set, as the compiler tests do)."""
    import importlib
    import os
    if verify is None:
        verify = os.environ.get("FW_VERIFY_PASSES") == "1"
    if verify:
        graph.verify()
    for name in names:
        mod = importlib.import_module(f"{__name__}.{name}")
        graph = timed(name, mod.run, graph)
        if verify:
            graph.verify()
    if names:  # the last pass made fresh nodes: optimize their subgraphs in place
        for n in graph.nodes:
            for key, sub in subgraphs(n):
                n.attrs[key] = run_pipeline(sub, names, verify)
    return graph
