"""The eager-mode workflow (PyTorch's ``torch.ao.quantization.quantize``):
``propagate_qconfig_``, ``prepare`` (observers, post-training calibration), ``prepare_qat``
(QAT layers + fake quantization), ``convert`` (reference modules) and the one-call
``quantize`` / ``quantize_qat``.

``quantize_dynamic`` (dynamic quantization) propagates its qconfig_spec and swaps layers for
the dynamic quantized modules of ``framework.ao.nn.quantized.dynamic``, with no observers.

``prepare`` gives each leaf module with a ``qconfig`` (of a type in the propagation list)
an ``activation_post_process`` child and a forward hook that passes the module's output
through it, as PyTorch does. ``convert`` swaps layers for the reference modules of
``framework.ao.nn.quantized.reference`` (integer weights, dequantized in forward), a
``QuantStub`` for a quantize-dequantize of its input and every remaining activation
observer for a quantize-dequantize with its frozen qparams. (PyTorch's eager ``convert``
targets its int8-kernel modules and drops the remaining observers; here the reference
representation keeps the activation quantization, which is what an ONNX QDQ export needs.)
"""

from __future__ import annotations

import copy
import warnings

from ... import dtypes, nn
from ...nn.modules.container import Sequential
from .. import qtypes
from ..nn.intrinsic import _FusedModule
from ..nn.quantized.reference import QuantizeDequantize, float_layer, get_qparam_dict
from .fake_quantize import FakeQuantizeBase
from .observer import ObserverBase
from .qconfig import default_dynamic_qconfig, float16_dynamic_qconfig
from .quantization_mappings import (get_default_dynamic_quant_module_mappings,
                                    get_default_qat_module_mappings,
                                    get_default_qconfig_propagation_list,
                                    get_default_static_quant_reference_module_mappings)
from .stubs import DeQuantStub
from .utils import QuantizationError

__all__ = ["propagate_qconfig_", "add_observer_", "prepare", "prepare_qat", "convert",
           "swap_module", "quantize", "quantize_qat", "quantize_dynamic"]


def _is_activation_post_process(module) -> bool:
    return isinstance(module, (ObserverBase, FakeQuantizeBase))


def _observer_forward_hook(self, input, output):
    """Forward hook: pass the module's output through its ``activation_post_process``."""
    return self.activation_post_process(output)


def _observer_forward_pre_hook(self, input):
    """Forward pre-hook of memoryless observers: observe the first input."""
    return self.activation_post_process(input[0])


def _device_of(module):
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return None


def propagate_qconfig_(module, qconfig_dict=None) -> None:
    """Give every submodule a ``qconfig``: its own, else ``qconfig_dict[type]`` or
    ``qconfig_dict[qualified name]``, else its parent's."""
    _propagate(module, qconfig_dict or {}, None, "")


def _propagate(module, qconfig_dict, parent_qconfig, prefix):
    qconfig = qconfig_dict.get(type(module), parent_qconfig)
    qconfig = qconfig_dict.get(prefix, qconfig)
    qconfig = getattr(module, "qconfig", qconfig)
    module.qconfig = qconfig
    for name, child in module.named_children():
        _propagate(child, qconfig_dict, qconfig, f"{prefix}.{name}" if prefix else name)


def _memoryless(qconfig) -> bool:
    act = qconfig.activation()
    act = getattr(act, "activation_post_process", act)
    return getattr(act, "averaging_constant", None) == 1


def _insert_activation_post_process(m, device) -> None:
    if getattr(m, "qconfig", None) is None or isinstance(m, DeQuantStub):
        return
    obs = m.qconfig.activation()
    m.add_module("activation_post_process", obs.to(device) if device is not None else obs)
    if _memoryless(m.qconfig):
        m.register_forward_pre_hook(_observer_forward_pre_hook, prepend=True)
    else:
        m.register_forward_hook(_observer_forward_hook, prepend=True)


