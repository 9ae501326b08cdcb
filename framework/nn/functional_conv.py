"""Functional convolution and pooling (``nn.functional.conv2d``, ``max_pool2d``, ...).

Thin PyTorch-compatible front ends over the ``conv``, ``conv_transpose`` and ``max_pool``
primitives (``framework/ops/conv_ops.py``): argument normalisation, unbatched inputs,
``padding='same'``, bias. Average pooling is a depthwise ``conv`` with a ones kernel divided
by a constant divisor map (PyTorch's ``count_include_pad`` / ``ceil_mode`` /
``divisor_override`` rules), so it needs no primitive of its own. Adaptive pooling,
interpolation and unfold/fold live in ``functional_resample.py``.
"""

from __future__ import annotations

import numpy as np

from .. import ops as F
from .._state import tls
from ..amp.autocast import autocast_args
from ..errors import ArgumentError, ShapeError
from ..ops import conv_ops
from ..tensor import Tensor
from ._conv_utils import batched, conv_padding, ntuple  # noqa: F401  (used by modules)

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d",
           "avg_pool2d", "avg_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "max_unpool1d", "max_unpool2d", "max_unpool3d"]


def _add_bias(out, bias, op):
    if bias is None:
        return out
    if not isinstance(bias, Tensor) or bias.ndim != 1 or bias.shape[0] != out.shape[1]:
        raise ShapeError(f"{op}: bias must be a 1-D tensor of {out.shape[1]} elements, got "
                         f"{getattr(bias, 'shape', bias)!r}")
    return out + bias.reshape((1, -1) + (1,) * (out.ndim - 2))


def _conv(nd, input, weight, bias, stride, padding, dilation, groups):
    op = f"conv{nd}d"
    if tls.autocast is not None:
        input, weight, bias = autocast_args(op, input, weight, bias)
    x, unbatched = batched(input, nd, op)
    if not isinstance(weight, Tensor) or weight.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 2}-D weight, got "
                         f"{list(getattr(weight, 'shape', [])) or weight!r}")
    stride = ntuple(stride, nd, "stride", op)
    dilation = ntuple(dilation, nd, "dilation", op)
    pads = conv_padding(padding, tuple(weight.shape[2:]), stride, dilation, op)
    out = _add_bias(conv_ops.conv(x, weight, stride, pads, dilation, groups), bias, op)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D convolution over ``(N, C_in, L)``; weight ``(C_out, C_in/groups, k)``."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution over ``(N, C_in, H, W)``; weight ``(C_out, C_in/groups, kh, kw)``."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3-D convolution over ``(N, C_in, D, H, W)``."""
    return _conv(3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(nd, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    op = f"conv_transpose{nd}d"
    if tls.autocast is not None:
        input, weight, bias = autocast_args(op, input, weight, bias)
    x, unbatched = batched(input, nd, op)
    if not isinstance(weight, Tensor) or weight.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 2}-D weight (C_in, C_out/groups, *kernel)")
    if isinstance(padding, str):
        raise ArgumentError(f"{op}: string padding {padding!r} is not supported for "
                            f"transposed convolutions")
    pad = ntuple(padding, nd, "padding", op)
    out = conv_ops.conv_transpose(x, weight, ntuple(stride, nd, "stride", op), pad,
                                  ntuple(output_padding, nd, "output_padding", op), groups,
                                  ntuple(dilation, nd, "dilation", op))
    out = _add_bias(out, bias, op)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Tensor:
    """1-D transposed convolution; weight ``(C_in, C_out/groups, k)``."""
    return _conv_transpose(1, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Tensor:
    """2-D transposed convolution; weight ``(C_in, C_out/groups, kh, kw)``."""
    return _conv_transpose(2, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Tensor:
    """3-D transposed convolution."""
    return _conv_transpose(3, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


# ---------------------------------------------------------------------------------------
# pooling
def _pool_args(nd, input, kernel_size, stride, padding, dilation, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected a {nd + 1}-D or {nd + 2}-D input, got shape "
                         f"{list(input.shape)}")
    k = ntuple(kernel_size, nd, "kernel_size", op)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else \
        ntuple(stride, nd, "stride", op)
    return k, s, ntuple(padding, nd, "padding", op), ntuple(dilation, nd, "dilation", op)


def _max_pool(nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    op = f"max_pool{nd}d"
    k, s, p, d = _pool_args(nd, input, kernel_size, stride, padding, dilation, op)
    values, indices = conv_ops.max_pool(input, k, s, p, d, ceil_mode, nd=nd)
    return (values, indices) if return_indices else values


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling over ``(N, C, L)`` (indices: flat positions in L)."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling over ``(N, C, H, W)`` (indices: flat positions in H*W)."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """3-D max pooling over ``(N, C, D, H, W)``."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """``max_pool1d`` returning ``(values, indices)``."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """``max_pool2d`` returning ``(values, indices)``."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _avg_divisor(sizes, k, s, p, out, ceil_mode, count_include_pad):
    """PyTorch's per-window divisor map (outer product over dims)."""
    div = np.ones((), np.float64)
    for n, kk, ss, pp, oo in zip(sizes, k, s, p, out):
        start = np.arange(oo) * ss - pp
        end = np.minimum(start + kk, n + pp)
        if count_include_pad:
            cnt = end - start
        else:
            cnt = np.minimum(end, n) - np.maximum(start, 0)
        div = np.multiply.outer(div, cnt.astype(np.float64))
    return div


