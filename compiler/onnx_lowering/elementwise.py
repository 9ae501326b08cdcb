"""Elementwise ops: unary, binary, ``where`` and ``cast``.

ONNX Runtime's CPU kernels cover float32/float64/int32/int64 for arithmetic; the narrow
types (float16, bfloat16, int8, int16, uint8, bool) are computed one op at a time in a
wider type and cast back, which rounds exactly as NumPy's per-op float16 arithmetic does.
"""

from __future__ import annotations

import math

from framework import dtypes

from . import lowering
from .context import LoweringContext, onnx_dtype

_WIDE = {dtypes.float16: dtypes.float32, dtypes.bfloat16: dtypes.float32,
         dtypes.int8: dtypes.int32, dtypes.int16: dtypes.int32, dtypes.uint8: dtypes.int32,
         dtypes.bool_: dtypes.int32}


def compute_dtype(dt):
    """The dtype an arithmetic op on ``dt`` runs in (itself unless ORT lacks kernels)."""
    return _WIDE.get(dt, dt)


def operand_dtype(node):
    """The dtype of the first tensor operand of ``node``."""
    for x in node.inputs:
        if hasattr(x, "dtype"):
            return x.dtype
    return node.outputs[0].dtype


def widened(ctx: LoweringContext, node, cd, dt, inputs=None):
    """ONNX names of ``node``'s operands (or of ``inputs``) in compute dtype ``cd``:
    tensors of another dtype (the narrow type ``dt``, or a runtime scalar input, which is
    float64) are cast, Python scalars become constants."""
    out = []
    for x in node.inputs if inputs is None else inputs:
        if hasattr(x, "dtype"):
            n = ctx.name_of(x)
            out.append(ctx.cast(n, cd) if x.dtype is not cd else n)
        else:
            out.append(ctx.scalar(x, cd))
    return out


def narrowed(ctx, name, cd, dt):
    """Cast a result computed in ``cd`` back to ``dt``."""
    return ctx.cast(name, dt) if cd is not dt else name


def _c(ctx, v, dt):
    return ctx.scalar(v, dt)


# ---------------------------------------------------------------------------------------
# unary: name -> rule(ctx, x, dtype) in the compute dtype
def _simple(op_type):
    return lambda ctx, x, dt: ctx.emit(op_type, [x])


def _trunc(ctx, x, dt):
    neg = ctx.emit("Less", [x, _c(ctx, 0, dt)])
    return ctx.emit("Where", [neg, ctx.emit("Ceil", [x]), ctx.emit("Floor", [x])])


def _relu(ctx, x, dt):
    if dt.is_floating_point:
        return ctx.emit("Relu", [x])
    return ctx.emit("Max", [x, _c(ctx, 0, dt)])


def _bitwise_not(ctx, x, dt):
    if ctx.opset >= 18:
        return ctx.emit("BitwiseNot", [x])
    # two's complement: ~x == -x - 1 (exact in the widened int32 for small types)
    return ctx.emit("Sub", [ctx.emit("Neg", [x]), _c(ctx, 1, dt)])


_UNARY = {
    "neg": _simple("Neg"),
    "exp": _simple("Exp"),
    "exp2": lambda ctx, x, dt: ctx.emit("Pow", [_c(ctx, 2.0, dt), x]),
    "log": _simple("Log"),
    "log2": lambda ctx, x, dt: ctx.emit("Div", [ctx.emit("Log", [x]),
                                                _c(ctx, math.log(2.0), dt)]),
    "log1p": lambda ctx, x, dt: ctx.emit("Log", [ctx.emit("Add", [x, _c(ctx, 1.0, dt)])]),
    "expm1": lambda ctx, x, dt: ctx.emit("Sub", [ctx.emit("Exp", [x]), _c(ctx, 1.0, dt)]),
    "sqrt": _simple("Sqrt"),
    "rsqrt": lambda ctx, x, dt: ctx.emit("Reciprocal", [ctx.emit("Sqrt", [x])]),
    "sin": _simple("Sin"),
    "cos": _simple("Cos"),
    "tan": lambda ctx, x, dt: ctx.emit("Div", [ctx.emit("Sin", [x]), ctx.emit("Cos", [x])])
    if dt is dtypes.float64 else ctx.emit("Tan", [x]),  # ORT has no float64 Tan kernel
    "tanh": _simple("Tanh"),
    "sigmoid": _simple("Sigmoid"),
    "relu": _relu,
    "abs": _simple("Abs"),
    "sign": _simple("Sign"),
    "reciprocal": _simple("Reciprocal"),
    "floor": _simple("Floor"),
    "ceil": _simple("Ceil"),
    "round": _simple("Round"),          # half to even, as NumPy and PyTorch
    "trunc": _trunc,
    "erf": _simple("Erf"),
    "bitwise_not": _bitwise_not,
}

