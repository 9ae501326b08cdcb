"""ONNX lowerings of the control-flow ops: ``cond`` -> ``If``, ``while_loop`` -> ``Loop``.

A subgraph becomes an ONNX ``GraphProto`` attribute. ONNX subgraphs see the enclosing
graph's values by name, so a ``cond`` branch has no inputs: its IR inputs are bound to the
ONNX names of the node's operands. ``Loop`` bodies take (iteration number, condition,
carried values...) and return (condition, carried values...): the loop's condition is
computed once before the loop and again at the end of each iteration.
"""

from __future__ import annotations

import contextlib

from onnx import TensorProto, helper

from . import lowering
from .context import value_info


@contextlib.contextmanager
def _subgraph_nodes(ctx):
    """Collect the nodes emitted inside the block (yields the list) apart from the
    enclosing graph's; sizes computed inside stay inside (they are not visible outside)."""
    outer, dims = ctx.nodes, ctx._dims
    ctx.nodes, ctx._dims = [], dict(dims)
    try:
        yield ctx.nodes
    finally:
        ctx.nodes, ctx._dims = outer, dims


def _lower(ctx, graph, names, prefix):
    from ..onnx import lower_body
    return lower_body(ctx, graph, names, prefix)


def _copies(ctx, names):
    """Outputs named inside the subgraph (an ONNX graph cannot return an outer name)."""
    return [ctx.emit("Identity", [n]) for n in names]


@lowering("cond")
def _cond(ctx, node):
    pred = ctx.name_of(node.inputs[0])
    ins = [ctx.name_of(x) for x in node.inputs[1:]]
    base = node.outputs[0].name
    branches = []
    for key, tag in (("true_graph", "then"), ("false_graph", "else")):
        sub = node.attrs[key]
        with _subgraph_nodes(ctx) as nodes:
            outs = _copies(ctx, _lower(ctx, sub, ins, f"{base}/{tag}"))
        branches.append(helper.make_graph(
            nodes, ctx.reserve(f"{base}_{tag}_branch"), [],
            [value_info(n, v.dtype, v.shape) for n, v in zip(outs, sub.outputs)]))
    res = ctx.emit("If", [pred], num_outputs=len(node.outputs), then_branch=branches[0],
                   else_branch=branches[1])
    return res if isinstance(res, list) else [res]


def _scalar_bool(ctx, name):
    return ctx.emit("Reshape", [name, ctx.ints([])])


@lowering("while_loop")
def _while_loop(ctx, node):
    cond_g, body_g = node.attrs["cond_graph"], node.attrs["body_graph"]
    k = len(node.outputs)
    names = [ctx.name_of(x) for x in node.inputs]
    carried, free = names[:k], names[k:]
    base = node.outputs[0].name
    first = _scalar_bool(ctx, _lower(ctx, cond_g, carried + free, f"{base}/cond0")[0])
    it, cond_in = ctx.fresh("iter"), ctx.fresh("cond_in")
    carry_in = [ctx.fresh(f"carry{i}") for i in range(k)]
    with _subgraph_nodes(ctx) as nodes:
        new = _lower(ctx, body_g, carry_in + free, f"{base}/body")
        nxt = _lower(ctx, cond_g, new + free, f"{base}/cond")
        cond_out = _scalar_bool(ctx, nxt[0])
        carry_out = _copies(ctx, new)
    typed = list(zip(node.outputs, carry_in, carry_out))
    body = helper.make_graph(
        nodes, ctx.reserve(f"{base}_loop_body"),
        [helper.make_tensor_value_info(it, TensorProto.INT64, []),
         helper.make_tensor_value_info(cond_in, TensorProto.BOOL, [])]
        + [value_info(i, v.dtype, v.shape) for v, i, _ in typed],
        [helper.make_tensor_value_info(cond_out, TensorProto.BOOL, [])]
        + [value_info(o, v.dtype, v.shape) for v, _, o in typed])
    res = ctx.emit("Loop", ["", first, *carried], num_outputs=k, body=body)
    return res if isinstance(res, list) else [res]
