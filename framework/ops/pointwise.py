"""Elementwise primitives (unary, binary, where, cast) and their public functions.

Primitives take operands of one dtype (Python scalars are weak and adopt it); the public
functions apply PyTorch's type promotion first by inserting explicit ``cast`` ops, so the
backends, the compiler and ONNX only ever see same-dtype elementwise ops.
"""

from __future__ import annotations

import math
import warnings

from .. import dtypes
from ..dtypes import BOOL, COMPLEX, FLOAT, INT
from ..errors import DTypeError, FwTypeError, FwZeroDivisionError
from ..tensor import Tensor
from .registry import BINARY, CAST, COMPOSITE, TERNARY, UNARY, apply, register
from .shapes import broadcast_shapes

_SCALARS = (bool, int, float, complex)


def _shape(x):
    return x.shape if isinstance(x, Tensor) else ()


# ---------------------------------------------------------------------------------------
# meta rules
def _unary_meta(x):
    return x.shape, x.dtype


def _predicate_meta(x):
    return x.shape, dtypes.bool_


def _abs_meta(x):
    return x.shape, x.dtype.to_real()  # |complex| is real


def _binary_meta_for(name, result_bool=False):
    def meta(a, b):
        ta = a if isinstance(a, Tensor) else b
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            if a.dtype is not b.dtype:
                raise DTypeError(f"{name}: operands must share a dtype after promotion, got "
                                 f"{a.dtype.name} and {b.dtype.name}")
            shape = a.shape if a.shape == b.shape else broadcast_shapes(a.shape, b.shape, name)
        else:
            shape = ta.shape
        return shape, (dtypes.bool_ if result_bool else ta.dtype)
    return meta


def _where_meta(cond, a, b):
    if cond.dtype is not dtypes.bool_:
        raise DTypeError(f"where: condition must be a bool tensor, got {cond.dtype.name}")
    ta = a if isinstance(a, Tensor) else b
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype is not b.dtype:
        raise DTypeError(f"where: operands must share a dtype, got {a.dtype.name} and "
                         f"{b.dtype.name}")
    shape = broadcast_shapes(broadcast_shapes(cond.shape, _shape(a), "where"), _shape(b),
                             "where")
    return shape, ta.dtype


def _cast_meta(x, dtype):
    if x.dtype.category == COMPLEX and dtype.category != COMPLEX:
        raise DTypeError(f"cast: {x.dtype.name} to {dtype.name} would drop the imaginary "
                         "part; take .real (or .abs()) first")
    return x.shape, dtype


# ---------------------------------------------------------------------------------------
# gradient helpers (public ops only)
def sum_to_shape(g: Tensor, shape: tuple) -> Tensor:
    """Reduce a broadcast gradient back to ``shape``."""
    if g.shape == shape:
        return g
    lead = len(g.shape) - len(shape)
    dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and g.shape[lead + i] != 1)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    if lead:
        g = g.reshape(shape)
    return g


def _c(x):
    """The complex conjugate of a complex tensor or Python complex; anything else as is.
    VJP rules multiply by the conjugate of the derivative (PyTorch's convention: the
    gradient is the conjugate Wirtinger derivative), a no-op for real values."""
    if isinstance(x, Tensor):
        return x.conj() if x.dtype.category == COMPLEX else x
    return x.conjugate() if isinstance(x, complex) else x


def _abs_vjp(g, a, o):
    x = a[0]
    if x.dtype.category != COMPLEX:
        return (g * x.sign(),)
    safe = where(o == 0, 1.0, o)  # sgn(z) = z / |z|, 0 at 0
    return (g * where(o == 0, 0.0, x / safe),)


def _grads2(a, b, ga, gb):
    return (sum_to_shape(ga, a.shape) if isinstance(a, Tensor) and ga is not None else None,
            sum_to_shape(gb, b.shape) if isinstance(b, Tensor) and gb is not None else None)


# ---------------------------------------------------------------------------------------
# unary primitives: name -> (vjp, float_only, saves_output, result_bool)
def _no_grad_rule(g, args, out):
    return (None,)


_LN2 = math.log(2.0)

