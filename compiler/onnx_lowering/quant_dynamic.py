"""ONNX lowerings of the dynamic quantization ops (``framework/ops/quant_dynamic_ops.py``).

``matmul_integer`` is ONNX's ``MatMulInteger`` (zero points reshaped to the 0-d / 1-D forms
the op takes). ``dynamic_quantize_linear`` with ``reduce_range=False`` has exactly ONNX's
``DynamicQuantizeLinear`` arithmetic and becomes that one node, so a dynamically quantized
linear layer exports as the pattern onnxruntime's own quantizer emits
(``DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul -> Mul -> Add``), which
onnxruntime fuses into its integer kernels. ``reduce_range=True`` (PyTorch's x86 7-bit
arithmetic, which no ONNX op has) returns :data:`DECOMPOSE`: the exporter emits the op's
exact decomposition (``ReduceMin/ReduceMax``, the qparams in float64, ``Round``, ``Clip``,
``Cast`` to uint8), so onnxruntime reproduces eager's integers; the integer matmul is still
``MatMulInteger``.
"""

from __future__ import annotations

import numpy as np

from . import DECOMPOSE, lowering


@lowering("dynamic_quantize_linear")
def _dynamic_quantize_linear(ctx, node):
    if node.attrs["reduce_range"]:
        return DECOMPOSE
    return ctx.emit("DynamicQuantizeLinear", [ctx.name_of(node.inputs[0])], num_outputs=3)


@lowering("matmul_integer")
def _matmul_integer(ctx, node):
    a, b, a_zp, b_zp = node.inputs
    if b.shape[0] == 0:  # onnxruntime leaves the output uninitialized when K == 0
        zero = ctx.const(np.zeros((), np.int32), "zero")
        return [ctx.emit("Expand", [zero, ctx.shape_of(node.outputs[0].shape)])]
    azp, bzp = ctx.name_of(a_zp), ctx.name_of(b_zp)
    if a_zp.ndim:  # per tensor: 0-d
        azp = ctx.emit("Reshape", [azp, ctx.ints([])])
    if b_zp.ndim and b_zp.shape[0] == 1:
        bzp = ctx.emit("Reshape", [bzp, ctx.ints([])])
    return [ctx.emit("MatMulInteger", [ctx.name_of(a), ctx.name_of(b), azp, bzp])]
