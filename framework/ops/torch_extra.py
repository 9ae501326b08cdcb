"""Elementwise functions of PyTorch's top level that are not primitives here, written with
the registered ops (composites): they run on every backend, are captured by ``fw.compile``
and export to ONNX through their parts, and their gradients come from the parts.

Inverse trigonometric and hyperbolic functions (asin, acos, atan, sinh, cosh, asinh, acosh,
atanh and their ``arc*`` aliases), log10, sinc, frac, fix, sgn, signbit, copysign,
heaviside, logit, float_power, rad2deg, deg2rad, fmax, fmin, isposinf, isneginf, isreal,
positive, gcd, lcm, ldexp, frexp, nextafter.

Two rules keep the gradients finite where a formula has several branches: each branch
reads an input clamped to the values it is valid for (``where`` sends a zero gradient to
the branch it does not choose, and ``0 * inf`` would be NaN), and odd functions fold the
sign with ``where(x < 0, -x, x)`` rather than ``abs`` (whose gradient at 0 is 0).
float16/bfloat16 inputs compute in float32 and round once, as ``mean`` does.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .. import dtypes
from .._state import tls
from ..dtypes import FLOAT, INT
from ..errors import DTypeError, FwTypeError
from ..tensor import Tensor
from .creation_ops import full
from .pointwise import binary, cast, full_like_bool, pow, promote, unary, where
from .reduce import any as _any

__all__ = ["asin", "acos", "atan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh",
           "asinh", "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "log10", "sinc", "frac",
           "fix", "sgn", "signbit", "copysign", "heaviside", "logit", "float_power", "rad2deg",
           "deg2rad", "fmax", "fmin", "isposinf", "isneginf", "isreal", "positive", "gcd",
           "lcm", "ldexp", "frexp", "nextafter"]
METHODS = """asin acos atan arcsin arccos arctan arctan2 sinh cosh asinh acosh atanh arcsinh
arccosh arctanh log10 sinc frac fix sgn signbit copysign heaviside logit float_power rad2deg
deg2rad fmax fmin isposinf isneginf isreal positive gcd lcm ldexp frexp nextafter
float_power_"""
INPLACE_METHODS = """asin acos atan arcsin arccos arctan arctan2 sinh cosh asinh acosh atanh
arcsinh arccosh arctanh log10 sinc frac fix sgn copysign heaviside logit rad2deg deg2rad gcd
lcm ldexp nextafter"""

FrexpResult = namedtuple("frexp", ["mantissa", "exponent"])

_LN2 = math.log(2.0)
_LOG10_E = 1.0 / math.log(10.0)


# ---------------------------------------------------------------------------------------
# argument helpers
def _tensor(x, op, name="input"):
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{op}(): argument '{name}' must be a Tensor, not {type(x).__name__}")
    return x


def _as_float(x, op):
    """``x`` as a floating tensor (ints and bools become the default float dtype)."""
    _tensor(x, op)
    return x if x.dtype.category == FLOAT else cast(x, dtypes.get_default_dtype())


def _float_fn(x, op, fn):
    """``fn(x)`` on a floating ``x``; float16/bfloat16 compute in float32, round once."""
    x = _as_float(x, op)
    if x.dtype.itemsize == 2:
        return cast(fn(cast(x, dtypes.float32)), x.dtype)
    return fn(x)


def _float_only(x, op):
    _tensor(x, op)
    if x.dtype.category != FLOAT:
        raise DTypeError(f"{op}(): expected a floating-point tensor, got {x.dtype.name}")
    return x


def _float_pair(a, b, op):
    """Promote ``a``, ``b`` (one may be a Python number) and make them floating."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise FwTypeError(f"{op}(): expected at least one Tensor argument, got "
                          f"{type(a).__name__} and {type(b).__name__}")
    a, b, dt = promote(a, b, op)
    if dt.category != FLOAT:
        fd = dtypes.get_default_dtype()
        a = cast(a, fd) if isinstance(a, Tensor) else float(a)
        b = cast(b, fd) if isinstance(b, Tensor) else float(b)
    return a, b


