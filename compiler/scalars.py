"""Python numbers that vary between calls, as runtime inputs of a graph.

While a function is captured, a float argument (a temperature) or a hyper-parameter read
through ``optim.optimizer._hyper`` (a scheduled learning rate) is replaced by a
:class:`ScalarProxy`: a ``float`` with its real value that also carries a sympy expression
over *source symbols*. Arithmetic between proxies and numbers builds expressions, an op that
receives a proxy records a scalar input of the graph evaluated from the sources at run
time, and a comparison (``if weight_decay != 0``) returns its real answer and adds a guard
so a different answer recompiles instead of silently reusing the wrong branch.

``float(proxy)`` and ``math.*`` functions read the plain value: such uses are baked into
the graph (use tensor ops for values that must stay live).
"""

from __future__ import annotations

import operator

import sympy

_CMP = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
        "eq": operator.eq, "ne": operator.ne}


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
        a, b = (float(other), float(self)) if reverse else (float(self), float(other))
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
        return self._make(-float(self), -self.expr)

    def __pos__(self):
        return self

    def __abs__(self):
        return self._make(abs(float(self)), sympy.Abs(self.expr))

    def _cmp(self, other, name):
        res = _CMP[name](float(self), float(other) if isinstance(other, float) else other)
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
        return f"ScalarProxy({float(self)!r}, {self.expr})"


def expr_source(expr) -> str:
    """Python source evaluating a sympy scalar expression (symbols are local names)."""
    from sympy.printing.pycode import pycode
    return pycode(expr, fully_qualified_modules=False).replace("math.", "_math.")


def check_comparison(value, name, other) -> bool:
    """Evaluate one recorded comparison guard."""
    return _CMP[name](value, other)
