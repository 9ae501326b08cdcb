"""Linear maps, dropout, embedding and vector utilities of ``nn.functional``."""

from __future__ import annotations

import warnings

from ... import dtypes, ops
from ..._state import tls
from ...amp.autocast import autocast_args, autocast_op
from ...errors import ArgumentError, DTypeError, ShapeError
from ...ops.creation_ops import uniform
from ...ops.inplace import commit, mark
from ...ops.math_extra import pdist  # F.pdist is torch.pdist
from ...ops.nn_ops import embedding as _embedding_op
from ...ops.shapes import normalize_dim
from ...tensor import Tensor


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` (weight is ``(out_features, in_features)``)."""
    if tls.autocast is not None:
        input, weight, bias = autocast_args("linear", input, weight, bias)
    if weight.ndim not in (1, 2):
        raise ShapeError(f"linear: weight must be 1-D or 2-D, got shape {list(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise ShapeError(f"linear: input shape {list(input.shape)} does not match weight shape "
                         f"{list(weight.shape)} (expected input[..., {weight.shape[-1]}])")
    if input.dtype is not weight.dtype:
        raise DTypeError(f"linear: input dtype {input.dtype.name} differs from weight dtype "
                         f"{weight.dtype.name}")
    out = ops.matmul(input, weight.t() if weight.ndim == 2 else weight)
    return out if bias is None else out + bias


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """``y_k = x1^T W_k x2 + b_k`` with weight ``(out, in1, in2)``."""
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or \
            input2.shape[-1] != weight.shape[2] or input1.shape[:-1] != input2.shape[:-1]:
        raise ShapeError(f"bilinear: inputs {list(input1.shape)} and {list(input2.shape)} do not "
                         f"match weight {list(weight.shape)} (out, in1, in2)")
    lead = tuple(input1.shape[:-1])
    a = input1.reshape((-1, input1.shape[-1]))
    b = input2.reshape((-1, input2.shape[-1]))
    out = ops.einsum("ni,oij,nj->no", a, weight, b).reshape(lead + (weight.shape[0],))
    return out if bias is None else out + bias


# -- dropout ----------------------------------------------------------------------------
def _check_p(p, name):
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")


def _apply_mask(input, mask_shape, p, inplace, name):
    since = mark() if inplace else None
    if p == 1.0:
        out = input * 0.0
    else:
        keep = uniform(mask_shape, dtype=input.dtype, device=input.device) >= p
        out = input * (keep.to(input.dtype) * (1.0 / (1.0 - p)))
    return commit(input, out, name + "_", since) if inplace else out


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (identity when not ``training``)."""
    _check_p(p, "dropout")
    if not training or p == 0.0:
        return input
    return _apply_mask(input, input.shape, p, inplace, "dropout")


def _feature_dropout(input, p, training, inplace, name, unbatched_ndim):
    """Channel-wise dropout: one mask value per (sample, channel), or per channel for an
    unbatched input of ``unbatched_ndim`` dims."""
    _check_p(p, name)
    if input.ndim < 2:
        raise ShapeError(f"{name}: expected an input with a channel dim, got shape "
                         f"{list(input.shape)}")
    if not training or p == 0.0:
        return input
    lead = 1 if input.ndim == unbatched_ndim else 2
    mask_shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    return _apply_mask(input, mask_shape, p, inplace, name)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) / (C, L) inputs."""
    if input.ndim not in (2, 3):
        raise ShapeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D "
                         "input")
    return _feature_dropout(input, p, training, inplace, "dropout1d", 2)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) inputs; a 3-D input is read as (N, C, L), as
    PyTorch currently does (with its warning)."""
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that "
                      "channel-wise 1D dropout behavior is desired - input is interpreted as "
                      "shape (N, C, L), where C is the channel dim. To maintain the 1D "
                      "channel-wise dropout behavior, please switch to using dropout1d "
                      "instead.", stacklevel=2)
    elif input.ndim != 4:
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is "
                      "deprecated and will result in an error in a future release. Please use "
                      "a 3-D or 4-D input.", stacklevel=2)
    return _feature_dropout(input, p, training, inplace, "dropout2d", 0)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) / (C, D, H, W) inputs."""
    if input.ndim not in (4, 5):
        warnings.warn(f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is "
                      "deprecated and will result in an error in a future release. Please use "
                      "a 4-D or 5-D input.", stacklevel=2)
    return _feature_dropout(input, p, training, inplace, "dropout3d", 4)


# -- embedding --------------------------------------------------------------------------
def _renorm_rows_(weight: Tensor, indices: Tensor, max_norm: float, norm_type: float):
    """Rescale (in place) the rows of ``weight`` used by ``indices`` whose
    ``norm_type``-norm exceeds ``max_norm``, as PyTorch's ``embedding_renorm_``."""
    from ...autograd import no_grad
    flat = indices.reshape(-1)
    with no_grad():
        rows = ops.index_select(weight, 0, flat)
        norms = ops.norm(rows, norm_type, 1, True)
        scale = ops.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight.index_put_((flat,), rows * scale)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by integer ``input``; row ``padding_idx`` gets no
    gradient; with ``max_norm`` the used rows are first renormalized in place; with
    ``sparse=True`` the gradient of a leaf ``weight`` is a sparse COO tensor."""
    if padding_idx is not None:
        n = weight.shape[0]
        if not -n <= padding_idx < n:
            raise ArgumentError(f"embedding: padding_idx {padding_idx} must be within "
                                f"num_embeddings ({n})")
    if max_norm is not None:
        _renorm_rows_(weight, input, max_norm, norm_type)
    if sparse:
        from ...sparse.grad import embedding_sparse
        return embedding_sparse(input, weight, padding_idx, scale_grad_by_freq)
    return _embedding_op(input, weight, padding_idx, scale_grad_by_freq)


def _bags_from_offsets(input: Tensor, offsets: Tensor, include_last_offset: bool):
    """Bag offsets into a 1-D ``input`` -> a padded (B, Lmax) matrix of positions in
    ``input`` and its validity mask (the longest bag is read on the host: sizes are data;
    only ``mode='max'`` needs this form)."""
    n = input.shape[0]
    starts = offsets[:-1] if include_last_offset else offsets
    ends = offsets[1:] if include_last_offset else ops.cat(
        [offsets[1:], ops.full((1,), n, dtype=offsets.dtype, device=offsets.device)])
    lengths = ends - starts
    lmax = int(lengths.max()) if lengths.numel() else 0
    pos = starts.unsqueeze(1) + ops.arange(lmax, device=input.device)
    valid = ops.arange(lmax, device=input.device) < lengths.unsqueeze(1)
    return ops.where(valid, pos, 0).clamp(max=max(n - 1, 0)), valid


def _bag_of_each_position(input: Tensor, offsets: Tensor, include_last_offset: bool):
    """The bag (B of them) that each position of a 1-D ``input`` falls in, and whether it
    falls in one at all, without reading data on the host (so a capture and an ONNX export
    see fixed shapes): mark each bag start, a running count of the marks is the bag."""
    n = input.shape[0]
    starts = offsets[:-1] if include_last_offset else offsets
    marks = ops.full((n + 1,), 0, dtype=dtypes.int64, device=input.device)
    marks = ops.index_add(marks, 0, starts.to(dtypes.int64),
                          ops.full(tuple(starts.shape), 1, dtype=dtypes.int64,
                                   device=input.device))
    bag = ops.cumsum(marks[:n], 0) - 1
    valid = bag >= 0
    if include_last_offset:
        valid = valid & (ops.arange(n, device=input.device) < offsets[-1])
    return bag.clamp(min=0), valid, starts.shape[0]


def _segment_sum_or_mean(input, weight, offsets, include_last_offset, padding_idx, psw, mode,
                         embed):
    """``mode='sum'`` / ``'mean'`` of a 1-D ``input`` split at ``offsets``: rows added into
    their bag with ``index_add`` (``embed`` looks the rows up)."""
    bag, valid, nbags = _bag_of_each_position(input, offsets, include_last_offset)
    if padding_idx is not None:
        valid = valid & (input != padding_idx)
    rows = ops.where(valid.unsqueeze(-1), embed(input), 0.0)
    if psw is not None:
        rows = rows * psw.to(rows.dtype).unsqueeze(-1)
    zeros = ops.full((nbags, weight.shape[1]), 0.0, dtype=rows.dtype, device=rows.device)
    if nbags == 0:
        return zeros
    total = ops.index_add(zeros, 0, bag, rows)
    if mode == "sum":
        return total
    ones = ops.full((nbags,), 0.0, dtype=rows.dtype, device=rows.device)
    count = ops.index_add(ones, 0, bag, valid.to(rows.dtype))
    return total / count.clamp(min=1).unsqueeze(-1)


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm: float | None = None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Sum, mean or max of embedding rows per bag: rows of a 2-D ``input`` (B, L), or
    segments of a 1-D ``input`` starting at ``offsets``. Entries equal to ``padding_idx``
    are left out; empty bags give zeros. ``sparse=True``: the gradient of a leaf ``weight``
    is a sparse COO tensor (one row per looked-up index), as for :func:`embedding`."""
    if mode not in ("sum", "mean", "max"):
        raise ArgumentError(f"embedding_bag: mode has to be one of sum, mean or max, got "
                            f"{mode!r}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise ArgumentError(f"embedding_bag: per_sample_weights was not None; only "
                                f"mode='sum' supports them (got mode={mode!r})")
        if per_sample_weights.shape != input.shape:
            raise ShapeError(f"embedding_bag: per_sample_weights shape "
                             f"{list(per_sample_weights.shape)} must match input shape "
                             f"{list(input.shape)}")
    if input.ndim == 2:
        if offsets is not None:
            raise ArgumentError("embedding_bag: if input is 2-D, offsets must be None")
        idx = input
        valid = ops.full(input.shape, True, device=input.device)
        psw = per_sample_weights
    elif input.ndim == 1:
        if offsets is None or offsets.ndim != 1:
            raise ArgumentError("embedding_bag: a 1-D input needs 1-D offsets")
        if mode != "max":
            if padding_idx is not None and padding_idx < 0:
                padding_idx += weight.shape[0]
            return _segment_sum_or_mean(
                input, weight, offsets, include_last_offset, padding_idx,
                per_sample_weights, mode,
                lambda i: embedding(i, weight, None, max_norm, norm_type, scale_grad_by_freq,
                                    sparse))
        pos, valid = _bags_from_offsets(input, offsets, include_last_offset)
        idx = ops.getitem(input, pos) if input.shape[0] else pos
        psw = None if per_sample_weights is None else ops.getitem(per_sample_weights, pos)
    else:
        raise ShapeError(f"embedding_bag: input has to be 1-D or 2-D, got shape "
                         f"{list(input.shape)}")
    if padding_idx is not None:
        padding_idx = padding_idx + weight.shape[0] if padding_idx < 0 else padding_idx
        valid = valid & (idx != padding_idx)
    rows = embedding(idx, weight, None, max_norm, norm_type, scale_grad_by_freq, sparse)
    mask = valid.unsqueeze(-1)
    if mode == "max":
        out = ops.where(mask, rows, float("-inf")).amax(1)
        return ops.where(valid.any(1, keepdim=True), out, 0.0)
    if psw is not None:
        rows = rows * psw.to(rows.dtype).unsqueeze(-1)
    total = ops.where(mask, rows, 0.0).sum(1)
    if mode == "sum":
        return total
    count = valid.sum(1, keepdim=True).clamp(min=1).to(total.dtype)
    return total / count


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Int64 one-hot encoding with a new last dim of ``num_classes``."""
    return ops.one_hot(tensor, num_classes)


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims (``fw.pad``)."""
    return ops.pad(input, pad, mode, value)


# -- distances and normalization of vectors --------------------------------------------
def _vector_norm(x: Tensor, p, dim: int, keepdim: bool) -> Tensor:
    return ops.norm(x, p, dim, keepdim)


@autocast_op("normalize")
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out=None) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``."""
    if out is not None:
        raise ArgumentError("normalize: out= is not supported")
    d = normalize_dim(dim, input.ndim, "normalize")
    denom = ops.clamp(_vector_norm(input, p, d, True), min=eps)
    return input / denom


@autocast_op("cosine_similarity")
def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps))`` along ``dim`` (broadcasting)."""
    a, b = ops.broadcast_tensors(x1, x2)
    d = normalize_dim(dim, a.ndim, "cosine_similarity")
    na = ops.clamp(_vector_norm(a, 2, d, True), min=eps)
    nb = ops.clamp(_vector_norm(b, 2, d, True), min=eps)
    return ((a / na) * (b / nb)).sum(d)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` along the last dim."""
    diff = x1 - x2 + eps
    if diff.ndim == 0:
        raise ShapeError("pairwise_distance: inputs must have at least 1 dimension")
    return _vector_norm(diff, p, diff.ndim - 1, keepdim)


__all__ = ["linear", "bilinear", "dropout", "dropout1d", "dropout2d", "dropout3d",
           "embedding", "embedding_bag", "one_hot", "pad", "normalize", "cosine_similarity",
           "pairwise_distance", "pdist"]
