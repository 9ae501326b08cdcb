"""OpInfo records: fw.special's bessel_y0/y1, modified_bessel_i0/i1/k0/k1,
scaled_modified_bessel_k0/k1 (mpmath references with PyTorch's boundary values) and the
orthogonal polynomials chebyshev_polynomial_t/u/v/w, shifted_chebyshev_polynomial_t/u/v/w,
hermite_polynomial_h/he, laguerre_polynomial_l, legendre_polynomial_p (a NumPy reference:
PyTorch's rules written out element by element in float64 with ``math``'s functions).

The scalar references (``ref_*``, ``ref_polynomial``) are reused by
``tests/test_special_more.py``."""

from __future__ import annotations

import math

import numpy as np

import framework as fw
from tests.opinfo import (FLOAT_INT, OpInfo, Sample, float_out, make, noncontig,
                          register_opinfo, rng, special, transposed, unary_samples)

S = fw.special
_DPS = 30


def _mp():
    import mpmath
    return mpmath


# ---------------------------------------------------------------------------------------
# Bessel references (float in, float out)
def _second_kind(order):
    def ref(x):
        if math.isnan(x) or x < 0 or x == math.inf:
            return math.nan  # PyTorch: NaN for x < 0 and at +inf (sin(inf))
        if x == 0:
            return -math.inf
        m = _mp()
        with m.workdps(_DPS):
            return float(m.bessely(order, m.mpf(x)))
    return ref


def _modified_first(order):
    def ref(x):
        if math.isnan(x) or math.isinf(x):
            return math.nan  # PyTorch's modified_bessel_i*: exp(inf) / sqrt(inf)
        m = _mp()
        with m.workdps(_DPS):
            return float(m.besseli(order, m.mpf(x)))
    return ref


def _modified_second(order, scaled):
    def ref(x):
        if math.isnan(x) or x < 0:
            return math.nan
        if x == 0:
            return math.inf
        if x == math.inf:
            return 0.0
        m = _mp()
        with m.workdps(_DPS):
            v = m.besselk(order, m.mpf(x))
            return float(v * m.exp(m.mpf(x)) if scaled else v)
    return ref


ref_bessel_y0, ref_bessel_y1 = _second_kind(0), _second_kind(1)
ref_modified_bessel_i0, ref_modified_bessel_i1 = _modified_first(0), _modified_first(1)
ref_modified_bessel_k0 = _modified_second(0, False)
ref_modified_bessel_k1 = _modified_second(1, False)
ref_scaled_modified_bessel_k0 = _modified_second(0, True)
ref_scaled_modified_bessel_k1 = _modified_second(1, True)


# ---------------------------------------------------------------------------------------
# polynomial reference: PyTorch's rules, one element at a time
def _degree(n):
    if math.isnan(n) or math.isinf(n) or abs(n) >= 2.0 ** 63:
        return -1  # PyTorch's (x86) int64 cast gives INT64_MIN: the result is 0
    return int(n)  # truncation toward zero


def _chebyshev(kind, y, n, trig_from, shifted):
    if abs(y) == 1:
        up, even = y > 0, n % 2 == 0
        return {"t": 1.0 if up or even else -1.0,
                "u": float(n + 1) if up or even else float(-(n + 1)),
                "v": 1.0 if up else float(2 * n + 1) * (1 if even else -1),
                "w": float(2 * n + 1) if up else (1.0 if even else -1.0)}[kind]
    if n > trig_from and abs(y) < 1:
        t = math.acos(y)
        if kind == "t":
            return math.cos(n * t)
        if kind == "u":
            if math.sin(t) != 0:
                return math.sin((n + 1) * t) / math.sin(t)
            return (n + 1) * math.cos((n + 1) * t) / y
        if kind == "v":
            if math.sin(t / 2) != 1:
                return math.cos((n + 0.5) * t) / math.cos(t / 2)
            return float(2 * n + 1) * (1 if n % 2 == 0 else -1)
        if math.cos(t / 2) != 1:
            return math.sin((n + 0.5) * t) / math.sin(t / 2)
        if y > 0 and not shifted:
            return float(2 * n + 1)
        return 1.0 if n % 2 == 0 else -1.0
    first = {"t": y, "u": 2 * y, "v": 2 * y - 1, "w": 2 * y + 1}[kind]
    return _run(first, n, lambda k, p, q: 2 * y * q - p)


def _run(first, n, step):
    """Degree n of a three-term recurrence from (1, first), NaN propagating."""
    if n == 0:
        return 1.0
    p, q = 1.0, first
    with np.errstate(all="ignore"):
        p, q = np.float64(p), np.float64(q)
        for k in range(1, n):
            if math.isnan(q):
                break
            p, q = q, step(k, p, q)
    return float(q)


