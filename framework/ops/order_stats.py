"""Order statistics and counting on top of the ``argsort`` op: median, kthvalue, mode,
quantile, searchsorted, unique and friends."""

from __future__ import annotations

__all__: list[str] = []
METHODS = ""  # names of __all__ that are also Tensor methods
INPLACE_METHODS = ""  # names of __all__ with an in-place Tensor method (name + "_")
