"""``"cpu:0"`` (what ``f"{device}:{local_rank}"`` gives in device-agnostic scripts) places
tensors on the one CPU device, as PyTorch does: ``tensor.device`` is ``cpu``, with no index."""

import numpy as np

import framework as fw
from framework import nn


def test_cpu_with_an_index_is_the_cpu_for_tensors_and_modules():
    dev = fw.device("cpu:0")
    assert dev.type == "cpu" and dev.index == 0 and dev != fw.device("cpu")
    x = fw.ones(2, 3).to(dev)
    assert x.device is fw.device("cpu") and str(x.device) == "cpu"
    assert fw.zeros(2, device="cpu:0").device is fw.device("cpu")
    emb = nn.Embedding(5, 3).to(dev)
    assert emb.weight.device is fw.device("cpu")
    idx = fw.tensor([1, 4], device=dev)
    out = emb(idx) + fw.ones(3)  # tensors made on "cpu" and "cpu:0" mix
    np.testing.assert_allclose(out.detach().numpy(), emb.weight.detach().numpy()[[1, 4]] + 1)


def test_a_device_named_without_index_has_none_and_tensors_land_on_index_0():
    """As torch.device: "cuda" has no index (so f"{dev}:{rank}" names a device), while a
    tensor put on "cuda" lives on the current device, cuda:0."""
    dev = fw.device("cuda")
    assert dev.index is None and str(dev) == "cuda" and repr(dev) == "device(type='cuda')"
    assert fw.device(f"{dev}:0") is fw.device("cuda", 0) and fw.device("cuda:0").index == 0
    assert dev != fw.device("cuda:0")
    from framework.device import to_device
    assert to_device("cuda") is fw.device("cuda:0") and to_device(dev) is fw.device("cuda:0")
