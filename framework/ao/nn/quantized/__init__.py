"""``framework.ao.nn.quantized``: only the reference modules (``reference``); this framework
has no quantized tensors, so PyTorch's int8-kernel modules have no counterpart."""

from __future__ import annotations

from . import reference  # noqa: F401
