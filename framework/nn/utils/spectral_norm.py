"""The legacy, hook-based ``nn.utils.spectral_norm`` / ``remove_spectral_norm``.

``module.weight`` becomes the parameter ``weight_orig`` plus the buffers ``weight_u`` and
``weight_v`` (the power-iteration estimates of the top singular vectors); a forward
pre-hook sets ``weight = weight_orig / sigma`` as a plain attribute before every call,
running the power iteration first in training mode. State-dict keys are PyTorch's.
"""

from __future__ import annotations

from ... import ops
from ...autograd import no_grad
from ...errors import ArgumentError
from ...ops.creation_ops import normal_ as _randn
from ..functional import normalize
from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..modules.module import Module
from ..parameter import Parameter, UninitializedParameter
from ._norm_hooks import has_norm_hook, remove_norm_hook
from .parametrize import ParametrizationError

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]


class SpectralNorm:
    """The forward pre-hook that sets ``module.<name> = <name>_orig / sigma``."""

    _version = 1

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ArgumentError("spectral_norm: Expected n_power_iterations to be positive, but "
                                f"got n_power_iterations={n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight):
        """``weight`` with ``dim`` moved first, flattened to ``(shape[dim], -1)``."""
        mat = weight
        if self.dim != 0:
            mat = mat.permute(self.dim, *(d for d in range(mat.ndim) if d != self.dim))
        return mat.reshape(mat.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool):
        """``weight_orig / (u . W v)``; with ``do_power_iteration`` the buffers ``u`` and
        ``v`` are first updated in place."""
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                w = weight_mat.detach()
                for _ in range(self.n_power_iterations):
                    v.copy_(normalize(ops.mv(w.t(), u), dim=0, eps=self.eps))
                    u.copy_(normalize(ops.mv(w, v), dim=0, eps=self.eps))
            # the buffers change in place on the next call; backward needs these values
            u = u.clone()
            v = v.clone()
        sigma = ops.dot(u, ops.mv(weight_mat, v))
        return weight / sigma

    def remove(self, module: Module) -> None:
        """Put the current normalized weight back as one parameter."""
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int,
              eps: float) -> SpectralNorm:
        """Move ``module.<name>`` to ``<name>_orig``, add the ``u``/``v`` buffers and the
        hook."""
        if has_norm_hook(module, SpectralNorm, name):
            raise ParametrizationError(f"spectral_norm: Cannot register two spectral_norm "
                                       f"hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters.get(name)
        if weight is None:
            raise ArgumentError(f"spectral_norm: `SpectralNorm` cannot be applied as parameter "
                                f"`{name}` is None")
        if isinstance(weight, UninitializedParameter):
            raise ArgumentError("spectral_norm: The module passed to `SpectralNorm` can't have "
                                "uninitialized parameters. Make sure to run the dummy forward "
                                "before applying spectral normalization")
        with no_grad():
            h, w = fn.reshape_weight_to_matrix(weight).shape
            u = normalize(_randn((h,), dtype=weight.dtype, device=weight.device), dim=0,
                          eps=fn.eps)
            v = normalize(_randn((w,), dtype=weight.dtype, device=weight.device), dim=0,
                          eps=fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        # ``module.<name>`` must keep existing (initializers read it), but as a plain
        # attribute, not a parameter
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Replace ``module.<name>`` by ``<name>_orig`` and recompute ``<name> = <name>_orig /
    sigma`` before every forward, ``sigma`` being the spectral norm estimated with
    ``n_power_iterations`` power-iteration steps (training mode only) on the buffers
    ``<name>_u`` and ``<name>_v``. ``dim`` defaults to 1 for transposed convolutions."""
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) \
            else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`spectral_norm`: ``module.<name>`` becomes one parameter again."""
    return remove_norm_hook(module, SpectralNorm, name, "spectral_norm")
