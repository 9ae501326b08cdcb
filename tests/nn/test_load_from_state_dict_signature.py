"""``Module._load_from_state_dict`` has PyTorch's signature
``(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)``.

Two kinds of user code rely on it: loaders copied from BEiT / ConvNeXt / DeiT that walk the
modules and call it themselves, and modules that override it to rename legacy keys before
calling ``super()``. With the positions shifted, missing keys crashed and unexpected keys were
reported as missing."""

from collections import OrderedDict

import numpy as np

import framework as fw
import framework.nn as nn


def _convnext_style_load(model, state_dict, prefix=""):
    """The recursive loader of ConvNeXt's utils.load_state_dict, as written there."""
    missing_keys, unexpected_keys, error_msgs = [], [], []
    metadata = getattr(state_dict, "_metadata", None)
    state_dict = state_dict.copy()
    if metadata is not None:
        state_dict._metadata = metadata

    def load(module, prefix=""):
        local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
        module._load_from_state_dict(
            state_dict, prefix, local_metadata, True, missing_keys, unexpected_keys, error_msgs)
        for name, child in module._modules.items():
            if child is not None:
                load(child, prefix + name + ".")

    load(model, prefix=prefix)
    return missing_keys, unexpected_keys, error_msgs


def test_external_loader_reports_missing_and_unexpected_keys():
    fw.manual_seed(0)
    src = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    dst = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    sd = src.state_dict()
    del sd["1.bias"]
    sd["head.weight"] = fw.zeros(2)
    missing, unexpected, errors = _convnext_style_load(dst, sd)
    assert missing == ["1.bias"] and unexpected == ["head.weight"] and errors == []
    np.testing.assert_array_equal(dst[0].weight.detach().numpy(), src[0].weight.detach().numpy())


def test_external_loader_with_prefix_and_size_mismatch():
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4))
    sd = OrderedDict({"module.0.weight": fw.ones(4, 3), "module.0.bias": fw.ones(5)})
    missing, unexpected, errors = _convnext_style_load(model, sd, prefix="module.")
    assert missing == [] and unexpected == []
    assert len(errors) == 1 and "size mismatch for module.0.bias" in errors[0]
    assert float(model[0].weight.sum()) == 12.0


def test_override_with_pytorch_signature_renames_a_legacy_key():
    class Renamed(nn.Linear):
        seen = []

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                                  missing_keys, unexpected_keys, error_msgs):
            Renamed.seen.append((prefix, local_metadata.get("version"), strict))
            old = prefix + "w"
            if old in state_dict:
                state_dict[prefix + "weight"] = state_dict.pop(old)
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                          missing_keys, unexpected_keys, error_msgs)

    model = nn.Sequential(Renamed(2, 2))
    sd = model.state_dict()
    sd["0.w"] = fw.full((2, 2), 3.0)
    del sd["0.weight"]
    result = model.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert float(model[0].weight.sum()) == 12.0
    assert Renamed.seen == [("0.", 1, True)]  # the module's saved version reaches it


def test_assign_arrives_in_local_metadata():
    seen = []

    class Spy(nn.Linear):
        def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
            seen.append(local_metadata.get("assign_to_params_buffers", False))
            super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    m = Spy(2, 2)
    w = fw.ones(2, 2)
    m.load_state_dict({"weight": w, "bias": fw.zeros(2)}, assign=True)
    assert seen == [True] and m.weight.data_ptr() == w.data_ptr()
    m.load_state_dict({"weight": fw.zeros(2, 2), "bias": fw.zeros(2)})
    assert seen == [True, False]
