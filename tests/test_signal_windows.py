"""fw.signal.windows: SciPy-style windows (sym=True by default)."""

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, FwTypeError

W = fw.signal.windows

# PyTorch's documented values (torch/signal/windows/windows.py examples), 4 decimals.
DOCUMENTED = [
    (lambda: W.exponential(10), [0.0111, 0.0302, 0.0821, 0.2231, 0.6065]),
    (lambda: W.cosine(10, sym=False),
     [0.1423, 0.4154, 0.6549, 0.8413, 0.9595, 1.0000, 0.9595, 0.8413, 0.6549, 0.4154]),
    (lambda: W.gaussian(10, sym=False, std=0.9),
     [1.9858e-07, 5.1365e-05, 3.8659e-03, 8.4658e-02, 5.3941e-01, 1.0, 5.3941e-01,
      8.4658e-02, 3.8659e-03, 5.1365e-05]),
    (lambda: W.hamming(10),
     [0.0800, 0.1876, 0.4601, 0.7700, 0.9723, 0.9723, 0.7700, 0.4601, 0.1876, 0.0800]),
    (lambda: W.general_cosine(10, a=[0.46, 0.23, 0.31]),
     [0.5400, 0.3376, 0.1288, 0.4200, 0.9136, 0.9136, 0.4200, 0.1288, 0.3376, 0.5400]),
    (lambda: W.bartlett(10, sym=False),
     [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.8, 0.6, 0.4, 0.2]),
    (lambda: W.nuttall(5, sym=False), [3.6280e-04, 1.1052e-01, 7.9826e-01, 7.9826e-01,
                                       1.1052e-01]),
]


@pytest.mark.parametrize("k", range(len(DOCUMENTED)))
def test_documented_values(k):
    make, want = DOCUMENTED[k]
    got = make().numpy()
    np.testing.assert_allclose(got[:len(want)], want, rtol=2e-4, atol=1e-4)


def test_symmetric_windows_are_symmetric_and_periodic_ones_match_the_window_functions():
    for name, legacy in [("hann", fw.hann_window), ("hamming", fw.hamming_window),
                         ("blackman", fw.blackman_window), ("bartlett", fw.bartlett_window),
                         ("kaiser", fw.kaiser_window)]:
        for M in (1, 2, 7, 8):
            sym = getattr(W, name)(M, dtype=fw.float64).numpy()
            np.testing.assert_allclose(sym, sym[::-1], atol=1e-12, err_msg=name)
            np.testing.assert_allclose(sym, legacy(M, periodic=False, dtype=fw.float64).numpy(),
                                       atol=1e-12, err_msg=name)
            per = getattr(W, name)(M, sym=False, dtype=fw.float64).numpy()
            np.testing.assert_allclose(per, legacy(M, periodic=True, dtype=fw.float64).numpy(),
                                       atol=1e-12, err_msg=name)


def test_formulas_against_numpy():
    n = np.arange(9.0)
    np.testing.assert_allclose(W.gaussian(9, std=2.0, dtype=fw.float64).numpy(),
                               np.exp(-0.5 * ((n - 4) / 2.0) ** 2), atol=1e-12)
    np.testing.assert_allclose(W.exponential(9, sym=False, center=2.0, tau=3.0,
                                             dtype=fw.float64).numpy(),
                               np.exp(-np.abs(n - 2.0) / 3.0), atol=1e-12)
    np.testing.assert_allclose(W.cosine(9, dtype=fw.float64).numpy(),
                               np.sin(np.pi * (n + 0.5) / 9), atol=1e-12)


def test_dtype_device_grad_and_empty():
    w = W.hann(6, dtype=fw.float64, requires_grad=True)
    assert w.dtype == fw.float64 and w.requires_grad and w.shape == (6,)
    assert W.gaussian(0).shape == (0,)
    assert W.hann(5).dtype == fw.get_default_dtype()
    np.testing.assert_array_equal(W.kaiser(1).numpy(), [1.0])


def test_errors_name_the_window_and_argument():
    with pytest.raises(ArgumentError, match="gaussian requires non-negative"):
        W.gaussian(-1)
    with pytest.raises(ArgumentError, match="float32 or float64"):
        W.hann(4, dtype=fw.float16)
    with pytest.raises(ArgumentError, match="Tau must be positive"):
        W.exponential(4, tau=0)
    with pytest.raises(ArgumentError, match="Center must be None"):
        W.exponential(4, center=1.0)
    with pytest.raises(ArgumentError, match="Standard deviation"):
        W.gaussian(4, std=-1.0)
    with pytest.raises(ArgumentError, match="beta must be non-negative"):
        W.kaiser(4, beta=-1.0)
    with pytest.raises(ArgumentError, match="cannot be empty"):
        W.general_cosine(4, a=[])
    with pytest.raises(FwTypeError, match="list/tuple"):
        W.general_cosine(4, a=0.5)
    with pytest.raises(FwTypeError, match="must be an int"):
        W.hann(4.0)
