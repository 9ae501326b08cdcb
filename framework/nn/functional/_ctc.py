"""Connectionist temporal classification loss (``F.ctc_loss``), as the forward (alpha)
recursion in log space written with tensor ops, so autograd gives the gradient.

Impossible states hold a large finite negative number rather than ``-inf``: a log-sum-exp
over only impossible states then stays finite and its gradient is 0 instead of NaN. A
sample whose target cannot be aligned at all gets ``inf`` (or 0 with ``zero_infinity``).
"""

from __future__ import annotations

import math

from ... import dtypes, ops
from ...amp.autocast import autocast_op
from ...dtypes import INT
from ...errors import ArgumentError, DTypeError, ShapeError
from ...tensor import Tensor

_NEG = -1e30          # "log 0" that keeps gradients finite
_IMPOSSIBLE = -1e29   # log-likelihoods below this mean "no alignment exists"


def _as_lengths(x, n, name, device) -> Tensor:
    t = x if isinstance(x, Tensor) else ops.tensor(list(x), dtype=dtypes.int64)
    if t.dtype.category != INT or t.ndim != 1 or t.shape[0] != n:
        raise ShapeError(f"ctc_loss: {name} must be {n} integers (one per batch element), got "
                         f"{'dtype ' + t.dtype.name if t.dtype.category != INT else ''}"
                         f"shape {list(t.shape)}")
    return t.to(dtypes.int64).to(device)


def _padded_targets(targets: Tensor, target_lengths: Tensor, blank: int) -> Tensor:
    """(N, S) targets; a 1-D concatenation is split by ``target_lengths``."""
    if targets.ndim == 2:
        return targets.to(dtypes.int64)
    smax = int(target_lengths.max()) if target_lengths.numel() else 0
    starts = target_lengths.cumsum(0) - target_lengths
    pos = starts.unsqueeze(1) + ops.arange(smax, device=targets.device)
    valid = ops.arange(smax, device=targets.device) < target_lengths.unsqueeze(1)
    last = max(targets.shape[0] - 1, 0)
    picked = ops.getitem(targets.to(dtypes.int64), ops.clamp(pos, max=last)) \
        if targets.shape[0] else ops.full(pos.shape, blank, dtype=dtypes.int64)
    return ops.where(valid, picked, blank)


def _lse(*xs: Tensor) -> Tensor:
    """Elementwise log(sum(exp(x_i))) of same-shape tensors, stably."""
    m = xs[0]
    for x in xs[1:]:
        m = ops.maximum(m, x)
    m = m.detach()
    total = ops.exp(xs[0] - m)
    for x in xs[1:]:
        total = total + ops.exp(x - m)
    return ops.log(total) + m


def _shift(x: Tensor, k: int) -> Tensor:
    """``x[:, s - k]`` with ``_NEG`` shifted in on the left."""
    return ops.pad(x, (k, 0), value=_NEG)[:, :x.shape[1]]


@autocast_op("ctc_loss")
def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths,
             blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """CTC loss of ``log_probs`` (T, N, C) (or (T, C) unbatched; log-softmax outputs)
    against ``targets`` ((N, S) padded, or the 1-D concatenation of all targets).
    ``reduction='mean'`` divides each loss by its target length, then averages."""
    if reduction not in ("none", "mean", "sum"):
        raise ArgumentError(f"ctc_loss: {reduction!r} is not a valid value for reduction")
    if not log_probs.dtype.is_floating_point:
        raise DTypeError(f"ctc_loss: log_probs must be floating point, got "
                         f"{log_probs.dtype.name}")
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        targets = targets.unsqueeze(0) if targets.ndim == 1 else targets
        input_lengths = [input_lengths] if not isinstance(input_lengths, Tensor) else \
            input_lengths.reshape(1)
        target_lengths = [target_lengths] if not isinstance(target_lengths, Tensor) else \
            target_lengths.reshape(1)
    if log_probs.ndim != 3:
        raise ShapeError(f"ctc_loss: log_probs must be (T, N, C) or (T, C), got shape "
                         f"{list(log_probs.shape)}")
    t_max, n, c = log_probs.shape
    if not 0 <= blank < c:
        raise ArgumentError(f"ctc_loss: blank {blank} must be in [0, {c})")
    if targets.dtype.category != INT:
        raise DTypeError(f"ctc_loss: targets must be integers, got {targets.dtype.name}")
    in_len = _as_lengths(input_lengths, n, "input_lengths", log_probs.device)
    tg_len = _as_lengths(target_lengths, n, "target_lengths", log_probs.device)
    padded = _padded_targets(targets, tg_len, blank)
    work = log_probs if log_probs.dtype.itemsize >= 4 else log_probs.to(dtypes.float32)
    # extended labels: blank, l1, blank, l2, ..., blank -> (N, 2S + 1)
    s = padded.shape[1]
    ext = ops.cat([ops.stack([ops.full((n, s), blank, dtype=dtypes.int64,
                                       device=log_probs.device), padded], 2).reshape((n, 2 * s)),
                   ops.full((n, 1), blank, dtype=dtypes.int64, device=log_probs.device)], 1)
    width = 2 * s + 1
    skip_ok = (ext != blank) & (ext != ops.pad(ext, (2, 0), value=blank)[:, :width])
    emit = ops.gather(work.permute(1, 0, 2), 2,
                      ext.unsqueeze(1).expand((n, t_max, width)))  # (N, T, 2S + 1)
    state = ops.arange(width, device=log_probs.device)
    alpha = ops.where(state < 2, emit[:, 0], _NEG) if t_max else \
        ops.full((n, width), _NEG, dtype=work.dtype, device=log_probs.device)
    for t in range(1, t_max):
        stay, step = alpha, _shift(alpha, 1)
        jump = ops.where(skip_ok, _shift(alpha, 2), _NEG)
        new = _lse(stay, step, jump) + emit[:, t]
        alpha = ops.where((in_len > t).unsqueeze(1), new, alpha)
    end = (2 * tg_len).unsqueeze(1)
    last = ops.gather(alpha, 1, end).squeeze(1)
    prev = ops.where(tg_len > 0, ops.gather(alpha, 1, ops.clamp(end - 1, min=0)).squeeze(1),
                     _NEG)
    loglik = _lse(last, prev)
    impossible = (loglik < _IMPOSSIBLE) | (in_len == 0)
    loss = ops.where(impossible, 0.0 if zero_infinity else math.inf, -loglik)
    loss = loss.to(log_probs.dtype)
    if reduction == "none":
        return loss.squeeze(0) if unbatched else loss
    if reduction == "sum":
        return loss.sum()
    return (loss / ops.clamp(tg_len, min=1).to(loss.dtype)).mean()


__all__ = ["ctc_loss"]
