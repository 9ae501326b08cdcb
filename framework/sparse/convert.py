"""Sparse <-> dense and layout conversions: ``coalesce``, ``to_dense``, COO <-> CSR,
``transpose``, plus the printed form and pickling of a sparse tensor.

The index bookkeeping (sorting, finding duplicates) runs on the host in NumPy; the values
only ever go through framework ops (``index_select``, ``index_add``, ``index_put``), so
every conversion is differentiable with respect to the values and runs on their device.
"""

from __future__ import annotations

import numpy as np

from .. import ops as F
from ..errors import ArgumentError
from ..tensor import Tensor
from .construct import host, int_tensor, make_coo, make_csr
from .layout import sparse_coo, sparse_csr
from .tensor import SparseTensor


def linear_keys(idx: np.ndarray, sparse_shape) -> np.ndarray:
    """One int64 key per column of ``idx`` (row-major order of ``sparse_shape``)."""
    if idx.shape[1] == 0:
        return np.zeros(0, np.int64)
    return np.ravel_multi_index(tuple(idx), tuple(sparse_shape)).astype(np.int64)


def coalesce(s: SparseTensor) -> SparseTensor:
    """Sorted, duplicate-free indices; values of duplicates summed (COO)."""
    if s.layout is not sparse_coo:
        raise ArgumentError(f"coalesce(): expected a sparse_coo tensor, got {s.layout.name}")
    if s._coalesced:
        return s
    sd = s.sparse_dim()
    keys = linear_keys(host(s._idx, "coalesce()"), s.shape[:sd])
    uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    idx = int_tensor(np.stack(np.unravel_index(uniq, s.shape[:sd])).reshape(sd, -1), s.device)
    if uniq.shape[0] == keys.shape[0]:  # no duplicates: a permutation of the values
        values = F.index_select(s._v, 0, int_tensor(first, s.device))
    else:
        zeros = F.zeros((uniq.shape[0],) + tuple(s._v.shape[1:]), dtype=s.dtype,
                        device=s.device)
        values = F.index_add(zeros, 0, int_tensor(inv.reshape(-1), s.device), s._v)
    return make_coo(idx, values, s.shape, coalesced=True)


def to_dense(s: SparseTensor) -> Tensor:
    """The dense tensor of ``s`` (duplicates summed)."""
    zeros = F.zeros(s.shape, dtype=s.dtype, device=s.device)
    if s.layout is sparse_csr:
        key = (s._rows, s._col)
    else:
        key = tuple(s._idx[d] for d in range(s.sparse_dim()))
    return F.index_put_key(zeros, key, s._v, accumulate=True)


def _crow_from_rows(rows: np.ndarray, n_rows: int) -> np.ndarray:
    counts = np.bincount(rows, minlength=n_rows) if rows.size else np.zeros(n_rows, np.int64)
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def coo_to_csr(s: SparseTensor) -> SparseTensor:
    """A 2-D COO tensor (no dense dims) in the CSR layout."""
    if s.ndim != 2 or s.sparse_dim() != 2:
        raise ArgumentError(f"to_sparse_csr: only 2-D sparse tensors with no dense dims are "
                            f"supported, got shape {list(s.shape)} with sparse_dim "
                            f"{s.sparse_dim()}")
    c = coalesce(s)
    idx = host(c._idx, "to_sparse_csr()")
    crow = int_tensor(_crow_from_rows(idx[0], s.shape[0]), s.device)
    return make_csr(crow, c._idx[1], c._v, s.shape, c._idx[0])


def csr_to_coo(s: SparseTensor) -> SparseTensor:
    """A CSR tensor in the COO layout (coalesced: CSR order is row-major)."""
    return make_coo(F.stack([s._rows, s._col]), s._v, s.shape, coalesced=True)


def transpose(s: SparseTensor, dim0: int, dim1: int) -> SparseTensor:
    """Swap two sparse dims (the indices' rows) or two dense dims (the values' dims)."""
    from ..ops.shapes import normalize_dim
    if s.layout is sparse_csr:
        return coo_to_csr(transpose(csr_to_coo(s), dim0, dim1))
    d0 = normalize_dim(dim0, s.ndim, "transpose")
    d1 = normalize_dim(dim1, s.ndim, "transpose")
    sd = s.sparse_dim()
    shape = list(s.shape)
    shape[d0], shape[d1] = shape[d1], shape[d0]
    if d0 == d1:
        return s
    if d0 < sd and d1 < sd:
        perm = list(range(sd))
        perm[d0], perm[d1] = perm[d1], perm[d0]
        idx = F.index_select(s._idx, 0, int_tensor(perm, s.device))
        return make_coo(idx, s._v, shape, coalesced=False)
    if d0 >= sd and d1 >= sd:
        values = s._v.transpose(d0 - sd + 1, d1 - sd + 1)
        return make_coo(s._idx, values, shape, coalesced=s._coalesced)
    raise ArgumentError(f"transpose(): can't transpose between sparse and dense dimensions "
                        f"(dims {dim0} and {dim1}, sparse_dim {sd})")


def emptied(s: SparseTensor) -> SparseTensor:
    """``s`` with no stored values (same shape, layout, dtype and device)."""
    values = F.zeros((0,) + tuple(s._v.shape[1:]), dtype=s.dtype, device=s.device)
    if s.layout is sparse_csr:
        crow = int_tensor(np.zeros(s.shape[0] + 1), s.device)
        empty = int_tensor(np.zeros(0), s.device)
        return make_csr(crow, empty, values, s.shape, empty)
    return make_coo(int_tensor(np.zeros((s.sparse_dim(), 0)), s.device), values, s.shape,
                    coalesced=True)


# -- printing and pickling ---------------------------------------------------------------
def _field(name: str, t: Tensor, pad: str) -> str:
    text = repr(t.detach())
    return name + "=" + text.replace("\n", "\n" + pad + " " * (len(name) + 1))


def sparse_repr(s: SparseTensor) -> str:
    """``tensor(indices=..., values=..., size=(2, 3), nnz=3, layout=framework.sparse_coo)``
    (PyTorch's form, with the framework's names)."""
    pad = " " * len("tensor(")
    if s.layout is sparse_coo:
        parts = [("indices", s._idx), ("values", s._v)]
    else:
        parts = [("crow_indices", s._crow), ("col_indices", s._col), ("values", s._v)]
    fields = [_field(n, t, pad) for n, t in parts]
    tail = f"size={tuple(s.shape)}, nnz={s._nnz()}, layout={s.layout!r}"
    if s.grad_fn is not None:
        tail += f", grad_fn=<{s.grad_fn.name()}>"
    elif s.requires_grad:
        tail += ", requires_grad=True"
    return "tensor(" + (",\n" + pad).join(fields + [tail]) + ")"


def rebuild_args(s: SparseTensor):
    """``__reduce_ex__`` of a sparse tensor: rebuilt from its parts."""
    if s.layout is sparse_coo:
        return (_rebuild_coo, (s._idx, s._v.detach(), s.shape, s._coalesced,
                               s.requires_grad))
    return (_rebuild_csr, (s._crow, s._col, s._v.detach(), s.shape, s.requires_grad))


def _rebuild_coo(idx, values, shape, coalesced, requires_grad):
    from .construct import sparse_coo_tensor
    return sparse_coo_tensor(idx, values, shape, is_coalesced=coalesced,
                             requires_grad=requires_grad)


def _rebuild_csr(crow, col, values, shape, requires_grad):
    from .construct import sparse_csr_tensor
    return sparse_csr_tensor(crow, col, values, shape, requires_grad=requires_grad)
