"""``fw.accelerator`` (torch.accelerator): the device-agnostic selection idiom of the
pytorch/examples scripts, with and without a usable accelerator."""

import pytest

import framework as fw
from framework import accelerator, cuda
from framework.errors import ArgumentError


def test_selection_idiom_follows_cuda_availability(monkeypatch):
    for avail in (False, True):
        monkeypatch.setattr(cuda, "is_available", lambda a=avail: a)
        monkeypatch.setattr(cuda, "device_count", lambda: 1)
        assert accelerator.is_available() is avail
        assert accelerator.device_count() == (1 if avail else 0)
        device = accelerator.current_accelerator() if accelerator.is_available() \
            else fw.device("cpu")
        assert device.type == ("cuda" if avail else "cpu")
        # the build's accelerator is cuda; check_available=True asks the runtime too
        assert accelerator.current_accelerator() is fw.device("cuda")
        got = accelerator.current_accelerator(check_available=True)
        assert got == (fw.device("cuda") if avail else None)


def test_device_index_api(monkeypatch):
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 1)
    assert accelerator.current_device_index() == 0 == accelerator.current_device_idx()
    accelerator.set_device_index(0)
    accelerator.set_device_idx("cuda:0")
    with accelerator.device_index(0), accelerator.device_index(None):
        pass
    with pytest.raises(ArgumentError, match="out of range"):
        accelerator.set_device_index(3)
    with pytest.raises(ArgumentError, match="accelerator device"):
        accelerator.set_device_index("cpu")
    monkeypatch.setattr(cuda, "device_count", lambda: 2)
    with pytest.raises(NotImplementedError, match="switching to device 1"):
        accelerator.set_device_index(1)
