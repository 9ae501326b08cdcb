"""Sparse gradients: ``embedding(..., sparse=True)``'s backward and the in-place updates
that optimizers apply with a sparse ``.grad`` (SGD, Adagrad, SparseAdam).

The embedding's gradient for a leaf weight is an *uncoalesced* COO tensor, as PyTorch's:
indices = the looked-up rows (minus ``padding_idx``), values = the matching rows of the
output gradient. Across backward calls it accumulates by sparse addition (the engine adds
``.grad + new``). A weight that is not a leaf (``emb(idx, w * 2)``) gets the ordinary dense
gradient, which is what the sparse one would densify to anyway.

A sparse gradient is made while the backward runs its Python code, so it cannot be
recorded by ``fw.compile``: tracing that backward (or an optimizer step over a sparse
``.grad``) is a graph break, and the call runs eagerly (with the standard warning).
"""

from __future__ import annotations

from .._state import tls
from ..autograd.function import Function
from ..errors import AutogradError
from ..tensor import Tensor, meta_tensor
from .construct import make_coo
from .layout import sparse_csr
from .tensor import SparseTensor


def is_sparse(g) -> bool:
    """True for a sparse tensor (a sparse ``.grad``)."""
    return g.__class__ is SparseTensor


def no_trace(what: str) -> None:
    """Graph-break when a trace records: sparse gradients are made by eager code."""
    tracer = tls.tracer
    if tracer is not None:
        tracer.graph_break(what)


class EmbeddingSparseGrad(Function):
    """``embedding`` whose weight gradient is a sparse COO tensor."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx, scale_grad_by_freq):
        from ..ops.nn_ops import embedding
        ctx.save_for_backward(indices)
        ctx.weight_meta = (tuple(weight.shape), weight.dtype, weight.device)
        ctx.leaf = weight.grad_fn is None
        ctx.padding_idx, ctx.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        return embedding(indices, weight, padding_idx, scale_grad_by_freq)

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_tensors
        shape, dtype, device = ctx.weight_meta
        pad = ctx.padding_idx
        if pad is not None and pad < 0:
            pad += shape[0]
        if not ctx.leaf:  # flows on into the graph: the dense gradient
            from ..ops.nn_ops import _embedding_vjp
            w = meta_tensor(shape, dtype, device)
            return _embedding_vjp(g, (w, indices), None, pad, ctx.scale_grad_by_freq)[0], \
                None, None, None
        no_trace("the backward of embedding(sparse=True) (its .grad is a sparse tensor)")
        if ctx.scale_grad_by_freq:
            raise AutogradError("embedding_backward: scale_grad_by_freq not supported with "
                                "sparse gradients")
        flat_idx = indices.reshape(-1)
        flat_g = g.reshape(-1, shape[1]).contiguous()  # owned: clipping scales it in place
        if pad is not None:
            keep = flat_idx != pad
            flat_idx, flat_g = flat_idx[keep], flat_g[keep]
        return make_coo(flat_idx.unsqueeze(0), flat_g, shape, coalesced=False), None, None, \
            None


def embedding_sparse(indices: Tensor, weight: Tensor, padding_idx, scale_grad_by_freq):
    """``F.embedding(..., sparse=True)`` after the argument checks."""
    return EmbeddingSparseGrad.apply(weight, indices, padding_idx, bool(scale_grad_by_freq))


# -- optimizer updates -------------------------------------------------------------------
def _key(s: SparseTensor) -> tuple:
    if s.layout is sparse_csr:
        return (s._rows, s._col)
    return tuple(s._idx[d] for d in range(s.sparse_dim()))


def add_sparse_(dense: Tensor, s: SparseTensor, alpha=1) -> None:
    """``dense += alpha * s`` in place (duplicated indices add up)."""
    no_trace("an in-place update by a sparse gradient")
    values = s._v if alpha == 1 else s._v * alpha
    dense.index_put_(_key(s), values.to(dense.dtype), accumulate=True)


def masked_values(dense: Tensor, s: SparseTensor) -> Tensor:
    """``dense.sparse_mask(s)._values()``: the entries of ``dense`` at ``s``'s stored
    positions, shaped like ``s``'s values."""
    return dense[_key(s)]


def grad_norm_values(g: SparseTensor) -> Tensor:
    """The values whose norm is the norm of sparse gradient ``g`` (duplicates summed)."""
    no_trace("the norm of a sparse gradient")
    return g.coalesce()._v
