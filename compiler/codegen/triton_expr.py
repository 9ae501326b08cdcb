"""The value graph of one generated Triton kernel and how it is emitted as source.

A kernel body is a DAG of :class:`E` nodes (loads, scalars, elementwise ops, reductions,
scans) built with :class:`KernelBuilder`. Nodes are hash-consed, so equal subexpressions
(the same load at the same index, the same op on the same operands) are emitted once.

Kernels iterate over ``xindex`` (one program per ``XBLOCK`` output rows or elements) and,
for reductions and scans, over ``rindex`` (the reduced extent). :func:`emit_pointwise` and
:func:`emit_reduction` turn the DAG into kernel statements; a reduction kernel carries two
bodies: a persistent one (the whole row in one ``RBLOCK``, every load done once) and a
looped one (one pass over the row per reduction level, then a pass for the outputs).
"""

from __future__ import annotations

import itertools

import sympy

from framework import dtypes

from .triton_index import as_expr, texpr
from .triton_ops import BINARY, PREDICATES, UNARY, cast, compute_dtype, is_float, tl_type

XSYM = sympy.Symbol("xindex", integer=True, nonnegative=True)
RSYM = sympy.Symbol("rindex", integer=True, nonnegative=True)


class UnsupportedError(Exception):
    """The renderer cannot express this computation as one kernel."""


class Buf:
    """A pointer argument: name, dtype, shape and strides (sympy, in elements)."""

    def __init__(self, name, dtype, shape, strides):
        self.name = name
        self.dtype = dtype
        self.shape = tuple(as_expr(s) for s in shape)
        self.strides = tuple(as_expr(s) for s in strides)

    def __repr__(self) -> str:
        return f"Buf({self.name}, {self.dtype.name}, {self.shape})"


class E:
    """One value of the kernel body (held in its compute dtype)."""

    __slots__ = ("kind", "args", "data", "dtype", "deps_r", "level", "_key")

    def __init__(self, kind, args, data, dtype, deps_r=None, level=None):
        self.kind = kind
        self.args = tuple(args)
        self.data = data
        self.dtype = dtype
        self.deps_r = any(a.deps_r for a in self.args) if deps_r is None else deps_r
        self.level = max((a.level for a in self.args), default=0) if level is None else level
        self._key = (kind, tuple(id(a) for a in self.args), data, dtype)


