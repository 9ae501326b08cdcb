"""``fuse_modules`` / ``fuse_modules_qat`` (PyTorch's ``torch.ao.quantization.fuse_modules``):
merge a layer with the BatchNorm and/or ReLU after it before quantizing, so the whole group
is observed and quantized as one (the BatchNorm folding reuses
``framework.nn.utils.fusion``).

Supported groups: ``[conv, bn]``, ``[conv, bn, relu]``, ``[conv, relu]``, ``[linear, bn]``,
``[linear, relu]`` (1-, 2- and 3-D convolutions). The first module is replaced by the fused
one and the others by ``nn.Identity``. A BatchNorm is folded into the layer, which needs
eval mode; PyTorch's QAT Conv-BatchNorm modules (``fuse_modules_qat`` of a training-mode
``[conv, bn]``, keeping the BatchNorm trainable) are not implemented: fold in eval mode,
then ``prepare_qat``.
"""

from __future__ import annotations

import copy

from ... import nn
from ...nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
from ..nn import intrinsic as nni
from .utils import QuantizationError

__all__ = ["fuse_modules", "fuse_modules_qat", "fuse_known_modules", "get_fuser_method"]

_CONV_RELU = {nn.Conv1d: nni.ConvReLU1d, nn.Conv2d: nni.ConvReLU2d, nn.Conv3d: nni.ConvReLU3d}
_CONV_BN = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}


def _fold_bn(layer, bn, is_qat):
    if is_qat:
        raise NotImplementedError(
            f"QAT fusion of {type(layer).__name__} + {type(bn).__name__} (PyTorch's ConvBn / "
            "LinearBn modules, which keep training the BatchNorm) is not implemented; fuse "
            "in eval mode with fuse_modules (folds the BatchNorm), then prepare_qat")
    if layer.training != bn.training:
        raise QuantizationError(f"{type(layer).__name__} and {type(bn).__name__} must both "
                                "be in the same mode (train or eval)")
    if isinstance(layer, nn.Linear):
        return fuse_linear_bn_eval(layer, bn)
    return fuse_conv_bn_eval(layer, bn)


def _fuser(types):
    """The fuser function for a tuple of module types, or None."""
    first = types[0]
    if first in _CONV_RELU:
        bn = _CONV_BN[first]
        table = {(first, bn): lambda is_qat, c, b: _fold_bn(c, b, is_qat),
                 (first, bn, nn.ReLU): lambda is_qat, c, b, r: _CONV_RELU[first](
                     _fold_bn(c, b, is_qat), r),
                 (first, nn.ReLU): lambda is_qat, c, r: _CONV_RELU[first](c, r)}
        return table.get(types)
    if first is nn.Linear:
        table = {(nn.Linear, nn.BatchNorm1d): lambda is_qat, f, b: _fold_bn(f, b, is_qat),
                 (nn.Linear, nn.ReLU): lambda is_qat, f, r: nni.LinearReLU(f, r)}
        return table.get(types)
    return None


def get_fuser_method(op_list, additional_fuser_method_mapping=None):
    """``fn(is_qat, *modules)`` fusing modules of the types ``op_list``."""
    mapping = dict(additional_fuser_method_mapping or {})
    fn = mapping.get(tuple(op_list)) or _fuser(tuple(op_list))
    if fn is None:
        raise NotImplementedError(f"did not find fuser method for: {tuple(op_list)}; "
                                  "supported: [conv, bn], [conv, bn, relu], [conv, relu], "
                                  "[linear, bn], [linear, relu]")
    return fn


def fuse_known_modules(mod_list, is_qat, additional_fuser_method_mapping=None):
    """``[fused, Identity(), ...]`` for the modules ``mod_list``; the first module's
    forward pre-hooks and the last one's forward hooks move to the fused module."""
    fn = get_fuser_method([type(m) for m in mod_list], additional_fuser_method_mapping)
    fused = fn(is_qat, *mod_list)
    for hook in mod_list[0]._forward_pre_hooks.values():
        fused.register_forward_pre_hook(hook)
    for hook in mod_list[-1]._forward_hooks.values():
        fused.register_forward_hook(hook)
    return [fused] + [nn.Identity() for _ in mod_list[1:]]


def _set_submodule(model, name, module):
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _fuse(model, modules_to_fuse, is_qat, inplace, fuser_func, fuse_custom_config_dict):
    if not inplace:
        model = copy.deepcopy(model)
    groups = (modules_to_fuse if modules_to_fuse and isinstance(modules_to_fuse[0],
                                                                 (list, tuple))
              else [modules_to_fuse])
    extra = (fuse_custom_config_dict or {}).get("additional_fuser_method_mapping")
    for names in groups:
        mods = [model.get_submodule(n) for n in names]
        for name, new in zip(names, fuser_func(mods, is_qat, extra)):
            _set_submodule(model, name, new)
    return model


def fuse_modules(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules,
                 fuse_custom_config_dict=None):
    """Fuse each group of named submodules (a list of names, or a list of such lists)
    for post-training quantization (eval mode)."""
    return _fuse(model, modules_to_fuse, False, inplace, fuser_func, fuse_custom_config_dict)


def fuse_modules_qat(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules,
                     fuse_custom_config_dict=None):
    """:func:`fuse_modules` for quantization-aware training (``[conv, relu]`` and
    ``[linear, relu]``; BatchNorm groups raise NotImplementedError)."""
    return _fuse(model, modules_to_fuse, True, inplace, fuser_func, fuse_custom_config_dict)
