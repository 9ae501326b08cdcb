"""``Categorical(probs=... | logits=...)``: one of ``K`` classes, as an integer index."""

from __future__ import annotations

from ..creation import arange, full, rand
from ..dtype_info import finfo
from ..dtypes import int64
from ..errors import ArgumentError
from ..ops.movement import broadcast_tensors
from ..tensor import Size
from . import constraints
from .distribution import Distribution
from .utils import expand_probs_or_logits, lazy_property, logits_to_probs, probs_to_logits

__all__ = ["Categorical"]


class Categorical(Distribution):
    """A class index in ``0..K-1`` drawn with probabilities ``probs`` (normalized along the
    last dim) or ``softmax(logits)``; the last dim of the parameter is the class dim, the
    others are batch dims. Sampling inverts the CDF (one uniform per draw)."""

    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ArgumentError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if probs.ndim < 1:
                raise ArgumentError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if logits.ndim < 1:
                raise ArgumentError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        batch_shape = self._param.size()[:-1] if self._param.ndim > 1 else Size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Categorical, _instance)
        expand_probs_or_logits(self, new, Size(batch_shape) + (self._num_events,))
        new._num_events = self._num_events
        return self._expand_into(new, batch_shape)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        """Normalized log-probabilities."""
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        """Normalized probabilities."""
        return logits_to_probs(self.logits)

    @property
    def param_shape(self) -> Size:
        """The shape of the given parameter (``batch_shape + (K,)``)."""
        return self._param.size()

    @property
    def mean(self):
        return full(tuple(self._extended_shape()), float("nan"), dtype=self._param.dtype,
                    device=self._param.device)

    @property
    def mode(self):
        return self.probs.argmax(-1)

    @property
    def variance(self):
        return self.mean

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        probs = self.probs.detach()
        cdf = probs.cumsum(-1)
        u = rand(tuple(shape) + (1,), dtype=probs.dtype, device=probs.device)
        # index = number of classes whose CDF is <= u * total: a class of probability 0
        # has the CDF of its predecessor, so it is never chosen
        idx = (cdf <= u * cdf[..., -1:]).sum(-1)
        return idx.clamp(max=self._num_events - 1).to(int64)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.to(int64).unsqueeze(-1)
        value, log_pmf = broadcast_tensors(value, self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self):
        logits = self.logits.clamp(min=finfo(self.logits.dtype).min)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand=True):
        values = arange(self._num_events, dtype=int64, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + tuple(self._batch_shape))
        return values
