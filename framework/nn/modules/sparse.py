"""Embedding and EmbeddingBag: a lookup table of ``num_embeddings`` vectors (weight ~ N(0, 1), the
``padding_idx`` row zeroed and kept out of the gradient)."""

from __future__ import annotations

from ...autograd import no_grad
from ...creation import empty
from ...errors import ArgumentError, ShapeError
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module


def _padding_index(owner: str, padding_idx, num_embeddings: int):
    """``padding_idx`` checked against the table size and made non-negative (None stays)."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ArgumentError(f"{owner}: padding_idx {padding_idx} must be within "
                            f"num_embeddings ({num_embeddings})")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def _check_table(owner: str, weight, num_embeddings: int, embedding_dim: int) -> None:
    """Raise ShapeError unless a given ``_weight`` is ``(num_embeddings, embedding_dim)``."""
    if tuple(weight.shape) != (num_embeddings, embedding_dim):
        raise ShapeError(f"{owner}: _weight shape {list(weight.shape)} does not match "
                         f"[{num_embeddings}, {embedding_dim}]")


def _pretrained_size(embeddings) -> tuple:
    """``(rows, cols)`` of a ``from_pretrained`` table, which must be 2-D."""
    if embeddings.ndim != 2:
        raise ShapeError(f"Embeddings parameter is expected to be 2-dimensional, got shape "
                         f"{list(embeddings.shape)}")
    return tuple(embeddings.shape)


def _zero_padding_row(weight, padding_idx) -> None:
    """Zero the ``padding_idx`` row of an embedding table (nothing when it is None)."""
    if padding_idx is not None:
        with no_grad():
            weight[padding_idx] = 0.0


class Embedding(Module):
    """Maps integer indices to rows of a learnable ``(num_embeddings, embedding_dim)``
    table (``sparse=True``: ``weight.grad`` is a sparse COO tensor, for ``optim.SGD``,
    ``optim.SparseAdam`` or ``optim.Adagrad``)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False, _weight=None,
                 _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        padding_idx = _padding_index("Embedding", padding_idx, num_embeddings)
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim, device=device,
                                          dtype=dtype), requires_grad=not _freeze)
            self.reset_parameters()
        else:
            _check_table("Embedding", _weight, num_embeddings, embedding_dim)
            self.weight = Parameter(_weight.detach(), requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        """Draw the table from N(0, 1) and zero the padding row."""
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        _zero_padding_row(self.weight, self.padding_idx)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, sparse: bool = False) -> Embedding:
        """An Embedding holding (a copy of the storage of) a 2-D ``embeddings`` tensor;
        frozen unless ``freeze=False``."""
        rows, cols = _pretrained_size(embeddings)
        return cls(rows, cols, _weight=embeddings, _freeze=freeze, padding_idx=padding_idx,
                   max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


class EmbeddingBag(Module):
    """Sums, averages or takes the max of embedding rows per bag, without materializing
    the per-index embeddings as an output (``sparse=True``: ``weight.grad`` is a sparse COO
    tensor, as for :class:`Embedding`)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight=None, include_last_offset: bool = False,
                 padding_idx: int | None = None, device=None, dtype=None):
        super().__init__()
        padding_idx = _padding_index("EmbeddingBag", padding_idx, num_embeddings)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim, device=device,
                                          dtype=dtype))
            self.reset_parameters()
        else:
            _check_table("EmbeddingBag", _weight, num_embeddings, embedding_dim)
            self.weight = Parameter(_weight.detach())

    def reset_parameters(self) -> None:
        """Draw the table from N(0, 1) and zero the padding row."""
        init.normal_(self.weight)
        _zero_padding_row(self.weight, self.padding_idx)

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                               self.scale_grad_by_freq, self.mode, self.sparse,
                               per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        mode: str = "mean", sparse: bool = False,
                        include_last_offset: bool = False,
                        padding_idx: int | None = None) -> EmbeddingBag:
        """An EmbeddingBag holding a 2-D ``embeddings`` table (frozen unless
        ``freeze=False``)."""
        rows, cols = _pretrained_size(embeddings)
        bag = cls(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                  embeddings, include_last_offset, padding_idx)
        bag.weight.requires_grad_(not freeze)
        return bag
