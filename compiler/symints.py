"""Python int arguments as symbolic integers (PyTorch's dynamic ints).

The first capture of a compiled function specializes on the value of every int argument.
When only an int's value changes (``start_pos`` of a KV-cache decoding step), the next
capture replaces it by a :class:`SymInt`: an object that carries the real value and a sympy
symbol (``integer=True``, and positive or negative as the captured value is, with a guard
saying so). Its arithmetic with ints and other SymInts builds expressions; a comparison
returns its real answer and records a guard, so a different answer recaptures instead of
reusing the wrong branch. Where the framework receives one (a slice bound, ``narrow``,
``arange(n)``, a shape, a tensor operand), ``framework.ops.registry.apply`` lowers it to
its sympy expression, so the graph holds it as it holds a symbolic tensor dim: a runtime
value read from the argument on every call.

A use that needs a concrete int -- ``range(n)``, an index into a Python list, ``int(n)``,
``hash``, ``str`` -- *specializes*: it returns the value and records an equality guard,
and the compiled function captures again with that int static (every new value then
recompiles, as in PyTorch). True division and a product with a float give a float
runtime scalar (:class:`compiler.scalars.ScalarProxy`). Values 0 and 1 stay specialized,
and so do bools.
"""

from __future__ import annotations

import operator

import numpy as np
import sympy

from .scalars import ScalarProxy

_OPS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
        "eq": operator.eq, "ne": operator.ne}
_TEXT = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_NOT = {"lt": "ge", "le": "gt", "gt": "le", "ge": "lt", "eq": "ne", "ne": "eq"}
# int methods a SymInt answers by specializing (``n.bit_length()``)
_INT_ATTRS = frozenset(n for n in dir(int) if not n.startswith("_"))


