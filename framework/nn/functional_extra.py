"""More of ``nn.functional``: power-average pooling (``lp_pool1d/2d/3d``), the random
activations and dropouts (``gumbel_softmax``, ``rrelu``, ``alpha_dropout``,
``feature_alpha_dropout``) and two losses (``multilabel_margin_loss``,
``triplet_margin_with_distance_loss``).

Everything is composed from framework ops, so autograd, ``fw.compile`` and ONNX export see
ordinary op calls; random draws go through the framework generator (``uniform``, as
``F.dropout``), so ``fw.manual_seed`` makes them reproducible.
"""

from __future__ import annotations

import math
import warnings

from .. import ops
from .._state import tls
from ..autograd import no_grad
from ..errors import ArgumentError, DTypeError, FwIndexError, ShapeError
from ..ops.creation_ops import uniform
from ..tensor import Tensor
from ._conv_utils import ntuple
from .functional._activation import _run, leaky_relu
from .functional._loss import _legacy_reduction, _reduce
from .functional._misc import pairwise_distance
from .functional_conv import avg_pool1d, avg_pool2d, avg_pool3d

__all__ = ["lp_pool1d", "lp_pool2d", "lp_pool3d", "gumbel_softmax", "rrelu", "rrelu_",
           "alpha_dropout", "feature_alpha_dropout", "multilabel_margin_loss",
           "triplet_margin_with_distance_loss"]


