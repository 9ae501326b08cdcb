"""``Gamma(concentration, rate)`` and the standard-gamma sampler that ``Beta`` and
``Dirichlet`` share (Marsaglia and Tsang's method on the framework's RNG)."""

from __future__ import annotations

from .. import special
from ..autograd import is_grad_enabled, no_grad
from ..creation import full, rand, randn, zeros
from ..dtype_info import finfo
from ..dtypes import bool_, float64
from ..ops.pointwise import where
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all

__all__ = ["Gamma", "standard_gamma_rsample"]

_MAX_ROUNDS = 64  # each round accepts >= 95% of what is left


def log_standard_gamma(concentration: Tensor, shape) -> Tensor:
    """``log`` of Gamma(concentration, 1) samples of ``shape`` (``concentration`` broadcast
    to it), without gradient.

    Marsaglia and Tsang (2000): ``d v`` with ``v = (1 + c z)^3`` for a normal ``z``,
    accepted when ``log u < z^2/2 + d - d v + d log v``; each round draws for every element
    and keeps the first accepted value of each. For ``a < 1`` a Gamma(a + 1) sample is
    scaled by ``u^(1/a)``, added in log space, so tiny concentrations do not underflow.
    """
    with no_grad():
        shape = tuple(shape)
        alpha = concentration.detach().expand(shape)
        dt, dev = alpha.dtype, alpha.device
        boost = alpha < 1
        a = where(boost, alpha + 1, alpha)
        d = a - 1.0 / 3.0
        c = (9 * d).rsqrt()
        tiny = finfo(dt).tiny
        out = zeros(shape, dtype=dt, device=dev)
        done = zeros(shape, dtype=bool_, device=dev)
        for _ in range(_MAX_ROUNDS):
            z = randn(shape, dtype=dt, device=dev)
            v = (1 + c * z).pow(3)
            log_u = rand(shape, dtype=dt, device=dev).log()
            log_v = v.clamp(min=tiny).log()
            ok = (v > 0) & (log_u < 0.5 * z * z + d - d * v + d * log_v)
            out = where(ok & ~done, d.log() + log_v, out)
            done = done | ok
            if bool(done.all()):
                break
        out = where(done, out, full(shape, float("nan"), dtype=dt, device=dev))
        log_u = rand(shape, dtype=dt, device=dev).log()
        return where(boost, out + log_u / alpha, out)


def standard_gamma(concentration: Tensor, shape) -> Tensor:
    """Gamma(concentration, 1) samples of ``shape``, at least ``finfo.tiny``."""
    x = log_standard_gamma(concentration, shape).exp()
    return x.clamp(min=finfo(x.dtype).tiny)


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


class Gamma(Distribution):
    """The gamma distribution with shape ``concentration`` and inverse scale ``rate``
    (mean ``concentration / rate``).

    Sampling uses Marsaglia and Tsang's rejection method; ``rsample`` differentiates the
    draws by implicit reparametrization (:func:`standard_gamma_rsample`), as PyTorch does.
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Gamma, _instance)
        return self._expand_into(new, batch_shape, "concentration", "rate")

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x = standard_gamma(self.concentration, shape) / self.rate.detach().expand(shape)
        return x.clamp(min=finfo(x.dtype).tiny)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x = standard_gamma_rsample(self.concentration, shape) / self.rate
        return x.clamp(min=finfo(x.dtype).tiny)

    def cdf(self, value):
        """``P(concentration, rate * value)`` (the regularized lower incomplete gamma)."""
        if self._validate_args:
            self._validate_sample(value)
        return special.gammainc(self.concentration, self.rate * value)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c, r = self.concentration, self.rate
        return c.xlogy(r) + (c - 1).xlogy(value) - r * value - c.lgamma()

    def entropy(self):
        c = self.concentration
        return c - self.rate.log() + c.lgamma() + (1.0 - c) * c.digamma()
