"""The QAT layers: ``nn.Linear`` / ``nn.ConvNd`` whose forward fake-quantizes the weight
with ``weight_fake_quant`` (built from ``qconfig.weight``); parameters and ``state_dict``
keys are the float layer's plus the fake quantize module's."""

from __future__ import annotations

from .. import functional as F
from ...errors import ArgumentError
from ..modules import conv as _conv
from ..modules.linear import Linear as _FloatLinear

__all__ = ["Linear", "Conv1d", "Conv2d", "Conv3d"]


def _weight_fake_quant(qconfig, weight, cls):
    if not qconfig:
        raise ArgumentError(f"{cls.__name__}: qconfig must be provided for a QAT module")
    return qconfig.weight().to(weight.device)


def _layer_of(cls, mod):
    """The float layer of ``mod`` (itself, or the first module of a fused one), checked."""
    if type(mod) is not cls._FLOAT_MODULE:
        raise ArgumentError(f"qat.{cls.__name__}.from_float only works for "
                            f"{cls._FLOAT_MODULE.__name__}, got {type(mod).__name__}")
    if not getattr(mod, "qconfig", None):
        raise ArgumentError(f"qat.{cls.__name__}.from_float: the input float module must "
                            "have qconfig defined")
    return mod[0] if hasattr(mod, "_LAYER") else mod  # ao.nn.intrinsic's fused modules


class Linear(_FloatLinear):
    """``nn.Linear`` with a fake-quantized weight."""

    _FLOAT_MODULE = _FloatLinear

    def __init__(self, in_features, out_features, bias=True, qconfig=None, device=None,
                 dtype=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.qconfig = qconfig
        self.weight_fake_quant = _weight_fake_quant(qconfig, self.weight, type(self))

    def forward(self, input):
        return F.linear(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """A QAT layer sharing ``mod``'s parameters, configured by ``mod.qconfig``."""
        layer = _layer_of(cls, mod)
        qat = cls(layer.in_features, layer.out_features, bias=layer.bias is not None,
                  qconfig=mod.qconfig, device=layer.weight.device, dtype=layer.weight.dtype)
        qat.weight = layer.weight
        qat.bias = layer.bias
        return qat

    def to_float(self):
        """The float ``nn.Linear`` with the current parameters."""
        lin = _FloatLinear(self.in_features, self.out_features, self.bias is not None,
                           device=self.weight.device, dtype=self.weight.dtype)
        lin.weight = self.weight
        lin.bias = self.bias
        lin.train(self.training)
        return lin


class _ConvNd:
    """Shared QAT convolution code (mixed in front of ``nn.ConvNd``)."""

    _FLOAT_MODULE = None  # what from_float takes
    _FLOAT_CONV = None    # the float convolution this class extends

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", qconfig=None,
                 device=None, dtype=None):
        self._FLOAT_CONV.__init__(self, in_channels, out_channels, kernel_size, stride,
                                  padding, dilation, groups, bias, padding_mode,
                                  device=device, dtype=dtype)
        self.qconfig = qconfig
        self.weight_fake_quant = _weight_fake_quant(qconfig, self.weight, type(self))

    def forward(self, input):
        return self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """A QAT convolution sharing ``mod``'s parameters, configured by ``mod.qconfig``."""
        c = _layer_of(cls, mod)
        qat = cls(c.in_channels, c.out_channels, c.kernel_size, stride=c.stride,
                  padding=c.padding, dilation=c.dilation, groups=c.groups,
                  bias=c.bias is not None, padding_mode=c.padding_mode, qconfig=mod.qconfig,
                  device=c.weight.device, dtype=c.weight.dtype)
        qat.weight = c.weight
        qat.bias = c.bias
        return qat

    def to_float(self):
        """The float convolution with the current parameters."""
        conv = self._FLOAT_CONV(self.in_channels, self.out_channels, self.kernel_size,
                                self.stride, self.padding, self.dilation, self.groups,
                                self.bias is not None, self.padding_mode,
                                device=self.weight.device, dtype=self.weight.dtype)
        conv.weight = self.weight
        conv.bias = self.bias
        conv.train(self.training)
        return conv


class Conv1d(_ConvNd, _conv.Conv1d):
    """``nn.Conv1d`` with a fake-quantized weight."""

    _FLOAT_MODULE = _FLOAT_CONV = _conv.Conv1d


class Conv2d(_ConvNd, _conv.Conv2d):
    """``nn.Conv2d`` with a fake-quantized weight."""

    _FLOAT_MODULE = _FLOAT_CONV = _conv.Conv2d


class Conv3d(_ConvNd, _conv.Conv3d):
    """``nn.Conv3d`` with a fake-quantized weight."""

    _FLOAT_MODULE = _FLOAT_CONV = _conv.Conv3d
