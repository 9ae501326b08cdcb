"""Loss functions with PyTorch's ``reduction`` semantics ('none' | 'mean' | 'sum', plus
'batchmean' for ``kl_div``)."""

from __future__ import annotations

import math
import warnings

from ... import ops
from ..._state import tls
from ...amp.autocast import autocast_op
from ...autograd import no_grad
from ...dtypes import FLOAT, INT
from ...errors import ArgumentError, DTypeError, ShapeError
from ...ops.nn_ops import cross_entropy_rows
from ...ops.shapes import broadcast_shapes
from ...tensor import Tensor
from ._activation import _softplus1
from ._misc import pairwise_distance

_REDUCTIONS = ("none", "mean", "sum")


def _legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _reduce(loss: Tensor, reduction: str, name: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ArgumentError(f"{name}: {reduction!r} is not a valid value for reduction; expected "
                        "'none', 'mean' or 'sum'")


def _check_reduction(reduction, name, extra=()):
    if reduction not in _REDUCTIONS + tuple(extra):
        raise ArgumentError(f"{name}: {reduction!r} is not a valid value for reduction; "
                            f"expected one of {list(_REDUCTIONS + tuple(extra))}")


def _pair(input, target, name):
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{name}: input and target must be Tensors, got "
                        f"{type(input).__name__} and {type(target).__name__}")
    for t in (input, target):
        if t.dtype.is_complex:  # (x - y)^2 etc. would be complex, not a distance
            raise DTypeError(f"{name}: {t.dtype.name} tensors are not supported")
    if input.shape != target.shape:
        broadcast_shapes(input.shape, target.shape, name)  # ShapeError naming the shapes
        warnings.warn(f"{name}: using a target size ({_size(target.shape)}) that is different "
                      f"to the input size ({_size(input.shape)}). This will likely lead to "
                      "incorrect results due to broadcasting. Please ensure they have the "
                      "same size.", UserWarning, stacklevel=4)  # + the autocast_op frame
    return input, target


def _size(shape):
    return f"fw.Size({list(shape)})"


@autocast_op("mse_loss")
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean") -> Tensor:
    """Mean squared error ``(x - y)^2``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    input, target = _pair(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


@autocast_op("l1_loss")
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean") -> Tensor:
    """Mean absolute error ``|x - y|``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    input, target = _pair(input, target, "l1_loss")
    return _reduce(ops.abs(input - target), reduction, "l1_loss")


@autocast_op("smooth_l1_loss")
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta: float = 1.0) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - beta / 2``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise ArgumentError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    input, target = _pair(input, target, "smooth_l1_loss")
    d = ops.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    loss = ops.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


