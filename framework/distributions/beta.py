"""``Beta(concentration1, concentration0)``: a distribution on the unit interval."""

from __future__ import annotations

from ..dtype_info import finfo
from . import constraints
from .distribution import Distribution
from .gamma import log_standard_gamma, standard_gamma_rsample
from .utils import broadcast_all

__all__ = ["Beta"]


class Beta(Distribution):
    """The beta distribution with density proportional to ``x^(c1 - 1) (1 - x)^(c0 - 1)``.

    Samples are ``X / (X + Y)`` for gamma draws ``X ~ Gamma(c1)``, ``Y ~ Gamma(c0)``
    (computed as ``sigmoid(log X - log Y)``); ``rsample`` normalizes reparametrized gamma
    draws, so gradients reach both concentrations.
    """

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1,
                                                                 concentration0)
        super().__init__(self.concentration1.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Beta, _instance)
        return self._expand_into(new, batch_shape, "concentration1", "concentration0")

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        c1, c0 = self.concentration1, self.concentration0
        return (c1 - 1) / (c1 + c0 - 2)

    @property
    def variance(self):
        c1, c0 = self.concentration1, self.concentration0
        total = c1 + c0
        return c1 * c0 / (total.pow(2) * (total + 1))

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        log_x = log_standard_gamma(self.concentration1, shape)
        log_y = log_standard_gamma(self.concentration0, shape)
        info = finfo(log_x.dtype)
        return (log_x - log_y).sigmoid().clamp(min=info.tiny, max=1 - info.eps)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x = standard_gamma_rsample(self.concentration1, shape)
        y = standard_gamma_rsample(self.concentration0, shape)
        info = finfo(x.dtype)
        return (x / (x + y)).clamp(min=info.tiny, max=1 - info.eps)

    def _log_normalizer(self):
        c1, c0 = self.concentration1, self.concentration0
        return c1.lgamma() + c0.lgamma() - (c1 + c0).lgamma()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c1, c0 = self.concentration1, self.concentration0
        return (c1 - 1).xlogy(value) + (c0 - 1).xlogy(1 - value) - self._log_normalizer()

    def entropy(self):
        c1, c0 = self.concentration1, self.concentration0
        total = c1 + c0
        return (self._log_normalizer() - (c1 - 1) * c1.digamma() - (c0 - 1) * c0.digamma()
                + (total - 2) * total.digamma())
