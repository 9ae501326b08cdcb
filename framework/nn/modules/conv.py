"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d (PyTorch's arguments,
attribute names, ``state_dict`` keys ``weight``/``bias`` and default initialisation)."""

from __future__ import annotations

import math

from ... import dtypes, ops as F
from ...autograd import no_grad
from ...creation import empty
from ...errors import ArgumentError, FwTypeError
from .. import functional as NF  # looked up per call: a patched F.conv2d is seen, as in torch
from .. import functional_conv as FC
from ..parameter import Parameter
from .module import Module

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared construction, initialisation and ``repr`` of the convolution layers."""

    _nd = 0
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", output_padding=0,
                 device=None, dtype=None):
        super().__init__()
        nd, name = self._nd, type(self).__name__
        for arg, val in (("in_channels", in_channels), ("out_channels", out_channels),
                         ("groups", groups)):
            if not hasattr(val, "__index__") or isinstance(val, bool):
                raise FwTypeError(f"{name}: {arg} must be an int, got {val!r} "
                                  f"({type(val).__name__})")
        if groups <= 0:
            raise ArgumentError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ArgumentError(f"{name}: in_channels ({in_channels}) must be divisible by "
                                f"groups ({groups})")
        if out_channels % groups:
            raise ArgumentError(f"{name}: out_channels ({out_channels}) must be divisible by "
                                f"groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ArgumentError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                                f"{padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = FC.ntuple(kernel_size, nd, "kernel_size", name)
        self.stride = FC.ntuple(stride, nd, "stride", name)
        self.dilation = FC.ntuple(dilation, nd, "dilation", name)
        if isinstance(padding, str):
            if self._transposed:
                raise ArgumentError(f"{name}: string padding is not supported")
            if padding not in ("same", "valid"):
                raise ArgumentError(f"{name}: invalid padding string {padding!r}, should be "
                                    f"one of ['same', 'valid']")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ArgumentError(f"{name}: padding='same' is not supported for strided "
                                    f"convolutions")
            self.padding = padding
        else:
            self.padding = FC.ntuple(padding, nd, "padding", name)
        if self._transposed and padding_mode != "zeros":
            raise ArgumentError(f"{name}: only 'zeros' padding mode is supported for "
                                f"{name}")
        self.output_padding = FC.ntuple(output_padding, nd, "output_padding", name)
        self.transposed = self._transposed
        self.groups = groups
        self.padding_mode = padding_mode
        dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(shape, dtype=dt, device=device))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dt, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) for the weight, i.e.
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        with no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, device, dtype)

    def _conv_forward(self, input, weight, bias):
        fn = (NF.conv1d, NF.conv2d, NF.conv3d)[self._nd - 1]
        if self.padding_mode == "zeros":
            return fn(input, weight, bias, self.stride, self.padding, self.dilation,
                      self.groups)
        pairs = FC.conv_padding(self.padding, self.kernel_size, self.stride, self.dilation,
                                type(self).__name__)
        flat = []
        for lo, hi in reversed(pairs):  # F.pad lists the last dim first
            flat += [lo, hi]
        padded = F.pad(input, flat, mode=self.padding_mode)
        return fn(padded, weight, bias, self.stride, 0, self.dilation, self.groups)

    def forward(self, input):
        """Convolve ``input`` with ``weight`` (plus ``bias``)."""
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_Conv):
    """1-D convolution over ``(N, C_in, L)``."""

    _nd = 1


class Conv2d(_Conv):
    """2-D convolution over ``(N, C_in, H, W)``."""

    _nd = 2


class Conv3d(_Conv):
    """3-D convolution over ``(N, C_in, D, H, W)``."""

    _nd = 3


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device, dtype)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        nd = self._nd
        size = tuple(output_size)[-nd:]
        if len(size) != nd:
            raise ArgumentError(f"{type(self).__name__}: output_size must have {nd} or "
                                f"{nd + 2} elements, got {output_size!r}")
        spatial = input.shape[input.ndim - nd:]
        res = []
        for i in range(nd):
            base = ((spatial[i] - 1) * self.stride[i] - 2 * self.padding[i]
                    + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            extra = size[i] - base
            if extra < 0 or extra >= max(self.stride[i], self.dilation[i]):
                raise ArgumentError(f"{type(self).__name__}: requested output size {size} is "
                                    f"not reachable from input size {tuple(spatial)}")
            res.append(extra)
        return tuple(res)

    def forward(self, input, output_size=None):
        """Transposed convolution; ``output_size`` picks the output_padding."""
        fn = (NF.conv_transpose1d, NF.conv_transpose2d, NF.conv_transpose3d)[self._nd - 1]
        return fn(input, self.weight, self.bias, self.stride, self.padding,
                  self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution; weight ``(C_in, C_out/groups, k)``."""

    _nd = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution; weight ``(C_in, C_out/groups, kh, kw)``."""

    _nd = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution."""

    _nd = 3
