"""``spmm_coo``: the one registered op behind sparse x dense products (``fw.sparse.mm``).

It works on dense operands only: the stored values ``(nnz,)``, the dense matrix
``(K, N)`` and the row / column index of each stored value; ``n_rows`` is the number of
rows of the sparse matrix. ``out[rows[k]] += values[k] * dense[cols[k]]``. Because the
sparse structure is plain integer tensors, the op fits every table of the registry:

- CPU: a NumPy kernel (``framework/backends/cpu_sparse.py``, sorted segment sums);
- cuda, ``fw.compile`` and ONNX: the decomposition below (index_select, mul, index_add);
- autograd: dense gradients for ``values`` (``sum_j g[r, j] * dense[c, j]``, sampled at
  the stored positions) and for ``dense`` (the transposed product, this op again, so
  second derivatives work). :mod:`framework.sparse` turns the ``values`` gradient into a
  sparse ``.grad`` with the leaf's pattern.
"""

from __future__ import annotations

from ..dtypes import INT
from ..errors import DTypeError, ShapeError
from .creation_ops import full
from .indexing import index_add, index_select
from .registry import COMPOSITE, apply, register


def _spmm_meta(values, dense, rows, cols, *, n_rows):
    if values.ndim != 1 or rows.shape != values.shape or cols.shape != values.shape:
        raise ShapeError(f"spmm_coo: values, rows and cols must be 1-D of one length (nnz), "
                         f"got shapes {list(values.shape)}, {list(rows.shape)} and "
                         f"{list(cols.shape)}")
    if dense.ndim != 2:
        raise ShapeError(f"spmm_coo: the dense operand must be 2-D, got shape "
                         f"{list(dense.shape)}")
    if rows.dtype.category != INT or cols.dtype.category != INT:
        raise DTypeError(f"spmm_coo: rows and cols must be integer tensors, got "
                         f"{rows.dtype.name} and {cols.dtype.name}")
    if values.dtype is not dense.dtype:
        raise DTypeError(f"spmm_coo: values ({values.dtype.name}) and the dense operand "
                         f"({dense.dtype.name}) must share a dtype")
    return (n_rows, dense.shape[1]), values.dtype


def _spmm_decomp(values, dense, rows, cols, *, n_rows):
    picked = index_select(dense, 0, cols) * values.unsqueeze(-1)      # (nnz, N)
    out = full((n_rows, dense.shape[1]), 0, dtype=values.dtype, device=values.device)
    return index_add(out, 0, rows, picked)


def _spmm_vjp(g, args, out, n_rows):
    values, dense, rows, cols = args
    g_values = g_dense = None
    if values.requires_grad:
        g_values = (index_select(g, 0, rows) * index_select(dense, 0, cols)).sum(-1)
    if dense.requires_grad:
        g_dense = spmm_coo(values, g, cols, rows, dense.shape[0])
    return g_values, g_dense, None, None


SPMM_COO = register("spmm_coo", COMPOSITE, _spmm_meta, vjp=_spmm_vjp, decomp=_spmm_decomp,
                    differentiable_args=(0, 1))


def spmm_coo(values, dense, rows, cols, n_rows: int):
    """``out (n_rows, N)`` with ``out[rows[k]] += values[k] * dense[cols[k]]``: the product
    of the sparse matrix given by (rows, cols, values) with a dense ``(K, N)`` matrix.
    Indices are not checked here (:mod:`framework.sparse` validates them when a sparse
    tensor is built)."""
    return apply(SPMM_COO, values, dense, rows, cols, n_rows=int(n_rows))


__all__: list = []  # internal: the public entry points are fw.sparse.mm / fw.sparse.addmm
