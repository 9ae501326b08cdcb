"""Normalization functions: batch, instance, layer, group and RMS norm.

Running statistics are updated under ``no_grad`` with in-place ops
(``running_mean.mul_(1 - m).add_(m * mean)``), which a compiler functionalizes into
new buffer values written back at the end of a captured step.
"""

from __future__ import annotations

import ml_dtypes

from ... import dtypes, ops
from ...amp.autocast import autocast_op
from ...autograd import no_grad
from ...errors import ArgumentError, ShapeError
from ...ops.nn_ops import layer_norm as _layer_norm_op
from ...tensor import Tensor


def _channel_shape(input: Tensor) -> tuple:
    return (1, input.shape[1]) + (1,) * (input.ndim - 2)


def _affine(out: Tensor, weight, bias, shape) -> Tensor:
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _mixed(input: Tensor, *params) -> bool:
    """PyTorch's "mixed type" normalization: a float16/bfloat16 input with float32
    parameters (or running statistics) is computed in float32 and returned in the input's
    dtype (an fp16 ResNet's activations stay fp16 through BatchNorm's fp32 weights)."""
    return input.dtype in (dtypes.float16, dtypes.bfloat16) and any(
        p is not None and p.dtype is dtypes.float32 for p in params)


def _update_running(running: Tensor, value: Tensor, momentum: float) -> None:
    with no_grad():
        running.mul_(1.0 - momentum).add_(value.detach().to(running.dtype) * momentum)


def _check_channels(name, input, tensors):
    if input.ndim < 2:
        raise ShapeError(f"{name}: expected an input of at least 2 dims (N, C, ...), got shape "
                         f"{list(input.shape)}")
    c = input.shape[1]
    for label, t in tensors:
        if t is not None and tuple(t.shape) != (c,):
            raise ShapeError(f"{name}: {label} of shape {list(t.shape)} does not match the "
                             f"{c} channels of input shape {list(input.shape)}")


@autocast_op("batch_norm")
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) with batch statistics (``training``; running stats,
    when given, are updated with the unbiased variance) or with the running statistics."""
    _check_channels("batch_norm", input, (("running_mean", running_mean),
                                          ("running_var", running_var), ("weight", weight),
                                          ("bias", bias)))
    if _mixed(input, weight, bias, running_mean, running_var):
        return batch_norm(input.float(), running_mean, running_var, weight, bias, training,
                          momentum, eps).to(input.dtype)
    shape = _channel_shape(input)
    if training:
        dims = (0,) + tuple(range(2, input.ndim))
        count = input.numel() // input.shape[1]
        if isinstance(count, int) and count <= 1:
            raise ArgumentError(f"batch_norm: expected more than 1 value per channel when "
                                f"training, got input size {list(input.shape)}")
        mean = input.mean(dims, keepdim=True)
        xc = input - mean
        var = (xc * xc).mean(dims, keepdim=True)
        if running_mean is not None:
            _update_running(running_mean, mean.reshape(-1), momentum)
        if running_var is not None:
            _update_running(running_var, var.reshape(-1) * (count / (count - 1)), momentum)
    else:
        if running_mean is None or running_var is None:
            raise ArgumentError("batch_norm: running_mean and running_var must be given when "
                                "training=False")
        mean = running_mean.reshape(shape).to(input.dtype)
        var = running_var.reshape(shape).to(input.dtype)
        xc = input - mean
    out = xc * (var + eps).rsqrt()
    return _affine(out, weight, bias, shape)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each (sample, channel) over its spatial dims."""
    _check_channels("instance_norm", input, (("running_mean", running_mean),
                                             ("running_var", running_var),
                                             ("weight", weight), ("bias", bias)))
    shape = _channel_shape(input)
    dims = tuple(range(2, input.ndim))
    if not dims:
        raise ShapeError(f"instance_norm: expected spatial dims after (N, C), got shape "
                         f"{list(input.shape)}")
    if use_input_stats:
        count = 1
        for d in dims:
            count = count * input.shape[d]
        if isinstance(count, int) and count <= 1:
            raise ArgumentError(f"instance_norm: expected more than 1 spatial element when "
                                f"training, got input size {list(input.shape)}")
        mean = input.mean(dims, keepdim=True)
        xc = input - mean
        var = (xc * xc).mean(dims, keepdim=True)
        if running_mean is not None:
            _update_running(running_mean, mean.reshape(input.shape[:2]).mean(0), momentum)
        if running_var is not None:
            unbiased = var.reshape(input.shape[:2]) * (count / (count - 1))
            _update_running(running_var, unbiased.mean(0), momentum)
    else:
        if running_mean is None or running_var is None:
            raise ArgumentError("instance_norm: running stats are required when "
                                "use_input_stats=False")
        mean = running_mean.reshape(shape)
        var = running_var.reshape(shape)
        xc = input - mean
    return _affine(xc * (var + eps).rsqrt(), weight, bias, shape)


@autocast_op("layer_norm")
def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` dims, then scale and shift
    (one ``layer_norm`` node)."""
    if _mixed(input, weight, bias):
        return _layer_norm_op(input.float(), normalized_shape, weight, bias,
                              eps).to(input.dtype)
    return _layer_norm_op(input, normalized_shape, weight, bias, eps)


@autocast_op("group_norm")
def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over groups of channels (and the spatial dims) per sample."""
    _check_channels("group_norm", input, (("weight", weight), ("bias", bias)))
    if _mixed(input, weight, bias):
        return group_norm(input.float(), num_groups, weight, bias, eps).to(input.dtype)
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ArgumentError(f"group_norm: expected number of channels in input ({c}) to be "
                            f"divisible by num_groups ({num_groups})")
    grouped = input.reshape((n, num_groups, -1))
    out = _layer_norm_op(grouped, (grouped.shape[2],), None, None, eps).reshape(input.shape)
    return _affine(out, weight, bias, _channel_shape(input))


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the trailing ``normalized_shape`` dims
    (``eps`` defaults to the dtype's machine epsilon)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(normalized_shape)
    k = len(shape)
    if tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise ShapeError(f"rms_norm: input of shape {list(input.shape)} does not end with "
                         f"normalized_shape {list(shape)}")
    if eps is None:
        eps = float(ml_dtypes.finfo(input.dtype.np).eps)  # NumPy's finfo lacks bfloat16
    dims = tuple(range(input.ndim - k, input.ndim))
    out = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Normalize each channel by the sum of squares of its ``size`` neighbours."""
    if input.ndim < 3:
        raise ShapeError(f"local_response_norm: expected 3D or higher input, got shape "
                         f"{list(input.shape)}")
    sq = (input * input).unsqueeze(1)
    pads = (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2)
    sq = ops.pad(sq, pads)
    c = input.shape[1]
    window = sum(ops.narrow(sq, 2, i, c) for i in range(size)).squeeze(1)
    return input / (window * (alpha / size) + k) ** beta


__all__ = ["batch_norm", "instance_norm", "layer_norm", "group_norm", "rms_norm",
           "local_response_norm"]
