"""Module swap tables of the eager-mode workflow (PyTorch's
``torch.ao.quantization.quantization_mappings``): float -> QAT for ``prepare_qat``, float /
QAT -> reference for ``convert``, float -> dynamic quantized for ``quantize_dynamic``, and
the module types that get output observers."""

from __future__ import annotations

from ... import nn
from ...nn import qat as nnqat
from ..nn import intrinsic as nni
from ..nn.intrinsic import qat as nniqat
from ..nn.quantized import dynamic as nnqd
from ..nn.quantized import reference as nnqr
from .stubs import DeQuantStub, QuantStub

__all__ = ["get_default_qat_module_mappings", "get_default_static_quant_reference_module_mappings",
           "get_default_qconfig_propagation_list", "get_default_dynamic_quant_module_mappings"]

_QAT = {nn.Linear: nnqat.Linear, nn.Conv1d: nnqat.Conv1d, nn.Conv2d: nnqat.Conv2d,
        nn.Conv3d: nnqat.Conv3d, nni.LinearReLU: nniqat.LinearReLU,
        nni.ConvReLU1d: nniqat.ConvReLU1d, nni.ConvReLU2d: nniqat.ConvReLU2d,
        nni.ConvReLU3d: nniqat.ConvReLU3d}
_REFERENCE = {QuantStub: nnqr.QuantizeDequantize, DeQuantStub: nnqr.DeQuantize}
for _float, _ref in ((nn.Linear, nnqr.Linear), (nn.Conv1d, nnqr.Conv1d),
                     (nn.Conv2d, nnqr.Conv2d), (nn.Conv3d, nnqr.Conv3d),
                     (nni.LinearReLU, nnqr.LinearReLU), (nni.ConvReLU1d, nnqr.ConvReLU1d),
                     (nni.ConvReLU2d, nnqr.ConvReLU2d), (nni.ConvReLU3d, nnqr.ConvReLU3d)):
    _REFERENCE[_float] = _REFERENCE[_QAT[_float]] = _ref
# PyTorch also maps NonDynamicallyQuantizableLinear (MultiheadAttention's out_proj); it is
# left out here because MultiheadAttention reads out_proj.weight directly
_DYNAMIC = {nn.Linear: nnqd.Linear, nni.LinearReLU: nnqd.LinearReLU, nn.LSTM: nnqd.LSTM,
            nn.GRU: nnqd.GRU, nn.LSTMCell: nnqd.LSTMCell, nn.GRUCell: nnqd.GRUCell,
            nn.RNNCell: nnqd.RNNCell}
# layers PyTorch observes the output of (it has quantized kernels for them); their outputs
# become quantize-dequantize pairs in the converted model
_OBSERVED = {nn.BatchNorm2d, nn.BatchNorm3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.ELU, nn.Embedding, nn.GroupNorm, nn.Hardswish,
             nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm,
             nn.LeakyReLU, nn.ReLU6, nn.PReLU, nn.Dropout, nn.Sequential}


def get_default_qat_module_mappings() -> dict:
    """Float layer -> QAT layer (``prepare_qat``)."""
    return dict(_QAT)


def get_default_static_quant_reference_module_mappings() -> dict:
    """Float or QAT layer / stub -> reference module (``convert``)."""
    return dict(_REFERENCE)


def get_default_qconfig_propagation_list() -> set:
    """Module types whose outputs ``prepare`` observes (when they have a qconfig)."""
    return set(_QAT) | set(_QAT.values()) | set(_REFERENCE) | _OBSERVED


def get_default_dynamic_quant_module_mappings() -> dict:
    """Float layer -> dynamic quantized layer (``quantize_dynamic``)."""
    return dict(_DYNAMIC)