class SymInt:
    """A traced int argument (see the module docstring): ``value`` and sympy ``expr``."""

    __slots__ = ("value", "expr", "owner")

    def __init__(self, value: int, expr, owner):
        self.value, self.expr, self.owner = value, expr, owner

    # -- arithmetic ----------------------------------------------------------------------
    def _other(self, o):
        """(value, expr) of an int-like operand, or None."""
        if type(o) is SymInt:
            return o.value, o.expr
        if isinstance(o, (int, np.integer)):  # bools too, as Python adds them
            return int(o), sympy.Integer(int(o))
        if isinstance(o, sympy.Basic) and getattr(o, "is_integer", False):  # a symbolic dim
            return self.owner.hint(o), o
        return None

    def _bin(self, o, fn, efn, reverse=False):
        oth = self._other(o)
        if oth is None:
            if isinstance(o, float):  # ScalarProxy too: the result is a float runtime scalar
                return self._float_bin(o, fn, reverse)
            return NotImplemented
        (a, ea), (b, eb) = ((oth, (self.value, self.expr)) if reverse
                            else ((self.value, self.expr), oth))
        return SymInt(fn(a, b), efn(ea, eb), self.owner)

    def _float_bin(self, o, fn, reverse):
        if isinstance(o, sympy.Basic) or _from_framework():
            # over a symbolic dim, or inside the framework (``numel / rest`` in a reshape's
            # shape rule, which sympy would turn a float scalar's value into): an exact
            # sympy expression, as a dim's
            oe = o.expr if type(o) in (SymInt, ScalarProxy) else o
            return fn(oe, self.expr) if reverse else fn(self.expr, oe)
        if type(o) is SymInt:
            o = self.owner.as_scalar(o)
        elif not isinstance(o, (int, float)):
            return NotImplemented
        me = self.owner.as_scalar(self)
        return fn(o, me) if reverse else fn(me, o)

    def __add__(self, o):
        return self._bin(o, operator.add, operator.add)

    def __radd__(self, o):
        return self._bin(o, operator.add, operator.add, True)

    def __sub__(self, o):
        return self._bin(o, operator.sub, operator.sub)

    def __rsub__(self, o):
        return self._bin(o, operator.sub, operator.sub, True)

    def __mul__(self, o):
        return self._bin(o, operator.mul, operator.mul)

    def __rmul__(self, o):
        return self._bin(o, operator.mul, operator.mul, True)

    def __floordiv__(self, o):
        return self._bin(o, operator.floordiv, _floordiv)

    def __rfloordiv__(self, o):
        return self._bin(o, operator.floordiv, _floordiv, True)

    def __mod__(self, o):
        return self._bin(o, operator.mod, sympy.Mod)

    def __rmod__(self, o):
        return self._bin(o, operator.mod, sympy.Mod, True)

    def __divmod__(self, o):
        return self // o, self % o

    def __truediv__(self, o):
        return self._float_bin(o, operator.truediv, False)

    def __rtruediv__(self, o):
        return self._float_bin(o, operator.truediv, True)

    def __pow__(self, o):
        if isinstance(o, int) and not isinstance(o, bool) and o >= 0:
            return SymInt(self.value ** o, self.expr ** o, self.owner)
        return self._float_bin(o, operator.pow, False) if isinstance(o, float) else \
            operator.pow(self.specialize("** with a non-constant exponent"), o)

    def __neg__(self):
        return SymInt(-self.value, -self.expr, self.owner)

    def __pos__(self):
        return self

    def __abs__(self):
        return SymInt(abs(self.value), sympy.Abs(self.expr), self.owner)

    def __trunc__(self):
        return self

    __floor__ = __ceil__ = __trunc__

    def __round__(self, ndigits=None):
        return self if ndigits is None or ndigits >= 0 else \
            round(self.specialize("round()"), ndigits)

    # -- comparisons: the real answer, and a guard ----------------------------------------
    def _cmp(self, o, name):
        if isinstance(o, float):  # 2 < 2.5: a float comparison on a runtime scalar
            return _OPS[name](self.owner.as_scalar(self), o)
        oth = self._other(o)
        if oth is None:
            return NotImplemented
        value, expr = oth
        res = _OPS[name](self.value, value)
        if _decided(self.expr - expr, name) is None:  # else the same for every value the
            self.owner.add_symint_guard(self.expr, name, expr, res)  # guards allow
        return res

    def __lt__(self, o):
        return self._cmp(o, "lt")

    def __le__(self, o):
        return self._cmp(o, "le")

    def __gt__(self, o):
        return self._cmp(o, "gt")

    def __ge__(self, o):
        return self._cmp(o, "ge")

    def __eq__(self, o):
        r = self._cmp(o, "eq")
        return False if r is NotImplemented else r

    def __ne__(self, o):
        r = self._cmp(o, "ne")
        return True if r is NotImplemented else r

    def __bool__(self):
        return self._cmp(0, "ne")

    # -- uses that need the concrete value: specialize ------------------------------------
    def specialize(self, why: str) -> int:
        """The value, with a guard that it stays this value (the capture is then redone
        with the argument static)."""
        self.owner.specialize_symint(self.expr, self.value, why)
        return self.value

    def __index__(self):
        return self.specialize("used as an index or a count (range(), a list index)")

    def __int__(self):
        return self.specialize("int()")

    def __float__(self):
        return float(self.specialize("float()"))

    def __complex__(self):
        return complex(self.specialize("complex()"))

    def __hash__(self):
        return hash(self.specialize("hashed (a dict key or set member)"))

    def __str__(self):
        return str(self.specialize("str()"))

    def __format__(self, spec):
        return format(self.specialize("formatted into a string"), spec)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.specialize("converted to a NumPy array"), dtype=dtype)

    def __getattr__(self, name):
        if name in _INT_ATTRS:  # n.bit_length(), n.real
            return getattr(self.specialize(f".{name}"), name)
        raise AttributeError(f"'SymInt' object has no attribute {name!r}")

    def __and__(self, o):
        return self.specialize("&") & o

    def __rand__(self, o):
        return o & self.specialize("&")

    def __or__(self, o):
        return self.specialize("|") | o

    def __ror__(self, o):
        return o | self.specialize("|")

    def __xor__(self, o):
        return self.specialize("^") ^ o

    def __lshift__(self, o):
        return self.specialize("<<") << o

    def __rshift__(self, o):
        return self.specialize(">>") >> o

    def __invert__(self):
        return ~self.specialize("~")

    # -- the framework's side ------------------------------------------------------------
    def _sympy_(self):
        """sympy's conversion protocol: the expression (``sympy.Max(0, n)``)."""
        return self.expr

    @property
    def free_symbols(self):
        """The expression's symbols (how the framework tells a symbolic slice bound)."""
        return self.expr.free_symbols

    def __repr__(self) -> str:
        return f"SymInt({self.value}, {self.expr})"


