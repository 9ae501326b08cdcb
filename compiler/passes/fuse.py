"""Fusion: group nodes into kernels. ``run(graph) -> list[FusionGroup]``.

Greedy, in topological order:

- pointwise chains over one iteration space (elementwise ops, and the views feeding them,
  which become index arithmetic rather than copies);
- a reduction joins the pointwise group that produces its input, and pointwise ops over the
  same rows after it join too (softmax, layer norm, cross-entropy become one row kernel);
- a matmul (or conv) starts a group whose pointwise consumers of the same shape form its
  epilogue (bias, activation, residual, cast);
- anything else is opaque: a kernel of its own.

Every refusal is recorded on the group that could not take the node (``why_not``), so
"why is this two kernels" has an answer (``describe(groups)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from framework.ops.registry import CAST, CONV, ELEMENTWISE, MATMUL, MOVEMENT, REDUCE

from ..ir import Graph, Value, type_str

_VIEWS = frozenset({"reshape", "permute", "expand", "slice"})


@dataclass
class FusionGroup:
    """One kernel: its kind, nodes (topological), input and output Values, refusals."""

    kind: str
    nodes: list
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    why_not: list = field(default_factory=list)
    space: tuple = ()


def node_kind(n) -> str:
    """pointwise / view / reduction / matmul / opaque."""
    g = n.op.group
    if g in ELEMENTWISE or g == CAST:
        return "pointwise"
    if g == MOVEMENT and n.op.name in _VIEWS:
        return "view"
    if g == REDUCE and n.op.name in ("sum", "amax", "amin", "prod"):
        return "reduction"
    if g in (MATMUL, CONV) and n.op.name in ("matmul", "conv"):
        return "matmul"
    return "opaque"


def _numel(shape):
    return tuple(str(s) for s in shape)


def _join_reason(group, n, kind, produced):
    """None if ``n`` may join ``group``, else why not."""
    if group is None:
        return "no open group"
    ins = [x for x in n.inputs if isinstance(x, Value)]
    if not any(x in produced for x in ins):
        return f"{n.op.name} does not read anything {group.kind} group computes"
    out = n.outputs[0]
    if kind == "view":
        return None if group.kind != "opaque" else "opaque group"
    if kind == "pointwise":
        if group.kind == "opaque":
            return "opaque group"
        if _numel(out.shape) != _numel(group.space):
            return (f"{n.op.name}: iteration space {type_str(out)} differs from the group's "
                    f"[{', '.join(str(s) for s in group.space)}]")
        return None
    if kind == "reduction":
        if group.kind in ("pointwise", "reduction"):
            src = ins[0]
            if _numel(src.shape) == _numel(group.space):
                return None
            return f"{n.op.name}: reduces {type_str(src)}, not the group's iteration space"
        return f"{n.op.name}: a reduction does not join a {group.kind} group"
    return f"{n.op.name} is {kind}: it gets its own kernel"


def run(graph: Graph) -> list:
    """Group ``graph``'s nodes into kernels (see the module docstring)."""
    groups: list[FusionGroup] = []
    cur = None
    produced: set = set()
    for n in graph.nodes:
        kind = node_kind(n)
        why = _join_reason(cur, n, kind, produced)
        if why is None:
            cur.nodes.append(n)
            if kind == "reduction" and cur.kind == "pointwise":
                cur.kind = "reduction"
        else:
            if cur is not None:
                cur.why_not.append(why)
            space = n.outputs[0].shape if kind != "reduction" else n.inputs[0].shape
            cur = FusionGroup("pointwise" if kind == "view" else kind, [n], space=space)
            groups.append(cur)
            produced = set()
        produced.update(n.outputs)
    _wire(graph, groups)
    return groups


def _wire(graph, groups):
    where = {}
    for gi, g in enumerate(groups):
        for n in g.nodes:
            for o in n.outputs:
                where[o] = gi
    escaping = {o for o in graph.outputs if isinstance(o, Value)}
    escaping |= {v for _, v in graph.mutations}
    escaping |= {v for _, v in graph.grad_writes if v is not None}
    used_outside: set = set()
    for gi, g in enumerate(groups):
        seen = set()
        for n in g.nodes:
            for x in n.inputs:
                if isinstance(x, Value) and where.get(x) != gi:
                    if x not in seen:
                        g.inputs.append(x)
                        seen.add(x)
                    used_outside.add(x)
    for g in groups:
        for n in g.nodes:
            for o in n.outputs:
                if o in used_outside or o in escaping:
                    g.outputs.append(o)


def describe(groups) -> str:
    """One line per group: kind, ops, and why the next node did not join."""
    lines = []
    for i, g in enumerate(groups):
        ops = ", ".join(n.op.name for n in g.nodes)
        line = f"kernel {i} [{g.kind}]: {ops}"
        if g.why_not:
            line += f"  -- not fused further: {'; '.join(g.why_not)}"
        lines.append(line)
    return "\n".join(lines)
