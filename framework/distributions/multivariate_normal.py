"""``MultivariateNormal``: the Gaussian on vectors, parametrized by a covariance, a
precision or a lower Cholesky factor of the covariance."""

# ruff: noqa: N803  (matrix names: L, B, P)
from __future__ import annotations

import math

from ..creation import eye, randn
from ..errors import ArgumentError
from ..linalg import cholesky, solve
from ..tensor import Size, Tensor
from . import constraints
from .loc_scale import LocCentered
from .utils import broadcast_shape, lazy_property

__all__ = ["MultivariateNormal"]


def batch_mv(bmat: Tensor, bvec: Tensor) -> Tensor:
    """Matrix-vector products over broadcast batch dims."""
    return (bmat @ bvec.unsqueeze(-1)).squeeze(-1)


def solve_lower(L: Tensor, B: Tensor) -> Tensor:
    """``L^-1 B`` for lower-triangular ``L``. ``tril()`` leaves the value unchanged but
    keeps the gradient off the (structurally zero) upper triangle, as a triangular solve
    would."""
    return solve(L.tril(), B)


def batch_mahalanobis(bL: Tensor, bx: Tensor) -> Tensor:
    """``x^T (L L^T)^-1 x`` over broadcast batch dims. The dims of ``x`` to the left of
    ``L``'s batch dims (sample dims) become right-hand-side columns, so each factor is
    used by one solve instead of being copied per sample."""
    n = bx.shape[-1]
    l_batch = tuple(bL.shape[:-2])
    full = tuple(broadcast_shape(l_batch, bx.shape[:-1]))
    tail = full[len(full) - len(l_batch):]
    x = bx.expand(full + (n,)).reshape((-1,) + tail + (n,))
    x = x.movedim(0, -1)  # (*tail, n, S)
    sol = solve_lower(bL.expand(tail + (n, n)), x)
    m = sol.pow(2).sum(-2)  # (*tail, S)
    return m.movedim(-1, 0).reshape(full)


def precision_to_scale_tril(P: Tensor) -> Tensor:
    """The lower Cholesky factor of ``P^-1`` without inverting ``P`` first: with
    ``flip(P) = Lf Lf^T``, ``L^-1 = flip(Lf)^T`` is lower triangular."""
    Lf = cholesky(P.flip((-2, -1)))
    L_inv = Lf.flip((-2, -1)).mT
    identity = eye(P.shape[-1], dtype=P.dtype, device=P.device)
    return solve_lower(L_inv, identity.expand(L_inv.shape)).tril()


class MultivariateNormal(LocCentered):
    """A Gaussian on vectors with mean ``loc`` (``(*batch, n)``) and exactly one of
    ``covariance_matrix``, ``precision_matrix`` or ``scale_tril`` (``(*batch, n, n)``;
    batch dims broadcast with ``loc``'s). Everything works from the lower Cholesky factor
    ``L`` of the covariance: ``rsample`` is ``loc + L eps``."""

    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):
        if not isinstance(loc, Tensor) or loc.ndim < 1:
            raise ArgumentError("loc must be at least one-dimensional.")
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ArgumentError("Exactly one of covariance_matrix or precision_matrix or "
                                "scale_tril may be specified.")
        matrix = given[0]
        if matrix.ndim < 2:
            name = ("scale_tril" if scale_tril is not None else "covariance_matrix"
                    if covariance_matrix is not None else "precision_matrix")
            raise ArgumentError(f"{name} matrix must be at least two-dimensional, with "
                                "optional leading batch dimensions")
        batch_shape = broadcast_shape(matrix.shape[:-2], loc.shape[:-1])
        expanded = matrix.expand(tuple(batch_shape) + (-1, -1))
        if scale_tril is not None:
            self.scale_tril = expanded
        elif covariance_matrix is not None:
            self.covariance_matrix = expanded
        else:
            self.precision_matrix = expanded
        self.loc = loc.expand(tuple(batch_shape) + (-1,))
        super().__init__(batch_shape, self.loc.shape[-1:], validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = precision_to_scale_tril(precision_matrix)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateNormal, _instance)
        cov_shape = Size(batch_shape) + self.event_shape + self.event_shape
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(cov_shape))
        return self._expand_into(new, batch_shape, "loc")

    def _matrix_shape(self):
        return tuple(self._batch_shape) + tuple(self._event_shape) * 2

    @lazy_property
    def scale_tril(self):
        """The lower Cholesky factor of the covariance."""
        return self._unbroadcasted_scale_tril.expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self):
        """``L L^T``."""
        L = self._unbroadcasted_scale_tril
        return (L @ L.mT).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self):
        """``(L L^T)^-1 = L^-T L^-1``."""
        L = self._unbroadcasted_scale_tril
        identity = eye(L.shape[-1], dtype=L.dtype, device=L.device)
        L_inv = solve_lower(L, identity.expand(L.shape))
        return (L_inv.mT @ L_inv).expand(self._matrix_shape())

    @property
    def variance(self):
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(
            tuple(self._batch_shape) + tuple(self._event_shape))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = randn(tuple(shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + batch_mv(self._unbroadcasted_scale_tril, eps)

    def _half_log_det(self):
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        m = batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self):
        n = self._event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        if len(self._batch_shape) == 0:
            return h
        return h.expand(tuple(self._batch_shape))