@autocast_op("huber_loss")
def huber_loss(input, target, reduction="mean", delta: float = 1.0,
               weight=None) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta * (|d| - delta / 2)``."""
    if delta <= 0:
        raise ArgumentError(f"huber_loss: delta must be positive, got {delta}")
    input, target = _pair(input, target, "huber_loss")
    d = ops.abs(input - target)
    loss = ops.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "huber_loss")


# -- classification ---------------------------------------------------------------------
def _class_last(input: Tensor, name: str):
    """(N, C, d1, ...) -> (N*d1*..., C); (C,) -> (1, C)."""
    if input.ndim == 1:
        return input.unsqueeze(0)
    if input.ndim == 2:
        return input
    if input.ndim == 0:
        raise ShapeError(f"{name}: input must have at least 1 dimension (C,) or (N, C, ...)")
    perm = (0,) + tuple(range(2, input.ndim)) + (1,)
    return input.permute(perm).reshape((-1, input.shape[1]))


def _check_target_shape(input, target, name):
    expect = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expect:
        raise ShapeError(f"{name}: expected target of shape {list(expect)} for input of shape "
                         f"{list(input.shape)}, got {list(target.shape)}")


def _check_weight(weight, c, name):
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != c):
        raise ShapeError(f"{name}: weight tensor should be defined either for all {c} classes "
                         f"or no classes but got weight tensor of shape {list(weight.shape)}")


def _weighted_nll(logp2, target1, weight, ignore_index, reduction, name):
    """NLL over rows of (M, C) log-probabilities; returns (M,) losses or the reduction."""
    ignored = target1 == ignore_index
    safe = ops.where(ignored, 0, target1)
    picked = ops.gather(logp2, 1, safe.unsqueeze(1)).squeeze(1)
    w = ops.full((target1.shape[0],), 1.0, dtype=logp2.dtype, device=logp2.device) \
        if weight is None else ops.gather(weight.to(logp2.dtype), 0, safe)
    w = ops.where(ignored, 0.0, w)
    loss = -picked * w
    if reduction == "mean":
        return loss.sum() / w.sum(), w
    return loss, w


@autocast_op("nll_loss")
def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction="mean") -> Tensor:
    """Negative log-likelihood of class indices; ``input`` holds log-probabilities
    (N, C) or (N, C, d1, ...) or (C,)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "nll_loss")
    if target.dtype.category != INT:
        raise DTypeError(f"nll_loss: expected target of class indices (int64), got "
                         f"{target.dtype.name}")
    _check_target_shape(input, target, "nll_loss")
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    _check_weight(weight, c, "nll_loss")
    loss, _ = _weighted_nll(_class_last(input, "nll_loss"), target.reshape(-1), weight,
                            ignore_index, reduction, "nll_loss")
    if reduction == "mean":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.reshape(target.shape)


@autocast_op("cross_entropy")
def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction="mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits ``input`` ((C,), (N, C) or (N, C, d1, ...)) and class
    indices or class probabilities ``target``, with ``weight``, ``ignore_index`` and
    ``label_smoothing``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                            f"{label_smoothing}")
    if input.dtype.category != FLOAT:
        raise DTypeError(f"cross_entropy: expected floating-point logits, got "
                         f"{input.dtype.name}")
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    _check_weight(weight, c, "cross_entropy")
    if target.dtype.category == FLOAT:
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing, c)
    if target.dtype.category != INT:
        raise DTypeError(f"cross_entropy: target must be class indices (int64) or class "
                         f"probabilities (float), got {target.dtype.name}")
    _check_target_shape(input, target, "cross_entropy")
    x2 = _class_last(input, "cross_entropy")
    t1 = target.reshape(-1)
    if weight is None and label_smoothing == 0.0:
        rows = cross_entropy_rows(x2, t1, ignore_index)  # one fused composite node
        if reduction == "none":
            return rows.reshape(target.shape)
        if reduction == "sum":
            return rows.sum()
        count = (t1 != ignore_index).sum().to(rows.dtype)
        return rows.sum() / count
    logp = ops.log_softmax(x2, 1)
    nll, w = _weighted_nll(logp, t1, weight, ignore_index, "none", "cross_entropy")
    if label_smoothing > 0:
        cls_w = logp if weight is None else logp * weight.to(logp.dtype)
        smooth = ops.where(t1 == ignore_index, 0.0, -cls_w.sum(1))
        loss = nll * (1 - label_smoothing) + smooth * (label_smoothing / c)
    else:
        loss = nll
    if reduction == "none":
        return loss.reshape(target.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing, c):
    if target.shape != input.shape:
        raise ShapeError(f"cross_entropy: class-probability target must have the input's shape "
                         f"{list(input.shape)}, got {list(target.shape)}")
    logp = ops.log_softmax(input, 0 if input.ndim == 1 else 1)
    t = target.to(logp.dtype)
    if label_smoothing > 0:
        t = t * (1 - label_smoothing) + label_smoothing / c
    prod = logp * t
    if weight is not None:
        shape = (c,) + (1,) * (input.ndim - 2) if input.ndim > 1 else (c,)
        prod = prod * weight.to(logp.dtype).reshape(shape)
    loss = -prod.sum(0 if input.ndim == 1 else 1)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    n = 1 if input.ndim == 1 else input.numel() // c
    return loss.sum() / n


