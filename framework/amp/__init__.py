"""``fw.amp``: automatic mixed precision (``torch.amp``): :class:`autocast` regions that run
matmuls and convolutions in float16/bfloat16 and precision-sensitive ops in float32, and
:class:`GradScaler`, dynamic loss scaling for float16 training.

``fw.autocast`` is ``fw.amp.autocast``; ``fw.cuda.amp`` holds PyTorch's device-specific
spellings (``fw.cuda.amp.autocast(dtype=fw.float16)``, ``fw.cuda.amp.GradScaler()``).
"""

from __future__ import annotations

import functools
import types

from .autocast import (AutocastError, autocast, autocast_args, autocast_op,  # noqa: F401
                       clear_autocast_cache, custom_bwd, custom_fwd, get_autocast_dtype,
                       is_autocast_available, is_autocast_cache_enabled, is_autocast_enabled)
from .grad_scaler import GradScaler, GradScalerError, OptState  # noqa: F401

__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd", "is_autocast_available",
           "is_autocast_enabled", "get_autocast_dtype", "is_autocast_cache_enabled",
           "clear_autocast_cache", "AutocastError", "GradScalerError"]


@functools.cache
def device_namespace(device_type: str) -> types.ModuleType:
    """``fw.cuda.amp`` (``device_type="cuda"``): autocast, GradScaler, custom_fwd and
    custom_bwd with the device type filled in, as ``torch.cuda.amp``."""
    default = {"cuda": "float16", "cpu": "bfloat16"}[device_type]

    class DeviceAutocast(autocast):
        __doc__ = (f"``fw.{device_type}.amp.autocast(enabled=True, dtype={default}, "
                   f"cache_enabled=True)``: ``fw.autocast({device_type!r}, ...)``.")

        def __init__(self, enabled: bool = True, dtype=default, cache_enabled: bool = True):
            super().__init__(device_type, dtype=dtype, enabled=enabled,
                             cache_enabled=cache_enabled)

    class DeviceGradScaler(GradScaler):
        __doc__ = (f"``fw.{device_type}.amp.GradScaler(...)``: "
                   f"``fw.amp.GradScaler({device_type!r}, ...)``.")

        def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                     backoff_factor: float = 0.5, growth_interval: int = 2000,
                     enabled: bool = True):
            super().__init__(device_type, init_scale, growth_factor, backoff_factor,
                             growth_interval, enabled)

    for cls, name in ((DeviceAutocast, "autocast"), (DeviceGradScaler, "GradScaler")):
        cls.__name__ = cls.__qualname__ = name
        cls.__module__ = f"framework.{device_type}.amp"
    mod = types.ModuleType(f"framework.{device_type}.amp", __doc__)
    mod.autocast = DeviceAutocast
    mod.GradScaler = DeviceGradScaler
    mod.custom_fwd = functools.partial(custom_fwd, device_type=device_type)
    mod.custom_bwd = functools.partial(custom_bwd, device_type=device_type)
    return mod
