"""Sorting: ``argsort`` as ONNX ``TopK`` over the whole sorted dim (``sort``'s values and
``topk``'s first ``k`` are the ``GatherElements`` and ``Slice`` that follow it in the
graph, lowered by their own rules)."""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from . import lowering
from .context import static_int
from .elementwise import compute_dtype


@lowering("argsort")
def _argsort(ctx, node):
    """``TopK(x, K=size of dim, axis=dim, largest=descending, sorted=1)``, indices output.

    Narrow dtypes (bool, uint8, int8, int16, float16, bfloat16) are widened first (ORT's
    TopK kernels cover float32/float64/int32/int64; widening keeps the order, NaN included).
    K is a constant when the dim is static, else ``Shape(x)[dim]`` at run time.

    Ties: ONNX TopK returns the lower index first among equal values in both directions,
    which is the stable order the eager kernels produce (PyTorch's stable sort). NaN:
    PyTorch and the eager kernels count NaN as larger than +inf; onnxruntime's CPU TopK
    (checked with 1.32, tests/test_sort_ops.py) agrees in both directions (NaN last
    ascending, first descending, -0.0 equal to +0.0). The ONNX spec itself does not say
    where NaN goes, so another runtime may place it differently."""
    (v,) = node.inputs
    dim, descending = node.attrs["dim"], node.attrs["descending"]
    x = ctx.name_of(v)
    if not v.shape:  # a 0-d input: index 0
        return [ctx.emit("ConstantOfShape", [ctx.emit("Shape", [x])],
                         value=numpy_helper.from_array(np.zeros(1, np.int64), "value"))]
    cd = compute_dtype(v.dtype)
    if cd is not v.dtype:
        x = ctx.cast(x, cd)
    n = static_int(v.shape[dim])
    k = ctx.ints([n]) if n is not None else ctx.emit("Shape", [x], start=dim, end=dim + 1)
    _, idx = ctx.emit("TopK", [x, k], num_outputs=2, axis=dim, largest=int(bool(descending)),
                      sorted=1)
    return [idx]
