"""``fw.signal.windows`` (``torch.signal.windows``): SciPy-style window functions.

Unlike ``fw.hann_window`` and friends (``periodic=True`` by default, for spectral
analysis), these take ``sym=True`` by default: a symmetric window for filter design.
``sym=False`` gives the periodic window. Each window is computed on the host in float64
and returned as a 1-D tensor of ``dtype`` (float32 or float64, as in PyTorch); a length
of 0 gives an empty tensor.
"""

# ruff: noqa: N803  (the window length is `M`, as in PyTorch and SciPy: callers may pass M=)
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .. import dtypes
from ..errors import ArgumentError, FwTypeError

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine",
           "general_hamming", "hamming", "hann", "kaiser", "nuttall"]


def _check(name, M, dtype):
    """PyTorch's common checks; returns the resolved dtype."""
    if not isinstance(M, int) or isinstance(M, bool):
        raise FwTypeError(f"{name}: window length M must be an int, got {type(M).__name__}")
    if M < 0:
        raise ArgumentError(f"{name} requires non-negative window length, got M={M}")
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
    if dt not in (dtypes.float32, dtypes.float64):
        raise ArgumentError(f"{name} expects float32 or float64 dtypes, got: {dt.name}")
    return dt


def _as_tensor(values, dt, device, requires_grad):
    from ..creation import tensor
    out = tensor(np.asarray(values, dtype=np.float64), dtype=dt, device=device)
    if requires_grad:
        out.requires_grad_(True)
    return out


def _positions(M, start, step):
    """``M`` points ``start, start + step, ...``, the grid every window is a function of."""
    return start + step * np.arange(M, dtype=np.float64)


def _span(M, sym):
    """The denominator of the window's phase: ``M - 1`` symmetric, ``M`` periodic."""
    return M - 1 if sym else M


def exponential(M, *, center=None, tau=1.0, sym=True, dtype=None, device=None,
                requires_grad=False):
    """The exponential (Poisson) window ``exp(-|n - center| / tau)``; ``center`` defaults
    to the middle of the window and may only be given for a periodic window."""
    dt = _check("exponential", M, dtype)
    if tau <= 0:
        raise ArgumentError(f"exponential: Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ArgumentError("exponential: Center must be None for symmetric windows")
    if center is None:
        center = (M if not sym and M > 1 else M - 1) / 2.0
    k = _positions(M, -center / tau, 1.0 / tau)
    return _as_tensor(np.exp(-np.abs(k)), dt, device, requires_grad)


def cosine(M, *, sym=True, dtype=None, device=None, requires_grad=False):
    """The cosine (sine) window ``sin(pi (n + 0.5) / M)``, SciPy's definition."""
    dt = _check("cosine", M, dtype)
    step = np.pi / (M + 1 if not sym and M > 1 else max(M, 1))
    return _as_tensor(np.sin(_positions(M, 0.5 * step, step)), dt, device,
                      requires_grad)


def gaussian(M, *, std=1.0, sym=True, dtype=None, device=None, requires_grad=False):
    """The Gaussian window ``exp(-(n - c)^2 / (2 std^2))`` centred on the window."""
    dt = _check("gaussian", M, dtype)
    if std <= 0:
        raise ArgumentError(f"gaussian: Standard deviation must be positive, got: {std} "
                            "instead.")
    step = 1.0 / (std * np.sqrt(2.0))
    start = -(M if not sym and M > 1 else M - 1) / 2.0
    k = _positions(M, start * step, step)
    return _as_tensor(np.exp(-k * k), dt, device, requires_grad)


def kaiser(M, *, beta=12.0, sym=True, dtype=None, device=None, requires_grad=False):
    """The Kaiser window ``I0(beta sqrt(1 - (2n / N - 1)^2)) / I0(beta)`` with
    ``N = M - 1`` (symmetric) or ``M`` (periodic)."""
    dt = _check("kaiser", M, dtype)
    if beta < 0:
        raise ArgumentError(f"kaiser: beta must be non-negative, got: {beta} instead.")
    if M <= 1:
        return _as_tensor(np.ones(M), dt, device, requires_grad)
    k = np.minimum(_positions(M, -beta, 2.0 * beta / _span(M, sym)), beta)
    return _as_tensor(np.i0(np.sqrt(np.maximum(beta * beta - k * k, 0.0))) / np.i0(beta),
                      dt, device, requires_grad)


def bartlett(M, *, sym=True, dtype=None, device=None, requires_grad=False):
    """The triangular Bartlett window ``1 - |2n / N - 1|``."""
    dt = _check("bartlett", M, dtype)
    if M <= 1:
        return _as_tensor(np.ones(M), dt, device, requires_grad)
    k = _positions(M, -1.0, 2.0 / _span(M, sym))
    return _as_tensor(1.0 - np.abs(k), dt, device, requires_grad)


def general_cosine(M, *, a, sym=True, dtype=None, device=None, requires_grad=False):
    """The general cosine window ``sum_i (-1)^i a_i cos(2 pi i n / N)``."""
    dt = _check("general_cosine", M, dtype)
    if M <= 1:
        return _as_tensor(np.ones(M), dt, device, requires_grad)
    if not isinstance(a, Iterable) or isinstance(a, (str, bytes)):
        raise FwTypeError("general_cosine: Coefficients must be a list/tuple")
    coeffs = np.asarray([float(w) for w in a], dtype=np.float64)
    if coeffs.size == 0:
        raise ArgumentError("general_cosine: Coefficients cannot be empty")
    k = _positions(M, 0.0, 2.0 * np.pi / _span(M, sym))
    signs = (-1.0) ** np.arange(coeffs.size)
    values = ((signs * coeffs)[:, None] * np.cos(np.arange(coeffs.size)[:, None] * k)).sum(0)
    return _as_tensor(values, dt, device, requires_grad)


def general_hamming(M, *, alpha=0.54, sym=True, dtype=None, device=None,
                    requires_grad=False):
    """The general Hamming window ``alpha - (1 - alpha) cos(2 pi n / N)``."""
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, device=device,
                          requires_grad=requires_grad)


def hamming(M, *, sym=True, dtype=None, device=None, requires_grad=False):
    """The Hamming window ``0.54 - 0.46 cos(2 pi n / N)``."""
    return general_hamming(M, sym=sym, dtype=dtype, device=device,
                           requires_grad=requires_grad)


def hann(M, *, sym=True, dtype=None, device=None, requires_grad=False):
    """The Hann window ``0.5 - 0.5 cos(2 pi n / N)``."""
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, device=device,
                           requires_grad=requires_grad)


def blackman(M, *, sym=True, dtype=None, device=None, requires_grad=False):
    """The Blackman window ``0.42 - 0.5 cos(2 pi n / N) + 0.08 cos(4 pi n / N)``."""
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, device=device,
                          requires_grad=requires_grad)


def nuttall(M, *, sym=True, dtype=None, device=None, requires_grad=False):
    """Nuttall's minimum 4-term Blackman-Harris window."""
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym,
                          dtype=dtype, device=device, requires_grad=requires_grad)
