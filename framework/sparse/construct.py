"""Building sparse tensors: ``fw.sparse_coo_tensor``, ``fw.sparse_csr_tensor`` and the
dense -> sparse conversions (``Tensor.to_sparse``, ``to_sparse_coo``, ``to_sparse_csr``).

Indices are checked whenever their values are known (eager tensors; not while a trace
records, where they are symbolic): shapes, dtypes, range, and for CSR the row pointers.
Errors name the constructor and the shapes or values at fault.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from .._state import tls
from ..device import meta, to_device
from ..errors import ArgumentError, DTypeError, FwIndexError, ShapeError
from ..ops.indexing import _host_tensor
from ..tensor import Tensor
from .layout import sparse_coo, sparse_csr, strided
from .tensor import SparseTensor


def known(t: Tensor) -> bool:
    """True when ``t``'s values can be read (eager, not meta, no trace recording)."""
    return tls.tracer is None and t._data is not None and t.device is not meta


def host(t: Tensor, what: str) -> np.ndarray:
    """``t``'s values on the host (a graph break while a trace records)."""
    return t._host_array(what)


def int_tensor(arr, device) -> Tensor:
    """An int64 tensor of host array ``arr`` on ``device``."""
    return _host_tensor(np.ascontiguousarray(arr, dtype=np.int64), dtypes.int64, device)


def make_coo(indices: Tensor, values: Tensor, shape, coalesced: bool) -> SparseTensor:
    """A COO tensor from checked parts (no validation)."""
    s = object.__new__(SparseTensor)
    s.layout, s.shape, s._v, s._idx = sparse_coo, tuple(shape), values, indices
    s._crow = s._col = s._rows = None
    s._coalesced, s._grad_cache = bool(coalesced), None
    return s


def make_csr(crow: Tensor, col: Tensor, values: Tensor, shape, rows: Tensor) -> SparseTensor:
    """A CSR tensor from checked parts; ``rows`` is the row of every stored value."""
    s = object.__new__(SparseTensor)
    s.layout, s.shape, s._v, s._idx = sparse_csr, tuple(shape), values, None
    s._crow, s._col, s._rows = crow, col, rows
    s._coalesced, s._grad_cache = True, None
    return s


def _as_tensor(x, what: str, dtype=None, device=None) -> Tensor:
    from ..creation import tensor
    if isinstance(x, Tensor):
        if dtype is not None and x.dtype is not dtype:
            x = x.to(dtype)
        return x if device is None or x.device is device else x.to(device)
    return tensor(x, dtype=dtype, device=device)


def _index_tensor(x, name: str, what: str, device) -> Tensor:
    t = _as_tensor(x, what, device=device)
    if t.dtype.category != dtypes.INT:
        raise DTypeError(f"{what}: {name} must be an integer tensor, got {t.dtype.name}")
    return t.to(dtypes.int64) if t.dtype is not dtypes.int64 else t