class KernelBuilder:
    """Builds the value DAG and the list of stores of one kernel."""

    def __init__(self, reduction: bool = False, fixed_constants: bool = False):
        self.reduction = reduction
        self._nodes: dict = {}
        self.bufs: dict[str, Buf] = {}
        self.scalars: dict[str, object] = {}
        # With ``fixed_constants`` every call passes each scalar the value it was built
        # with (a compiled graph's constants and size expressions), so equal constants can
        # share one argument and the values computed from them are computed once. Eager
        # kernels are cached by operand kinds and get other values per call: never shared.
        self._constants: dict | None = {} if fixed_constants else None
        self.stores: list = []
        self._dyn: dict = {}  # sympy symbol -> E (loaded values used inside addresses)
        self._ids = itertools.count()

    def _node(self, kind, args, data, dtype, **kw) -> E:
        e = E(kind, args, data, dtype, **kw)
        return self._nodes.setdefault(e._key, e)

    # -- leaves ------------------------------------------------------------------------
    def add_buf(self, buf: Buf) -> Buf:
        """Register a pointer argument."""
        self.bufs[buf.name] = buf
        return buf

    def load(self, buf: Buf, addr, conds=()) -> E:
        """``buf[addr]`` (masked by the iteration masks and ``conds``: bool E nodes)."""
        addr = sympy.expand(as_expr(addr))
        dyn = tuple(self._dyn[s] for s in sorted(addr.free_symbols, key=str) if s in self._dyn)
        deps_r = RSYM in addr.free_symbols or any(c.deps_r for c in conds) or \
            any(d.deps_r for d in dyn)
        return self._node("load", dyn + tuple(conds), (buf.name, addr, len(dyn)), buf.dtype,
                          deps_r=deps_r)

    def scalar(self, value, dtype, force_arg: bool = False) -> E:
        """A Python number operand: a kernel argument, except finite values computed in
        float64, which are literals (Triton passes Python floats as fp32)."""
        if isinstance(value, bool):
            value = int(value)
        c = compute_dtype(dtype)
        if c is dtypes.float64 and not force_arg and value == value and \
                abs(value) != float("inf"):
            return self._node("lit", (), (float(value),), dtype)
        key = None
        if self._constants is not None and not force_arg:
            # repr keeps -0.0 apart from 0.0; the type keeps True apart from 1
            key = (type(value), value if isinstance(value, sympy.Basic) else repr(value), dtype)
            if key in self._constants:
                return self._constants[key]
        name = f"sc{len(self.scalars)}"
        self.scalars[name] = value
        e = self._node("scalar", (), (name,), dtype)
        if key is not None:
            self._constants[key] = e
        return e

    def rand(self, seed: E, offset, normal: bool, dtype) -> E:
        """Philox uniform [0, 1) (or standard normal) numbers at ``offset``."""
        return self._node("rand", (seed,), (as_expr(offset), normal), dtype,
                          deps_r=RSYM in as_expr(offset).free_symbols)

    def literal(self, value, dtype) -> E:
        """A constant baked into the source."""
        return self._node("lit", (), (value,), dtype)

    def index_value(self, expr, dtype) -> E:
        """An index expression used as data (arange, triangular masks)."""
        expr = as_expr(expr)
        return self._node("index", (), (expr,), dtype, deps_r=RSYM in expr.free_symbols)

    def cond(self, exprs_lo_hi) -> E:
        """``lo <= expr < hi`` for every (expr, lo, hi) triple (a bool E)."""
        items = tuple((as_expr(e), None if lo is None else as_expr(lo),
                       None if hi is None else as_expr(hi)) for e, lo, hi in exprs_lo_hi)
        deps = any(RSYM in e.free_symbols for e, _, _ in items)
        return self._node("cond", (), (items,), dtypes.bool_, deps_r=deps)

    def dyn(self, e: E) -> sympy.Symbol:
        """A symbol standing for the value ``e`` inside index expressions (gathers)."""
        for s, v in self._dyn.items():
            if v is e:
                return s
        s = sympy.Symbol(f"dyn{next(self._ids)}", integer=True)
        self._dyn[s] = e
        return s

    # -- elementwise -------------------------------------------------------------------
    def op(self, name: str, args, dtype) -> E:
        """Elementwise op ``name`` on same-dtype operands; ``dtype`` is the result dtype."""
        if name not in UNARY and name not in BINARY:
            raise UnsupportedError(f"no Triton rendering for op {name!r}")
        return self._node("op", args, (name, args[0].dtype), dtype)

    def cast(self, x: E, dtype) -> E:
        """``x`` converted to ``dtype``."""
        if x.dtype is dtype:
            return x
        return self._node("cast", (x,), (x.dtype,), dtype)

    def where(self, c: E, a: E, b: E) -> E:
        """``c ? a : b``."""
        return self._node("where", (c, a, b), (), a.dtype)

    def reduce(self, kind: str, x: E, dtype) -> E:
        """Reduce ``x`` over ``rindex`` (kind: sum prod amax amin argmax argmin any all)."""
        if not self.reduction:
            raise UnsupportedError("reduction in a pointwise kernel")
        return self._node("reduce", (x,), (kind,), dtype, deps_r=False, level=x.level + 1)

    def scan(self, kind: str, x: E) -> E:
        """Inclusive scan of ``x`` along ``rindex`` (kind: cumsum, cumprod)."""
        return self._node("scan", (x,), (kind,), x.dtype, deps_r=True)

    def store(self, buf: Buf, addr, value: E, conds=(), mode="store") -> None:
        """``buf[addr] = value`` (``mode="atomic_add"`` accumulates)."""
        addr = sympy.expand(as_expr(addr))
        dyn = tuple(self._dyn[s] for s in sorted(addr.free_symbols, key=str) if s in self._dyn)
        deps_r = value.deps_r or RSYM in addr.free_symbols or any(d.deps_r for d in dyn)
        self.stores.append((buf, addr, value, tuple(conds), mode, dyn, deps_r))


