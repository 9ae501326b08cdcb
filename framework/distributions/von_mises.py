"""``VonMises(loc, concentration)``: the circular normal distribution on angles."""

from __future__ import annotations

import math

from .. import special
from ..autograd import no_grad
from ..creation import full, rand, zeros
from ..dtypes import bool_, float64
from ..ops.pointwise import where
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all

__all__ = ["VonMises"]

_MAX_ROUNDS = 64  # each round accepts at least ~65% of what is left


def _log_i0(kappa):
    """``log I0(kappa)`` without overflow: ``log(i0e(kappa)) + kappa``."""
    return special.i0e(kappa).log() + kappa


class VonMises(Distribution):
    """Angles with density ``exp(concentration cos(x - loc)) / (2 pi I0(concentration))``.

    ``mean`` and ``mode`` are ``loc``; ``variance`` is the circular variance
    ``1 - I1(k) / I0(k)``. Samples lie in ``[-pi, pi)`` and come from Best and Fisher's
    (1979) rejection sampler, computed in float64; there is no ``rsample``.
    """

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(VonMises, _instance)
        return self._expand_into(new, batch_shape, "loc", "concentration")

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        k = self.concentration
        return 1 - special.i1e(k) / special.i0e(k)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self.concentration
        return k * (value - self.loc).cos() - math.log(2 * math.pi) - _log_i0(k)

    def entropy(self):
        k = self.concentration
        return math.log(2 * math.pi) + _log_i0(k) - k * special.i1e(k) / special.i0e(k)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            kappa = self.concentration.detach().to(float64).expand(shape)
            dev = kappa.device
            tau = 1 + (1 + 4 * kappa * kappa).sqrt()
            rho = 2 * kappa / (tau + (2 * tau).sqrt())  # (tau - sqrt(2 tau)) / (2 kappa)
            r = (1 + rho * rho) / (2 * rho)
            out = zeros(shape, dtype=float64, device=dev)
            done = zeros(shape, dtype=bool_, device=dev)
            for _ in range(_MAX_ROUNDS):
                u1, u2, u3 = (rand(shape, dtype=float64, device=dev) for _ in range(3))
                z = (math.pi * u1).cos()
                f = (1 + r * z) / (r + z)
                c = kappa * (r - f)
                ok = (c * (2 - c) - u2 > 0) | ((c / u2).log() + 1 - c >= 0)
                theta = (u3 - 0.5).sign() * f.clamp(min=-1, max=1).acos()
                out = where(ok & ~done, theta, out)
                done = done | ok
                if bool(done.all()):
                    break
            out = where(done, out, full(shape, math.nan, dtype=float64, device=dev))
            loc = self.loc.detach().to(float64)
            angle = (out + loc + math.pi).remainder(2 * math.pi) - math.pi
            return angle.to(self.loc.dtype)