@autocast_op("binary_cross_entropy")
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean") -> Tensor:
    """``-w (y log x + (1 - y) log(1 - x))`` on probabilities (logs clamped at -100)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if input.shape != target.shape:
        raise ShapeError(f"binary_cross_entropy: using a target size ({list(target.shape)}) "
                         f"that is different to the input size ({list(input.shape)}) is not "
                         "supported; please ensure they have the same size")
    if tls.tracer is None:  # eager: PyTorch's value check (a traced graph cannot branch)
        with no_grad():
            bad = ~((input >= 0) & (input <= 1))
            if bad.any().item():
                raise ArgumentError("binary_cross_entropy: all elements of input should be "
                                    "between 0 and 1 (apply sigmoid first, or use "
                                    "binary_cross_entropy_with_logits)")
    log_x = ops.clamp(ops.log(input), min=-100.0)
    log_1mx = ops.clamp(ops.log(1 - input), min=-100.0)
    loss = -(target * log_x + (1 - target) * log_1mx)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


@autocast_op("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula, with ``pos_weight`` for the
    positive class."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if input.shape != target.shape:
        raise ShapeError(f"binary_cross_entropy_with_logits: target size "
                         f"({list(target.shape)}) must be the same as input size "
                         f"({list(input.shape)})")
    sp = _softplus1(-input)  # -log(sigmoid(x))
    if pos_weight is not None:
        log_weight = (pos_weight - 1) * target + 1
        loss = (1 - target) * input + log_weight * sp
    else:
        loss = (1 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


@autocast_op("kl_div")
def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target: bool = False) -> Tensor:
    """KL divergence with ``input`` as log-probabilities: ``y (log y - x)``
    (``log_target``: ``exp(y) (y - x)``). Use ``reduction='batchmean'`` for the true KL."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "kl_div", ("batchmean",))
    if reduction == "mean":
        warnings.warn("kl_div: reduction: 'mean' divides the total loss by both the batch size "
                      "and the support size. 'batchmean' divides only by the batch size, and "
                      "aligns with the KL div math definition.", UserWarning, stacklevel=3)
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        pos = target > 0
        xlogy = ops.where(pos, target * ops.log(ops.where(pos, target, 1.0)), 0.0)
        loss = xlogy - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


# -- embedding / ranking losses ---------------------------------------------------------
@autocast_op("cosine_embedding_loss")
def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                          reduce=None, reduction="mean") -> Tensor:
    """``1 - cos(x1, x2)`` for ``y = 1``, ``max(0, cos(x1, x2) - margin)`` for ``y = -1``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if input1.shape != input2.shape or input1.ndim not in (1, 2):
        raise ShapeError(f"cosine_embedding_loss: inputs must be 1-D or 2-D with equal shapes, "
                         f"got {list(input1.shape)} and {list(input2.shape)}")
    dim = input1.ndim - 1
    eps = 1e-12
    prod = (input1 * input2).sum(dim)
    m1 = (input1 * input1).sum(dim) + eps
    m2 = (input2 * input2).sum(dim) + eps
    cos = prod / (m1 * m2).sqrt()
    pos = ops.where(target == 1, 1 - cos, 0.0)
    neg = ops.where(target == -1, ops.clamp(cos - margin, min=0.0), 0.0)
    return _reduce(pos + neg, reduction, "cosine_embedding_loss")


@autocast_op("margin_ranking_loss")
def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                        reduce=None, reduction="mean") -> Tensor:
    """``max(0, -y (x1 - x2) + margin)``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = ops.clamp(-target * (input1 - input2) + margin, min=0.0)
    return _reduce(loss, reduction, "margin_ranking_loss")


@autocast_op("triplet_margin_loss")
def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None,
                        reduce=None, reduction="mean") -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with the p-norm pairwise distance."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise ShapeError(f"triplet_margin_loss: anchor, positive and negative must have the "
                         f"same number of dims, got {anchor.ndim}, {positive.ndim} and "
                         f"{negative.ndim}")
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = ops.minimum(d_an, pairwise_distance(positive, negative, p, eps))
    loss = ops.clamp(d_ap - d_an + margin, min=0.0)
    return _reduce(loss, reduction, "triplet_margin_loss")


