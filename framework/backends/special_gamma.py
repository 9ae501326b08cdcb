"""erfcx, the regularized incomplete gamma functions and Hurwitz's zeta, written once.

Same scheme as ``special_math.py``: each algorithm is a function of a kit ``k`` and its
operands, evaluated on NumPy arrays (CPU kernels, float64), rendered as a ``@triton.jit``
helper and emitted as ONNX nodes. Every branch runs for every element and is selected with
``where``; iterative parts are ``k.loop`` with a fixed count (a Triton ``for`` loop, an
ONNX ``Loop``). Coefficient tables: ``special_tables.py`` (generated with mpmath by
``tests/special_tables_gen.py``). Accuracy against mpmath: ``tests/test_special_extra.py``.

* ``erfcx(x) = exp(x^2) erfc(x)``: W. J. Cody's rational approximations of erfc (the ones
  ``erfc`` uses) without their ``exp(-x^2)`` factor for x >= 0.46875, ``exp(x^2)(1 -
  erf(x))`` below, ``2 exp(x^2) - erfcx(-x)`` for x < -0.46875 (``exp(x^2)`` split so the
  rounding of ``x^2`` costs nothing; +inf below -26.6, as the true value overflows).
* ``gammainc(a, x) = P(a, x)``, ``gammaincc(a, x) = Q(a, x) = 1 - P``: for a >= 15 and
  |eta| <= 1 (eta^2 / 2 = lambda - 1 - log(lambda), lambda = x / a, so 0.3 < lambda <
  2.36) Temme's uniform asymptotic expansion (DLMF 8.12.3/4; 14 orders, Taylor series of
  C_k(eta)); otherwise the power series of P (x <= max(a, 2); 50 terms) or Legendre's
  continued fraction of Q (x > max(a, 2); modified Lentz, 60 terms), the other one as
  ``1 -`` it (then at most ~1 digit cancels), except for a < 0.3 and x <= 2, where P -> 1
  and Q = ``-expm1(u) - e^u a sum_n (-x)^n / (n! (a + n))`` (u = a log x - lgamma(1 + a),
  by its Taylor series) keeps Q's relative accuracy. The prefactor ``x^a e^-x / Gamma(a)`` is
  ``exp(-a phi) sqrt(a / 2 pi) / Gamma*(a)`` for a >= 15 (phi = lambda - 1 - log(lambda)
  by an atanh series near lambda = 1, Gamma* by Stirling's series), so nothing cancels
  for large a. Boundary values are PyTorch's (SciPy's): NaN for a < 0 or x < 0, P(0, x>0)
  = 1, P(a, 0) = 0, P(inf, x) = 0, P(a, inf) = 1, NaN for a = x = 0 and a = x = inf.
* ``zeta(s, q)``: Euler-Maclaurin after 9 direct terms with 12 Bernoulli terms (as
  Cephes). PyTorch's domain: inf at s == 1 and at the non-positive integers q, NaN for
  s < 1 and for q < 0 with a non-integer s; for q < 0 and integer s the sum over the
  negative terms is folded into ``zeta(s, f) + (-1)^s (zeta(s, 1 - f) - zeta(s, 1 - q))``
  (f = q - floor(q)), so any negative q costs three evaluations and no loop of |q| terms.
  s = inf gives the limit (0, 1 or inf by q), as does q = inf (0).
"""

from __future__ import annotations

import math

from .special_math import _HALF_LOG_2PI, INF, NAN, _erf_small, erfcx_pos
from .special_tables import LGAMMA1P, TEMME, TEMME_A0

#: Ops whose Triton and ONNX renderings compute in float64 for float32 operands too
#: (iterative or oscillating formulas whose float32 rounding would grow past ~1e-6; the
#: CPU kernels always compute in float64).
FLOAT64_COMPUTE = frozenset({"igamma", "igammac", "zeta", "airy_ai"})


# --------------------------------------------------------------------------------------
# helpers
def _exp_square(k, y):
    """``exp(y^2)`` split so the rounding of ``y^2`` costs nothing."""
    y16 = k.div(k.floor(k.mul(y, 16.0)), 16.0)
    return k.mul(k.exp(k.mul(y16, y16)), k.exp(k.mul(k.sub(y, y16), k.add(y, y16))))


def _expm1(k, t):
    """``exp(t) - 1`` accurate near 0 (Kahan: ``(u - 1) t / log(u)``)."""
    u = k.exp(t)
    um1 = k.sub(u, 1.0)
    out = k.div(k.mul(um1, t), k.log(u))
    out = k.where(k.eq(um1, -1.0), -1.0, out)
    return k.where(k.eq(u, 1.0), t, out)


def _horner(k, t, coeffs):
    """``sum c_i t^i`` for coefficients given highest power first."""
    acc = coeffs[0]
    for c in coeffs[1:]:
        acc = k.add(k.mul(acc, t), c)
    return acc


