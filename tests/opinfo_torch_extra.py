"""OpInfo records: the PyTorch top-level composites of framework/ops/torch_extra.py
(inverse trigonometric and hyperbolic functions, log10, sinc, frac, fix, sgn, signbit,
copysign, heaviside, logit, float_power, rad2deg/deg2rad, fmax/fmin, isposinf/isneginf,
isreal, positive, gcd/lcm, ldexp, frexp, nextafter) and framework/ops/torch_misc.py
(count_nonzero, nansum, nanmean, aminmax, isin, tensor_split, h/v/dsplit, atleast_nd,
dstack, column_stack, row_stack, diagflat, unravel_index, renorm, is_nonzero).

None of them is a registered op (``op=None``). The ``arc*`` spellings are the same function
objects as ``asin``... and are covered by those records; ``histogram`` (host computed, data
dependent bin edges) is listed in ``NOT_OPS`` of tests/test_ops_opinfo.py."""

from __future__ import annotations

import math
import warnings

import numpy as np

import framework as fw
from tests.opinfo import (ALL, FLOAT_INT, FLOATS, INTS, NUMERIC, OpInfo, Sample,
                          binary_samples, float_out, make, noncontig, register_opinfo, rng,
                          special, transposed, unary_samples)

_I = np.int64
_F32_64 = (fw.float32, fw.float64)
_INTS = INTS + (fw.int8, fw.int16)
_LOW = {fw.float16: (2e-2, 1e-2), fw.bfloat16: (1e-1, 3e-2)}


def _errstate(fn):
    def run(*a, **k):
        with np.errstate(all="ignore"):
            return fn(*a, **k)
    return run


def _tensor_first(samples):
    """Samples whose first argument is an array (``f(tensor, number)`` is allowed)."""
    def pick(dt):
        return [s for s in samples(dt) if isinstance(s.args[0], np.ndarray)]
    return pick


# -- unary floating functions --------------------------------------------------------------
def _with_values(kw, extra=None):
    """unary_samples(**kw) plus, for float32/float64, a sample of ``extra`` values (large
    arguments that take another branch of the formula)."""
    def samples(dt):
        out = unary_samples(dt, **kw)
        if extra is not None and dt in _F32_64:
            out.append(Sample((np.array(extra, dt.np),), name="wide"))
        return out
    return samples


# name -> (reference, sample maker)
_UNARY = {
    "asin": (np.arcsin, _with_values({"low": -0.95, "high": 0.95})),
    "acos": (np.arccos, _with_values({"low": -0.95, "high": 0.95})),
    "atan": (np.arctan, _with_values({}, [-50.0, -3.0, 7.5, 1e4])),
    "sinh": (np.sinh, _with_values({}, [-25.0, -19.5, 20.5, 24.0])),
    "cosh": (np.cosh, _with_values({}, [-25.0, -19.5, 20.5, 24.0])),
    "asinh": (np.arcsinh, _with_values({}, [-1e5, -30.0, 4e3, 5e3, 1e6, 1e8])),
    "acosh": (np.arccosh, _with_values({"positive": True, "low": 1.1, "high": 4.0},
                                       [1.5, 30.0, 4e3, 5e3, 1e6, 1e8])),
    "atanh": (np.arctanh, _with_values({"low": -0.9, "high": 0.9})),
    "log10": (np.log10, _with_values({"positive": True}, [1e-3, 1e5, 3e7])),
    "rad2deg": (np.rad2deg, _with_values({})),
    "deg2rad": (np.deg2rad, _with_values({})),
}


def _sinc_samples(dt):
    out = unary_samples(dt)
    out.append(Sample((np.array([0.0, 1.0, -2.0, 0.5, 3.5], dt.np),), name="zero-ints"))
    return out


def _logit_samples(dt):
    out = unary_samples(dt, positive=True, low=0.05, high=0.95)
    g = rng(90)
    x = make((3, 4), dt, g, low=0.02, high=0.98, away=0)
    if dt.is_floating_point:  # keep the values off the clamp's kinks
        x[np.abs(x - 0.2) < 0.03] = 0.5
        x[np.abs(x - 0.8) < 0.03] = 0.5
    return out + [Sample((x,), {"eps": 0.2}, name="eps"),
                  Sample((x, 0.0), name="eps=0")]


