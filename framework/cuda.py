"""``fw.cuda``: device queries, synchronisation, memory statistics, events, the CUDA random
stream, and the Triton driver that lets Triton launch and autotune without torch.

With ``FW_TRITON_INTERPRET=1`` "cuda" is a simulated device in host memory whose kernels
run in Triton's interpreter (one device; events time with the host clock).
"""

from __future__ import annotations

import weakref

from . import random as _random_module
from .backends import cuda_runtime as _rt
from .cuda_graphed import make_graphed_callables  # noqa: F401  (CUDA graphs, as torch.cuda)
from .cuda_graphs import (CUDAGraph, graph, graph_pool_handle,  # noqa: F401
                          is_current_stream_capturing)
from .errors import DeviceError

__all__ = ["is_available", "device_count", "synchronize", "memory_allocated",
           "max_memory_allocated", "reset_peak_memory_stats", "Event", "Stream",
           "current_stream", "manual_seed", "manual_seed_all", "seed", "initial_seed",
           "get_rng_state", "set_rng_state", "get_rng_state_all", "set_rng_state_all",
           "is_simulated", "get_device_name", "get_device_capability", "current_device",
           "empty_cache", "install_triton_driver", "memory_reserved", "max_memory_reserved",
           "get_device_properties", "stream", "CUDAGraph", "graph", "graph_pool_handle",
           "is_current_stream_capturing", "make_graphed_callables", "is_bf16_supported"]


def __getattr__(name):
    if name == "amp":  # torch.cuda.amp's spellings: autocast, GradScaler, custom_fwd/bwd
        from .amp import device_namespace
        return device_namespace("cuda")
    raise AttributeError(f"module 'framework.cuda' has no attribute {name!r}")


def is_simulated() -> bool:
    """True when "cuda" is the interpreter-backed simulated device."""
    return _rt.SIMULATED


def is_available() -> bool:
    """True when a GPU (or the simulated device) can be used."""
    try:
        _ensure()
        return True
    except DeviceError:
        return False


def _ensure(index: int = 0) -> None:
    from .backends import get_backend
    get_backend("cuda")
    _rt.init(index)
    install_triton_driver()


def device_count() -> int:
    """Number of usable GPUs."""
    return _rt.device_count()


def current_device() -> int:
    """Index of the device kernels run on (always 0: one device per process)."""
    return 0


def get_device_name(device=None) -> str:
    """The GPU's name."""
    if _rt.SIMULATED:
        return "simulated (Triton interpreter)"
    st = _rt.init(0)
    raw = _rt.check(_rt._cu().cuDeviceGetName(256, st["device"]), "cuDeviceGetName")
    return raw.split(b"\0", 1)[0].decode()


def get_device_capability(device=None) -> tuple[int, int]:
    """(major, minor) compute capability (the simulated device reports sm_90)."""
    if _rt.SIMULATED:
        return (9, 0)
    cu = _rt._cu()
    st = _rt.init(0)
    attr = cu.CUdevice_attribute
    major = _rt.check(cu.cuDeviceGetAttribute(
        attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, st["device"]), "cuDeviceGetAttribute")
    minor = _rt.check(cu.cuDeviceGetAttribute(
        attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, st["device"]), "cuDeviceGetAttribute")
    return int(major), int(minor)


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """True when the GPU computes in bfloat16: compute capability 8.0+ (Ampere), or any GPU
    with ``including_emulation`` (as PyTorch); False without a GPU (nanoGPT's
    ``'bfloat16' if torch.cuda.is_available() and torch.cuda.is_bf16_supported()``)."""
    if not is_available():
        return False
    return get_device_capability()[0] >= 8 or bool(including_emulation)


def synchronize(device=None) -> None:
    """Wait for all queued kernels and copies to finish."""
    _ensure()
    _rt.synchronize()


def memory_allocated(device=None) -> int:
    """Bytes held by live device tensors."""
    return _rt.memory_allocated()


def max_memory_allocated(device=None) -> int:
    """Peak bytes held since the start or the last :func:`reset_peak_memory_stats`."""
    return _rt.max_memory_allocated()


def reset_peak_memory_stats(device=None) -> None:
    """Restart the peaks (allocated, and the pool's reserved) from the current values."""
    _rt.reset_peak_memory_stats()
    if not _rt.SIMULATED and _rt._state:
        cu = _rt._cu()
        st = _rt.init(0)
        attr = cu.CUmemPool_attribute
        for which in (attr.CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH, attr.CU_MEMPOOL_ATTR_USED_MEM_HIGH):
            _rt.check(cu.cuMemPoolSetAttribute(st["pool"], which, cu.cuuint64_t(0)),
                      "cuMemPoolSetAttribute")


def _as_int(value) -> int:
    """A cuda-bindings integer wrapper (``cuuint64_t``, ...) as a Python int."""
    try:
        return int(value)
    except TypeError:
        return int(value.value)


def _pool_attribute(name: str) -> int:
    cu = _rt._cu()
    st = _rt.init(0)
    attr = getattr(cu.CUmemPool_attribute, name)
    return _as_int(_rt.check(cu.cuMemPoolGetAttribute(st["pool"], attr),
                             "cuMemPoolGetAttribute"))


