"""Operations on sparse tensors (``fw.sparse.mm``, ``addmm``, ``sum``, ``softmax``,
``log_softmax``, ``sampled_addmm``, and ``+``, ``-``, ``*``, ``@``).

Products go through the registered ``spmm_coo`` op (framework/ops/sparse_ops.py), so
they are differentiable, run on every device and are captured by ``fw.compile`` and ONNX
export. The others are dense ops on the stored values with the indices as constants, so
they are differentiable with respect to the values too.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes, ops as F
from ..errors import ArgumentError, DeviceError, DTypeError, FwTypeError, ShapeError
from ..ops.sparse_ops import spmm_coo
from ..tensor import Tensor
from .construct import host, int_tensor, make_coo
from .convert import coalesce, coo_to_csr, linear_keys
from .layout import sparse_csr
from .tensor import SparseTensor

_NUMBER = (int, float, bool)


def _is_sparse(x) -> bool:
    return isinstance(x, SparseTensor)


def _same_layout(result: SparseTensor, like: SparseTensor) -> SparseTensor:
    return coo_to_csr(result) if like.layout is sparse_csr else result


# -- products ----------------------------------------------------------------------------
def _check_matrix(s: SparseTensor, what: str) -> None:
    if s.ndim != 2 or s.sparse_dim() != 2:
        raise ShapeError(f"{what}: expected a 2-D sparse matrix with no dense dims, got shape "
                         f"{list(s.shape)} with sparse_dim {s.sparse_dim()}")


def mm(mat1, mat2):
    """``mat1 @ mat2`` with a sparse ``mat1`` (COO or CSR, 2-D) and a dense 2-D ``mat2``
    (a dense result, differentiable with respect to both: ``mat1``'s gradient is sparse
    with its pattern). A sparse ``mat2`` gives a sparse COO result; a dense ``mat1`` with
    a sparse ``mat2`` gives a dense result."""
    what = "sparse.mm"
    if not _is_sparse(mat1):
        if _is_sparse(mat2) and isinstance(mat1, Tensor):
            if mat1.ndim != 2:
                raise ShapeError(f"{what}: expected a 2-D dense matrix, got shape "
                                 f"{list(mat1.shape)}")
            return mm(mat2.t(), mat1.t()).t()
        raise FwTypeError(f"{what}: expected a sparse tensor operand, got "
                          f"{type(mat1).__name__} and {type(mat2).__name__}")
    _check_matrix(mat1, what)
    if _is_sparse(mat2):
        _check_matrix(mat2, what)
        return mm(mat1, mat2.to_dense()).to_sparse()
    if not isinstance(mat2, Tensor):
        raise FwTypeError(f"{what}: the second operand must be a Tensor, got "
                          f"{type(mat2).__name__}")
    if mat2.ndim != 2:
        raise ShapeError(f"{what}: expected a 2-D dense matrix as the second operand, got "
                         f"shape {list(mat2.shape)}")
    if mat1.shape[1] != mat2.shape[0]:
        raise ShapeError(f"{what}: shapes {list(mat1.shape)} and {list(mat2.shape)} cannot "
                         f"be multiplied ({mat1.shape[1]} != {mat2.shape[0]})")
    if mat1.dtype is not mat2.dtype:
        raise DTypeError(f"{what}: expected both operands to share a dtype, got "
                         f"{mat1.dtype.name} (sparse) and {mat2.dtype.name} (dense)")
    if mat1.device is not mat2.device:
        raise DeviceError(f"{what}: expected both operands on one device, got "
                          f"{mat1.device} and {mat2.device}")
    rows, cols = mat1._row_col()
    return spmm_coo(mat1._v, mat2, rows, cols, mat1.shape[0])


def matmul(input, other):
    """``@`` / ``fw.matmul`` / ``fw.mm`` with a sparse operand (a 1-D dense ``other`` is a
    matrix-vector product)."""
    if _is_sparse(input) and isinstance(other, Tensor) and other.ndim == 1:
        return mm(input, other.unsqueeze(1)).squeeze(1)
    if _is_sparse(other) and isinstance(input, Tensor) and input.ndim == 1:
        return mm(input.unsqueeze(0), other).squeeze(0)
    return mm(input, other)


def spmm(input, mat2):
    """``torch.spmm``: the matrix product of a sparse (or dense) 2-D ``input`` and a dense
    2-D ``mat2``, as ``fw.mm``."""
    from ..ops.linalg import mm as dense_mm
    return dense_mm(input, mat2)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)`` with a sparse ``mat1`` and dense
    ``input`` and ``mat2`` (``input`` is ignored when ``beta`` is 0, as in PyTorch)."""
    if _is_sparse(input):
        input = input.to_dense()
    prod = mm(mat1, mat2)
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:
        return prod
    return prod + (input if beta == 1 else input * beta)