# --------------------------------------------------------------------------------------
# erfcx (Cody's rational functions, shared with erfc: special_math.erfcx_pos)
def erfcx(k, x):
    """The scaled complementary error function ``exp(x^2) erfc(x)``."""
    y = k.abs(x)
    small = k.mul(k.exp(k.mul(x, x)), k.sub(1.0, _erf_small(k, x)))
    pos = erfcx_pos(k, y)
    neg = k.sub(k.mul(_exp_square(k, y), 2.0), pos)
    out = k.where(k.le(y, 0.46875), small, k.where(k.lt(x, 0.0), neg, pos))
    return k.where(k.eq(x, -INF), INF, out)


# --------------------------------------------------------------------------------------
# incomplete gamma
_SERIES_TERMS, _CF_TERMS, _QSMALL_TERMS = 50, 60, 30
_TINY = 1e-30  # Lentz's guard against 0 (representable in float32 too)
_STIRLING = tuple(float(b) for b in (  # B_2j / (2j (2j - 1)), j = 8 .. 1 (Gamma*)
    -3617 / 122400, 1 / 156, -691 / 360360, 1 / 1188, -1 / 1680, 1 / 1260, -1 / 360, 1 / 12))
_ATANH = tuple(1.0 / (2 * j + 3) for j in range(17, -1, -1))  # 1/(2j+3), highest first


def _a_phi(k, a, x):
    """``a (lambda - 1 - log(lambda))`` with lambda = x / a: near lambda = 1 by
    ``phi = t u - 2 u^3 (1/3 + u^2/5 + ...)`` (t = lambda - 1, u = t / (2 + t)), which does
    not cancel; else ``(x - a) - a log(lambda)`` (``log x - log a`` where x / a over- or
    underflows: the difference of two logs would cost ``a |log x| eps``)."""
    t = k.div(k.sub(x, a), a)
    near = k.lt(k.abs(t), 0.5)
    ts = k.where(near, t, 0.0)
    u = k.div(ts, k.add(ts, 2.0))
    u2 = k.mul(u, u)
    series = k.sub(k.mul(ts, u), k.mul(k.mul(k.mul(u2, u), 2.0), _horner(k, u2, _ATANH)))
    lam = k.div(x, a)
    normal = k.and_(k.lt(1e-300, lam), k.lt(lam, 1e300))  # (computed in float64)
    log_lam = k.where(normal, k.log(k.where(normal, lam, 1.0)), k.sub(k.log(x), k.log(a)))
    far = k.sub(k.sub(x, a), k.mul(a, log_lam))
    return k.where(near, k.mul(a, series), far)


def _lgamma1p_small(k, a):
    """``lgamma(1 + a)`` for |a| <= 0.3 (Taylor series, relative accuracy kept)."""
    return k.mul(_horner(k, a, LGAMMA1P), a)


def _temme(k, a, aphi, x):
    """(P, Q) by Temme's expansion (a >= TEMME_A0, |eta| <= 1)."""
    eta = k.sqrt(k.div(k.mul(aphi, 2.0), a))
    eta = k.where(k.lt(x, a), k.neg(eta), eta)
    inv_a = k.div(1.0, a)
    s = None
    for row in reversed(TEMME):
        ck = _horner(k, eta, row[::-1])
        s = ck if s is None else k.add(ck, k.mul(s, inv_a))
    e = k.exp(k.neg(aphi))
    r = k.div(k.mul(e, s), k.sqrt(k.mul(a, 2 * math.pi)))
    half = k.mul(k.mul(e, erfcx(k, k.sqrt(aphi))), 0.5)
    q_up, p_lo = k.add(half, r), k.sub(half, r)
    lower = k.lt(x, a)
    p = k.where(lower, p_lo, k.sub(1.0, q_up))
    q = k.where(lower, k.sub(1.0, p_lo), q_up)
    return p, q


