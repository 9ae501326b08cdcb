"""OpInfo records: elementwise ops (unary, binary, where, cast), their operator and
in-place forms, and the composites built on them (clamp, lerp, addcmul, isclose...)."""

from __future__ import annotations

import math
import operator

import numpy as np

import framework as fw
from tests.opinfo import (ALL, FLOAT_INT, FLOATS, INT_BOOL, NUMERIC, OpInfo, Sample,
                          binary_samples, float_out, make, noncontig, register_opinfo,
                          rng, transposed, unary_samples)


def _errstate(fn):
    def run(*a, **k):
        with np.errstate(all="ignore"):
            return fn(*a, **k)
    return run


_erf = np.vectorize(math.erf, otypes=[np.float64])

# name -> (reference, float-only (ints promote to float), positive domain, extra kwargs
#          for the sample maker)
_UNARY = {
    "neg": (np.negative, False, False, {}),
    "exp": (np.exp, True, False, {}),
    "exp2": (np.exp2, True, False, {}),
    "log": (np.log, True, True, {}),
    "log2": (np.log2, True, True, {}),
    "log1p": (np.log1p, True, True, {}),
    "expm1": (np.expm1, True, False, {}),
    "sqrt": (np.sqrt, True, True, {}),
    "rsqrt": (lambda x: 1 / np.sqrt(x), True, True, {}),
    "sin": (np.sin, True, False, {}),
    "cos": (np.cos, True, False, {}),
    "tan": (np.tan, True, False, {"low": -1.2, "high": 1.2}),
    "tanh": (np.tanh, True, False, {}),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), True, False, {}),
    "relu": (lambda x: np.maximum(x, 0).astype(x.dtype), False, False, {}),
    "abs": (np.abs, False, False, {}),
    "sign": (np.sign, False, False, {}),
    "reciprocal": (lambda x: 1 / x, True, False, {}),
    "floor": (np.floor, False, False, {}),
    "ceil": (np.ceil, False, False, {}),
    "round": (np.round, False, False, {}),
    "trunc": (np.trunc, False, False, {}),
    "erf": (_erf, True, False, {}),
}
# These give zero gradients almost everywhere; their IEEE sample is still checked.
_NO_IEEE = {"sign"}  # sign(nan) is nan in NumPy and in PyTorch, but sign(-0.0) differs


def _unary_records():
    recs = []
    for name, (ref, float_only, positive, kw) in _UNARY.items():
        def samples(dt, positive=positive, kw=kw, name=name):
            return unary_samples(dt, positive=positive, ieee=name not in _NO_IEEE, **kw)
        fn = getattr(fw, name)
        recs.append(OpInfo(name, fn, _errstate(ref), samples, dtypes=FLOAT_INT, op=name,
                           out_dtype=float_out if float_only else None))
        if hasattr(fw.Tensor, name + "_"):
            def ip(x, _name=name + "_"):
                return getattr(x, _name)()
            recs.append(OpInfo(name + "_", ip, _errstate(ref), samples, dtypes=FLOATS,
                               inplace=True))
    for name, ref in (("isnan", np.isnan), ("isinf", np.isinf), ("isfinite", np.isfinite)):
        recs.append(OpInfo(name, getattr(fw, name), ref, unary_samples, dtypes=NUMERIC,
                           differentiable=False, op=name))
    recs.append(OpInfo("logical_not", fw.logical_not, np.logical_not, unary_samples,
                       dtypes=ALL, differentiable=False, op="logical_not"))
    recs.append(OpInfo("bitwise_not", fw.bitwise_not, np.invert, unary_samples,
                       dtypes=INT_BOOL, differentiable=False, op="bitwise_not"))
    recs.append(OpInfo("__invert__", operator.invert, np.invert, unary_samples,
                       dtypes=INT_BOOL, differentiable=False))
    recs.append(OpInfo("__neg__", operator.neg, np.negative, unary_samples, dtypes=NUMERIC))
    recs.append(OpInfo("__abs__", operator.abs, np.abs, unary_samples, dtypes=NUMERIC))
    recs.append(OpInfo("square", fw.square, np.square, unary_samples, dtypes=NUMERIC))
    recs.append(OpInfo("round_decimals", lambda x: fw.round(x, decimals=2),
                       lambda x: np.round(x, 2), unary_samples, dtypes=(fw.float32, fw.float64)))
    return recs


