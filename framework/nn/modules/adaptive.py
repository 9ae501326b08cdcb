"""``AdaptiveLogSoftmaxWithLoss``: the efficient softmax approximation of Grave et al.
(2016), with PyTorch's parameters (``head``, ``tail.{i}.0``/``tail.{i}.1``), so state dicts
line up with PyTorch's."""

from __future__ import annotations

from collections import namedtuple

from ..._state import tls
from ...errors import ArgumentError, DTypeError, ShapeError
from ...ops.movement import cat
from ...ops.pointwise import where
from .. import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


def _eager(*ts) -> bool:
    return tls.tracer is None and all(t._data is not None for t in ts)


class AdaptiveLogSoftmaxWithLoss(Module):
    """Adaptive softmax: the ``cutoffs[0]`` most frequent classes (the shortlist) and one
    entry per tail cluster share the ``head`` softmax; each cluster's classes have their own
    softmax behind a low-rank projection of size ``in_features // div_value ** (i + 1)``.

    ``forward(input, target)`` returns ``(output, loss)``: ``output`` the log-probability
    of each target, ``loss`` the mean negative log-likelihood. ``log_prob(input)`` gives
    the full ``(N, n_classes)`` log-distribution and ``predict(input)`` its argmax.
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ArgumentError("AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of "
                                "length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ArgumentError(f"AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of "
                                f"unique, positive integers sorted in an increasing order, "
                                f"where each value is between 1 and n_classes-1 "
                                f"(n_classes={n_classes}), got {cutoffs}")
        kw = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = [int(c) for c in cutoffs] + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **kw),
                                        Linear(hsz, osz, bias=False, **kw)))

    def reset_parameters(self) -> None:
        """Re-draw every projection with ``Linear``'s default init."""
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def _check_target(self, target) -> None:
        if target.dtype.is_floating_point or target.dtype.name == "bool":
            raise DTypeError(f"AdaptiveLogSoftmaxWithLoss: expected an integer class-index "
                             f"target, got {target.dtype.name}")
        if _eager(target) and target.numel():
            lo, hi = int(target.min().item()), int(target.max().item())
            if lo < 0 or hi > self.n_classes - 1:
                raise ArgumentError(f"AdaptiveLogSoftmaxWithLoss: target values should be in "
                                    f"[0, {self.n_classes - 1}], but values in range "
                                    f"[{lo}, {hi}] were found")

    def forward(self, input, target):
        """``(output, loss)``: each row's target log-probability and their mean NLL."""
        targ_dim = target.ndim
        if targ_dim == 1:
            if input.shape[0] != target.shape[0]:
                raise ShapeError(f"AdaptiveLogSoftmaxWithLoss: input and target should have "
                                 f"the same size in the batch dimension, got input "
                                 f"{list(input.shape)} and target {list(target.shape)}")
            if input.ndim != 2:
                raise ShapeError(f"AdaptiveLogSoftmaxWithLoss: 1D target tensor expects 2D "
                                 f"input tensors, but found inputs with size "
                                 f"{list(input.shape)}")
        elif targ_dim == 0:
            if input.ndim != 1:
                raise ShapeError(f"AdaptiveLogSoftmaxWithLoss: 0D target tensor expects 1D "
                                 f"input tensors, but found inputs with size "
                                 f"{list(input.shape)}")
        else:
            raise ShapeError(f"AdaptiveLogSoftmaxWithLoss: 0D or 1D target tensor expected, "
                             f"multi-target not supported (got shape {list(target.shape)})")
        self._check_target(target)
        batched = targ_dim > 0
        x = input if batched else input.unsqueeze(0)
        t = target if batched else target.unsqueeze(0)
        short = self.shortlist_size
        # the head column of each row: its class in the shortlist, else its cluster's entry
        cluster = t * 0
        for c in self.cutoffs[1:-1]:
            cluster = cluster + (t >= c).to(t.dtype)
        head_idx = where(t < short, t, cluster + short)
        head_logprob = F.log_softmax(self.head(x), dim=1)
        output = head_logprob.gather(1, head_idx.unsqueeze(1)).squeeze(1)
        eager = _eager(x, t)
        for i in range(self.n_clusters):
            lo, hi = self.cutoffs[i], self.cutoffs[i + 1]
            mask = (t >= lo) & (t < hi)
            if eager and not bool(mask.any()):
                continue  # no row in this cluster: its tail is not used (no gradient)
            rel = (t - lo).clamp(0, hi - lo - 1)
            cluster_logprob = F.log_softmax(self.tail[i](x), dim=1)
            local = cluster_logprob.gather(1, rel.unsqueeze(1)).squeeze(1)
            output = output + where(mask, local, 0.0)
        loss = (-output).mean()
        if not batched:
            output = output.squeeze(0)
        return _ASMoutput(output, loss)

    def _get_full_log_prob(self, input, head_output):
        head_logprob = F.log_softmax(head_output, dim=1)
        short = self.shortlist_size
        parts = [head_logprob[:, :short]]
        for i in range(self.n_clusters):
            cluster_logprob = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster_logprob + head_logprob[:, short + i:short + i + 1])
        return cat(parts, 1)

    def _check_input(self, input, what):
        if input.ndim != 2:
            raise ShapeError(f"AdaptiveLogSoftmaxWithLoss.{what}: expected a 2D input "
                             f"(N, in_features={self.in_features}), got shape "
                             f"{list(input.shape)}")

    def log_prob(self, input):
        """The log-probabilities of all ``n_classes`` classes, ``(N, n_classes)``."""
        self._check_input(input, "log_prob")
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input):
        """The most likely class of each row, ``(N,)`` (the full distribution is computed
        only when some row's head argmax is a tail cluster)."""
        self._check_input(input, "predict")
        head_output = self.head(input)
        output = head_output.argmax(dim=1)
        not_in_shortlist = output >= self.shortlist_size
        if _eager(output) and not bool(not_in_shortlist.any()):
            return output
        full = self._get_full_log_prob(input, head_output).argmax(dim=1)
        return where(not_in_shortlist, full, output)