# ---------------------------------------------------------------------------------------
# emission
_NEUTRAL = {"sum": 0, "prod": 1, "any": 0, "all": 1}


def _extreme(dtype, high: bool) -> str:
    if is_float(dtype):
        return "float('inf')" if high else "-float('inf')"
    import numpy as np
    info = np.iinfo(np.int8 if dtype is dtypes.bool_ else dtype.np)
    return str(int(info.max if high else info.min))


class _Scope:
    def __init__(self, parent=None):
        self.parent = parent
        self.lines: list[str] = []
        self.cache: dict = {}
        self.after: list[str] = []  # carry updates of scans, emitted at the end of the loop

    def lookup(self, e):
        s = self
        while s is not None:
            if e._key in s.cache:
                return s.cache[e._key]
            s = s.parent
        return None


def _float_text(v) -> str:
    if v != v:
        return "float('nan')"
    if abs(v) == float("inf"):
        return "float('inf')" if v > 0 else "-float('inf')"
    return repr(float(v))


class Emitter:
    """Turns a KernelBuilder's DAG into statements."""

    def __init__(self, kb: KernelBuilder, persistent: bool):
        self.kb = kb
        self.persistent = persistent
        self._ids = itertools.count()
        self.carry_inits: list[str] = []
        self.row_invariant = False  # emitting loads hoisted above the persistent row loop
        # shape of a scalar: Triton broadcasts only between tensors of equal rank
        self._one = "[1, 1]" if kb.reduction else "[1]"

    def fresh(self, prefix="t") -> str:
        return f"{prefix}{next(self._ids)}"

    def _mask(self, deps_r: bool) -> str:
        if self.row_invariant:
            return "rmask"
        return "xmask & rmask" if (deps_r and self.kb.reduction) else "xmask"

    def _pad(self, addr, deps_r) -> str:
        """Terms making a pointer as wide as its mask (a constant address is a scalar)."""
        syms = addr.free_symbols
        if syms & set(self.kb._dyn) or self.row_invariant:
            return ""
        out = "" if XSYM in syms else " + 0 * xindex"
        if deps_r and self.kb.reduction and RSYM not in syms:
            out += " + 0 * rindex"
        return out

    def _addr_text(self, addr, dyn_names) -> str:
        subs = {s: sympy.Symbol(n) for s, n in dyn_names.items()}
        return texpr(addr.xreplace(subs)) if subs else texpr(addr)

    def emit(self, e: E, scope: _Scope) -> str:
        """Emit ``e`` (and what it needs) and return its variable name."""
        name = scope.lookup(e)
        if name is not None:
            return name
        target = scope
        if not e.deps_r:
            while target.parent is not None:
                target = target.parent
        args = [self.emit(a, scope if a.deps_r else target) for a in e.args]
        text = self._text(e, args, target)
        name = self.fresh()
        target.lines.append(f"{name} = {text}")
        target.cache[e._key] = name
        return name

    def _text(self, e: E, args, scope) -> str:
        c = compute_dtype(e.dtype)
        k = e.kind
        if k == "load":
            bufname, addr, ndyn = e.data
            dyn_syms = [s for s in sorted(addr.free_symbols, key=str) if s in self.kb._dyn]
            dyn_names = dict(zip(dyn_syms, args[:ndyn]))
            mask = " & ".join([self._mask(e.deps_r)] + list(args[ndyn:]))
            ptr = f"{bufname} + ({self._addr_text(addr, dyn_names)}){self._pad(addr, e.deps_r)}"
            text = f"tl.load({ptr}, mask={mask}, other=0)"
            return text if c is e.dtype else f"{text}.to({tl_type(c)})"
        if k == "scalar":
            if e.dtype is dtypes.bool_:
                return f"({e.data[0]} != 0)"
            # a runtime scalar may arrive as a Python number (interpreter): add a typed zero;
            # an int argument is 32/64-bit, so narrow integer types are cast back (uint8 //
            # int32 is refused for mixed signedness)
            text = f"(tl.zeros({self._one}, {tl_type(c)}) + {e.data[0]})"
            return text if is_float(c) else f"{text}.to({tl_type(c)})"
        if k == "lit":
            v = e.data[0]
            if c is dtypes.bool_:
                return f"tl.full({self._one}, {1 if v else 0}, tl.int1)"
            if is_float(c):
                return f"tl.full({self._one}, {_float_text(v)}, {tl_type(c)})"
            return f"tl.full({self._one}, {int(v)}, {tl_type(c)})"
        if k == "rand":
            fn = "tl.randn" if e.data[1] else "tl.rand"
            return f"{fn}({args[0]}, ({texpr(e.data[0])}).to(tl.uint32)).to({tl_type(c)})"
        if k == "index":
            return f"({texpr(e.data[0])}).to({tl_type(c)})"
        if k == "cond":
            parts = []
            for expr, lo, hi in e.data[0]:
                t = texpr(expr)
                if lo is not None:
                    parts.append(f"({t} >= {texpr(lo)})")
                if hi is not None:
                    parts.append(f"({t} < {texpr(hi)})")
            return "(" + " & ".join(parts) + ")"
        if k == "op":
            name, in_dtype = e.data
            ci = compute_dtype(in_dtype)
            fn = UNARY.get(name) or BINARY[name]
            text = fn(*args, ci)
            if name in PREDICATES or e.dtype is dtypes.bool_:
                return text
            return f"({text}).to({tl_type(c)})"
        if k == "cast":
            return cast(args[0], e.data[0], e.dtype)
        if k == "where":
            return f"tl.where({args[0]}, {args[1]}, {args[2]})"
        if k == "reduce":
            if not self.persistent:
                raise UnsupportedError("internal: reduction reached outside its loop")
            kind = e.data[0]
            mv = _masked(self._mask(True), args[0], compute_dtype(e.args[0].dtype), kind)
            return _finish_text(kind, mv, "tl.broadcast_to(rindex, [XBLOCK, RBLOCK]).to(tl.int64)",
                                c)
        if k == "scan":
            return self._scan(e, args[0], scope)
        raise UnsupportedError(f"unknown node kind {k}")

    def _scan(self, e: E, v: str, scope) -> str:
        kind = e.data[0]
        neutral = 0 if kind == "cumsum" else 1
        mv = f"tl.where({self._mask(True)}, tl.broadcast_to({v}, [XBLOCK, RBLOCK]), {neutral})"
        scanned = f"tl.cumsum({mv}, 1)" if kind == "cumsum" else \
            f"tl.associative_scan({mv}, 1, _mul)"
        if self.persistent:
            return scanned
        carry = self.fresh("carry")
        self.carry_inits.append(f"{carry} = tl.full([XBLOCK, 1], {neutral}, "
                                f"{tl_type(compute_dtype(e.dtype))})")
        total = f"tl.sum({mv}, 1)[:, None]" if kind == "cumsum" else \
            f"tl.reduce({mv}, 1, _mul)[:, None]"
        op = "+" if kind == "cumsum" else "*"
        scope.after.append(f"{carry} = {carry} {op} {total}")
        return f"({scanned} {op} {carry})"