# ---------------------------------------------------------------------------------------
def _pow_samples(dt):
    if dt.is_floating_point:
        return binary_samples(dt, lhs_positive=True, low=0.5, high=2.0)
    g = rng(3)
    base = g.integers(-3, 4, size=(3, 4)).astype(dt.np)
    exp = g.integers(0, 4, size=(3, 4)).astype(dt.np)
    return [Sample((base, exp), name="int"), Sample((base, 2), name="int-scalar"),
            Sample((2, exp), name="scalar-base")]


def _nonzero_rhs(dt):
    return binary_samples(dt, rhs_positive=not dt.is_signed)


# name -> (reference, dtypes, out_dtype, samples, differentiable)
_BINARY = {
    "add": (np.add, ALL, None, binary_samples, True),
    "sub": (np.subtract, NUMERIC, None, binary_samples, True),
    "mul": (np.multiply, ALL, None, binary_samples, True),
    "div": (np.true_divide, NUMERIC, float_out, _nonzero_rhs, True),
    "pow": (np.power, FLOAT_INT, None, _pow_samples, True),
    "maximum": (np.maximum, ALL, None, binary_samples, True),
    "minimum": (np.minimum, ALL, None, binary_samples, True),
    "atan2": (np.arctan2, FLOAT_INT, float_out, binary_samples, True),
    "remainder": (np.remainder, FLOAT_INT, None, binary_samples, True),
    "fmod": (np.fmod, FLOAT_INT, None, binary_samples, True),
    "floor_divide": (np.floor_divide, FLOAT_INT, None, binary_samples, False),
    "bitwise_and": (np.bitwise_and, INT_BOOL, None, binary_samples, False),
    "bitwise_or": (np.bitwise_or, INT_BOOL, None, binary_samples, False),
    "bitwise_xor": (np.bitwise_xor, INT_BOOL, None, binary_samples, False),
    "eq": (np.equal, ALL, None, binary_samples, False),
    "ne": (np.not_equal, ALL, None, binary_samples, False),
    "lt": (np.less, ALL, None, binary_samples, False),
    "le": (np.less_equal, ALL, None, binary_samples, False),
    "gt": (np.greater, ALL, None, binary_samples, False),
    "ge": (np.greater_equal, ALL, None, binary_samples, False),
    "logical_and": (np.logical_and, ALL, None, binary_samples, False),
    "logical_or": (np.logical_or, ALL, None, binary_samples, False),
    "logical_xor": (np.logical_xor, ALL, None, binary_samples, False),
}
_OPERATORS = {  # operator -> the binary record it mirrors
    "__add__": (operator.add, "add"), "__sub__": (operator.sub, "sub"),
    "__mul__": (operator.mul, "mul"), "__truediv__": (operator.truediv, "div"),
    "__floordiv__": (operator.floordiv, "floor_divide"), "__mod__": (operator.mod, "remainder"),
    "__pow__": (operator.pow, "pow"), "__and__": (operator.and_, "bitwise_and"),
    "__or__": (operator.or_, "bitwise_or"), "__xor__": (operator.xor, "bitwise_xor"),
    "__eq__": (operator.eq, "eq"), "__ne__": (operator.ne, "ne"), "__lt__": (operator.lt, "lt"),
    "__le__": (operator.le, "le"), "__gt__": (operator.gt, "gt"), "__ge__": (operator.ge, "ge"),
}
_IOPERATORS = {"__iadd__": (operator.iadd, "add"), "__isub__": (operator.isub, "sub"),
               "__imul__": (operator.imul, "mul"), "__itruediv__": (operator.itruediv, "div"),
               "__ipow__": (operator.ipow, "pow"), "__imod__": (operator.imod, "remainder"),
               "__ifloordiv__": (operator.ifloordiv, "floor_divide"),
               "__iand__": (operator.iand, "bitwise_and")}


def _lhs_shaped(samples):
    """Keep samples whose first argument has the broadcast shape (valid for in-place)."""
    def pick(dt):
        out = []
        for s in samples(dt):
            a = s.args[0]
            shapes = [np.shape(x) for x in s.args if isinstance(x, np.ndarray)]
            if isinstance(a, np.ndarray) and np.broadcast_shapes(*shapes) == a.shape:
                out.append(s)
        return out
    return pick


def _inplace_dtypes(dtypes, out_dtype):
    return tuple(d for d in dtypes if d is not fw.bool and
                 (out_dtype is None or out_dtype(d) is d))