def _kit_bin(op_type):
    return lambda self, a, b: self.ctx.emit(op_type, [self._v(a), self._v(b)])


def _kit_fn(op_type):
    return lambda self, a: self.ctx.emit(op_type, [self._v(a)])


class _OnnxKit:
    """backends/special_math.py's kit emitting elementary ONNX nodes in dtype ``dt``."""

    def __init__(self, ctx, dt):
        self.ctx, self.dt = ctx, dt

    def _v(self, a):
        return a if isinstance(a, str) else _c(self.ctx, float(a), self.dt)


    add, sub, mul, div = _kit_bin("Add"), _kit_bin("Sub"), _kit_bin("Mul"), _kit_bin("Div")
    lt, le, eq = _kit_bin("Less"), _kit_bin("LessOrEqual"), _kit_bin("Equal")
    and_, or_ = _kit_bin("And"), _kit_bin("Or")
    neg, exp, log, sqrt, sin, cos, floor, abs = _kit_fn("Neg"), _kit_fn("Exp"), _kit_fn("Log"), \
        _kit_fn("Sqrt"), _kit_fn("Sin"), _kit_fn("Cos"), _kit_fn("Floor"), _kit_fn("Abs")

    def where(self, c, a, b):
        return self.ctx.emit("Where", [c, self._v(a), self._v(b)])


def _special(name):
    """The special function ``name`` decomposed into elementary ONNX ops: the same
    algorithm as the CPU kernel (erfc by Cody's rational approximations, not 1 - Erf)."""
    def rule(ctx, x, dt):
        from framework.backends import special_math
        return getattr(special_math, name)(_OnnxKit(ctx, dt), x)
    return rule


for _n in ("lgamma", "digamma", "erfinv", "erfc", "i0", "i0e", "i1", "i1e"):
    _UNARY[_n] = _special(_n)

_PREDICATES = {
    "isnan": lambda ctx, x: ctx.emit("IsNaN", [x]),
    "isinf": lambda ctx, x: ctx.emit("IsInf", [x]),
    "isfinite": lambda ctx, x: ctx.emit("Not", [ctx.emit("Or", [ctx.emit("IsNaN", [x]),
                                                              ctx.emit("IsInf", [x])])]),
    "logical_not": None,  # see _predicate_rule
}


def _unary_rule(name):
    rule = _UNARY[name]

    def lower(ctx, node):
        dt = node.outputs[0].dtype
        if name == "bitwise_not" and dt is not dtypes.bool_ and dt.is_signed is False:
            # uint8: ~x == 255 - x
            x = ctx.cast(ctx.name_of(node.inputs[0]), dtypes.int32)
            r = ctx.emit("Sub", [_c(ctx, 255, dtypes.int32), x])
            return [ctx.cast(r, dt)]
        cd = compute_dtype(dt)
        (x,) = widened(ctx, node, cd, dt)
        return [narrowed(ctx, rule(ctx, x, cd), cd, dt)]
    return lower


def _predicate_rule(name):
    rule = _PREDICATES[name]

    def lower(ctx, node):
        dt = operand_dtype(node)
        if name == "logical_not":
            x = ctx.name_of(node.inputs[0])
            if dt is dtypes.bool_:
                return [ctx.emit("Not", [x])]
            cd = compute_dtype(dt)
            x = ctx.cast(x, cd) if cd is not dt else x
            return [ctx.emit("Equal", [x, ctx.scalar(0, cd)])]
        cd = compute_dtype(dt)
        (x,) = widened(ctx, node, cd, dt)
        return [rule(ctx, x)]
    return lower


for _n in _UNARY:
    lowering(_n)(_unary_rule(_n))
