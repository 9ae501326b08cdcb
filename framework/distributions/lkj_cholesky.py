"""``LKJCholesky(dim, concentration)``: the LKJ distribution over Cholesky factors of
correlation matrices (Lewandowski, Kurowicka and Joe, 2009)."""

from __future__ import annotations

import math

from ..autograd import no_grad
from ..creation import arange, randn, zeros
from ..dtype_info import finfo
from ..errors import ArgumentError
from ..ops.movement import cat
from ..tensor import Size
from . import constraints
from .beta import Beta
from .distribution import Distribution
from .utils import broadcast_all

__all__ = ["LKJCholesky"]


class LKJCholesky(Distribution):
    """Lower Cholesky factors ``L`` of ``dim x dim`` correlation matrices ``L L^T`` with
    density proportional to ``det(L L^T)^(concentration - 1)``; on the factor that is
    ``prod_i L_ii^(dim - i + 2 (concentration - 1))`` (``i = 2..dim``).
    ``concentration = 1`` is uniform over correlation matrices; larger values favour the
    identity. Samples come from the onion method (a Beta draw per row for its squared
    off-diagonal length, a uniform direction for the row); there is no ``rsample``."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim, concentration=1.0, validate_args=None):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 2:
            raise ArgumentError("Expected dim to be an integer greater than or equal to 2. "
                                f"Found dim={dim!r}.")
        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        super().__init__(self.concentration.size(), (dim, dim), validate_args=validate_args)
        c = self.concentration
        marginal_conc = c + 0.5 * (dim - 2)
        offset = cat([zeros(1, dtype=c.dtype, device=c.device),
                      arange(dim - 1, dtype=c.dtype, device=c.device)])
        beta_conc1 = 0.5 * offset + 0.5  # row i >= 1: i / 2 (row 0 is unused)
        beta_conc0 = marginal_conc.unsqueeze(-1) - 0.5 * offset
        beta_conc1, beta_conc0 = broadcast_all(beta_conc1, beta_conc0)
        self._beta = Beta(beta_conc1, beta_conc0, validate_args=False)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LKJCholesky, _instance)
        batch_shape = Size(batch_shape)
        new.dim = self.dim
        new.concentration = self.concentration.expand(batch_shape)
        new._beta = self._beta.expand(batch_shape + (self.dim,))
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=()):
        with no_grad():
            # row i's squared off-diagonal length ~ Beta(i/2, conc + (dim - 1 - i)/2)
            y = self._beta.sample(sample_shape).unsqueeze(-1)
            shape = tuple(self._extended_shape(sample_shape))
            dt = self.concentration.dtype
            tiny = finfo(dt).tiny
            u = randn(shape, dtype=dt, device=self.concentration.device).tril(-1)
            direction = u / u.norm(dim=-1, keepdim=True).clamp(min=tiny)  # row 0 stays 0
            w = y.sqrt() * direction
            diag = (1 - w.pow(2).sum(-1)).clamp(min=tiny).sqrt()
            return w + diag.diag_embed()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        dim = self.dim
        c = self.concentration
        diag_elems = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = arange(2, dim + 1, dtype=c.dtype, device=c.device)
        order = 2 * (c - 1).unsqueeze(-1) + dim - order
        unnormalized = (order * diag_elems.log()).sum(-1)
        dm1 = dim - 1
        alpha = c + 0.5 * dm1
        denominator = alpha.lgamma() * dm1
        numerator = (alpha - 0.5).mvlgamma(dm1)
        normalize_term = 0.5 * dm1 * math.log(math.pi) + numerator - denominator
        return unnormalized - normalize_term