def _big(x):
    """Above ``1/sqrt(eps)`` of ``x``'s dtype, ``sqrt(x*x + 1) == x``."""
    return 2.0 ** 26 if x.dtype is dtypes.float64 else 2.0 ** 12


def _fold_sign(x):
    """``(negative mask, |x|)`` with d|x|/dx = +1 at 0, for odd functions."""
    neg = x < 0
    return neg, where(neg, -x, x)


# ---------------------------------------------------------------------------------------
# trigonometric and hyperbolic
def _sqrt_one_minus_sq(x):
    return unary("sqrt", (1 - x) * (1 + x))


def asin(input):
    """Arcsine (``atan2(x, sqrt(1 - x**2))``); NaN outside [-1, 1]."""
    return _float_fn(input, "asin", lambda x: binary("atan2", x, _sqrt_one_minus_sq(x)))


def acos(input):
    """Arccosine, in [0, pi]; NaN outside [-1, 1]."""
    return _float_fn(input, "acos", lambda x: binary("atan2", _sqrt_one_minus_sq(x), x))


def atan(input):
    """Arctangent, in (-pi/2, pi/2)."""
    return _float_fn(input, "atan", lambda x: binary("atan2", x, 1.0))


def arctan2(input, other):
    """Alias of :func:`framework.atan2`."""
    return binary("atan2", input, other)


def _sinh(x):
    neg, a = _fold_sign(x)
    big = a > 20.0  # exp(-a) no longer matters; halving the exponent avoids early overflow
    small = where(big, 0.0, x)
    near = (unary("expm1", small) - unary("expm1", -small)) * 0.5
    h = unary("exp", where(big, a, 21.0) * 0.5)
    far = h * 0.5 * h
    return where(big, where(neg, -far, far), near)


def sinh(input):
    """Hyperbolic sine (accurate near 0 through ``expm1``)."""
    return _float_fn(input, "sinh", _sinh)


def _cosh(x):
    big = x.abs() > 20.0
    small = where(big, 0.0, x)
    near = (unary("exp", small) + unary("exp", -small)) * 0.5
    h = unary("exp", where(big, x.abs(), 21.0) * 0.5)
    return where(big, h * 0.5 * h, near)


def cosh(input):
    """Hyperbolic cosine."""
    return _float_fn(input, "cosh", _cosh)


def _asinh(x):
    neg, a = _fold_sign(x)
    big = a > _big(x)
    s = where(big, 0.0, a)
    near = unary("log1p", s + s * s / (unary("sqrt", s * s + 1) + 1))
    far = unary("log", where(big, a, 1.0)) + _LN2
    r = where(big, far, near)
    return where(neg, -r, r)


def asinh(input):
    """Inverse hyperbolic sine: ``log1p(|x| + x^2 / (1 + sqrt(x^2 + 1)))`` with the sign of
    ``x`` (``log(2|x|)`` where ``x^2`` would overflow)."""
    return _float_fn(input, "asinh", _asinh)


def _acosh(x):
    big = x > _big(x)
    t = where(big, 0.0, x - 1)
    near = unary("log1p", t + unary("sqrt", t * 2 + t * t))
    far = unary("log", where(big, x, 1.0)) + _LN2
    return where(x < 1, math.nan, where(big, far, near))


def acosh(input):
    """Inverse hyperbolic cosine (``log1p(t + sqrt(2t + t^2))``, ``t = x - 1``); NaN
    below 1."""
    return _float_fn(input, "acosh", _acosh)


def atanh(input):
    """Inverse hyperbolic tangent ``(log1p(x) - log1p(-x)) / 2``; +-inf at +-1, NaN
    outside [-1, 1]."""
    return _float_fn(input, "atanh",
                     lambda x: (unary("log1p", x) - unary("log1p", -x)) * 0.5)


arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh


# ---------------------------------------------------------------------------------------
# logs, rounding, signs
def log10(input):
    """Base-10 logarithm."""
    return _as_float(input, "log10").log() * _LOG10_E


def sinc(input):
    """Normalized sinc ``sin(pi x) / (pi x)``, 1 at 0 (where the gradient is 0)."""
    def fn(x):
        zero = x == 0
        px = where(zero, 1.0, x) * math.pi
        return where(zero, 1.0, unary("sin", px) / px)
    return _float_fn(input, "sinc", fn)


def frac(input):
    """Fractional part ``x - trunc(x)``, with the sign of ``x``. Floating tensors only."""
    x = _float_only(input, "frac")
    return x - unary("trunc", x)


def fix(input):
    """Alias of :func:`framework.trunc`."""
    return unary("trunc", _tensor(input, "fix"))


def sgn(input):
    """``sign(x)`` for real input; ``z / |z|`` (0 at 0) for complex input, as PyTorch."""
    x = _tensor(input, "sgn")
    if x.dtype.is_complex:
        a = x.abs()
        return where(a == 0, 0.0, x / where(a == 0, 1.0, a))
    return unary("sign", x)


def _signbit_t(x):
    if x.dtype.category == FLOAT:
        # -0.0: 1 / -0.0 is -inf. A NaN's sign bit is not visible to comparisons: False.
        return (x < 0) | ((x == 0) & (unary("reciprocal", x) < 0))
    if x.dtype.is_signed:
        return x < 0
    return full_like_bool(x, False)


def signbit(input):
    """True where the sign bit is set: negative numbers and -0.0 (a NaN reads as False:
    there is no bit-level view op to inspect it)."""
    return _signbit_t(_tensor(input, "signbit"))


def copysign(input, other):
    """``|input|`` with the sign of ``other`` (sign bit: -0.0 counts as negative); always
    floating. The gradient reaches ``input`` only (0 where ``input`` is 0, as PyTorch)."""
    _tensor(input, "copysign")
    a, b = _float_pair(input, other, "copysign")
    mag = a.abs()
    if isinstance(b, Tensor):
        return where(_signbit_t(b), -mag, mag)
    return -mag if math.copysign(1.0, b) < 0 else mag


def heaviside(input, values):
    """Step function: 0 where ``input < 0``, ``values`` where ``input == 0``, 1 where
    ``input > 0`` (and 0 for NaN, as PyTorch). Both tensors must share a dtype."""
    _tensor(input, "heaviside")
    _tensor(values, "heaviside", "values")
    if input.dtype is not values.dtype:
        raise DTypeError(f"heaviside(): input and values must have the same dtype, got "
                         f"{input.dtype.name} and {values.dtype.name}")
    step = cast(input > 0, input.dtype)
    return where(input == 0, values, step)


def logit(input, eps=None):
    """``log(x / (1 - x))``; with ``eps``, ``x`` is first clamped to ``[eps, 1 - eps]``
    (the gradient is then 0 outside that interval, as PyTorch)."""
    def fn(x):
        if eps is not None:
            lo, hi = float(eps), 1.0 - float(eps)
            x = where(x < lo, lo, where(x > hi, hi, x))
        return unary("log", x) - unary("log1p", -x)
    return _float_fn(input, "logit", fn)


def float_power(input, exponent):
    """``input ** exponent`` computed in float64 (the result is float64)."""
    if not isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        raise FwTypeError("float_power(): expected at least one Tensor argument")
    a = cast(input, dtypes.float64) if isinstance(input, Tensor) else float(input)
    b = cast(exponent, dtypes.float64) if isinstance(exponent, Tensor) else float(exponent)
    return pow(a, b)


def float_power_(self, exponent):
    """In-place :func:`float_power`: ``self`` must already be float64 (as PyTorch)."""
    from .inplace import commit, mark
    if self.dtype is not dtypes.float64:
        raise DTypeError(f"float_power_(): the base has dtype {self.dtype.name} but the "
                         "result requires dtype float64")
    since = mark()
    return commit(self, float_power(self, exponent), "float_power_", since)