def _binary_records():
    recs = []
    for name, (ref, dts, out, samples, diff) in _BINARY.items():
        ref = _errstate(ref)
        recs.append(OpInfo(name, getattr(fw, name), ref, samples, dtypes=dts,
                           differentiable=diff, op=name, out_dtype=out))
        if hasattr(fw.Tensor, name + "_"):
            def ip(x, y, _name=name + "_"):
                return getattr(x, _name)(y)
            recs.append(OpInfo(name + "_", ip, ref, _lhs_shaped(samples),
                               dtypes=_inplace_dtypes(dts, out), differentiable=diff,
                               inplace=True))
    for name, (fn, base) in _OPERATORS.items():
        ref, dts, out, samples, diff = _BINARY[base]
        dts = tuple(d for d in dts if not (d is fw.bool and name == "__sub__"))
        recs.append(OpInfo(name, fn, _errstate(ref), samples, dtypes=dts, differentiable=diff,
                           out_dtype=out))
    for name, (fn, base) in _IOPERATORS.items():
        ref, dts, out, samples, diff = _BINARY[base]
        recs.append(OpInfo(name, fn, _errstate(ref), _lhs_shaped(samples),
                           dtypes=_inplace_dtypes(dts, out), differentiable=diff, inplace=True))
    recs += [
        OpInfo("add_alpha", lambda a, b: fw.add(a, b, alpha=2), lambda a, b: a + 2 * b,
               _no_scalars(binary_samples), dtypes=NUMERIC),
        OpInfo("sub_alpha", lambda a, b: fw.sub(a, b, alpha=3), lambda a, b: a - 3 * b,
               _no_scalars(binary_samples), dtypes=NUMERIC),
        OpInfo("div_trunc", lambda a, b: fw.div(a, b, rounding_mode="trunc"),
               _errstate(lambda a, b: np.trunc(a / b)), binary_samples, dtypes=FLOAT_INT,
               differentiable=False),
        OpInfo("div_floor", lambda a, b: fw.div(a, b, rounding_mode="floor"),
               _errstate(np.floor_divide), binary_samples, dtypes=FLOAT_INT,
               differentiable=False),
    ]
    return recs


def _no_scalars(samples):
    def pick(dt):
        return [s for s in samples(dt) if all(isinstance(a, np.ndarray) for a in s.args)]
    return pick


# ---------------------------------------------------------------------------------------
def _where_samples(dt):
    g = rng(4)
    c = g.random((3, 4)) < 0.5
    return [Sample((c, make((3, 4), dt, g), make((3, 4), dt, g)), name="same"),
            Sample((c, make((3, 1), dt, g), make((4,), dt, g)), name="bcast"),
            Sample((c[:, :1], make((3, 4), dt, g), make((), dt, g)), name="bcast-cond"),
            Sample((c, make((3, 4), dt, g), 0.5 if dt.is_floating_point else
                    (False if dt is fw.bool else 0)),
                   name="scalar"),
            Sample((c.T, transposed(make((4, 3), dt, g)), noncontig(make((4, 3), dt, g))),
                   name="noncontig"),
            Sample((c[:0], make((0, 4), dt, g), make((4,), dt, g)), name="empty")]


def _clamp_samples(dt):
    g = rng(5)
    x = make((3, 4), dt, g, low=-3, high=3)
    lo, hi = (-1, 2) if not dt.is_floating_point else (-1.0, 1.5)
    return [Sample((x,), {"min": lo, "max": hi}), Sample((x,), {"min": lo}),
            Sample((transposed(x),), {"max": hi}),
            Sample((x,), {"min": make((4,), dt, g, low=-2, high=-0.5),
                          "max": make((3, 1), dt, g, low=0.5, high=2)}, name="tensor-bounds")]


def _clamp_ref(x, min=None, max=None):
    if min is not None:
        x = np.maximum(x, min)
    if max is not None:
        x = np.minimum(x, max)
    return x


def _ternary_samples(dt):
    g = rng(6)
    return [Sample((make((3, 4), dt, g), make((3, 4), dt, g), make((4,), dt, g))),
            Sample((transposed(make((4, 3), dt, g)), make((1, 3), dt, g),
                    make((4, 1), dt, g, positive=True)), name="bcast"),
            Sample((make((), dt, g), make((2,), dt, g), make((2,), dt, g)), name="0d")]


def _isclose_samples(dt):
    g = rng(7)
    a = make((4, 5), dt, g)
    b = a.copy()
    b[0] += dt.np.type(1) if not dt.is_floating_point else 1e-7
    b[1] += dt.np.type(2) if not dt.is_floating_point else 1e-2
    return [Sample((a, b)), Sample((a, b), {"rtol": 0.1, "atol": 0.5})]