def add_observer_(module, qconfig_propagation_list=None, non_leaf_module_list=None,
                  device=None) -> None:
    """Insert output observers into the leaves (and ``non_leaf_module_list`` types) with a
    qconfig, in place."""
    if qconfig_propagation_list is None:
        qconfig_propagation_list = get_default_qconfig_propagation_list()
    if device is None:
        device = _device_of(module)
    for child in module.children():
        if isinstance(child, _FusedModule) or (non_leaf_module_list is not None and
                                               type(child) in non_leaf_module_list):
            _insert_activation_post_process(child, device)  # observed as one unit
        elif not _is_activation_post_process(child):
            add_observer_(child, qconfig_propagation_list, non_leaf_module_list, device)
    if (not module._modules and not isinstance(module, Sequential)
            and type(module) in qconfig_propagation_list):
        _insert_activation_post_process(module, device)


def prepare(model, inplace=False, allow_list=None, observer_non_leaf_module_list=None):
    """Post-training static quantization, step 1: propagate qconfigs and insert observers.
    Run calibration data through the result, then :func:`convert`."""
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    if not any(getattr(m, "qconfig", None) for m in model.modules()):
        warnings.warn("None of the submodule got qconfig applied. Make sure you passed "
                      "correct configuration through `qconfig_dict` or by assigning the "
                      "`.qconfig` attribute directly on submodules", stacklevel=2)
    add_observer_(model, allow_list or get_default_qconfig_propagation_list(),
                  observer_non_leaf_module_list)
    return model


def prepare_qat(model, mapping=None, inplace=False):
    """Quantization-aware training, step 1: swap layers with a qconfig for their QAT
    versions (``nn.qat``: fake-quantized weights) and add fake quantization of their
    outputs. Train the result, then :func:`convert`."""
    if not model.training:
        raise QuantizationError("prepare_qat only works on models in training mode")
    if mapping is None:
        mapping = get_default_qat_module_mappings()
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    convert(model, mapping=mapping, inplace=True, remove_qconfig=False)
    prepare(model, observer_non_leaf_module_list=set(mapping.values()), inplace=True)
    return model


def swap_module(mod, mapping):
    """``mapping[type(mod)]``'s version of ``mod`` (when it has a qconfig), keeping its
    other forward hooks; reference layers quantize their weight with a fresh
    ``qconfig.weight()`` observer, and the layer's output observer becomes a frozen
    quantize-dequantize."""
    if getattr(mod, "qconfig", None) is None or type(mod) not in mapping:
        return mod
    target = mapping[type(mod)]
    if getattr(target, "_IS_REFERENCE", False):
        weight = float_layer(mod).weight
        wpp = mod.qconfig.weight().to(weight.device)
        wpp(weight.detach())
        new = target.from_float(mod, get_qparam_dict(wpp))
    else:
        new = target.from_float(mod)
    obs = getattr(mod, "_modules", {}).get("activation_post_process")
    if getattr(target, "_IS_REFERENCE", False) and _is_activation_post_process(obs):
        new.activation_post_process = QuantizeDequantize.from_observer(obs)
        new.register_forward_hook(_observer_forward_hook, prepend=True)
    for hook in mod._forward_pre_hooks.values():
        if hook is not _observer_forward_pre_hook:
            new.register_forward_pre_hook(hook)
    for hook in mod._forward_hooks.values():
        if hook is not _observer_forward_hook:
            new.register_forward_hook(hook)
    device = _device_of(mod)
    return new.to(device) if device is not None else new


def _convert(module, mapping, reference) -> None:
    for name, child in list(module.named_children()):
        if _is_activation_post_process(child):
            if reference and name == "activation_post_process":  # an observed output
                module._modules[name] = QuantizeDequantize.from_observer(child)
            continue
        if type(child) not in mapping:
            _convert(child, mapping, reference)
        module._modules[name] = swap_module(child, mapping)