def _prefactor(k, a, x, aphi):
    """``x^a e^-x / Gamma(a + 1)`` without an lgamma call (a Lanczos sum's eight
    divisions cost registers on a GPU): for a < 0.3 through lgamma(1 + a)'s Taylor series;
    else Stirling's series of log Gamma*(b), with b = a for a >= TEMME_A0 (``exp(-a phi) /
    (sqrt(2 pi a) Gamma*(a))``: nothing cancels for large a) and b = a + 16 below
    (``Gamma(a + 1) = Gamma(a + 16) / ((a + 1) ... (a + 15))``)."""
    small = k.lt(a, float(TEMME_A0))
    tiny = k.lt(a, 0.3)
    a_s = k.where(small, a, 1.0)
    b = k.where(small, k.add(a_s, 16.0), a)
    inv = k.div(1.0, b)
    log_gstar = k.mul(_horner(k, k.mul(inv, inv), _STIRLING), inv)
    lgamma_b = k.add(k.add(k.sub(k.mul(k.sub(b, 0.5), k.log(b)), b), _HALF_LOG_2PI),
                     log_gstar)
    lgamma_1p = _lgamma1p_small(k, k.where(tiny, a, 0.0))
    power = k.sub(k.mul(a_s, k.log(x)), x)
    expo = k.where(small, k.sub(power, k.where(tiny, lgamma_1p, lgamma_b)),
                   k.neg(k.add(aphi, log_gstar)))
    rising = k.add(a_s, 1.0)
    for i in range(2, int(TEMME_A0) + 1):
        rising = k.mul(rising, k.add(a_s, float(i)))
    scale = k.where(small, k.where(tiny, 1.0, rising),
                    k.div(1.0, k.sqrt(k.mul(b, 2 * math.pi))))
    return k.mul(k.exp(expo), scale)


def _p_series(k, a, x):
    """``sum_n x^n / ((a + 1) ... (a + n))`` (converges for x <= max(a, 2))."""
    def body(t, s, n):
        n = k.add(n, 1.0)
        t = k.div(k.mul(t, x), n)
        return t, k.add(s, t), n
    _, s, _ = k.loop(_SERIES_TERMS, body, 1.0, 1.0, a)
    return s


def _q_fraction(k, a, x):
    """Legendre's continued fraction ``Q / (x^a e^-x / Gamma(a))`` (modified Lentz), x > a."""
    b0 = k.sub(k.add(x, 1.0), a)

    def body(b, c, d, h, i):
        i = k.add(i, 1.0)
        an = k.mul(k.neg(i), k.sub(i, a))
        b = k.add(b, 2.0)
        d = k.add(k.mul(an, d), b)
        d = k.where(k.lt(k.abs(d), _TINY), _TINY, d)
        c = k.add(b, k.div(an, c))
        c = k.where(k.lt(k.abs(c), _TINY), _TINY, c)
        d = k.div(1.0, d)
        return b, c, d, k.mul(h, k.mul(d, c)), i
    d0 = k.div(1.0, b0)
    _, _, _, h, _ = k.loop(_CF_TERMS, body, b0, 1.0 / _TINY, d0, d0, 0.0)
    return h


def _q_small(k, a, x):
    """Q for a < 0.3 and x <= 2, relative accuracy kept as Q -> 0 (a -> 0)."""
    def body(t, s, n):
        n = k.add(n, 1.0)
        t = k.div(k.mul(t, k.neg(x)), n)
        return t, k.add(s, k.div(t, k.add(a, n))), n
    _, s, _ = k.loop(_QSMALL_TERMS, body, 1.0, 0.0, 0.0)
    u = k.sub(k.mul(a, k.log(x)), _lgamma1p_small(k, a))
    return k.sub(k.neg(_expm1(k, u)), k.mul(k.mul(k.exp(u), a), s))


def _incgamma(k, a, x, upper):
    """P (Q when ``upper``) of the regularized incomplete gamma function for 0 < a, x <
    inf (other lanes compute it at (1, 1) and are replaced by the boundary values)."""
    ok = k.and_(k.and_(k.lt(0.0, a), k.lt(a, INF)), k.and_(k.lt(0.0, x), k.lt(x, INF)))
    a = k.where(ok, a, 1.0)
    x = k.where(ok, x, 1.0)
    aphi = _a_phi(k, a, x)
    temme = k.and_(k.le(float(TEMME_A0), a), k.le(aphi, k.mul(a, 0.5)))
    not_temme = k.or_(k.lt(a, float(TEMME_A0)), k.lt(k.mul(a, 0.5), aphi))
    frac = k.and_(k.and_(k.lt(a, x), k.lt(2.0, x)), not_temme)
    pre = _prefactor(k, a, x, aphi)
    # series: P = pre * s (x <= max(a, 2)); the clamped x keeps other lanes finite
    xs = k.where(frac, a, x)
    p_ser = k.mul(pre, _p_series(k, a, xs))
    # continued fraction: Q = a * pre * h (x > max(a, 2))
    xf = k.where(frac, x, k.add(a, 3.0))
    q_cf = k.mul(k.mul(pre, a), _q_fraction(k, a, xf))
    p_t, q_t = _temme(k, k.where(temme, a, float(TEMME_A0)), k.where(temme, aphi, 0.0),
                      k.where(temme, x, float(TEMME_A0)))
    if not upper:
        return k.where(temme, p_t, k.where(frac, k.sub(1.0, q_cf), p_ser))
    a_q = k.where(k.lt(a, 0.3), a, 0.1)
    q_ser = k.where(k.lt(a, 0.3), _q_small(k, a_q, k.where(k.le(x, 2.0), x, 1.0)),
                    k.sub(1.0, p_ser))
    return k.where(temme, q_t, k.where(frac, q_cf, q_ser))


