"""Fractional max-pooling layers: FractionalMaxPool2d/3d (PyTorch's constructor arguments,
checks and the ``_random_samples`` buffer)."""

from __future__ import annotations

from ...errors import ArgumentError
from .. import functional_fractional as FF
from .module import Module

__all__ = ["FractionalMaxPool2d", "FractionalMaxPool3d"]


def _tuple(v, nd):
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v,) * nd


class _FractionalMaxPoolNd(Module):
    _nd = 2
    _fn = None

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                 _random_samples=None):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _tuple(kernel_size, self._nd)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _tuple(output_size, self._nd)
        self.output_ratio = _tuple(output_ratio, self._nd)
        if output_size is None and output_ratio is None:
            raise ArgumentError(f"{name} requires specifying either an output size, or a pooling "
                             f"ratio")
        if output_size is not None and output_ratio is not None:
            raise ArgumentError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ArgumentError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input):
        """Max over ``kernel_size`` windows at pseudo-random steps (fresh draws per call
        unless ``_random_samples`` was given)."""
        return type(self)._fn(input, self.kernel_size, self.output_size, self.output_ratio,
                              self.return_indices, _random_samples=self._random_samples)


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """2-D fractional max pooling (Graham, 2015) over ``(N, C, H, W)``."""

    _nd = 2
    _fn = staticmethod(FF.fractional_max_pool2d)


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """3-D fractional max pooling over ``(N, C, T, H, W)``."""

    _nd = 3
    _fn = staticmethod(FF.fractional_max_pool3d)
