"""More transforms of ``torch.distributions.transforms``: ``AbsTransform`` (HalfNormal,
HalfCauchy), ``PowerTransform`` (Weibull, Kumaraswamy, InverseGamma) and
``StickBreakingTransform`` (LogisticNormal)."""

from __future__ import annotations

from numbers import Number

from ..creation import ones_like
from ..dtype_info import finfo
from ..ops.movement import cat
from ..tensor import Tensor
from . import constraints
from .transforms import Transform, _same
from .utils import broadcast_shape, softplus

__all__ = ["AbsTransform", "PowerTransform", "StickBreakingTransform"]


class AbsTransform(Transform):
    """``y = |x|`` (not bijective: the "inverse" returns ``y``, the non-negative root)."""

    domain = constraints.real
    codomain = constraints.positive

    def __eq__(self, other):
        return isinstance(other, AbsTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return x.abs()

    def _inverse(self, y):
        return y


class PowerTransform(Transform):
    """``y = x ** exponent`` on the positive reals (``exponent`` a number or a tensor
    broadcast against ``x``); ``log|dy/dx| = log|exponent y / x|``."""

    domain = constraints.positive
    codomain = constraints.positive
    bijective = True

    def __init__(self, exponent, cache_size: int = 0):
        super().__init__(cache_size=cache_size)
        self.exponent = exponent

    def with_cache(self, cache_size=1):
        if self._cache_size == cache_size:
            return self
        return PowerTransform(self.exponent, cache_size=cache_size)

    def __eq__(self, other):
        return isinstance(other, PowerTransform) and _same(self.exponent, other.exponent)

    __hash__ = object.__hash__

    @property
    def sign(self):
        if isinstance(self.exponent, Number):
            e = float(self.exponent)
            return 1 if e > 0 else -1 if e < 0 else 0
        return self.exponent.sign()

    def _call(self, x):
        return x.pow(self.exponent)

    def _inverse(self, y):
        return y.pow(1 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        return (self.exponent * y / x).abs().log()

    def forward_shape(self, shape):
        return tuple(broadcast_shape(shape, getattr(self.exponent, "shape", ())))

    def inverse_shape(self, shape):
        return self.forward_shape(shape)

    def __repr__(self) -> str:
        return f"PowerTransform(exponent={self.exponent})"


def _offset_log(x: Tensor) -> Tensor:
    """``log(K - k)`` for positions ``k = 0..K-1`` of the last dim (``K`` its size):
    the shift that maps ``x = 0`` to the centre of the simplex."""
    k = ones_like(x).cumsum(-1)
    return (x.shape[-1] + 1 - k).log()


class StickBreakingTransform(Transform):
    """Maps ``R^(K-1)`` onto the ``K``-simplex by stick breaking: ``z_k = sigmoid(x_k -
    log(K - 1 - k))`` is the fraction of the remaining stick given to entry ``k``; the last
    entry takes what is left. ``x = 0`` maps to the uniform vector."""

    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = True

    def __eq__(self, other):
        return isinstance(other, StickBreakingTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        z = (x - _offset_log(x)).sigmoid()
        remaining = (1 - z).cumprod(-1)
        one = ones_like(x[..., :1])
        return cat([z, one], -1) * cat([one, remaining], -1)

    def _inverse(self, y):
        y_crop = y[..., :-1]
        stick = (1 - y_crop.cumsum(-1)).clamp(min=finfo(y.dtype).tiny)
        return y_crop.log() - stick.log() + _offset_log(y_crop)

    def log_abs_det_jacobian(self, x, y):
        # dy_k/dx_k = z_k (1 - z_k) * stick_k with stick_k = y_k / z_k: a triangular Jacobian
        u = x - _offset_log(x)
        return (-u - softplus(-u) + y[..., :-1].log()).sum(-1)

    def forward_shape(self, shape):
        shape = tuple(shape)
        return shape[:-1] + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        shape = tuple(shape)
        return shape[:-1] + (shape[-1] - 1,)

