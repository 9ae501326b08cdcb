"""``fw.special``: torch.special's functions.

The primitives (lgamma, digamma, polygamma, erfc, erfinv, i0/i0e/i1/i1e; gammainc/gammaincc,
zeta, erfcx, bessel_j0/j1/y0/y1, modified_bessel_i0/i1/k0/k1, scaled_modified_bessel_k0/k1,
spherical_bessel_j0, airy_ai; the orthogonal polynomials chebyshev_polynomial_t/u/v/w and
their shifted forms, hermite_polynomial_h/he, laguerre_polynomial_l,
legendre_polynomial_p) are registered ops with CPU kernels, Triton formulas and ONNX
lowerings (algorithms and accuracy in ``framework/backends/special_math.py``,
``special_gamma.py``, ``special_bessel.py``, ``special_bessel_more.py``,
``special_poly.py``); the rest are composites of public ops.

Tail accuracy of ``ndtri``: it is ``sqrt(2) * erfinv(2p - 1)``; ``2p - 1`` is exact for
p >= 0.25 but for small p it rounds to the grid of 1 (spacing 2^-53 in float64), so for
p < ~1e-3 the relative error of the argument of erfinv grows like ``eps / p`` (about 1e-13 at
p = 1e-3 and 1e-8 at p = 1e-8 in float64); for p below 1.1e-16 (float64) or 6e-8 (float32),
``2p - 1`` rounds to -1 and the result is -inf. The upper tail (p near 1) is accurate: there
``1 - p`` is exact.
"""

from __future__ import annotations

import math

from . import dtypes
from .errors import ArgumentError
from .ops import composite as _composite
from .ops import pointwise as _pw
from .ops import reduce as _reduce
from .ops import special_ops as _sp
from .ops.special_ops import (airy_ai, bessel_j0, bessel_j1, bessel_y0, bessel_y1,  # noqa: F401
                              erfcx, modified_bessel_i0, modified_bessel_i1,
                              modified_bessel_k0, modified_bessel_k1,
                              scaled_modified_bessel_k0, scaled_modified_bessel_k1,
                              spherical_bessel_j0, zeta)
from .ops.special_polynomials import (chebyshev_polynomial_t, chebyshev_polynomial_u,  # noqa: F401
                                      chebyshev_polynomial_v, chebyshev_polynomial_w,
                                      hermite_polynomial_h, hermite_polynomial_he,
                                      laguerre_polynomial_l, legendre_polynomial_p,
                                      shifted_chebyshev_polynomial_t,
                                      shifted_chebyshev_polynomial_u,
                                      shifted_chebyshev_polynomial_v,
                                      shifted_chebyshev_polynomial_w)
from .ops.torch_extra import logit, sinc  # noqa: F401  (torch.logit, torch.sinc)
from .tensor import Tensor

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

__all__ = ["erf", "erfc", "erfinv", "expit", "logit", "xlogy", "xlog1py", "gammaln", "digamma",
           "psi", "polygamma", "multigammaln", "i0", "i0e", "i1", "i1e", "ndtr", "ndtri",
           "log_ndtr", "sinc", "entr", "exp2", "expm1", "log1p", "logsumexp", "softmax",
           "log_softmax", "round", "gammainc", "gammaincc", "erfcx", "zeta", "bessel_j0",
           "bessel_j1", "spherical_bessel_j0", "airy_ai", "bessel_y0", "bessel_y1",
           "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
           "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
           "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
           "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t",
           "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
           "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
           "laguerre_polynomial_l", "legendre_polynomial_p"]


def _float(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"special.{name}(): argument 'input' must be a Tensor, not "
                        f"{type(x).__name__}")
    return x if x.dtype.is_floating_point else x.to(dtypes.get_default_dtype())


def erf(input):
    """The error function."""
    return _pw.unary("erf", input)


def erfc(input):
    """The complementary error function (accurate for large input)."""
    return _pw.erfc(input)


def erfinv(input):
    """The inverse error function."""
    return _pw.erfinv(input)


def expit(input):
    """The logistic sigmoid ``1 / (1 + exp(-input))``."""
    return _pw.unary("sigmoid", input)


def xlogy(input, other):
    """``input * log(other)``, 0 where input == 0 (unless other is NaN)."""
    return _pw.xlogy(input, other)


def xlog1py(input, other):
    """``input * log1p(other)``, 0 where input == 0 (unless other is NaN)."""
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError("special.xlog1py(): expected at least one Tensor argument")
    if not isinstance(other, Tensor):
        from .ops.creation_ops import full
        other = full((), other, dtype=dtypes.get_default_dtype(), device=input.device)
    prod = input * _pw.unary("log1p", other)
    keep = ~other.isnan()
    if isinstance(input, Tensor):
        return _pw.where((input == 0) & keep, 0.0, prod)
    return _pw.where(keep, 0.0, prod) if input == 0 else prod


def gammaln(input):
    """log|Gamma(input)|."""
    return _pw.lgamma(input)


