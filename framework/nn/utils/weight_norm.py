"""The legacy, hook-based ``nn.utils.weight_norm`` / ``remove_weight_norm``.

``module.weight`` is replaced by the parameters ``weight_g`` (magnitude) and ``weight_v``
(direction); a forward pre-hook recomputes ``weight = g * v / ||v||`` as a plain attribute
before every call. PyTorch deprecates it in favour of
:func:`framework.nn.utils.parametrizations.weight_norm`, and so does this one.
"""

from __future__ import annotations

import warnings

from ...errors import ArgumentError
from ..modules.module import Module
from ..parameter import Parameter, UninitializedParameter
from ._norm_hooks import has_norm_hook, remove_norm_hook
from .parametrizations import _WeightNorm, norm_except_dim
from .parametrize import ParametrizationError

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


class WeightNorm:
    """The forward pre-hook that rebuilds ``module.<name>`` from ``<name>_g`` and
    ``<name>_v``."""

    def __init__(self, name: str, dim: int | None):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module):
        """``g * v / ||v||`` (the norm over every dim but ``dim``)."""
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return _WeightNorm(self.dim).forward(g, v)

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        """Split ``module.<name>`` into ``<name>_g`` / ``<name>_v`` and install the hook."""
        if has_norm_hook(module, WeightNorm, name):
            raise ParametrizationError(f"weight_norm: Cannot register two weight_norm hooks "
                                       f"on the same parameter {name}")
        fn = WeightNorm(name, dim)
        weight = module._parameters.get(name)
        if weight is None:
            raise ArgumentError(f"weight_norm: module '{module._get_name()}' has no parameter "
                                f"named '{name}'")
        if isinstance(weight, UninitializedParameter):
            raise ArgumentError("weight_norm: The module passed to `WeightNorm` can't have "
                                "uninitialized parameters. Make sure to run the dummy forward "
                                "before applying weight normalization")
        del module._parameters[name]
        module.register_parameter(name + "_g",
                                  Parameter(norm_except_dim(weight, 2, fn.dim).detach()))
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        """Put the current weight back as one parameter ``module.<name>``."""
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Replace ``module.<name>`` by the parameters ``<name>_g`` (its norm over every dim but
    ``dim``; ``None`` for the whole tensor) and ``<name>_v`` (its direction), and recompute
    ``<name> = g * v / ||v||`` before every forward. Deprecated, as in PyTorch: prefer
    ``nn.utils.parametrizations.weight_norm``."""
    warnings.warn("`nn.utils.weight_norm` is deprecated in favor of "
                  "`nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`weight_norm`: ``module.<name>`` becomes one parameter again."""
    return remove_norm_hook(module, WeightNorm, name, "weight_norm")