def _leaf_values(values: Tensor, dtype, requires_grad: bool) -> Tensor:
    """The values a new sparse tensor holds: a fresh alias (so ``requires_grad_`` on the
    sparse tensor never flips the caller's tensor), or the caller's tensor itself when it
    is part of a graph (then gradients flow back to it, as in PyTorch)."""
    if dtype is not None and values.dtype is not dtype:
        values = values.to(dtype)
    if requires_grad:
        return values.detach().requires_grad_(True)
    if values.requires_grad or values._fw_grad is not None:  # in a graph, or a dual tensor
        return values
    return values.detach()


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None,
                      pin_memory=False, requires_grad=False, check_invariants=None,
                      is_coalesced=None) -> SparseTensor:
    """A COO sparse tensor: ``values[k]`` sits at ``indices[:, k]``.

    ``indices`` is ``(sparse_dim, nnz)`` (integers), ``values`` is ``(nnz, *dense_dims)``
    (a hybrid tensor when values have more than one dim). ``size`` defaults to the
    smallest that holds the indices. Duplicated indices are allowed (the tensor is then
    uncoalesced: duplicates add up). Indices are always checked when their values are
    known; ``check_invariants`` is accepted for compatibility. ``is_coalesced=True``
    asserts sorted unique indices without checking them, as in PyTorch.
    """
    what = "sparse_coo_tensor"
    dtype = None if dtype is None else dtypes.to_dtype(dtype)
    device = None if device is None else to_device(device)
    values = _as_tensor(values, what, dtype, device)
    idx = _index_tensor(indices, "indices", what, values.device)
    if idx.ndim != 2:
        raise ShapeError(f"{what}: indices must be 2-D (sparse_dim, nnz), got shape "
                         f"{list(idx.shape)}")
    sd, nnz = idx.shape
    if values.ndim == 0 or values.shape[0] != nnz:
        raise ShapeError(f"{what}: values must have nnz ({nnz}) rows (shape (nnz, "
                         f"*dense_dims)), got shape {list(values.shape)} for indices "
                         f"{list(idx.shape)}")
    if sd < 1:
        raise ShapeError(f"{what}: indices must index at least one sparse dim, got shape "
                         f"{list(idx.shape)}")
    dense_shape = tuple(values.shape[1:])
    if size is None:
        if not known(idx):
            host(idx, f"{what} without size")  # graph break: the size depends on data
        arr = host(idx, what)
        sparse_shape = tuple(int(m) + 1 for m in arr.max(1)) if nnz else (0,) * sd
        _check_coo_range(arr, sparse_shape, what)
        size = sparse_shape + dense_shape
    else:
        size = tuple(int(s) for s in size)
        if len(size) != sd + len(dense_shape) or size[sd:] != dense_shape:
            raise ShapeError(f"{what}: size {list(size)} does not match indices "
                             f"{list(idx.shape)} (sparse_dim {sd}) and values "
                             f"{list(values.shape)} (dense dims {list(dense_shape)})")
        if known(idx):
            _check_coo_range(host(idx, what), size[:sd], what)
    values = _leaf_values(values, None, requires_grad)
    return make_coo(idx, values, size, coalesced=bool(is_coalesced) or nnz == 0)


def _check_coo_range(arr: np.ndarray, sparse_shape, what: str) -> None:
    if arr.size == 0:
        return
    lo, hi = arr.min(1), arr.max(1)
    for d, n in enumerate(sparse_shape):
        if lo[d] < 0:
            raise FwIndexError(f"{what}: found negative index {int(lo[d])} for dim {d}")
        if hi[d] >= n:
            raise FwIndexError(f"{what}: size is inconsistent with indices: for dim {d}, size "
                               f"is {n} but found index {int(hi[d])}")


def sparse_csr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None,
                      device=None, pin_memory=False, requires_grad=False,
                      check_invariants=None) -> SparseTensor:
    """A 2-D CSR sparse tensor: the values of row ``i`` are
    ``values[crow[i]:crow[i+1]]`` at columns ``col_indices[crow[i]:crow[i+1]]``.

    The row pointers must start at 0, never decrease and end at nnz; columns must be in
    range and sorted without repeats within each row (PyTorch's invariants). Batched and
    hybrid CSR tensors are not supported.
    """
    what = "sparse_csr_tensor"
    dtype = None if dtype is None else dtypes.to_dtype(dtype)
    device = None if device is None else to_device(device)
    values = _as_tensor(values, what, dtype, device)
    crow = _index_tensor(crow_indices, "crow_indices", what, values.device)
    col = _index_tensor(col_indices, "col_indices", what, values.device)
    if crow.ndim != 1 or col.ndim != 1 or values.ndim != 1:
        raise ShapeError(f"{what}: only 2-D CSR tensors are supported: crow_indices, "
                         f"col_indices and values must be 1-D, got shapes {list(crow.shape)}, "
                         f"{list(col.shape)} and {list(values.shape)}")
    if col.shape[0] != values.shape[0]:
        raise ShapeError(f"{what}: col_indices ({col.shape[0]}) and values "
                         f"({values.shape[0]}) must have the same length (nnz)")
    if crow.shape[0] < 1:
        raise ShapeError(f"{what}: crow_indices must have rows + 1 >= 1 entries, got 0")
    n_rows = crow.shape[0] - 1
    if size is not None:
        size = tuple(int(s) for s in size)
        if len(size) != 2:
            raise ShapeError(f"{what}: only 2-D CSR tensors are supported, got size "
                             f"{list(size)}")
        if size[0] != n_rows:
            raise ShapeError(f"{what}: crow_indices has {crow.shape[0]} entries, so size[0] "
                             f"must be {n_rows}, got size {list(size)}")
    if not known(crow) or not known(col):
        host(crow, f"{what} (the row of each value is computed from crow_indices)")
    c, k = host(crow, what).astype(np.int64), host(col, what).astype(np.int64)
    if size is None:
        size = (n_rows, int(k.max()) + 1 if k.size else 0)
    _check_csr(c, k, size, what)
    rows = int_tensor(np.repeat(np.arange(n_rows), np.diff(c)), values.device)
    values = _leaf_values(values, None, requires_grad)
    return make_csr(crow, col, values, size, rows)


