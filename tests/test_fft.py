"""``fw.fft`` against ``numpy.fft`` (values, dtypes, n/s/dim/norm) and its gradients by
finite differences (PyTorch's convention; see tests/complex_helpers.py)."""

from __future__ import annotations

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, DTypeError
from tests.complex_helpers import complex_gradcheck, crandn

_RNG = np.random.default_rng(0)
_X = _RNG.standard_normal((4, 6))
_Z = crandn(4, 6, seed=1)
_NORMS = [None, "backward", "ortho", "forward"]


def _close(out, want, tol):
    np.testing.assert_allclose(out.numpy(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("norm", _NORMS)
@pytest.mark.parametrize("name,kw,npkw", [
    ("fft", {}, {}), ("fft", {"n": 4}, {"n": 4}), ("fft", {"n": 9, "dim": 0}, {"n": 9, "axis": 0}),
    ("ifft", {}, {}), ("ifft", {"n": 3, "dim": -2}, {"n": 3, "axis": -2}),
    ("fft2", {}, {}), ("ifft2", {"s": (3, 8)}, {"s": (3, 8)}),
    ("fftn", {}, {}), ("fftn", {"dim": (1,)}, {"axes": (1,)}),
    ("ifftn", {"s": (5,)}, {"s": (5,), "axes": (-1,)}),
])
def test_complex_transforms_match_numpy(name, kw, npkw, norm):
    for data in (_Z, _X):
        want = getattr(np.fft, name)(data, **npkw, norm=norm)
        for dt, tol in ((fw.complex128, 1e-12), (fw.complex64, 1e-5)):
            src = fw.tensor(data, dtype=dt if np.iscomplexobj(data) else dt.to_real())
            out = getattr(fw.fft, name)(src, **kw, norm=norm)
            assert out.dtype is dt  # float32 -> complex64, float64 -> complex128
            _close(out, want, tol)


@pytest.mark.parametrize("norm", _NORMS)
@pytest.mark.parametrize("name,kw,npkw", [
    ("rfft", {}, {}), ("rfft", {"n": 5}, {"n": 5}), ("rfft", {"dim": 0}, {"axis": 0}),
    ("rfft2", {}, {}), ("rfft2", {"s": (3, 7)}, {"s": (3, 7)}),
    ("rfftn", {}, {}), ("rfftn", {"dim": (0,)}, {"axes": (0,)}),
    ("ihfft", {}, {}), ("ihfft", {"n": 7}, {"n": 7}),
])
def test_real_input_transforms_match_numpy(name, kw, npkw, norm):
    want = getattr(np.fft, name)(_X, **npkw, norm=norm)
    out = getattr(fw.fft, name)(fw.tensor(_X, dtype=fw.float64), **kw, norm=norm)
    assert out.dtype is fw.complex128
    _close(out, want, 1e-12)
    out32 = getattr(fw.fft, name)(fw.tensor(_X, dtype=fw.float32), **kw, norm=norm)
    assert out32.dtype is fw.complex64
    _close(out32, want, 1e-5)


@pytest.mark.parametrize("norm", _NORMS)
@pytest.mark.parametrize("name,kw,npkw", [
    ("irfft", {}, {}), ("irfft", {"n": 7}, {"n": 7}), ("irfft", {"n": 4}, {"n": 4}),
    ("irfft", {"dim": 0}, {"axis": 0}),
    ("irfft2", {}, {}), ("irfft2", {"s": (5, 9)}, {"s": (5, 9)}),
    ("irfftn", {}, {}), ("irfftn", {"s": (3,)}, {"s": (3,), "axes": (-1,)}),
    ("hfft", {}, {}), ("hfft", {"n": 5}, {"n": 5}),
])
def test_hermitian_input_transforms_match_numpy(name, kw, npkw, norm):
    want = getattr(np.fft, name)(_Z, **npkw, norm=norm)
    out = getattr(fw.fft, name)(fw.tensor(_Z, dtype=fw.complex64), **kw, norm=norm)
    assert out.dtype is fw.float32
    _close(out, want, 1e-5)
    _close(getattr(fw.fft, name)(fw.tensor(_Z, dtype=fw.complex128), **kw, norm=norm),
           want, 1e-12)


def test_round_trips_and_int_input():
    x = fw.tensor(_X)
    np.testing.assert_allclose(fw.fft.ifft(fw.fft.fft(x)).real.numpy(), _X, atol=1e-6)
    np.testing.assert_allclose(fw.fft.irfft(fw.fft.rfft(x), n=6).numpy(), _X, atol=1e-6)
    np.testing.assert_allclose(fw.fft.irfftn(fw.fft.rfftn(x), s=x.shape).numpy(), _X, atol=1e-6)
    out = fw.fft.fft(fw.arange(4))
    assert out.dtype is fw.complex64
    np.testing.assert_allclose(out.numpy(), np.fft.fft(np.arange(4)), atol=1e-6)


def test_freqs_and_shifts():
    np.testing.assert_allclose(fw.fft.fftfreq(5).numpy(), np.fft.fftfreq(5), rtol=1e-6)
    np.testing.assert_allclose(fw.fft.fftfreq(8, d=0.1).numpy(), np.fft.fftfreq(8, 0.1),
                               rtol=1e-6)
    np.testing.assert_allclose(fw.fft.rfftfreq(7, 2.0).numpy(), np.fft.rfftfreq(7, 2.0))
    assert fw.fft.fftfreq(4).dtype is fw.float32
    assert fw.fft.fftfreq(4, dtype=fw.float64).dtype is fw.float64
    a = np.arange(20.0).reshape(4, 5)
    for dim in (None, 0, 1, (0, 1), -1):
        axes = dim if dim is not None else None
        np.testing.assert_array_equal(fw.fft.fftshift(fw.tensor(a), dim).numpy(),
                                      np.fft.fftshift(a, axes))
        np.testing.assert_array_equal(fw.fft.ifftshift(fw.tensor(a), dim).numpy(),
                                      np.fft.ifftshift(a, axes))
    z = fw.tensor(_Z)
    np.testing.assert_array_equal(fw.fft.fftshift(z).numpy(), np.fft.fftshift(_Z))


def test_argument_errors():
    x = fw.tensor(_X)
    with pytest.raises(ArgumentError, match="normalization"):
        fw.fft.fft(x, norm="sum")
    with pytest.raises(ArgumentError, match="data points"):
        fw.fft.fft(x, n=0)
    with pytest.raises(DTypeError, match="real input"):
        fw.fft.rfft(fw.tensor(_Z, dtype=fw.complex64))
    with pytest.raises(ArgumentError, match="same length"):
        fw.fft.fftn(x, s=(2, 3), dim=(0,))
    with pytest.raises(ArgumentError, match="data points"):
        fw.fft.fft(fw.zeros(0))
    with pytest.raises(ArgumentError, match="data points"):
        fw.fft.irfft(fw.tensor([1 + 0j]))  # n = 2 * (1 - 1) = 0


# ---------------------------------------------------------------------------------------
# gradients
_Zs = crandn(2, 5, seed=2)
_Xs = np.random.default_rng(3).standard_normal((2, 5))
_Hs = crandn(2, 4, seed=4)


@pytest.mark.parametrize("norm", _NORMS)
@pytest.mark.parametrize("name,fn,inputs", [
    ("fft", lambda z, norm: fw.fft.fft(z, norm=norm), (_Zs,)),
    ("fft_n_pad", lambda z, norm: fw.fft.fft(z, n=7, norm=norm), (_Zs,)),
    ("fft_n_trim", lambda z, norm: fw.fft.fft(z, n=3, dim=1, norm=norm), (_Zs,)),
    ("ifft", lambda z, norm: fw.fft.ifft(z, dim=0, norm=norm), (_Zs,)),
    ("fft2", lambda z, norm: fw.fft.fft2(z, norm=norm), (_Zs,)),
    ("ifftn", lambda z, norm: fw.fft.ifftn(z, s=(3, 4), norm=norm), (_Zs,)),
    ("fft_of_real", lambda x, norm: fw.fft.fft(x, norm=norm), (_Xs,)),
    ("rfft", lambda x, norm: fw.fft.rfft(x, norm=norm), (_Xs,)),
    ("rfft_even", lambda x, norm: fw.fft.rfft(x, n=4, norm=norm), (_Xs,)),
    ("rfft2", lambda x, norm: fw.fft.rfft2(x, norm=norm), (_Xs,)),
    ("rfftn_s", lambda x, norm: fw.fft.rfftn(x, s=(3, 6), norm=norm), (_Xs,)),
    ("irfft", lambda z, norm: fw.fft.irfft(z, norm=norm), (_Hs,)),
    ("irfft_odd", lambda z, norm: fw.fft.irfft(z, n=7, norm=norm), (_Hs,)),
    ("irfft_trim", lambda z, norm: fw.fft.irfft(z, n=3, norm=norm), (_Hs,)),
    ("irfft2", lambda z, norm: fw.fft.irfft2(z, norm=norm), (_Hs,)),
    ("irfftn_s", lambda z, norm: fw.fft.irfftn(z, s=(3, 5), norm=norm), (_Hs,)),
    ("hfft", lambda z, norm: fw.fft.hfft(z, norm=norm), (_Hs,)),
    ("ihfft", lambda x, norm: fw.fft.ihfft(x, norm=norm), (_Xs,)),
    ("fftshift", lambda z, norm: fw.fft.fftshift(z) * 2, (_Zs,)),
    ("power_spectrum", lambda x, norm: fw.fft.rfft(x, norm=norm).abs() ** 2, (_Xs,)),
])
def test_gradients_by_finite_differences(name, fn, inputs, norm):
    complex_gradcheck(lambda *a: fn(*a, norm), inputs)


def test_irfft_gradient_doubles_the_interior_bins():
    """irfft's VJP (PyTorch's documented behaviour): rfft of the gradient with the bins that
    stand for two conjugate bins doubled; DC and Nyquist count once."""
    z = fw.tensor(np.zeros(3, np.complex128), requires_grad=True)
    y = fw.fft.irfft(z, n=4)  # bins 0, 1, 2 (Nyquist)
    y.backward(fw.tensor([1.0, 0.0, 0.0, 0.0], dtype=fw.float64))
    np.testing.assert_allclose(z.grad.numpy(), [0.25, 0.5, 0.25])