_UNARY = {
    "neg": (lambda g, a, o: (-g,), False, False),
    "exp": (lambda g, a, o: (g * _c(o),), True, True),
    "exp2": (lambda g, a, o: (g * o * _LN2,), True, True),
    "log": (lambda g, a, o: (g / _c(a[0]),), True, False),
    "log2": (lambda g, a, o: (g / (a[0] * _LN2),), True, False),
    "log1p": (lambda g, a, o: (g / (a[0] + 1),), True, False),
    "expm1": (lambda g, a, o: (g * (o + 1),), True, True),
    "sqrt": (lambda g, a, o: (g / _c(o * 2),), True, True),
    "rsqrt": (lambda g, a, o: (g * o * o * o * -0.5,), True, True),
    "sin": (lambda g, a, o: (g * _c(a[0].cos()),), True, False),
    "cos": (lambda g, a, o: (-g * _c(a[0].sin()),), True, False),
    "tan": (lambda g, a, o: (g * (o * o + 1),), True, True),
    "tanh": (lambda g, a, o: (g * _c(1 - o * o),), True, True),
    "sigmoid": (lambda g, a, o: (g * _c(o * (1 - o)),), True, True),
    "relu": (lambda g, a, o: (where(o > 0, g, 0.0),), False, True),
    "abs": (_abs_vjp, False, True),
    "sign": (_no_grad_rule, False, False),
    "reciprocal": (lambda g, a, o: (-g * _c(o * o),), True, True),
    "floor": (_no_grad_rule, False, False),
    "ceil": (_no_grad_rule, False, False),
    "round": (_no_grad_rule, False, False),
    "trunc": (_no_grad_rule, False, False),
    "erf": (lambda g, a, o: (g * (a[0] * a[0] * -1.0).exp() * (2.0 / math.sqrt(math.pi)),),
            True, False),
    "bitwise_not": (None, False, False),
    # special functions (kernels: backends/special_math.py)
    "lgamma": (lambda g, a, o: (g * unary("digamma", a[0]),), True, False),
    "digamma": (lambda g, a, o: (g * polygamma(1, a[0]),), True, False),
    "erfinv": (lambda g, a, o: (g * (o * o).exp() * (math.sqrt(math.pi) / 2),), True, True),
    "erfc": (lambda g, a, o: (g * (a[0] * a[0] * -1.0).exp() * (-2.0 / math.sqrt(math.pi)),),
             True, False),
    "i0": (lambda g, a, o: (g * unary("i1", a[0]),), True, False),
    "i0e": (lambda g, a, o: (g * (unary("i1e", a[0]) - a[0].sign() * unary("i0e", a[0])),),
            True, False),
    "i1": (lambda g, a, o: (g * _i1_slope(a[0], "i0", "i1", False),), True, False),
    "i1e": (lambda g, a, o: (g * _i1_slope(a[0], "i0e", "i1e", True),), True, False),
}


def _i1_slope(x, i0name, i1name, scaled):
    """d/dx i1 = i0 - i1 / x (1/2 at 0); the scaled form also subtracts sign(x) * i1e."""
    safe = where(x == 0, 1.0, x)
    v1 = unary(i1name, x)
    slope = unary(i0name, x) - v1 / safe
    if scaled:
        slope = slope - x.sign() * v1
    return where(x == 0, 0.5, slope)
_PREDICATES = ("isnan", "isinf", "isfinite", "logical_not")

UNARY_OPS = {}
# VJPs that read only the output (or nothing) need no version check on the input.
_READS_NO_INPUT = {"neg", "sign", "floor", "ceil", "round", "trunc"}
for _name, (_vjp, _float_only, _saves) in _UNARY.items():
    UNARY_OPS[_name] = register(_name, UNARY, _abs_meta if _name == "abs" else _unary_meta,
                                vjp=_vjp, saves_output=_saves,
                                saves_args=(None if _name == "abs" else ()) if _saves
                                or _name in _READS_NO_INPUT else None)
for _name in _PREDICATES:
    UNARY_OPS[_name] = register(_name, UNARY, _predicate_meta)
FLOAT_ONLY = {n for n, (_, f, _s) in _UNARY.items() if f}
# unary primitives that take complex input (the rest raise a DTypeError naming the op)
COMPLEX_UNARY = frozenset({"neg", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid",
                           "abs", "reciprocal", "isnan", "isinf", "isfinite"})


