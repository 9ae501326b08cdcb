"""Bessel Y0, Y1, the modified Bessel functions I0, I1, K0, K1 and the scaled K0, K1 of
torch.special, written once.

Same scheme as ``special_math.py`` (one function of a kit, rendered for NumPy, Triton and
ONNX). The tables are Chebyshev series fitted with mpmath (``tests/special_tables_gen.py``,
stored in ``special_tables.py``) and evaluated by Clenshaw's recurrence; the split points
and the forms follow the Cephes Math Library (S. Moshier), whose structure PyTorch's kernels
also use:

* ``bessel_y0``/``bessel_y1``: on (0, 8] ``Y0 = R0 + 2/pi log(x) J0(x)`` and ``Y1 = x R1 +
  2/pi (log(x) J1(x) - 1/x)`` with the smooth R0, R1 fitted in ``2 (x/8)^2 - 1`` and J0, J1
  from ``special_bessel``'s tables; beyond, Hankel's ``Y_n = (P_n sin(chi) + Q_n cos(chi))
  sqrt(2 / (pi x))`` with ``special_bessel``'s P_n, Q_n. As PyTorch: -inf at +-0, NaN for
  x < 0 and at +inf (its Cephes port takes ``sin(inf)``).
* ``modified_bessel_i0``/``i1``: ``special_math``'s Cephes i0e/i1e times ``exp(|x|)`` (the
  values of ``fw.special.i0``/``i1``), but NaN at +-inf as PyTorch's ``modified_bessel_*``
  (``exp(inf) / sqrt(inf)``), where ``i0``/``i1`` give +-inf.
* ``modified_bessel_k0``/``k1``: on (0, 2] ``K0 = F0(x^2) - log(x/2) I0(x)`` and ``K1 =
  F1(x^2) / x + log(x/2) I1(x)`` (F fitted in ``x^2/2 - 1``); beyond, ``exp(-x) G_n /
  sqrt(x)`` with ``G_n = sqrt(x) e^x K_n(x)`` fitted in ``4/x - 1``. The scaled forms
  ``scaled_modified_bessel_k*`` are ``e^x K_n``: the small branch times ``exp(x)``, the large
  one without ``exp(-x)`` (no underflow). As PyTorch: +inf at +-0, NaN for x < 0, 0 at +inf.
"""

from __future__ import annotations

import math

from .special_bessel import _cheb
from .special_math import INF, NAN, i0e, i1e
from .special_tables import (BESSEL_X0, J0_SMALL, J1_SMALL, K0_LARGE, K0_SMALL, K1_LARGE,
                             K1_SMALL, P0, P1, Q0, Q1, Y0_SMALL, Y1_SMALL)

_X0 = BESSEL_X0
_TWO_OVER_PI = 2.0 / math.pi


def _bessel_y(k, x, order):
    """Y_order(x) for x >= 0 (NaN below, -inf at 0)."""
    small = k.le(x, _X0)
    xs = k.where(small, x, _X0)
    x2 = k.mul(xs, xs)
    y = k.sub(k.mul(x2, 2.0 / (_X0 * _X0)), 1.0)
    tiny = k.lt(xs, 1e-4)  # J0 = 1 - x^2/4, J1/x = 1/2 - x^2/16 to rounding there
    if order:
        j = k.mul(k.where(tiny, k.sub(0.5, k.mul(x2, 0.0625)), _cheb(k, y, J1_SMALL)), xs)
        ys = k.add(k.mul(_cheb(k, y, Y1_SMALL), xs),
                   k.mul(k.sub(k.mul(k.log(xs), j), k.div(1.0, xs)), _TWO_OVER_PI))
    else:
        j = k.where(tiny, k.sub(1.0, k.mul(x2, 0.25)), _cheb(k, y, J0_SMALL))
        ys = k.add(_cheb(k, y, Y0_SMALL), k.mul(k.mul(k.log(xs), j), _TWO_OVER_PI))
    xb = k.where(small, _X0, x)
    r = k.div(_X0, xb)
    z = k.sub(k.mul(k.mul(r, r), 2.0), 1.0)
    p = _cheb(k, z, P1 if order else P0)
    q = k.div(_cheb(k, z, Q1 if order else Q0), xb)
    c, s = k.cos(xb), k.sin(xb)
    if order:  # sin(chi) ~ -(s + c), cos(chi) ~ s - c  (chi = x - 3 pi / 4, over sqrt 2)
        yb = k.sub(k.mul(q, k.sub(s, c)), k.mul(p, k.add(s, c)))
    else:      # sin(chi) ~ s - c, cos(chi) ~ c + s    (chi = x - pi / 4)
        yb = k.add(k.mul(p, k.sub(s, c)), k.mul(q, k.add(c, s)))
    yb = k.div(yb, k.sqrt(k.mul(xb, math.pi)))
    out = k.where(small, ys, yb)
    out = k.where(k.lt(x, 0.0), NAN, out)
    return k.where(k.eq(x, 0.0), -INF, out)


