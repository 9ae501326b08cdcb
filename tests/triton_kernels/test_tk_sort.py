"""Row argsort kernel under the interpreter vs NumPy's stable argsort (PyTorch's order:
NaN largest, signed zeros equal, ties in their original order, descending too)."""

import numpy as np
import pytest
from _tk_utils import BF16, FP16, FP32

from triton_kernels import sort as tks
from triton_kernels.buffers import HostBuffer


def ref_argsort(x, descending):
    """Stable order with NaN largest (descending: NaN first, ties still in order)."""
    x = np.asarray(x).astype(np.float64)
    out = np.empty(x.shape, np.int64)
    for row in np.ndindex(x.shape[:-1]):
        v = x[row]
        key = [(np.inf if np.isnan(a) else a, np.isnan(a)) for a in v]
        if descending:
            order = sorted(range(len(v)), key=lambda i: (not key[i][1], -key[i][0]))
        else:
            order = sorted(range(len(v)), key=lambda i: (key[i][1], key[i][0]))
        out[row] = order
    return out


def _special(dtype, n=37):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, n).astype(np.float32)  # many ties
    x[[2, 9]] = np.nan
    x[[4, 20]] = np.inf
    x[5] = -np.inf
    x[[6, 7]] = [-0.0, 0.0]
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [FP32, FP16, BF16], ids=["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("descending", [False, True])
def test_float_rows_nan_ties_and_signed_zeros(dtype, descending):
    x = np.stack([_special(dtype), _special(dtype)[::-1]])
    got = tks.argsort(HostBuffer(x), descending=descending).numpy()
    np.testing.assert_array_equal(got, ref_argsort(x, descending))


@pytest.mark.parametrize("dtype", ["int32", "int16", "int8", "uint8", "bool"])
@pytest.mark.parametrize("descending", [False, True])
def test_integer_rows(dtype, descending):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if dtype != "bool" else None
    lo, hi = (0, 2) if info is None else (max(info.min, -1000), min(info.max, 1000))
    x = rng.integers(lo, hi, (3, 50)).astype(dtype)
    if info is not None:
        x[0, :2] = [info.min, info.max]
    got = tks.argsort(HostBuffer(x), descending=descending).numpy()
    np.testing.assert_array_equal(got, ref_argsort(x, descending))


def test_strided_rows_and_row_lengths():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((7, 2, 5)).astype(np.float32)
    x = HostBuffer(base)
    view = type(x)(base[:, 1, :])  # rows of 5 with stride 10
    np.testing.assert_array_equal(tks.argsort(view).numpy(), ref_argsort(base[:, 1, :], False))
    for n in (1, 16, 17, 300):
        a = rng.standard_normal((2, n)).astype(np.float32)
        np.testing.assert_array_equal(tks.argsort(HostBuffer(a)).numpy(), ref_argsort(a, False))


def test_unsupported_inputs_are_refused():
    assert tks.supports(FP32, tks.MAX_SORT_N) and not tks.supports(FP32, tks.MAX_SORT_N + 1)
    assert not tks.supports(np.float64, 8) and not tks.supports(np.int64, 8)
    with pytest.raises(TypeError, match="64-bit"):
        tks.argsort(HostBuffer(np.zeros((2, 3), np.float64)))
    with pytest.raises(ValueError, match="longer"):
        tks.argsort(HostBuffer(np.zeros((1, tks.MAX_SORT_N + 1), FP32)))
