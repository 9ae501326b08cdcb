"""``fw.fft``: discrete Fourier transforms with ``torch.fft``'s names, arguments and
semantics (``n``/``s`` zero-pad or trim the input, ``dim``, ``norm`` = "backward" (default),
"ortho" or "forward"), differentiable, on the CPU.

Real input promotes to complex (float32 -> complex64, float64 -> complex128; integers and
bools through the default float dtype). The transforms are three registered primitives
(framework/ops/fft_ops.py) composed here with ``narrow``/``pad`` for ``n``/``s``.
"""

from __future__ import annotations

import numpy as np

from . import dtypes
from .errors import ArgumentError, DTypeError, FwTypeError
from .ops.complex_ops import conj, to_complex_input
from .ops.fft_ops import fft_c2c, fft_c2r, fft_r2c
from .ops.movement import pad, roll
from .ops.pointwise import cast
from .ops.shapes import normalize_dim
from .tensor import Tensor

_NORMS = ("backward", "ortho", "forward")
_SWAP = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _norm(norm):
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise ArgumentError(f'Invalid normalization mode: "{norm}" (expected "backward", '
                            '"ortho" or "forward")')
    return norm


def _tensor(x, name):
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{name}(): argument 'input' must be a Tensor, not "
                          f"{type(x).__name__}")
    return x


def _resize(x, dim, n, name):
    """``x`` trimmed or zero-padded (at the end) to ``n`` elements along ``dim``."""
    if n < 1:
        raise ArgumentError(f"{name}: Invalid number of data points ({n}) specified")
    cur = x.shape[dim]
    if n < cur:
        return x.narrow(dim, 0, n)
    if n > cur:
        return pad(x, [0, 0] * (x.ndim - 1 - dim) + [0, n - cur])
    return x


def _real_input(x, name):
    """A float32/float64 tensor for the real-input transforms (complex is an error)."""
    _tensor(x, name)
    if x.dtype.is_complex:
        raise DTypeError(f"{name} expects a real input tensor, but got {x.dtype.name}")
    if x.dtype.category < dtypes.FLOAT:
        x = cast(x, dtypes.get_default_dtype())
    if x.dtype not in (dtypes.float32, dtypes.float64):  # float16/bfloat16
        x = cast(x, dtypes.float32)
    return x


def _dims_and_sizes(x, s, dim, name):
    """torch.fft's rules: dims default to all (or the last ``len(s)``); sizes to the
    input's."""
    if dim is None:
        dims = list(range(x.ndim)) if s is None else list(range(x.ndim - len(s), x.ndim))
    else:
        dims = [dim] if isinstance(dim, int) else list(dim)
    dims = [normalize_dim(d, x.ndim, name) for d in dims]
    if len(set(dims)) != len(dims):
        raise ArgumentError(f"{name}: dims must be unique, got {dims}")
    if s is None:
        sizes = [None] * len(dims)
    else:
        sizes = list(s)
        if len(sizes) != len(dims):
            raise ArgumentError(f"{name}: When given, dim and shape arguments must have the "
                                f"same length (got s={sizes}, dim={dims})")
    return dims, sizes


# ---------------------------------------------------------------------------------------
# complex to complex
def _c2c(input, s, dim, norm, forward, name):
    x = to_complex_input(_tensor(input, name), name)
    dims, sizes = _dims_and_sizes(x, s, dim, name)
    for d, n in zip(dims, sizes):
        if n is not None and n != -1:
            x = _resize(x, d, n, name)
    if not dims:
        return x.clone()
    return fft_c2c(x, dims, _norm(norm), forward)


def fft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The one-dimensional DFT of ``input`` along ``dim`` (``n``: trim/zero-pad first)."""
    return _c2c(input, None if n is None else [n], dim, norm, True, "fft")


def ifft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The one-dimensional inverse DFT along ``dim``."""
    return _c2c(input, None if n is None else [n], dim, norm, False, "ifft")


def fft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    """The two-dimensional DFT over ``dim`` (the last two by default)."""
    return _c2c(input, s, dim, norm, True, "fft2")


def ifft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    """The two-dimensional inverse DFT."""
    return _c2c(input, s, dim, norm, False, "ifft2")


def fftn(input, s=None, dim=None, norm=None) -> Tensor:
    """The N-dimensional DFT over ``dim`` (every dim, or the last ``len(s)``)."""
    return _c2c(input, s, dim, norm, True, "fftn")


def ifftn(input, s=None, dim=None, norm=None) -> Tensor:
    """The N-dimensional inverse DFT."""
    return _c2c(input, s, dim, norm, False, "ifftn")


