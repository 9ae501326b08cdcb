"""``Binomial(total_count, probs | logits)`` and ``Multinomial(total_count, probs |
logits)``, with a binomial sampler on the framework's RNG (sequential inversion for small
means, Hörmann's BTRS for large ones)."""

from __future__ import annotations

from numbers import Number

from ..autograd import no_grad
from ..creation import arange, rand, tensor, zeros
from ..dtypes import bool_, float64
from ..errors import ArgumentError
from ..ops.movement import stack
from ..ops.pointwise import where
from ..tensor import Size, Tensor
from . import constraints
from .categorical import Categorical
from .distribution import Distribution
from .utils import (broadcast_all, expand_probs_or_logits, lazy_property, logits_to_probs,
                    probs_to_logits, softplus)

__all__ = ["Binomial", "Multinomial", "sample_binomial"]

_SMALL_MEAN = 10.0  # n min(p, 1 - p) below this uses inversion
_MAX_STEPS = 256  # inversion steps: P(X > 256 | mean < 10) is negligible
_MAX_ROUNDS = 64  # BTRS rounds: each accepts most of what is left


def _invert(n: Tensor, p: Tensor, generator=None) -> Tensor:
    """Inversion by sequential search over ``k = 0, 1, ...`` (float64, ``p <= 1/2``,
    ``n p < 10``): all elements advance one ``k`` per step until their CDF passes ``u``."""
    u = rand(n.shape, dtype=float64, device=n.device, generator=generator)
    q = 1 - p
    ratio = p / q
    pmf = q.pow(n)
    cdf = pmf
    k = zeros(n.shape, dtype=float64, device=n.device)
    for i in range(_MAX_STEPS):
        more = (u > cdf) & (k < n)
        if not bool(more.any()):
            break
        k = k + more.to(float64)
        pmf = pmf * ratio * (n - i) / (i + 1)
        cdf = cdf + pmf
    return k


def _btrs(n: Tensor, p: Tensor, generator=None) -> Tensor:
    """Hörmann's (1993) transformed rejection with squeeze (BTRS) for ``p <= 1/2`` and
    ``n p >= 10`` (float64), every element redrawn until accepted."""
    q = 1 - p
    spq = (n * p * q).sqrt()
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    v_r = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = (p / q).log()
    m = ((n + 1) * p).floor()
    h = (m + 1).lgamma() + (n - m + 1).lgamma()
    out = zeros(n.shape, dtype=float64, device=n.device)
    done = zeros(n.shape, dtype=bool_, device=n.device)
    for _ in range(_MAX_ROUNDS):
        u = rand(n.shape, dtype=float64, device=n.device, generator=generator) - 0.5
        v = rand(n.shape, dtype=float64, device=n.device, generator=generator)
        us = 0.5 - u.abs()
        k = ((2 * a / us + b) * u + c).floor()
        inside = (k >= 0) & (k <= n)
        quick = (us >= 0.07) & (v <= v_r)
        kc = k.clamp(min=0).minimum(n)
        lhs = (v * alpha / (a / (us * us) + b)).log()
        rhs = h - (kc + 1).lgamma() - (n - kc + 1).lgamma() + (kc - m) * lpq
        ok = inside & (quick | (lhs <= rhs))
        out = where(ok & ~done, k, out)
        done = done | ok
        if bool(done.all()):
            break
    return out


def sample_binomial(total_count: Tensor, probs: Tensor, shape, generator=None) -> Tensor:
    """Binomial(total_count, probs) counts of ``shape`` (parameters broadcast to it), in
    ``probs``' dtype, without gradient. Draws for ``p > 1/2`` are ``n - X`` with
    ``X ~ Binomial(n, 1 - p)``."""
    with no_grad():
        shape = tuple(shape)
        n = total_count.detach().to(float64).expand(shape)
        p = probs.detach().to(float64).expand(shape)
        flip = p > 0.5
        p_low = where(flip, 1 - p, p)
        small = n * p_low < _SMALL_MEAN
        k = _invert(where(small, n, 0.0), where(small, p_low, 0.0), generator)
        if not bool(small.all()):
            big = _btrs(where(small, 100.0, n), where(small, 0.5, p_low), generator)
            k = where(small, k, big)
        return where(flip, n - k, k).to(probs.dtype)


