"""``QuantStub`` / ``DeQuantStub`` / ``QuantWrapper``: mark where a model's quantized
region starts and ends (PyTorch's ``torch.ao.quantization.stubs``). Before ``convert`` they
pass tensors through (a prepared ``QuantStub`` observes its input); ``convert`` turns a
``QuantStub`` into a quantize-dequantize of the input with the calibrated qparams and a
``DeQuantStub`` into an identity."""

from __future__ import annotations

from ...nn.modules.module import Module

__all__ = ["QuantStub", "DeQuantStub", "QuantWrapper"]


class _Stub(Module):
    """An identity marking a boundary for ``prepare``/``convert``; ``qconfig`` overrides
    the propagated one."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class QuantStub(_Stub):
    """Marks a float-to-quantized boundary; ``qconfig`` overrides the propagated one."""


class DeQuantStub(_Stub):
    """Marks a quantized-to-float boundary."""


class QuantWrapper(Module):
    """``module`` between a ``QuantStub`` and a ``DeQuantStub`` (taking its qconfig)."""

    def __init__(self, module):
        super().__init__()
        qconfig = getattr(module, "qconfig", None)
        self.add_module("quant", QuantStub(qconfig))
        self.add_module("dequant", DeQuantStub(qconfig))
        self.add_module("module", module)
        self.train(module.training)

    def forward(self, x):
        return self.dequant(self.module(self.quant(x)))