def _avg_pool(nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    op = f"avg_pool{nd}d"
    k, s, p, _ = _pool_args(nd, input, kernel_size, stride, padding, 1, op)
    for kk, pp in zip(k, p):
        if pp < 0 or pp > kk // 2:
            raise ArgumentError(f"{op}: pad should be at most half of kernel size, but got "
                                f"pad={pp} and kernel_size={kk}")
    if not input.dtype.is_floating_point:
        raise ArgumentError(f"{op}: expected a floating-point input, got {input.dtype.name}")
    if divisor_override is not None and divisor_override == 0:
        raise ArgumentError(f"{op}: divisor_override must be non-zero")
    lead = tuple(input.shape[:input.ndim - nd])
    sizes = tuple(input.shape[input.ndim - nd:])
    x = input.reshape((-1, 1) + sizes)
    ones = F.ones((1, 1) + k, dtype=input.dtype, device=input.device)
    if not all(isinstance(n, int) for n in sizes):
        # symbolic spatial sizes: only the cases whose divisor is the constant prod(k)
        if ceil_mode or (any(p) and not count_include_pad and divisor_override is None):
            raise NotImplementedError(f"{op}: ceil_mode or count_include_pad=False with "
                                      f"padding needs static spatial sizes, got "
                                      f"{list(input.shape)}")
        summed = conv_ops.conv(x, ones, s, tuple((pp, pp) for pp in p), 1, 1)
        res = summed / float(divisor_override or int(np.prod(k)))
        return res.reshape(lead + tuple(summed.shape[2:]))
    out = tuple(conv_ops.pool_out_len(n, kk, ss, pp, 1, ceil_mode)
                for n, kk, ss, pp in zip(sizes, k, s, p))
    if any(o < 1 for o in out):
        raise ShapeError(f"{op}: input {list(input.shape)} is too small for kernel {list(k)} "
                         f"(padding {list(p)}): output size {list(out)}")
    # zero padding; ceil_mode windows may run past the padded end: pad those with zeros too
    pads = tuple((pp, max((oo - 1) * ss + kk - n - pp, pp))
                 for n, kk, ss, pp, oo in zip(sizes, k, s, p, out))
    summed = conv_ops.conv(x, ones, s, pads, 1, 1)
    if tuple(summed.shape[2:]) != out:
        summed = summed[(slice(None), slice(None)) + tuple(slice(0, o) for o in out)]
    if divisor_override is not None:
        res = summed / float(divisor_override)
    elif not ceil_mode and (count_include_pad or not any(p)):
        res = summed / float(np.prod(k))  # every window is full: one constant divisor
    else:
        div = _avg_divisor(sizes, k, s, p, out, ceil_mode, count_include_pad)
        res = summed / F.tensor(div, dtype=input.dtype, device=input.device)
    return res.reshape(lead + out)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Tensor:
    """1-D average pooling over ``(N, C, L)``."""
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Tensor:
    """2-D average pooling over ``(N, C, H, W)``."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Tensor:
    """3-D average pooling over ``(N, C, D, H, W)``."""
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _max_unpool(nd, input, indices, kernel_size, stride, padding, output_size):
    op = f"max_unpool{nd}d"
    k, s, p, _ = _pool_args(nd, input, kernel_size, stride, padding, 1, op)
    if tuple(indices.shape) != tuple(input.shape) or indices.dtype.is_floating_point:
        raise ShapeError(f"{op}: indices must be an integer tensor of the input's shape "
                         f"{list(input.shape)}, got {indices.dtype.name}{list(indices.shape)}")
    lead = tuple(input.shape[:input.ndim - nd])
    default = tuple((n - 1) * ss - 2 * pp + kk for n, ss, pp, kk in
                    zip(input.shape[input.ndim - nd:], s, p, k))
    if output_size is None:
        out = default
    else:
        out = tuple(output_size)[-nd:]
        if len(out) != nd or any(abs(o - d) >= ss for o, d, ss in zip(out, default, s)):
            raise ArgumentError(f"{op}: invalid output_size {tuple(output_size)} (expected "
                                f"about {default})")
    plane = int(np.prod(out))
    flat = F.zeros(lead + (plane,), dtype=input.dtype, device=input.device)
    res = F.scatter(flat, -1, indices.reshape(lead + (-1,)), input.reshape(lead + (-1,)))
    return res.reshape(lead + out)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of ``max_pool1d``: values placed at ``indices``, zeros elsewhere."""
    return _max_unpool(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of ``max_pool2d``: values placed at ``indices``, zeros elsewhere."""
    return _max_unpool(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of ``max_pool3d``: values placed at ``indices`` (flat positions in
    D*H*W), zeros elsewhere."""
    return _max_unpool(3, input, indices, kernel_size, stride, padding, output_size)


# adaptive pooling, interpolation and unfold/fold, re-exported so that this module holds
# every conv/pool name ``nn.functional`` picks up
from .functional_resample import *  # noqa: E402,F401,F403
from .functional_resample import __all__ as _resample_all  # noqa: E402

__all__ += [n for n in _resample_all if n not in __all__]
