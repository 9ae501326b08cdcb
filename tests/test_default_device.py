"""``with fw.device(...)``, ``fw.set_default_device`` and ``fw.get_default_device``: where
factory calls without ``device=`` put their tensors."""

import numpy as np
import pytest

import framework as fw
from framework import nn


def test_device_as_context_places_factories_and_restores():
    assert fw.get_default_device() == fw.device("cpu")
    with fw.device("meta") as dev:
        assert dev is fw.device("meta") and fw.get_default_device() is dev
        assert fw.zeros(2, 3).device.type == "meta"
        assert fw.arange(4).device.type == "meta"
        assert fw.tensor([1, 2]).device.type == "meta"
        assert fw.ones(2, device="cpu").device.type == "cpu"  # an explicit device wins
        lin = nn.Linear(3, 4)
        with fw.device("cpu"):  # nesting
            assert fw.randn(2).device.type == "cpu"
        assert fw.empty(1).device.type == "meta"
    assert lin.weight.device.type == "meta" and lin.weight.requires_grad
    assert fw.zeros(2).device.type == "cpu"


def test_device_context_restored_after_an_error():
    with pytest.raises(ValueError), fw.device("meta"):
        raise ValueError("boom")
    assert fw.zeros(1).device.type == "cpu"


def test_set_default_device_and_like_factories_keep_input_device():
    x = fw.ones(3)
    try:
        fw.set_default_device("meta")
        assert fw.full((2,), 1.5).device.type == "meta"
        assert fw.zeros_like(x).device.type == "cpu"  # *_like follows the input
    finally:
        fw.set_default_device(None)
    assert fw.get_default_device() is fw.device("cpu") and fw.zeros(1).device.type == "cpu"


def test_meta_module_loads_with_assign():
    ref = nn.Linear(3, 2)
    with fw.device("meta"):
        m = nn.Linear(3, 2)
    m.load_state_dict(ref.state_dict(), assign=True)
    x = fw.randn(4, 3)
    with fw.no_grad():
        np.testing.assert_array_equal(m(x).numpy(), ref(x).numpy())
