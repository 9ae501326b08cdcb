"""torch.special's incomplete gamma functions, Hurwitz zeta, erfcx and the Bessel/Airy
functions as elementwise primitives.

They join ``pointwise``'s unary and binary op tables (so every backend, the compiler and
the ONNX exporter treat them like ``exp`` or ``atan2``); the algorithms are written once in
``backends/special_gamma.py`` and ``backends/special_bessel.py`` and rendered for NumPy,
Triton and ONNX. Gradients are PyTorch's: ``erfcx``; ``igamma``/``igammac`` and ``zeta``
only with respect to their second argument (asking for the first raises at backward, as
PyTorch's ``not_implemented``); the Bessel and Airy functions are not differentiable (their
results do not require grad, as PyTorch's ``non_differentiable``).

Bessel Y0/Y1, the modified Bessel I0/I1/K0/K1 and the scaled K0/K1 come from
``backends/special_bessel_more.py``; the orthogonal polynomials are binary primitives of
``special_polynomials.py`` (imported at the end).
"""

from __future__ import annotations

import math

from ..tensor import Tensor
from .pointwise import (BINARY_OPS, FLOAT_ONLY, UNARY_OPS, _binary_meta_for, _grads2,
                        _unary_meta, unary)
from .registry import BINARY, UNARY, apply, register
from .torch_extra import _float_pair

__all__ = ["igamma", "igammac"]
METHODS = "igamma igammac"
INPLACE_METHODS = "igamma igammac"

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erfcx_vjp(g, args, out):
    return (g * (args[0] * out * 2.0 - _TWO_OVER_SQRT_PI),)


# unary: name -> vjp (None: not differentiable, as in PyTorch)
_UNARY = {"erfcx": _erfcx_vjp, "bessel_j0": None, "bessel_j1": None,
          "spherical_bessel_j0": None, "airy_ai": None, "bessel_y0": None, "bessel_y1": None,
          "modified_bessel_i0": None, "modified_bessel_i1": None, "modified_bessel_k0": None,
          "modified_bessel_k1": None, "scaled_modified_bessel_k0": None,
          "scaled_modified_bessel_k1": None}
for _name, _vjp in _UNARY.items():
    UNARY_OPS[_name] = register(_name, UNARY, _unary_meta, vjp=_vjp,
                                saves_output=_vjp is not None)
    FLOAT_ONLY.add(_name)


def _not_implemented(what):
    raise NotImplementedError(f"the derivative for '{what}' is not implemented.")


def _igamma_slope(a, x):
    """d/dx P(a, x) = x^(a-1) e^-x / Gamma(a) (PyTorch's formula)."""
    return ((a - 1) * x.log() - x - unary("lgamma", a)).exp() if isinstance(a, Tensor) \
        else ((a - 1) * x.log() - x - math.lgamma(a)).exp()


def _igamma_vjp(sign, name):
    def vjp(g, args, out):
        a, x = args
        if isinstance(a, Tensor) and a.requires_grad:
            _not_implemented(f"{name}: input")
        gx = g * _igamma_slope(a, x) * sign if isinstance(x, Tensor) else None
        return _grads2(a, x, None, gx)
    return vjp


def _zeta_vjp(g, args, out):
    s, q = args
    if isinstance(s, Tensor) and s.requires_grad:
        _not_implemented("zeta")
    gq = g * -s * zeta(s + 1.0, q) if isinstance(q, Tensor) else None
    return _grads2(s, q, None, gq)


_BINARY = {"igamma": _igamma_vjp(1.0, "igamma"), "igammac": _igamma_vjp(-1.0, "igammac"),
           "zeta": _zeta_vjp}
for _name, _vjp in _BINARY.items():
    BINARY_OPS[_name] = register(_name, BINARY, _binary_meta_for(_name), vjp=_vjp)


def _float_binary(name, a, b):
    """Promote as PyTorch's binary float ops (ints and bools compute in the default float
    dtype), then apply the primitive."""
    a, b = _float_pair(a, b, name)
    return apply(BINARY_OPS[name], a, b)


# ---------------------------------------------------------------------------------------
# public functions
def igamma(input, other) -> Tensor:
    """The regularized lower incomplete gamma function P(input, other) (torch.igamma,
    torch.special.gammainc); differentiable in ``other`` only, as in PyTorch."""
    return _float_binary("igamma", input, other)


def igammac(input, other) -> Tensor:
    """The regularized upper incomplete gamma function Q(input, other) = 1 - P
    (torch.igammac, torch.special.gammaincc)."""
    return _float_binary("igammac", input, other)


def zeta(input, other) -> Tensor:
    """The Hurwitz zeta function ``sum_n (other + n)^-input`` (torch.special.zeta; either
    argument may be a Python number); differentiable in ``other`` only, as in PyTorch."""
    return _float_binary("zeta", input, other)


def erfcx(input) -> Tensor:
    """The scaled complementary error function ``exp(x^2) erfc(x)``, accurate for large x."""
    return unary("erfcx", input)


def bessel_j0(input) -> Tensor:
    """The Bessel function of the first kind of order 0 (not differentiable, as PyTorch)."""
    return unary("bessel_j0", input)


def bessel_j1(input) -> Tensor:
    """The Bessel function of the first kind of order 1 (not differentiable, as PyTorch)."""
    return unary("bessel_j1", input)


def spherical_bessel_j0(input) -> Tensor:
    """The spherical Bessel function of the first kind of order 0, ``sin(x) / x``."""
    return unary("spherical_bessel_j0", input)


def airy_ai(input) -> Tensor:
    """The Airy function Ai (not differentiable, as PyTorch)."""
    return unary("airy_ai", input)


def bessel_y0(input) -> Tensor:
    """The Bessel function of the second kind of order 0 (-inf at 0, NaN for x < 0 and at
    +inf, as PyTorch; not differentiable)."""
    return unary("bessel_y0", input)


def bessel_y1(input) -> Tensor:
    """The Bessel function of the second kind of order 1 (-inf at 0, NaN for x < 0 and at
    +inf, as PyTorch; not differentiable)."""
    return unary("bessel_y1", input)


def modified_bessel_i0(input) -> Tensor:
    """The modified Bessel function of the first kind of order 0: ``fw.special.i0``'s values,
    but NaN at +-inf and not differentiable, as PyTorch's ``modified_bessel_i0``."""
    return unary("modified_bessel_i0", input)


def modified_bessel_i1(input) -> Tensor:
    """The modified Bessel function of the first kind of order 1: ``fw.special.i1``'s values,
    but NaN at +-inf and not differentiable, as PyTorch's ``modified_bessel_i1``."""
    return unary("modified_bessel_i1", input)


def modified_bessel_k0(input) -> Tensor:
    """The modified Bessel function of the second kind of order 0 (+inf at 0, NaN for
    x < 0; not differentiable)."""
    return unary("modified_bessel_k0", input)


def modified_bessel_k1(input) -> Tensor:
    """The modified Bessel function of the second kind of order 1 (+inf at 0, NaN for
    x < 0; not differentiable)."""
    return unary("modified_bessel_k1", input)


def scaled_modified_bessel_k0(input) -> Tensor:
    """``exp(x) K0(x)``, accurate where K0 underflows (not differentiable)."""
    return unary("scaled_modified_bessel_k0", input)


def scaled_modified_bessel_k1(input) -> Tensor:
    """``exp(x) K1(x)``, accurate where K1 underflows (not differentiable)."""
    return unary("scaled_modified_bessel_k1", input)


from . import special_polynomials  # noqa: E402,F401  (registers the polynomial primitives)
