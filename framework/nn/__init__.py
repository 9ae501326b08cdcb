"""``framework.nn``: modules, parameters, ``functional``, ``init`` and ``utils``, with
PyTorch's names, constructor arguments, ``state_dict`` keys and default initialization."""

from __future__ import annotations

from . import functional, init, utils  # noqa: F401
from . import qat  # noqa: F401  (QAT layers for framework.ao.quantization.prepare_qat)
from .modules import *  # noqa: F401,F403
from .modules import Module  # noqa: F401
from .parameter import Buffer, Parameter  # noqa: F401
from .parameter import UninitializedBuffer, UninitializedParameter  # noqa: F401


def __getattr__(name):
    """``fw.nn.quantized`` and ``fw.nn.parallel`` (PyTorch's ``torch.nn.quantized`` /
    ``torch.nn.parallel``, with ``nn.DataParallel``), imported on first use."""
    if name in ("quantized", "parallel"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    if name == "DataParallel":
        from .parallel import DataParallel
        return DataParallel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
