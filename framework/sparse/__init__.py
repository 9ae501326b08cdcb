"""Sparse tensors (``torch.sparse``): COO and CSR layouts with autograd.

``fw.sparse_coo_tensor`` / ``fw.sparse_csr_tensor`` / ``dense.to_sparse()`` build a
:class:`SparseTensor` (see :mod:`framework.sparse.tensor` for why it is its own class and
not a ``Tensor`` subclass). This namespace holds the operations PyTorch keeps in
``torch.sparse``; ``@``, ``fw.mm`` and ``fw.matmul`` route a sparse operand here too.
User guide: docs/tensors-and-autograd.md, "Sparse tensors".
"""

from __future__ import annotations

from .construct import attach_tensor_methods, sparse_coo_tensor, sparse_csr_tensor
from .layout import layout, sparse_coo, sparse_csr, strided
from .ops import addmm, log_softmax, mm, sampled_addmm, softmax
from .ops import sparse_sum as sum  # noqa: A001  (torch.sparse.sum)
from .tensor import SparseTensor

attach_tensor_methods()

__all__ = ["SparseTensor", "sparse_coo_tensor", "sparse_csr_tensor", "layout", "strided",
           "sparse_coo", "sparse_csr", "mm", "addmm", "sampled_addmm", "sum", "softmax",
           "log_softmax"]
