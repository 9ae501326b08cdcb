"""Padding layers: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad (1d,
2d, 3d), each ``F.pad`` with a fixed mode; ``padding`` is an int or a (left, right, top,
bottom, front, back) tuple, as in PyTorch."""

from __future__ import annotations

from ... import ops as F
from ...errors import ArgumentError
from .module import Module

__all__ = ["ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d",
           "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
           "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d",
           "CircularPad2d", "CircularPad3d"]


class _PadNd(Module):
    _nd = 0
    _mode = "constant"

    def __init__(self, padding, value=0.0):
        super().__init__()
        n = 2 * self._nd
        if isinstance(padding, int):
            padding = (padding,) * n
        padding = tuple(padding)
        if len(padding) != n or not all(isinstance(p, int) for p in padding):
            raise ArgumentError(f"{type(self).__name__}: padding must be an int or a tuple of "
                                f"{n} ints, got {padding!r}")
        self.padding = padding
        if self._mode == "constant":
            self.value = value

    def forward(self, input):
        """Pad the last ``nd`` dims of ``input``."""
        if input.ndim not in (self._nd + 1, self._nd + 2):
            raise ArgumentError(f"{type(self).__name__}: expected a {self._nd + 1}-D or "
                                f"{self._nd + 2}-D input, got shape {list(input.shape)}")
        if self._mode == "constant":
            return F.pad(input, self.padding, mode="constant", value=self.value)
        return F.pad(input, self.padding, mode=self._mode)

    def extra_repr(self) -> str:
        if self._mode == "constant" and not type(self).__name__.startswith("Zero"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


class _ZeroPadNd(_PadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding, value)


class _ReflectionPadNd(_PadNd):
    _mode = "reflect"

    def __init__(self, padding):
        super().__init__(padding)


class _ReplicationPadNd(_ReflectionPadNd):
    _mode = "replicate"


class _CircularPadNd(_ReflectionPadNd):
    _mode = "circular"


class ZeroPad1d(_ZeroPadNd):
    """Pad the last 1 dim with zeros."""

    _nd = 1


class ZeroPad2d(_ZeroPadNd):
    """Pad the last 2 dims with zeros."""

    _nd = 2


class ZeroPad3d(_ZeroPadNd):
    """Pad the last 3 dims with zeros."""

    _nd = 3


class ConstantPad1d(_ConstantPadNd):
    """Pad the last 1 dim with a constant value."""

    _nd = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last 2 dims with a constant value."""

    _nd = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last 3 dims with a constant value."""

    _nd = 3


class ReflectionPad1d(_ReflectionPadNd):
    """Pad the last 1 dim with the reflection of the input (edge excluded)."""

    _nd = 1


class ReflectionPad2d(_ReflectionPadNd):
    """Pad the last 2 dims with the reflection of the input (edge excluded)."""

    _nd = 2


class ReflectionPad3d(_ReflectionPadNd):
    """Pad the last 3 dims with the reflection of the input (edge excluded)."""

    _nd = 3


class ReplicationPad1d(_ReplicationPadNd):
    """Pad the last 1 dim with copies of the edge value."""

    _nd = 1


class ReplicationPad2d(_ReplicationPadNd):
    """Pad the last 2 dims with copies of the edge value."""

    _nd = 2


class ReplicationPad3d(_ReplicationPadNd):
    """Pad the last 3 dims with copies of the edge value."""

    _nd = 3


class CircularPad1d(_CircularPadNd):
    """Pad the last 1 dim with wrap-around (circular) values."""

    _nd = 1


class CircularPad2d(_CircularPadNd):
    """Pad the last 2 dims with wrap-around (circular) values."""

    _nd = 2


class CircularPad3d(_CircularPadNd):
    """Pad the last 3 dims with wrap-around (circular) values."""

    _nd = 3