def memory_reserved(device=None) -> int:
    """Bytes the memory pool holds from the driver (allocated plus cached). On the
    simulated device nothing is cached: the same as :func:`memory_allocated`."""
    if _rt.SIMULATED:
        return _rt.memory_allocated()
    return _pool_attribute("CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT")


def max_memory_reserved(device=None) -> int:
    """Peak of :func:`memory_reserved` since the start or the last
    :func:`reset_peak_memory_stats` (simulated device: :func:`max_memory_allocated`)."""
    if _rt.SIMULATED:
        return _rt.max_memory_allocated()
    return _pool_attribute("CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH")


def _device_index(device) -> int:
    """The GPU index named by ``device`` (None, an int, "cuda", "cuda:N" or fw.device)."""
    from .device import device as _device
    from .errors import ArgumentError
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    d = _device(device) if isinstance(device, str) else device
    if getattr(d, "type", None) != "cuda":
        raise ArgumentError(f"expected a cuda device, got {device!r}")
    return d.index if d.index is not None else current_device()


class _CudaDeviceProperties:
    """What :func:`get_device_properties` returns (``torch.cuda``'s fields)."""

    def __init__(self, name, major, minor, total_memory, multi_processor_count,
                 simulated=False, warp_size=32, L2_cache_size=0):  # noqa: N803
        self.name, self.major, self.minor = name, major, minor
        self.total_memory = total_memory
        self.multi_processor_count = multi_processor_count
        self.warp_size = warp_size
        self.L2_cache_size = L2_cache_size
        self.is_simulated = simulated

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, "
                f"minor={self.minor}, total_memory={self.total_memory // (1024 * 1024)}MB, "
                f"multi_processor_count={self.multi_processor_count}"
                f"{', simulated=True' if self.is_simulated else ''})")


def get_device_properties(device=None) -> _CudaDeviceProperties:
    """Name, compute capability, memory and SM count of a GPU. The simulated device
    answers with ``is_simulated=True``, its name saying so, sm_90, the host's memory and
    its CPU count as the "multiprocessors"."""
    index = _device_index(device)
    count = device_count()
    if not 0 <= index < max(count, 1):
        raise DeviceError(f"get_device_properties: device cuda:{index} is not available "
                          f"({count} GPU(s) found)")
    if _rt.SIMULATED:
        import os
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = 0
        return _CudaDeviceProperties(get_device_name(), 9, 0, int(total), os.cpu_count() or 1,
                                     simulated=True)
    cu = _rt._cu()
    _rt.init(0)
    dev = _rt.check(cu.cuDeviceGet(index), "cuDeviceGet")
    attr = cu.CUdevice_attribute

    def get(a):
        return int(_rt.check(cu.cuDeviceGetAttribute(getattr(attr, a), dev),
                             "cuDeviceGetAttribute"))

    raw = _rt.check(cu.cuDeviceGetName(256, dev), "cuDeviceGetName")
    return _CudaDeviceProperties(
        raw.split(b"\0", 1)[0].decode(),
        get("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR"),
        get("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR"),
        _as_int(_rt.check(cu.cuDeviceTotalMem(dev), "cuDeviceTotalMem")),
        get("CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT"),
        warp_size=get("CU_DEVICE_ATTRIBUTE_WARP_SIZE"),
        L2_cache_size=get("CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE"))


def empty_cache() -> None:
    """Return cached pool memory to the driver (real device; no-op when simulated)."""
    if _rt.SIMULATED:
        return
    st = _rt.init(0)
    _rt.synchronize()
    _rt.check(_rt._cu().cuMemPoolTrimTo(st["pool"], 0), "cuMemPoolTrimTo")


class Stream:
    """The stream this process launches on (``cuda_stream`` is its raw handle)."""

    def __init__(self, handle: int):
        self.cuda_stream = handle

    def synchronize(self) -> None:
        """Wait until the stream is idle."""
        _rt.synchronize()

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream) and other.cuda_stream == self.cuda_stream

    def __hash__(self) -> int:
        return hash(self.cuda_stream)

    def __repr__(self) -> str:
        return f"<fw.cuda.Stream cuda_stream={self.cuda_stream:#x}>"


class stream:  # noqa: N801  (named like torch.cuda.stream)
    """Context manager selecting the stream kernels are queued on. The runtime launches
    every kernel and copy on one stream per process, so only that stream (or None, a
    no-op) is accepted; another stream raises NotImplementedError."""

    def __init__(self, stream):
        self.stream = stream
        if stream is None:
            return
        handle = getattr(stream, "cuda_stream", stream)
        _ensure()
        if handle != _rt.current_stream():
            raise NotImplementedError(
                f"fw.cuda.stream: the runtime queues all work on one stream per process "
                f"({_rt.current_stream():#x}); switching to stream {handle:#x} is not "
                f"supported")

    def __enter__(self):
        return self.stream

    def __exit__(self, *exc):
        return False


def current_stream(device=None) -> Stream:
    """The stream kernels and copies are queued on."""
    _ensure()
    return Stream(_rt.current_stream())


