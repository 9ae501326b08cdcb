"""``CrossMapLRN2d``: the Lua-Torch era local response normalization across channels."""

from __future__ import annotations

from ... import ops
from ...errors import ShapeError
from .module import Module

__all__ = ["CrossMapLRN2d"]


def cross_map_lrn2d(input, size: int, alpha: float = 1e-4, beta: float = 0.75,
                    k: float = 1.0):
    """``x * (k + alpha / size * window_sum(x^2))^-beta`` over a ``(N, C, H, W)`` input,
    the window spanning channels ``c - (size-1)//2 .. c + (size-1)//2``.

    PyTorch's forward also keeps channel 0 in the window of every channel
    ``c >= (size-1)//2 + 1`` (its sliding update starts subtracting one step late); that
    is reproduced here so outputs match. The gradient is the exact gradient of this
    forward."""
    if input.ndim != 4:
        raise ShapeError(f"CrossMapLRN2d: Expected input to be 4D, got {input.ndim}D instead.")
    c = input.shape[1]
    half = (size - 1) // 2
    sq = input * input
    padded = ops.pad(sq, (0, 0, 0, 0, half, half))
    window = sum(ops.narrow(padded, 1, i, c) for i in range(2 * half + 1))
    late = (ops.arange(c, device=input.device) >= half + 1).to(input.dtype).reshape(1, c, 1, 1)
    window = window + ops.narrow(sq, 1, 0, 1) * late
    return input * (window * (alpha / size) + k) ** (-beta)


class CrossMapLRN2d(Module):
    """Local response normalization across ``size`` neighbouring channels of 4-D inputs
    (PyTorch's legacy layer; see :class:`LocalResponseNorm` for the modern one)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        return cross_map_lrn2d(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
