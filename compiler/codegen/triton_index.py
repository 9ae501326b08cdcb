"""Index arithmetic for generated Triton kernels: sympy expressions over iteration
variables and size symbols, simplified as they are built, and printed as Triton source.

An index into a tensor is a tuple of per-dim sympy expressions (:class:`Idx`). When the
tuple came from splitting a linear index over a shape (``delinearize``), it remembers that
linear index, so turning it back into an address over the same contiguous shape gives the
linear index itself instead of a sum of divisions and modulos (reshapes of contiguous data
cost no index arithmetic).
"""

from __future__ import annotations

import sympy
from sympy.printing.str import StrPrinter


class FloorDiv(sympy.Function):
    """``base // divisor`` for non-negative integers."""

    is_integer = True
    is_nonnegative = True

    @classmethod
    def eval(cls, base, divisor):
        if divisor == 1:
            return base
        if base == 0:
            return sympy.Integer(0)
        if base.is_Integer and divisor.is_Integer:
            return base // divisor
        if isinstance(base, FloorDiv):  # (a // b) // c == a // (b * c)
            return FloorDiv(base.args[0], base.args[1] * divisor)
        if base.is_Mul and divisor in base.args:  # (k * d) // d == k
            return base / divisor
        return None


class ModularIndexing(sympy.Function):
    """``(base // divisor) % modulus`` for non-negative integers (one dim of a split index)."""

    is_integer = True
    is_nonnegative = True

    @classmethod
    def eval(cls, base, divisor, modulus):
        if modulus == 1 or base == 0:
            return sympy.Integer(0)
        if base.is_Integer and divisor.is_Integer and modulus.is_Integer:
            return (base // divisor) % modulus
        return None


def as_expr(value) -> sympy.Expr:
    """A sympy expression for an int, a sympy expression or a symbol name."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, str):
        return sympy.Symbol(value, integer=True, nonnegative=True)
    return sympy.Integer(int(value))


def product(values) -> sympy.Expr:
    """The product of sizes, as a sympy expression."""
    out = sympy.Integer(1)
    for v in values:
        out = out * as_expr(v)
    return out


def contiguous_strides(shape) -> tuple:
    """Row-major strides (in elements) of ``shape``, as sympy expressions."""
    strides, acc = [], sympy.Integer(1)
    for s in reversed(shape):
        strides.append(acc)
        acc = acc * as_expr(s)
    return tuple(reversed(strides))


def is_zero(expr) -> bool:
    """True when ``expr`` is provably 0 (expansion; a full simplify only for small
    expressions without floor divisions, where it is cheap)."""
    e = sympy.expand(as_expr(expr))
    if e == 0:
        return True
    if e.free_symbols and not e.has(FloorDiv, ModularIndexing) and sympy.count_ops(e) < 20:
        return sympy.simplify(e) == 0
    return False


def _same(a, b) -> bool:
    return is_zero(as_expr(a) - as_expr(b))


class Idx(tuple):
    """A per-dim index (tuple of sympy expressions); ``linear`` is ``(L, shape)`` when the
    tuple is ``delinearize(L, shape)``."""

    linear = None

    def __new__(cls, items, linear=None):
        obj = super().__new__(cls, tuple(as_expr(i) for i in items))
        obj.linear = linear
        return obj


def delinearize(linear, shape) -> Idx:
    """Split the linear index ``linear`` (row-major over ``shape``) into one index per dim."""
    shape = tuple(as_expr(s) for s in shape)
    strides = contiguous_strides(shape)
    items = []
    for i, (size, stride) in enumerate(zip(shape, strides)):
        if size == 1:
            items.append(sympy.Integer(0))
        elif all(s == 1 for s in shape[:i]):
            items.append(FloorDiv(linear, stride))
        else:
            items.append(ModularIndexing(linear, stride, size))
    return Idx(items, linear=(linear, shape))


def _drop_ones(shape):
    return tuple(s for s in shape if s != 1)


def linearize(idx, shape) -> sympy.Expr:
    """The row-major linear index of ``idx`` over ``shape``."""
    shape = tuple(as_expr(s) for s in shape)
    lin = getattr(idx, "linear", None)
    if lin is not None and _drop_ones(lin[1]) == _drop_ones(shape):
        return lin[0]
    return address(idx, contiguous_strides(shape))


def address(idx, strides) -> sympy.Expr:
    """``sum(idx[d] * strides[d])`` (uses the linear index when the strides are the
    contiguous strides of the shape ``idx`` was split over)."""
    strides = tuple(as_expr(s) for s in strides)
    lin = getattr(idx, "linear", None)
    if lin is not None:
        lshape = lin[1]
        if len(lshape) == len(strides):
            cs = contiguous_strides(lshape)
            if all(s == 1 or _same(a, b) for s, a, b in zip(lshape, strides, cs)):
                return lin[0]
    return sympy.expand(sum((i * s for i, s in zip(idx, strides)), sympy.Integer(0)))


def free_names(expr) -> set[str]:
    """Names of the symbols ``expr`` depends on."""
    return {s.name for s in as_expr(expr).free_symbols}


class TritonPrinter(StrPrinter):
    """Prints index expressions as Triton/Python integer arithmetic."""

    def _atom(self, expr) -> str:
        text = self._print(expr)
        return text if (expr.is_Atom or isinstance(expr, (FloorDiv, ModularIndexing))) \
            else f"({text})"

    def _print_FloorDiv(self, expr):
        a, b = expr.args
        return f"({self._atom(a)} // {self._atom(b)})"

    def _print_ModularIndexing(self, expr):
        a, b, m = expr.args
        inner = self._atom(a) if b == 1 else f"({self._atom(a)} // {self._atom(b)})"
        return f"({inner} % {self._atom(m)})"

    def _print_Max(self, expr):
        a, *rest = expr.args
        out = self._print(a)
        for r in rest:
            out = f"tl.maximum({out}, {self._print(r)})"
        return out

    def _print_Min(self, expr):
        a, *rest = expr.args
        out = self._print(a)
        for r in rest:
            out = f"tl.minimum({out}, {self._print(r)})"
        return out

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Rational(self, expr):
        raise ValueError(f"non-integer index expression {expr}")


_PRINTER = TritonPrinter()


def texpr(expr) -> str:
    """Triton source of an index expression."""
    return _PRINTER.doprint(as_expr(expr))
