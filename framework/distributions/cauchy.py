"""``Cauchy(loc, scale)`` and the half distributions folded at zero: ``HalfCauchy(scale)``
and ``HalfNormal(scale)`` (``|X|`` for a centred Cauchy or normal ``X``)."""

from __future__ import annotations

import math

from ..creation import full, rand, zeros_like
from ..ops.pointwise import where
from . import constraints
from .loc_scale import LocScale
from .normal import Normal
from .transformed_distribution import TransformedDistribution
from .transforms_extra import AbsTransform

__all__ = ["Cauchy", "HalfCauchy", "HalfNormal"]

_LOG_2 = math.log(2.0)


class Cauchy(LocScale):
    """The Cauchy (Lorentz) distribution: density ``1 / (pi scale (1 + z^2))`` with
    ``z = (x - loc) / scale``. Its mean and variance do not exist (NaN and infinity, as
    PyTorch); ``rsample`` is ``loc + scale * tan(pi (u - 1/2))``."""

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Cauchy, _instance)
        return self._expand_into(new, batch_shape, "loc", "scale")

    def _filled(self, value):
        return full(tuple(self._extended_shape()), value, dtype=self.loc.dtype,
                    device=self.loc.device)

    @property
    def mean(self):
        return self._filled(math.nan)

    @property
    def variance(self):
        return self._filled(math.inf)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = rand(tuple(shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.scale * (math.pi * (u - 0.5)).tan()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - z.pow(2).log1p()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return ((value - self.loc) / self.scale).atan() / math.pi + 0.5

    def icdf(self, value):
        return (math.pi * (value - 0.5)).tan() * self.scale + self.loc

    def entropy(self):
        return math.log(4 * math.pi) + self.scale.log()


class _Half(TransformedDistribution):
    """``|X|`` for a base ``X`` symmetric about 0 with parameter ``scale``: the density
    doubles on ``[0, inf)``."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _base_cls = Normal

    def __init__(self, scale, validate_args=None):
        base = self._base_cls(0.0, scale, validate_args=False)
        super().__init__(base, AbsTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        cls = HalfNormal if isinstance(self, HalfNormal) else HalfCauchy
        new = self._get_checked_instance(cls, _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mode(self):
        return zeros_like(self.scale)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        log_prob = self.base_dist.log_prob(value) + _LOG_2
        return where(value >= 0, log_prob, -math.inf)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 2 * self.base_dist.cdf(value) - 1

    def icdf(self, prob):
        return self.base_dist.icdf((prob + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - _LOG_2


class HalfNormal(_Half):
    """``|X|`` for ``X ~ Normal(0, scale)``: mean ``scale sqrt(2 / pi)``, variance
    ``scale^2 (1 - 2 / pi)``."""

    _base_cls = Normal

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def variance(self):
        return self.scale.pow(2) * (1 - 2 / math.pi)


class HalfCauchy(_Half):
    """``|X|`` for ``X ~ Cauchy(0, scale)``: infinite mean and variance."""

    _base_cls = Cauchy

    @property
    def mean(self):
        return self.base_dist._filled(math.inf)

    @property
    def variance(self):
        return self.base_dist._filled(math.inf)
