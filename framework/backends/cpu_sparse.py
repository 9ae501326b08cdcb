"""NumPy kernel of ``spmm_coo`` (framework/ops/sparse_ops.py): sparse x dense products.

The stored entries are ordered by row (already so for coalesced COO and CSR, so the sort is
skipped then), each entry's scaled dense row is gathered, and ``np.add.reduceat`` sums the
run of each row in one vectorized pass: no Python loop and no ``np.add.at`` (which is
several times slower). float16 / bfloat16 accumulate in float32, as the dense matmul does.
"""

from __future__ import annotations

import numpy as np

from ..ops import sparse_ops  # noqa: F401  (registers spmm_coo before install())
from .cpu import impl

_NARROW = ("float16", "bfloat16")


@impl("spmm_coo")
def _spmm_coo(values, dense, rows, cols, *, n_rows):
    out_dt = values.dtype
    work_dt = np.float32 if out_dt.name in _NARROW else out_dt
    out = np.zeros((n_rows, dense.shape[1]), work_dt)
    if values.size == 0 or dense.shape[1] == 0:
        return out.astype(out_dt, copy=False)
    rows = np.asarray(rows, np.int64)
    if rows.size > 1 and (rows[1:] < rows[:-1]).any():
        order = np.argsort(rows, kind="stable")
        rows, cols, values = rows[order], cols[order], values[order]
    contrib = dense[cols].astype(work_dt, copy=False) * \
        values.astype(work_dt, copy=False)[:, None]                     # (nnz, N)
    starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    out[rows[starts]] = np.add.reduceat(contrib, starts, axis=0)
    return out.astype(out_dt, copy=False)
