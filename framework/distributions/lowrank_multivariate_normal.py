"""``LowRankMultivariateNormal(loc, cov_factor, cov_diag)``: a Gaussian whose covariance
is a low-rank matrix plus a diagonal, ``W W^T + D``, scored in ``O(n m^2)`` through the
Woodbury identity and the matrix determinant lemma."""

# ruff: noqa: N803, N806  (matrix names: W, D, L)
from __future__ import annotations

import math

from ..creation import eye, randn
from ..errors import ArgumentError, ShapeError
from ..linalg import cholesky
from ..ops.movement import broadcast_tensors
from ..tensor import Size
from . import constraints
from .loc_scale import LocCentered
from .multivariate_normal import batch_mahalanobis, batch_mv, solve_lower
from .utils import lazy_property

__all__ = ["LowRankMultivariateNormal"]


def _capacitance_tril(W, D):
    """The lower Cholesky factor of the capacitance matrix ``I + W^T D^-1 W`` (m x m)."""
    m = W.shape[-1]
    Wt_Dinv = W.mT / D.unsqueeze(-2)
    K = Wt_Dinv @ W
    return cholesky(K + eye(m, dtype=W.dtype, device=W.device))


class LowRankMultivariateNormal(LocCentered):
    """A Gaussian on vectors with mean ``loc`` (``(*batch, n)``) and covariance
    ``cov_factor @ cov_factor.mT + diag(cov_diag)`` (``cov_factor``: ``(*batch, n, m)``,
    ``cov_diag``: ``(*batch, n)``, positive); batch dims broadcast. ``rsample`` is
    ``loc + W eps_m + sqrt(D) eps_n``."""

    arg_constraints = {"loc": constraints.real_vector,
                       "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        if loc.ndim < 1:
            raise ArgumentError("loc must be at least one-dimensional.")
        event_shape = tuple(loc.shape[-1:])
        if cov_factor.ndim < 2:
            raise ArgumentError("cov_factor must be at least two-dimensional, with optional "
                                "leading batch dimensions")
        if tuple(cov_factor.shape[-2:-1]) != event_shape:
            raise ShapeError(f"cov_factor must be a batch of matrices with shape "
                             f"{event_shape[0]} x m, got {tuple(cov_factor.shape)}")
        if tuple(cov_diag.shape[-1:]) != event_shape:
            raise ShapeError(f"cov_diag must be a batch of vectors with shape {event_shape}, "
                             f"got {tuple(cov_diag.shape)}")
        try:
            loc_, self.cov_factor, cov_diag_ = broadcast_tensors(
                loc.unsqueeze(-1), cov_factor, cov_diag.unsqueeze(-1))
        except ValueError as e:
            raise ShapeError(f"Incompatible batch shapes: loc {tuple(loc.shape)}, cov_factor "
                             f"{tuple(cov_factor.shape)}, cov_diag {tuple(cov_diag.shape)}") \
                from e
        self.loc = loc_[..., 0]
        self.cov_diag = cov_diag_[..., 0]
        super().__init__(self.loc.shape[:-1], event_shape, validate_args=validate_args)
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        self._capacitance_tril = _capacitance_tril(cov_factor, cov_diag)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LowRankMultivariateNormal, _instance)
        shape = Size(batch_shape) + self._event_shape
        new.cov_factor = self.cov_factor.expand(shape + self.cov_factor.shape[-1:])
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        new._capacitance_tril = self._capacitance_tril
        return self._expand_into(new, batch_shape, "loc", "cov_diag")

    def _matrix_shape(self):
        return tuple(self._batch_shape) + tuple(self._event_shape) * 2

    @property
    def variance(self):
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return (W.pow(2).sum(-1) + D).expand(tuple(self._batch_shape + self._event_shape))

    @lazy_property
    def scale_tril(self):
        """The lower Cholesky factor of the covariance: ``sqrt(D) chol(I + K)`` with
        ``K = (D^-1/2 W)(D^-1/2 W)^T`` (well conditioned)."""
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        n = self._event_shape[0]
        sqrt_d = D.sqrt().unsqueeze(-1)
        Dinvsqrt_W = W / sqrt_d
        K = Dinvsqrt_W @ Dinvsqrt_W.mT + eye(n, dtype=W.dtype, device=W.device)
        return (sqrt_d * cholesky(K)).expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self):
        """``W W^T + diag(D)``."""
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return (W @ W.mT + D.diag_embed()).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self):
        """``D^-1 - D^-1 W C^-1 W^T D^-1`` (Woodbury), ``C`` the capacitance."""
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        A = solve_lower(self._capacitance_tril, W.mT / D.unsqueeze(-2))
        return ((1 / D).diag_embed() - A.mT @ A).expand(self._matrix_shape())

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        eps_w = randn(shape[:-1] + (W.shape[-1],), dtype=self.loc.dtype, device=self.loc.device)
        eps_d = randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + batch_mv(W, eps_w) + D.sqrt() * eps_d

    def _log_det(self):
        """``log det(W W^T + D) = 2 sum log diag(chol C) + sum log D`` (determinant
        lemma)."""
        L = self._capacitance_tril
        return (2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
                + self._unbroadcasted_cov_diag.log().sum(-1))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        diff = value - self.loc
        # x^T (W W^T + D)^-1 x = x^T D^-1 x - |L_C^-1 W^T D^-1 x|^2
        term1 = (diff.pow(2) / D).sum(-1)
        Wt_Dinv_x = batch_mv(W.mT / D.unsqueeze(-2), diff)
        term2 = batch_mahalanobis(self._capacitance_tril, Wt_Dinv_x)
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + self._log_det() + term1 - term2)

    def entropy(self):
        n = self._event_shape[0]
        h = 0.5 * (n * (1.0 + math.log(2 * math.pi)) + self._log_det())
        if len(self._batch_shape) == 0:
            return h
        return h.expand(tuple(self._batch_shape))
