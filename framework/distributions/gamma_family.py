"""Distributions built on gamma variables, with reparametrized sampling: ``Chi2``,
``InverseGamma``, ``StudentT`` and ``FisherSnedecor``.

Their ``rsample`` differentiates gamma draws with respect to the concentration by
implicit reparametrization (Figurnov et al., 2018): holding the CDF level ``P(a, x)``
fixed, ``dx/da = -(dP/da)(a, x) / p(x; a)``. ``dP/da`` is a central difference of the
regularized incomplete gamma function in float64, on the tail (lower or upper) whose
probability is smaller, so it keeps its relative precision.
"""

from __future__ import annotations

import math

from .. import special
from ..autograd import is_grad_enabled, no_grad
from ..creation import randn
from ..dtype_info import finfo
from ..dtypes import float64
from ..ops.pointwise import where
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution
from .gamma import Gamma, standard_gamma
from .transformed_distribution import TransformedDistribution
from .transforms_extra import PowerTransform
from .utils import broadcast_all

__all__ = ["Chi2", "FisherSnedecor", "InverseGamma", "StudentT", "standard_gamma_rsample"]

_REL_STEP = 1e-5  # relative step of the finite difference in the concentration


def standard_gamma_slope(alpha: Tensor, x: Tensor) -> Tensor:
    """``dx/dalpha`` of Gamma(alpha, 1) draws ``x`` at a fixed CDF level, in ``x``'s
    dtype (no gradient; non-finite slopes become 0)."""
    with no_grad():
        a, v = alpha.detach().to(float64), x.detach().to(float64)
        h = _REL_STEP * a
        lower = v < a

        def tail(b):  # P on the lower side, -Q = P - 1 on the upper: same derivative
            return where(lower, special.gammainc(b, v), -special.gammaincc(b, v))

        d_cdf = (tail(a + h) - tail(a - h)) / (2 * h)
        log_pdf = (a - 1) * v.log() - v - a.lgamma()
        slope = -d_cdf.sign() * (d_cdf.abs().log() - log_pdf).exp()
        slope = where(slope.isfinite(), slope, 0.0)
        return slope.to(x.dtype)


def standard_gamma_rsample(concentration: Tensor, shape) -> Tensor:
    """Gamma(concentration, 1) draws of ``shape`` whose gradient with respect to
    ``concentration`` is the implicit reparametrization gradient (first order only:
    the slope itself is not differentiated again)."""
    x = standard_gamma(concentration, shape)
    if not (concentration.requires_grad and is_grad_enabled()):
        return x
    alpha = concentration.expand(tuple(shape))
    slope = standard_gamma_slope(alpha, x)
    # value x (the bracket is exactly 0), gradient slope with respect to alpha
    return x + (alpha - alpha.detach()) * slope


class _ReparamGamma(Gamma):
    """:class:`Gamma` with ``rsample`` (implicit reparametrization) and ``cdf``, the
    base of the distributions below."""

    has_rsample = True

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x = standard_gamma_rsample(self.concentration, shape) / self.rate
        return x.clamp(min=finfo(x.dtype).tiny)

    def cdf(self, value):
        """``P(concentration, rate * value)`` (regularized lower incomplete gamma)."""
        if self._validate_args:
            self._validate_sample(value)
        return special.gammainc(self.concentration, self.rate * value)

    def __repr__(self) -> str:
        return "Gamma" + super().__repr__()[len(type(self).__name__):]


class Chi2(_ReparamGamma):
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
        base = _ReparamGamma(concentration, rate, validate_args=False)
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
