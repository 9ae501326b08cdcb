"""Algebraic simplification: ``x*1``, ``x+0``, ``x-0``, ``x/1``, casts to the same dtype,
reshapes/expands to the same shape, reshape of reshape, and permutes that compose to the
identity. A rewrite only fires when the result keeps the node's shape and dtype."""

from __future__ import annotations

from ..ir import Graph, Value
from . import rebuild

_IDENTITY_RHS = {"mul": 1, "div": 1, "add": 0, "sub": 0}


def _same(a: Value, out: Value) -> bool:
    return isinstance(a, Value) and tuple(a.shape) == tuple(out.shape) and a.dtype is out.dtype


def _rewrite(g, n, ins):
    name = n.op.name
    out = n.outputs[0]
    if name in _IDENTITY_RHS and len(ins) == 2:
        a, b = ins
        unit = _IDENTITY_RHS[name]
        if not isinstance(b, Value) and not isinstance(b, bool) and b == unit and _same(a, out):
            return [a]
        if name in ("mul", "add") and not isinstance(a, Value) and not isinstance(a, bool) \
                and a == unit and _same(b, out):
            return [b]
    if name == "cast" and _same(ins[0], out):
        return [ins[0]]
    if name == "detach":  # a stop-gradient matters to autodiff only, which has run by now
        return [ins[0]]
    if name in ("reshape", "expand") and _same(ins[0], out):
        return [ins[0]]
    if name == "reshape":
        src = ins[0]
        if isinstance(src, Value) and src.producer is not None and \
                src.producer.op.name == "reshape":
            inner = src.producer.inputs[0]
            if _same(inner, out):
                return [inner]
            return list(g.add_node(n.op, (inner,), n.attrs).outputs)
    if name == "permute" and tuple(n.attrs["dims"]) == (1, 0):
        src = ins[0]
        mm = src.producer if isinstance(src, Value) else None
        if mm is not None and mm.op.name == "matmul" and src.ndim == 2 and \
                all(isinstance(x, Value) and x.ndim == 2 for x in mm.inputs):
            # (A @ B).T == B.T @ A.T: a contiguous result instead of a transposed view
            a, b = mm.inputs
            bt = _transpose(g, b)
            at = _transpose(g, a)
            return list(g.add_node(mm.op, (bt, at), mm.attrs).outputs)
    if name == "permute":
        src = ins[0]
        dims = n.attrs["dims"]
        if list(dims) == list(range(len(dims))):
            return [src]
        if isinstance(src, Value) and src.producer is not None and \
                src.producer.op.name == "permute":
            inner_dims = src.producer.attrs["dims"]
            comp = tuple(inner_dims[d] for d in dims)
            inner = src.producer.inputs[0]
            if list(comp) == list(range(len(comp))):
                return [inner]
            return list(g.add_node(n.op, (inner,), {"dims": comp}).outputs)
    return None


def _transpose(g, v):
    """``v.T`` for a 2-D Value, folding a transpose of a transpose."""
    p = v.producer
    if p is not None and p.op.name == "permute" and tuple(p.attrs["dims"]) == (1, 0):
        return p.inputs[0]
    from framework.ops.registry import OPS
    return g.add_node(OPS["permute"], (v,), {"dims": (1, 0)}).outputs[0]


def run(graph: Graph) -> Graph:
    """A copy of ``graph`` with the identities above removed."""
    count = [0]

    def visit(g, n, ins):
        r = _rewrite(g, n, ins)
        if r is not None:
            count[0] += 1
        return r

    g, _ = rebuild(graph, visit)
    g.passes.append(f"simplify ({count[0]} rewrites)")
    return g
