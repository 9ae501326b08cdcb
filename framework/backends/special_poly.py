"""torch.special's orthogonal polynomials ``f(x, n)``, written once: Chebyshev T, U, V, W
(and the shifted ones, of ``2x - 1``), Hermite H and He, Laguerre L and Legendre P.

Same scheme as ``special_math.py`` (one function of a kit, rendered for NumPy, Triton and
ONNX), with PyTorch's algorithm and special values:

* ``n`` is truncated toward zero (PyTorch casts it to int64; n = -0.5 is degree 0); n < 0
  gives 0, and so do a NaN, infinite or out-of-int64 n (the x86 cast yields INT64_MIN).
* Chebyshev: the special values at |y| = 1 (y = x, or 2x - 1 for the shifted ones);
  ``cos(n t)``, ``sin((n+1) t) / sin(t)``, ``cos((n+1/2) t) / cos(t/2)``, ``sin((n+1/2) t) /
  sin(t/2)`` (t = acos y) for |y| < 1 and n above a threshold (6, or 8 for U, V, W; the
  shifted U, V take 6 and the shifted W 4); otherwise the three-term recurrence. The
  trigonometric forms are evaluated at |y| (``f(-y) = (-1)^n f(y)``, V and W trading
  places), acos by a Taylor series of asin, sin(t), cos(t/2), sin(t/2) from y by the
  half-angle formulas: next to y = -1 they keep the accuracy PyTorch's ``acos(y)`` near pi
  loses (U_129(-1 + 2^-53): 2e-8 relative there). Where cos(t/2) rounds to 1 (y within an
  ulp or two of 1), W takes its limit 2n + 1 and the shifted W PyTorch's +-1.
* Hermite (NaN for n above 128 in single precision or 512 in double, as PyTorch),
  Laguerre and Legendre: the recurrence, in PyTorch's arithmetic order.
* The arithmetic is in the operand's precision (float32 for float16/bfloat16/float32, as
  the Triton and ONNX renderings compute; PyTorch's kernels run in the operand's type), so
  overflow behaves as in PyTorch: a recurrence that overflows turns NaN two steps later.

The recurrence is a data-dependent loop: ``k.trips(steps, cap)`` is the largest per-element
step count (``MAX_STEPS`` at most) and ``k.loop`` runs that many rounds, each element
updating while it has steps left. A Chebyshev recurrence with |y| > 1 stops once it must
have overflowed (``713 / acosh|y| + 4`` steps), so only |y| within ~1e-4 of 1 or the
Legendre/Laguerre recurrences can need more than ``MAX_STEPS`` (n > 65536): the CPU kernel
raises an ArgumentError naming the op; the Triton and ONNX renderings cannot raise, and give
NaN for those elements.

Kit additions used here (besides ``special_math``'s interface): ``trips(v, cap)`` -> the loop
count ``min(max(v), cap)`` of a non-negative, NaN-free value, usable as ``loop``'s ``n``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ArgumentError
from .special_math import NAN, NumpyKit

MAX_STEPS = 1 << 16
_INT64_EDGE = 9.223372036854775e18  # |n| at or above this does not fit int64
_PI = math.pi
# asin(s) / s = sum_k C(2k, k) / (4^k (2k + 1)) s^2k, k <= 24, highest first: the tail is
# below 3e-18 relative for |s| <= 1/2 (no trigonometric Newton step, fewer registers)
_ASIN_TAYLOR = tuple(math.comb(2 * k, k) / (4 ** k * (2 * k + 1)) for k in range(24, -1, -1))


# --------------------------------------------------------------------------------------
# shared pieces
def _degree(k, n):
    """int64(n) as a float: truncated toward 0; -1 where the cast is out of range."""
    valid = k.and_(k.eq(n, n), k.lt(k.abs(n), _INT64_EDGE))
    t = k.where(k.lt(n, 0.0), k.neg(k.floor(k.neg(n))), k.floor(n))
    return k.where(valid, t, -1.0)


def _odd(k, m):
    """m odd (m integral and >= 0)."""
    half = k.mul(m, 0.5)
    return k.lt(k.floor(half), half)


def _sign_by_parity(k, m, value):
    """``value`` for even m, ``-value`` for odd m."""
    return k.where(_odd(k, m), k.neg(value), value)


def _asin_small(k, s):
    """asin(s) for |s| <= 0.5 (Taylor's polynomial, Horner in s^2)."""
    s2 = k.mul(s, s)
    t = _ASIN_TAYLOR[0]
    for c in _ASIN_TAYLOR[1:]:
        t = k.add(k.mul(t, s2), c)
    return k.mul(t, s)


def _acos(k, a):
    """acos(a) for 0 <= a < 1: ``2 asin(sqrt((1 - a) / 2))`` above 1/2, ``pi/2 - asin(a)``
    below (elements outside give unused values)."""
    hi = k.lt(0.5, a)
    s = _asin_small(k, k.where(hi, k.sqrt(k.mul(k.sub(1.0, a), 0.5)), a))
    return k.where(hi, k.mul(s, 2.0), k.sub(_PI / 2, s))


def _recurrence(k, first, steps, step):
    """``q`` after ``steps`` (per element) rounds of ``p, q = q, step(j, p, q)`` from
    ``p, q = 1, first`` (j = 1, 2, ... counts the rounds); elements beyond ``MAX_STEPS``
    give NaN."""
    trips = k.trips(steps, MAX_STEPS)
    one = k.add(k.mul(steps, 0.0), 1.0)  # a full operand: the carries keep the dtype

    def body(p, q, j):
        go = k.le(j, steps)
        r = step(j, p, q)
        return k.where(go, q, p), k.where(go, r, q), k.add(j, 1.0)

    _, q, _ = k.loop(trips, body, one, first, one)
    return k.where(k.lt(MAX_STEPS, steps), NAN, q)


def _finish(k, nt, first, rec, extra=()):
    """PyTorch's order of cases: n < 0 -> 0, then ``extra`` (mask, value) pairs (first one
    wins), n == 0 -> 1, n == 1 -> ``first``, else the recurrence."""
    out = k.where(k.eq(nt, 1.0), first, rec)
    out = k.where(k.eq(nt, 0.0), 1.0, out)
    for mask, value in reversed(extra):
        out = k.where(mask, value, out)
    return k.where(k.lt(nt, 0.0), 0.0, out)


def _no_nan(k, x):
    return k.eq(x, x)


def _steps(k, rest, x, last):
    """``last - 1`` rounds, none where ``rest`` or x is NaN (the first degree is NaN)."""
    return k.where(rest, 0.0, k.where(_no_nan(k, x), k.sub(last, 1.0), 0.0))


# --------------------------------------------------------------------------------------
# Chebyshev
def _chebyshev(k, y, n, kind, trig_from, shifted=False):
    nt = _degree(k, n)
    y2 = k.add(y, y)
    first = {"t": lambda: y, "u": lambda: y2, "v": lambda: k.sub(y2, 1.0),
             "w": lambda: k.add(y2, 1.0)}[kind]()
    ay = k.abs(y)
    edge = k.eq(ay, 1.0)
    trig = k.and_(k.lt(float(trig_from), nt), k.lt(ay, 1.0))
    # the recurrence (first: fewer values live across its loop); for |y| > 1 it has turned
    # NaN after 713 / acosh|y| + 4 steps
    big = k.lt(1.0, ay)
    yb = k.where(big, ay, 2.0)
    theta = k.log(k.add(yb, k.sqrt(k.mul(k.sub(yb, 1.0), k.add(yb, 1.0)))))
    bound = k.add(k.floor(k.div(713.0, theta)), 4.0)
    last = k.where(k.and_(big, k.lt(bound, nt)), bound, nt)
    rest = k.or_(k.or_(edge, trig), k.lt(nt, 2.0))
    rec = _recurrence(k, first, _steps(k, rest, y, last),
                      lambda j, p, q: k.sub(k.mul(y2, q), p))
    # |y| = 1
    pos = k.lt(0.0, y)
    n1, n21 = k.add(nt, 1.0), k.add(k.add(nt, nt), 1.0)
    edge_val = {"t": lambda: k.where(pos, 1.0, _sign_by_parity(k, nt, 1.0)),
                "u": lambda: k.where(pos, n1, _sign_by_parity(k, nt, n1)),
                "v": lambda: k.where(pos, 1.0, _sign_by_parity(k, nt, n21)),
                "w": lambda: k.where(pos, n21, _sign_by_parity(k, nt, 1.0))}[kind]()
    # |y| < 1, n > trig_from: at a = |y| (f(-y) = (-1)^n f(y), V and W trading places), so
    # that t = acos(a) <= pi/2 keeps its accuracy next to |y| = 1; sin(t) and the half-angle
    # sine and cosine from a
    a = k.abs(k.where(trig, y, 0.0))
    neg = k.lt(y, 0.0)
    t = _acos(k, a)
    if kind == "t":
        val = k.cos(k.mul(nt, t))
    elif kind == "u":  # (PyTorch's fallback for sin(t) == 0 cannot happen for |y| < 1)
        val = k.div(k.sin(k.mul(n1, t)), k.sqrt(k.mul(k.sub(1.0, a), k.add(1.0, a))))
    else:  # W-like sin((n+1/2) t) / sin(t/2) or V-like cos((n+1/2) t) / cos(t/2), where
        # the cosine is a sine of (n+1/2) t + pi/2 (one call: fewer registers on the GPU)
        w_like = neg if kind == "v" else k.le(0.0, y)
        nh = k.mul(k.add(nt, 0.5), t)
        cos_h = k.sqrt(k.mul(k.add(1.0, a), 0.5))
        sin_h = k.sqrt(k.mul(k.sub(1.0, a), 0.5))
        val = k.div(k.sin(k.where(w_like, nh, k.add(nh, _PI / 2))),
                    k.where(w_like, sin_h, cos_h))
        # where cos(t/2) rounds to 1, W's limit 2n + 1 (PyTorch's shifted W gives +-1)
        w_alt = _sign_by_parity(k, nt, 1.0) if shifted and kind == "w" else n21
        val = k.where(k.and_(w_like, k.eq(cos_h, 1.0)), w_alt, val)
    trig_val = k.where(neg, _sign_by_parity(k, nt, val), val)
    return _finish(k, nt, first, rec, ((edge, edge_val), (trig, trig_val)))


def chebyshev_polynomial_t(k, x, n):
    """The Chebyshev polynomial of the first kind T_n(x)."""
    return _chebyshev(k, x, n, "t", 6)


def chebyshev_polynomial_u(k, x, n):
    """The Chebyshev polynomial of the second kind U_n(x)."""
    return _chebyshev(k, x, n, "u", 8)


def chebyshev_polynomial_v(k, x, n):
    """The Chebyshev polynomial of the third kind V_n(x)."""
    return _chebyshev(k, x, n, "v", 8)


def chebyshev_polynomial_w(k, x, n):
    """The Chebyshev polynomial of the fourth kind W_n(x)."""
    return _chebyshev(k, x, n, "w", 8)


def _shifted(x, k):
    return k.sub(k.add(x, x), 1.0)


def shifted_chebyshev_polynomial_t(k, x, n):
    """T*_n(x) = T_n(2x - 1)."""
    return _chebyshev(k, _shifted(x, k), n, "t", 6, True)


def shifted_chebyshev_polynomial_u(k, x, n):
    """U*_n(x) = U_n(2x - 1)."""
    return _chebyshev(k, _shifted(x, k), n, "u", 6, True)


def shifted_chebyshev_polynomial_v(k, x, n):
    """V*_n(x) = V_n(2x - 1)."""
    return _chebyshev(k, _shifted(x, k), n, "v", 6, True)


def shifted_chebyshev_polynomial_w(k, x, n):
    """W*_n(x) = W_n(2x - 1)."""
    return _chebyshev(k, _shifted(x, k), n, "w", 4, True)


# --------------------------------------------------------------------------------------
# Hermite, Laguerre, Legendre: the recurrence only
def _plain_steps(k, x, nt, skip):
    """Rounds for degree nt: none where n < 2, x is NaN or ``skip``; at most 4 at +-inf (the
    recurrence is NaN from the third degree on)."""
    last = k.where(k.and_(k.eq(k.abs(x), math.inf), k.lt(4.0, nt)), 4.0, nt)
    return _steps(k, k.or_(k.lt(nt, 2.0), skip), x, last)


def _hermite_limit(k, x):
    """PyTorch's largest Hermite degree: 128 in single precision, 512 in double (1 + 2^-30
    rounds to 1 in float32 only, so the compute precision picks it in every rendering)."""
    one = k.where(_no_nan(k, x), 1.0, 1.0)
    return k.where(k.lt(1.0, k.add(one, 2.0 ** -30)), 512.0, 128.0)


def _hermite(k, x, n, physicists):
    nt = _degree(k, n)
    over = k.lt(_hermite_limit(k, x), nt)
    first = k.add(x, x) if physicists else x
    if physicists:  # H_{j+1} = 2x H_j - 2j H_{j-1}
        def step(j, p, q):
            return k.sub(k.mul(first, q), k.mul(k.add(j, j), p))
    else:           # He_{j+1} = x He_j - j He_{j-1}
        def step(j, p, q):
            return k.sub(k.mul(x, q), k.mul(j, p))
    rec = _recurrence(k, first, _plain_steps(k, x, nt, over), step)
    return _finish(k, nt, first, rec, ((over, NAN),))


def hermite_polynomial_h(k, x, n):
    """The physicists' Hermite polynomial H_n(x)."""
    return _hermite(k, x, n, True)


def hermite_polynomial_he(k, x, n):
    """The probabilists' Hermite polynomial He_n(x)."""
    return _hermite(k, x, n, False)


def laguerre_polynomial_l(k, x, n):
    """The Laguerre polynomial L_n(x) (1 at x = 0 for every n >= 0, as PyTorch)."""
    nt = _degree(k, n)
    first = k.sub(1.0, x)
    zero = k.eq(k.abs(x), 0.0)

    def step(j, p, q):  # ((2j + (1 - x)) q - j p) / (j + 1)
        return k.div(k.sub(k.mul(k.add(k.add(j, j), first), q), k.mul(j, p)), k.add(j, 1.0))
    rec = _recurrence(k, first, _plain_steps(k, x, nt, zero), step)
    return _finish(k, nt, first, rec, ((zero, 1.0),))


def legendre_polynomial_p(k, x, n):
    """The Legendre polynomial P_n(x)."""
    nt = _degree(k, n)
    edge = k.eq(k.abs(x), 1.0)
    edge_val = k.where(k.lt(0.0, x), 1.0, _sign_by_parity(k, nt, 1.0))

    def step(j, p, q):  # ((2j + 1) x q - j p) / (j + 1)
        return k.div(k.sub(k.mul(k.mul(k.add(k.add(j, j), 1.0), x), q), k.mul(j, p)),
                     k.add(j, 1.0))
    rec = _recurrence(k, x, _plain_steps(k, x, nt, edge), step)
    return _finish(k, nt, x, rec, ((edge, edge_val),))


BINARY = {fn.__name__: fn for fn in (
    chebyshev_polynomial_t, chebyshev_polynomial_u, chebyshev_polynomial_v,
    chebyshev_polynomial_w, shifted_chebyshev_polynomial_t, shifted_chebyshev_polynomial_u,
    shifted_chebyshev_polynomial_v, shifted_chebyshev_polynomial_w, hermite_polynomial_h,
    hermite_polynomial_he, laguerre_polynomial_l, legendre_polynomial_p)}


# --------------------------------------------------------------------------------------
# the CPU kernels
class _PolyKit(NumpyKit):
    """The NumPy kit in one float dtype (``where`` of two Python numbers keeps it), with
    ``trips`` raising past the cap."""

    def __init__(self, dtype, name):
        self.dt, self.name = dtype, name

    def where(self, c, a, b):
        """where(c, a, b) in the kit's dtype."""
        return np.where(c, a, b).astype(self.dt, copy=False)

    def trips(self, v, cap):
        """The loop count ``max(v)``; an ArgumentError past ``cap``."""
        most = float(np.max(v, initial=0.0))
        if most > cap:
            raise ArgumentError(
                f"{self.name}: a degree n needs {int(most)} recurrence steps, more than the "
                f"{cap} this implementation runs (n > {cap} with |x| within ~1e-4 of 1 for "
                "Chebyshev, any x for Legendre and Laguerre)")
        return int(most)


def evaluate(name, x, n):
    """The CPU kernel of polynomial ``name``: operands (arrays or Python numbers) broadcast,
    computed in float64 for float64 data and float32 otherwise, returned in the array
    operand's dtype."""
    out_dt = np.asarray(x if isinstance(x, np.ndarray) else n).dtype
    cd = np.float64 if out_dt == np.float64 else np.float32
    xa, na = np.broadcast_arrays(np.asarray(x).astype(cd), np.asarray(n).astype(cd))
    with np.errstate(all="ignore"):
        out = BINARY[name](_PolyKit(cd, name), xa, na)
    return np.asarray(out, cd).astype(out_dt, copy=False)