@autocast_op("soft_margin_loss")
def soft_margin_loss(input, target, size_average=None, reduce=None,
                     reduction="mean") -> Tensor:
    """``log(1 + exp(-y x))``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _reduce(_softplus1(-target * input), reduction, "soft_margin_loss")


@autocast_op("poisson_nll_loss")
def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction="mean") -> Tensor:
    """Poisson negative log-likelihood (``full`` adds Stirling's term where target > 1)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = ops.exp(input) - target * input if log_input else input - target * ops.log(
        input + eps)
    if full:
        big = target > 1
        safe = ops.where(big, target, 2.0)
        stirling = safe * ops.log(safe) - safe + ops.log(safe * (2 * math.pi)) * 0.5
        loss = loss + ops.where(big, stirling, 0.0)
    return _reduce(loss, reduction, "poisson_nll_loss")


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction="mean") -> Tensor:
    """``0.5 (log var + (x - y)^2 / var)`` (+ ``0.5 log 2 pi`` with ``full``); ``var`` is
    clamped at ``eps`` without changing its gradient, as PyTorch does."""
    _check_reduction(reduction, "gaussian_nll_loss")
    if isinstance(var, (int, float)):
        var = ops.full(input.shape, float(var), dtype=input.dtype, device=input.device)
    if var.shape != input.shape:
        if tuple(var.shape) == tuple(input.shape[:-1]):
            var = var.unsqueeze(-1)
        elif not (var.ndim == input.ndim and var.shape[-1] == 1 and
                  var.shape[:-1] == input.shape[:-1]):
            raise ShapeError(f"gaussian_nll_loss: var of shape {list(var.shape)} does not fit "
                             f"input of shape {list(input.shape)}")
    from ...autograd import no_grad
    var = var.clone()
    with no_grad():
        var.clamp_(min=eps)
    d = input - target
    loss = (ops.log(var) + d * d / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, "gaussian_nll_loss")


@autocast_op("hinge_embedding_loss")
def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction="mean") -> Tensor:
    """``x`` where ``y = 1``, ``max(0, margin - x)`` where ``y = -1``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    margin_part = ops.where(target != 1, ops.clamp(margin - input, min=0.0), 0.0)
    self_part = ops.where(target != -1, input, 0.0)
    return _reduce(margin_part + self_part, reduction, "hinge_embedding_loss")


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean") -> Tensor:
    """Per-class logistic loss averaged over the classes (last dim)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = -(target * -_softplus1(-input) + (1 - target) * -_softplus1(input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(input.ndim - 1) / input.shape[-1]
    return _reduce(loss, reduction, "multilabel_soft_margin_loss")


@autocast_op("multi_margin_loss")
def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,
                      size_average=None, reduce=None, reduction="mean") -> Tensor:
    """Multi-class hinge: ``sum_{j != y} max(0, margin - x[y] + x[j])^p / C``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ArgumentError(f"multi_margin_loss: only p == 1 and p == 2 are supported, got {p}")
    x = input if input.ndim == 2 else input.unsqueeze(0)
    t = target.reshape(-1)
    c = x.shape[1]
    picked = ops.gather(x, 1, t.unsqueeze(1))
    z = ops.clamp(x - picked + margin, min=0.0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * ops.gather(weight.to(x.dtype), 0, t).unsqueeze(1)
    not_target = t.unsqueeze(1) != ops.arange(c, device=x.device)
    loss = ops.where(not_target, z, 0.0).sum(1) / c
    if input.ndim != 2:
        loss = loss.reshape(target.shape)
    return _reduce(loss, reduction, "multi_margin_loss")


__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "nll_loss", "cross_entropy",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
           "cosine_embedding_loss", "margin_ranking_loss", "triplet_margin_loss",
           "soft_margin_loss", "poisson_nll_loss", "gaussian_nll_loss", "hinge_embedding_loss",
           "multilabel_soft_margin_loss", "multi_margin_loss"]
