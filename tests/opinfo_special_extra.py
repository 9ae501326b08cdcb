"""OpInfo records: fw.special's gammainc/gammaincc (igamma/igammac and their Tensor
methods), zeta, erfcx, bessel_j0, bessel_j1, spherical_bessel_j0 and airy_ai, with mpmath
references that carry PyTorch's boundary values (NaN/Inf, poles, domain edges).

The scalar references (``ref_*``) are reused by ``tests/test_special_extra.py``."""

from __future__ import annotations

import math

import numpy as np

import framework as fw
from tests.opinfo import (FLOAT_INT, FLOATS, OpInfo, Sample, binary_samples, float_out, make,
                          register_opinfo, rng, special, unary_samples)

S = fw.special
_DPS = 30


def _mp():
    import mpmath
    return mpmath


# ---------------------------------------------------------------------------------------
# scalar references (float in, float out)
def ref_gammainc(a, x, upper=False):
    """P(a, x) (Q with ``upper``) with PyTorch's boundary values."""
    lo, hi = (1.0, 0.0) if upper else (0.0, 1.0)
    if math.isnan(a) or math.isnan(x) or a < 0 or x < 0:
        return math.nan
    if a == 0:
        return hi if x > 0 else math.nan
    if x == 0:
        return lo
    if math.isinf(a):
        return math.nan if math.isinf(x) else lo
    if math.isinf(x):
        return hi
    m = _mp()
    with m.workdps(_DPS):
        a, x = m.mpf(a), m.mpf(x)
        try:
            if upper:
                return float(m.gammainc(a, x, m.inf, regularized=True))
            return float(m.gammainc(a, 0, x, regularized=True))
        except m.libmp.NoConvergence:  # large a: x^a e^-x / Gamma(a+1) 1F1(1; a+1; x)
            with m.workdps(400 if upper else _DPS):
                p = m.exp(a * m.log(x) - x - m.loggamma(a + 1)) * m.hyp1f1(
                    1, a + 1, x, maxterms=10 ** 7)
                return float(1 - p if upper else p)


def ref_zeta(s, q):
    """The Hurwitz zeta function with PyTorch's domain rules."""
    if s == 1:
        return math.inf
    if math.isnan(s) or math.isnan(q) or s < 1:
        return math.nan
    if q <= 0 and q == math.floor(q):
        return math.inf
    if q < 0 and s != math.floor(s):
        return math.nan
    if math.isinf(s):
        return math.nan if q <= 0 else (0.0 if q > 1 else (1.0 if q == 1 else math.inf))
    if math.isinf(q):
        return 0.0
    m = _mp()
    if q < 0:
        with m.workdps(_DPS):
            return float(m.zeta(m.mpf(s), m.mpf(q)))
    # Euler-Maclaurin at 50 digits (mpmath.zeta loses digits for large q: 1e-10 at
    # zeta(49, 514)); N >= 2 s direct terms keep the Bernoulli terms decreasing
    with m.workdps(50):
        s, q = m.mpf(s), m.mpf(q)
        n = 50 + 2 * int(s)
        acc = m.fsum((q + k) ** -s for k in range(n))
        w = q + n
        acc += w ** (1 - s) / (s - 1) + w ** -s / 2
        t = s * w ** (-s - 1)
        for j in range(1, 20):
            acc += m.bernoulli(2 * j) / m.factorial(2 * j) * t
            t *= (s + 2 * j - 1) * (s + 2 * j) / (w * w)
        return float(acc)


def ref_erfcx(x):
    """exp(x^2) erfc(x) (the asymptotic series beyond 1e6, where mpmath's erfc fails)."""
    if math.isnan(x):
        return x
    if math.isinf(x):
        return 0.0 if x > 0 else math.inf
    m = _mp()
    with m.workdps(_DPS):
        v = m.mpf(x)
        if v > 1e6:
            return float(1 / (v * m.sqrt(m.pi)) * (1 - 1 / (2 * v * v) + 3 / (4 * v ** 4)))
        return float(m.erfc(v) * m.exp(v * v))


def _bessel_ref(order):
    def ref(x):
        if math.isnan(x) or math.isinf(x):
            return math.nan  # PyTorch: NaN at +-inf
        m = _mp()
        with m.workdps(_DPS):
            return float(m.besselj(order, m.mpf(x)))
    return ref


