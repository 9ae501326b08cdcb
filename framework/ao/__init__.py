"""``framework.ao`` (PyTorch's ``torch.ao``): quantization.

``framework.ao.quantization`` holds observers, fake quantization, qconfigs and the
eager-mode workflow (``prepare_qat``, ``prepare``, ``convert``);
``framework.ao.nn.quantized.reference`` the converted (reference) modules and
``framework.ao.nn.quantized.dynamic`` the dynamic quantized ones (``quantize_dynamic``).
Both load on first use; this package itself only defines the quantized-dtype markers (``qtypes``).
"""

from __future__ import annotations

import importlib

_LAZY = {"quantization", "nn"}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'framework.ao' has no attribute {name!r}")
