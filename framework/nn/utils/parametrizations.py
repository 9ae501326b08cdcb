"""``nn.utils.parametrizations``: weight normalization and spectral normalization written
as parametrizations (:mod:`framework.nn.utils.parametrize`), with PyTorch's names,
``state_dict`` keys and numerics.

``orthogonal`` is not provided: its default maps need ``matrix_exp`` and
``householder_product``, which the framework does not have.
"""

from __future__ import annotations

from ... import ops
from ...autograd import no_grad
from ...errors import ArgumentError, FwIndexError
from ...ops.creation_ops import normal_ as _randn
from ...tensor import Tensor
from ..functional import normalize
from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..modules.module import Module
from . import parametrize

__all__ = ["weight_norm", "spectral_norm"]


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