ref_bessel_j0, ref_bessel_j1 = _bessel_ref(0), _bessel_ref(1)


def ref_spherical_bessel_j0(x):
    """sin(x) / x (1 at 0, 0 at +-inf, as PyTorch)."""
    if math.isnan(x):
        return x
    if math.isinf(x):
        return 0.0
    if x == 0:
        return 1.0
    m = _mp()
    with m.workdps(_DPS):
        return float(m.sin(m.mpf(x)) / m.mpf(x))


def ref_airy_ai(x):
    """Ai(x) (NaN at +-inf, as PyTorch)."""
    if math.isnan(x) or math.isinf(x):
        return math.nan
    m = _mp()
    with m.workdps(_DPS):
        return float(m.airyai(m.mpf(x)))


def _vec(fn):
    vf = np.vectorize(lambda *a: fn(*(float(v) for v in a)), otypes=[np.float64])
    return lambda *a: vf(*(np.asarray(v, np.float64) for v in a))


# ---------------------------------------------------------------------------------------
# samples
def _half(dt):
    return dt in (fw.float16, fw.bfloat16)


def _gamma_samples(dt):
    out = binary_samples(dt, lhs_positive=True, rhs_positive=True, low=0.25, high=4.0)
    if dt.is_floating_point and not _half(dt):  # series, continued fraction, Temme
        a = np.array([0.01, 0.5, 3.0, 20.0, 150.0, 1000.0, 2.5, 40.0], dt.np)
        x = np.array([0.02, 3.0, 2.5, 21.0, 120.0, 1100.0, 0.001, 130.0], dt.np)
        out.append(Sample((a, x), name="regions", grad=False))
    return out


def _zeta_samples(dt):
    out = []
    for s in binary_samples(dt, lhs_positive=True, rhs_positive=True, low=0.25, high=3.0):
        lhs = s.args[0]
        if s.name == "ieee":
            out.append(s)
            continue
        lhs = np.asarray(lhs + 1, dt.np) if isinstance(lhs, np.ndarray) else lhs + 1.0  # s > 1
        out.append(Sample((lhs, s.args[1]), name=s.name, grad=s.grad))
    if dt.is_floating_point and not _half(dt):
        sv = np.array([1.001, 2.0, 5.5, 30.0, 2.0, 3.0, 4.0, 1.5], dt.np)
        q = np.array([0.3, 100.0, 0.01, 1.5, -2.5, -0.5, -3.0, -0.5], dt.np)
        out.append(Sample((sv, q), name="wide-negative-q", grad=False))
    return out


def _unary_special(wide64, wide32=None, wide_half=(), low=-4.0):
    """Standard unary samples plus large/edge arguments whose results fit the dtype."""
    def samples(dt):
        out = unary_samples(dt, low=low, high=4.0)
        if dt.is_floating_point:
            vals = wide_half if _half(dt) else wide64
            if dt is fw.float32:
                vals = [v for v in vals if abs(v) < 1e30] if wide32 is None else wide32
            if len(vals):
                out.append(Sample((np.array(vals, dt.np),), name="wide", grad=False))
        return out
    return samples


def _inplace_samples(dt):
    g = rng(4)
    a = make((3, 4), dt, g, positive=True, low=0.25, high=3.0)
    x = make((3, 4), dt, g, positive=True, low=0.25, high=3.0)
    return [Sample((a, x), name="same"), Sample((a[:, :1].copy(), x[:, :1].copy()), name="col"),
            Sample((a.copy(), x[0].copy()), name="bcast-other"),
            Sample((special(dt), special(dt)[::-1].copy()), name="ieee", grad=False)]


def _second_only(samples):
    """The samples with the first operand moved to the keyword ``first`` (keywords never
    require grad): PyTorch implements the gradient of igamma/igammac/zeta with respect to
    the second operand only, so gradcheck differentiates that one."""
    def moved(dt):
        return [Sample((s.args[1],), {"first": s.args[0]}, name=s.name, grad=s.grad)
                for s in samples(dt)]
    return moved


# ---------------------------------------------------------------------------------------
_ref_p = _vec(ref_gammainc)
_ref_q = _vec(lambda a, x: ref_gammainc(a, x, upper=True))
_ref_z = _vec(ref_zeta)

