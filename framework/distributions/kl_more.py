"""Closed-form ``kl_divergence`` for the distributions beyond the core set (registered on
import by the package): Binomial, Cauchy, ContinuousBernoulli, Geometric, Gumbel,
HalfNormal, Pareto and the low-rank Gaussians (Chi2 uses Gamma's)."""

from __future__ import annotations

import math

from ..ops.pointwise import where
from .binomial import Binomial
from .cauchy import Cauchy, HalfNormal
from .continuous_bernoulli import ContinuousBernoulli
from .extreme_value import EULER_GAMMA, Gumbel, Pareto
from .geometric import Geometric
from .kl import kl_divergence, register_kl
from .lowrank_multivariate_normal import LowRankMultivariateNormal
from .multivariate_normal import MultivariateNormal
from .utils import is_tracing, softplus

__all__: list = []


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p, q):
    num = (p.scale + q.scale).pow(2) + (p.loc - q.loc).pow(2)
    return (num / (4 * p.scale * q.scale)).log()


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p, q):
    ratio = p.scale / q.scale
    shift = (p.loc - q.loc) / q.scale
    return (-ratio.log() + shift + EULER_GAMMA * ratio
            + ((1 + ratio).lgamma() - shift).exp() - (1 + EULER_GAMMA))


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p, q):
    var_ratio = (p.scale / q.scale).pow(2)
    return 0.5 * (var_ratio - 1 - var_ratio.log())


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p, q):
    # infinite where p puts mass below q's lower bound
    alpha_ratio = q.alpha / p.alpha
    result = q.alpha * (p.scale / q.scale).log() - alpha_ratio.log() + alpha_ratio - 1
    return where(p.scale < q.scale, math.inf, result)


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p, q):
    return -p.entropy() - (-q.probs).log1p() / p.probs - q.logits


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p, q):
    """Equal totals: ``n KL(Bernoulli(p) || Bernoulli(q))``; infinite where p's total
    exceeds q's (q cannot reach p's largest counts)."""
    if not is_tracing() and bool((p.total_count < q.total_count).any()):
        raise NotImplementedError("KL between Binomials where q.total_count > "
                                  "p.total_count is not implemented")
    n = p.total_count
    t1 = p.probs * (softplus(-q.logits) - softplus(-p.logits))
    t2 = (1 - p.probs) * (softplus(q.logits) - softplus(p.logits))
    return where(p.total_count > q.total_count, math.inf, n * (t1 + t2))


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_continuous_bernoulli(p, q):
    t1 = p.mean * (p.logits - q.logits)
    t2 = p._cont_bern_log_norm() + (-p.probs).log1p()
    t3 = -q._cont_bern_log_norm() - (-q.probs).log1p()
    return t1 + t2 + t3


def _as_full_rank(d):
    """A :class:`MultivariateNormal` with the same mean and covariance as ``d``."""
    if isinstance(d, MultivariateNormal):
        return d
    return MultivariateNormal(d.loc, scale_tril=d.scale_tril, validate_args=False)


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
@register_kl(LowRankMultivariateNormal, MultivariateNormal)
@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_gaussians(p, q):
    """Through the dense Cholesky factors (``O(n^3)``; PyTorch uses Woodbury forms)."""
    return kl_divergence(_as_full_rank(p), _as_full_rank(q))
