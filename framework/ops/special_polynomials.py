"""torch.special's orthogonal polynomials ``f(input, n)`` as binary elementwise primitives:
Chebyshev T, U, V, W and their shifted forms, Hermite H and He, Laguerre L, Legendre P.

They join ``pointwise``'s binary op table like ``igamma``: one algorithm per polynomial in
``backends/special_poly.py`` (PyTorch's special values, trigonometric forms and
recurrences), rendered as the CPU kernel, a Triton helper and ONNX nodes. Either argument
may be a Python number; they broadcast, and the result dtype is PyTorch's float promotion of
the two (integers and bools compute in the default float dtype). ``n`` is truncated to an
integer (n < 0 gives 0). The recurrence runs as many rounds as the largest degree asks, up
to ``special_poly.MAX_STEPS`` (65536): beyond, the CPU kernel raises an ArgumentError and
the Triton and ONNX renderings give NaN for those elements (Chebyshev with |x| > 1 stops
early on its own, once the recurrence has overflowed). Not differentiable, as in PyTorch
(the results do not require grad).
"""

from __future__ import annotations

from .. import dtypes
from ..errors import DTypeError
from ..tensor import Tensor
from .pointwise import BINARY_OPS, _binary_meta_for
from .registry import BINARY, apply, register
from .torch_extra import _float_pair

NAMES = ("chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
         "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t",
         "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
         "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
         "laguerre_polynomial_l", "legendre_polynomial_p")
for _name in NAMES:
    BINARY_OPS[_name] = register(_name, BINARY, _binary_meta_for(_name))


def _is_complex(v):
    return v.dtype.category == dtypes.COMPLEX if isinstance(v, Tensor) else \
        isinstance(v, complex)


def _what(v):
    return v.dtype.name if isinstance(v, Tensor) else type(v).__name__


def _polynomial(name, input, n):
    if _is_complex(input) or _is_complex(n):
        raise DTypeError(f"{name}: complex operands are not supported (got {_what(input)} "
                         f"and {_what(n)})")
    x, m = _float_pair(input, n, name)
    return apply(BINARY_OPS[name], x, m)


def chebyshev_polynomial_t(input, n) -> Tensor:
    """The Chebyshev polynomial of the first kind ``T_n(input)``."""
    return _polynomial("chebyshev_polynomial_t", input, n)


def chebyshev_polynomial_u(input, n) -> Tensor:
    """The Chebyshev polynomial of the second kind ``U_n(input)``."""
    return _polynomial("chebyshev_polynomial_u", input, n)


def chebyshev_polynomial_v(input, n) -> Tensor:
    """The Chebyshev polynomial of the third kind ``V_n(input)``."""
    return _polynomial("chebyshev_polynomial_v", input, n)


def chebyshev_polynomial_w(input, n) -> Tensor:
    """The Chebyshev polynomial of the fourth kind ``W_n(input)``."""
    return _polynomial("chebyshev_polynomial_w", input, n)


def shifted_chebyshev_polynomial_t(input, n) -> Tensor:
    """The shifted Chebyshev polynomial of the first kind ``T_n(2 input - 1)``."""
    return _polynomial("shifted_chebyshev_polynomial_t", input, n)


def shifted_chebyshev_polynomial_u(input, n) -> Tensor:
    """The shifted Chebyshev polynomial of the second kind ``U_n(2 input - 1)``."""
    return _polynomial("shifted_chebyshev_polynomial_u", input, n)


def shifted_chebyshev_polynomial_v(input, n) -> Tensor:
    """The shifted Chebyshev polynomial of the third kind ``V_n(2 input - 1)``."""
    return _polynomial("shifted_chebyshev_polynomial_v", input, n)


def shifted_chebyshev_polynomial_w(input, n) -> Tensor:
    """The shifted Chebyshev polynomial of the fourth kind ``W_n(2 input - 1)`` (PyTorch's
    +-1 where ``cos(acos(2x - 1) / 2)`` rounds to 1, next to x = 1, is kept)."""
    return _polynomial("shifted_chebyshev_polynomial_w", input, n)


def hermite_polynomial_h(input, n) -> Tensor:
    """The physicists' Hermite polynomial ``H_n(input)`` (NaN for n above 128 in single
    precision, 512 in double, as PyTorch)."""
    return _polynomial("hermite_polynomial_h", input, n)


def hermite_polynomial_he(input, n) -> Tensor:
    """The probabilists' Hermite polynomial ``He_n(input)`` (NaN for n above 128 in single
    precision, 512 in double, as PyTorch)."""
    return _polynomial("hermite_polynomial_he", input, n)


def laguerre_polynomial_l(input, n) -> Tensor:
    """The Laguerre polynomial ``L_n(input)``."""
    return _polynomial("laguerre_polynomial_l", input, n)


def legendre_polynomial_p(input, n) -> Tensor:
    """The Legendre polynomial ``P_n(input)``."""
    return _polynomial("legendre_polynomial_p", input, n)
