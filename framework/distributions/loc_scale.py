"""Bases of the distributions centred on a ``loc`` parameter: ``mean`` and ``mode`` are
``loc`` (Normal, Laplace, MultivariateNormal), and the real location-scale families with
a positive ``scale`` broadcast against ``loc`` (Normal, Laplace)."""

from __future__ import annotations

from . import constraints
from .distribution import Distribution
from .utils import broadcast_all

__all__ = ["LocCentered", "LocScale"]


class LocCentered(Distribution):
    """A distribution symmetric and unimodal about its ``loc`` parameter: ``mean`` and
    ``mode`` are ``loc``; samples are ``loc`` plus scaled noise (``rsample``)."""

    has_rsample = True

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc


class LocScale(LocCentered):
    """A location-scale family on the reals: ``loc`` (real) and ``scale`` (positive)
    broadcast together (numbers become tensors) and give the batch shape."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.size(), validate_args=validate_args)
