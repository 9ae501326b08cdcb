"""More pointwise and shape ops written with the registered ones (composites): they run on
every backend, are captured by ``fw.compile`` and export to ONNX through their parts."""

from __future__ import annotations

__all__: list[str] = []
METHODS = ""  # names of __all__ that are also Tensor methods
INPLACE_METHODS = ""  # names of __all__ with an in-place Tensor method (name + "_")
