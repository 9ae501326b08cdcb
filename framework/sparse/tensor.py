"""``SparseTensor``: a COO or CSR sparse tensor made of dense framework tensors.

Why a class of its own and not a ``Tensor`` subclass: PyTorch's sparse tensors are Tensors,
but here ``Tensor`` *is* a dense view of a buffer (``apply`` reads ``_data`` straight into
the backend kernels, and a ``Tensor`` without data means "metadata only"). A subclass
would either be silently treated as a meta tensor by every dense op or need a check on
the dense hot path. So a sparse tensor is a small object holding its parts as ordinary
tensors (int64 ``indices`` or ``crow_indices``/``col_indices``, and ``values``) and
quacking like a tensor for the surface listed in docs/tensors-and-autograd.md ("Sparse
tensors"); any other Tensor method raises a NotImplementedError naming it. Dense ops never
see it: the public functions that take one (``fw.mm``, ``fw.matmul``, ``@``) route to
:mod:`framework.sparse.ops` before dispatch.

Autograd rides on the ``values`` tensor: every sparse op is written with dense ops on the
values (the index tensors are constants), so gradients flow through them, and the
``.grad`` of a sparse leaf is the sparse tensor of ``values.grad`` with the leaf's own
pattern, as in PyTorch.
"""

from __future__ import annotations

from .. import dtypes
from ..errors import ArgumentError, AutogradError, FwTypeError
from ..tensor import Size, Tensor
from .layout import sparse_coo, sparse_csr