def _incgamma_edges(k, a, x, value, upper):
    """PyTorch's boundary values around ``value`` (P, or Q when ``upper``)."""
    lo, hi = (1.0, 0.0) if upper else (0.0, 1.0)
    out = k.where(k.eq(x, INF), hi, value)              # P(a, inf) = 1
    out = k.where(k.eq(a, INF), k.where(k.eq(x, INF), NAN, lo), out)
    out = k.where(k.eq(x, 0.0), lo, out)                # P(a, 0) = 0
    out = k.where(k.eq(a, 0.0), k.where(k.lt(0.0, x), hi, NAN), out)
    out = k.where(k.or_(k.lt(a, 0.0), k.lt(x, 0.0)), NAN, out)
    return k.where(k.and_(k.eq(a, a), k.eq(x, x)), out, NAN)


def gammainc(k, a, x):
    """The regularized lower incomplete gamma function P(a, x)."""
    return _incgamma_edges(k, a, x, _incgamma(k, a, x, False), False)


def gammaincc(k, a, x):
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    return _incgamma_edges(k, a, x, _incgamma(k, a, x, True), True)


# --------------------------------------------------------------------------------------
# Hurwitz zeta
_ZETA_SHIFT = 9
_BERNOULLI_2J = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510,
                 43867 / 798, -174611 / 330, 854513 / 138, -236364091 / 2730)
_EM = tuple(b / math.factorial(2 * j) for j, b in enumerate(_BERNOULLI_2J, 1))


def _hurwitz(k, s, q):
    """zeta(s, q) for s > 1, q > 0 (Euler-Maclaurin after 9 direct terms)."""
    def body(acc, qk):
        return k.add(acc, k.exp(k.mul(k.neg(s), k.log(qk)))), k.add(qk, 1.0)
    acc, w = k.loop(_ZETA_SHIFT, body, 0.0, q)
    st = k.where(k.lt(s, 1000.0), s, 1000.0)  # the tail is 0 beyond (w >= 9)
    ws = k.exp(k.mul(k.neg(st), k.log(w)))  # w^-s
    acc = k.add(acc, k.add(k.div(k.mul(w, ws), k.sub(st, 1.0)), k.mul(ws, 0.5)))
    w2 = k.mul(w, w)
    t = k.div(k.mul(ws, st), w)
    tail = k.mul(t, _EM[0])
    for j, c in enumerate(_EM[1:], 2):
        t = k.div(k.mul(k.mul(t, k.add(st, 2.0 * j - 3)), k.add(st, 2.0 * j - 2)), w2)
        tail = k.add(tail, k.mul(t, c))
    return k.add(acc, tail)


def zeta(k, s, q):
    """The Hurwitz zeta function ``sum_n (q + n)^-s`` (PyTorch's torch.special.zeta)."""
    finite = k.and_(k.lt(1.0, s), k.lt(s, INF))
    ss = k.where(finite, s, 2.0)
    qpos = k.and_(k.lt(0.0, q), k.lt(q, INF))
    q_int = k.eq(q, k.floor(q))
    neg = k.and_(k.lt(q, 0.0), k.lt(-INF, q))  # (integers are poles, below)
    f = k.sub(q, k.floor(q))  # in (0, 1) for a negative non-integer q
    fq = k.where(k.and_(neg, k.lt(0.0, f)), f, 0.5)
    base = _hurwitz(k, ss, k.where(qpos, q, fq))
    odd = k.eq(k.sub(ss, k.mul(k.floor(k.mul(ss, 0.5)), 2.0)), 1.0)
    qn = k.where(neg, q, -0.5)
    fold = k.sub(_hurwitz(k, ss, k.sub(1.0, fq)), _hurwitz(k, ss, k.sub(1.0, qn)))
    out = k.where(neg, k.add(base, k.where(odd, k.neg(fold), fold)), base)
    out = k.where(k.and_(neg, k.lt(k.floor(ss), ss)), NAN, out)  # non-integer s
    out = k.where(k.and_(k.le(q, 0.0), q_int), INF, out)       # poles at q = 0, -1, ...
    out = k.where(k.eq(q, INF), 0.0, out)
    # s = inf: the limit of q^-s (0, 1 or inf); NaN for q <= 0
    lim = k.where(k.lt(1.0, q), 0.0, k.where(k.eq(q, 1.0), 1.0, INF))
    out = k.where(k.eq(s, INF), k.where(k.lt(0.0, q), lim, NAN), out)
    out = k.where(k.and_(k.eq(s, s), k.eq(q, q)), out, NAN)
    out = k.where(k.lt(s, 1.0), NAN, out)
    return k.where(k.eq(s, 1.0), INF, out)  # even for q = NaN, as PyTorch
