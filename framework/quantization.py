"""``framework.quantization``: PyTorch's legacy alias of ``torch.ao.quantization``; every
name resolves to :mod:`framework.ao.quantization`."""

from __future__ import annotations

from .ao import quantization as _ao_quantization
from .ao.quantization import *  # noqa: F401,F403
from .ao.quantization import __all__  # noqa: F401


def __getattr__(name):
    return getattr(_ao_quantization, name)
