"""``nn.utils.fusion``: fold an eval-mode BatchNorm into the convolution or linear layer
before it (PyTorch's ``torch.nn.utils.fusion``), so inference runs one layer instead of
two and an ONNX export has one ``Conv`` / ``Gemm`` node.

With ``s = bn_w / sqrt(bn_rv + bn_eps)`` (per output channel)::

    fused_w = w * s       (along the output-channel dim: 0, or 1 for transposed convs)
    fused_b = (b - bn_rm) * s + bn_b

A missing conv/linear bias counts as 0, a BatchNorm without affine as ``bn_w = 1``,
``bn_b = 0``. Misuse raises :class:`FusionError`, an ``AssertionError`` as in PyTorch.
"""

from __future__ import annotations

import copy

from ... import creation as C
from ...errors import FrameworkError
from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights", "FusionError"]


class FusionError(FrameworkError, AssertionError):
    """Modules that cannot be fused (training mode, no running statistics, channel counts
    that do not match); an ``AssertionError`` like PyTorch's."""


def _check_eval_and_stats(layer, bn) -> None:
    if layer.training or bn.training:
        raise FusionError("Fusion only for eval!")
    if bn.running_mean is None or bn.running_var is None:
        raise FusionError("Fusion needs BatchNorm running statistics "
                          "(track_running_stats=True)")


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of ``conv`` (eval mode) whose weight and bias absorb the eval-mode ``bn``
    after it; ``transpose=True`` for a ``ConvTranspose*d``."""
    _check_eval_and_stats(conv, bn)
    fused_conv = copy.deepcopy(conv)
    fused_conv.weight, fused_conv.bias = fuse_conv_bn_weights(
        fused_conv.weight, fused_conv.bias, bn.running_mean, bn.running_var, bn.eps,
        bn.weight, bn.bias, transpose)
    return fused_conv


def _defaults(layer_b, bn_rm, bn_w, bn_b):
    """The layer's bias and BatchNorm's affine weight and bias, with zeros / ones for the
    missing ones (a layer without bias, a BatchNorm without affine)."""
    return (C.zeros_like(bn_rm) if layer_b is None else layer_b,
            C.ones_like(bn_rm) if bn_w is None else bn_w,
            C.zeros_like(bn_rm) if bn_b is None else bn_b)


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b,
                         transpose: bool = False):
    """``(fused_weight, fused_bias)`` as new ``Parameter`` s (``requires_grad`` copied from
    ``conv_w`` / ``conv_b``), in the conv weight's and bias's dtypes."""
    conv_weight_dtype = conv_w.dtype
    conv_bias_dtype = conv_b.dtype if conv_b is not None else conv_weight_dtype
    conv_b, bn_w, bn_b = _defaults(conv_b, bn_rm, bn_w, bn_b)
    bn_var_rsqrt = (bn_rv + bn_eps).rsqrt()
    if transpose:
        shape = [1, -1] + [1] * (conv_w.ndim - 2)
    else:
        shape = [-1, 1] + [1] * (conv_w.ndim - 2)
    fused_w = (conv_w * (bn_w * bn_var_rsqrt).reshape(shape)).to(conv_weight_dtype)
    fused_b = ((conv_b - bn_rm) * bn_var_rsqrt * bn_w + bn_b).to(conv_bias_dtype)
    return (Parameter(fused_w.detach(), conv_w.requires_grad),
            Parameter(fused_b.detach(), conv_b.requires_grad))


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` (eval mode) whose weight and bias absorb the eval-mode ``bn``
    after it; ``bn.num_features`` must be ``linear.out_features`` or 1."""
    _check_eval_and_stats(linear, bn)
    if not (linear.out_features == bn.num_features or bn.num_features == 1):
        raise FusionError("To fuse, linear.out_features == bn.num_features or "
                          "bn.num_features == 1")
    fused_linear = copy.deepcopy(linear)
    fused_linear.weight, fused_linear.bias = fuse_linear_bn_weights(
        fused_linear.weight, fused_linear.bias, bn.running_mean, bn.running_var, bn.eps,
        bn.weight, bn.bias)
    return fused_linear


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """``(fused_weight, fused_bias)`` of a linear layer followed by an eval-mode
    BatchNorm, as new ``Parameter`` s. (Unlike PyTorch, ``bn_w`` / ``bn_b`` may be None:
    a BatchNorm without affine.)"""
    linear_weight_dtype = linear_w.dtype
    linear_bias_dtype = linear_b.dtype if linear_b is not None else linear_weight_dtype
    linear_b, bn_w, bn_b = _defaults(linear_b, bn_rm, bn_w, bn_b)
    bn_scale = bn_w * (bn_rv + bn_eps).rsqrt()
    fused_w = linear_w * bn_scale.unsqueeze(-1).to(linear_weight_dtype)
    fused_b = ((linear_b - bn_rm) * bn_scale + bn_b).to(linear_bias_dtype)
    return (Parameter(fused_w.detach(), linear_w.requires_grad),
            Parameter(fused_b.detach(), linear_b.requires_grad))
