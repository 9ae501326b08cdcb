"""ONNX lowering of ``spmm_coo`` (the sparse x dense product behind ``fw.sparse.mm``).

ONNX has no sparse matrix product (its SparseTensor proto only stores initializers), so
the op is exported as its decomposition: Gather of the dense rows, Mul by the values and a
ScatterND with add reduction into a zero matrix. A sparse constant (a graph's normalized
adjacency captured from a closure) becomes three initializers: values, rows and cols.
"""

from __future__ import annotations

from . import DECOMPOSE, lowering


@lowering("spmm_coo")
def _spmm_coo(ctx, node):
    """No native op: export the decomposition (index_select, mul, index_add)."""
    return DECOMPOSE