def unary(name: str, x) -> Tensor:
    """Apply the unary primitive ``name``, promoting ints/bools to float where PyTorch does."""
    op = UNARY_OPS[name]
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(x).__name__}")
    if x.dtype.category != FLOAT:
        if x.dtype.category == COMPLEX:
            if name not in COMPLEX_UNARY:
                raise DTypeError(f"{name}: {x.dtype.name} tensors are not supported")
            return apply(op, x)
        if name in FLOAT_ONLY:
            x = x.to(dtypes.get_default_dtype())
        elif name == "bitwise_not" and x.dtype is dtypes.bool_:
            return unary("logical_not", x)
        elif name in ("neg",) and x.dtype is dtypes.bool_:
            raise DTypeError("neg: negation, the `-` operator, on a bool tensor is not "
                             "supported; use logical_not() or ~ instead")
        elif name == "sign" and x.dtype is dtypes.bool_:
            return x.clone()
        elif name in ("floor", "ceil", "round", "trunc", "isnan", "isinf", "isfinite"):
            if name in ("isnan", "isinf"):
                return full_like_bool(x, False)
            if name == "isfinite":
                return full_like_bool(x, True)
            return x.clone()
    elif name == "bitwise_not":
        raise DTypeError(f"bitwise_not: not implemented for dtype {x.dtype.name}; bitwise ops "
                         "need an integer or bool tensor")
    return apply(op, x)


def full_like_bool(x, value):
    from .creation_ops import full
    return full(x.shape, value, dtype=dtypes.bool_, device=x.device)


# ---------------------------------------------------------------------------------------
# binary primitives
def _add_vjp(g, args, out):
    a, b = args
    return _grads2(a, b, g, g)


def _sub_vjp(g, args, out):
    a, b = args
    return _grads2(a, b, g, -g if isinstance(b, Tensor) else None)


def _mul_vjp(g, args, out):
    a, b = args
    return _grads2(a, b, g * _c(b) if isinstance(a, Tensor) else None,
                   g * _c(a) if isinstance(b, Tensor) else None)


def _div_vjp(g, args, out):
    a, b = args
    ga = g / _c(b) if isinstance(a, Tensor) else None
    gb = -g * _c(a / (b * b)) if isinstance(b, Tensor) else None
    return _grads2(a, b, ga, gb)


def _pow_vjp(g, args, out):
    a, b = args
    ga = gb = None
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            ga = g * _c(b * a.pow(b - 1))
        elif b == 0:
            ga = g * 0.0
        else:
            ga = g * _c(b * a.pow(b - 1))
    if isinstance(b, Tensor):
        if isinstance(a, complex):
            import cmath
            log_a = cmath.log(a) if a else float("nan")
        else:
            base = a if isinstance(a, Tensor) else float(a)
            log_a = base.log() if isinstance(base, Tensor) else math.log(base) if base > 0 \
                else float("nan")
        gb = g * _c(out * log_a)
        if isinstance(a, Tensor):
            b_re = b.real if b.dtype.category == COMPLEX else b
            gb = where((a == 0) & (b_re >= 0), 0.0, gb)
    return _grads2(a, b, ga, gb)


def _minmax_vjp(is_max):
    def vjp(g, args, out):
        a, b = args
        if isinstance(b, Tensor) and isinstance(a, Tensor):
            win = (a > b) if is_max else (a < b)
            share = win.to(g.dtype) + (a == b).to(g.dtype) * 0.5
            return _grads2(a, b, g * share, g * (1 - share))
        t, s = (a, b) if isinstance(a, Tensor) else (b, a)
        win = (t > s) if is_max else (t < s)
        share = win.to(g.dtype) + (t == s).to(g.dtype) * 0.5
        gt = g * share
        return (gt, None) if t is a else (None, gt)
    return vjp


def _atan2_vjp(g, args, out):
    a, b = args
    denom = a * a + b * b
    return _grads2(a, b, g * b / denom if isinstance(a, Tensor) else None,
                   -g * a / denom if isinstance(b, Tensor) else None)


def _remainder_vjp(rounding: str):
    def vjp(g, args, out):
        a, b = args
        gb = None
        if isinstance(b, Tensor):
            q = a / b
            gb = -g * (q.floor() if rounding == "floor" else q.trunc())
        return _grads2(a, b, g if isinstance(a, Tensor) else None, gb)
    return vjp


