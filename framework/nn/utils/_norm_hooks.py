"""What the legacy hook-based reparametrizations (``weight_norm``, ``spectral_norm``)
share: finding their forward pre-hook on a module and removing it."""

from __future__ import annotations

from ...errors import ArgumentError
from ..modules.module import Module


def has_norm_hook(module: Module, hook_cls: type, name: str) -> bool:
    """Whether ``module`` has a forward pre-hook of type ``hook_cls`` for parameter
    ``name``."""
    return any(isinstance(hook, hook_cls) and hook.name == name
               for hook in module._forward_pre_hooks.values())


def remove_norm_hook(module: Module, hook_cls: type, name: str, what: str) -> Module:
    """Undo the reparametrization ``what`` (e.g. ``"weight_norm"``) of ``module.<name>``:
    its ``hook_cls`` hook puts the parameter back and is unregistered. An ArgumentError
    (``remove_<what>: ...``) if there is none."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, hook_cls) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ArgumentError(f"remove_{what}: {what} of '{name}' not found in "
                        f"{module._get_name()}")