def _logit_ref(x, eps=None):
    if eps is not None:
        x = np.clip(x, eps, 1 - eps)
    return np.log(x / (1 - x))


def _unary_records():
    recs = [OpInfo(name, getattr(fw, name), _errstate(ref), samples, dtypes=FLOAT_INT,
                   out_dtype=float_out) for name, (ref, samples) in _UNARY.items()]
    recs += [
        OpInfo("sinc", fw.sinc, _errstate(np.sinc), _sinc_samples, dtypes=FLOAT_INT,
               out_dtype=float_out),
        OpInfo("logit", fw.logit, _errstate(_logit_ref), _logit_samples, dtypes=FLOAT_INT,
               out_dtype=float_out),
        OpInfo("frac", fw.frac, _errstate(lambda x: x - np.trunc(x)), unary_samples,
               dtypes=FLOATS),
        OpInfo("fix", fw.fix, np.trunc, unary_samples, dtypes=FLOAT_INT),
        OpInfo("sgn", fw.sgn, np.sign, unary_samples, dtypes=FLOAT_INT),
        OpInfo("signbit", fw.signbit, np.signbit, unary_samples, dtypes=NUMERIC + _INTS[2:],
               differentiable=False),
        OpInfo("isposinf", fw.isposinf, np.isposinf, unary_samples, dtypes=NUMERIC,
               differentiable=False),
        OpInfo("isneginf", fw.isneginf, np.isneginf, unary_samples, dtypes=NUMERIC,
               differentiable=False),
        OpInfo("isreal", fw.isreal, np.isreal, unary_samples, dtypes=ALL,
               differentiable=False),
        OpInfo("positive", fw.positive, np.positive, unary_samples, dtypes=NUMERIC),
    ]
    return recs


# -- binary floating functions -------------------------------------------------------------
def _copysign_samples(dt):
    out = _tensor_first(binary_samples)(dt)
    g = rng(97)
    return out + [Sample((make((2, 3), dt, g), -0.0), name="scalar-negative-zero"),
                  Sample((make((2, 3), dt, g), 0.0), name="scalar-zero")]


def _heaviside_samples(dt):
    out = binary_samples(dt, scalars=False)
    g = rng(91)
    x = make((3, 4), dt, g)
    x[0, ::2] = 0
    out.append(Sample((x, make((4,), dt, g)), name="zeros", grad=False))
    return out


def _heaviside_ref(x, v):
    """PyTorch's rule: ``values`` at 0, ``x > 0`` elsewhere (NaN gives 0, unlike NumPy)."""
    step = (x > 0).astype(x.dtype)
    return np.where(x == 0, v, step)


def _float_power_samples(dt):
    if dt.is_floating_point:
        return binary_samples(dt, lhs_positive=True, low=0.5, high=2.0)
    g = rng(92)
    base = g.integers(-3, 4, size=(3, 4)).astype(dt.np)
    exp = g.integers(-2, 4, size=(3, 4)).astype(dt.np)
    return [Sample((base, exp), name="int"), Sample((base, 2), name="int-scalar"),
            Sample((2, exp), name="scalar-base"), Sample((base, 0.5), name="float-exp")]


def _float_power_ref(a, b):
    return np.power(np.asarray(a, np.float64), np.asarray(b, np.float64))


def _fextreme_samples(dt):
    out = binary_samples(dt, scalars=False)
    if dt.is_floating_point:
        a = np.array([math.nan, 1.0, math.nan, -math.inf, 2.0], dt.np)
        b = np.array([3.0, math.nan, math.nan, 1.0, math.inf], dt.np)
        out.append(Sample((a, b), name="nan-one-side", grad=False))
    return out


def _gcd_samples(dt):
    g = rng(93)
    hi = 12 if dt.itemsize == 1 else 60  # lcm stays in range
    lo = -hi if dt.is_signed else 0
    a = g.integers(lo, hi, size=(3, 4)).astype(dt.np)
    b = g.integers(lo, hi, size=(3, 4)).astype(dt.np)
    a[0, :2] = 0
    b[0, 1:3] = 0
    return [Sample((a, b), name="same"), Sample((a[:, :1], b[0]), name="bcast"),
            Sample((a, np.array(12, dt.np)), name="0d"), Sample((a, 18), name="scalar"),
            Sample((transposed(a), noncontig(b)), name="noncontig"),
            Sample((a[:0], b[0]), name="empty")]