class Event(_rt.Event):
    """``fw.cuda.Event(enable_timing=True)``: ``record()``, ``synchronize()``,
    ``elapsed_time(end)`` in milliseconds."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False):
        _ensure()
        super().__init__(enable_timing)

    def record(self, stream=None) -> None:
        """Mark the current point of ``stream`` (default: the current stream)."""
        super().record(None if stream is None else getattr(stream, "cuda_stream", stream))


# -- random numbers (Philox: a seed and a counter offset) -----------------------------------
class _Philox:
    seed = 67280421310721
    offset = 0


_DEFAULT = _Philox()
if _random_module.last_manual_seed is not None:  # fw.manual_seed ran before this loaded
    _DEFAULT.seed = _random_module.last_manual_seed % (2 ** 63)
_PER_GENERATOR: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def manual_seed(seed: int) -> None:
    """Seed the CUDA random stream."""
    _DEFAULT.seed = int(seed) % (2 ** 63)
    _DEFAULT.offset = 0


manual_seed_all = manual_seed


def get_rng_state(device=None):
    """The CUDA random stream's state as a uint8 tensor (on the CPU, as PyTorch's): the
    Philox seed and counter offset, 8 little-endian bytes each."""
    import numpy as np

    from .creation import tensor
    raw = np.array([_DEFAULT.seed, _DEFAULT.offset], "<i8").view(np.uint8)
    return tensor(raw, dtype="uint8")


def set_rng_state(new_state, device=None) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    import numpy as np

    from .errors import ArgumentError
    raw = np.asarray(new_state.numpy() if hasattr(new_state, "numpy") else new_state)
    if raw.dtype != np.uint8 or raw.shape != (16,):
        raise ArgumentError(f"cuda.set_rng_state: expected the 16-byte uint8 tensor "
                            f"get_rng_state() returns, got {raw.dtype} of shape {raw.shape}")
    _DEFAULT.seed, _DEFAULT.offset = (int(v) for v in raw.view("<i8"))


def get_rng_state_all() -> list:
    """:func:`get_rng_state` of every device (one)."""
    return [get_rng_state()]


def set_rng_state_all(new_states) -> None:
    """Restore states returned by :func:`get_rng_state_all`."""
    for s in new_states:
        set_rng_state(s)


def seed() -> int:
    """Seed the CUDA stream from OS entropy; return the seed."""
    import numpy as np
    manual_seed(int(np.random.SeedSequence().entropy) % (2 ** 63))
    return _DEFAULT.seed


def initial_seed() -> int:
    """The CUDA stream's seed."""
    return _DEFAULT.seed


def philox_state(generator, n: int) -> tuple[int, int]:
    """(seed, offset) for drawing ``n`` numbers, advancing the stream past them."""
    _rt.not_capturing("drawing random numbers on the device (a graph would replay the same "
                      "numbers: draw them outside the capture and pass them in)")
    if generator is None:
        st = _DEFAULT
    else:
        st = _PER_GENERATOR.get(generator)
        if st is None or st.seed != generator.initial_seed() % (2 ** 63):
            st = _PER_GENERATOR[generator] = _Philox()
            st.seed = generator.initial_seed() % (2 ** 63)
    seed_, off = st.seed, st.offset
    st.offset += (int(n) + 3) // 4 * 4  # Philox yields 4 numbers per counter
    return seed_, off


# -- the Triton driver ------------------------------------------------------------------
_DRIVER = None


class _DeviceInterface:
    """What ``triton.testing.do_bench`` asks of ``torch.cuda``."""

    Event = Event

    @staticmethod
    def synchronize(device=None):
        _rt.synchronize()

    @staticmethod
    def current_device():
        return 0


def _make_driver_class():
    from triton.backends.nvidia import driver as nvd

    class FwCudaDriver(nvd.CudaDriver):
        """Triton's CUDA driver answering device/stream/benchmark questions through
        cuda-bindings instead of torch."""

        def __init__(self):
            self.utils = nvd.CudaUtils()
            self.launcher_cls = nvd.CudaLauncher
            self.get_device_capability = lambda device=0: get_device_capability(device)
            self.get_current_stream = lambda device=None: _rt.current_stream()
            self.get_current_device = lambda: 0
            self.set_current_device = lambda device: None

        def get_device_interface(self):
            return _DeviceInterface

        def get_empty_cache_for_benchmark(self):
            from .backends.cuda import empty
            return empty((256 * 1024 * 1024 // 4,), "int32")

        def clear_cache(self, cache):
            _rt.memset_d8(cache.alloc, 0, 0, cache.nbytes)

    return FwCudaDriver


def install_triton_driver() -> None:
    """Make Triton launch on our stream and benchmark with our events (real GPU only)."""
    global _DRIVER
    if _rt.SIMULATED or _DRIVER is not None:
        return
    try:
        import triton
        cls = _make_driver_class()
    except ImportError as e:
        raise DeviceError(f"device 'cuda' needs Triton (>= 3.6) with its NVIDIA backend: {e}") \
            from None
    _DRIVER = cls()
    triton.runtime.driver.set_active(_DRIVER)
