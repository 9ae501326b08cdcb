"""Argument normalisation shared by the convolution, pooling and resampling functions."""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, ShapeError
from ..tensor import Tensor


def ntuple(v, nd, name, op):
    """``v`` as a tuple of ``nd`` ints (an int is repeated)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),) * nd
    try:
        t = tuple(int(i) for i in v)
    except TypeError:
        raise ArgumentError(f"{op}: {name} must be an int or a tuple of {nd} ints, "
                            f"got {v!r}") from None
    if len(t) == 1 and nd > 1:
        t = t * nd
    if len(t) != nd:
        raise ArgumentError(f"{op}: {name} must be an int or a tuple of {nd} ints, got {v!r}")
    return t


def batched(input, nd, op):
    """``(input with a batch dim, was_unbatched)``; checks the number of dims."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim == nd + 1:
        return input.unsqueeze(0), True
    if input.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) "
                         f"input, got shape {list(input.shape)}")
    return input, False


def conv_padding(padding, kernel, stride, dilation, op):
    """Per-dim ``(lo, hi)`` pairs for an int / tuple / ``'same'`` / ``'valid'`` padding."""
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise ArgumentError(f"{op}: invalid padding string {padding!r}, should be one of "
                                f"'valid' or 'same'")
        if any(s != 1 for s in stride):
            raise ArgumentError(f"{op}: padding='same' is not supported for strided "
                                f"convolutions (stride={stride})")
        pairs = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pairs.append((total // 2, total - total // 2))  # PyTorch pads the extra at the end
        return tuple(pairs)
    pad = ntuple(padding, nd, "padding", op)
    if any(p < 0 for p in pad):
        raise ArgumentError(f"{op}: negative padding is not supported, got {padding!r}")
    return tuple((p, p) for p in pad)