def _lcm_ref(a, b):
    return np.lcm(a, b).astype(np.result_type(a, b))


def _ldexp_samples(dt):
    g = rng(94)
    x = make((3, 4), dt, g)
    e = g.integers(-6, 7, size=(3, 4)).astype(_I)
    out = [Sample((x, e), name="int-exp"), Sample((x, e[0].astype(np.int32)), name="bcast"),
           Sample((make((), dt, g), e), name="0d-input"), Sample((x, 3), name="scalar"),
           Sample((transposed(x), noncontig(e)), name="noncontig")]
    if dt.is_floating_point:
        out.append(Sample((x, make((4,), dt, g, low=-3, high=3)), name="float-exp"))
        out.append(Sample((special(dt), np.array([1, 2, 3, 4, 5, 6, 7], _I)), name="ieee",
                          grad=False))
    return out


def _ldexp_ref(x, e):
    return x * np.power(2.0, np.asarray(e, np.float64))


def _frexp_samples(dt):
    out = unary_samples(dt, low=-40.0, high=40.0)
    out.append(Sample((np.array([0.5, 1.0, -2.0, 4.0, 0.75, -0.125, 1024.0], dt.np),),
                      name="powers", grad=False))
    return out


def _nextafter_samples(dt):
    keep = ("same", "bcast-rank", "noncontig", "empty", "ieee")  # a long composite: few
    out = [s for s in binary_samples(dt, scalars=False) if s.name in keep]
    g = rng(95)
    x = make((6,), dt, g)
    pw = np.array([1.0, -0.5, 2.0, 0.25, -4.0, 8.0], dt.np)  # powers of two: the gap halves
    info = fw.finfo(dt)
    edge = np.array([info.max, -info.max, info.tiny, -info.tiny, 0.0, 1.0], dt.np)
    out += [Sample((x, x.copy()), name="equal"),
            Sample((pw, np.array([0, 0, 9, 9, 0, -9], dt.np)), name="powers-of-two"),
            Sample((edge, np.array([math.inf, -math.inf, 0, 0, 1, 1], dt.np)), name="edges")]
    return out


def _nextafter_np(a, b, npdt):
    """``np.nextafter`` in the sample's own dtype (the reference gets float64 copies)."""
    with np.errstate(all="ignore"):  # nextafter(max, inf) overflows to inf
        return np.nextafter(np.asarray(a).astype(npdt), np.asarray(b).astype(npdt))


def _nextafter_tols():
    """Exact, except that a GPU flushing float32/float64 subnormals to zero may miss the
    steps next to 0 (by less than the smallest normal; tests/test_torch_extra.py checks
    them exactly on the CPU). float16 runs in float32, where its subnormals are normal."""
    tols = {dt: (float(fw.finfo(dt).tiny), 0.0) for dt in FLOATS}
    tols[fw.float16] = (0.0, 0.0)
    return tols


def _nextafter_records():
    def samples(dt):
        return [Sample(s.args, {"npdt": dt.np}, name=s.name) for s in _nextafter_samples(dt)]
    return OpInfo("nextafter", lambda a, b, npdt: fw.nextafter(a, b), _nextafter_np, samples,
                  dtypes=FLOATS, differentiable=False, tols=_nextafter_tols())


def _binary_records():
    return [
        OpInfo("arctan2", fw.arctan2, _errstate(np.arctan2), binary_samples, dtypes=FLOAT_INT,
               out_dtype=float_out),
        OpInfo("copysign", fw.copysign, np.copysign, _copysign_samples,
               dtypes=FLOAT_INT, out_dtype=float_out),
        OpInfo("heaviside", fw.heaviside, _heaviside_ref, _heaviside_samples, dtypes=ALL),
        OpInfo("float_power", fw.float_power, _errstate(_float_power_ref),
               _float_power_samples, dtypes=FLOAT_INT, out_dtype=lambda dt: fw.float64),
        # PyTorch's float_power_ needs a float64 base: float64 samples for every dtype
        # asked (the CUDA backward suite asks for float32)
        OpInfo("float_power_", lambda x, e: x.float_power_(e), _errstate(_float_power_ref),
               lambda dt: [s for s in _float_power_samples(fw.float64)
                           if s.name in ("same", "bcast-rank", "scalar-rhs", "ieee")],
               dtypes=(fw.float64,), inplace=True),
        OpInfo("fmax", fw.fmax, np.fmax, _fextreme_samples, dtypes=NUMERIC),
        OpInfo("fmin", fw.fmin, np.fmin, _fextreme_samples, dtypes=NUMERIC),
        OpInfo("gcd", fw.gcd, np.gcd, _gcd_samples, dtypes=_INTS, differentiable=False),
        OpInfo("lcm", fw.lcm, _lcm_ref, _gcd_samples, dtypes=_INTS, differentiable=False),
        OpInfo("ldexp", fw.ldexp, _errstate(_ldexp_ref), _ldexp_samples, dtypes=FLOAT_INT,
               out_dtype=float_out),
        OpInfo("frexp", lambda x: tuple(fw.frexp(x)), np.frexp, _frexp_samples, dtypes=FLOATS,
               out_dtype=lambda dt: (dt, fw.int32)),
        _nextafter_records(),
    ]


