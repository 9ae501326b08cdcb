"""``fw.stft`` / ``fw.istft`` and the window functions against NumPy references written
from the definitions (no torch): values for every argument, round trips, PyTorch's errors,
finite-difference gradients (tests/complex_helpers.py) and ``fw.compile``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, DTypeError, ShapeError
from tests.complex_helpers import complex_gradcheck, crandn

_RNG = np.random.default_rng(0)
_X = _RNG.standard_normal((2, 37))


def ref_stft(x, n_fft, hop, window=None, win_length=None, center=True, pad_mode="reflect",
             normalized=False, onesided=True):
    """The STFT by its definition: X[k, m] = sum_n w[n] x[m hop + n] e^{-2 pi i k n / N}."""
    x = np.asarray(x)
    if x.ndim == 1:
        return ref_stft(x[None], n_fft, hop, window, win_length, center, pad_mode,
                        normalized, onesided)[0]
    win_length = n_fft if win_length is None else win_length
    win = np.ones(win_length) if window is None else np.asarray(window)
    if center:
        mode = {"replicate": "edge", "circular": "wrap"}.get(pad_mode, pad_mode)
        x = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)), mode=mode)
    w = np.zeros(n_fft, dtype=win.dtype)
    left = (n_fft - win_length) // 2
    w[left:left + win_length] = win
    n_frames = 1 + (x.shape[1] - n_fft) // hop
    k = np.arange(n_fft)
    dft = np.exp(-2j * np.pi * np.outer(k, k) / n_fft)  # [freq, time]
    out = np.stack([(x[:, m * hop:m * hop + n_fft] * w) @ dft.T for m in range(n_frames)], -1)
    if normalized:
        out = out / np.sqrt(n_fft)
    return out[:, :n_fft // 2 + 1] if onesided else out


def _fresh_warning():
    """Re-arm the once-per-process deprecation warning of stft(return_complex=False)."""
    from framework.ops import spectral
    spectral._WARNED.discard("stft")


def _hann(n):
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic


# ---------------------------------------------------------------------------------------
# window functions
@pytest.mark.parametrize("n", [0, 1, 2, 7, 16])
def test_window_functions_match_their_formulas(n):
    sym = {"hann_window": np.hanning, "hamming_window": np.hamming,
           "blackman_window": np.blackman, "bartlett_window": np.bartlett,
           "kaiser_window": lambda m: np.kaiser(m, 12.0)}
    for name, ref in sym.items():
        fn = getattr(fw, name)
        want_sym = ref(n) if n > 1 else np.ones(n)
        want_per = ref(n + 1)[:n] if n > 1 else np.ones(n)
        np.testing.assert_allclose(fn(n, periodic=False, dtype=fw.float64).numpy(), want_sym,
                                   atol=1e-12, err_msg=name)
        out = fn(n, dtype=fw.float64)
        np.testing.assert_allclose(out.numpy(), want_per, atol=1e-12, err_msg=name)
        assert fn(n).dtype is fw.float32 and fn(n).shape == (n,)
    np.testing.assert_allclose(fw.hamming_window(8, alpha=0.5, beta=0.5).numpy(),
                               fw.hann_window(8).numpy(), atol=1e-7)
    assert fw.hann_window(4, requires_grad=True).requires_grad


def test_window_function_errors():
    with pytest.raises(ArgumentError, match="hann_window: window_length"):
        fw.hann_window(-1)
    with pytest.raises(DTypeError, match="hann_window.*int64"):
        fw.hann_window(4, dtype=fw.int64)


# ---------------------------------------------------------------------------------------
# stft values
@pytest.mark.parametrize("n_fft,hop,win_length", [(16, 4, None), (16, None, 11), (8, 3, 8),
                                                   (15, 5, 10), (4, 1, None)])
@pytest.mark.parametrize("center,pad_mode", [(True, "reflect"), (True, "constant"),
                                             (True, "replicate"), (False, "reflect")])
def test_stft_matches_the_definition(n_fft, hop, win_length, center, pad_mode):
    wl = n_fft if win_length is None else win_length
    win = _hann(wl)
    want = ref_stft(_X, n_fft, n_fft // 4 if hop is None else hop, win, wl, center, pad_mode)
    out = fw.stft(fw.tensor(_X), n_fft, hop, win_length, fw.tensor(win), center=center,
                  pad_mode=pad_mode, return_complex=True)
    assert out.dtype is fw.complex128 and out.shape == want.shape
    np.testing.assert_allclose(out.numpy(), want, atol=1e-10)
    out1 = fw.stft(fw.tensor(_X[1], dtype=fw.float32), n_fft, hop, win_length,
                   fw.tensor(win, dtype=fw.float32), center=center, pad_mode=pad_mode,
                   return_complex=True)  # 1-D input: no batch dim
    assert out1.dtype is fw.complex64 and out1.shape == want.shape[1:]
    np.testing.assert_allclose(out1.numpy(), want[1], atol=1e-4)


def test_stft_options_normalized_onesided_default_window():
    x = fw.tensor(_X)
    want = ref_stft(_X, 12, 3, normalized=True, onesided=False)  # window None: ones
    out = fw.stft(x, 12, 3, normalized=True, onesided=False, return_complex=True)
    assert out.shape == (2, 12, 13)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-10)
    # the default hop is n_fft // 4
    np.testing.assert_allclose(fw.stft(x, 8, return_complex=True).numpy(),
                               ref_stft(_X, 8, 2), atol=1e-10)


def test_stft_return_complex_false_is_view_as_real():
    x = fw.tensor(_X, dtype=fw.float32)
    _fresh_warning()
    with pytest.warns(UserWarning, match="return_complex=False is deprecated"):
        out = fw.stft(x, 8, 2, window=fw.hann_window(8), return_complex=False)
    want = ref_stft(_X, 8, 2, _hann(8))
    assert out.shape == want.shape + (2,) and out.dtype is fw.float32
    np.testing.assert_allclose(out.numpy()[..., 0], want.real, atol=1e-4)
    np.testing.assert_allclose(out.numpy()[..., 1], want.imag, atol=1e-4)


def test_stft_of_complex_input_and_complex_window():
    z = crandn(2, 30, seed=3)
    win = _hann(8) * np.exp(0.3j * np.arange(8))
    want = ref_stft(z, 8, 2, win, onesided=False)
    out = fw.stft(fw.tensor(z), 8, 2, window=fw.tensor(win))  # complex: return_complex=True
    assert out.shape == (2, 8, 16)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-10)
    # a complex window on a real signal: two-sided too
    out = fw.stft(fw.tensor(_X), 8, 2, window=fw.tensor(win))
    np.testing.assert_allclose(out.numpy(), ref_stft(_X, 8, 2, win, onesided=False),
                               atol=1e-10)


def test_tensor_methods():
    x = fw.tensor(_X)
    s = x.stft(16, 4, window=fw.hann_window(16, dtype=fw.float64), return_complex=True)
    y = s.istft(16, 4, window=fw.hann_window(16, dtype=fw.float64), length=37)
    np.testing.assert_allclose(y.numpy(), _X, atol=1e-10)


# ---------------------------------------------------------------------------------------
# istft: round trips
@pytest.mark.parametrize("n_fft,hop", [(16, 4), (16, 8), (16, 2), (15, 5), (32, 8)])
@pytest.mark.parametrize("normalized", [False, True])
def test_istft_inverts_stft(n_fft, hop, normalized):
    x = fw.tensor(_X)
    win = fw.hann_window(n_fft, dtype=fw.float64)
    s = fw.stft(x, n_fft, hop, window=win, normalized=normalized, return_complex=True)
    y = fw.istft(s, n_fft, hop, window=win, normalized=normalized, length=37)
    assert y.shape == (2, 37) and y.dtype is fw.float64
    np.testing.assert_allclose(y.numpy(), _X, atol=1e-10)
    # without length: the frames' span minus the centering pad
    y2 = fw.istft(s, n_fft, hop, window=win, normalized=normalized)
    n = n_fft + hop * (s.shape[-1] - 1) - 2 * (n_fft // 2)
    assert y2.shape == (2, n)
    np.testing.assert_allclose(y2.numpy(), _X[:, :n], atol=1e-10)
    # 1-D, float32
    s1 = fw.stft(x[0].float(), n_fft, hop, window=win.float(), return_complex=True)
    y1 = fw.istft(s1, n_fft, hop, window=win.float(), length=37)
    assert y1.dtype is fw.float32 and y1.shape == (37,)
    np.testing.assert_allclose(y1.numpy(), _X[0], atol=1e-5)


def test_istft_two_sided_win_length_and_complex_output():
    z = crandn(2, 40, seed=4)
    win = fw.hann_window(10, dtype=fw.float64)
    s = fw.stft(fw.tensor(z), 16, 4, 10, win)  # two-sided (complex input)
    y = fw.istft(s, 16, 4, 10, win, length=40, return_complex=True)
    assert y.dtype is fw.complex128
    np.testing.assert_allclose(y.numpy(), z, atol=1e-10)
    # a real signal's two-sided spectrum back to real: onesided inferred False
    s = fw.stft(fw.tensor(_X), 16, 4, 10, win, onesided=False, return_complex=True)
    y = fw.istft(s, 16, 4, 10, win, length=37)
    np.testing.assert_allclose(y.numpy(), _X, atol=1e-10)


def test_istft_center_false_and_padding_length():
    win = fw.hamming_window(16, dtype=fw.float64)  # no zeros at the ends
    s = fw.stft(fw.tensor(_X), 16, 4, window=win, center=False, return_complex=True)
    y = fw.istft(s, 16, 4, window=win, center=False)
    n = 16 + 4 * (s.shape[-1] - 1)
    np.testing.assert_allclose(y.numpy(), _X[:, :n], atol=1e-10)
    from framework.ops import spectral
    spectral._WARNED.discard("istft")
    with pytest.warns(UserWarning, match="padded with zeros"):
        y = fw.istft(s, 16, 4, window=win, center=False, length=n + 5)
    assert y.shape == (2, n + 5) and not y.numpy()[:, n:].any()


# ---------------------------------------------------------------------------------------
# errors (PyTorch's)
def test_stft_errors():
    x = fw.tensor(_X)
    with pytest.raises(ArgumentError, match="requires the return_complex parameter"):
        fw.stft(x, 8)
    with pytest.raises(ShapeError, match="1D or 2D"):
        fw.stft(x.reshape(1, 2, 37), 8, return_complex=True)
    with pytest.raises(DTypeError, match="floating point or complex"):
        fw.stft(fw.arange(20), 8, return_complex=True)
    with pytest.raises(ArgumentError, match="n_fft"):
        fw.stft(x, 40, center=False, return_complex=True)
    with pytest.raises(ArgumentError, match="hop_length > 0"):
        fw.stft(x, 8, 0, return_complex=True)
    with pytest.raises(ArgumentError, match="win_length <= n_fft"):
        fw.stft(x, 8, 2, 9, return_complex=True)
    with pytest.raises(ShapeError, match="window tensor of size equal to win_length=8"):
        fw.stft(x, 8, 2, window=fw.ones(7, dtype=fw.float64), return_complex=True)
    with pytest.raises(ArgumentError, match="onesided"):
        fw.stft(x * 1j, 8, 2, onesided=True)
    with pytest.raises(ShapeError, match="padding"):  # reflect pad wider than the input
        fw.stft(fw.ones(3), 8, return_complex=True)


def test_istft_errors():
    win = fw.hann_window(16, dtype=fw.float64)
    s = fw.stft(fw.tensor(_X), 16, 4, window=win, return_complex=True)
    with pytest.raises(DTypeError, match="complex-valued input"):
        fw.istft(fw.view_as_real(s), 16, 4, window=win)
    with pytest.raises(ShapeError, match="n_fft / 2 \\+ 1 when onesided=True"):
        fw.istft(s, 18, 4, window=fw.hann_window(18, dtype=fw.float64), onesided=True)
    with pytest.raises(ShapeError, match="match n_fft when onesided=False"):
        fw.istft(s, 16, 4, window=win, onesided=False)
    with pytest.raises(ArgumentError, match="hop_length <= win_length"):
        fw.istft(s, 16, 17, window=win)
    with pytest.raises(ShapeError, match="Invalid window shape"):
        fw.istft(s, 16, 4, window=fw.ones(15, dtype=fw.float64))
    with pytest.raises(ArgumentError, match="onesided output"):
        fw.istft(s, 16, 4, window=win, return_complex=True)
    # hann's zero at n = 0 is not covered by any other frame without centering
    s = fw.stft(fw.tensor(_X), 16, 4, window=win, center=False, return_complex=True)
    with pytest.raises(ArgumentError, match="window overlap add min"):
        fw.istft(s, 16, 4, window=win, center=False)
    # a window narrower than n_fft (zero-padded) leaves the signal's start uncovered
    with pytest.raises(ArgumentError, match="window overlap add min"):
        fw.istft(s, 16, 4, 4, window=fw.ones(4, dtype=fw.float64), center=False)


# ---------------------------------------------------------------------------------------
# gradients and compile
def test_stft_gradients():
    x = _RNG.standard_normal(20)
    win = _hann(8) + 0.1
    complex_gradcheck(lambda t: fw.stft(t, 8, 3, window=fw.tensor(win), return_complex=True),
                      [x])
    complex_gradcheck(lambda t, w: fw.stft(t, 8, 3, 6, w, normalized=True,
                                           return_complex=True), [x, win[:6]])
    complex_gradcheck(lambda t: fw.stft(t, 8, 2, window=fw.tensor(win)), [crandn(2, 12)])
    _fresh_warning()
    with pytest.warns(UserWarning, match="deprecated"):
        complex_gradcheck(lambda t: fw.stft(t, 8, 2, return_complex=False),
                          [x.reshape(2, 10)])


def test_istft_gradients():
    s = crandn(5, 6, seed=7)
    win = _hann(8) + 0.1
    complex_gradcheck(lambda t, w: fw.istft(t, 8, 2, window=w, length=13), [s, win])
    complex_gradcheck(lambda t: fw.istft(t, 8, 2, window=fw.tensor(win), center=False,
                                         return_complex=True, onesided=False),
                      [crandn(8, 3, seed=8)])


def test_stft_istft_compile():
    win = fw.hann_window(16)

    def f(x):
        s = fw.stft(x, 16, 4, window=win, return_complex=True)
        return fw.istft(s, 16, 4, window=win, length=x.shape[-1]), s.abs()

    cf = fw.compile(f)
    x = fw.tensor(_X, dtype=fw.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, want = cf(x), f(x)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    assert cf.stats()["graph_breaks"] == [] and cf.stats()["eager_calls"] == 0