def convert(module, mapping=None, inplace=False, remove_qconfig=True, is_reference=True):
    """Swap observed / QAT layers for reference quantized modules (integer weights,
    quantize-dequantize of the observed activations). ``is_reference`` is accepted for
    PyTorch compatibility: this framework has no int8-kernel modules, so both values
    give the reference modules."""
    if mapping is None:
        mapping = get_default_static_quant_reference_module_mappings()
    if not inplace:
        module = copy.deepcopy(module)
    reference = any(getattr(v, "_IS_REFERENCE", False) for v in mapping.values())
    _convert(module, mapping, reference)
    if remove_qconfig:
        _remove_qconfig(module)
    return module


def _remove_qconfig(module) -> None:
    for child in module.children():
        _remove_qconfig(child)
    if "qconfig" in module.__dict__:
        del module.__dict__["qconfig"]


def quantize(model, run_fn, run_args, mapping=None, inplace=False):
    """Post-training static quantization in one call: ``prepare`` (eval mode),
    ``run_fn(model, *run_args)`` to calibrate, ``convert``."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    run_fn(model, *run_args)
    return convert(model, mapping, inplace=True)


def quantize_qat(model, run_fn, run_args, inplace=False):
    """Quantization-aware training in one call: ``prepare_qat``, ``run_fn(model,
    *run_args)`` to train, ``convert``."""
    if not inplace:
        model = copy.deepcopy(model)
    model.train()
    prepare_qat(model, inplace=True)
    run_fn(model, *run_args)
    return convert(model, inplace=True)


_DYNAMIC_TYPES = ("Linear", "LSTM", "GRU", "LSTMCell", "RNNCell", "GRUCell")


def _default_dynamic_qconfig(dtype, spec_is_set):
    if dtype is qtypes.qint8:
        return default_dynamic_qconfig
    if dtype is dtypes.float16:
        return float16_dynamic_qconfig
    if dtype is qtypes.quint8:
        raise NotImplementedError("quantize_dynamic with dtype=quint8 (weight-only "
                                  "Embedding / EmbeddingBag quantization, "
                                  "float_qparams_weight_only_qconfig) is not supported: "
                                  "there are no quantized Embedding modules")
    if spec_is_set:
        raise QuantizationError(f"Unknown dtype specified for quantize_dynamic: {dtype!r}")
    raise QuantizationError(f"Don't know how to quantize with default settings for {dtype!r}. "
                            "Provide full qconfig please")


def quantize_dynamic(model, qconfig_spec=None, dtype=qtypes.qint8, mapping=None,
                     inplace=False):
    """Dynamic quantization (``torch.ao.quantization.quantize_dynamic``): replace the
    layers chosen by ``qconfig_spec`` with dynamic quantized modules
    (``framework.ao.nn.quantized.dynamic``: weights quantized now, activations at every
    call). ``qconfig_spec`` is None (every ``nn.Linear`` (and the recurrent layers and
    cells) with the default qconfig of ``dtype``: ``default_dynamic_qconfig`` for
    ``fw.qint8``, ``float16_dynamic_qconfig`` for ``fw.float16``), a set of module types
    or names (each with that default qconfig) or a dict of types / qualified names ->
    qconfig (None keeps a submodule float). Returns the quantized copy (the model itself
    with ``inplace=True``), in eval mode."""
    if qconfig_spec is None:
        qconfig = _default_dynamic_qconfig(dtype, False)
        qconfig_spec = {getattr(nn, name): qconfig for name in _DYNAMIC_TYPES}
    elif isinstance(qconfig_spec, set):
        qconfig = _default_dynamic_qconfig(dtype, True)
        qconfig_spec = dict.fromkeys(qconfig_spec, qconfig)
    elif not isinstance(qconfig_spec, dict):
        raise QuantizationError(f"quantize_dynamic: qconfig_spec must be None, a set or a "
                                f"dict, got {type(qconfig_spec).__name__}")
    if mapping is None:
        mapping = get_default_dynamic_quant_module_mappings()
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    propagate_qconfig_(model, qconfig_spec)
    convert(model, mapping, inplace=True)
    return model