def _check_csr(c: np.ndarray, k: np.ndarray, size, what: str) -> None:
    nnz = k.shape[0]
    if c[0] != 0:
        raise ArgumentError(f"{what}: crow_indices[0] must be 0, got {int(c[0])}")
    if (np.diff(c) < 0).any():
        i = int(np.flatnonzero(np.diff(c) < 0)[0])
        raise ArgumentError(f"{what}: crow_indices must be non-decreasing (sorted), but "
                            f"crow_indices[{i}] = {int(c[i])} > crow_indices[{i + 1}] = "
                            f"{int(c[i + 1])}")
    if c[-1] != nnz:
        raise ArgumentError(f"{what}: crow_indices[-1] ({int(c[-1])}) must equal nnz "
                            f"({nnz}), the length of col_indices and values")
    if nnz:
        if k.min() < 0 or k.max() >= size[1]:
            bad = int(k.min()) if k.min() < 0 else int(k.max())
            raise FwIndexError(f"{what}: column index {bad} is out of range for size "
                               f"{list(size)}")
        rows = np.repeat(np.arange(len(c) - 1), np.diff(c))
        same_row = rows[1:] == rows[:-1]
        if (same_row & (k[1:] <= k[:-1])).any():
            raise ArgumentError(f"{what}: col_indices must be sorted and unique within each "
                                "row")


# -- dense -> sparse ---------------------------------------------------------------------
def dense_to_coo(x: Tensor, sparse_dim: int | None = None) -> SparseTensor:
    """``x.to_sparse(sparse_dim)``: the nonzero entries (or, with ``sparse_dim`` < ndim,
    the nonzero slices) of ``x``, coalesced; differentiable with respect to ``x``."""
    what = "to_sparse"
    sd = x.ndim if sparse_dim is None else int(sparse_dim)
    if x.ndim == 0:
        raise ShapeError(f"{what}: a 0-d tensor cannot be made sparse")
    if not 1 <= sd <= x.ndim:
        raise ArgumentError(f"{what}: sparse_dim must be in [1, {x.ndim}] for a "
                            f"{x.ndim}-D tensor, got {sparse_dim}")
    arr = host(x.detach(), f"{what}() (the nonzero pattern is data)")
    mask = arr != 0
    if sd < x.ndim:
        mask = mask.reshape(mask.shape[:sd] + (-1,)).any(-1)
    idx = np.stack(np.nonzero(mask)).reshape(sd, -1)
    it = int_tensor(idx, x.device)
    values = x[tuple(it[d] for d in range(sd))]
    return make_coo(it, values, x.shape, coalesced=True)


def dense_to_csr(x: Tensor) -> SparseTensor:
    """``x.to_sparse_csr()`` for a 2-D dense tensor."""
    if x.ndim != 2:
        raise ShapeError(f"to_sparse_csr: only 2-D tensors are supported, got shape "
                         f"{list(x.shape)}")
    from .convert import coo_to_csr
    return coo_to_csr(dense_to_coo(x))


def _to_sparse(self, *args, layout=None, blocksize=None, dense_dim=None) -> SparseTensor:
    """``Tensor.to_sparse(sparse_dim)`` or ``to_sparse(layout=...)``."""
    if blocksize is not None:
        raise NotImplementedError("to_sparse(blocksize=...): block sparse layouts (BSR/BSC) "
                                  "are not implemented")
    if layout is None or layout is sparse_coo:
        return dense_to_coo(self, args[0] if args else None)
    if layout is sparse_csr:
        return dense_to_csr(self)
    if layout is strided:
        return self
    raise ArgumentError(f"to_sparse(): unsupported layout {layout}")


def attach_tensor_methods() -> None:
    """``Tensor.layout`` / ``is_sparse`` / ``is_sparse_csr`` (class attributes: no cost per
    tensor) and the dense -> sparse conversion methods."""
    Tensor.layout = strided
    Tensor.is_sparse = False
    Tensor.is_sparse_csr = False
    Tensor.to_sparse = _to_sparse
    Tensor.to_sparse_coo = lambda self: dense_to_coo(self)
    Tensor.to_sparse_csr = lambda self, dense_dim=None: dense_to_csr(self)
    Tensor.to_dense = lambda self, dtype=None, *, masked_grad=None: (
        self if dtype is None else self.to(dtype))
