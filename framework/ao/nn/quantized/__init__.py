"""``framework.ao.nn.quantized``: the reference modules (``reference``, what ``convert``
produces) and the dynamic quantized modules (``dynamic``, what ``quantize_dynamic``
produces). There are no quantized tensors, so PyTorch's static int8-kernel modules have no
counterpart."""

from __future__ import annotations

# the workflow package first: its swap tables import these modules (importing them first
# would be a circular import)
from ... import quantization as _quantization  # noqa: F401
from . import dynamic, reference  # noqa: F401,E402