def digamma(input):
    """The digamma function (-inf at 0, NaN at the negative integers)."""
    return _pw.digamma(input)


psi = digamma


def polygamma(n, input):
    """The n-th derivative of digamma."""
    return _pw.polygamma(n, input)


def multigammaln(input, p):
    """The multivariate log-gamma ``sum_j lgamma(a - j/2) + p(p-1)/4 log(pi)``; every element
    must exceed ``(p - 1) / 2``."""
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ArgumentError(f"multigammaln: p has to be a positive integer, got {p!r}")
    x = _float(input, "multigammaln")
    if x._data is not None and x.numel() and not bool((x > (p - 1) / 2).all()):
        raise ArgumentError(f"multigammaln: all elements must be greater than (p-1)/2 = "
                            f"{(p - 1) / 2}")
    out = _pw.lgamma(x)
    for j in range(1, p):
        out = out + _pw.lgamma(x - j / 2)
    return out + p * (p - 1) / 4 * math.log(math.pi)


def i0(input):
    """The modified Bessel function of the first kind, order 0."""
    return _pw.i0(input)


def i0e(input):
    """The exponentially scaled ``exp(-|x|) i0(x)`` (accurate for large |x|)."""
    return _pw.unary("i0e", input)


def i1(input):
    """The modified Bessel function of the first kind, order 1."""
    return _pw.unary("i1", input)


def i1e(input):
    """The exponentially scaled ``exp(-|x|) i1(x)``."""
    return _pw.unary("i1e", input)


def gammainc(input, other):
    """The regularized lower incomplete gamma function ``P(input, other)`` (torch.igamma);
    differentiable in ``other`` only, as in PyTorch."""
    return _sp.igamma(input, other)


def gammaincc(input, other):
    """The regularized upper incomplete gamma function ``Q(input, other) = 1 - P``
    (torch.igammac); differentiable in ``other`` only, as in PyTorch."""
    return _sp.igammac(input, other)


def ndtr(input):
    """The standard normal CDF ``erfc(-x / sqrt(2)) / 2`` (accurate in the lower tail)."""
    return _pw.erfc(_float(input, "ndtr") * (-1.0 / _SQRT2)) * 0.5


def ndtri(input):
    """The standard normal quantile ``sqrt(2) erfinv(2p - 1)`` (see the module docstring for
    the lower-tail accuracy)."""
    return _pw.erfinv(_float(input, "ndtri") * 2.0 - 1.0) * _SQRT2


def log_ndtr(input):
    """log of the standard normal CDF, accurate for very negative input: ``log(erfc(-x/√2)
    / 2)`` (relative-accurate erfc) for x >= -20, the asymptotic series of the Mills ratio
    below (9 terms: below 1e-16 there; at -5 the series would be off by 1e-4)."""
    x = _float(input, "log_ndtr")
    direct = (_pw.erfc(x * (-1.0 / _SQRT2)) * 0.5).log()
    xs = _pw.where(x < -20.0, x, -20.0)
    z = 1.0 / (xs * xs)
    # log Phi(x) = -x^2/2 - log(-x) - log(sqrt(2 pi)) + log(1 - z + 3z^2 - 15z^3 + ...)
    series = 1.0 + z * (-1.0 + z * (3.0 + z * (-15.0 + z * (105.0 + z * (-945.0 + z * (
        10395.0 + z * (-135135.0 + z * 2027025.0)))))))
    tail = xs * xs * -0.5 - (-xs).log() - _LOG_SQRT_2PI + series.log()
    return _pw.where(x < -20.0, tail, direct)


def entr(input):
    """Elementwise entropy ``-x log(x)`` (0 at 0, -inf for x < 0)."""
    x = _float(input, "entr")
    safe = _pw.where(x > 0, x, 1.0)
    out = _pw.where(x > 0, -x * safe.log(), 0.0)
    out = _pw.where(x < 0, -math.inf, out)
    return _pw.where(x.isnan(), x, out)


def exp2(input):
    """2 ** input."""
    return _pw.unary("exp2", input)


def expm1(input):
    """exp(input) - 1, accurate near 0."""
    return _pw.unary("expm1", input)


def log1p(input):
    """log(1 + input), accurate near 0."""
    return _pw.unary("log1p", input)


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(input), dim)) computed stably."""
    return _reduce.logsumexp(input, dim, keepdim)


def softmax(input, dim, dtype=None):
    """Softmax along ``dim`` (optionally computed in ``dtype``)."""
    if dtype is not None:
        input = input.to(dtype)
    return _composite.softmax(input, dim)


def log_softmax(input, dim, dtype=None):
    """log(softmax(input)) along ``dim`` (optionally computed in ``dtype``)."""
    if dtype is not None:
        input = input.to(dtype)
    return _composite.log_softmax(input, dim)


def round(input, decimals=0):
    """Round half to even (optionally at ``decimals`` decimal places)."""
    from . import ops
    return ops.round(input, decimals=decimals)