# -- reductions ----------------------------------------------------------------------------
def _nan_samples(dt):
    g = rng(96)
    x = make((3, 4), dt, g)
    out = [Sample((x,), name="all"), Sample((x,), {"dim": 1}),
           Sample((make((2, 3, 4), dt, g),), {"dim": (0, 2), "keepdim": True}, name="dims"),
           Sample((transposed(x),), {"dim": -1}, name="T"),
           Sample((make((), dt, g),), name="0d"), Sample((make((0, 3), dt, g),), {"dim": 0},
                                                          name="empty")]
    if dt.is_floating_point:
        y = make((3, 4), dt, g)
        y[0, 1] = y[2, 0] = y[1, 3] = math.nan
        z = y.copy()
        z[2, :] = math.nan  # an all-NaN row: nanmean gives NaN there
        out += [Sample((y,), {"dim": 1}, name="nan"), Sample((y,), name="nan-all"),
                Sample((z,), {"dim": 1, "keepdim": True}, name="nan-row", grad=False)]
    return out


def _np_red(fn):
    def ref(x, dim=None, keepdim=False):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice"
            return np.asarray(fn(x, axis=tuple(dim) if isinstance(dim, (list, tuple)) else dim,
                                 keepdims=keepdim))
    return ref


def _count_nonzero_samples(dt):
    g = rng(97)
    x = make((3, 5), dt, g)
    if dt is not fw.bool:
        x[:, 1] = 0
        x[2, 3] = 0
    return [Sample((x,)), Sample((x, 1)), Sample((x, -1)), Sample((x,), {"dim": (0, 1)}),
            Sample((make((2, 3, 4), dt, g), (0, 2))), Sample((transposed(x), 0)),
            Sample((make((), dt, g),)), Sample((make((0, 3), dt, g), 0))]


def _count_nonzero_ref(x, dim=None):
    return np.asarray(np.count_nonzero(x, axis=dim), _I)


def _aminmax_samples(dt):
    g = rng(98)
    x = make((3, 4), dt, g)
    out = [Sample((x,)), Sample((x,), {"dim": 1}), Sample((x,), {"dim": 0, "keepdim": True}),
           Sample((transposed(x),), {"dim": -1}), Sample((make((), dt, g),)),
           Sample((make((0, 3), dt, g),), {"dim": 1})]
    if dt.is_floating_point:
        out.append(Sample((special(dt).reshape(1, 7),), {"dim": 1}, name="ieee", grad=False))
    return out


def _aminmax_ref(x, dim=None, keepdim=False):
    return _np_red(np.min)(x, dim, keepdim), _np_red(np.max)(x, dim, keepdim)


def _isin_samples(dt):
    g = rng(99)
    a = make((3, 4), dt, g)
    t = np.concatenate([a.reshape(-1)[::3], make((3,), dt, g)])
    v = a.reshape(-1)[5].item()
    out = [Sample((a, t)), Sample((a, t), {"invert": True}), Sample((a, v), name="scalar-test"),
           Sample((v, t), name="scalar-elements"), Sample((transposed(a), t[:2].reshape(2, 1))),
           Sample((a, t[:0]), name="empty-test"), Sample((a[:0], t), name="empty")]
    if dt.is_floating_point:
        s = special(dt)
        out.append(Sample((s, s[::2].copy()), name="ieee"))
    return out


def _isin_ref(a, t, assume_unique=False, invert=False):
    return np.asarray(np.isin(a, t, invert=invert))


