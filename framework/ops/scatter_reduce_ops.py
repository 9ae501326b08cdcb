"""``scatter_reduce`` / ``index_reduce``: scatter with a reduction (sum, prod, mean, amax,
amin) into a tensor."""

from __future__ import annotations

__all__: list[str] = []
METHODS = ""  # names of __all__ that are also Tensor methods
INPLACE_METHODS = ""  # names of __all__ with an in-place Tensor method (name + "_")
