"""``Geometric(probs | logits)`` and ``NegativeBinomial(total_count, probs | logits)``:
counts of Bernoulli trials."""

from __future__ import annotations

from .. import special
from ..creation import rand, zeros_like
from ..dtype_info import finfo
from ..errors import ArgumentError
from ..ops.pointwise import where
from ..tensor import Size
from . import constraints
from .distribution import Distribution
from .gamma import Gamma
from .poisson import sample_poisson
from .utils import (broadcast_all, expand_probs_or_logits, is_tracing, lazy_property,
                    logits_to_probs, probs_to_logits, softplus)

__all__ = ["Geometric", "NegativeBinomial"]


def _probs_or_logits(dist, probs, logits, *others):
    """Broadcast ``others`` with the one given of ``probs``/``logits`` and set it on
    ``dist`` (``_param`` too); returns the broadcast ``others``."""
    if (probs is None) == (logits is None):
        raise ArgumentError("Either `probs` or `logits` must be specified, but not both.")
    name, param = ("probs", probs) if probs is not None else ("logits", logits)
    *others, param = broadcast_all(*others, param)
    setattr(dist, name, param)
    dist._param = param
    return [o.to(param.dtype) for o in others]


class _ProbsLogits(Distribution):
    """The ``probs`` <-> ``logits`` pair of the binary-trial distributions."""

    @lazy_property
    def logits(self):
        """``log(p / (1 - p))``."""
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        """``sigmoid(logits)``."""
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> Size:
        """The shape of the given probability parameter."""
        return self._param.size()


class Geometric(_ProbsLogits):
    """The number of failures before the first success in Bernoulli trials of success
    probability ``probs`` in ``(0, 1]`` (or ``sigmoid(logits)``); samples are float counts
    ``floor(log U / log(1 - p))``."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        _probs_or_logits(self, probs, logits)
        super().__init__(self._param.size(), validate_args=validate_args)
        if self._validate_args and probs is not None and not is_tracing() and \
                not bool((self.probs > 0).all()):
            raise ArgumentError(
                f"Expected parameter probs ({type(self.probs).__name__} of shape "
                f"{tuple(self.probs.shape)}) of distribution {self!r} to satisfy the "
                f"constraint {constraints.positive!r}, but found invalid values:\n"
                f"{self.probs}")

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Geometric, _instance)
        expand_probs_or_logits(self, new, Size(batch_shape))
        return self._expand_into(new, batch_shape)

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        return zeros_like(self.probs)

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        p = self.probs.detach()
        u = rand(shape, dtype=p.dtype, device=p.device).clamp(min=finfo(p.dtype).tiny)
        return (u.log() / (-p).log1p()).floor()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, probs = broadcast_all(value, self.probs)
        # value log(1 - p) is 0 for value = 0, also when p = 1
        return special.xlog1py(value, -probs) + probs.log()

    def entropy(self):
        return (softplus(self.logits) - self.probs * self.logits) / self.probs


class NegativeBinomial(_ProbsLogits):
    """The number of successes before ``total_count`` failures in Bernoulli trials of
    success probability ``probs`` (or ``sigmoid(logits)``); ``total_count`` may be any
    non-negative real. Samples are Poisson draws with Gamma(total_count,
    (1 - p) / p) rates."""

    arg_constraints = {"total_count": constraints.greater_than_eq(0),
                       "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        (self.total_count,) = _probs_or_logits(self, probs, logits, total_count)
        super().__init__(self._param.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(NegativeBinomial, _instance)
        batch_shape = Size(batch_shape)
        new.total_count = self.total_count.expand(batch_shape)
        expand_probs_or_logits(self, new, batch_shape)
        return self._expand_into(new, batch_shape)

    @property
    def mean(self):
        return self.total_count * self.logits.exp()

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / (-self.logits).sigmoid()

    def sample(self, sample_shape=()):
        rate = Gamma(self.total_count.detach(), (-self.logits.detach()).exp(),
                     validate_args=False).sample(sample_shape)
        return sample_poisson(rate, rate.shape)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n, logits = self.total_count, self.logits
        # log sigmoid(x) = -softplus(-x)
        log_unnormalized = -n * softplus(logits) - value * softplus(-logits)
        log_normalization = (-(n + value).lgamma() + (1 + value).lgamma() + n.lgamma())
        log_normalization = where(n + value == 0, 0.0, log_normalization)
        return log_unnormalized - log_normalization