def _cast_samples(dt):
    g = rng(8)
    return [Sample((make((3, 4), dt, g, positive=True, high=100),)),
            Sample((transposed(make((2, 3), dt, g, positive=True)),)),
            Sample((make((), dt, g, positive=True),)), Sample((make((0, 2), dt, g),))]


def _cast_records():
    recs = []
    for target in (fw.float16, fw.bfloat16, fw.float32, fw.float64, fw.int8, fw.uint8,
                   fw.int16, fw.int32, fw.int64, fw.bool):
        def ref(x, _t=target):
            y = x.astype(np.float64) if x.dtype.kind == "f" else x
            if _t is fw.bool:
                return y != 0
            if not _t.is_floating_point and x.dtype.kind == "f":
                y = np.trunc(y)
            return y.astype(_t.np).astype(np.float64 if _t.is_floating_point else _t.np)
        recs.append(OpInfo(f"to_{target.name}", lambda x, _t=target: x.to(_t), ref,
                           _cast_samples, dtypes=ALL, op="cast",
                           out_dtype=lambda d, _t=target: _t,
                           # FD steps vanish in low precision; the cast VJP is tested in
                           # tests/test_autograd.py
                           differentiable=target is fw.float64))
    for meth, target in (("float", fw.float32), ("double", fw.float64), ("half", fw.float16),
                         ("bfloat16", fw.bfloat16), ("long", fw.int64), ("int", fw.int32),
                         ("bool", fw.bool)):
        recs.append(OpInfo(f"Tensor.{meth}", lambda x, _m=meth: getattr(x, _m)(),
                           recs[[r.name for r in recs].index(f"to_{target.name}")].ref,
                           _cast_samples, dtypes=(fw.float32, fw.int64, fw.bool),
                           out_dtype=lambda d, _t=target: _t, differentiable=False))
    return recs


_F32_64 = (fw.float32, fw.float64)

register_opinfo(
    *_unary_records(), *_binary_records(), *_cast_records(),
    OpInfo("where", fw.where, np.where, _where_samples, dtypes=ALL, op="where"),
    OpInfo("Tensor.where", lambda c, a, b: a.where(c, b), np.where,
           lambda dt: [s for s in _where_samples(dt) if isinstance(s.args[1], np.ndarray)],
           dtypes=NUMERIC),
    OpInfo("clamp", fw.clamp, _clamp_ref, _clamp_samples, dtypes=FLOAT_INT),
    OpInfo("clip", fw.clip, _clamp_ref, _clamp_samples, dtypes=FLOATS),
    OpInfo("clamp_", lambda x, **k: x.clamp_(**k), _clamp_ref, _clamp_samples, dtypes=FLOATS,
           inplace=True),
    OpInfo("clamp_min", lambda x, min: fw.clamp_min(x, min), _clamp_ref,
           lambda dt: [s for s in _clamp_samples(dt) if "max" not in s.kwargs], dtypes=FLOATS),
    OpInfo("clamp_max", lambda x, max: fw.clamp_max(x, max),
           lambda x, max: _clamp_ref(x, max=max),
           lambda dt: [s for s in _clamp_samples(dt) if "min" not in s.kwargs], dtypes=FLOATS),
    OpInfo("lerp", fw.lerp, lambda a, b, w: a + w * (b - a), _ternary_samples, dtypes=FLOATS),
    OpInfo("lerp_scalar", lambda a, b, w: fw.lerp(a, b, 0.3), lambda a, b, w: a + 0.3 * (b - a),
           _ternary_samples, dtypes=FLOATS),
    OpInfo("addcmul", lambda a, b, c: fw.addcmul(a, b, c, value=0.5),
           lambda a, b, c: a + 0.5 * b * c, _ternary_samples, dtypes=FLOATS),
    OpInfo("addcdiv", lambda a, b, c: fw.addcdiv(a, b, c, value=2),
           lambda a, b, c: a + 2 * b / c, _ternary_samples, dtypes=_F32_64),
    OpInfo("isclose", fw.isclose, np.isclose, _isclose_samples, dtypes=_F32_64 + (fw.int64,),
           differentiable=False),
    OpInfo("allclose", fw.allclose, np.allclose, _isclose_samples, dtypes=_F32_64,
           differentiable=False),
    OpInfo("equal", fw.equal, lambda a, b: np.array_equal(a, b),
           lambda dt: [Sample(s.args) for s in _isclose_samples(dt)[:1]] +
           [Sample((s.args[0], s.args[0])) for s in _isclose_samples(dt)[:1]],
           dtypes=ALL[:-1], differentiable=False),
    OpInfo("nan_to_num", lambda x: fw.nan_to_num(x, nan=0.5, posinf=9.0, neginf=-9.0),
           lambda x: np.nan_to_num(x, nan=0.5, posinf=9.0, neginf=-9.0),
           lambda dt: [Sample((np.array([math.nan, math.inf, -math.inf, 1.25], dt.np),))],
           dtypes=FLOATS, differentiable=False),
)