def sampled_addmm(input, mat1, mat2, *, beta=1.0, alpha=1.0):
    """``beta * input + alpha * (mat1 @ mat2)`` evaluated only at the stored positions
    of the sparse ``input`` (a sparse result of ``input``'s layout and pattern)."""
    what = "sparse.sampled_addmm"
    if not _is_sparse(input):
        raise FwTypeError(f"{what}: input must be a sparse tensor, got {type(input).__name__}")
    _check_matrix(input, what)
    for m in (mat1, mat2):
        if not isinstance(m, Tensor) or m.ndim != 2:
            raise ShapeError(f"{what}: mat1 and mat2 must be 2-D dense tensors")
    if mat1.shape[1] != mat2.shape[0] or (mat1.shape[0], mat2.shape[1]) != input.shape:
        raise ShapeError(f"{what}: shapes {list(mat1.shape)} @ {list(mat2.shape)} do not give "
                         f"the input's shape {list(input.shape)}")
    rows, cols = input._row_col()
    sampled = (F.index_select(mat1, 0, rows) * F.index_select(mat2.t(), 0, cols)).sum(-1)
    return input._with_values(input._v * beta + sampled * alpha)


# -- elementwise -------------------------------------------------------------------------
def _scalar_operand(other, what: str, s: SparseTensor):
    """A number or a 0-d / one-element tensor that scales every stored value."""
    if isinstance(other, _NUMBER):
        return other
    if isinstance(other, Tensor) and other.ndim == 0:
        return other.to(s.dtype) if other.dtype is not s.dtype else other
    raise FwTypeError(f"{what}: a sparse tensor can only be scaled by a number or a 0-d "
                      f"tensor here, got {type(other).__name__}"
                      + (f" of shape {list(other.shape)}" if isinstance(other, Tensor) else ""))


def _promoted(a: SparseTensor, b: SparseTensor, what: str):
    if a.shape != b.shape:
        raise ShapeError(f"{what}: sparse tensors must have the same shape, got "
                         f"{list(a.shape)} and {list(b.shape)}")
    if a.sparse_dim() != b.sparse_dim():
        raise ShapeError(f"{what}: sparse tensors must have the same sparse_dim, got "
                         f"{a.sparse_dim()} and {b.sparse_dim()}")
    if a.device is not b.device:
        raise DeviceError(f"{what}: expected both operands on one device, got {a.device} and "
                          f"{b.device}")
    dt = dtypes.promote_types(a.dtype, b.dtype)
    return a.to(dt), b.to(dt)


def add(input, other, *, alpha=1):
    """``input + alpha * other``: sparse + sparse is sparse in the first operand's layout
    (as PyTorch: coalesced when both operands are, else the two sets of entries
    concatenated, uncoalesced, which is how sparse gradients accumulate); sparse + dense
    is dense."""
    what = "add"
    if _is_sparse(input) and _is_sparse(other):
        a, b = _promoted(input.to_sparse_coo(), other.to_sparse_coo(), what)
        bv = b._v if alpha == 1 else b._v * alpha
        out = make_coo(F.cat([a._idx, b._idx], 1), F.cat([a._v, bv]), a.shape, False)
        if a._coalesced and b._coalesced:
            out = coalesce(out)
        return _same_layout(out, input)
    if _is_sparse(input) and isinstance(other, Tensor):
        return input.to_dense() + (other if alpha == 1 else other * alpha)
    if _is_sparse(other) and isinstance(input, Tensor):
        return input + other.to_dense() * alpha
    raise FwTypeError(f"{what}: a sparse tensor can be added to a sparse or dense tensor, not "
                      f"to {type(other if _is_sparse(input) else input).__name__} (adding a "
                      "number would make it dense: use .to_dense() first)")


def mul(input, other):
    """Elementwise product with a sparse result: by a number or 0-d tensor, by a dense
    tensor (broadcast to the sparse shape, read at the stored positions), or by another
    sparse tensor (the common positions)."""
    what = "mul"
    if not _is_sparse(input):
        input, other = other, input
    if isinstance(other, _NUMBER) or (isinstance(other, Tensor) and other.ndim == 0):
        return input._with_values(input._v * _scalar_operand(other, what, input))
    if _is_sparse(other):
        return _same_layout(_mul_sparse(*_promoted(input.to_sparse_coo(),
                                                   other.to_sparse_coo(), what)), input)
    if not isinstance(other, Tensor):
        raise FwTypeError(f"{what}: cannot multiply a sparse tensor by "
                          f"{type(other).__name__}")
    if other.device is not input.device:
        raise DeviceError(f"{what}: expected both operands on one device, got "
                          f"{input.device} and {other.device}")
    try:
        dense = other.expand(input.shape)
    except ValueError as e:
        raise ShapeError(f"{what}: dense operand of shape {list(other.shape)} does not "
                         f"broadcast to the sparse shape {list(input.shape)}") from e
    if input.layout is sparse_csr:
        picked = dense[input._rows, input._col]
    else:
        picked = dense[tuple(input._idx[d] for d in range(input.sparse_dim()))]
    dt = dtypes.promote_types(input.dtype, other.dtype)
    return input._with_values(input._v.to(dt) * picked.to(dt))


