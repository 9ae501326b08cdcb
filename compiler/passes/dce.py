"""Dead-code elimination: drop nodes whose outputs nothing reads (random ops included:
an unused random draw does not change the values a compiled call returns)."""

from __future__ import annotations

from ..ir import Graph, Value
from . import rebuild


def live_nodes(graph: Graph) -> set:
    """The nodes whose outputs reach an output, a write-back or a grad write."""
    need = set()
    for o in graph.outputs:
        if isinstance(o, Value):
            need.add(o)
    for _t, v in graph.mutations:
        need.add(v)
    for _, v in graph.grad_writes:
        if v is not None:
            need.add(v)
    live = set()
    for n in reversed(graph.nodes):
        if any(o in need for o in n.outputs):
            live.add(n)
            for x in n.inputs:
                if isinstance(x, Value):
                    need.add(x)
    return live


def run(graph: Graph) -> Graph:
    """A copy of ``graph`` without dead nodes (inputs and externals are kept)."""
    live = live_nodes(graph)
    dead = [n for n in graph.nodes if n not in live]

    def visit(g, n, ins):
        if n in live:
            return None
        return [None] * len(n.outputs)

    g, _ = rebuild(graph, visit)
    used = set()
    for n in g.nodes:
        used.update(x for x in n.inputs if isinstance(x, Value))
    used.update(o for o in g.outputs if isinstance(o, Value))
    for t, v in g.mutations:
        used.update((t, v))
    for t, v in g.grad_writes:
        used.update((t, v))
    for v in [v for v in g.constants if v.kind == "const" and v not in used]:
        del g.constants[v]
    g.nodes = [n for n in g.nodes]
    g.passes.append(f"dce (-{len(dead)})")
    return g
