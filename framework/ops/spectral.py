"""The short-time Fourier transform and its inverse (``torch.stft`` / ``torch.istft``),
composed from differentiable ops: reflect (or other) padding, ``unfold`` for the frames, a
multiplication by the window (zero-padded to ``n_fft``, centered), ``fw.fft.rfft``/``fft``
over each frame, and for the inverse ``irfft``/``ifft``, the window again and an
overlap-add (``index_add``) divided by the overlap-added squared window. Autograd reaches
the input and the window; ``fw.compile`` traces them like any other composite.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import dtypes
from .._state import tls
from ..errors import ArgumentError, DTypeError, FwTypeError, ShapeError
from ..tensor import Tensor

_WARNED = set()


def _warn_once(key, msg):
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(msg, UserWarning, stacklevel=3)


def _int(value, fn, name, default):
    if value is None and name != "n_fft":
        return default
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise FwTypeError(f"{fn}: {name} must be an int, got {type(value).__name__}")
    return int(value)


def _padded_window(window, win_length, n_fft, like, device, fn):
    """The window (ones when None) zero-padded on both sides to ``n_fft``, centered."""
    from ..creation import ones
    from .movement import pad
    if window is None:
        window = ones(win_length, dtype=like, device=device)
    elif not isinstance(window, Tensor):
        raise FwTypeError(f"{fn}: window must be a Tensor or None, got "
                          f"{type(window).__name__}")
    elif window.ndim != 1 or window.shape[0] != win_length:
        raise ShapeError(f"{fn}: expected a 1D window tensor of size equal to win_length="
                         f"{win_length}, but got window with size {list(window.shape)}")
    if win_length < n_fft:
        left = (n_fft - win_length) // 2
        window = pad(window, [left, n_fft - win_length - left])
    return window


def stft(input, n_fft, hop_length=None, win_length=None, window=None, center=True,
         pad_mode="reflect", normalized=False, onesided=None, return_complex=None) -> Tensor:
    """The short-time Fourier transform of a 1-D signal or a batch ``(B, L)`` of them, as
    ``torch.stft``: frames of ``n_fft`` samples ``hop_length`` apart (default
    ``n_fft // 4``), each multiplied by ``window`` (default: ones of ``win_length``, default
    ``n_fft``; zero-padded to ``n_fft``, centered) and transformed. ``center=True`` first
    pads ``n_fft // 2`` on both sides with ``pad_mode``. The result is ``(B?, freq,
    n_frames)`` with ``freq = n_fft // 2 + 1`` when ``onesided`` (the default for real input
    and window) or ``n_fft``; ``normalized`` scales by ``n_fft ** -0.5``. ``return_complex``
    must be given for real input; ``False`` returns ``view_as_real``'s layout ``(..., 2)``
    (deprecated in PyTorch, with its warning)."""
    from ..fft import fft, rfft
    from .complex_ops import view_as_real
    from .movement import pad, reshape, squeeze, transpose, unsqueeze
    from .pointwise import cast
    from .tensor_extra import unfold
    fn = "stft"
    if not isinstance(input, Tensor):
        raise FwTypeError(f"stft(): argument 'input' must be a Tensor, not "
                          f"{type(input).__name__}")
    n_fft = _int(n_fft, fn, "n_fft", None)
    hop_length = _int(hop_length, fn, "hop_length", n_fft // 4)
    win_length = _int(win_length, fn, "win_length", n_fft)
    complex_in = input.dtype.is_complex or (isinstance(window, Tensor)
                                            and window.dtype.is_complex)
    if return_complex is None:
        if not complex_in:
            raise ArgumentError("stft requires the return_complex parameter be given for real "
                                "inputs, and will further require that return_complex=True "
                                "in a future PyTorch release.")
        return_complex = True
    if not return_complex:
        _warn_once("stft", "stft with return_complex=False is deprecated. In a future pytorch "
                   "release, stft will return complex tensors for all inputs, and "
                   "return_complex=False will raise an error.\nNote: you can still call "
                   "torch.view_as_real on the complex output to recover the old return "
                   "format.")
    if input.dtype.category < dtypes.FLOAT:
        raise DTypeError(f"stft: expected a tensor of floating point or complex values, got "
                         f"{input.dtype.name}")
    if input.ndim not in (1, 2):
        raise ShapeError(f"stft: expected a 1D or 2D tensor, got shape {list(input.shape)}")
    x = input if input.ndim == 2 else unsqueeze(input, 0)
    if center:
        p = n_fft // 2
        x = reshape(pad(unsqueeze(x, 0), [p, p], mode=pad_mode), x.shape[:1] + (-1,))
    length = x.shape[1]
    if n_fft <= 0 or n_fft > length:
        raise ArgumentError(f"stft: expected 0 < n_fft <= {length}, but got n_fft={n_fft}")
    if hop_length <= 0:
        raise ArgumentError(f"stft: expected hop_length > 0, but got hop_length={hop_length}")
    if win_length <= 0 or win_length > n_fft:
        raise ArgumentError(f"stft: expected 0 < win_length <= n_fft, but got win_length="
                            f"{win_length}")
    real_dt = input.dtype.to_real() if input.dtype.is_complex else input.dtype
    w = _padded_window(window, win_length, n_fft, real_dt, input.device, fn)
    frames = unfold(x, 1, n_fft, hop_length) * w  # (B, n_frames, n_fft)
    if frames.dtype.is_complex:
        if onesided:
            raise ArgumentError("stft: Cannot have onesided output if window or input is "
                                "complex")
        onesided = False
    elif onesided is None:
        onesided = True
    if frames.dtype not in (dtypes.float32, dtypes.float64, dtypes.complex64,
                            dtypes.complex128):
        frames = cast(frames, dtypes.float32)  # float16/bfloat16, as fw.fft does
    norm = "ortho" if normalized else "backward"
    spec = rfft(frames, dim=-1, norm=norm) if onesided else fft(frames, dim=-1, norm=norm)
    spec = transpose(spec, 1, 2)
    if input.ndim == 1:
        spec = squeeze(spec, 0)
    return spec if return_complex else view_as_real(spec)


def _overlap_add(frames, hop, total):
    """Sum frames ``(B, n_frames, n_fft)`` placed ``hop`` apart into ``(B, total)``."""
    from ..creation import tensor, zeros
    from .indexing import index_add
    from .movement import reshape
    b, n_frames, n_fft = frames.shape
    idx = (np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]).reshape(-1)
    out = zeros(b, total, dtype=frames.dtype, device=frames.device)
    return index_add(out, 1, tensor(idx, device=frames.device),
                     reshape(frames, (b, n_frames * n_fft)))


def istft(input, n_fft, hop_length=None, win_length=None, window=None, center=True,
          normalized=False, onesided=None, length=None, return_complex=False) -> Tensor:
    """The inverse of :func:`stft` (``torch.istft``): each frame of a complex spectrogram
    ``(B?, freq, n_frames)`` is inverse-transformed (``irfft`` when ``onesided``, the
    default when ``freq != n_fft``), multiplied by the window, overlap-added ``hop_length``
    apart and divided by the overlap-added squared window (least squares, Griffin-Lim);
    ``center`` trims ``n_fft // 2`` from both ends and ``length`` trims or zero-pads the
    result. Raises when the window envelope has values below 1e-11 (the signal cannot be
    recovered there; checked eagerly, not inside a ``fw.compile`` trace). The result is
    real unless ``return_complex``."""
    from ..fft import ifft, irfft
    from .movement import narrow, pad, squeeze, transpose, unsqueeze
    fn = "istft"
    if not isinstance(input, Tensor):
        raise FwTypeError(f"istft(): argument 'input' must be a Tensor, not "
                          f"{type(input).__name__}")
    if not input.dtype.is_complex:
        raise DTypeError("istft requires a complex-valued input tensor matching the output "
                         "from stft with return_complex=True.")
    n_fft = _int(n_fft, fn, "n_fft", None)
    hop_length = _int(hop_length, fn, "hop_length", n_fft // 4)
    win_length = _int(win_length, fn, "win_length", n_fft)
    if input.numel() == 0:
        raise ShapeError("istft: input tensor cannot be empty.")
    if input.ndim not in (2, 3):
        raise ShapeError(f"istft: expected a tensor with 2 or 3 dimensions of complex values "
                         f"(freq, n_frames), got shape {list(input.shape)}")
    fft_size, n_frames = input.shape[-2], input.shape[-1]
    if onesided is None:
        onesided = fft_size != n_fft
    if onesided and n_fft // 2 + 1 != fft_size:
        raise ShapeError(f"istft: expected the frequency dimension (3rd to the last) of the "
                         f"input tensor to match n_fft / 2 + 1 when onesided=True, but got "
                         f"{fft_size}")
    if not onesided and n_fft != fft_size:
        raise ShapeError(f"istft: expected the frequency dimension (3rd to the last) of the "
                         f"input tensor to match n_fft when onesided=False, but got "
                         f"{fft_size}")
    if not 0 < hop_length <= win_length:
        raise ArgumentError(f"istft: expected 0 < hop_length <= win_length, got "
                            f"hop_length={hop_length}, win_length={win_length}")
    if not 0 < win_length <= n_fft:
        raise ArgumentError(f"istft: expected 0 < win_length <= n_fft, got win_length="
                            f"{win_length}, n_fft={n_fft}")
    if window is not None and isinstance(window, Tensor) and \
            (window.ndim != 1 or window.shape[0] != win_length):
        raise ShapeError("istft: Invalid window shape. window has to be 1D and length of "
                         f"`win_length` ({win_length}), got {list(window.shape)}")
    w = _padded_window(window, win_length, n_fft, input.dtype.to_real(), input.device,
                       fn)
    x = input if input.ndim == 3 else unsqueeze(input, 0)
    x = transpose(x, 1, 2)  # (B, n_frames, freq)
    norm = "ortho" if normalized else "backward"
    if return_complex:
        if onesided:
            raise ArgumentError("istft: Cannot have onesided output if window or input is "
                                "complex")
        frames = ifft(x, dim=-1, norm=norm)
    else:
        if w.dtype.is_complex:
            raise DTypeError("istft: Complex windows are incompatible with "
                             "return_complex=False")
        if not onesided:
            x = narrow(x, -1, 0, n_fft // 2 + 1)
        frames = irfft(x, n=n_fft, dim=-1, norm=norm)
    total = n_fft + hop_length * (n_frames - 1)
    y = _overlap_add(frames * w, hop_length, total)
    w2 = w * w if not w.dtype.is_complex else (w * w.conj()).real
    env = _overlap_add(unsqueeze(w2, 0).expand(1, n_frames, n_fft), hop_length, total)
    start = n_fft // 2 if center else 0
    if length is not None:
        end = start + int(length)
    elif center:
        end = total - n_fft // 2
    else:
        end = total
    stop = min(end, total)
    y = narrow(y, 1, start, max(stop - start, 0))
    env = narrow(env, 1, start, max(stop - start, 0))
    if tls.tracer is None and env.numel():
        low = np.abs(env.detach()._host_array("istft")).min()
        if low < 1e-11:
            raise ArgumentError(f"istft: window overlap add min: {low:.3g} (the overlap-added "
                                f"squared window has values below 1e-11, so the signal cannot "
                                f"be recovered there; check window and hop_length)")
    y = y / env
    if input.ndim == 2:
        y = squeeze(y, 0)
    if end > total:
        _warn_once("istft", "The length of signal is shorter than the length parameter. "
                   "Result is being padded with zeros in the tail. Please check your center "
                   "and hop_length settings.")
        y = pad(y, [0, end - total])
    return y


METHODS = "stft istft"
INPLACE_METHODS = ""

__all__ = ["stft", "istft"]
