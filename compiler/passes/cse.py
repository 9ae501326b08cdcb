"""Common-subexpression elimination: a node equal to an earlier one (same op, same inputs,
same attrs) reuses its outputs. Random ops are never merged."""

from __future__ import annotations

from framework.ops.registry import RANDOM

from ..ir import Graph, Value, subgraphs
from . import clone_graph, substitute


def _hashable(v):
    if isinstance(v, (list, tuple)):
        return (type(v).__name__,) + tuple(_hashable(x) for x in v)
    if isinstance(v, slice):
        return ("slice", _hashable(v.start), _hashable(v.stop), _hashable(v.step))
    if isinstance(v, Value):
        return ("v", v.id)
    hash(v)
    return (type(v).__name__, v)


def _draws_random(n) -> bool:
    """A control-flow node whose subgraphs draw random numbers (never merged either)."""
    return any(m.op.group == RANDOM or _draws_random(m)
               for _, sub in subgraphs(n) for m in sub.nodes)


def run(graph: Graph) -> Graph:
    """A copy of ``graph`` where duplicate computations are merged."""
    g, _ = clone_graph(graph)
    seen: dict = {}
    repl: dict = {}
    kept = []
    for n in g.nodes:
        n.inputs = tuple(repl.get(x, x) if isinstance(x, Value) else x for x in n.inputs)
        if n.op.group == RANDOM or _draws_random(n):
            kept.append(n)
            continue
        try:
            key = (n.op.name, _hashable(n.inputs),
                   tuple(sorted((k, _hashable(v)) for k, v in n.attrs.items())))
        except TypeError:
            kept.append(n)
            continue
        prev = seen.get(key)
        if prev is None:
            seen[key] = n
            kept.append(n)
        else:
            for a, b in zip(n.outputs, prev.outputs):
                repl[a] = b
    merged = len(g.nodes) - len(kept)
    g.nodes = kept
    substitute(g, repl)
    g.passes.append(f"cse (-{merged})")
    return g