_BINARY = {
    "add": _add_vjp, "sub": _sub_vjp, "mul": _mul_vjp, "div": _div_vjp, "pow": _pow_vjp,
    "maximum": _minmax_vjp(True), "minimum": _minmax_vjp(False), "atan2": _atan2_vjp,
    "remainder": _remainder_vjp("floor"), "floor_divide": None, "fmod": _remainder_vjp("trunc"),
    "bitwise_and": None, "bitwise_or": None, "bitwise_xor": None,
}
_COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor")

def _mul_reads(args, needs):
    """mul's VJP reads b for a's gradient and a for b's."""
    return (1,) * needs[0] + (0,) * needs[1]


_BINARY_READS = {"add": (), "sub": (), "mul": _mul_reads}
BINARY_OPS = {}
for _name, _vjp in _BINARY.items():
    BINARY_OPS[_name] = register(_name, BINARY, _binary_meta_for(_name), vjp=_vjp,
                                 saves_output=_name == "pow",
                                 saves_args=_BINARY_READS.get(_name))
for _name in _COMPARISONS:
    BINARY_OPS[_name] = register(_name, BINARY, _binary_meta_for(_name, result_bool=True))


def _where_vjp(g, args, out):
    cond, a, b = args
    zero = 0.0
    return (None,
            sum_to_shape(where(cond, g, zero), a.shape) if isinstance(a, Tensor) else None,
            sum_to_shape(where(cond, zero, g), b.shape) if isinstance(b, Tensor) else None)


WHERE = register("where", TERNARY, _where_meta, vjp=_where_vjp, differentiable_args=(1, 2),
                 saves_args=(0,))


def _cast_vjp(g, args, out, dtype):
    src = args[0]
    if src.dtype.category < FLOAT:
        return (None,)
    if g.dtype.category == COMPLEX and src.dtype.category != COMPLEX:
        from .complex_ops import real  # a real input of a complex value: the real part
        g = real(g)
    return (g.to(src.dtype),)


CAST_OP = register("cast", CAST, _cast_meta, vjp=_cast_vjp, saves_args=())


