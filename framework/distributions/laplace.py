"""``Laplace(loc, scale)``: the double-exponential distribution."""

from __future__ import annotations

import math

from ..creation import rand
from ..dtype_info import finfo
from .loc_scale import LocScale

__all__ = ["Laplace"]


class Laplace(LocScale):
    """The Laplace distribution with location ``loc`` and scale ``scale`` (density
    ``exp(-|x - loc| / scale) / (2 scale)``); ``rsample`` inverts the CDF."""

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Laplace, _instance)
        return self._expand_into(new, batch_shape, "loc", "scale")

    @property
    def variance(self):
        return 2 * self.scale.pow(2)

    @property
    def stddev(self):
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = finfo(self.loc.dtype).eps
        # u in (eps - 1, 1): log1p(-|u|) stays finite
        u = rand(tuple(shape), dtype=self.loc.dtype, device=self.loc.device) * (2 - eps) \
            + (eps - 1)
        return self.loc - self.scale * u.sign() * (-u.abs()).log1p()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -(2 * self.scale).log() - (value - self.loc).abs() / self.scale

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        d = value - self.loc
        return 0.5 - 0.5 * d.sign() * (-d.abs() / self.scale).expm1()

    def icdf(self, value):
        term = value - 0.5
        return self.loc - self.scale * term.sign() * (-2 * term.abs()).log1p()

    def entropy(self):
        return 1 + (2 * self.scale).log()
