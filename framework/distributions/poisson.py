"""``Poisson(rate)``: counts of events in an interval, with a sampler on the framework's
RNG (sequential inversion for small rates, Hörmann's PTRS for large ones)."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import rand, zeros
from ..dtypes import bool_, float64
from ..ops.pointwise import where
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all

__all__ = ["Poisson"]

_SMALL = 10.0  # rates below this use inversion, as NumPy's sampler
_MAX_STEPS = 128  # inversion steps: P(X > 128 | rate < 10) is below 1e-60
_MAX_ROUNDS = 64  # PTRS rounds: each accepts ~90% of what is left


def _invert(lam: Tensor, generator=None) -> Tensor:
    """Inversion by sequential search: the count ``k`` with ``F(k - 1) < u <= F(k)``,
    advancing all elements one ``k`` per step (float64, rates < 10)."""
    u = rand(lam.shape, dtype=float64, device=lam.device, generator=generator)
    p = (-lam).exp()
    cdf = p
    k = zeros(lam.shape, dtype=float64, device=lam.device)
    for i in range(1, _MAX_STEPS):
        more = u > cdf
        if not bool(more.any()):
            break
        k = k + more.to(float64)
        p = p * lam / i
        cdf = cdf + p
    return k


def _ptrs(lam: Tensor, generator=None) -> Tensor:
    """Hörmann's (1993) transformed rejection with squeeze (PTRS) for rates >= 10
    (float64), every element redrawn until accepted."""
    slam, loglam = lam.sqrt(), lam.log()
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    log_invalpha = (1.1239 + 1.1328 / (b - 3.4)).log()
    vr = 0.9277 - 3.6224 / (b - 2)
    out = zeros(lam.shape, dtype=float64, device=lam.device)
    done = zeros(lam.shape, dtype=bool_, device=lam.device)
    for _ in range(_MAX_ROUNDS):
        u = rand(lam.shape, dtype=float64, device=lam.device, generator=generator) - 0.5
        v = rand(lam.shape, dtype=float64, device=lam.device, generator=generator)
        us = 0.5 - u.abs()
        k = ((2 * a / us + b) * u + lam + 0.43).floor()
        quick = (us >= 0.07) & (v <= vr)
        reject = (k < 0) | ((us < 0.013) & (v > us))
        lhs = v.log() + log_invalpha - (a / (us * us) + b).log()
        rhs = -lam + k * loglam - (k.clamp(min=0) + 1).lgamma()
        ok = quick | (~reject & (lhs <= rhs))
        out = where(ok & ~done, k, out)
        done = done | ok
        if bool(done.all()):
            break
    return out


def sample_poisson(rate: Tensor, shape, generator=None) -> Tensor:
    """Poisson(rate) counts of ``shape`` (``rate`` broadcast to it) in ``rate``'s dtype,
    drawn from ``generator`` (default: the framework's default generator)."""
    with no_grad():
        lam = rate.detach().expand(tuple(shape)).to(float64)
        small = lam < _SMALL
        k = _invert(where(small, lam, 0.0), generator)
        if not bool(small.all()):
            k = where(small, k, _ptrs(where(small, _SMALL, lam), generator))
        return k.to(rate.dtype)


class Poisson(Distribution):
    """The Poisson distribution with mean ``rate``; samples are float counts (as
    PyTorch's)."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Poisson, _instance)
        return self._expand_into(new, batch_shape, "rate")

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=()):
        return sample_poisson(self.rate, self._extended_shape(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        return value.xlogy(rate) - rate - (value + 1).lgamma()