# ---------------------------------------------------------------------------------------
# real input, one-sided spectrum
def _r2c(input, s, dim, norm, name):
    x = _real_input(input, name)
    dims, sizes = _dims_and_sizes(x, s, dim, name)
    if not dims:
        raise ArgumentError(f"{name} must transform at least one axis")
    for d, n in zip(dims, sizes):
        if n is not None and n != -1:
            x = _resize(x, d, n, name)
    norm = _norm(norm)
    out = fft_r2c(x, dims[-1], norm)
    if len(dims) > 1:
        out = fft_c2c(out, dims[:-1], norm, True)
    return out


def rfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The DFT of real ``input``: the ``n // 2 + 1`` non-negative frequencies."""
    return _r2c(input, None if n is None else [n], dim, norm, "rfft")


def rfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    """The two-dimensional DFT of real input (one-sided along the last dim)."""
    return _r2c(input, s, dim, norm, "rfft2")


def rfftn(input, s=None, dim=None, norm=None) -> Tensor:
    """The N-dimensional DFT of real input (one-sided along the last transformed dim)."""
    return _r2c(input, s, dim, norm, "rfftn")


def _c2r(input, s, dim, norm, name):
    x = to_complex_input(_tensor(input, name), name)
    dims, sizes = _dims_and_sizes(x, s, dim, name)
    if not dims:
        raise ArgumentError(f"{name} must transform at least one axis")
    for d, n in zip(dims[:-1], sizes[:-1]):
        if n is not None and n != -1:
            x = _resize(x, d, n, name)
    last = dims[-1]
    n = sizes[-1]
    if n is None or n == -1:
        n = 2 * (x.shape[last] - 1)
    if n < 1:
        raise ArgumentError(f"{name}: Invalid number of data points ({n}) specified")
    x = _resize(x, last, n // 2 + 1, name)
    norm = _norm(norm)
    if len(dims) > 1:
        x = fft_c2c(x, dims[:-1], norm, False)
    return fft_c2r(x, last, norm, n)


def irfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The inverse of :func:`rfft`: ``n`` real values (``2 * (bins - 1)`` by default); the
    imaginary parts of the DC (and Nyquist) bins are ignored."""
    return _c2r(input, None if n is None else [n], dim, norm, "irfft")


def irfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    """The inverse of :func:`rfft2`."""
    return _c2r(input, s, dim, norm, "irfft2")


def irfftn(input, s=None, dim=None, norm=None) -> Tensor:
    """The inverse of :func:`rfftn`."""
    return _c2r(input, s, dim, norm, "irfftn")


def hfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The DFT of a Hermitian-symmetric signal given by its first half: ``n`` real values
    (``irfft`` of the conjugate with the normalization mirrored, as torch.fft.hfft)."""
    return _c2r(conj(to_complex_input(_tensor(input, "hfft"), "hfft")),
                None if n is None else [n], dim, _SWAP[_norm(norm)], "hfft")


def ihfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The inverse of :func:`hfft`: the one-sided spectrum of real ``input``."""
    return conj(_r2c(input, None if n is None else [n], dim, _SWAP[_norm(norm)], "ihfft"))


# ---------------------------------------------------------------------------------------
# frequencies and shifts
def _freq_tensor(values, dtype, device, requires_grad):
    from .creation import tensor
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
    t = tensor(values, dtype=dt, device=device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def fftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The sample frequencies of an ``n``-point DFT with sample spacing ``d``:
    ``[0, 1, ..., n//2 - 1, -(n//2), ..., -1] / (d * n)`` (``(n - 1) // 2`` positive)."""
    if n < 1:
        raise ArgumentError(f"fftfreq: n must be positive, got {n}")
    return _freq_tensor(np.fft.fftfreq(n, d), dtype, device, requires_grad)


def rfftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The ``n // 2 + 1`` non-negative sample frequencies of an ``n``-point real DFT."""
    if n < 1:
        raise ArgumentError(f"rfftfreq: n must be positive, got {n}")
    return _freq_tensor(np.fft.rfftfreq(n, d), dtype, device, requires_grad)


def _shift(input, dim, sign, name):
    x = _tensor(input, name)
    if dim is None:
        dims = list(range(x.ndim))
    else:
        dims = [dim] if isinstance(dim, int) else list(dim)
    dims = [normalize_dim(d, x.ndim, name) for d in dims]
    if not dims:
        return x.clone()
    shifts = [sign * (x.shape[d] // 2) for d in dims]
    return roll(x, shifts, dims)


def fftshift(input, dim=None) -> Tensor:
    """Move the zero frequency to the centre (a roll by ``n // 2`` along ``dim``, all dims
    by default)."""
    return _shift(input, dim, 1, "fftshift")


def ifftshift(input, dim=None) -> Tensor:
    """The inverse of :func:`fftshift` (a roll by ``-(n // 2)``)."""
    return _shift(input, dim, -1, "ifftshift")


__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2",
           "irfft2", "rfftn", "irfftn", "hfft", "ihfft", "fftfreq", "rfftfreq", "fftshift",
           "ifftshift"]
