"""Symbolic sizes: checking what a capture assumed about them.

Meta rules see symbolic sizes and sometimes have to assume (two symbolic dims that meet in
broadcasting are taken to agree). After a capture, :func:`check_assumptions` re-runs every
meta rule with the sizes the capture was made for: a false assumption raises (the compiled
function then captures again with fewer symbols). :func:`equality_guards` lists the size
expressions that happened to be equal at capture time; a cached entry checks that they are
still equal for the sizes of a new call (they may have been assumed equal).
"""

from __future__ import annotations

import sympy

from framework.errors import ShapeError

from .ir import Value, run_meta


def _subs(shape, env):
    return tuple(s if isinstance(s, int) else int(s.subs(env)) for s in shape)


def check_assumptions(graph, sym_values: dict) -> None:
    """Raise ShapeError if a node's meta rule fails, or disagrees with its recorded
    shape, for the concrete sizes ``sym_values`` (symbol name -> int)."""
    env = {sym: sym_values[name] for name, sym in graph.symbols.items() if name in sym_values}
    concrete: dict = {}

    def conc(v):
        if not isinstance(v, Value):
            return v
        c = concrete.get(v)
        if c is None:
            c = Value(v.name, _subs(v.shape, env), v.dtype, v.kind, device=v.device)
            concrete[v] = c
        return c

    for n in graph.nodes:
        attrs = {k: _subs_attr(a, env) for k, a in n.attrs.items()}
        try:
            metas = run_meta(n.op, [conc(x) for x in n.inputs], attrs)
        except (ValueError, TypeError, IndexError) as e:
            raise ShapeError(f"symbolic capture assumed something false for the captured "
                             f"sizes at {n.op.name}: {e}") from e
        for o, (shape, _dt) in zip(n.outputs, metas):
            want = _subs(o.shape, env)
            if tuple(shape) != want:
                raise ShapeError(f"symbolic capture: {n.op.name} gives {list(shape)} for the "
                                 f"captured sizes, the graph says {list(want)}")
            concrete[o] = Value(o.name, want, o.dtype, o.kind, device=o.device)


def _subs_attr(a, env):
    if isinstance(a, sympy.Basic):
        return int(a.subs(env))
    if isinstance(a, tuple):
        return tuple(_subs_attr(x, env) for x in a)
    if isinstance(a, list):
        return [_subs_attr(x, env) for x in a]
    if isinstance(a, slice):  # an indexing key ``x[:, :T]`` with a symbolic bound
        return slice(_subs_attr(a.start, env), _subs_attr(a.stop, env),
                     _subs_attr(a.step, env))
    return a


def equality_guards(graph, sym_values: dict) -> list:
    """Pairs of distinct size expressions that were equal at capture time."""
    env = {sym: sym_values[name] for name, sym in graph.symbols.items() if name in sym_values}
    by_value: dict = {}
    for v in graph.values():
        for s in v.shape:
            if isinstance(s, sympy.Basic) and not s.is_number:
                by_value.setdefault(int(s.subs(env)), set()).add(s)
    pairs = []
    for exprs in by_value.values():
        exprs = sorted(exprs, key=str)
        pairs += [(exprs[0], e) for e in exprs[1:]]
    return pairs


def make_size_check(graph, sym_values: dict, names: list):
    """A function of the symbol values (in ``names`` order) that is True while every
    :func:`equality_guards` pair still holds, or None when there is nothing to check."""
    pairs = equality_guards(graph, sym_values)
    if not pairs:
        return None
    from sympy.printing.pycode import pycode
    conds = " and ".join(f"({pycode(a)}) == ({pycode(b)})" for a, b in pairs)
    import math
    glb = {"math": math}
    exec(f"def check({', '.join(names)}):\n    return {conds}\n", glb)
    fn = glb["check"]
    fn.pairs = pairs
    return fn