_TRIG_FROM = {"t": 6, "u": 8, "v": 8, "w": 8}
_SHIFTED_TRIG_FROM = {"t": 6, "u": 6, "v": 6, "w": 4}


def ref_polynomial(name, x, n, limit=512):
    """Polynomial ``name`` at float x, n with PyTorch's special values (``limit``: the
    Hermite degree cap, 512 in double precision and 128 in single)."""
    n = _degree(n)
    if n < 0:
        return 0.0
    kind = name[-1]
    if name.startswith("shifted_chebyshev"):
        return _chebyshev(kind, 2 * x - 1, n, _SHIFTED_TRIG_FROM[kind], True)
    if name.startswith("chebyshev"):
        return _chebyshev(kind, x, n, _TRIG_FROM[kind], False)
    if name.startswith("hermite"):
        if n > limit:
            return math.nan
        if name == "hermite_polynomial_h":
            return _run(2 * x, n, lambda k, p, q: 2 * x * q - 2 * k * p)
        return _run(x, n, lambda k, p, q: x * q - k * p)
    if name == "laguerre_polynomial_l":
        if x == 0:
            return 1.0
        return _run(1 - x, n, lambda k, p, q: ((2 * k + 1 - x) * q - k * p) / (k + 1))
    if abs(x) == 1:  # legendre
        return 1.0 if x > 0 or n % 2 == 0 else -1.0
    return _run(x, n, lambda k, p, q: ((2 * k + 1) * x * q - k * p) / (k + 1))


def _vec(fn):
    vf = np.vectorize(lambda *a: fn(*(float(v) for v in a)), otypes=[np.float64])
    return lambda *a: vf(*(np.asarray(v, np.float64) for v in a))


# ---------------------------------------------------------------------------------------
# samples
def _half(dt):
    return dt in (fw.float16, fw.bfloat16)


def _bessel_samples(wide64, wide32, wide_half):
    """Standard unary samples plus arguments across the algorithms' split points and far
    out (per dtype: only values whose results fit)."""
    def samples(dt):
        out = unary_samples(dt, low=-4.0, high=4.0)
        if dt.is_floating_point:
            vals = wide_half if _half(dt) else (wide32 or wide64) if dt is fw.float32 \
                else wide64
            out.append(Sample((np.array(vals, dt.np),), name="wide", grad=False))
        return out
    return samples


def _degrees(shape, dt, gen, top):
    """Degrees 0 .. top as an array of ``dt``."""
    return gen.integers(0, top + 1, size=shape).astype(dt.np)


def _polynomial_samples(top=10, low=-1.2, high=1.2, shifted=False):
    """x in [low, high] (ints in [-3, 3]), degrees up to ``top`` (6 for the narrow and
    integer dtypes, whose results must fit), broadcasting, 0-d, strided and empty operands,
    Python numbers on either side, an int64 n, IEEE values, and (float64) degrees up to
    64."""
    def samples(dt):
        g = rng(5)
        deg = top if dt in (fw.float32, fw.float64) else min(top, 6)

        def xs(shape):
            if not dt.is_floating_point:
                return g.integers(-3, 4, size=shape).astype(dt.np)
            return make(shape, dt, g, low=low, high=high, away=0.0)

        out = [Sample((xs((3, 4)), _degrees((3, 4), dt, g, deg)), name="same", grad=False),
               Sample((xs((3, 1)), _degrees((1, 4), dt, g, deg)), name="bcast-both",
                      grad=False),
               Sample((xs((5,)), _degrees((2, 1), dt, g, deg)), name="bcast-n", grad=False),
               Sample((xs(()), _degrees((3,), dt, g, deg)), name="0d-x", grad=False),
               Sample((transposed(xs((3, 4))), noncontig(_degrees((3, 4), dt, g, deg))),
                      name="noncontig", grad=False),
               Sample((xs((0, 3)), _degrees((3,), dt, g, deg)), name="empty", grad=False),
               Sample((xs((2, 3)), 3), name="scalar-n", grad=False),
               Sample((0.75 if dt.is_floating_point else 2, _degrees((2, 3), dt, g, deg)),
                      name="scalar-x", grad=False)]
        if dt.is_floating_point:
            out.append(Sample((xs((2, 4)), _degrees((2, 4), fw.int64, g, deg)), name="int-n",
                              grad=False))
            s = special(dt)
            edge = np.array([1.0, 0.0, 0.5, 0.75, 0.25, 1.0, 0.0, 0.5] if shifted else
                            [1.0, -1.0, 0.0, 0.5, -0.5, 1.0, -1.0, 0.0], dt.np)
            out += [Sample((s, s[::-1].copy()), name="ieee", grad=False),
                    Sample((edge, np.minimum([3, 4, -2, -0.5, 2.75, 9, 12, 7], deg)
                            .astype(dt.np)),
                           name="edges", grad=False)]
        if dt is fw.float64:  # (float32: tests/test_special_more.py, by conditioning)
            big = np.array([10.0, 17.0, 33.0, 64.0], dt.np)
            out.append(Sample((make((3, 4), dt, g, low=-1.0, high=1.0, away=0.0), big),
                              name="high-degree", grad=False))
        return out
    return samples


