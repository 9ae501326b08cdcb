"""``nn.utils.parametrizations``: weight normalization and spectral normalization written
as parametrizations (:mod:`framework.nn.utils.parametrize`), with PyTorch's names,
``state_dict`` keys and numerics.

``orthogonal`` keeps a matrix (or batch) orthogonal through ``fw.linalg.matrix_exp``, the
Cayley map or ``fw.linalg.householder_product``, with PyTorch's dynamic trivialization.
"""

from __future__ import annotations

import math

import numpy as np

from ... import linalg, ops
from ...autograd import no_grad
from ...creation import eye
from ...dtype_info import finfo
from ...errors import ArgumentError, FwIndexError
from ...ops.creation_ops import normal_ as _randn
from ...tensor import Tensor
from ..functional import normalize
from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..modules.module import Module
from . import parametrize

__all__ = ["weight_norm", "spectral_norm", "orthogonal"]


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:
    """The ``pow``-norm of ``v`` over every dim but ``dim``, kept broadcastable against
    ``v`` (size 1 everywhere except ``dim``); ``dim=-1`` is the norm of the whole tensor
    (a 0-d tensor), as PyTorch's ``torch.norm_except_dim``."""
    if dim == -1:
        return ops.norm(v, pow)
    if not -v.ndim <= dim < v.ndim:
        raise FwIndexError(f"norm_except_dim: dim {dim} out of range for a tensor with "
                           f"{v.ndim} dims")
    dim %= v.ndim
    others = tuple(d for d in range(v.ndim) if d != dim)
    if not others:
        return ops.abs(v) if pow != 0 else (v != 0).to(v.dtype)
    return ops.norm(v, pow, others, True)


