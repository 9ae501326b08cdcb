"""Constant folding: nodes whose inputs are all known at compile time (creation ops other
than random draws, and pure ops on folded values) are evaluated once with the CPU backend
and become constants of the graph. Shapes must be concrete; large results stay unfolded."""

from __future__ import annotations

import sympy

from framework.ops.registry import RANDOM
from framework.tensor import Tensor

from ..ir import Graph, Value
from . import rebuild

MAX_ELEMENTS = 1 << 16


def _concrete(shape) -> bool:
    return all(isinstance(s, int) for s in shape)


def _symbolic(x) -> bool:
    """True for a size expression (``n - 1`` of a dynamic dim), also inside tuples/lists:
    its value is only known per call, so the node cannot be folded."""
    if isinstance(x, (tuple, list)):
        return any(_symbolic(i) for i in x)
    return isinstance(x, sympy.Basic) and not x.is_number


def run(graph: Graph) -> Graph:
    """A copy of ``graph`` with constant subgraphs evaluated."""
    known: dict = {}  # new Value -> numpy array
    folded = [0]

    def visit(g, n, ins):
        if n.op.group == RANDOM or "cpu" not in n.op.impls:
            return None
        if any(isinstance(x, Value) and x not in known for x in ins):
            return None
        if _symbolic(ins) or _symbolic(list(n.attrs.values())):
            return None
        if not all(_concrete(o.shape) for o in n.outputs) or n.op.num_outputs != 1:
            return None
        out = n.outputs[0]
        numel = 1
        for s in out.shape:
            numel *= s
        if numel > MAX_ELEMENTS or (out.device is not None and out.device.type != "cpu"):
            return None
        raw = [known[x] if isinstance(x, Value) else x for x in ins]
        import numpy as np
        with np.errstate(all="ignore"):
            arr = np.asarray(n.op.impls["cpu"](*raw, **n.attrs)).astype(out.dtype.np,
                                                                         copy=False)
        arr = arr.copy() if not arr.flags.c_contiguous or not arr.flags.writeable else arr
        arr.flags.writeable = False
        t = Tensor._wrap(arr, out.dtype, out.device)
        v = g.add_constant(f"k_{out.name}", t, "const")
        known[v] = arr
        folded[0] += 1
        return [v]

    g, _ = rebuild(graph, visit)
    g.sources = dict(getattr(graph, "sources", {}))
    # the folded constants' sources: rebuild copied the dict before they existed, and it
    # may still hold an entry under a reused name (a constant an earlier pass dropped)
    for v, t in g.constants.items():
        if v in known:
            g.sources[v.name] = ("tensor", t)
        else:
            g.sources.setdefault(v.name, ("tensor", t))
    g.passes.append(f"fold ({folded[0]} nodes)")
    return g
