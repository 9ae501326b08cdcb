"""Distributions written as transformed uniform or exponential variables, as in PyTorch:
``Gumbel``, ``Weibull``, ``Pareto`` and ``Kumaraswamy`` (all reparametrized through
their inverse CDFs)."""

from __future__ import annotations

import math

from ..creation import full_like, ones_like
from ..dtype_info import finfo
from ..ops.pointwise import where
from . import constraints
from .exponential import Exponential
from .transformed_distribution import TransformedDistribution
from .transforms import AffineTransform, ExpTransform
from .transforms_extra import PowerTransform
from .uniform import Uniform
from .utils import broadcast_all

__all__ = ["Gumbel", "Kumaraswamy", "Pareto", "Weibull"]

EULER_GAMMA = 0.57721566490153286060


def _expand_params(dist, new, batch_shape, *names):
    """Give ``new`` (already expanded by ``TransformedDistribution.expand``) the
    parameters ``names`` of ``dist`` expanded to ``batch_shape``."""
    for name in names:
        setattr(new, name, getattr(dist, name).expand(tuple(batch_shape)))
    return new


class Gumbel(TransformedDistribution):
    """The Gumbel (type-I extreme value) distribution: ``loc - scale log(-log U)``;
    density ``exp(-(z + exp(-z))) / scale`` with ``z = (x - loc) / scale``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        info = finfo(self.loc.dtype)
        base = Uniform(full_like(self.loc, info.tiny), full_like(self.loc, 1 - info.eps),
                       validate_args=False)
        super().__init__(base, self._transforms(), validate_args=validate_args)
        self.base_dist._validate_args = self._validate_args

    def _transforms(self):
        return [ExpTransform().inv, AffineTransform(0.0, -ones_like(self.scale)),
                ExpTransform().inv, AffineTransform(self.loc, -self.scale)]

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Gumbel, _instance)
        new = super().expand(batch_shape, _instance=new)
        _expand_params(self, new, batch_shape, "loc", "scale")
        new.transforms = new._transforms()
        return new

    @property
    def mean(self):
        return self.loc + self.scale * EULER_GAMMA

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self):
        return self.stddev.pow(2)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (self.loc - value) / self.scale
        return (z - z.exp()) - self.scale.log()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (-(-(value - self.loc) / self.scale).exp()).exp()

    def icdf(self, value):
        return self.loc - self.scale * (-value.log()).log()

    def entropy(self):
        return self.scale.log() + (1 + EULER_GAMMA)


class Weibull(TransformedDistribution):
    """The Weibull distribution with ``scale`` and shape ``concentration``:
    ``scale * E^(1 / concentration)`` for ``E ~ Exponential(1)``."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, scale, concentration, validate_args=None):
        self.scale, self.concentration = broadcast_all(scale, concentration)
        base = Exponential(ones_like(self.scale), validate_args=False)
        super().__init__(base, self._transforms(), validate_args=validate_args)
        self.base_dist._validate_args = self._validate_args

    @property
    def concentration_reciprocal(self):
        """``1 / concentration``."""
        return self.concentration.reciprocal()

    def _transforms(self):
        return [PowerTransform(self.concentration_reciprocal),
                AffineTransform(0.0, self.scale)]

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Weibull, _instance)
        new = super().expand(batch_shape, _instance=new)
        _expand_params(self, new, batch_shape, "scale", "concentration")
        new.transforms = new._transforms()
        return new

    def _moment(self, n):
        return (1 + n * self.concentration_reciprocal).lgamma().exp()

    @property
    def mean(self):
        return self.scale * self._moment(1)

    @property
    def mode(self):
        k = self.concentration
        inner = self.scale * ((k - 1) / k).clamp(min=0).pow(self.concentration_reciprocal)
        return where(k > 1, inner, 0.0)

    @property
    def variance(self):
        return self.scale.pow(2) * (self._moment(2) - self._moment(1).pow(2))

    def entropy(self):
        k_inv = self.concentration_reciprocal
        return EULER_GAMMA * (1 - k_inv) + (self.scale * k_inv).log() + 1


class Pareto(TransformedDistribution):
    """The Pareto (type I) distribution: ``scale * exp(E)`` for ``E ~ Exponential(alpha)``,
    supported on ``[scale, inf)``."""

    arg_constraints = {"alpha": constraints.positive, "scale": constraints.positive}
    has_rsample = True

    def __init__(self, scale, alpha, validate_args=None):
        self.scale, self.alpha = broadcast_all(scale, alpha)
        base = Exponential(self.alpha, validate_args=False)
        super().__init__(base, self._transforms(), validate_args=validate_args)
        self.base_dist._validate_args = self._validate_args

    def _transforms(self):
        return [ExpTransform(), AffineTransform(0.0, self.scale)]

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Pareto, _instance)
        new = super().expand(batch_shape, _instance=new)
        _expand_params(self, new, batch_shape, "scale", "alpha")
        new.transforms = new._transforms()
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.greater_than_eq(self.scale)

    @property
    def mean(self):
        a = self.alpha.clamp(min=1)  # alpha <= 1: infinite (a / 0)
        return a * self.scale / (a - 1)

    @property
    def mode(self):
        return self.scale

    @property
    def variance(self):
        a = self.alpha.clamp(min=2)  # alpha <= 2: infinite
        return self.scale.pow(2) * a / ((a - 1).pow(2) * (a - 2))

    def entropy(self):
        return (self.scale / self.alpha).log() + self.alpha.reciprocal() + 1


class Kumaraswamy(TransformedDistribution):
    """The Kumaraswamy distribution on ``(0, 1)``: density ``a b x^(a-1) (1 - x^a)^(b-1)``
    with ``a = concentration1``, ``b = concentration0``; samples are
    ``(1 - U^(1/b))^(1/a)``."""

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1,
                                                                 concentration0)
        c0 = self.concentration0
        base = Uniform(full_like(c0, 0), full_like(c0, 1), validate_args=False)
        super().__init__(base, self._transforms(), validate_args=validate_args)
        self.base_dist._validate_args = self._validate_args

    def _transforms(self):
        return [PowerTransform(self.concentration0.reciprocal()), AffineTransform(1.0, -1.0),
                PowerTransform(self.concentration1.reciprocal())]

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Kumaraswamy, _instance)
        new = super().expand(batch_shape, _instance=new)
        _expand_params(self, new, batch_shape, "concentration1", "concentration0")
        new.transforms = new._transforms()
        return new

    def _moment(self, n):
        """``E[X^n] = b B(1 + n / a, b)``."""
        a, b = self.concentration1, self.concentration0
        arg = 1 + n / a
        return b * (arg.lgamma() + b.lgamma() - (arg + b).lgamma()).exp()

    @property
    def mean(self):
        return self._moment(1)

    @property
    def mode(self):
        """``((a - 1) / (a b - 1))^(1/a)``; NaN when ``a < 1`` or ``b < 1`` (no interior
        mode) and for ``a = b = 1`` (uniform)."""
        a, b = self.concentration1, self.concentration0
        inner = ((a - 1) / (a * b - 1)).pow(a.reciprocal())
        return where((a < 1) | (b < 1), math.nan, inner)

    @property
    def variance(self):
        return self._moment(2) - self._moment(1).pow(2)

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        harmonic_b = (b + 1).digamma() + EULER_GAMMA
        return (1 - b.reciprocal()) + (1 - a.reciprocal()) * harmonic_b - a.log() - b.log()
