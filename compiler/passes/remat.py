"""Recompute activation-checkpoint regions for the backward of a captured training step.

``fw.utils.checkpoint`` inside ``fw.compile`` marks the nodes it records
(``ir.Node.region``) and which of their outputs the region returned (``region_out``).
The backward, traced after the forward, reads the region's inner activations. This pass
hands it recomputed copies instead: the region nodes those values depend on are cloned just
before the first later node that reads one, starting from the region's inputs. The
originals are then last read inside the region, so the memory plan frees them there, as
eager checkpointing does, and the copies may fuse with the backward kernels that read them.

Never recomputed: the region's returned outputs (the forward goes on with them, so they are
alive anyway), random draws (a copy would draw again; dropout masks are kept instead), and
values from outside the region.
"""

from __future__ import annotations

from framework.ops.registry import RANDOM

from ..ir import Graph, Node, Value
from . import clone_graph


def _spans(graph: Graph) -> dict:
    """region number -> (index of its first node, index of its last node)."""
    spans: dict = {}
    for i, n in enumerate(graph.nodes):
        if n.region is not None:
            spans[n.region] = (spans.get(n.region, (i, i))[0], i)
    return spans


def _recompute_region(g: Graph, rid, first: int, last: int) -> int:
    """Clone what the nodes after ``last`` read from region ``rid``; number of clones."""
    inner: dict = {}
    kept: set = set()
    for n in g.nodes[first:last + 1]:
        if n.region != rid:
            continue
        for o in n.outputs:
            inner[o] = n
        if n.op.group == RANDOM:
            kept.update(n.outputs)
        else:
            kept.update(n.outputs[i] for i in n.region_out)

    def recomputable(x) -> bool:
        return isinstance(x, Value) and x in inner and x not in kept

    readers = [j for j in range(last + 1, len(g.nodes))
               if any(recomputable(x) for x in g.nodes[j].inputs)]
    if not readers:
        return 0
    need: set = set()
    stack = [x for j in readers for x in g.nodes[j].inputs if recomputable(x)]
    while stack:
        producer = inner[stack.pop()]
        if producer not in need:
            need.add(producer)
            stack.extend(x for x in producer.inputs if recomputable(x))
    copies: dict = {}
    clones = []
    for n in g.nodes[first:last + 1]:
        if n not in need:
            continue
        ins = tuple(copies.get(x, x) if isinstance(x, Value) else x for x in n.inputs)
        outs = tuple(Value(g.fresh_name(o.name), o.shape, o.dtype, "node", None, o.index,
                           device=o.device) for o in n.outputs)
        clone = Node(n.op, ins, n.attrs, outs)
        clone.no_grad = n.no_grad
        for o in outs:
            o.producer = clone
        copies.update((o, c) for o, c in zip(n.outputs, outs) if o not in kept)
        clones.append(clone)
    for j in readers:
        n = g.nodes[j]
        n.inputs = tuple(copies.get(x, x) if isinstance(x, Value) else x for x in n.inputs)
    g.nodes[readers[0]:readers[0]] = clones
    return len(clones)


def run(graph: Graph) -> Graph:
    """``graph`` with each checkpoint region's inner activations recomputed for their
    readers after the region."""
    g, _ = clone_graph(graph)
    total = 0
    for rid in sorted(_spans(g)):
        first, last = _spans(g)[rid]  # clones carry no region: spans move, so re-read
        total += _recompute_region(g, rid, first, last)
    g.passes.append(f"remat (+{total})")
    return g