def rad2deg(input):
    """Radians to degrees."""
    return _as_float(input, "rad2deg") * (180.0 / math.pi)


def deg2rad(input):
    """Degrees to radians."""
    return _as_float(input, "deg2rad") * (math.pi / 180.0)


# ---------------------------------------------------------------------------------------
# NaN-ignoring extremes, classification
def _fextreme(input, other, name):
    _tensor(input, name)
    _tensor(other, name, "other")
    a, b, dt = promote(input, other, name)
    m = binary("maximum" if name == "fmax" else "minimum", a, b)
    if dt.category != FLOAT:
        return m
    return where(a.isnan(), b, where(b.isnan(), a, m))


def fmax(input, other):
    """Elementwise maximum that ignores NaN: NaN only where both are NaN."""
    return _fextreme(input, other, "fmax")


def fmin(input, other):
    """Elementwise minimum that ignores NaN."""
    return _fextreme(input, other, "fmin")


def isposinf(input):
    """True where ``input`` is +inf."""
    x = _tensor(input, "isposinf")
    _no_complex(x, "isposinf")
    return x == math.inf if x.dtype.category == FLOAT else full_like_bool(x, False)


def isneginf(input):
    """True where ``input`` is -inf."""
    x = _tensor(input, "isneginf")
    _no_complex(x, "isneginf")
    return x == -math.inf if x.dtype.category == FLOAT else full_like_bool(x, False)


def _no_complex(x, name):
    if x.dtype.is_complex:
        raise DTypeError(f"{name}: {x.dtype.name} tensors are not supported")


def isreal(input):
    """True where the imaginary part is zero (all True for real dtypes)."""
    x = _tensor(input, "isreal")
    if x.dtype.is_complex:
        return x.imag == 0
    return full_like_bool(x, True)


def positive(input):
    """``input`` itself (``+x``); an error for bool tensors, as PyTorch."""
    if _tensor(input, "positive").dtype is dtypes.bool_:
        raise DTypeError("positive(): the `+` operator, on a bool tensor is not supported")
    return input


# ---------------------------------------------------------------------------------------
# integer gcd / lcm
def _euclid_steps(dt) -> int:
    """An upper bound on Euclid's iterations for values of ``dt``: consecutive Fibonacci
    numbers are the worst case, so the count of Fibonacci numbers up to the max."""
    top = int(np.iinfo(dt.np).max)
    a, b, n = 1, 2, 1
    while b <= top:
        a, b, n = b, a + b, n + 1
    return n + 1


def _int_pair(input, other, op):
    _tensor(input, op)
    a, b, dt = promote(input, other, op)
    if dt.category != INT:
        raise DTypeError(f"{op}(): expected integer tensors, got the promoted dtype "
                         f"{dt.name}")
    if not isinstance(b, Tensor):
        b = a * 0 + b
    return a, b, dt


def _gcd(a, b, dt):
    a, b = a.abs(), b.abs()
    eager = tls.tracer is None and a._data is not None and b._data is not None
    for _ in range(_euclid_steps(dt)):
        nz = b != 0
        if eager and not bool(_any(nz)):
            break
        r = binary("remainder", a, where(nz, b, 1))
        a, b = where(nz, b, a), where(nz, r, 0)
    return a


def gcd(input, other):
    """Greatest common divisor of integer tensors (non-negative; ``gcd(0, 0) = 0``).
    Euclid's algorithm as tensor ops: eagerly it stops when every pair is done; under
    ``fw.compile`` it runs the dtype's worst-case number of steps."""
    a, b, dt = _int_pair(input, other, "gcd")
    return _gcd(a, b, dt)


def lcm(input, other):
    """Least common multiple of integer tensors (non-negative; 0 if either is 0)."""
    a, b, dt = _int_pair(input, other, "lcm")
    g = _gcd(a, b, dt)
    zero = g == 0
    return where(zero, 0, binary("floor_divide", a.abs(), where(zero, 1, g)) * b.abs())


