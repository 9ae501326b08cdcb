"""``ContinuousBernoulli(probs | logits, lims)``: the normalized Bernoulli likelihood as a
density on ``[0, 1]`` (Loaiza-Ganem and Cunningham, 2019)."""

from __future__ import annotations

import math

from ..creation import rand
from ..errors import ArgumentError
from ..ops.pointwise import where
from ..tensor import Size
from . import constraints
from .distribution import Distribution
from .utils import (broadcast_all, clamp_probs, expand_probs_or_logits, lazy_property,
                    logits_to_probs, probs_to_logits, softplus)

__all__ = ["ContinuousBernoulli"]


class ContinuousBernoulli(Distribution):
    """Density ``C(p) p^x (1 - p)^(1 - x)`` on ``[0, 1]`` with ``C(p) = 2 atanh(1 - 2p) /
    (1 - 2p)`` (and ``C(1/2) = 2``), given ``probs`` or ``logits``. Inside ``lims`` (around
    ``p = 1/2``, where the exact formulas cancel) the normalizer, mean and variance use
    Taylor expansions; ``cdf``/``icdf`` use a form that is stable there (exact where
    PyTorch returns the uniform CDF). ``rsample`` is the inverse CDF of a uniform draw.

    ``probs`` are clamped to ``[eps, 1 - eps]`` as in PyTorch, so the extremes stay finite.
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        if (probs is None) == (logits is None):
            raise ArgumentError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
        else:
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        self._lims = tuple(lims)
        super().__init__(self._param.size(), validate_args=validate_args)
        if probs is not None:  # validated unclamped, then clamped (as PyTorch)
            self.probs = clamp_probs(self.probs)
            self._param = self.probs

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(ContinuousBernoulli, _instance)
        expand_probs_or_logits(self, new, Size(batch_shape))
        new._lims = self._lims
        return self._expand_into(new, batch_shape)

    @lazy_property
    def logits(self):
        """``log(p / (1 - p))``."""
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        """``sigmoid(logits)`` clamped to ``[eps, 1 - eps]``."""
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    @property
    def param_shape(self) -> Size:
        """The shape of the given parameter."""
        return self._param.size()

    def _outside_unstable_region(self):
        return (self.probs <= self._lims[0]) | (self.probs >= self._lims[1])

    def _cut_probs(self):
        """``probs`` with the values inside ``lims`` replaced by ``lims[0]`` (so the
        exact branch of ``where`` stays finite, gradients included)."""
        return where(self._outside_unstable_region(), self.probs, self._lims[0])

    def _cont_bern_log_norm(self):
        """``log C(p)``: exact outside ``lims``, ``log 2 + 4/3 x^2 + 104/45 x^4`` with
        ``x = p - 1/2`` inside."""
        cut = self._cut_probs()
        cut_below_half = where(cut <= 0.5, cut, 0.0)
        cut_above_half = where(cut >= 0.5, cut, 1.0)
        # C(p) = (log(1 - p) - log p) / (1 - 2p), both factors of one sign
        log_norm = ((-cut).log1p() - cut.log()).abs().log() \
            - where(cut <= 0.5, (-2.0 * cut_below_half).log1p(),
                    (2.0 * cut_above_half - 1.0).log())
        x = self.probs - 0.5
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x * x) * x * x
        return where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self):
        cut = self._cut_probs()
        exact = cut / (2.0 * cut - 1.0) + 1.0 / ((-cut).log1p() - cut.log())
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x * x) * x
        return where(self._outside_unstable_region(), exact, taylor)

    @property
    def variance(self):
        cut = self._cut_probs()
        exact = cut * (cut - 1.0) / (1.0 - 2.0 * cut).pow(2) \
            + 1.0 / ((-cut).log1p() - cut.log()).pow(2)
        x2 = (self.probs - 0.5).pow(2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 + 128.0 / 945.0 * x2) * x2
        return where(self._outside_unstable_region(), exact, taylor)

    @property
    def stddev(self):
        return self.variance.sqrt()

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = rand(tuple(shape), dtype=self.probs.dtype, device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        # x log p + (1 - x) log(1 - p) = x logits - softplus(logits)
        return value * logits - softplus(logits) + self._cont_bern_log_norm()

    def _safe_logits(self):
        """``logits`` with exact zeros (``p = 1/2``) replaced by 1, and the mask of
        those zeros."""
        zero = self.logits == 0
        return where(zero, 1.0, self.logits), zero

    def cdf(self, value):
        """``(r^x - 1) / (r - 1)`` with ``r = p / (1 - p)``, written ``expm1(logits x) /
        expm1(logits)``: exact and stable for every ``p`` (``x`` at ``p = 1/2``)."""
        if self._validate_args:
            self._validate_sample(value)
        eps, zero = self._safe_logits()
        inside = where(zero, value, (eps * value).expm1() / eps.expm1())
        return where(value <= 0.0, 0.0, where(value >= 1.0, 1.0, inside))

    def icdf(self, value):
        """The inverse of :meth:`cdf`: ``log1p(u expm1(logits)) / logits``."""
        eps, zero = self._safe_logits()
        return where(zero, value, (value * eps.expm1()).log1p() / eps)

    def entropy(self):
        log_p0 = (-self.probs).log1p()
        log_p1 = self.probs.log()
        return (self.mean * (log_p0 - log_p1) - self._cont_bern_log_norm() - log_p0)

