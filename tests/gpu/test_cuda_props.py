"""fw.cuda device properties, reserved-memory statistics and the stream context manager,
and saved-tensor hooks that move saved tensors off the device (save_on_cpu)."""

import gc

import numpy as np
import pytest

import framework as fw
from framework.autograd.graph import save_on_cpu, saved_tensors_hooks


def test_device_properties():
    p = fw.cuda.get_device_properties()
    assert p.name == fw.cuda.get_device_name()
    assert (p.major, p.minor) == fw.cuda.get_device_capability()
    assert p.total_memory > 0 and p.multi_processor_count >= 1 and p.warp_size == 32
    assert p.is_simulated == fw.cuda.is_simulated()
    if p.is_simulated:
        assert "simulated" in p.name and "simulated=True" in repr(p)
    assert fw.cuda.get_device_properties("cuda:0").name == p.name
    assert fw.cuda.get_device_properties(fw.device("cuda")).major == p.major
    with pytest.raises(fw.DeviceError, match="cuda:7 is not available"):
        fw.cuda.get_device_properties(7)
    with pytest.raises(ValueError, match="expected a cuda device"):
        fw.cuda.get_device_properties("cpu")


def test_is_bf16_supported(monkeypatch):
    """nanoGPT's ``'bfloat16' if torch.cuda.is_available() and torch.cuda.is_bf16_supported()``."""
    major = fw.cuda.get_device_capability()[0]
    assert fw.cuda.is_bf16_supported() is True
    assert fw.cuda.is_bf16_supported(including_emulation=False) is (major >= 8)
    monkeypatch.setattr(fw.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert fw.cuda.is_bf16_supported(False) is False and fw.cuda.is_bf16_supported() is True
    monkeypatch.setattr(fw.cuda, "is_available", lambda: False)
    assert fw.cuda.is_bf16_supported() is False


def test_memory_reserved_tracks_the_pool():
    gc.collect()
    fw.cuda.synchronize()
    x = fw.empty(1 << 20, device="cuda")
    fw.cuda.synchronize()
    assert fw.cuda.memory_reserved() >= fw.cuda.memory_allocated() >= 4 << 20
    assert fw.cuda.max_memory_reserved() >= fw.cuda.memory_reserved()
    del x
    gc.collect()
    fw.cuda.reset_peak_memory_stats()
    assert fw.cuda.max_memory_reserved() >= fw.cuda.memory_reserved()
    if fw.cuda.is_simulated():  # nothing cached: reserved is what is allocated
        assert fw.cuda.memory_reserved() == fw.cuda.memory_allocated()
        assert fw.cuda.max_memory_reserved() == fw.cuda.max_memory_allocated()


def test_stream_context_accepts_only_the_current_stream():
    cur = fw.cuda.current_stream()
    assert cur == fw.cuda.current_stream()
    with fw.cuda.stream(cur) as s:
        y = fw.ones(4, device="cuda") * 2
        assert s is cur
    with fw.cuda.stream(None):
        pass
    assert y.sum().item() == 8.0
    other = fw.cuda.Stream(cur.cuda_stream + 16)
    with pytest.raises(NotImplementedError, match="one stream per process"):
        fw.cuda.stream(other)


def test_save_on_cpu_moves_saved_tensors_off_the_device():
    fw.manual_seed(0)
    x = fw.randn(256, device="cuda", requires_grad=True)
    w = fw.randn(256, device="cuda", requires_grad=True)
    devices = []

    def pack(t):
        packed = t.detach().to("cpu")
        devices.append((t.device.type, packed.device.type))
        return (t.device, packed)

    def unpack(p):
        return p[1].to(p[0])

    with saved_tensors_hooks(pack, unpack):
        y = ((x * w).exp() * w).sum()
    assert devices and all(d == ("cuda", "cpu") for d in devices)
    y.backward()
    assert x.grad.device.type == "cuda"
    xv, wv = x.detach().cpu().numpy(), w.detach().cpu().numpy()
    np.testing.assert_allclose(x.grad.cpu().numpy(), wv * wv * np.exp(xv * wv), rtol=1e-5)


def test_save_on_cpu_frees_device_memory():
    fw.manual_seed(0)
    x = fw.randn(1 << 16, device="cuda", requires_grad=True)

    def peak_after_forward(ctx):
        gc.collect()
        base = fw.cuda.memory_allocated()
        with ctx:
            h = x.exp()
            h = (h * h).exp()
            y = (h * x).sum()
        del h
        gc.collect()
        held = fw.cuda.memory_allocated() - base
        y.backward()
        return held

    class Null:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    plain = peak_after_forward(Null())
    grad_plain = x.grad.cpu().numpy().copy()
    x.grad = None
    on_cpu = peak_after_forward(save_on_cpu())
    np.testing.assert_allclose(x.grad.cpu().numpy(), grad_plain, rtol=1e-5)
    assert plain >= 3 * 4 * (1 << 16)      # three intermediates held on the device
    assert on_cpu < plain / 2              # only the result (and nothing saved) stays there


@pytest.mark.gpu
def test_real_gpu_properties_and_pool():
    p = fw.cuda.get_device_properties(0)
    assert not p.is_simulated and p.major >= 7 and p.total_memory > 1 << 30
    assert p.multi_processor_count >= 8 and p.L2_cache_size > 0
    x = fw.empty(64 << 20, device="cuda")
    fw.cuda.synchronize()
    assert fw.cuda.memory_reserved() >= 256 << 20
    del x
    gc.collect()
    fw.cuda.synchronize()
    assert fw.cuda.memory_reserved() >= 256 << 20          # cached by the pool
    fw.cuda.empty_cache()
    fw.cuda.reset_peak_memory_stats()
    assert fw.cuda.max_memory_reserved() <= fw.cuda.memory_reserved() + (64 << 20)