# -- power-average pooling ---------------------------------------------------------------
def _lp_pool(nd, pool, input, norm_type, kernel_size, stride, ceil_mode):
    name = f"lp_pool{nd}d"
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    k = ntuple(kernel_size, nd, "kernel_size", name)
    out = pool(input.pow(norm_type), k, stride, 0, ceil_mode)
    # PyTorch's exact expression (sign * relu(abs) is the identity, kept for equal numerics)
    return (ops.sign(out) * ops.relu(ops.abs(out)) * float(math.prod(k))).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling over ``(N, C, L)``: ``(sum over the window of x^p)^(1/p)``
    (max pooling as ``p -> inf``, sum pooling at ``p = 1``)."""
    return _lp_pool(1, avg_pool1d, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling over ``(N, C, H, W)``: ``(sum over the window of x^p)^(1/p)``."""
    return _lp_pool(2, avg_pool2d, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling over ``(N, C, D, H, W)``."""
    return _lp_pool(3, avg_pool3d, input, norm_type, kernel_size, stride, ceil_mode)


# -- random activations and dropouts ---------------------------------------------------------
def _check_float(input, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{name}: expected a floating point input, got {input.dtype.name}")


def gumbel_softmax(logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """Sample from the Gumbel-softmax distribution: ``softmax((logits + g) / tau)`` with
    ``g ~ Gumbel(0, 1)``. With ``hard`` the result is one-hot (the argmax) in the forward
    pass but has the soft sample's gradient (straight-through). ``eps`` is deprecated and
    ignored, as in PyTorch."""
    if eps != 1e-10:
        warnings.warn("gumbel_softmax: `eps` parameter is deprecated and has no effect.",
                      stacklevel=2)
    _check_float(logits, "gumbel_softmax")
    u = uniform(logits.shape, dtype=logits.dtype, device=logits.device)
    # u in [0, 1): u = 0 gives -inf (probability 0), never nan
    gumbels = -ops.log(-ops.log(u))
    y_soft = ops.softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = ops.argmax(y_soft, dim, keepdim=True)
    y_hard = ops.scatter(ops.zeros_like(logits), dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def _check_bounds(lower, upper, name):
    if lower > upper:
        raise ArgumentError(f"{name}: Lower bound should be less than or equal to the upper "
                            f"bound, got lower={lower} and upper={upper}")


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
          training: bool = False, inplace: bool = False) -> Tensor:
    """Randomized leaky ReLU: in training each non-positive element gets its own slope
    drawn from ``U(lower, upper)``; in eval the slope is ``(lower + upper) / 2``."""
    _check_bounds(lower, upper, "rrelu")
    _check_float(input, "rrelu")
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)

    def compute(x):
        slopes = uniform(x.shape, lower, upper, dtype=x.dtype, device=x.device)
        return ops.where(x > 0, x, x * slopes)
    return _run(input, inplace, "rrelu", compute)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    """In-place :func:`rrelu`."""
    return rrelu(input, lower, upper, training, inplace=True)


# SELU's negative saturation value, -scale * alpha
_SELU_NEG = 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717


def _alpha_dropout(input, p, training, inplace, name, feature):
    if p < 0.0 or p > 1.0:
        raise ArgumentError(f"{name}: dropout probability has to be between 0 and 1, but got "
                            f"{p}")
    _check_float(input, name)
    if feature and input.ndim < 2:
        raise ShapeError(f"{name}: Feature dropout requires at least 2 dimensions in the "
                         f"input, got shape {list(input.shape)}")
    if p == 0 or not training or input.numel() == 0:
        return input
    if p == 1:
        return _run(input, inplace, name, lambda x: x * 0.0)
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2) if feature else input.shape
    # dropped units take SELU's saturation value; then the affine map a * x + b restores
    # zero mean and unit variance (Klambauer et al., 2017)
    a = 1.0 / math.sqrt((_SELU_NEG ** 2 * p + 1) * (1 - p))

    def compute(x):
        keep = (uniform(shape, dtype=x.dtype, device=x.device) >= p).to(x.dtype)
        return x * (keep * a) + ((keep - 1.0) * (_SELU_NEG * a) + _SELU_NEG * a * p)
    return _run(input, inplace, name, compute)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Dropout for SELU networks: dropped elements are set to SELU's negative saturation
    value and the result is rescaled so zero-mean unit-variance inputs keep those
    statistics (identity when not ``training``; note the default ``training=False``)."""
    return _alpha_dropout(input, p, training, inplace, "alpha_dropout", False)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """:func:`alpha_dropout` of whole channels: one draw per (sample, channel) of an
    ``(N, C, ...)`` input."""
    return _alpha_dropout(input, p, training, inplace, "feature_alpha_dropout", True)


# -- losses ------------------------------------------------------------------------------
def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """Multi-class multi-label hinge loss:
    ``sum_{j, i} max(0, 1 - (x[y[j]] - x[i])) / C`` over the target classes ``y[j]`` (the
    entries of ``target`` before its first -1) and the non-target classes ``i``. ``input``
    is ``(C,)`` or ``(N, C)``; ``target`` has the same shape and holds class indices."""
    name = "multilabel_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{name}: input and target must be Tensors")
    if target.dtype.is_floating_point or target.dtype.name == "bool":
        raise DTypeError(f"{name}: target must hold integer class indices, got "
                         f"{target.dtype.name}")
    ndim = input.ndim
    if not (ndim == 0 or (ndim in (1, 2) and input.shape[-1] != 0)):
        raise ShapeError(f"{name}: Expected non-empty vector or matrix with optional 0-dim "
                         f"batch size, but got: {list(input.shape)}")
    c = 1 if ndim == 0 else input.shape[-1]
    if (ndim < 2 and (target.ndim > 1 or target.numel() != c)) or \
            (ndim == 2 and tuple(target.shape) != tuple(input.shape)):
        raise ShapeError(f"{name}: inconsistent target size: {list(target.shape)} for input of "
                         f"size: {list(input.shape)}")
    x = input.reshape((-1, c))
    y = target.reshape((-1, c))
    if tls.tracer is None:  # eager: PyTorch's value check (a traced graph cannot branch)
        with no_grad():
            if ((y < -1) | (y >= c)).any().item():
                raise FwIndexError(f"{name}: target index out of range: target values must be "
                                   f"in [-1, {c - 1}] for {c} classes")
    # the targets of a row are the entries before its first -1
    valid = ops.cumsum((y < 0).to(y.dtype), 1) == 0
    y_safe = ops.where(valid, y, 0)
    classes = ops.arange(c, device=x.device)
    is_target = (valid.unsqueeze(2) & (y_safe.unsqueeze(2) == classes)).any(1)   # (N, C)
    x_y = ops.gather(x, 1, y_safe)                                               # (N, J)
    hinge = ops.clamp(1.0 - (x_y.unsqueeze(2) - x.unsqueeze(1)), min=0.0)        # (N, J, C)
    mask = valid.unsqueeze(2) & ~is_target.unsqueeze(1)
    loss = ops.where(mask, hinge, 0.0).sum((1, 2)) / c
    if ndim < 2:
        loss = loss.reshape(())
    return _reduce(loss, reduction, name)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with any ``distance_function`` (default
    :func:`pairwise_distance`); ``swap`` uses ``min(d(a, n), d(p, n))`` as the negative
    distance."""
    name = "triplet_margin_with_distance_loss"
    if reduction not in ("none", "mean", "sum"):
        raise ArgumentError(f"{name}: {reduction!r} is not a valid value for reduction; "
                            "expected 'none', 'mean' or 'sum'")
    if margin <= 0:
        raise ArgumentError(f"{name}: expected margin to be greater than 0, got {margin} "
                            "instead")
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise ShapeError(f"{name}: The anchor, positive, and negative tensors are expected to "
                         f"have the same number of dimensions, but got: anchor {anchor.ndim}D, "
                         f"positive {positive.ndim}D, and negative {negative.ndim}D inputs")
    dist = pairwise_distance if distance_function is None else distance_function
    dist_pos = dist(anchor, positive)
    dist_neg = dist(anchor, negative)
    if swap:
        dist_neg = ops.minimum(dist_neg, dist(positive, negative))
    loss = ops.clamp(margin + dist_pos - dist_neg, min=0.0)
    return _reduce(loss, reduction, name)