for _n in _PREDICATES:
    lowering(_n)(_predicate_rule(_n))


# ---------------------------------------------------------------------------------------
# binary: name -> rule(ctx, a, b, dtype) in the compute dtype
def _negative(ctx, v, dt):
    """v < 0, counting -0.0 as negative (its reciprocal is -inf), as atan2 needs."""
    zero = _c(ctx, 0.0, dt)
    neg_zero = ctx.emit("And", [ctx.emit("Equal", [v, zero]),
                                ctx.emit("Less", [ctx.emit("Reciprocal", [v]), zero])])
    return ctx.emit("Or", [ctx.emit("Less", [v, zero]), neg_zero])


def _atan2(ctx, y, x, dt):
    """NumPy's atan2, signed zeros and infinities included, from Atan(y / x)."""
    zero = _c(ctx, 0.0, dt)
    y_neg, x_neg = _negative(ctx, y, dt), _negative(ctx, x, dt)
    sgn = ctx.emit("Where", [y_neg, _c(ctx, -1.0, dt), _c(ctx, 1.0, dt)])
    r = ctx.emit("Atan", [ctx.emit("Div", [y, x])])
    r = ctx.emit("Where", [x_neg, ctx.emit("Add", [r, ctx.emit("Mul", [sgn, _c(ctx, math.pi,
                                                                               dt)])]), r])
    both_inf = ctx.emit("And", [ctx.emit("IsInf", [y]), ctx.emit("IsInf", [x])])
    corner = ctx.emit("Where", [x_neg, _c(ctx, 3 * math.pi / 4, dt), _c(ctx, math.pi / 4, dt)])
    r = ctx.emit("Where", [both_inf, ctx.emit("Mul", [corner, sgn]), r])
    # x == +-0: +-pi/2 by the sign of y; y == +-0 too: y itself, or +-pi when x is -0
    y_zero = ctx.emit("Equal", [y, zero])
    on_axis = ctx.emit("Where", [y_zero,
                                 ctx.emit("Where", [x_neg, ctx.emit("Mul", [sgn, _c(
                                     ctx, math.pi, dt)]), y]),
                                 ctx.emit("Mul", [sgn, _c(ctx, math.pi / 2, dt)])])
    return ctx.emit("Where", [ctx.emit("Equal", [x, zero]), on_axis, r])


def _signs_differ(ctx, a, b, dt):
    zero = _c(ctx, 0, dt)
    return ctx.emit("Xor", [ctx.emit("Less", [a, zero]), ctx.emit("Less", [b, zero])])


def _remainder(ctx, a, b, dt):
    """Python's modulo (sign of the divisor)."""
    if not dt.is_floating_point:
        return ctx.emit("Mod", [a, b], fmod=0)
    r = ctx.emit("Mod", [a, b], fmod=1)
    fix = ctx.emit("And", [ctx.emit("Not", [ctx.emit("Equal", [r, _c(ctx, 0, dt)])]),
                           _signs_differ(ctx, r, b, dt)])
    return ctx.emit("Where", [fix, ctx.emit("Add", [r, b]), r])


def _floor_divide(ctx, a, b, dt):
    if dt.is_floating_point:
        return _float_floor_divide(ctx, a, b, dt)
    q = ctx.emit("Div", [a, b])  # truncates toward zero
    inexact = ctx.emit("Not", [ctx.emit("Equal", [ctx.emit("Mod", [a, b], fmod=1),
                                                  _c(ctx, 0, dt)])])
    fix = ctx.emit("And", [inexact, _signs_differ(ctx, a, b, dt)])
    return ctx.emit("Where", [fix, ctx.emit("Sub", [q, _c(ctx, 1, dt)]), q])