# ---------------------------------------------------------------------------------------
# special functions (fw.special); references from mpmath, pole/IEEE values as PyTorch
def _mp_ref(fn, edge):
    import mpmath

    def one(x):
        x = float(x)
        e = edge(x)
        if e is not None:
            return e
        with mpmath.workdps(30):
            return float(fn(mpmath, mpmath.mpf(x)))
    vec = np.vectorize(one, otypes=[np.float64])
    return lambda x: vec(np.asarray(x, np.float64))


def _is_pole(x):
    return x <= 0 and (math.isinf(x) or x == math.floor(x))


def _edge_lgamma(x):
    return math.inf if math.isinf(x) or _is_pole(x) else (math.nan if math.isnan(x) else None)


def _edge_digamma(x):
    if math.isnan(x) or x == -math.inf:
        return math.nan
    if x == 0:
        return math.copysign(math.inf, -x)
    return math.nan if _is_pole(x) else (math.inf if x == math.inf else None)


def _edge_polygamma(n):
    def edge(x):
        if math.isnan(x):
            return math.nan
        if _is_pole(x):
            return (1.0 if n % 2 else -1.0) * math.inf
        return 0.0 if x == math.inf else None
    return edge


def _edge_erfinv(x):
    if math.isnan(x) or abs(x) > 1:
        return math.nan
    return math.copysign(math.inf, x) if abs(x) == 1 else (x if x == 0 else None)


def _edge_bessel(odd, scaled):
    def edge(x):
        if math.isnan(x):
            return math.nan
        if math.isinf(x):
            return (0.0 if scaled else (x if odd else math.inf))
        return None
    return edge


_SPECIAL_REFS = {
    "lgamma": (fw.lgamma, lambda m, x: m.log(abs(m.gamma(x))), _edge_lgamma, {"low": -4.5,
                                                                              "high": 6}),
    "digamma": (fw.digamma, lambda m, x: m.digamma(x), _edge_digamma, {"low": -3.5, "high": 6}),
    "erfinv": (fw.erfinv, lambda m, x: m.erfinv(x), _edge_erfinv, {"low": -0.95, "high": 0.95}),
    "erfc": (fw.erfc, lambda m, x: m.erfc(x), lambda x: None, {"low": -4, "high": 9}),
    "i0": (fw.i0, lambda m, x: m.besseli(0, x), _edge_bessel(False, False),
           {"low": -12, "high": 12}),
    "i0e": (fw.special.i0e, lambda m, x: m.besseli(0, x) * m.exp(-abs(x)),
            _edge_bessel(False, True), {"low": -12, "high": 12}),
    "i1": (fw.special.i1, lambda m, x: m.besseli(1, x), _edge_bessel(True, False),
           {"low": -12, "high": 12}),
    "i1e": (fw.special.i1e, lambda m, x: m.besseli(1, x) * m.exp(-abs(x)),
            _edge_bessel(True, True), {"low": -12, "high": 12}),
}


def _special_samples(kw):
    def samples(dt):
        out = unary_samples(dt, **kw)
        if dt.is_floating_point:  # poles, large arguments
            big = 30.5 if dt in (fw.float32, fw.float64) else 7.5
            poles = np.array([-3.0, -1.0, 0.0, 1.0, 2.0, big, -2.5, 0.999], dt.np)
            out.append(Sample((poles,), name="poles", grad=False))
        return out
    return samples


def _special_records():
    recs = []
    for name, (fn, mp_fn, edge, kw) in _SPECIAL_REFS.items():
        recs.append(OpInfo(name, fn, _mp_ref(mp_fn, edge), _special_samples(kw),
                           dtypes=FLOAT_INT, op=name, out_dtype=float_out))
    for n in (1, 2):
        recs.append(OpInfo(f"polygamma_{n}", lambda x, n=n: fw.polygamma(n, x),
                           _mp_ref(lambda m, x, n=n: m.polygamma(n, x), _edge_polygamma(n)),
                           _special_samples({"low": 0.3, "high": 6}),
                           dtypes=(fw.float32, fw.float64, fw.int64), op="polygamma",
                           out_dtype=float_out))
    return recs


register_opinfo(*_special_records())
