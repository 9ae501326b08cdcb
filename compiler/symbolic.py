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

from .ir import Value, as_meta, run_meta


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


class AssumptionCheck:
    """:func:`check_assumptions` for the calls of a compiled entry: only the nodes whose
    shapes or attributes hold a symbol are re-run, by one generated function that
    evaluates the size expressions as Python (sympy's ``subs`` per call would cost more
    than the graph: a decoding loop's position is a new symbol value on every call)."""

    def __init__(self, graph, names: list):
        from framework.device import meta
        from framework.tensor import meta_tensor
        from sympy.printing.pycode import pycode
        syms = set(graph.symbols.values())
        glb: dict = {"_mt": meta_tensor, "_fail": _fail, "math": __import__("math")}

        def const(x):
            glb[f"_c{len(glb)}"] = x
            return f"_c{len(glb) - 1}"

        def src(x):  # Python source building x for the call's sizes
            if isinstance(x, sympy.Basic) and x.free_symbols & syms:
                return f"int({pycode(x)})"
            if isinstance(x, sympy.Basic):
                return repr(int(x))
            if type(x) in (tuple, list) and _has_sym(x, syms):
                items = "".join(f"{src(v)}, " for v in x)
                return f"({items})" if type(x) is tuple else f"[{items}]"
            if type(x) is slice and _has_sym(x, syms):
                return f"slice({src(x.start)}, {src(x.stop)}, {src(x.step)})"
            return const(x)

        lines = [f"def check({', '.join(names)}):"]
        self.n_nodes = 0
        for n in graph.nodes:
            vals = [v for v in n.inputs if isinstance(v, Value)] + list(n.outputs)
            if not (_has_sym([v.shape for v in vals], syms) or _has_sym(n.attrs, syms)):
                continue
            self.n_nodes += 1
            args = ", ".join(
                const(as_meta(v)) if not isinstance(v, Value) or v.kind == "scalar_input" or
                not _has_sym(v.shape, syms) else
                f"_mt({src(v.shape)}, {const(v.dtype)}, {const(v.device or meta)})"
                for v in n.inputs)
            attrs = "".join(f"{k}={src(a)}, " for k, a in n.attrs.items())
            want = "(" + "".join(f"{src(o.shape)}, " for o in n.outputs) + ")"
            lines += [f"    _fail({const(n.op)}, [{args}], dict({attrs}), {want})"]
        exec("\n".join(lines + ["    return None"]), glb)
        self.check = glb["check"]

    def __call__(self, sizes) -> None:
        """Raise ShapeError if a meta rule fails or disagrees for these symbol values."""
        self.check(*sizes)


def _fail(op, args, attrs, want) -> None:
    """Run one meta rule with concrete sizes; ShapeError unless it gives ``want``."""
    try:
        m = op.meta(*args, **attrs)
    except (ValueError, TypeError, IndexError) as e:
        raise ShapeError(f"symbolic capture assumed something false at {op.name}: {e}") from e
    for (shape, _dt), w in zip((m,) if op.num_outputs == 1 else m, want):
        if tuple(shape) != w:
            raise ShapeError(f"symbolic capture: {op.name} gives {list(shape)}, the graph "
                             f"says {list(w)}")


def _has_sym(x, syms) -> bool:
    """True when ``x`` (nested tuples, lists, dicts, slices) holds a size expression."""
    if isinstance(x, sympy.Basic):
        return bool(x.free_symbols & syms)
    if isinstance(x, (tuple, list)):
        return any(_has_sym(v, syms) for v in x)
    if isinstance(x, dict):
        return any(_has_sym(v, syms) for v in x.values())
    if isinstance(x, slice):
        return _has_sym(x.start, syms) or _has_sym(x.stop, syms) or _has_sym(x.step, syms)
    return False
