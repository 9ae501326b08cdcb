"""The discrete Fourier transform primitives behind ``fw.fft`` (kernels:
``framework/backends/cpu_fft.py``).

Three ops, each over the dims it is given, with ``norm`` one of "backward", "ortho",
"forward" (as ``torch.fft``): ``fft_c2c`` (complex to complex, forward or inverse),
``fft_r2c`` (real to the one-sided complex spectrum, over one dim) and ``fft_c2r`` (a
one-sided Hermitian spectrum back to ``n`` real values, over one dim). Zero-padding and
trimming to ``n``/``s`` are done by the public functions with ``pad``/``narrow``, so the
primitives keep their input sizes and their VJPs are the adjoint transforms:

- c2c: ``fft(norm)`` and ``ifft(swap(norm))`` are adjoint (``swap`` exchanges "backward"
  and "forward"), so the gradient is the other direction with the swapped norm;
- r2c: the gradient of the real input is ``Re(ifft(pad(g, n), swap(norm)))``;
- c2r: the gradient of the one-sided input is ``rfft(g, swap(norm))`` with the bins that
  stand for two conjugate bins of the full spectrum (all but DC and Nyquist) doubled.
"""

from __future__ import annotations

from .. import dtypes
from ..dtypes import COMPLEX
from ..errors import ArgumentError, DTypeError
from .registry import apply, register

FFT = "fft"  # op group: opaque to fusion
_SWAP = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _check_sizes(x, dims, name):
    for d in dims:
        if isinstance(x.shape[d], int) and x.shape[d] < 1:
            raise ArgumentError(f"{name}: Invalid number of data points ({x.shape[d]}) "
                                f"specified")


def _c2c_meta(x, *, dims, norm, forward):
    if x.dtype.category != COMPLEX:
        raise DTypeError(f"fft_c2c: expected a complex tensor, got {x.dtype.name}")
    _check_sizes(x, dims, "fft")
    return x.shape, x.dtype


def _c2c_vjp(g, args, out, dims, norm, forward):
    return (apply(C2C, g, dims=dims, norm=_SWAP[norm], forward=not forward),)


def _r2c_meta(x, *, dim, norm):
    if x.dtype not in (dtypes.float32, dtypes.float64):
        raise DTypeError(f"fft_r2c: expected a float32 or float64 tensor, got {x.dtype.name}")
    _check_sizes(x, (dim,), "rfft")
    shape = list(x.shape)
    shape[dim] = shape[dim] // 2 + 1
    return tuple(shape), x.dtype.to_complex()


def _r2c_vjp(g, args, out, dim, norm):
    from .complex_ops import real
    from .movement import pad
    n = args[0].shape[dim]
    extra = n - g.shape[dim]
    pads = [0, 0] * (g.ndim - 1 - dim) + [0, extra]
    full = pad(g, pads) if extra else g
    return (real(apply(C2C, full, dims=(dim,), norm=_SWAP[norm], forward=False)),)


def _c2r_meta(x, *, dim, norm, n):
    if x.dtype.category != COMPLEX:
        raise DTypeError(f"fft_c2r: expected a complex tensor, got {x.dtype.name}")
    if n < 1:
        raise ArgumentError(f"irfft: Invalid number of data points ({n}) specified")
    if x.shape[dim] != n // 2 + 1:
        raise ArgumentError(f"fft_c2r: expected {n // 2 + 1} bins along dim {dim} for "
                            f"n={n}, got {x.shape[dim]}")
    shape = list(x.shape)
    shape[dim] = n
    return tuple(shape), x.dtype.to_real()


def _c2r_vjp(g, args, out, dim, norm, n):
    from .creation_ops import full
    from .movement import cat
    gx = apply(R2C, g, dim=dim, norm=_SWAP[norm])
    m = gx.shape[dim]
    # bins 1 .. (n-1)//2 stand for themselves and their conjugate mirror: weight 2;
    # DC (and Nyquist for even n) once
    inner = (n - 1) // 2
    parts = [full((1,), 1.0, dtype=g.dtype, device=g.device)]
    if inner:
        parts.append(full((inner,), 2.0, dtype=g.dtype, device=g.device))
    if m - 1 - inner:
        parts.append(full((m - 1 - inner,), 1.0, dtype=g.dtype, device=g.device))
    w = cat(parts) if len(parts) > 1 else parts[0]
    w = w.reshape([m if i == dim else 1 for i in range(g.ndim)])
    return (gx * w,)


C2C = register("fft_c2c", FFT, _c2c_meta, vjp=_c2c_vjp, saves_args=(), complex_ok=True)
R2C = register("fft_r2c", FFT, _r2c_meta, vjp=_r2c_vjp, saves_args=(), complex_ok=True)
C2R = register("fft_c2r", FFT, _c2r_meta, vjp=_c2r_vjp, saves_args=(), complex_ok=True)


def fft_c2c(x, dims, norm, forward):
    """The complex DFT of ``x`` over ``dims`` (inverse when ``forward`` is False)."""
    return apply(C2C, x, dims=tuple(dims), norm=norm, forward=forward)


def fft_r2c(x, dim, norm):
    """The one-sided DFT (``n // 2 + 1`` bins) of real ``x`` over ``dim``."""
    return apply(R2C, x, dim=dim, norm=norm)


def fft_c2r(x, dim, norm, n):
    """The inverse of :func:`fft_r2c`: ``n`` real values from ``n // 2 + 1`` bins."""
    return apply(C2R, x, dim=dim, norm=norm, n=n)