class _WeightNorm(Module):
    """``weight = g * v / ||v||`` with the norm over every dim but ``dim`` (the whole
    tensor when ``dim`` is None or -1)."""

    def __init__(self, dim: int | None = 0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        """Rebuild the weight from its magnitude ``g`` and direction ``v``."""
        return weight_v * (weight_g / norm_except_dim(weight_v, 2, self.dim))

    def right_inverse(self, weight: Tensor):
        """Split ``weight`` into ``(g, v) = (||weight||, weight)``."""
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (Salimans & Kingma, 2016).

    ``module.parametrizations.<name>.original0`` is the magnitude ``g`` (size 1 in every
    dim but ``dim``) and ``original1`` the direction ``v``; both are new parameters, so
    build the optimizer after calling this. ``dim=None`` normalizes the whole tensor.

    As in PyTorch, a load pre-hook lets ``load_state_dict`` read checkpoints of the legacy
    ``nn.utils.weight_norm`` (keys ``<name>_g`` / ``<name>_v``).
    """

    def _weight_norm_compat_hook(state_dict, prefix, local_metadata, strict, missing_keys,
                                 unexpected_keys, error_msgs):
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    module._register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


class _SpectralNorm(Module):
    """``weight / sigma`` where ``sigma``, the largest singular value of the weight seen as
    a ``(shape[dim], -1)`` matrix, is estimated by power iteration on the buffers ``_u``
    and ``_v`` (updated in training mode, frozen in eval mode)."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise FwIndexError(f"spectral_norm: Dimension out of range (expected to be in "
                               f"range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ArgumentError("spectral_norm: Expected n_power_iterations to be positive, "
                                f"but got n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            # a vector needs no estimate: forward just normalizes it
            self.n_power_iterations = n_power_iterations
            with no_grad():
                mat = self._reshape_weight_to_matrix(weight.detach())
                h, w = mat.shape
                u = _randn((h,), dtype=mat.dtype, device=mat.device)
                v = _randn((w,), dtype=mat.dtype, device=mat.device)
                self.register_buffer("_u", normalize(u, dim=0, eps=self.eps))
                self.register_buffer("_v", normalize(v, dim=0, eps=self.eps))
                # start from sensible singular vectors
                self._power_method(mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        """Update ``_u`` and ``_v`` in place (``u = W v / ||W v||``, ``v = W^T u / ...``)."""
        with no_grad():
            weight_mat = weight_mat.detach()
            for _ in range(n_power_iterations):
                self._u.copy_(normalize(ops.mv(weight_mat, self._v), dim=0, eps=self.eps))
                self._v.copy_(normalize(ops.mv(weight_mat.t(), self._u), dim=0, eps=self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        """``weight / (u . W v)``, after ``n_power_iterations`` updates in training mode."""
        if weight.ndim == 1:
            return normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        # clones: the buffers are updated in place by the next call, and backward needs
        # the values used here
        u = self._u.clone()
        v = self._v.clone()
        sigma = ops.vdot(u, ops.mv(weight_mat, v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        """Assigning a weight stores it as given (it is not rescaled)."""
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm (Miyato et al., 2018), estimated with
    ``n_power_iterations`` power-iteration steps per forward in training mode.

    The original weight is ``module.parametrizations.<name>.original`` and the singular
    vector estimates are the buffers ``parametrizations.<name>.0._u`` / ``._v``. ``dim``
    defaults to 1 for transposed convolutions and 0 otherwise.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ArgumentError(f"spectral_norm: module '{module._get_name()}' has no parameter or "
                            f"buffer with name '{name}'")
    if dim is None:
        transposed = (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)
        dim = 1 if isinstance(module, transposed) else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


# ---------------------------------------------------------------------------------------
# orthogonal
_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


def _is_orthogonal(Q: Tensor) -> bool:  # noqa: N803
    """``Q^T Q == I`` up to ``10 n eps`` (PyTorch's test)."""
    n, k = Q.shape[-2], Q.shape[-1]
    ident = eye(k, dtype=Q.dtype, device=Q.device)
    return ops.allclose(Q.mT @ Q, ident, atol=10.0 * n * finfo(Q.dtype).eps)


def _make_orthogonal(A: Tensor) -> Tensor:  # noqa: N803
    """The ``Q`` of ``A = Q R`` (``A`` tall) normalized so that ``diag(R) >= 0``."""
    Q, R = linalg.qr(A)
    return Q * ops.sign(R.diagonal(dim1=-2, dim2=-1)).unsqueeze(-2)


def _householder_inverse(Q: Tensor) -> Tensor:  # noqa: N803
    """The ``householder`` map's parameter for a tall ``Q (*, m, n)``: LAPACK ``geqrf``'s
    Householder vectors below the diagonal and, on it, the signs of ``R``'s diagonal
    (flipped where ``geqrf`` used no reflection, ``tau = 0``), as PyTorch's
    ``right_inverse``. Host NumPy; runs only when such a weight is assigned."""
    a = Q.detach().cpu().numpy().astype(np.float64)
    m, n = a.shape[-2:]
    R = a.reshape((-1, m, n)).copy()
    for b in range(R.shape[0]):
        for j in range(min(m, n)):
            alpha, x = R[b, j, j], R[b, j + 1:, j]
            xnorm = float(np.linalg.norm(x))
            if xnorm == 0.0:  # dlarfg: H = I (tau = 0)
                R[b, j, j] = -np.sign(alpha)
                continue
            beta = -math.copysign(math.hypot(alpha, xnorm), alpha)
            t, v = (beta - alpha) / beta, x / (alpha - beta)
            w = R[b, j, j + 1:] + v @ R[b, j + 1:, j + 1:]
            R[b, j, j + 1:] -= t * w
            R[b, j + 1:, j + 1:] -= t * np.outer(v, w)
            R[b, j, j], R[b, j + 1:, j] = np.sign(beta), v
    return ops.tensor(R.reshape(a.shape), dtype=Q.dtype, device=Q.device)


class _Orthogonal(Module):
    """An orthogonal matrix (or batch) from an unconstrained one through ``matrix_exp`` or
    the Cayley map of its skew-symmetric part, or a product of Householder reflectors; with
    ``use_trivialization`` the result is multiplied by the buffer ``base`` (set by
    ``right_inverse``), so that the parameter starts at a neutral point."""

    def __init__(self, weight: Tensor, orthogonal_map: str, *, use_trivialization=True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:  # noqa: N803
        """The orthogonal matrix parametrized by ``X``."""
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X, n, k = X.mT, k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = X.tril()
            if n != k:  # embed into a square matrix
                X = ops.cat([X, X.new_zeros(tuple(X.shape[:-2]) + (n, n - k))], -1)
            A = X - X.mT  # skew-symmetric
            if self.orthogonal_map == "matrix_exp":
                Q = linalg.matrix_exp(A)
            else:  # the Cayley retraction (I + A/2)(I - A/2)^-1
                ident = eye(n, dtype=A.dtype, device=A.device)
                Q = linalg.solve(ident - 0.5 * A, ident + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(-1)
            tau = 2.0 / (1.0 + (A * A).sum(-2))
            Q = linalg.householder_product(A, tau)
            # the signs of X's diagonal (not differentiated, not updated)
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        if hasattr(self, "base"):
            Q = self.base @ Q
        return Q.mT if transposed else Q

    def right_inverse(self, Q: Tensor) -> Tensor:  # noqa: N803
        """Store ``Q`` (made orthogonal first if it is not) in ``base`` and return the
        parameter value that maps to it (PyTorch's ``-I``); without trivialization only the
        ``householder`` map can be assigned (through ``geqrf``)."""
        if tuple(Q.shape) != self.shape:
            raise ArgumentError(f"orthogonal: Expected a matrix or batch of matrices of shape "
                                f"{list(self.shape)}. Got a tensor of shape {list(Q.shape)}.")
        with no_grad():
            Q_init = Q
            n, k = Q.shape[-2], Q.shape[-1]
            transpose = n < k
            if transpose:
                Q, n, k = Q.mT, k, n
            if not hasattr(self, "base"):
                if self.orthogonal_map != "householder":
                    raise NotImplementedError(
                        "It is not possible to assign to the matrix exponential or the Cayley "
                        "parametrizations when use_trivialization=False.")
                A = _householder_inverse(Q)
                return A.mT if transpose else A
            if n == k:
                Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)
            else:  # complete Q into a full n x n orthogonal matrix
                N = _randn(tuple(Q.shape[:-2]) + (n, n - k), dtype=Q.dtype, device=Q.device)
                Q = _make_orthogonal(ops.cat([Q, N], -1))
            self.base = Q
            return _neg_identity(Q_init)


def _neg_identity(like: Tensor) -> Tensor:
    """``-I`` with ``like``'s (possibly non-square, batched) shape."""
    n, k = like.shape[-2], like.shape[-1]
    return (-eye(n, k, dtype=like.dtype, device=like.device)).expand(tuple(like.shape)).clone()


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Constrain ``module.<name>`` (a matrix or a batch of matrices) to be orthogonal: its
    columns (rows, if it is wide) are orthonormal, ``W^T W = I``.

    ``orthogonal_map`` is ``"matrix_exp"`` (the default for square matrices), ``"cayley"``
    or ``"householder"`` (the default otherwise). With ``use_trivialization`` (default) the
    weight is ``base @ map(original)`` where the buffer ``base`` holds the initial weight
    made orthogonal and ``original`` starts at ``-I`` (PyTorch's dynamic trivialization);
    the ``state_dict`` keys are ``parametrizations.<name>.original`` and
    ``parametrizations.<name>.0.base``, as PyTorch's.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ArgumentError(f"orthogonal: Module '{module._get_name()}' has no parameter or "
                            f"buffer with name '{name}'")
    if weight.ndim < 2:
        raise ArgumentError(f"orthogonal: Expected a matrix or batch of matrices. Got a "
                            f"tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _ORTHOGONAL_MAPS:
        raise ArgumentError(f'orthogonal: orthogonal_map has to be one of "matrix_exp", '
                            f'"cayley", "householder". Got: {orthogonal_map}')
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