def _masked(mask, v, src, kind) -> str:
    if kind in ("amax", "argmax"):
        neutral = _extreme(src, False)
    elif kind in ("amin", "argmin"):
        neutral = _extreme(src, True)
    else:
        neutral = _NEUTRAL[kind]
    v2 = f"{v}.to(tl.int8)" if src is dtypes.bool_ else v
    return f"tl.where({mask}, tl.broadcast_to({v2}, [XBLOCK, RBLOCK]), {neutral})"


def _finish_text(kind, acc, idx, c, acc_i=None) -> str:
    tc = tl_type(c)
    if kind in ("argmax", "argmin"):
        fn = "_argmax" if kind == "argmax" else "_argmin"
        return f"tl.reduce(({acc}, {acc_i or idx}), 1, {fn})[1][:, None]"
    if kind == "sum":
        return f"tl.sum({acc}, 1)[:, None].to({tc})"
    if kind == "prod":
        return f"tl.reduce({acc}, 1, _mul)[:, None].to({tc})"
    if kind in ("any", "all"):
        return f"({'tl.max' if kind == 'any' else 'tl.min'}({acc}, 1)[:, None] != 0)"
    return f"tl.reduce({acc}, 1, {'_max_nan' if kind == 'amax' else '_min_nan'})[:, None]"