def cast(x: Tensor, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (a no-op returning ``x`` when it already has it).

    Complex to real raises a DTypeError here: ops cast their operands with this, and an op
    that does not take complex input must not drop the imaginary part silently. The user's
    explicit conversions (``Tensor.to``, ``.float()``, ...) use :func:`convert`."""
    dtype = dtypes.to_dtype(dtype)
    if x.dtype is dtype:
        return x
    if x.dtype.category == COMPLEX and dtype.category != COMPLEX:
        raise DTypeError(f"{x.dtype.name} tensors are not supported here (the op would cast "
                         f"them to {dtype.name}, dropping the imaginary part)")
    return apply(CAST_OP, x, dtype=dtype)


def convert(x: Tensor, dtype) -> Tensor:
    """An explicit dtype conversion (``Tensor.to``): as :func:`cast`, and complex to real
    keeps the real part with PyTorch's warning."""
    dtype = dtypes.to_dtype(dtype)
    if x.dtype.category == COMPLEX and dtype.category != COMPLEX:
        import warnings
        from .complex_ops import real
        warnings.warn("Casting complex values to real discards the imaginary part",
                      UserWarning, stacklevel=3)
        x = real(x)
    return cast(x, dtype)


# ---------------------------------------------------------------------------------------
# promotion
def _is_size_expr(x) -> bool:
    """A sympy expression: a dynamic size used as a number while tracing (``x.shape[0]``)."""
    return type(x).__module__.startswith("sympy")


def _is_numpy_scalar(x) -> bool:
    """A NumPy scalar (``np.float32(2.0)``, ``np.int64(3)``, ``np.bool_``): PyTorch takes it
    as the Python number it holds (schedules and configs computed with NumPy pass these)."""
    return type(x).__module__ == "numpy" and hasattr(x, "item") and getattr(x, "ndim", 1) == 0


def _check_operand(x, name):
    if isinstance(x, Tensor) or isinstance(x, _SCALARS) or _is_size_expr(x):
        return
    raise TypeError(f"{name}(): unsupported operand type {type(x).__name__}; expected a "
                    "Tensor or a Python number")


def promote(a, b, name: str):
    """Cast tensor operands to PyTorch's result dtype; scalars stay Python numbers."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        if a.dtype is b.dtype:
            return a, b, a.dtype
    elif ta:
        # weak Python scalars that cannot change the tensor's dtype (the common case)
        cb = b.__class__
        if cb is float and a.dtype.category == FLOAT:
            return a, b, a.dtype
        if cb is int and a.dtype.category == INT:
            return a, _fit_int(b, a.dtype), a.dtype
        if _is_numpy_scalar(b):  # np.float32(2) acts as the Python number, as in PyTorch
            return promote(a, b.item(), name)
        if hasattr(cb, "_sympy_"):  # a traced int argument (compiler/symints.py)
            return promote(a, b._sympy_(), name)
        _check_operand(b, name)
    elif tb:
        ca = a.__class__
        if ca is float and b.dtype.category == FLOAT:
            return a, b, b.dtype
        if ca is int and b.dtype.category == INT:
            return _fit_int(a, b.dtype), b, b.dtype
        if _is_numpy_scalar(a):
            return promote(a.item(), b, name)
        if hasattr(ca, "_sympy_"):
            return promote(a._sympy_(), b, name)
        _check_operand(a, name)
    else:
        raise TypeError(f"{name}(): expected at least one Tensor operand, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    dt = dtypes.result_type(a, b)
    if ta:
        a = cast(a, dt)
    elif isinstance(a, bool) and dt.category != BOOL:
        a = int(a) if dt.category == INT else float(a)
    elif isinstance(a, int) and dt.category == INT:
        a = _fit_int(a, dt)
    if tb:
        b = cast(b, dt)
    elif isinstance(b, bool) and dt.category != BOOL:
        b = int(b) if dt.category == INT else float(b)
    elif isinstance(b, int) and dt.category == INT:
        b = _fit_int(b, dt)
    return a, b, dt


_INT_RANGES = {}


def _fit_int(v: int, dt) -> int:
    """A Python int scalar wrapped into ``dt``'s range, as PyTorch does (uint8 + 1000)."""
    if dt is dtypes.int64:
        return v
    rng = _INT_RANGES.get(dt)
    if rng is None:
        import numpy as np
        info = np.iinfo(dt.np)
        rng = _INT_RANGES[dt] = (int(info.min), int(info.max))
    if rng[0] <= v <= rng[1]:
        return v
    import numpy as np
    return int(np.array(v, dtype=np.int64).astype(dt.np))


def binary(name: str, a, b) -> Tensor:
    """Apply the binary primitive ``name`` after type promotion."""
    a, b, dt = promote(a, b, name)
    if name == "atan2" and dt.category != FLOAT:  # float-only, as in PyTorch
        fd = dtypes.get_default_dtype()
        a = cast(a, fd) if isinstance(a, Tensor) else float(a)
        b = cast(b, fd) if isinstance(b, Tensor) else float(b)
    if name in ("bitwise_and", "bitwise_or", "bitwise_xor") and dt.category == FLOAT:
        raise DTypeError(f"{name}: not implemented for dtype {dt.name}; bitwise ops need "
                         "integer or bool tensors")
    if name in ("bitwise_and", "bitwise_or", "bitwise_xor") and dt is dtypes.bool_:
        name = "logical_" + name[len("bitwise_"):]
    return apply(BINARY_OPS[name], a, b)


def _legacy_alpha(name, alpha, other):
    """(alpha, other) from PyTorch's deprecated ``name(input, Number alpha, Tensor other)``."""
    if isinstance(alpha, Tensor) or not isinstance(other, Tensor):
        raise FwTypeError(f"{name}: expected ({name}(input, other, *, alpha=1) or the deprecated "
                          f"{name}(input, Number alpha, Tensor other)), got "
                          f"({type(alpha).__name__}, {type(other).__name__})")
    warnings.warn(f"This overload of {name} is deprecated: {name}(Number alpha, Tensor other). "
                  f"Consider using {name}(Tensor other, *, Number alpha=1) instead.",
                  UserWarning, stacklevel=3)
    return alpha, other


def add(input, other, _legacy_other=None, *, alpha=1) -> Tensor:
    """``input + alpha * other`` with broadcasting and type promotion. PyTorch's deprecated
    ``add(input, alpha, other)`` form (old tutorials' ``p.data.add_(-lr, grad)``) is
    accepted with a warning."""
    if _legacy_other is not None:
        alpha, other = _legacy_alpha("add", other, _legacy_other)
    if alpha != 1:
        other = other * alpha
    if isinstance(input, Tensor) and isinstance(other, Tensor) and input.dtype is other.dtype:
        return apply(BINARY_OPS["add"], input, other)
    if _sparse_operand(input, other):
        from ..sparse.ops import add as sparse_add
        return sparse_add(input, other)
    return binary("add", input, other)


def sub(input, other, _legacy_other=None, *, alpha=1) -> Tensor:
    """``input - alpha * other`` (also the deprecated ``sub(input, alpha, other)``)."""
    if _legacy_other is not None:
        alpha, other = _legacy_alpha("sub", other, _legacy_other)
    if alpha != 1:
        other = other * alpha
    if isinstance(input, Tensor) and input.dtype is dtypes.bool_ and isinstance(other, Tensor) \
            and other.dtype is dtypes.bool_:
        raise DTypeError("sub: subtraction of two bool tensors is not supported; use "
                         "logical_xor() instead")
    if _sparse_operand(input, other):
        from ..sparse.ops import add as sparse_add
        return sparse_add(input, other, alpha=-1)
    return binary("sub", input, other)


def mul(input, other) -> Tensor:
    """Elementwise product."""
    if isinstance(input, Tensor) and isinstance(other, Tensor) and input.dtype is other.dtype:
        return apply(BINARY_OPS["mul"], input, other)
    if _sparse_operand(input, other):
        from ..sparse.ops import mul as sparse_mul
        return sparse_mul(input, other)
    return binary("mul", input, other)


def _sparse_operand(a, b) -> bool:
    """``dense + sparse`` etc. (the dense operand's method runs first) go to fw.sparse."""
    return getattr(type(a), "_fw_sparse", False) or getattr(type(b), "_fw_sparse", False)


def div(input, other, *, rounding_mode=None) -> Tensor:
    """True division (ints give the default float dtype), or rounded with
    ``rounding_mode="trunc"|"floor"``."""
    if rounding_mode is None:
        a, b, dt = promote(input, other, "div")
        if dt.category < FLOAT:
            fd = dtypes.get_default_dtype()
            a = cast(a, fd) if isinstance(a, Tensor) else a if _is_size_expr(a) else float(a)
            b = cast(b, fd) if isinstance(b, Tensor) else b if _is_size_expr(b) else float(b)
        return apply(BINARY_OPS["div"], a, b)
    if rounding_mode == "floor":
        return binary("floor_divide", input, other)
    if rounding_mode == "trunc":
        a, b, dt = promote(input, other, "div")
        if dt.category == FLOAT:
            return apply(BINARY_OPS["div"], a, b).trunc()
        if dt.category == INT:
            # Exact in integers (no float round trip): a - fmod(a, b) is a multiple of b.
            # fmod's kernel is the one that rejects a zero divisor (as floor_divide's).
            try:
                r = apply(BINARY_OPS["fmod"], a, b)
            except ZeroDivisionError:
                raise FwZeroDivisionError("div: integer division by zero "
                                          "(rounding_mode='trunc')") from None
            return apply(BINARY_OPS["floor_divide"], a - r, b)
        q = div(a, b)
        return q.trunc().to(dt)
    from ..errors import ArgumentError
    raise ArgumentError(f"div: rounding_mode must be None, 'trunc' or 'floor', got "
                        f"{rounding_mode!r}")


def pow(input, exponent) -> Tensor:
    """``input ** exponent`` (int tensors to negative int powers are an error, as in torch)."""
    a, b, dt = promote(input, exponent, "pow")
    if dt.category == INT and isinstance(b, int) and b < 0:
        from ..errors import ArgumentError
        raise ArgumentError("pow: integers to negative integer powers are not allowed")
    return apply(BINARY_OPS["pow"], a, b)


def where(condition, input=None, other=None) -> Tensor:
    """Elements of ``input`` where ``condition`` holds, else of ``other``;
    ``where(condition)`` alone is ``nonzero(condition, as_tuple=True)``."""
    if input is None and other is None:
        from .indexing import nonzero
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        from ..errors import ArgumentError
        raise ArgumentError("where: expected both input and other (or neither)")
    if not isinstance(condition, Tensor):
        raise TypeError(f"where(): condition must be a Tensor, not {type(condition).__name__}")
    if condition.dtype is not dtypes.bool_:
        raise DTypeError(f"where: expected condition to be a bool tensor, got "
                         f"{condition.dtype.name}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        from .creation_ops import full
        input = full((), input, device=condition.device)  # int64/bool/default float
    a, b, _ = promote(input, other, "where")
    return apply(WHERE, condition, a, b)


def clamp(input, min=None, max=None) -> Tensor:
    """Clamp into ``[min, max]`` (either bound may be None, a number or a tensor)."""
    if min is None and max is None:
        from ..errors import ArgumentError
        raise ArgumentError("clamp: at least one of 'min' or 'max' must not be None")
    out = input
    if min is not None:
        out = binary("maximum", out, min)
    if max is not None:
        out = binary("minimum", out, max)
    return out


def nan_to_num(input, nan=0.0, posinf=None, neginf=None) -> Tensor:
    """Replace NaN, +inf and -inf with finite numbers (dtype limits by default); complex
    input has its real and imaginary parts replaced separately."""
    if input.dtype.category == COMPLEX:
        from .complex_ops import complex as _complex
        return _complex(nan_to_num(input.real, nan, posinf, neginf),
                        nan_to_num(input.imag, nan, posinf, neginf))
    if not input.dtype.is_floating_point:
        return input.clone()
    import ml_dtypes
    info = ml_dtypes.finfo(input.dtype.np)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    out = where(input.isnan(), nan, input)
    out = where(out == math.inf, posinf, out)
    return where(out == -math.inf, neginf, out)


# ---------------------------------------------------------------------------------------
# special functions (torch.special's primitives; algorithms in backends/special_math.py)
def lgamma(input) -> Tensor:
    """log|Gamma(input)| (+inf at the non-positive integers)."""
    return unary("lgamma", input)


def digamma(input) -> Tensor:
    """The digamma function psi = Gamma'/Gamma (-inf at 0, NaN at negative integers)."""
    return unary("digamma", input)


def erfinv(input) -> Tensor:
    """The inverse error function (+-inf at +-1, NaN outside [-1, 1])."""
    return unary("erfinv", input)


def erfc(input) -> Tensor:
    """The complementary error function ``1 - erf(input)``, accurate for large input."""
    return unary("erfc", input)


def i0(input) -> Tensor:
    """The modified Bessel function of the first kind, order 0."""
    return unary("i0", input)


def _polygamma_meta(x, n):
    return x.shape, x.dtype


def _polygamma_vjp(g, args, out, n):
    return (g * polygamma(n + 1, args[0]),)


def _polygamma_decomp(x, n):
    import sys

    from ..backends import special_math
    return special_math.polygamma(special_math.TensorKit(sys.modules[__name__]), n, x)


POLYGAMMA = register("polygamma", COMPOSITE, _polygamma_meta, vjp=_polygamma_vjp,
                     decomp=_polygamma_decomp)


def polygamma(n, input) -> Tensor:
    """The n-th derivative of digamma (``polygamma(0, x)`` is digamma)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"polygamma(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        from ..errors import ArgumentError
        raise ArgumentError(f"polygamma: n must be non-negative, got {n}")
    if not isinstance(input, Tensor):
        raise TypeError(f"polygamma(): argument 'input' must be a Tensor, not "
                        f"{type(input).__name__}")
    if n == 0:
        return digamma(input)
    if input.dtype.category != FLOAT:
        input = input.to(dtypes.get_default_dtype())
    return apply(POLYGAMMA, input, n=n)


def xlogy(input, other) -> Tensor:
    """``input * log(other)``, 0 where input == 0 (unless other is NaN), as torch.xlogy."""
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError("xlogy(): expected at least one Tensor argument")
    ref = input if isinstance(input, Tensor) else other
    if not isinstance(other, Tensor):
        from .creation_ops import full
        other = full((), other, dtype=dtypes.get_default_dtype(), device=ref.device)
    prod = input * unary("log", other)
    if not isinstance(input, Tensor):
        return where(~other.isnan(), 0.0, prod) if input == 0 else prod
    return where((input == 0) & ~other.isnan(), 0.0, prod)
