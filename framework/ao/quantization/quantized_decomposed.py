"""Integer quantize / dequantize on plain integer tensors (PyTorch's
``torch.ops.quantized_decomposed`` ops, the building blocks of its reference
representation): ``quantize_per_tensor``, ``dequantize_per_tensor``,
``quantize_per_channel``, ``dequantize_per_channel``. ``dtype`` is the integer tensor dtype
(``fw.int8``, ``fw.uint8``, ``fw.int16``, ``fw.int32``); ONNX export gives
QuantizeLinear / DequantizeLinear for int8 and uint8.

Dynamic quantization's integer steps: ``dynamic_quantize_linear(input, reduce_range)`` ->
``(uint8 values, scale, zero_point)`` with qparams from the input's own range, and
``matmul_integer(a, b, a_zero_point, b_zero_point)``, the exact int32 product (ONNX's
DynamicQuantizeLinear and MatMulInteger; see ``framework/ops/quant_dynamic_ops.py``)."""

from __future__ import annotations

from ...ops.quant_dynamic_ops import dynamic_quantize_linear, matmul_integer  # noqa: F401
from ...ops.quant_ops import (dequantize_per_channel, dequantize_per_tensor,  # noqa: F401
                              quantize_per_channel, quantize_per_tensor)

__all__ = ["quantize_per_tensor", "dequantize_per_tensor", "quantize_per_channel",
           "dequantize_per_channel", "dynamic_quantize_linear", "matmul_integer"]