def _from_framework() -> bool:
    """True when the SymInt operation being run was called from the framework or the
    compiler rather than from user code."""
    import sys
    from .tracer import _ROOTS
    f = sys._getframe(1)
    while f.f_code.co_filename == __file__:
        f = f.f_back
    return f.f_code.co_filename.startswith(_ROOTS)


def _floordiv(a, b):
    return sympy.floor(a / b)


_SIGN = {"lt": "is_negative", "le": "is_nonpositive", "gt": "is_positive",
         "ge": "is_nonnegative", "eq": "is_zero", "ne": "is_nonzero"}


def _decided(diff, name):
    """``diff <op> 0`` as sympy's assumptions decide it for every value (``n + 1 > n``,
    ``n != 0`` for a positive n), or None."""
    return getattr(sympy.sympify(diff), _SIGN[name])


def lower(x):
    """``x`` with every SymInt (in tuples, lists, slices) replaced by its expression."""
    t = type(x)
    if t is SymInt:
        return x.expr
    if t is tuple or t is list:
        return t(lower(v) for v in x) if any(_has(v) for v in x) else x
    if t is slice:
        return slice(lower(x.start), lower(x.stop), lower(x.step)) if _has(x) else x
    return x


def _has(x) -> bool:
    t = type(x)
    if t is SymInt:
        return True
    if t is tuple or t is list:
        return any(_has(v) for v in x)
    if t is slice:
        return _has(x.start) or _has(x.stop) or _has(x.step)
    return False


def lower_operands(args, attrs):
    """``apply``'s hook while int arguments are traced: the op sees sympy expressions."""
    if any(_has(a) for a in args):
        args = tuple(lower(a) for a in args)
    if attrs and any(_has(v) for v in attrs.values()):
        attrs = {k: lower(v) for k, v in attrs.items()}
    return args, attrs