def _store_line(em: Emitter, st, scope) -> str:
    buf, addr, value, conds, mode, dyn, deps_r = st
    v = em.emit(value, scope)
    dyn_names = {}
    for s in sorted(addr.free_symbols, key=str):
        if s in em.kb._dyn:
            dyn_names[s] = em.emit(em.kb._dyn[s], scope)
    cond_names = [em.emit(c, scope) for c in conds]
    mask = " & ".join([em._mask(deps_r)] + cond_names)
    ptr = f"{buf.name} + ({em._addr_text(addr, dyn_names)}){em._pad(addr, deps_r)}"
    val = f"{v}.to({tl_type(buf.dtype)})"
    if em.kb.reduction:
        shape = "[XBLOCK, RBLOCK]" if deps_r else "[XBLOCK, 1]"
        val = f"tl.broadcast_to({val}, {shape})"
    if mode == "atomic_add":
        return f"tl.atomic_add({ptr}, {val}, mask={mask}, sem='relaxed')"
    return f"tl.store({ptr}, {val}, mask={mask})"


def _needed(kb: KernelBuilder, kinds: tuple) -> list[E]:
    """Nodes of ``kinds`` that the stores need, in creation order ("load" means loads whose
    addresses depend on no loaded value, "gather" the others).

    A persistent body emits these first: the direct loads put every independent memory
    request in flight before any arithmetic waits on one, the indirect loads (such as
    cross-entropy's gather of the target logit) go out as soon as their index arrives,
    and the row reductions run while they are on their way, so a program pays about two
    memory latencies rather than a chain of them with the arithmetic in between."""
    seen, stack = set(), []
    for st in kb.stores:
        addr, value, conds = st[1], st[2], st[3]
        stack += [value, *conds, *(kb._dyn[s] for s in addr.free_symbols if s in kb._dyn)]
    while stack:
        e = stack.pop()
        if id(e) not in seen:
            seen.add(id(e))
            stack.extend(e.args)
    kind = {"load": lambda e: e.kind == "load" and not e.args,
            "gather": lambda e: e.kind == "load" and bool(e.args),
            "reduce": lambda e: e.kind == "reduce"}
    return [e for e in kb._nodes.values() if id(e) in seen and any(kind[k](e) for k in kinds)]


def emit_pointwise(kb: KernelBuilder) -> list[str]:
    """Body statements of a 1-D pointwise kernel (``xindex``/``xmask`` already defined)."""
    em = Emitter(kb, persistent=True)
    scope = _Scope()
    for e in _needed(kb, ("load",)):
        em.emit(e, scope)
    for st in kb.stores:
        scope.lines.append(_store_line(em, st, scope))
    return scope.lines


def _loop(lines) -> list[str]:
    head = ["for roffset in range(0, rnumel, RBLOCK):",
            "    rindex = roffset + tl.arange(0, RBLOCK)[None, :]",
            "    if INDEX64:",
            "        rindex = rindex.to(tl.int64)",
            "    rmask = rindex < rnumel"]
    return head + ["    " + line for line in lines]


def _row_invariant(e: E) -> bool:
    """A direct load along the row whose address ignores the row index (layer norm's
    weight and bias): the same values for every row a program handles."""
    return e.kind == "load" and not e.args and e.deps_r and XSYM not in e.data[1].free_symbols


def row_tiles(kb: KernelBuilder) -> int:
    """Row-sized loads of a reduction kernel: each holds ``XBLOCK x RBLOCK`` values in
    registers while the rows are reduced (what bounds a launch's elements per thread)."""
    return sum(1 for e in _needed(kb, ("load",)) if e.deps_r)


def has_indirect_loads(kb: KernelBuilder) -> bool:
    """True when an address depends on loaded values (cross-entropy's target logit)."""
    return bool(_needed(kb, ("gather",))) or any(e.args for e in _needed(kb, ("load",)))