# ---------------------------------------------------------------------------------------
# exponent manipulation
def ldexp(input, other):
    """``input * 2 ** other``, floating (the power is formed in the result dtype, so a
    float64 ``input`` takes exponents beyond float32's range)."""
    x = _as_float(input, "ldexp")
    if not isinstance(other, Tensor):
        other = full((), other, dtype=x.dtype, device=x.device)
    dt = dtypes.promote_types(x.dtype, other.dtype) if other.dtype.category == FLOAT \
        else x.dtype
    return x * pow(2.0, cast(other, dt))


def _scale(x, k):
    """``x * 2**k`` for a float tensor ``k`` of integers, in two halves so that neither
    power over- or underflows on its own."""
    h = (k * 0.5).floor()
    return x * unary("exp2", h) * unary("exp2", k - h)


def _exponent(ax):
    """frexp's exponent (as floats) of positive finite ``ax``: ``ax = m * 2**e`` with
    ``m`` in [0.5, 1). ``floor(log2)`` may be off by one near powers of two: fixed up."""
    e = unary("log2", ax).floor() + 1
    m = _scale(ax, -e)
    return where(m >= 1, e + 1, where(m < 0.5, e - 1, e))


def _frexp(x):
    special = (x == 0) | ~x.isfinite()
    e = _exponent(where(special, 1.0, x.abs()).detach())
    e = where(special, 0.0, e)
    return where(special, x, _scale(x, -e)), e


def frexp(input):
    """``(mantissa, exponent)`` with ``input = mantissa * 2**exponent``, ``|mantissa|`` in
    [0.5, 1) and an int32 exponent; 0, inf and NaN give ``(input, 0)``. Floating tensors
    only; the mantissa's gradient is ``2**-exponent``."""
    x = _float_only(input, "frexp")
    xc = cast(x, dtypes.float32) if x.dtype.itemsize == 2 else x
    m, e = _frexp(xc)
    return FrexpResult(cast(m, x.dtype), cast(e, dtypes.int32))


_MANT_DIGITS = {dtypes.float16: 11, dtypes.bfloat16: 8, dtypes.float32: 24, dtypes.float64: 53}


def _nextafter(x, y, dt):
    import ml_dtypes
    info = ml_dtypes.finfo(dt.np)
    p = _MANT_DIGITS[dt]
    tiny = float(info.smallest_normal)
    emin = math.frexp(tiny)[1]  # the exponent below which the spacing stays constant
    up = y > x
    ax = x.abs()
    e = _exponent(where((ax < tiny) | ~x.isfinite(), tiny, ax))
    away = (x == 0) | (up == (x > 0))
    at_power = _scale(ax, -e) == 0.5  # moving toward 0 from 2**k: the spacing halves
    k = where(away | ~at_power, e - p, e - p - 1)
    step = unary("exp2", binary("maximum", k, float(emin - p)))
    out = x + where(up, step, -step)
    out = where(x.isinf(), x.sign() * float(info.max), out)
    return where(x == y, y, where(x.isnan() | y.isnan(), math.nan, out))


def nextafter(input, other):
    """The next representable value after ``input`` towards ``other`` (``other`` where
    they are equal, NaN if either is NaN), in their common floating dtype. Computed from
    the exponent (no bit-level view op here): on a GPU that flushes subnormals to zero
    the steps next to 0 may differ."""
    _tensor(input, "nextafter")
    _tensor(other, "nextafter", "other")
    a, b, dt = promote(input, other, "nextafter")
    if dt.category != FLOAT:
        raise DTypeError(f"nextafter(): expected floating-point tensors, got {dt.name}")
    if dt.itemsize == 2:
        f32 = dtypes.float32
        return cast(_nextafter(cast(a.detach(), f32), cast(b.detach(), f32), dt), dt)
    return _nextafter(a.detach(), b.detach(), dt)

