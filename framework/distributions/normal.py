"""``Normal(loc, scale)``: the Gaussian distribution."""

from __future__ import annotations

import math

from ..creation import randn
from .loc_scale import LocScale
from .utils import LOG_SQRT_2PI

__all__ = ["Normal"]


class Normal(LocScale):
    """The normal distribution with mean ``loc`` and standard deviation ``scale``
    (broadcast together; numbers become tensors). ``rsample`` is ``loc + scale * eps``."""

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Normal, _instance)
        return self._expand_into(new, batch_shape, "loc", "scale")

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale.pow(2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = randn(tuple(shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        var = self.scale.pow(2)
        return -((value - self.loc) ** 2) / (2 * var) - self.scale.log() - LOG_SQRT_2PI

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + ((value - self.loc) / (self.scale * math.sqrt(2))).erf())

    def icdf(self, value):
        return self.loc + self.scale * (2 * value - 1).erfinv() * math.sqrt(2)

    def entropy(self):
        return 0.5 + LOG_SQRT_2PI + self.scale.log()
