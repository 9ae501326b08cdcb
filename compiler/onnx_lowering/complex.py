"""Complex ops have no ONNX lowering: most runtimes have no complex tensors. The exporter
refuses a graph with complex values up front (compiler/onnx.py); these rows keep the
lowering table complete and say so if reached."""

from __future__ import annotations

from . import lowering

COMPLEX_OPS = ("real", "imag", "view_as_real", "view_as_complex", "conj", "complex_angle",
               "complex", "fft_c2c", "fft_r2c", "fft_c2r", "linalg_eig")


@lowering(*COMPLEX_OPS)
def _refuse(ctx, node, *args, **attrs):
    raise NotImplementedError(f"onnx export: {node.op.name} works on complex values; complex "
                              "dtypes are not supported in ONNX export")
