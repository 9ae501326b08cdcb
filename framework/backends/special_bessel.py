"""Bessel J0, J1, the spherical Bessel j0 and the Airy function Ai, written once.

Same scheme as ``special_math.py`` (one function of a kit, rendered for NumPy, Triton and
ONNX). The approximations are Chebyshev series fitted with mpmath
(``tests/special_tables_gen.py``, tables in ``special_tables.py``), evaluated by Clenshaw's
recurrence, so the absolute error is a few ulps of the function's envelope:

* ``bessel_j0``/``bessel_j1``: J0(x) and J1(x)/x on |x| <= 8 in ``2 (x/8)^2 - 1``; beyond,
  Hankel's ``J_n = (P_n cos(chi) - Q_n sin(chi)) sqrt(2 / (pi x))`` with ``P_n``, ``x Q_n``
  fitted in ``2 (8/x)^2 - 1`` and ``cos(chi)``, ``sin(chi)`` formed from ``cos x`` and
  ``sin x`` (no rounding of ``x - pi/4``). Relative accuracy is lost only next to the
  zeros, as for any double-precision J_n. As PyTorch: NaN at +-inf (PyTorch's Cephes port
  takes ``cos(inf)``); J1 is odd, J0 even.
* ``spherical_bessel_j0``: PyTorch's formula: ``sin(x) / x``, its Taylor polynomial for
  |x| < 0.5, 0 at +-inf.
* ``airy_ai``: Ai on [-5, 2.5]; for x > 2.5, ``exp(-zeta) F / (2 sqrt(pi) x^(1/4))``; for
  x < -5, ``(sin(zeta + pi/4) f - cos(zeta + pi/4) g) / (sqrt(pi) |x|^(1/4))`` with F, f,
  zeta g fitted in ``2 zeta_0 / zeta - 1`` (zeta = 2/3 |x|^(3/2)). NaN at +-inf, as
  PyTorch.
"""

from __future__ import annotations

import math

from .special_math import INF, NAN, _chbevl
from .special_tables import (AI_MID, AI_NEG_F, AI_NEG_G, AI_POS, AIRY_L, AIRY_R, BESSEL_X0,
                             J0_SMALL, J1_SMALL, P0, P1, Q0, Q1)

_X0 = BESSEL_X0


def _cheb(k, y, coeffs):
    """``a_0/2 + sum a_j T_j(y)`` for y in [-1, 1] (coefficients highest degree first)."""
    return _chbevl(k, k.mul(y, 2.0), coeffs)


def _bessel(k, x, small_tab, p_tab, q_tab, order):
    """J_order(|x|): the small-argument series (times x for order 1) and Hankel's form."""
    y = k.abs(x)
    small = k.le(y, _X0)
    xs = k.where(small, x, _X0)
    x2 = k.mul(xs, xs)
    js = _cheb(k, k.sub(k.mul(x2, 2.0 / (_X0 * _X0)), 1.0), small_tab)
    # |x| < 1e-4: 1 - x^2/4 and x (1/2 - x^2/16) are exact to rounding (J0(0) = 1)
    tiny = k.lt(y, 1e-4)
    js = k.where(tiny, k.sub(0.5 if order else 1.0, k.mul(x2, 0.0625 if order else 0.25)),
                 js)
    if order:
        js = k.mul(js, xs)
    yb = k.where(small, _X0, y)
    r = k.div(_X0, yb)
    z = k.sub(k.mul(k.mul(r, r), 2.0), 1.0)
    p = _cheb(k, z, p_tab)
    q = k.div(_cheb(k, z, q_tab), yb)
    c, s = k.cos(yb), k.sin(yb)
    if order:  # cos(chi) ~ s - c, -sin(chi) ~ s + c  (chi = x - 3 pi / 4, over sqrt 2)
        jb = k.add(k.mul(p, k.sub(s, c)), k.mul(q, k.add(s, c)))
    else:      # cos(chi) ~ c + s, sin(chi) ~ s - c   (chi = x - pi / 4)
        jb = k.sub(k.mul(p, k.add(c, s)), k.mul(q, k.sub(s, c)))
    jb = k.div(jb, k.sqrt(k.mul(yb, math.pi)))
    if order:
        jb = k.where(k.lt(x, 0.0), k.neg(jb), jb)
    return k.where(small, js, jb)


def bessel_j0(k, x):
    """The Bessel function of the first kind of order 0."""
    return _bessel(k, x, J0_SMALL, P0, Q0, 0)


def bessel_j1(k, x):
    """The Bessel function of the first kind of order 1."""
    return _bessel(k, x, J1_SMALL, P1, Q1, 1)


_SPH_TAYLOR = (1 / 6227020800, -1 / 39916800, 1 / 362880, -1 / 5040, 1 / 120, -1 / 6, 1.0)


def spherical_bessel_j0(k, x):
    """The spherical Bessel function ``j0(x) = sin(x) / x``."""
    small = k.lt(k.abs(x), 0.5)
    xs = k.where(small, x, 0.0)
    x2 = k.mul(xs, xs)
    poly = _SPH_TAYLOR[0]
    for c in _SPH_TAYLOR[1:]:
        poly = k.add(k.mul(poly, x2), c)
    xb = k.where(small, 1.0, x)
    out = k.where(small, poly, k.div(k.sin(xb), xb))
    return k.where(k.eq(k.abs(x), INF), 0.0, out)


def airy_ai(k, x):
    """The Airy function of the first kind Ai(x)."""
    lo, hi = AIRY_L, AIRY_R
    mid = k.and_(k.le(lo, x), k.le(x, hi))
    xm = k.where(mid, x, 0.0)
    v_mid = _cheb(k, k.div(k.sub(k.mul(xm, 2.0), lo + hi), hi - lo), AI_MID)
    w = k.where(mid, 1.0, k.abs(x))
    root = k.sqrt(w)
    zeta = k.mul(k.mul(w, root), 2.0 / 3.0)
    quarter = k.sqrt(root)
    z_hi, z_lo = 2.0 / 3.0 * hi ** 1.5, 2.0 / 3.0 * (-lo) ** 1.5
    # x > hi: exp(-zeta) F / (2 sqrt(pi) x^(1/4))
    zp = k.where(k.lt(hi, x), zeta, z_hi)
    f_pos = _cheb(k, k.sub(k.div(2.0 * z_hi, zp), 1.0), AI_POS)
    v_pos = k.div(k.mul(k.exp(k.neg(zp)), f_pos), k.mul(quarter, 2.0 * math.sqrt(math.pi)))
    # x < lo: ((sin + cos) f - (cos - sin) g) / (sqrt(2 pi) |x|^(1/4)), of zeta
    zn = k.where(k.lt(x, lo), zeta, z_lo)
    yn = k.sub(k.div(2.0 * z_lo, zn), 1.0)
    f, g = _cheb(k, yn, AI_NEG_F), k.div(_cheb(k, yn, AI_NEG_G), zn)
    s, c = k.sin(zn), k.cos(zn)
    v_neg = k.div(k.sub(k.mul(k.add(s, c), f), k.mul(k.sub(c, s), g)),
                  k.mul(quarter, math.sqrt(2.0 * math.pi)))
    out = k.where(mid, v_mid, k.where(k.lt(x, lo), v_neg, v_pos))
    out = k.where(k.eq(x, x), out, x)
    return k.where(k.eq(k.abs(x), INF), NAN, out)