class Binomial(Distribution):
    """The number of successes in ``total_count`` independent trials of probability
    ``probs`` (or ``sigmoid(logits)``); ``total_count`` may be a tensor broadcast with
    the probabilities. Samples are float counts."""

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ArgumentError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.to(self.probs.dtype)
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.to(self.logits.dtype)
        self._param = self.probs if probs is not None else self.logits
        super().__init__(self._param.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Binomial, _instance)
        batch_shape = Size(batch_shape)
        new.total_count = self.total_count.expand(batch_shape)
        expand_probs_or_logits(self, new, batch_shape)
        return self._expand_into(new, batch_shape)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @lazy_property
    def logits(self):
        """``log(p / (1 - p))``."""
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        """``sigmoid(logits)``."""
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> Size:
        """The shape of the given probability parameter."""
        return self._param.size()

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().minimum(self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        return sample_binomial(self.total_count, self.probs, self._extended_shape(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n, logits, k = broadcast_all(self.total_count, self.logits, value)
        log_comb = (n + 1).lgamma() - (k + 1).lgamma() - (n - k + 1).lgamma()
        # k log p + (n - k) log(1 - p), each term 0 when its count is 0 (p may be 0 or 1)
        successes = where(k == 0, 0.0, -k * softplus(-logits))
        failures = where(n - k == 0, 0.0, -(n - k) * softplus(logits))
        return log_comb + successes + failures

    def _homogeneous_count(self, what: str) -> int:
        n_max = int(self.total_count.max().item())
        if int(self.total_count.min().item()) != n_max:
            raise NotImplementedError(f"Inhomogeneous total count not supported by `{what}`.")
        return n_max

    def entropy(self):
        self._homogeneous_count("entropy")
        log_prob = self.log_prob(self.enumerate_support(False))
        return -(log_prob.exp() * log_prob).sum(0)

    def enumerate_support(self, expand=True):
        n = self._homogeneous_count("enumerate_support")
        values = arange(1 + n, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + tuple(self._batch_shape))
        return values


class Multinomial(Distribution):
    """Counts of ``total_count`` draws among ``K`` categories with probabilities ``probs``
    (normalized along the last dim) or ``softmax(logits)``; ``event_shape = (K,)``.
    ``total_count`` is a Python int (shared by the batch). ``sample`` draws the counts as
    a chain of conditional binomials; ``log_prob`` only needs the counts, so any total
    is scored."""

    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, Number) or isinstance(total_count, bool) or \
                int(total_count) != total_count:
            raise NotImplementedError("Multinomial: inhomogeneous total_count (a tensor) is "
                                      "not supported; pass a Python int")
        if total_count < 0:
            raise ArgumentError(f"Multinomial: total_count must be non-negative, got "
                                f"{total_count}")
        self.total_count = int(total_count)
        self._categorical = Categorical(probs=probs, logits=logits,
                                        validate_args=validate_args)
        self._binomial = Binomial(total_count=self.total_count, probs=self.probs,
                                  validate_args=False)
        batch_shape = self._categorical.batch_shape
        super().__init__(batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Multinomial, _instance)
        batch_shape = Size(batch_shape)
        new.total_count = self.total_count
        new._categorical = self._categorical.expand(batch_shape)
        new._binomial = self._binomial.expand(batch_shape + self._event_shape)
        return self._expand_into(new, batch_shape)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def _param(self):
        return self._categorical._param

    @property
    def probs(self):
        """Normalized probabilities."""
        return self._categorical.probs

    @property
    def logits(self):
        """Normalized log-probabilities."""
        return self._categorical.logits

    @property
    def param_shape(self) -> Size:
        """The shape of the given parameter."""
        return self._categorical.param_shape

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        probs = self.probs.detach().to(float64)
        # P(category j | not one of 0..j-1) = p_j / (p_j + ... + p_K-1)
        tail = probs.flip(-1).cumsum(-1).flip(-1)
        cond = where(tail > 0, probs / tail, 1.0).clamp(min=0, max=1)
        left = tensor(float(self.total_count), dtype=float64, device=probs.device)
        left = left.expand(shape[:-1])
        counts = []
        for j in range(shape[-1] - 1):
            c = sample_binomial(left, cond[..., j].expand(shape[:-1]), shape[:-1])
            counts.append(c)
            left = left - c
        counts.append(left)
        return stack(counts, -1).to(self.probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        log_factorial_n = (value.sum(-1) + 1).lgamma()
        log_factorial_xs = (value + 1).lgamma().sum(-1)
        log_powers = where(value == 0, 0.0, logits * value).sum(-1)  # 0 * -inf is 0
        return log_factorial_n - log_factorial_xs + log_powers

    def entropy(self):
        n = tensor(float(self.total_count), dtype=self.probs.dtype, device=self.probs.device)
        support = self._binomial.enumerate_support(expand=False)[1:]
        binomial_probs = self._binomial.log_prob(support).exp()
        weights = (support + 1).lgamma()
        return (n * self._categorical.entropy() - (n + 1).lgamma()
                + (binomial_probs * weights).sum(0).sum(-1))