def _mul_sparse(a: SparseTensor, b: SparseTensor) -> SparseTensor:
    a, b = coalesce(a), coalesce(b)
    sd = a.sparse_dim()
    ka = linear_keys(host(a._idx, "mul"), a.shape[:sd])
    kb = linear_keys(host(b._idx, "mul"), b.shape[:sd])
    _, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    ia, ib = int_tensor(ia, a.device), int_tensor(ib, a.device)
    values = F.index_select(a._v, 0, ia) * F.index_select(b._v, 0, ib)
    return make_coo(F.index_select(a._idx, 1, ia), values, a.shape, coalesced=True)


# -- reductions --------------------------------------------------------------------------
def _dims(dim, ndim: int, what: str) -> list:
    from ..ops.shapes import normalize_dim
    dims = [dim] if isinstance(dim, int) else list(dim)
    out = sorted({normalize_dim(d, ndim, what) for d in dims})
    if len(out) != len(dims):
        raise ArgumentError(f"{what}: dim {dim} lists a dimension twice")
    return out


def sparse_sum(input: SparseTensor, dim=None, dtype=None):
    """``fw.sparse.sum``: with no ``dim`` a 0-d dense tensor; otherwise the sum over
    ``dim``, sparse while some sparse dims remain (coalesced COO) and dense once every
    sparse dim is summed."""
    what = "sparse.sum"
    if not _is_sparse(input):
        raise FwTypeError(f"{what}: expected a sparse tensor, got {type(input).__name__}")
    s = input if dtype is None else input.to(dtypes.to_dtype(dtype))
    if dim is None:
        return s._v.sum()
    s = s.to_sparse_coo()
    dims = _dims(dim, s.ndim, what)
    sd = s.sparse_dim()
    values = s._v
    dense_dims = [d - sd + 1 for d in dims if d >= sd]
    if dense_dims:
        values = values.sum(dense_dims)
    sparse_dims = [d for d in dims if d < sd]
    if not sparse_dims:
        return make_coo(s._idx, values, _drop(s.shape, dims), s._coalesced)
    keep = [d for d in range(sd) if d not in sparse_dims]
    if not keep:
        return values.sum(0)
    idx = F.index_select(s._idx, 0, int_tensor(keep, s.device))
    return coalesce(make_coo(idx, values, _drop(s.shape, dims), False))


def _drop(shape, dims) -> tuple:
    return tuple(n for d, n in enumerate(shape) if d not in dims)


def _softmax(input: SparseTensor, dim: int, dtype, log: bool) -> SparseTensor:
    what = "sparse.log_softmax" if log else "sparse.softmax"
    if not _is_sparse(input):
        raise FwTypeError(f"{what}: expected a sparse tensor, got {type(input).__name__}")
    s = input if dtype is None else input.to(dtypes.to_dtype(dtype))
    if not s.dtype.is_floating_point:
        raise DTypeError(f"{what}: expected a floating-point sparse tensor, got "
                         f"{s.dtype.name}")
    c = coalesce(s.to_sparse_coo())
    from ..ops.shapes import normalize_dim
    d = normalize_dim(dim, c.ndim, what)
    sd = c.sparse_dim()
    if d >= sd:  # a dense dim of a hybrid tensor: an ordinary softmax of the values
        fn = F.log_softmax if log else F.softmax
        return _same_layout(c._with_values(fn(c._v, d - sd + 1)), input)
    # the entries of one "line" along dim share every other sparse index: a group
    idx = host(c._idx, what)
    others = [k for k in range(sd) if k != d]
    keys = linear_keys(idx[others], [c.shape[k] for k in others]) if others else \
        np.zeros(idx.shape[1], np.int64)
    _, inv = np.unique(keys, return_inverse=True)
    n_groups = int(inv.max()) + 1 if inv.size else 0
    gid = int_tensor(inv.reshape(-1), c.device)
    group_shape = (n_groups,) + tuple(c._v.shape[1:])
    # the per-group max (a constant shift: it changes neither the result nor the gradient)
    vals = host(c._v.detach(), what).astype(np.float64)
    gmax = np.full(group_shape, -np.inf)
    np.maximum.at(gmax, inv.reshape(-1), vals)
    shift = F.index_select(F.tensor(gmax, dtype=c.dtype, device=c.device), 0, gid)
    shifted = c._v - shift
    e = shifted.exp()
    sums = F.index_add(F.zeros(group_shape, dtype=c.dtype, device=c.device), 0, gid, e)
    if log:
        out = shifted - F.index_select(sums.log(), 0, gid)
    else:
        out = e / F.index_select(sums, 0, gid)
    return _same_layout(c._with_values(out), input)


def softmax(input: SparseTensor, dim: int, dtype=None) -> SparseTensor:
    """Softmax over ``dim`` of the stored values only (the unstored entries count as
    -inf, as in PyTorch): a sparse tensor with the coalesced input's pattern."""
    return _softmax(input, dim, dtype, log=False)


def log_softmax(input: SparseTensor, dim: int, dtype=None) -> SparseTensor:
    """Log-softmax over ``dim`` of the stored values only (see :func:`softmax`)."""
    return _softmax(input, dim, dtype, log=True)


__all__ = ["mm", "addmm", "sampled_addmm", "softmax", "log_softmax", "sparse_sum", "add",
           "mul", "matmul"]
