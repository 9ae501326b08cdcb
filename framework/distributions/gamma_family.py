"""Distributions built on gamma variables, with reparametrized sampling: ``Chi2``,
``InverseGamma``, ``StudentT`` and ``FisherSnedecor``.

Their ``rsample`` differentiates the gamma draws by implicit reparametrization
(:func:`framework.distributions.gamma.standard_gamma_rsample`).
"""

from __future__ import annotations

import math

from ..creation import randn
from ..dtype_info import finfo
from ..ops.pointwise import where
from . import constraints
from .distribution import Distribution
from .gamma import Gamma, standard_gamma, standard_gamma_rsample  # noqa: F401
from .transformed_distribution import TransformedDistribution
from .transforms_extra import PowerTransform
from .utils import broadcast_all

__all__ = ["Chi2", "FisherSnedecor", "InverseGamma", "StudentT", "standard_gamma_rsample"]


class Chi2(Gamma):
    """The chi-squared distribution with ``df`` degrees of freedom:
    ``Gamma(df / 2, 1 / 2)``."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, 0.5 * df.new_ones(()), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Chi2, _instance)
        return super().expand(batch_shape, new)

    @property
    def df(self):
        """The degrees of freedom: ``2 * concentration``."""
        return self.concentration * 2

    def __repr__(self) -> str:
        return Distribution.__repr__(self)


class InverseGamma(TransformedDistribution):
    """``1 / X`` for ``X ~ Gamma(concentration, rate)``: density
    ``rate^c / Gamma(c) x^(-c-1) exp(-rate / x)``."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        base = Gamma(concentration, rate, validate_args=False)
        neg_one = -base.rate.new_ones(())
        super().__init__(base, PowerTransform(neg_one), validate_args=validate_args)
        self.base_dist._validate_args = self._validate_args

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(InverseGamma, _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def concentration(self):
        return self.base_dist.concentration

    @property
    def rate(self):
        return self.base_dist.rate

    @property
    def mean(self):
        c, r = self.concentration, self.rate
        return where(c > 1, r / (c - 1), math.inf)

    @property
    def mode(self):
        return self.rate / (self.concentration + 1)

    @property
    def variance(self):
        c, r = self.concentration, self.rate
        return where(c > 2, r.pow(2) / ((c - 1).pow(2) * (c - 2)), math.inf)

    def entropy(self):
        c = self.concentration
        return c + self.rate.log() + c.lgamma() - (1 + c) * c.digamma()


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, location ``loc`` and scale ``scale``;
    ``rsample`` is ``loc + scale * Z / sqrt(V / df)`` for ``Z ~ N(0, 1)``,
    ``V ~ Chi2(df)`` (gradients reach ``df`` too)."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real,
                       "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        self._chi2 = Chi2(self.df, validate_args=False)
        super().__init__(self.df.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(StudentT, _instance)
        new._chi2 = self._chi2.expand(batch_shape)
        return self._expand_into(new, batch_shape, "df", "loc", "scale")

    @property
    def mean(self):
        return where(self.df > 1, self.loc, math.nan)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        df = self.df
        finite = self.scale.pow(2) * df / (df - 2)
        return where(df > 2, finite, where(df > 1, math.inf, math.nan))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        z = randn(tuple(shape), dtype=self.df.dtype, device=self.df.device)
        v = self._chi2.rsample(sample_shape)
        return self.loc + self.scale * z * (self.df / v).sqrt()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        df = self.df
        y = (value - self.loc) / self.scale
        log_z = (self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi)
                 + (0.5 * df).lgamma() - (0.5 * (df + 1)).lgamma())
        return -0.5 * (df + 1) * (y.pow(2) / df).log1p() - log_z

    def entropy(self):
        df = self.df
        half, half1 = 0.5 * df, 0.5 * (df + 1)
        lbeta = half.lgamma() + math.lgamma(0.5) - half1.lgamma()
        return (self.scale.log() + half1 * (half1.digamma() - half.digamma())
                + 0.5 * df.log() + lbeta)


class FisherSnedecor(Distribution):
    """The F distribution with ``df1`` and ``df2`` degrees of freedom: the ratio
    ``(U1 / df1) / (U2 / df2)`` of chi-squared variables (reparametrized)."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = broadcast_all(df1, df2)
        super().__init__(self.df1.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(FisherSnedecor, _instance)
        return self._expand_into(new, batch_shape, "df1", "df2")

    @property
    def mean(self):
        df2 = self.df2
        return where(df2 > 2, df2 / (df2 - 2), math.nan)

    @property
    def mode(self):
        df1, df2 = self.df1, self.df2
        return where(df1 > 2, (df1 - 2) / df1 * df2 / (df2 + 2), math.nan)

    @property
    def variance(self):
        df1, df2 = self.df1, self.df2
        finite = 2 * df2.pow(2) * (df1 + df2 - 2) / (df1 * (df2 - 2).pow(2) * (df2 - 4))
        return where(df2 > 4, finite, math.nan)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        tiny = finfo(self.df1.dtype).tiny
        u1 = standard_gamma_rsample(0.5 * self.df1, shape) / self.df1
        u2 = standard_gamma_rsample(0.5 * self.df2, shape) / self.df2
        return (u1 / u2.clamp(min=tiny)).clamp(min=tiny)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        h1, h2 = 0.5 * self.df1, 0.5 * self.df2
        ratio = self.df1 / self.df2
        t1 = (h1 + h2).lgamma() - h1.lgamma() - h2.lgamma()
        t2 = h1 * ratio.log() + (h1 - 1) * value.log()
        return t1 + t2 - (h1 + h2) * (ratio * value).log1p()