_F32_64 = (fw.float32, fw.float64)
_RECORDS = [
    # the first operand's gradient raises (as PyTorch): gradients in the "_grad" records
    OpInfo("special.gammainc", S.gammainc, _ref_p, _gamma_samples, dtypes=FLOAT_INT,
           op="igamma", out_dtype=float_out, differentiable=False),
    OpInfo("special.gammaincc", S.gammaincc, _ref_q, _gamma_samples, dtypes=FLOAT_INT,
           op="igammac", out_dtype=float_out, differentiable=False),
    OpInfo("special.gammainc_grad", lambda x, first: S.gammainc(first, x),
           lambda x, first: _ref_p(first, x), _second_only(_gamma_samples), dtypes=_F32_64,
           out_dtype=float_out),
    OpInfo("special.gammaincc_grad", lambda x, first: S.gammaincc(first, x),
           lambda x, first: _ref_q(first, x), _second_only(_gamma_samples), dtypes=_F32_64,
           out_dtype=float_out),
    OpInfo("igamma", fw.igamma, _ref_p, _gamma_samples, dtypes=_F32_64, out_dtype=float_out,
           differentiable=False),
    OpInfo("igammac", fw.igammac, _ref_q, _gamma_samples, dtypes=(fw.float32,),
           out_dtype=float_out, differentiable=False),
    OpInfo("Tensor.igammac", lambda a, x: a.igammac(x), _ref_q,
           lambda dt: [s for s in _gamma_samples(dt) if isinstance(s.args[0], np.ndarray)],
           dtypes=_F32_64, out_dtype=float_out, differentiable=False),
    OpInfo("Tensor.igamma_", lambda a, x: a.igamma_(x), _ref_p, _inplace_samples,
           dtypes=FLOATS, inplace=True, differentiable=False),
    OpInfo("Tensor.igammac_", lambda a, x: a.igammac_(x), _ref_q, _inplace_samples,
           dtypes=_F32_64, inplace=True, differentiable=False),
    OpInfo("special.zeta", S.zeta, _ref_z, _zeta_samples, dtypes=FLOAT_INT, op="zeta",
           out_dtype=float_out, differentiable=False),
    OpInfo("special.zeta_grad", lambda q, first: S.zeta(first, q),
           lambda q, first: _ref_z(first, q), _second_only(_zeta_samples), dtypes=_F32_64,
           out_dtype=float_out),
    OpInfo("special.erfcx", S.erfcx, _vec(ref_erfcx),
           _unary_special([-26.0, -5.5, -0.3, 0.4, 5.0, 50.0, 1e5, 1e200],
                          [-5.5, -0.3, 0.4, 5.0, 50.0, 1e5, 1e20], [-3.0, 0.4, 60.0], -3.0),
           dtypes=FLOAT_INT, op="erfcx", out_dtype=float_out),
    OpInfo("special.bessel_j0", S.bessel_j0, _vec(ref_bessel_j0),
           _unary_special([30.5, -12.75, 100.25, 2.5e3, 1e6], None, [30.5, -12.75, 100.25]),
           dtypes=FLOAT_INT, op="bessel_j0", out_dtype=float_out, differentiable=False),
    OpInfo("special.bessel_j1", S.bessel_j1, _vec(ref_bessel_j1),
           _unary_special([30.5, -12.75, 100.25, 2.5e3, 1e6], None, [30.5, -12.75, 100.25]),
           dtypes=FLOAT_INT, op="bessel_j1", out_dtype=float_out, differentiable=False),
    OpInfo("special.spherical_bessel_j0", S.spherical_bessel_j0,
           _vec(ref_spherical_bessel_j0),
           _unary_special([0.3, -0.45, 30.5, -1e3, 1e8], None, [0.3]),
           dtypes=FLOAT_INT, op="spherical_bessel_j0", out_dtype=float_out,
           differentiable=False),
    OpInfo("special.airy_ai", S.airy_ai, _vec(ref_airy_ai),
           _unary_special([-30.0, -6.25, -5.0, 2.5, 3.75, 20.0, 80.0], None,
                          [-6.25, 2.5, 3.75]),
           dtypes=FLOAT_INT, op="airy_ai", out_dtype=float_out, differentiable=False),
]

register_opinfo(*_RECORDS)
