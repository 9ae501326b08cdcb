"""QAT versions of the fused modules (PyTorch's ``torch.ao.nn.intrinsic.qat``): the
``nn.qat`` layer with the ReLU applied to its output."""

from __future__ import annotations

from ....nn import functional as F
from ....nn import qat as nnqat
from . import ConvReLU1d as _ConvReLU1d
from . import ConvReLU2d as _ConvReLU2d
from . import ConvReLU3d as _ConvReLU3d
from . import LinearReLU as _LinearReLU

__all__ = ["LinearReLU", "ConvReLU1d", "ConvReLU2d", "ConvReLU3d"]


class _ReLUMixin:
    """``relu(layer(x))``; ``from_float`` takes the fused float module (its layer's
    parameters and the fused module's qconfig)."""

    def forward(self, input):
        return F.relu(super().forward(input))


class LinearReLU(_ReLUMixin, nnqat.Linear):
    """QAT ``Linear`` + ``ReLU``."""

    _FLOAT_MODULE = _LinearReLU


class ConvReLU1d(_ReLUMixin, nnqat.Conv1d):
    """QAT ``Conv1d`` + ``ReLU``."""

    _FLOAT_MODULE = _ConvReLU1d


class ConvReLU2d(_ReLUMixin, nnqat.Conv2d):
    """QAT ``Conv2d`` + ``ReLU``."""

    _FLOAT_MODULE = _ConvReLU2d


class ConvReLU3d(_ReLUMixin, nnqat.Conv3d):
    """QAT ``Conv3d`` + ``ReLU``."""

    _FLOAT_MODULE = _ConvReLU3d