def emit_persistent_rows(kb: KernelBuilder) -> tuple[list[str], list[str]]:
    """Statements of a reduction kernel whose block holds whole rows: ``(head, body)``.

    ``head`` runs once per program (``rindex``, ``rmask`` and the row-invariant loads);
    ``body`` runs for each block of rows the program strides over (``xindex``/``xmask``
    defined). Hoisting the row-invariant loads matters when a capped grid strides over
    many rows: layer norm would otherwise read its weight and bias again for every row."""
    em = Emitter(kb, persistent=True)
    head, root = _Scope(), _Scope()
    head.lines += ["rindex = tl.arange(0, RBLOCK)[None, :]", "if INDEX64:",
                   "    rindex = rindex.to(tl.int64)", "rmask = rindex < rnumel"]
    loads = _needed(kb, ("load",))
    em.row_invariant = True
    for e in filter(_row_invariant, loads):
        root.cache[e._key] = em.emit(e, head)
    em.row_invariant = False
    for e in [e for e in loads if e.deps_r] + [e for e in loads if not e.deps_r] + \
            _needed(kb, ("gather",)) + _needed(kb, ("reduce",)):
        em.emit(e, root)
    for st in kb.stores:
        root.lines.append(_store_line(em, st, root))
    return head.lines, root.lines


def emit_reduction(kb: KernelBuilder, persistent: bool) -> list[str]:
    """Body statements of a reduction/scan kernel (``xindex``/``xmask`` defined): one block
    holding the whole row (``persistent``), or one loop over the row per reduction level
    followed by a loop computing and storing the row-sized outputs."""
    if persistent:
        head, body = emit_persistent_rows(kb)
        return head + body
    em = Emitter(kb, persistent)
    root = _Scope()
    reductions = [n for n in kb._nodes.values() if n.kind == "reduce"]
    idx = "tl.broadcast_to(rindex, [XBLOCK, RBLOCK]).to(tl.int64)"
    for level in sorted({n.level for n in reductions}):
        loop = _Scope(root)
        inits, finishes = [], []
        for n in (r for r in reductions if r.level == level):
            kind = n.data[0]
            src, c = compute_dtype(n.args[0].dtype), compute_dtype(n.dtype)
            mv = _masked(em._mask(True), em.emit(n.args[0], loop), src, kind)
            acc, name = em.fresh("acc"), em.fresh()
            tsrc = "tl.int8" if src is dtypes.bool_ else tl_type(src)
            if kind in ("argmax", "argmin"):
                fn = "_argmax" if kind == "argmax" else "_argmin"
                inits += [f"{acc} = tl.full([XBLOCK, RBLOCK], {_extreme(src, kind == 'argmin')}, "
                          f"{tsrc})", f"{acc}_i = tl.full([XBLOCK, RBLOCK], 2**62, tl.int64)"]
                loop.lines.append(f"{acc}, {acc}_i = {fn}({acc}, {acc}_i, {mv}, {idx})")
            elif kind in ("amax", "amin"):
                inits.append(f"{acc} = tl.full([XBLOCK, RBLOCK], "
                             f"{_extreme(src, kind == 'amin')}, {tsrc})")
                fn = "_max_nan" if kind == "amax" else "_min_nan"
                loop.lines.append(f"{acc} = {fn}({acc}, {mv})")
            else:
                inits.append(f"{acc} = tl.full([XBLOCK, RBLOCK], {_NEUTRAL[kind]}, {tsrc})")
                update = {"sum": f"{acc} + {mv}", "prod": f"{acc} * {mv}",
                          "any": f"tl.maximum({acc}, {mv})",
                          "all": f"tl.minimum({acc}, {mv})"}[kind]
                loop.lines.append(f"{acc} = {update}")
            finishes.append(f"{name} = {_finish_text(kind, acc, idx, c, acc + '_i')}")
            root.cache[n._key] = name
        root.lines += inits + _loop(loop.lines) + finishes
    for st in kb.stores:
        if not st[6]:
            root.lines.append(_store_line(em, st, root))
    late = [st for st in kb.stores if st[6]]
    if late:
        loop = _Scope(root)
        body = [_store_line(em, st, loop) for st in late]
        root.lines += em.carry_inits + _loop(loop.lines + body + loop.after)
    return root.lines
