"""``fw.distributions``: probability distributions with ``torch.distributions``' names and
semantics: sampling (``sample``/``rsample``) on the framework's RNG, ``log_prob``,
``entropy``, moments, ``cdf``/``icdf``, ``expand``, argument and support validation,
transforms and closed-form ``kl_divergence``. Everything is written with framework ops, so
it differentiates, runs on "cuda" and compiles (validation is skipped while
``fw.compile`` captures)."""

from . import constraints, transforms
from .bernoulli import Bernoulli
from .beta import Beta
from .binomial import Binomial, Multinomial
from .categorical import Categorical
from .cauchy import Cauchy, HalfCauchy, HalfNormal
from .continuous_bernoulli import ContinuousBernoulli
from .dirichlet import Dirichlet
from .distribution import Distribution
from .exponential import Exponential
from .extreme_value import Gumbel, Kumaraswamy, Pareto, Weibull
from .gamma import Gamma
from .gamma_family import Chi2, FisherSnedecor, InverseGamma, StudentT
from .geometric import Geometric, NegativeBinomial
from .independent import Independent
from .kl import kl_divergence, register_kl
from .kl_more import __all__ as _kl_more  # noqa: F401  (registers the KLs of the above)
from .laplace import Laplace
from .lkj_cholesky import LKJCholesky
from .log_normal import LogNormal
from .logistic_normal import LogisticNormal
from .lowrank_multivariate_normal import LowRankMultivariateNormal
from .mixture_same_family import MixtureSameFamily
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .one_hot_categorical import OneHotCategorical, OneHotCategoricalStraightThrough
from .poisson import Poisson
from .relaxed import (ExpRelaxedCategorical, LogitRelaxedBernoulli, RelaxedBernoulli,
                      RelaxedOneHotCategorical)
from .transformed_distribution import TransformedDistribution
from .transforms import (AbsTransform, AffineTransform, ComposeTransform, ExpTransform,
                         PowerTransform, SigmoidTransform, StickBreakingTransform,
                         TanhTransform, Transform)
from .uniform import Uniform
from .von_mises import VonMises

__all__ = ["AbsTransform", "AffineTransform", "Bernoulli", "Beta", "Binomial", "Categorical",
           "Cauchy", "Chi2", "ComposeTransform", "ContinuousBernoulli", "Dirichlet",
           "Distribution", "ExpRelaxedCategorical", "ExpTransform", "Exponential",
           "FisherSnedecor", "Gamma", "Geometric", "Gumbel", "HalfCauchy", "HalfNormal",
           "Independent", "InverseGamma", "Kumaraswamy", "LKJCholesky", "Laplace",
           "LogNormal", "LogisticNormal", "LogitRelaxedBernoulli",
           "LowRankMultivariateNormal", "MixtureSameFamily", "Multinomial",
           "MultivariateNormal", "NegativeBinomial", "Normal", "OneHotCategorical",
           "OneHotCategoricalStraightThrough", "Pareto", "Poisson", "PowerTransform",
           "RelaxedBernoulli", "RelaxedOneHotCategorical", "SigmoidTransform",
           "StickBreakingTransform", "StudentT", "TanhTransform", "Transform",
           "TransformedDistribution", "Uniform", "VonMises", "Weibull", "constraints",
           "kl_divergence", "register_kl", "transforms"]
