"""NumPy kernel of the ``argsort`` op (``framework/ops/sort_ops.py``), registered into the
CPU backend's table; the CUDA backend sorts on the host with the same function.

PyTorch's order: NaN is larger than +inf, -0.0 equals +0.0, and equal elements keep their
original order in both directions. NumPy's stable ascending sort already puts NaN last
and treats the zeros as equal; a descending sort is the same sort run on the input
reversed along ``dim``, read backwards, with the indices mapped back — so NaN comes
first, equal elements stay in their original order, and no value is ever negated
(negation would wrap unsigned ints, break bools and flip -0.0 against +0.0 ordering).
"""

from __future__ import annotations

import numpy as np

from .cpu import IMPLS, impl


def _sortable(x: np.ndarray) -> np.ndarray:
    """``x`` in a dtype NumPy orders correctly: bfloat16 (an opaque ``V`` dtype to NumPy)
    and float16 are widened to float32, which preserves order, NaN included."""
    if x.dtype.kind == "V" or (x.dtype.kind == "f" and x.dtype.itemsize < 4):
        return x.astype(np.float32)
    return x


def argsort_numpy(x, dim: int, descending: bool) -> np.ndarray:
    """int64 indices that stably sort the array ``x`` along ``dim`` (PyTorch's order)."""
    x = np.asarray(x)
    if x.ndim == 0:
        return np.zeros((), np.int64)
    x = _sortable(x)
    if not descending:
        return np.argsort(x, axis=dim, kind="stable").astype(np.int64, copy=False)
    n = x.shape[dim]
    rev = np.argsort(np.flip(x, dim), axis=dim, kind="stable")
    # rev ascends the reversed lane, equal elements latest-first; reading it backwards
    # descends with equal elements earliest-first, and n - 1 - i maps back to positions
    return (n - 1 - np.flip(rev, dim)).astype(np.int64, copy=False)


@impl("argsort")
def _argsort(x, dim, descending, stable):
    """The CPU ``argsort`` kernel (every sort is stable: ``stable`` changes nothing)."""
    return argsort_numpy(x, dim, descending)


__all__ = ["IMPLS", "argsort_numpy"]
