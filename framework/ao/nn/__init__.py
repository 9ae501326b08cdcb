"""``framework.ao.nn`` (``torch.ao.nn``): ``qat`` (the QAT layers, also ``framework.nn.qat``),
``intrinsic`` (fused layer + ReLU modules, and ``intrinsic.qat``) and
``quantized.reference`` (the modules ``convert`` produces)."""

from __future__ import annotations

from ...nn import qat  # noqa: F401
from . import intrinsic, quantized  # noqa: F401
from .intrinsic import qat as _intrinsic_qat  # noqa: F401  (intrinsic.qat)
