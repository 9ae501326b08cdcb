"""``Dirichlet(concentration)``: a distribution over probability vectors."""

from __future__ import annotations

from ..dtype_info import finfo
from ..errors import ArgumentError
from ..ops.indexing import one_hot
from ..ops.pointwise import where
from . import constraints
from .distribution import Distribution
from .gamma import log_standard_gamma, standard_gamma_rsample

__all__ = ["Dirichlet"]


class Dirichlet(Distribution):
    """The Dirichlet distribution on the simplex of the last dim of ``concentration``
    (``event_shape = (K,)``): normalized gamma draws (a softmax of their logs);
    ``rsample`` normalizes reparametrized gamma draws."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.ndim < 1:
            raise ArgumentError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Dirichlet, _instance)
        return self._expand_into(new, batch_shape, "concentration")

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        """``(c - 1) / sum(c - 1)`` (negative parts clipped); when every ``c < 1`` the
        density peaks at a vertex: the one of the largest concentration."""
        c = self.concentration
        cm1 = (c - 1).clamp(min=0)
        inner = cm1 / cm1.sum(-1, keepdim=True)
        vertex = one_hot(c.argmax(-1), c.shape[-1]).to(c.dtype)
        return where((c < 1).all(-1, keepdim=True), vertex, inner)

    @property
    def variance(self):
        c = self.concentration
        c0 = c.sum(-1, keepdim=True)
        return c * (c0 - c) / (c0.pow(2) * (c0 + 1))

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x = log_standard_gamma(self.concentration, shape).softmax(-1)
        info = finfo(x.dtype)
        return x.clamp(min=info.tiny, max=1 - info.eps)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        g = standard_gamma_rsample(self.concentration, shape)
        info = finfo(g.dtype)
        return (g / g.sum(-1, keepdim=True)).clamp(min=info.tiny, max=1 - info.eps)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return ((c - 1).xlogy(value).sum(-1) + c.sum(-1).lgamma() - c.lgamma().sum(-1))

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return (c.lgamma().sum(-1) - a0.lgamma() - (k - a0) * a0.digamma()
                - ((c - 1.0) * c.digamma()).sum(-1))
