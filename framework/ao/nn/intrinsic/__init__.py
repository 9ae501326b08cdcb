"""Fused modules (PyTorch's ``torch.ao.nn.intrinsic``): a layer and the ReLU after it kept
together, so quantization observes (and an int8 runtime computes) the output after the
ReLU. ``framework.ao.quantization.fuse_modules`` builds them; ``prepare`` treats each as
one unit and ``prepare_qat`` / ``convert`` swap it whole (``intrinsic.qat``, and the
reference ``LinearReLU`` / ``ConvReLUNd``)."""

from __future__ import annotations

from .... import nn
from ....errors import ArgumentError
from ....nn.modules.container import Sequential

__all__ = ["LinearReLU", "ConvReLU1d", "ConvReLU2d", "ConvReLU3d"]


class _FusedModule(Sequential):
    """Base of the fused modules: a ``Sequential`` of a layer and a ``ReLU``."""

    _LAYER = None

    def __init__(self, layer, relu):
        if type(layer) is not self._LAYER or type(relu) is not nn.ReLU:
            raise ArgumentError(f"{type(self).__name__}: expected {self._LAYER.__name__} and "
                                f"ReLU, got {type(layer).__name__} and "
                                f"{type(relu).__name__}")
        super().__init__(layer, relu)


class LinearReLU(_FusedModule):
    """``Linear`` followed by ``ReLU``."""

    _LAYER = nn.Linear


class ConvReLU1d(_FusedModule):
    """``Conv1d`` followed by ``ReLU``."""

    _LAYER = nn.Conv1d


class ConvReLU2d(_FusedModule):
    """``Conv2d`` followed by ``ReLU``."""

    _LAYER = nn.Conv2d


class ConvReLU3d(_FusedModule):
    """``Conv3d`` followed by ``ReLU``."""

    _LAYER = nn.Conv3d