# -- splitting and stacking ----------------------------------------------------------------
def _split_samples(dt):
    g = rng(100)
    x = make((7, 4), dt, g)
    return [Sample((x, 3)), Sample((x, 2, 1)), Sample((x, [1, 5])),
            Sample((x, [2, 9, 1], 0), name="clip-decreasing"), Sample((x, (3,), -1)),
            Sample((x, [-2]), name="negative-index"),
            Sample((transposed(make((4, 6), dt, g)), 4, 1)),
            Sample((x, np.array([2, 4], _I)), name="tensor-indices"),
            Sample((make((0, 3), dt, g), 2))]


def _split_ref(x, spec, dim=0):
    if isinstance(spec, np.ndarray):
        spec = spec.tolist()
    if isinstance(spec, int):
        return tuple(np.array_split(x, spec, axis=dim))
    pts = [0] + list(spec) + [x.shape[dim]]
    out = []
    for lo, hi in zip(pts[:-1], pts[1:]):
        sl = [slice(None)] * x.ndim
        sl[dim] = slice(lo, hi)
        out.append(x[tuple(sl)])
    return tuple(out)


def _dsplit_like(np_fn, shapes):
    def samples(dt):
        g = rng(101)
        out = []
        for shape, spec in shapes:
            out.append(Sample((make(shape, dt, g), spec)))
        return out
    return samples, lambda x, spec: tuple(np_fn(x, spec))


_HSPLIT = _dsplit_like(np.hsplit, [((6,), 3), ((3, 4), 2), ((2, 6, 3), [1, 4]),
                                   ((3, 0), 1)])
_VSPLIT = _dsplit_like(np.vsplit, [((6, 2), 3), ((4, 3, 2), [1, 3]), ((2, 5), 1)])
_DSPLIT = _dsplit_like(np.dsplit, [((2, 3, 4), 2), ((1, 2, 6), [2, 3]), ((2, 2, 3), 3)])


def _atleast_samples(dt):
    g = rng(102)
    a, b, c, d = (make(s, dt, g) for s in ((), (3,), (2, 3), (2, 1, 3)))
    return [Sample((a,), name="0d"), Sample((b,), name="1d"), Sample((c,), name="2d"),
            Sample((d,), name="3d"), Sample((a, b, c, d), name="several"),
            Sample(([b, c],), name="list")]


def _atleast_ref(np_fn):
    def ref(*ts):
        if len(ts) == 1 and isinstance(ts[0], list):
            return tuple(np_fn(*ts[0]))
        r = np_fn(*ts)
        return tuple(r) if isinstance(r, (list, tuple)) else r
    return ref


def _stack_samples(shapes):
    def samples(dt):
        g = rng(103)
        return [Sample(([make(s, dt, g) for s in group],), name=str(group))
                for group in shapes]
    return samples


_DSTACK = [[(3,), (3,)], [(2, 3), (2, 3), (2, 3)], [(2, 3, 1), (2, 3, 2)], [()], [(2, 3)]]
_COLUMN = [[(3,), (3,)], [(3, 2), (3,), (3, 1)], [(), ()], [(0,), (0, 2)], [(2,)]]
_ROW = [[(3,), (3,)], [(2, 3), (3,), (1, 3)], [(), ()], [(2, 2, 1), (1, 2, 1)], [(2, 2, 1)]]


def _diagflat_samples(dt):
    g = rng(104)
    return [Sample((make((3,), dt, g),)), Sample((make((2, 2), dt, g), 1)),
            Sample((transposed(make((3, 2), dt, g)), -2)), Sample((make((), dt, g),)),
            Sample((make((0,), dt, g), 1))]


def _unravel_samples(dt):
    idx = np.array([[0, 5, 23], [7, 11, 18]], dt.np)
    out = [Sample((idx, (2, 3, 4)), name="3d"), Sample((idx, [24]), name="1d"),
           Sample((np.array(17, dt.np), (5, 5)), name="0d"),
           Sample((idx[:, :0], (3, 8)), name="empty")]
    if dt.is_signed:
        out.append(Sample((np.array([-1, -24, 3], dt.np), (4, 6)), name="negative"))
    return out


def _unravel_ref(idx, shape):
    shape = tuple(shape)
    total = math.prod(shape)
    flat = np.where(idx < 0, idx.astype(_I) + total, idx.astype(_I))
    return tuple(np.asarray(c, _I) for c in np.unravel_index(flat, shape))