class IntArgs:
    """The int arguments of one capture: which become SymInts (it is their ``owner``),
    the guards their uses recorded, which uses specialized them."""

    def __init__(self, tracer, graph, dynamic, hints: dict):
        self.tracer, self.graph = tracer, graph
        self.dynamic = dynamic or ()   # ordinals (among the int leaves) to make symbolic
        self.hints = hints             # symbol name -> captured value (the dims' too)
        self.count = 0
        self.syms: list = []           # (symbol, path, argument name, ordinal)
        self.guards: list = []         # (expr, op, other expr, result)
        self.specialized: dict = {}    # ordinal -> why
        self._prev_hook = None
        tracer.symints = self  # ScalarProxy's math.floor/ceil make SymInts (compiler/scalars.py)

    def standin(self, path, value, name):
        """The stand-in of the int leaf at ``path`` (called in ``flatten`` order)."""
        k, self.count = self.count, self.count + 1
        if k not in self.dynamic or value in (0, 1):
            return value
        sym = sympy.Symbol(f"s{len(self.graph.symbols)}", integer=True,
                           positive=value > 0, negative=value < 0)
        self.graph.symbols[sym.name] = sym
        self.hints[sym.name] = value
        self.syms.append((sym, path, name, k))
        # the symbol's sign is an assumption of the capture: guard it
        self.guards.append((sym, "ge" if value > 0 else "lt", sympy.Integer(value > 0), True))
        return SymInt(value, sym, self)

    # -- what SymInts ask ----------------------------------------------------------------
    def hint(self, expr) -> int:
        """The value of a size expression at capture time."""
        env = {s: self.hints[s.name] for s in expr.free_symbols if s.name in self.hints}
        return int(expr.xreplace(env))

    def add_symint_guard(self, expr, op, other, result) -> None:
        """A comparison's answer: the entry applies while it is the same."""
        self.guards.append((expr, op, other, result))

    def specialize_symint(self, expr, value, why) -> None:
        """A use that needs the value: guard it, and capture again with the ints in
        ``expr`` static."""
        self.guards.append((expr, "eq", sympy.Integer(value), True))
        for s, _, name, k in self.syms:
            if s in expr.free_symbols:
                self.specialized.setdefault(k, f"{name} {why}")

    def covers(self, expr) -> bool:
        """True when ``expr`` is over this capture's int symbols only."""
        return bool(self.syms) and expr.free_symbols <= {s for s, *_ in self.syms}

    def make(self, value: int, expr) -> SymInt:
        """A SymInt of this capture."""
        return SymInt(value, expr, self)

    def as_scalar(self, s: SymInt) -> ScalarProxy:
        """``s`` as a float runtime scalar (``step / 10``): its symbols become the sources
        of scalar inputs."""
        sources = {sym: ("arg", path) for sym, path, _, _ in self.syms}
        for x in s.expr.free_symbols:
            if x not in sources:
                raise TypeError(f"a symbolic int over {x} (a tensor dim) cannot be used as "
                                "a float here")
            self.tracer.scalar_sources.setdefault(x, sources[x])
        return ScalarProxy(float(s.value), s.expr, self.tracer)

    # -- the capture's side --------------------------------------------------------------
    def __enter__(self):
        """While the function runs, ``apply`` lowers SymInt operands and attributes."""
        from framework.ops import registry
        self._prev_hook = registry._symint_hook
        if self.syms:
            registry._symint_hook = lower_operands
        return self

    def __exit__(self, *exc):
        from framework.ops import registry
        registry._symint_hook = self._prev_hook

    def finish(self, cap, sym_locs) -> None:
        """Order the graph's symbols (tensor dims, then ints: the order of the runtime's
        sizes) and record what the runtime needs on ``cap``."""
        g = self.graph
        ints = {s for s, *_ in self.syms}
        for v in g.values():  # ``x.view(n, -1)``: 12/n is a size only where n divides 12
            for e in v.shape:
                if isinstance(e, sympy.Basic) and e.free_symbols & ints and not e.is_integer:
                    raise TypeError(f"the size {e} of {v.name} is not an integer for every "
                                    "value of the symbolic int arguments")
        names = list(sym_locs) + [s.name for s, *_ in self.syms]
        g.symbols = {n: g.symbols[n] for n in names}
        cap.int_syms = [(s.name, path, name) for s, path, name, _ in self.syms]
        cap.int_ordinals = [k for *_, k in self.syms]
        cap.symint_guards = self.guards
        cap.specialized_ints = dict(self.specialized)


def names_of(cap) -> dict:
    """symbol name -> argument name, for messages."""
    return {n: arg for n, _, arg in getattr(cap, "int_syms", ())}


def guard_text(expr, op, other, names: dict) -> str:
    """A guard as readable Python, with argument names for int symbols."""
    return f"{renamed(expr, names)} {_TEXT[op]} {renamed(other, names)}"


def renamed(expr, names: dict):
    """``expr`` with its int symbols named as their arguments (symbol name -> name)."""
    if not isinstance(expr, sympy.Basic):
        return expr
    return expr.xreplace({s: sympy.Symbol(names[s.name]) for s in expr.free_symbols
                          if s.name in names})


def make_guard_fn(guards, names: list):
    """A generated function of the symbol values (``names`` order) returning the index of
    the first guard whose answer changed, or -1; None when there are no guards."""
    if not guards:
        return None
    from sympy.printing.pycode import pycode
    lines = [f"def check({', '.join(names)}):"]
    for i, (expr, op, other, result) in enumerate(guards):
        oth = pycode(other) if isinstance(other, sympy.Basic) else repr(other)
        lines.append(f"    if ({pycode(expr)} {_TEXT[op]} {oth}) != {result!r}:")
        lines.append(f"        return {i}")
    lines.append("    return -1")
    import math
    glb = {"math": math}
    exec(compile("\n".join(lines), "<fw-int-guards>", "exec"), glb)
    return glb["check"]