class SparseTensor:
    """A sparse tensor of layout ``fw.sparse_coo`` or ``fw.sparse_csr`` (build one with
    ``fw.sparse_coo_tensor``, ``fw.sparse_csr_tensor`` or ``dense.to_sparse()``)."""

    __slots__ = ("layout", "shape", "_v", "_idx", "_crow", "_col", "_rows",
                 "_coalesced", "_grad_cache", "__weakref__")

    _fw_sparse = True           # what the routing checks in dense public functions test
    __array_priority__ = 1001   # ``ndarray @ sparse`` defers to the reflected operator

    # -- metadata ---------------------------------------------------------------------
    @property
    def dtype(self):
        return self._v.dtype

    @property
    def device(self):
        return self._v.device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        """Number of dimensions (sparse and dense)."""
        return len(self.shape)

    def size(self, dim: int | None = None):
        """The shape as a ``Size``, or one dimension of it."""
        if dim is None:
            return Size(self.shape)
        from ..ops.shapes import normalize_dim
        return self.shape[normalize_dim(dim, len(self.shape), "size")]

    def numel(self) -> int:
        """Number of elements of the dense tensor this one stands for."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    nelement = numel

    @property
    def is_sparse(self) -> bool:
        """True for the COO layout (as PyTorch: False for CSR)."""
        return self.layout is sparse_coo

    @property
    def is_sparse_csr(self) -> bool:
        return self.layout is sparse_csr

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_meta(self) -> bool:
        return self._v.is_meta

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def is_complex(self) -> bool:
        return self.dtype.is_complex

    def get_device(self) -> int:
        return self._v.get_device()

    def sparse_dim(self) -> int:
        """Number of sparse (indexed) dimensions."""
        return self._idx.shape[0] if self.layout is sparse_coo else 2

    def dense_dim(self) -> int:
        """Number of dense trailing dimensions stored in each value (hybrid COO)."""
        return self._v.ndim - 1

    def _nnz(self) -> int:
        """Number of stored values (duplicates of an uncoalesced tensor counted)."""
        return self._v.shape[0]

    # -- parts --------------------------------------------------------------------------
    def _indices(self) -> Tensor:
        """The ``(sparse_dim, nnz)`` int64 indices, coalesced or not (COO)."""
        self._need(sparse_coo, "_indices")
        return self._idx

    def _values(self) -> Tensor:
        """The stored values, coalesced or not."""
        return self._v

    def indices(self) -> Tensor:
        """The indices of a coalesced COO tensor."""
        self._need(sparse_coo, "indices")
        if not self._coalesced:
            raise ArgumentError("indices(): Cannot get indices on an uncoalesced tensor, please "
                                "call .coalesce() first")
        return self._idx

    def values(self) -> Tensor:
        """The stored values: ``(nnz, *dense_dims)`` (COO: the tensor must be coalesced)."""
        if self.layout is sparse_coo and not self._coalesced:
            raise ArgumentError("values(): Cannot get values on an uncoalesced tensor, please "
                                "call .coalesce() first")
        return self._v

    def crow_indices(self) -> Tensor:
        """The compressed row pointers ``(rows + 1,)`` of a CSR tensor."""
        self._need(sparse_csr, "crow_indices")
        return self._crow

    def col_indices(self) -> Tensor:
        """The column index of each stored value of a CSR tensor."""
        self._need(sparse_csr, "col_indices")
        return self._col

    def is_coalesced(self) -> bool:
        """True when indices are sorted and unique (always for CSR)."""
        return self._coalesced

    def _need(self, lay, what: str) -> None:
        if self.layout is not lay:
            raise ArgumentError(f"{what}(): expected a tensor of layout {lay.name}, got "
                                f"{self.layout.name}")

    def _row_col(self):
        """(row index, column index) of every stored value of a 2-D sparse matrix."""
        if self.layout is sparse_csr:
            return self._rows, self._col
        return self._idx[0], self._idx[1]

    # -- autograd -----------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._v.requires_grad

    @property
    def grad_fn(self):
        return self._v.grad_fn

    @property
    def is_leaf(self) -> bool:
        return self._v.grad_fn is None

    def requires_grad_(self, requires_grad: bool = True) -> SparseTensor:
        """Make this (leaf) sparse tensor require grad: its ``.grad`` is then a sparse
        tensor with this tensor's indices."""
        self._v.requires_grad_(requires_grad)
        return self

    @property
    def grad(self):
        """The gradient: a sparse tensor of this tensor's layout and pattern (None until a
        backward pass reaches it)."""
        g = self._v.grad
        if g is None:
            return None
        cache = self._grad_cache
        if cache is None or cache[0] is not g:
            cache = self._grad_cache = (g, self._with_values(g))
        return cache[1]

    @grad.setter
    def grad(self, value) -> None:
        if value is None:
            self._v.grad = None
            return
        if not isinstance(value, SparseTensor) or value.layout is not self.layout or \
                value.shape != self.shape or value._nnz() != self._nnz():
            raise AutogradError(f"grad: a sparse tensor's grad must be a sparse tensor of its "
                                f"layout, shape {list(self.shape)} and nnz {self._nnz()}")
        self._v.grad = value._v

    def detach(self) -> SparseTensor:
        """The same sparse tensor outside autograd (parts shared)."""
        return self._with_values(self._v.detach())

    @property
    def data(self) -> SparseTensor:
        return self.detach()

    def clone(self) -> SparseTensor:
        """A copy of the indices and values (differentiable through the values)."""
        out = self._with_values(self._v.clone())
        if self.layout is sparse_coo:
            out._idx = self._idx.clone()
        else:
            out._crow, out._col, out._rows = self._crow.clone(), self._col.clone(), \
                self._rows.clone()
        return out

    def _with_values(self, values: Tensor) -> SparseTensor:
        """This tensor's structure (shared index tensors) with other values."""
        out = object.__new__(SparseTensor)
        out.layout, out.shape, out._v = self.layout, self.shape, values
        out._idx, out._crow, out._col, out._rows = self._idx, self._crow, self._col, self._rows
        out._coalesced, out._grad_cache = self._coalesced, None
        return out

    # -- conversions --------------------------------------------------------------------
    def to(self, *args, **kwargs) -> SparseTensor:
        """A copy on another device and/or of another dtype (``to("cuda")``,
        ``to(fw.float64)``); the index tensors move with the values."""
        from ..tensor_methods import _parse_to
        kwargs.pop("copy", None)
        dtype, device = _parse_to(args, dict(kwargs))
        out = self
        if device is not None and device is not self.device:
            out = out._with_values(out._v.to(device))
            if out.layout is sparse_coo:
                out._idx = self._idx.to(device)
            else:
                out._crow, out._col, out._rows = (self._crow.to(device), self._col.to(device),
                                                  self._rows.to(device))
        if dtype is not None and dtype is not out.dtype:
            out = out._with_values(out._v.to(dtype))
        return out

    def cpu(self) -> SparseTensor:
        return self.to("cpu")

    def cuda(self, device=None) -> SparseTensor:
        return self.to("cuda" if device is None else device)

    def float(self) -> SparseTensor:
        return self.to(dtypes.float32)

    def double(self) -> SparseTensor:
        return self.to(dtypes.float64)

    def type_as(self, other) -> SparseTensor:
        return self.to(other.dtype)

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        """The dense tensor (duplicates summed); differentiable through the values."""
        from .convert import to_dense
        out = to_dense(self)
        return out if dtype is None else out.to(dtype)

    def coalesce(self) -> SparseTensor:
        """Duplicates summed, indices sorted (returns ``self`` when already coalesced)."""
        from .convert import coalesce
        return coalesce(self)

    def to_sparse(self, *args, layout=None, **kwargs) -> SparseTensor:
        """This tensor in ``layout`` (default COO)."""
        if layout is None or layout is sparse_coo:
            return self.to_sparse_coo()
        if layout is sparse_csr:
            return self.to_sparse_csr()
        raise ArgumentError(f"to_sparse(): unsupported layout {layout}")

    def to_sparse_coo(self) -> SparseTensor:
        """This tensor in the COO layout."""
        from .convert import csr_to_coo
        return self if self.layout is sparse_coo else csr_to_coo(self)

    def to_sparse_csr(self, dense_dim=None) -> SparseTensor:
        """This 2-D tensor in the CSR layout."""
        from .convert import coo_to_csr
        return self if self.layout is sparse_csr else coo_to_csr(self)

    def t(self) -> SparseTensor:
        """The transpose of a 2-D sparse tensor (same layout)."""
        if self.sparse_dim() != 2 or self.ndim != 2:
            raise ArgumentError(f"t(): expects a 2-D sparse tensor with no dense dims, got "
                                f"shape {list(self.shape)} with sparse_dim {self.sparse_dim()}")
        return self.transpose(0, 1)

    def transpose(self, dim0: int, dim1: int) -> SparseTensor:
        """Swap two sparse dims (or two dense dims) of a sparse tensor."""
        from .convert import transpose
        return transpose(self, dim0, dim1)

    def zero_(self) -> SparseTensor:
        """Drop every stored value in place (nnz becomes 0), as PyTorch's sparse zero_."""
        from .convert import emptied
        e = emptied(self)
        self._v, self._idx, self._crow, self._col, self._rows = \
            e._v, e._idx, e._crow, e._col, e._rows
        self._coalesced, self._grad_cache = True, None
        return self

    def mul_(self, other) -> SparseTensor:
        """Scale the stored values in place by a number or a 0-d tensor."""
        from .ops import _scalar_operand
        self._v.mul_(_scalar_operand(other, "mul_", self))
        return self

    def div_(self, other) -> SparseTensor:
        """Divide the stored values in place by a number or a 0-d tensor."""
        from .ops import _scalar_operand
        self._v.div_(_scalar_operand(other, "div_", self))
        return self

    # -- ops ----------------------------------------------------------------------------
    def __add__(self, other):
        from .ops import add
        return add(self, other)

    def __radd__(self, other):
        from .ops import add
        return add(other, self)

    def add(self, other, *, alpha=1):
        from .ops import add
        return add(self, other, alpha=alpha)

    def __sub__(self, other):
        from .ops import add
        return add(self, other, alpha=-1)

    def sub(self, other, *, alpha=1):
        from .ops import add
        return add(self, other, alpha=-alpha)

    def __neg__(self):
        return self._with_values(-self._v)

    def neg(self):
        return -self

    def __mul__(self, other):
        from .ops import mul
        return mul(self, other)

    __rmul__ = __mul__
    mul = __mul__

    def __truediv__(self, other):
        from .ops import _scalar_operand
        return self._with_values(self._v / _scalar_operand(other, "div", self))

    div = __truediv__

    def __matmul__(self, other):
        from .ops import matmul
        return matmul(self, other)

    def __rmatmul__(self, other):
        from .ops import matmul
        return matmul(other, self)

    def matmul(self, other):
        from .ops import matmul
        return matmul(self, other)

    def mm(self, mat2):
        from .ops import mm
        return mm(self, mat2)

    def sum(self, dim=None, keepdim=False, dtype=None):
        """``fw.sparse.sum``: a 0-d dense tensor, or the sum over ``dim``."""
        if keepdim:
            raise NotImplementedError("sum(keepdim=True) is not implemented for sparse "
                                      "tensors (PyTorch has no sparse keepdim either)")
        from .ops import sparse_sum
        return sparse_sum(self, dim, dtype=dtype)

    def __len__(self) -> int:
        return self.shape[0]

    __hash__ = object.__hash__

    def __bool__(self):
        raise FwTypeError("bool(): the truth value of a sparse tensor is ambiguous")

    def __array__(self, dtype=None, copy=None):
        raise FwTypeError(f"a {self.layout.name} sparse tensor cannot be used where a dense "
                          "array is expected; call .to_dense() first")

    def numpy(self, *, force: bool = False):
        raise FwTypeError("numpy(): not supported for sparse tensors; call "
                          ".to_dense().numpy()")

    def __repr__(self) -> str:
        from .convert import sparse_repr
        return sparse_repr(self)

    def __getattr__(self, name: str):
        if not name.startswith("_") and hasattr(Tensor, name):
            raise SparseUnsupportedError(f"{name}(): not supported for {self.layout.name} sparse "
                                      "tensors (see docs/tensors-and-autograd.md, \"Sparse "
                                      "tensors\"); convert with .to_dense() first")
        raise AttributeError(f"'SparseTensor' object has no attribute {name!r}")

    def __reduce_ex__(self, protocol):
        from .convert import rebuild_args
        return rebuild_args(self)


class SparseUnsupportedError(NotImplementedError, AttributeError):
    """A Tensor method with no sparse implementation (also an AttributeError, so
    ``hasattr`` and ``getattr(x, name, default)`` keep working)."""