def _renorm_samples(dt):
    g = rng(105)
    x = make((3, 4), dt, g)  # row 2-norms about 1.5..3.5: maxnorm 2.5 splits them
    return [Sample((x, 2, 0, 2.5)), Sample((x, 1, 1, 3.0)),
            Sample((make((2, 3, 2), dt, g), 3, 1, 1.5)),
            Sample((transposed(x), 2.5, -1, 10.0), name="no-change"),
            Sample((make((5,), dt, g), 2, 0, 1.0), name="1d")]


def _renorm_ref(x, p, dim, maxnorm):
    others = tuple(i for i in range(x.ndim) if i != dim % x.ndim)
    n = (np.abs(x) ** p).sum(axis=others, keepdims=True) ** (1.0 / p)
    return x * np.where(n > maxnorm, maxnorm / (n + 1e-7), 1.0)


def _is_nonzero_samples(dt):
    return [Sample((np.array([1], dt.np),)), Sample((np.array([[0]], dt.np),)),
            Sample((np.array(2, dt.np),))]


def _misc_records():
    return [
        OpInfo("count_nonzero", fw.count_nonzero, _count_nonzero_ref, _count_nonzero_samples,
               dtypes=ALL, differentiable=False, out_dtype=lambda dt: fw.int64),
        OpInfo("nansum", fw.nansum, _np_red(np.nansum), _nan_samples, dtypes=ALL,
               out_dtype=lambda dt: dt if dt.is_floating_point else fw.int64),
        OpInfo("nanmean", fw.nanmean, _np_red(np.nanmean), _nan_samples, dtypes=FLOATS,
               tols=_LOW),
        OpInfo("aminmax", lambda x, **kw: tuple(fw.aminmax(x, **kw)), _aminmax_ref,
               _aminmax_samples, dtypes=ALL, out_dtype=lambda dt: (dt, dt)),
        OpInfo("isin", fw.isin, _isin_ref, _isin_samples, dtypes=ALL, differentiable=False),
        OpInfo("tensor_split", fw.tensor_split, _split_ref, _split_samples, dtypes=ALL),
        OpInfo("hsplit", fw.hsplit, _HSPLIT[1], _HSPLIT[0], dtypes=ALL),
        OpInfo("vsplit", fw.vsplit, _VSPLIT[1], _VSPLIT[0], dtypes=ALL),
        OpInfo("dsplit", fw.dsplit, _DSPLIT[1], _DSPLIT[0], dtypes=ALL),
        OpInfo("atleast_1d", fw.atleast_1d, _atleast_ref(np.atleast_1d), _atleast_samples,
               dtypes=ALL),
        OpInfo("atleast_2d", fw.atleast_2d, _atleast_ref(np.atleast_2d), _atleast_samples,
               dtypes=ALL),
        OpInfo("atleast_3d", fw.atleast_3d, _atleast_ref(np.atleast_3d), _atleast_samples,
               dtypes=ALL),
        OpInfo("dstack", fw.dstack, np.dstack, _stack_samples(_DSTACK), dtypes=ALL),
        OpInfo("column_stack", fw.column_stack, np.column_stack, _stack_samples(_COLUMN),
               dtypes=ALL),
        OpInfo("row_stack", fw.row_stack, np.vstack, _stack_samples(_ROW), dtypes=ALL),
        OpInfo("diagflat", fw.diagflat, lambda x, k=0: np.diagflat(x, k), _diagflat_samples,
               dtypes=ALL),
        OpInfo("unravel_index", fw.unravel_index, _unravel_ref, _unravel_samples,
               dtypes=(fw.int64, fw.int32, fw.int16, fw.uint8), differentiable=False,
               out_dtype=lambda dt: fw.int64),
        OpInfo("renorm", fw.renorm, _renorm_ref, _renorm_samples, dtypes=FLOATS, tols=_LOW),
        OpInfo("renorm_", lambda x, *a: x.renorm_(*a), _renorm_ref, _renorm_samples,
               dtypes=_F32_64, inplace=True),
        OpInfo("is_nonzero", fw.is_nonzero, lambda x: np.asarray(bool(x.reshape(-1)[0])),
               _is_nonzero_samples, dtypes=ALL, differentiable=False),
    ]


register_opinfo(*_unary_records(), *_binary_records(), *_misc_records())