def _ref_polynomial(name):
    """The vectorized reference (the samples' degrees stay below Hermite's 128 cap)."""
    def ref(x, n):
        return np.vectorize(lambda a, b: ref_polynomial(name, float(a), float(b)),
                            otypes=[np.float64])(x, n)
    return ref


# ---------------------------------------------------------------------------------------
_BESSEL = [
    ("bessel_y0", ref_bessel_y0, [0.01, 7.9, 8.1, 30.5, 100.25, 2.5e3, 1e6], None,
     [0.5, 7.9, 30.5]),
    ("bessel_y1", ref_bessel_y1, [0.01, 7.9, 8.1, 30.5, 100.25, 2.5e3, 1e6], None,
     [0.5, 7.9, 30.5]),
    ("modified_bessel_i0", ref_modified_bessel_i0, [-30.0, 7.9, 8.1, 300.0, -700.0, 705.0],
     [-30.0, 7.9, 8.1, 80.0], [-5.0, 7.9, 8.1]),
    ("modified_bessel_i1", ref_modified_bessel_i1, [-30.0, 7.9, 8.1, 300.0, -700.0, 705.0],
     [-30.0, 7.9, 8.1, 80.0], [-5.0, 7.9, 8.1]),
    ("modified_bessel_k0", ref_modified_bessel_k0, [1e-8, 1.99, 2.01, 20.0, 300.0, 750.0],
     [1e-8, 1.99, 2.01, 20.0, 80.0], [0.1, 1.99, 2.01, 8.0]),
    ("modified_bessel_k1", ref_modified_bessel_k1, [1e-8, 1.99, 2.01, 20.0, 300.0, 750.0],
     [1e-8, 1.99, 2.01, 20.0, 80.0], [0.1, 1.99, 2.01, 8.0]),
    ("scaled_modified_bessel_k0", ref_scaled_modified_bessel_k0,
     [1e-8, 1.99, 2.01, 20.0, 300.0, 1e6], None, [0.1, 1.99, 2.01, 8.0]),
    ("scaled_modified_bessel_k1", ref_scaled_modified_bessel_k1,
     [1e-8, 1.99, 2.01, 20.0, 300.0, 1e6], None, [0.1, 1.99, 2.01, 8.0]),
]
_POLYNOMIALS = {
    "chebyshev_polynomial_t": {}, "chebyshev_polynomial_u": {},
    "chebyshev_polynomial_v": {}, "chebyshev_polynomial_w": {},
    "shifted_chebyshev_polynomial_t": dict(low=-0.1, high=1.1, shifted=True),
    "shifted_chebyshev_polynomial_u": dict(low=-0.1, high=1.1, shifted=True),
    "shifted_chebyshev_polynomial_v": dict(low=-0.1, high=1.1, shifted=True),
    "shifted_chebyshev_polynomial_w": dict(low=-0.1, high=1.1, shifted=True),
    "hermite_polynomial_h": dict(top=8, low=-1.5, high=1.5),
    "hermite_polynomial_he": dict(top=8, low=-2.0, high=2.0),
    "laguerre_polynomial_l": dict(low=-1.5, high=4.0),
    "legendre_polynomial_p": {},
}

_RECORDS = [
    OpInfo(f"special.{name}", getattr(S, name), _vec(ref),
           _bessel_samples(wide, wide32, half), dtypes=FLOAT_INT, op=name,
           out_dtype=float_out, differentiable=False)
    for name, ref, wide, wide32, half in _BESSEL
] + [
    OpInfo(f"special.{name}", getattr(S, name), _ref_polynomial(name),
           _polynomial_samples(**kw), dtypes=FLOAT_INT, op=name, out_dtype=float_out,
           differentiable=False)
    for name, kw in _POLYNOMIALS.items()
]

register_opinfo(*_RECORDS)