def bessel_y0(k, x):
    """The Bessel function of the second kind of order 0."""
    return _bessel_y(k, x, 0)


def bessel_y1(k, x):
    """The Bessel function of the second kind of order 1."""
    return _bessel_y(k, x, 1)


def modified_bessel_i0(k, x):
    """The modified Bessel function of the first kind I0 (NaN at +-inf, as PyTorch)."""
    return k.mul(i0e(k, x), k.exp(k.abs(x)))


def modified_bessel_i1(k, x):
    """The modified Bessel function of the first kind I1 (odd; NaN at +-inf)."""
    return k.mul(i1e(k, x), k.exp(k.abs(x)))


def _bessel_k(k, x, order, scaled):
    """K_order(x) (times e^x when ``scaled``) for x >= 0 (NaN below, +inf at 0)."""
    small = k.le(x, 2.0)
    xs = k.where(small, x, 2.0)
    f = _cheb(k, k.sub(k.mul(k.mul(xs, xs), 0.5), 1.0), K1_SMALL if order else K0_SMALL)
    log_half = k.log(k.mul(xs, 0.5))
    if order:
        ks = k.add(k.mul(log_half, modified_bessel_i1(k, xs)), k.div(f, xs))
    else:
        ks = k.sub(f, k.mul(log_half, modified_bessel_i0(k, xs)))
    if scaled:
        ks = k.mul(ks, k.exp(xs))
    xb = k.where(small, 2.0, x)
    kb = k.div(_cheb(k, k.sub(k.div(4.0, xb), 1.0), K1_LARGE if order else K0_LARGE),
               k.sqrt(xb))
    if not scaled:
        kb = k.mul(kb, k.exp(k.neg(xb)))
    out = k.where(small, ks, kb)
    out = k.where(k.lt(x, 0.0), NAN, out)
    return k.where(k.eq(x, 0.0), INF, out)


def modified_bessel_k0(k, x):
    """The modified Bessel function of the second kind K0."""
    return _bessel_k(k, x, 0, False)


def modified_bessel_k1(k, x):
    """The modified Bessel function of the second kind K1."""
    return _bessel_k(k, x, 1, False)


def scaled_modified_bessel_k0(k, x):
    """``exp(x) K0(x)``."""
    return _bessel_k(k, x, 0, True)


def scaled_modified_bessel_k1(k, x):
    """``exp(x) K1(x)``."""
    return _bessel_k(k, x, 1, True)


# name -> algorithm (the unary ops of ``framework/ops/special_ops.py``)
UNARY = {fn.__name__: fn for fn in (
    bessel_y0, bessel_y1, modified_bessel_i0, modified_bessel_i1, modified_bessel_k0,
    modified_bessel_k1, scaled_modified_bessel_k0, scaled_modified_bessel_k1)}