def describe_failure(info, i, values) -> str:
    """Why guard ``i`` failed, in words, with the values of the ints it reads (``info``:
    the guards, the symbol names of ``values``, symbol name -> argument name)."""
    guards, names, arg_names = info
    expr, op, other, result = guards[i]
    text = guard_text(expr, op if result else _NOT[op], other, arg_names)
    used = {s.name for e in (expr, other) for s in getattr(e, "free_symbols", ())}
    now = ", ".join(f"{arg_names.get(n, n)}={v}" for n, v in zip(names, values) if n in used)
    return f"guard {text} on a symbolic int failed ({now})"


# ---------------------------------------------------------------------------------------
# the compiled function's side (compiler/runtime.py): which ints are dynamic
def all_ints(args, kwargs) -> set:
    """``("int", ordinal)`` for every int leaf (not bools) of the arguments."""
    from .pytree_nodes import flatten
    return {("int", k) for k in range(sum(1 for _, x in flatten((args, kwargs))
                                          if type(x) is int))}


def make_static(cf, ordinals, why: str) -> set:
    """Make the int arguments ``ordinals`` static for good in compiled function ``cf``
    (a use needed the value, or the generated code could not take them symbolic); their
    ``("int", ordinal)`` keys (empty when there are none)."""
    gone = {("int", k) for k in ordinals}
    if gone:
        from . import log
        log.emit("recompiles", f"{cf.__name__}: int arguments made static: {why}")
        cf.static_ints |= set(ordinals)
        cf.dyn -= gone
    return gone


def trace_with_fallbacks(cf, attempt, undo):
    """Capture for compiled function ``cf`` with ``attempt(dims, ints)``, trying the
    :func:`trace_options` of ``cf.dyn`` in turn (``undo()`` after a failed or discarded
    attempt). A capture whose symbolic ints a use specialized (``range(n)``) is redone
    with them static; ints whose symbolic capture failed (not for a shape rule at these
    values) stay static. Sets ``cf.dyn`` to what worked."""
    from framework.errors import FrameworkError, GraphBreak, ShapeError
    options = trace_options(cf.dyn)
    first_dims, first_ints = split(cf.dyn)
    shape_error = False  # the symbolic capture broke a shape rule at these very values
    while options:
        dyn = options.pop(0)
        dims, ints = split(dyn)
        try:
            cap = attempt(dims, ints)
        except GraphBreak:
            raise
        except (FrameworkError, TypeError, ValueError) as e:
            undo()
            shape_error = shape_error or isinstance(e, ShapeError)
            if not options:
                raise
            continue
        gone = make_static(cf, cap.specialized_ints, "; ".join(cap.specialized_ints.values()))
        if gone:  # a use of a symbolic int needed its value: trace again with it static
            undo()
            options.insert(0, dyn - gone)
            continue
        if dims == first_dims and not shape_error:
            make_static(cf, first_ints - ints - cf.static_ints,
                        "a capture with them symbolic failed")
        cf.dyn = dyn
        return cap
    raise AssertionError("unreachable")


def trace_options(dyn: set) -> list:
    """The dynamic sets to try in turn: all, then the ints static, then only batch dims,
    then nothing (a capture that fails with symbols is retried with fewer)."""
    ints = {k for k in dyn if k[0] == "int"}
    dims = dyn - ints
    out = [set(dyn)]
    if ints:
        out.append(set(dims))
    if dims:
        out += [{(i, d) for i, d in dims if d == 0}, set()]
    return [o for i, o in enumerate(out) if i == 0 or o != out[i - 1]]


def split(dyn: set) -> tuple:
    """(tensor dims, int ordinals) of a dynamic set."""
    return {k for k in dyn if k[0] != "int"}, {k for i, k in dyn if i == "int"}
