"""``nn.utils.skip_init``: build a module without running its parameter initialization."""

from __future__ import annotations

import inspect

from ...errors import ArgumentError, FwTypeError
from ..modules.module import Module

__all__ = ["skip_init"]


def skip_init(module_cls, *args, **kwargs) -> Module:
    """Instantiate ``module_cls(*args, **kwargs)`` with uninitialized parameters and buffers.

    As in PyTorch, the module is built on the ``meta`` device (so its initializers compute
    nothing) and then given fresh, uninitialized storage on ``device`` (default ``"cpu"``).
    ``module_cls`` must accept a ``device`` argument.
    """
    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise FwTypeError(f"skip_init: Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise ArgumentError(f"skip_init: Module must support a 'device' arg to skip "
                            f"initialization ({module_cls.__name__} does not)")
    final_device = kwargs.pop("device", "cpu")
    kwargs["device"] = "meta"
    module = module_cls(*args, **kwargs)
    return module.to_empty(device=final_device)
