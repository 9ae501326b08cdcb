"""IR -> ``onnx.ModelProto``.

:func:`graph_to_onnx` walks a captured :class:`~compiler.ir.Graph` in order and asks the
lowering table (:mod:`compiler.onnx_lowering`, one rule per registry op) for the ONNX nodes
of each IR node. Parameters and buffers become initializers under their module paths,
graph inputs keep their argument names, and intermediate tensors keep the IR's value
names, so the exported model reads like the captured graph. Symbolic dims (sympy symbols)
become named ``dim_param``s and are recomputed at run time from the inputs' shapes where
an op needs a size.

A composite whose rule has no native form in the target opset (or that has no rule) is
replaced by its decomposition into primitives, traced on meta tensors and lowered in
place, so an export never fails for want of a native op; an op that cannot be expressed
at all in the requested opset raises :class:`OpsetError` naming the op and the minimum
opset. Layers that the nn code writes with primitives (linear, eval batch norm, average
pooling, RMS norm, attention) are recognised as subgraphs and emitted as their native op
(:mod:`compiler.onnx_lowering.patterns`). Rules write each node in its current form;
at an older target opset, nodes whose signature changed (axes inputs that were attributes,
``Shape`` start/end) are rewritten by :mod:`compiler.onnx_lowering.legalize`, and the rules
whose meaning changed pick the older form themselves (Softmax's axis, Trilu,
ScatterElements' reduction, LayerNormalization). Only what the outputs depend on is
exported, and every intermediate value carries the IR's type, so strict shape inference
cross-checks each rule against the op's meta rule.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import onnx
import sympy
from onnx import helper

from framework.errors import ArgumentError

from .onnx_lowering import DECOMPOSE, LOWERINGS
from .onnx_lowering.context import LoweringContext, OpsetError, value_info
from .onnx_lowering.patterns import find_matches
from .passes import complex_pairs

MIN_OPSET = 12
DEFAULT_OPSET = 18

__all__ = ["graph_to_onnx", "supported_opsets", "missing_lowerings", "OpsetError",
           "MIN_OPSET", "DEFAULT_OPSET", "LOWERINGS", "lower_body"]


def supported_opsets() -> range:
    """The default-domain opsets the exporter targets: 12 up to what ``onnx`` knows.

    Below 12, Einsum, GreaterOrEqual/LessOrEqual, SoftmaxCrossEntropyLoss and integer
    Max/Min/Clip (which the lowerings and the run-time size arithmetic use) do not exist."""
    return range(MIN_OPSET, onnx.defs.onnx_opset_version() + 1)


def missing_lowerings() -> list[str]:
    """Framework ops with neither an ONNX lowering nor a decomposition to fall back on
    (users' ``fw.library`` ops are refused by name at export instead)."""
    from framework.ops.registry import OPS
    return sorted(n for n, op in OPS.items()
                  if n not in LOWERINGS and op.decomp is None and op.group != "library")


def _check_opset(opset) -> int:
    ops = supported_opsets()
    if not isinstance(opset, int) or opset not in ops:
        raise ArgumentError(f"onnx export: opset_version must be an int in "
                            f"[{ops.start}, {ops.stop - 1}] (the newest the installed onnx "
                            f"{onnx.__version__} knows), got {opset!r}")
    return opset


def _tensor_array(t):
    """Host NumPy array of a framework tensor (parameters, buffers, captured constants)."""
    if t.device.type == "cpu":
        return t._data
    return t.detach().cpu()._data


def _refuse_complex(inputs, live) -> None:
    """A complex value left after passes/complex_pairs.py is refused: most runtimes have no
    complex tensors."""
    values = list(inputs) + list(live.constants) + [o for n in live.nodes for o in n.outputs]
    for v in values:
        dt = getattr(v, "dtype", None)
        if dt is not None and dt.is_complex:
            where = f" (computed by {v.producer.op.name})" if getattr(v, "producer", None) \
                else ""
            raise NotImplementedError(f"onnx export: the graph has a complex value "
                                      f"{getattr(v, 'name', '')} of dtype {dt.name}{where}; "
                                      "complex dtypes are not supported in ONNX export "
                                      "(most runtimes have no complex tensors)")


def _refuse_bfloat16(ctx, inputs, live) -> None:
    """bfloat16 is a tensor type from opset 13 (Cast, arithmetic, ...)."""
    values = list(inputs) + list(live.constants) + [o for n in live.nodes for o in n.outputs]
    for v in values:
        if getattr(v, "dtype", None) is not None and v.dtype.name == "bfloat16":
            ctx.require(13, f"the bfloat16 value {getattr(v, 'name', '')!r} (bfloat16 "
                            "tensors)")


def graph_to_onnx(graph, *, opset: int = DEFAULT_OPSET, input_names=None, output_names=None,
                  constant_names=None, output_dim_names=None,
                  model_name: str = "framework_model") -> onnx.ModelProto:
    """Lower ``graph`` to an ONNX model at ``opset``.

    input_names / output_names: ONNX names of the graph's inputs and outputs (defaults:
    the IR names, and ``output`` / ``output_<i>``). constant_names: Value -> name for
    initializers (defaults to the IR names). output_dim_names: {output index or name:
    {axis: dim name}} to name output dims (PyTorch's ``dynamic_axes`` for outputs).
    """
    opset = _check_opset(opset)
    ctx = LoweringContext(opset)
    if graph.mutations:
        warnings.warn("onnx export: the function updates "
                      f"{', '.join(t.name for t, _ in graph.mutations)} in place; an ONNX "
                      "model is functional, so these updates are not exported",
                      stacklevel=3)
    if graph.outputs and complex_pairs.has_complex(graph):  # complex as real (..., 2) pairs
        graph, vmap = complex_pairs.rewrite(graph)
        constant_names = {vmap.get(v, v): n for v, n in (constant_names or {}).items()}
    outs = list(graph.outputs)
    if not outs:
        raise ArgumentError("onnx export: the function returns no tensors")
    live = _live(graph, outs)
    _refuse_complex(graph.inputs, live)
    _refuse_bfloat16(ctx, graph.inputs, live)
    in_names = _plan_inputs(ctx, graph, input_names)
    out_names = _plan_outputs(ctx, outs, output_names)
    _plan_constants(ctx, live, constant_names or {})
    planned = {}
    for i, v in enumerate(outs):  # a node output returned by the function gets its name
        if v.kind == "node" and v not in planned:
            planned[v] = out_names[i]
    for n in live.nodes:
        for v in n.outputs:
            if v not in planned:
                planned[v] = ctx.reserve(v.name)
    ctx.used = {x for n in live.nodes for x in n.inputs if hasattr(x, "shape")} | set(outs)
    heads, absorbed = find_matches(live, opset)
    for node in live.nodes:
        if node not in absorbed:
            lower_node(ctx, node, planned, heads.get(node))
    for i, v in enumerate(outs):
        if ctx.name_of(v) != out_names[i]:
            ctx.emit("Identity", [ctx.name_of(v)], outputs=[out_names[i]])
    dim_names = _output_dim_names(output_dim_names, out_names)
    g = helper.make_graph(
        ctx.nodes, model_name,
        [value_info(in_names[v], v.dtype, v.shape) for v in graph.inputs],
        [value_info(out_names[i], v.dtype, v.shape, dim_names.get(i))
         for i, v in enumerate(outs)],
        initializer=ctx.initializers,
        value_info=_intermediate_info(ctx, live, set(out_names)))
    opsets = [helper.make_opsetid("", opset)]
    import framework
    model = helper.make_model(g, opset_imports=opsets, producer_name="framework",
                              producer_version=framework.__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    return model


def _intermediate_info(ctx, live, out_names):
    """Types of the IR values that became ONNX node outputs, so tools show the captured
    shapes (named dynamic dims included) without running shape inference."""
    produced = {o for n in ctx.nodes for o in n.output}
    infos, seen = [], set()
    for n in live.nodes:
        for v in n.outputs:
            name = ctx.names.get(v)
            if name in produced and name not in out_names and name not in seen:
                seen.add(name)
                infos.append(value_info(name, v.dtype, v.shape))
    return infos


def _live(graph, outs):
    """The nodes and constants the outputs depend on (in-place write-backs are not
    exported, so what only feeds them is dead here)."""
    need, nodes = set(outs), []
    for n in reversed(graph.nodes):
        if any(o in need for o in n.outputs):
            nodes.append(n)
            need.update(x for x in n.inputs if hasattr(x, "shape"))
    consts = {v: t for v, t in graph.constants.items() if v in need}
    return SimpleNamespace(nodes=nodes[::-1], outputs=outs, constants=consts)


def _plan_inputs(ctx, graph, input_names):
    names = {}
    if input_names is not None and len(input_names) > len(graph.inputs):
        raise ArgumentError(f"onnx export: {len(input_names)} input_names given for "
                            f"{len(graph.inputs)} inputs")
    for i, v in enumerate(graph.inputs):
        want = input_names[i] if input_names and i < len(input_names) else v.name
        names[v] = ctx.reserve(want)
        ctx.names[v] = names[v]
        for axis, s in enumerate(v.shape):
            if isinstance(s, sympy.Symbol):
                ctx.bind_symbol(s, names[v], axis)
    return names


def _plan_outputs(ctx, outs, output_names):
    if output_names is not None and len(output_names) != len(outs):
        raise ArgumentError(f"onnx export: {len(output_names)} output_names given but the "
                            f"function returns {len(outs)} tensors")
    if output_names is None:
        output_names = ["output"] if len(outs) == 1 else [f"output_{i}" for i in
                                                           range(len(outs))]
    return [ctx.reserve(n) for n in output_names]


def _plan_constants(ctx, graph, constant_names):
    for v, t in graph.constants.items():
        name = ctx.reserve(constant_names.get(v, v.name))
        ctx.names[v] = name
        ctx.add_initializer(name, _tensor_array(t))


def _output_dim_names(spec, out_names):
    out = {}
    for key, dims in (spec or {}).items():
        i = out_names.index(key) if isinstance(key, str) and key in out_names else key
        if isinstance(i, int):
            out[i] = dict(dims) if isinstance(dims, dict) else \
                {d: f"{out_names[i]}_dim{d}" for d in dims}
    return out


def lower_body(ctx: LoweringContext, graph, input_names, prefix: str) -> list[str]:
    """Lower the nodes of a control-flow subgraph into ``ctx`` (its current node list),
    its inputs bound to the ONNX names ``input_names``; return its outputs' names (which
    may be outer names: the caller copies them into the subgraph it builds)."""
    for v, name in zip(graph.inputs, input_names):
        ctx.names[v] = name
    outs = list(graph.outputs)
    live = _live(graph, outs)
    _plan_constants(ctx, live, {})
    planned = {v: ctx.reserve(f"{prefix}/{v.name}") for n in live.nodes for v in n.outputs}
    saved_used = ctx.used
    ctx.used = {x for n in live.nodes for x in n.inputs if hasattr(x, "shape")} | set(outs)
    try:
        heads, absorbed = find_matches(live, ctx.opset)
        for node in live.nodes:
            if node not in absorbed:
                lower_node(ctx, node, planned, heads.get(node))
    finally:
        ctx.used = saved_used
    return [ctx.name_of(o) for o in outs]


# ---------------------------------------------------------------------------------------
def lower_node(ctx: LoweringContext, node, planned, match=None) -> None:
    """Emit the ONNX nodes of one IR node (or of the pattern ``match`` ending at it) and
    bind its outputs to ONNX names."""
    prev, ctx.current = ctx.current, node
    start = len(ctx.nodes)
    ctx._fresh_here = set()
    try:
        rule = LOWERINGS.get(node.op.name)
        if match is not None:
            result = match.emit(ctx)
        elif _all_empty(node):  # zero-size results need no computation
            result = [ctx.const(np.zeros(tuple(int(s) for s in v.shape), v.dtype.np), "empty")
                      for v in node.outputs]
        else:
            result = DECOMPOSE if rule is None else rule(ctx, node)
        if result is DECOMPOSE:
            _lower_decomposition(ctx, node, planned)
            return
    except OpsetError:
        raise
    except NotImplementedError as e:
        raise NotImplementedError(f"onnx export of op {node.op.name!r}: {e}") from None
    finally:
        ctx.current = prev
    _bind_outputs(ctx, node, result, start, planned)


def _all_empty(node) -> bool:
    """Every output has a static shape with a zero-size dim."""
    return all(all(isinstance(s, int) for s in v.shape) and 0 in v.shape
               for v in node.outputs)


def _bind_outputs(ctx, node, result, start, planned):
    fresh = ctx._fresh_here
    for v, r in zip(node.outputs, result):
        if r is None:
            continue
        want = planned.get(v)
        if want is not None and r in fresh:
            _rename(ctx.nodes[start:], r, want)
            fresh.discard(r)
            r = want
        ctx.names[v] = r


def _rename(nodes, old, new):
    for n in nodes:
        for i, x in enumerate(n.output):
            if x == old:
                n.output[i] = new
        for i, x in enumerate(n.input):
            if x == old:
                n.input[i] = new


def _lower_decomposition(ctx, node, planned):
    """Trace ``node.op``'s decomposition on meta tensors and lower its nodes in place."""
    op = node.op
    if op.decomp is None:
        raise NotImplementedError(f"onnx export: op {op.name!r} has no ONNX lowering and no "
                                  "decomposition")
    from framework.tensor import meta_tensor

    from .capture import capture_graph
    from .ir import Value
    args = [meta_tensor(x.shape, x.dtype) if isinstance(x, Value) else x for x in node.inputs]
    attrs = dict(node.attrs)
    sub = capture_graph(lambda *a: op.decomp(*a, **attrs), args)
    tensor_inputs = [x for x in node.inputs if isinstance(x, Value)]
    for sv, v in zip(sub.inputs, tensor_inputs):
        ctx.names[sv] = ctx.name_of(v)
    for sv, t in sub.constants.items():
        name = ctx.reserve(f"{node.outputs[0].name}.{sv.name}")
        ctx.add_initializer(name, _tensor_array(t))
        ctx.names[sv] = name
    sub_planned = {}
    for sn in sub.nodes:
        for sv in sn.outputs:
            sub_planned[sv] = ctx.reserve(f"{node.outputs[0].name}/{sv.name}")
    saved_used = ctx.used
    ctx.used = saved_used | {x for n in sub.nodes for x in n.inputs if hasattr(x, "shape")} \
        | set(sub.outputs)
    for sn in sub.nodes:
        lower_node(ctx, sn, sub_planned)
    ctx.used = saved_used
    for v, sv in zip(node.outputs, sub.outputs):
        ctx.names[v] = ctx.name_of(sv)
