"""Decomposition of composites: ``run(graph, keep=set_of_op_names)`` replaces every node
whose op has a decomposition (``op.decomp``: softmax, log_softmax, gelu, layer_norm,
cross_entropy, ...) and is not in ``keep`` by the primitives it is made of. The
decomposition is re-traced on data-less tensors with the node's exact shapes (symbolic
ones included) and inlined; repeated until no decomposable composite is left."""

from __future__ import annotations

from framework._state import tls
from framework.tensor import meta_tensor

from ..ir import Graph, Value
from . import rebuild

MAX_ROUNDS = 8


def _decomposable(n, keep) -> bool:
    return (n.op.decomp is not None and n.op.name not in keep and
            not any(isinstance(x, Value) and x.kind == "scalar_input" for x in n.inputs))


def _inline(g: Graph, n, ins):
    op, attrs = n.op, n.attrs

    def body(*xs):
        return op.decomp(*xs, **attrs)
    return inline(g, body, ins)


def inline(g: Graph, body, ins) -> list:
    """Trace ``body(*ins)`` on data-less stand-ins of the Values among ``ins`` (other
    arguments passed as they are), append its nodes to ``g``, return its output Values."""
    from ..capture import trace
    examples = tuple(meta_tensor(x.shape, x.dtype, x.device) if isinstance(x, Value) and
                     x.device is not None else
                     (meta_tensor(x.shape, x.dtype) if isinstance(x, Value) else x)
                     for x in ins)

    # autocast applied to the composite as a whole when it was traced, and decompositions
    # run without it eagerly too (registry._run_decomposition)
    saved, tls.autocast = tls.autocast, None
    try:
        cap = trace(body, examples, specialize_floats=True)
    finally:
        tls.autocast = saved
    sub = cap.graph
    vmap = dict(zip(sub.inputs, [x for x in ins if isinstance(x, Value)]))
    for v, t in sub.constants.items():
        nv = g.add_constant(v.name, t, v.kind)
        g.sources[nv.name] = ("tensor", t)
        vmap[v] = nv
    for sn in sub.nodes:
        new_ins = tuple(vmap[x] if isinstance(x, Value) else x for x in sn.inputs)
        node = g.add_node(sn.op, new_ins, sn.attrs)
        for a, b in zip(sn.outputs, node.outputs):
            vmap[a] = b
    return [vmap[o] for o in sub.outputs]


def run(graph: Graph, keep=frozenset()) -> Graph:
    """A copy of ``graph`` with composites outside ``keep`` decomposed."""
    keep = frozenset(keep)
    total = 0
    g = graph
    for _ in range(MAX_ROUNDS):
        count = [0]
        sources = dict(getattr(g, "sources", {}))

        def visit(new, n, ins):
            if not _decomposable(n, keep):
                return None
            if not hasattr(new, "sources"):
                new.sources = sources
            count[0] += 1
            return _inline(new, n, ins)

        g, _ = rebuild(g, visit)
        g.sources = {**sources, **getattr(g, "sources", {})}
        total += count[0]
        if not count[0]:
            break
    g.passes.append(f"decompose ({total} composites)")
    return g
