"""Window functions for :func:`framework.stft` (``torch.hann_window`` and friends): 1-D
tensors of the default float dtype computed on the host. ``periodic=True`` (the default, as
in PyTorch) gives the first ``window_length`` values of the symmetric window of length
``window_length + 1``, the form spectral analysis wants; a length of 1 gives ``[1.]`` and
0 an empty tensor."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import ArgumentError, DTypeError
from ..tensor import Tensor


def _window(name, window_length, periodic, dtype, device, requires_grad, formula) -> Tensor:
    from ..creation import tensor
    if not isinstance(window_length, int) or isinstance(window_length, bool) \
            or window_length < 0:
        raise ArgumentError(f"{name}: window_length must be a non-negative int, got "
                            f"{window_length!r}")
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
    if dt.category != dtypes.FLOAT:
        raise DTypeError(f"{name} expects a floating point dtype, got {dt.name}")
    if window_length <= 1:
        values = np.ones(window_length)
    else:
        n = window_length + 1 if periodic else window_length
        values = formula(np.arange(n, dtype=np.float64), n)[:window_length]
    out = tensor(values, dtype=dt, device=device)
    if requires_grad:
        out.requires_grad_(True)
    return out


def hann_window(window_length, periodic=True, *, dtype=None, device=None,
                requires_grad=False) -> Tensor:
    """The Hann window ``0.5 - 0.5 cos(2 pi k / (N - 1))`` (``torch.hann_window``)."""
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad,
                   lambda k, n: 0.5 - 0.5 * np.cos(2 * np.pi * k / (n - 1)))


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None,
                   device=None, requires_grad=False) -> Tensor:
    """The Hamming window ``alpha - beta cos(2 pi k / (N - 1))``
    (``torch.hamming_window``)."""
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad,
                   lambda k, n: alpha - beta * np.cos(2 * np.pi * k / (n - 1)))


def blackman_window(window_length, periodic=True, *, dtype=None, device=None,
                    requires_grad=False) -> Tensor:
    """The Blackman window ``0.42 - 0.5 cos(2 pi k / (N - 1)) + 0.08 cos(4 pi k / (N - 1))``
    (``torch.blackman_window``)."""
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad,
                   lambda k, n: 0.42 - 0.5 * np.cos(2 * np.pi * k / (n - 1))
                   + 0.08 * np.cos(4 * np.pi * k / (n - 1)))


def bartlett_window(window_length, periodic=True, *, dtype=None, device=None,
                    requires_grad=False) -> Tensor:
    """The triangular Bartlett window ``1 - |2k / (N - 1) - 1|``
    (``torch.bartlett_window``)."""
    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad,
                   lambda k, n: 1.0 - np.abs(2.0 * k / (n - 1) - 1.0))


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, device=None,
                  requires_grad=False) -> Tensor:
    """The Kaiser window ``I0(beta sqrt(1 - (2k / (N - 1) - 1)^2)) / I0(beta)``
    (``torch.kaiser_window``)."""
    return _window("kaiser_window", window_length, periodic, dtype, device, requires_grad,
                   lambda k, n: np.i0(beta * np.sqrt(np.clip(
                       1.0 - (2.0 * k / (n - 1) - 1.0) ** 2, 0.0, None))) / np.i0(beta))


METHODS = ""
INPLACE_METHODS = ""

__all__ = ["hann_window", "hamming_window", "blackman_window", "bartlett_window",
           "kaiser_window"]
