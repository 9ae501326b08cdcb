"""``framework.nn.quantized``: PyTorch's legacy alias of ``torch.ao.nn.quantized``, here of
:mod:`framework.ao.nn.quantized` (``dynamic``: the dynamic quantized modules,
``reference``: the converted reference modules). Loaded on first use of
``fw.nn.quantized``."""

from __future__ import annotations

import sys

from ...ao.nn.quantized import dynamic, reference  # noqa: F401

# ``import framework.nn.quantized.dynamic`` finds the same module objects
sys.modules[__name__ + ".dynamic"] = dynamic
sys.modules[__name__ + ".reference"] = reference
