"""Python numbers that vary between calls, as runtime inputs of a graph.

While a function is captured, a float argument (a temperature) or a hyper-parameter read
through ``optim.optimizer._hyper`` (a scheduled learning rate) is replaced by a
:class:`ScalarProxy`: a ``float`` with its real value that also carries a sympy expression
over *source symbols*. Arithmetic between proxies and numbers builds expressions, an op that
receives a proxy records a scalar input of the graph evaluated from the sources at run
time, and a comparison (``if weight_decay != 0``) returns its real answer and adds a guard
so a different answer recompiles instead of silently reusing the wrong branch.

``float(proxy)``/``int(proxy)``, ``round``, ``math.trunc`` (and ``math.floor``/``math.ceil``
of a value not computed from symbolic ints, see compiler/symints.py) bake the value with a
guard (a new value recompiles); other ``math.*`` functions read the plain value without
asking and are baked silently (use tensor ops for values that must stay live).
"""

from __future__ import annotations

import math
import operator

import sympy

_CMP = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
        "eq": operator.eq, "ne": operator.ne}


def _from_user_code() -> bool:
    """True when ``float(proxy)`` leaves the graph with a plain number: called from user
    code or from the framework's op layer (``eps=float(eps)`` into an attribute), not from
    a backend kernel, NumPy or Triton converting an operand the graph already reads at run
    time."""
    import os
    import sys
    fn = os.path.abspath(sys._getframe(2).f_code.co_filename)
    return (not fn.startswith(_operand_roots()) and "numpy" not in fn
            and f"{os.sep}triton{os.sep}" not in fn)  # Triton passing a kernel argument


_OPERAND_ROOTS = None


def _operand_roots() -> tuple:
    """Where conversions read an operand's value: the CPU/CUDA kernels, ``apply`` calling a
    NumPy ufunc kernel directly, the compiler and the Triton kernels."""
    global _OPERAND_ROOTS
    if _OPERAND_ROOTS is None:
        import os
        import sys
        fw_dir = os.path.dirname(os.path.abspath(sys.modules["framework"].__file__))
        here = os.path.dirname(os.path.abspath(__file__))
        _OPERAND_ROOTS = (os.path.join(fw_dir, "backends") + os.sep, here + os.sep,
                          os.path.join(fw_dir, "ops", "registry.py"),
                          os.path.join(os.path.dirname(here), "triton_kernels") + os.sep)
    return _OPERAND_ROOTS


def _v(x) -> float:
    """The plain value of a float (or proxy) without going through ``__float__``."""
    return float.__float__(x) if isinstance(x, float) else x


class ScalarProxy(float):
    """A float whose value is a runtime input (see the module docstring)."""

    def __new__(cls, value, expr, owner):
        self = float.__new__(cls, value)
        self.expr = expr
        self.owner = owner
        return self

    def _make(self, value, expr):
        return ScalarProxy(value, expr, self.owner)

    def _bin(self, other, fn, reverse=False):
        if isinstance(other, ScalarProxy):
            oe = other.expr
        elif isinstance(other, (int, float)) and not isinstance(other, bool):
            oe = sympy.Float(other) if isinstance(other, float) else sympy.Integer(other)
        else:
            return NotImplemented
        a, b = (_v(other), _v(self)) if reverse else (_v(self), _v(other))
        ea, eb = (oe, self.expr) if reverse else (self.expr, oe)
        return self._make(fn(a, b), fn(ea, eb))

    def __add__(self, o):
        return self._bin(o, operator.add)

    def __radd__(self, o):
        return self._bin(o, operator.add, True)

    def __sub__(self, o):
        return self._bin(o, operator.sub)

    def __rsub__(self, o):
        return self._bin(o, operator.sub, True)

    def __mul__(self, o):
        return self._bin(o, operator.mul)

    def __rmul__(self, o):
        return self._bin(o, operator.mul, True)

    def __truediv__(self, o):
        return self._bin(o, operator.truediv)

    def __rtruediv__(self, o):
        return self._bin(o, operator.truediv, True)

    def __pow__(self, o):
        return self._bin(o, operator.pow)

    def __rpow__(self, o):
        return self._bin(o, operator.pow, True)

    def __neg__(self):
        return self._make(-_v(self), -self.expr)

    def __pos__(self):
        return self

    def __abs__(self):
        return self._make(abs(_v(self)), sympy.Abs(self.expr))

    def _cmp(self, other, name):
        res = _CMP[name](_v(self), _v(other) if isinstance(other, float) else other)
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            oe = other.expr if isinstance(other, ScalarProxy) else other
            self.owner.add_scalar_guard(self.expr, name, oe, res)
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
        return self._cmp(o, "eq")

    def __ne__(self, o):
        return self._cmp(o, "ne")

    def __bool__(self):
        return self._cmp(0.0, "ne")

    __hash__ = float.__hash__

    def __repr__(self) -> str:
        return f"ScalarProxy({_v(self)!r}, {self.expr})"

    def __float__(self):
        # float(proxy) in user code leaves the graph with a plain number: guard on the
        # value so a different value recompiles. (NumPy converting the operand of an op
        # the framework computes while tracing is not such a use; math.* functions read
        # the value without asking and are baked silently.)
        if _from_user_code():
            self.owner.add_scalar_guard(self.expr, "eq", _v(self), True)
        return _v(self)

    def __int__(self):
        if _from_user_code():
            self.owner.add_scalar_guard(self.expr, "eq", _v(self), True)
        return int(_v(self))

    # math.floor / math.ceil of a value computed from symbolic ints (``math.ceil(n / 4)``)
    # are symbolic ints (compiler/symints.py); of any other runtime scalar, and trunc and
    # round, they give the value with a guard (a new value recompiles)
    def __floor__(self):
        return self._integral(math.floor, sympy.floor)

    def __ceil__(self):
        return self._integral(math.ceil, sympy.ceiling)

    def __trunc__(self):
        return self._integral(math.trunc, None)

    def __round__(self, ndigits=None):
        if ndigits is None:
            return self._integral(round, None)
        self.owner.add_scalar_guard(self.expr, "eq", _v(self), True)
        return round(_v(self), ndigits)

    def _integral(self, fn, efn):
        ints = getattr(self.owner, "symints", None)
        if efn is not None and ints is not None and ints.covers(self.expr):
            return ints.make(fn(_v(self)), efn(self.expr))
        self.owner.add_scalar_guard(self.expr, "eq", _v(self), True)
        return fn(_v(self))


def expr_source(expr) -> str:
    """Python source evaluating a sympy scalar expression (symbols are local names)."""
    from sympy.printing.pycode import pycode
    return pycode(expr).replace("math.", "_math.")  # (math.floor / math.ceil too)


def check_comparison(value, name, other) -> bool:
    """Evaluate one recorded comparison guard."""
    return _CMP[name](value, other)
