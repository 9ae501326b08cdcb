"""Backend lookup: one module per device type (``cpu.py``, ``cuda.py``), loaded lazily so
the CPU path never imports Triton or CUDA.

Also PyTorch's ``torch.backends`` switches (``flags.py``): ``fw.backends.cuda.matmul``,
``fw.backends.cudnn`` and ``fw.backends.mps``."""

from __future__ import annotations

import importlib
import sys

from ..errors import DeviceError
from . import flags as _flags

_LOADED: dict = {}

# ``import torch.backends.cudnn as cudnn`` (the usual spelling) needs module entries
for _name in ("cudnn", "mps"):
    sys.modules.setdefault(f"{__name__}.{_name}", getattr(_flags, _name))


def get_backend(device):
    """The backend module serving ``device`` (a device or a type string)."""
    kind = device if isinstance(device, str) else device.type
    mod = _LOADED.get(kind)
    if mod is None:
        if kind not in ("cpu", "cuda"):
            raise DeviceError(f"no backend for device type {kind!r}")
        mod = importlib.import_module(f"{__name__}.{kind}")
        if hasattr(mod, "install"):
            mod.install()
        _LOADED[kind] = mod
    return mod


def __getattr__(name):
    """``fw.backends.cuda`` (the CUDA backend module, whose ``matmul`` holds the TF32
    switch), ``fw.backends.cudnn`` and ``fw.backends.mps``, imported on first use."""
    if name == "cuda":
        return importlib.import_module(f"{__name__}.cuda")
    if name in ("cudnn", "mps"):
        from . import flags
        return getattr(flags, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
