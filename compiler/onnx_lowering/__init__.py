"""ONNX lowering rules, one per op, keyed by the op's registry name.

``LOWERINGS[name](ctx, node)`` emits ONNX nodes through a
:class:`~compiler.onnx_lowering.context.LoweringContext` and returns the ONNX names of the
node's outputs (a list, one per output). A composite may instead answer "not natively in
this opset" by returning :data:`DECOMPOSE`; the exporter then lowers the op's
decomposition into primitives in its place (the fallback is never an error).
"""

from __future__ import annotations

from typing import Callable

LOWERINGS: dict[str, Callable] = {}

#: Returned by a rule that has no native ONNX form for this node at this opset.
DECOMPOSE = object()


def lowering(*names: str):
    """Register the decorated function as the ONNX lowering of ops ``names``."""
    def deco(fn):
        for n in names:
            if n in LOWERINGS:
                raise ValueError(f"onnx lowering for {n!r} registered twice")
            LOWERINGS[n] = fn
        return fn
    return deco


def _load() -> None:
    from . import elementwise, indexing, movement, nn, reduce, rnn, sort  # noqa: F401
    from . import scatter_reduce  # noqa: F401
    from . import linalg  # noqa: F401
    from . import special  # noqa: F401
    from . import complex  # noqa: F401  (refusals: no complex tensors in ONNX)
    from . import control_flow  # noqa: F401  (cond -> If, while_loop -> Loop)
    from . import quant  # noqa: F401  (QuantizeLinear / DequantizeLinear)
    from . import quant_dynamic  # noqa: F401  (DynamicQuantizeLinear / MatMulInteger)
    from . import sparse  # noqa: F401  (spmm_coo: its decomposition)


_load()
