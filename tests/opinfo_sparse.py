"""OpInfo record of ``spmm_coo`` (framework/ops/sparse_ops.py), exercised the way users
reach it: ``fw.sparse.mm`` of a COO tensor built from the sample's (values, rows, cols)
with a dense matrix. The reference scatters the entries into a dense float64 matrix
(``np.add.at``, so duplicates add up) and multiplies. Sparse tensors themselves (layouts,
conversions, the other sparse ops) are covered by tests/test_sparse*.py."""

from __future__ import annotations

import numpy as np

import framework as fw
from tests.opinfo import FLOAT_INT, OpInfo, Sample, make, register_opinfo, rng, transposed

_LOW = {fw.float16: (3e-2, 2e-2), fw.bfloat16: (2e-1, 5e-2)}


def _spmm_fn(values, dense, rows, cols, n_rows):
    s = fw.sparse_coo_tensor(fw.stack([rows, cols]), values, (n_rows, dense.shape[0]))
    return fw.sparse.mm(s, dense)


def _spmm_ref(values, dense, rows, cols, n_rows):
    a = np.zeros((n_rows, dense.shape[0]), np.result_type(values, dense))
    np.add.at(a, (rows, cols), values)
    return a @ dense


def _spmm_samples(dt):
    g = rng(140)

    def entries(n_rows, k, nnz):
        return (make((nnz,), dt, g), g.integers(0, n_rows, nnz).astype(np.int64),
                g.integers(0, k, nnz).astype(np.int64))

    out = []
    for name, (n_rows, k, n, nnz) in (("small", (3, 4, 2, 5)), ("tall", (6, 3, 4, 9)),
                                      ("one-col", (4, 5, 1, 6))):
        v, r, c = entries(n_rows, k, nnz)
        out.append(Sample((v, make((k, n), dt, g), r, c), {"n_rows": n_rows}, name=name))
    v = make((4,), dt, g)
    out.append(Sample((v, make((3, 2), dt, g), np.array([2, 0, 2, 1]), np.array([1, 1, 1, 0])),
                      {"n_rows": 4}, name="duplicates-unsorted-empty-row"))
    v, r, c = entries(3, 4, 5)
    out.append(Sample((v, transposed(make((4, 3), dt, g)), r, c), {"n_rows": 3}, name="T"))
    out.append(Sample((make((0,), dt, g), make((4, 2), dt, g), np.zeros(0, np.int64),
                       np.zeros(0, np.int64)), {"n_rows": 3}, name="nnz0", grad=False))
    return out


register_opinfo(
    OpInfo("sparse.mm", _spmm_fn, _spmm_ref, _spmm_samples, dtypes=FLOAT_INT, op="spmm_coo",
           tols=_LOW),
)