def _float_floor_divide(ctx, a, b, dt):
    """NumPy's float floor division (npy_divmod): exact quotient from the remainder, NaN
    when the remainder is (inf // x), a / b when b == 0."""
    zero = _c(ctx, 0.0, dt)
    mod = ctx.emit("Mod", [a, b], fmod=1)
    div = ctx.emit("Div", [ctx.emit("Sub", [a, mod]), b])
    fix = ctx.emit("And", [ctx.emit("Not", [ctx.emit("Equal", [mod, zero])]),
                           _signs_differ(ctx, mod, b, dt)])
    div = ctx.emit("Where", [fix, ctx.emit("Sub", [div, _c(ctx, 1.0, dt)]), div])
    fl = ctx.emit("Floor", [div])
    up = ctx.emit("Greater", [ctx.emit("Sub", [div, fl]), _c(ctx, 0.5, dt)])
    fl = ctx.emit("Where", [up, ctx.emit("Add", [fl, _c(ctx, 1.0, dt)]), fl])
    return ctx.emit("Where", [ctx.emit("Equal", [b, zero]), ctx.emit("Div", [a, b]), fl])


def _bitwise(op_type, name):
    def rule(ctx, a, b, dt):
        ctx.require(18, f"op {name!r} ({op_type} on integers)")
        return ctx.emit(op_type, [a, b])
    return rule


def _simple2(op_type):
    return lambda ctx, a, b, dt: ctx.emit(op_type, [a, b])


_BINARY = {
    "add": _simple2("Add"), "sub": _simple2("Sub"), "mul": _simple2("Mul"),
    "div": _simple2("Div"), "pow": _simple2("Pow"),
    "maximum": _simple2("Max"), "minimum": _simple2("Min"), "atan2": _atan2,
    "remainder": _remainder, "floor_divide": _floor_divide,
    "fmod": lambda ctx, a, b, dt: ctx.emit("Mod", [a, b], fmod=1),
    "bitwise_and": _bitwise("BitwiseAnd", "bitwise_and"),
    "bitwise_or": _bitwise("BitwiseOr", "bitwise_or"),
    "bitwise_xor": _bitwise("BitwiseXor", "bitwise_xor"),
}

_COMPARE = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
            "ge": "GreaterOrEqual"}
_LOGICAL = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}


def _binary_rule(name):
    rule = _BINARY[name]

    def lower(ctx, node):
        dt = node.outputs[0].dtype
        cd = compute_dtype(dt)
        if name.startswith("bitwise_") and dt in (dtypes.int8, dtypes.int16, dtypes.uint8):
            cd = dt  # bitwise ops have kernels for every integer type
        a, b = widened(ctx, node, cd, dt)
        return [narrowed(ctx, rule(ctx, a, b, cd), cd, dt)]
    return lower


def _compare_rule(name):
    def lower(ctx, node):
        dt = operand_dtype(node)
        cd = compute_dtype(dt)
        a, b = widened(ctx, node, cd, dt)
        if name == "ne":
            return [ctx.emit("Not", [ctx.emit("Equal", [a, b])])]
        return [ctx.emit(_COMPARE[name], [a, b])]
    return lower


def _logical_rule(name):
    def lower(ctx, node):
        dt = operand_dtype(node)
        a, b = widened(ctx, node, dt, dt)
        if dt is not dtypes.bool_:  # Cast to bool: nonzero -> True
            a, b = ctx.cast(a, dtypes.bool_), ctx.cast(b, dtypes.bool_)
        return [ctx.emit(_LOGICAL[name], [a, b])]
    return lower


for _n in _BINARY:
    lowering(_n)(_binary_rule(_n))
for _n in list(_COMPARE) + ["ne"]:
    lowering(_n)(_compare_rule(_n))
for _n in _LOGICAL:
    lowering(_n)(_logical_rule(_n))


@lowering("where")
def _where(ctx, node):
    cond, a, b = node.inputs
    dt = node.outputs[0].dtype
    cd = compute_dtype(dt)  # ORT's Where has no bool/int8/half kernels
    an, bn = widened(ctx, node, cd, dt, inputs=(a, b))
    return [narrowed(ctx, ctx.emit("Where", [ctx.name_of(cond), an, bn]), cd, dt)]


@lowering("cast")
def _cast(ctx, node):
    # ONNX Cast matches NumPy's astype: float -> int truncates, nonzero -> True
    return [ctx.emit("Cast", [ctx.name_of(node.inputs[0])], to=onnx_dtype(node.attrs["dtype"]))]


@lowering("polygamma")
def _polygamma(ctx, node):
    """polygamma(n, x): its decomposition (the special_math algorithm in public ops)."""
    from . import DECOMPOSE
    return DECOMPOSE
