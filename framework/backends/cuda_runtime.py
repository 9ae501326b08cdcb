"""CUDA device memory, copies, streams and events: real through NVIDIA's ``cuda-bindings``
(imported lazily), or simulated in host memory when ``FW_TRITON_INTERPRET=1``.

Real mode allocates from the device's default memory pool on the current stream
(``cuMemAllocAsync``/``cuMemFreeAsync``, stream-ordered, never managed memory) and keeps
freed memory in the pool (release threshold = max). The simulated device allocates NumPy
arrays, so Triton's interpreter can run every kernel over them. Both count bytes for
``memory_allocated`` / ``max_memory_allocated``.
"""

from __future__ import annotations

import os
import threading
import weakref

import numpy as np

from ..errors import DeviceError

SIMULATED = os.environ.get("FW_TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")
# Simulated device only: guard bytes after every allocation, checked after each generated
# kernel, so an out-of-bounds store is an error instead of silent heap corruption.
DEBUG_BOUNDS = SIMULATED and os.environ.get("FW_CUDA_DEBUG_BOUNDS", "0") == "1"
_GUARD, _GUARD_BYTE = 64, 0xA5
_LIVE: weakref.WeakSet = weakref.WeakSet()


def enable_interpreter() -> None:
    """Switch Triton to its interpreter (must precede any ``@triton.jit``)."""
    os.environ["TRITON_INTERPRET"] = "1"
    import sys
    if "triton" in sys.modules:
        import triton
        triton.knobs.runtime.interpret = True


if SIMULATED:
    enable_interpreter()


class _Stats:
    allocated = 0
    peak = 0
    allocations = 0  # Allocation objects made so far (CUDA-graph tests count them)
    lock = threading.Lock()


def _count(nbytes: int) -> None:
    with _Stats.lock:
        _Stats.allocated += nbytes
        if _Stats.allocated > _Stats.peak:
            _Stats.peak = _Stats.allocated


def allocation_count() -> int:
    """Number of device allocations made since the process started."""
    return _Stats.allocations


# The CUDA graph capture in progress (a ``framework.cuda_graphs`` capture object) or None.
# It supplies ``allocate(alloc)`` (memory from the graph's private pool), ``record(fn)``
# (the simulated device records work instead of doing it) and ``defer(fn)`` (driver calls
# that cannot happen during a capture run after it ends).
CAPTURE = None


def not_capturing(what: str) -> None:
    """Raise DeviceError naming ``what`` when a CUDA graph is being captured: ``what``
    cannot be part of a graph (a host synchronization, a host<->device copy, ...)."""
    if CAPTURE is not None:
        raise DeviceError(f"{what} is not allowed while a CUDA graph is being captured "
                          "(captured work does not run until replay, and a graph replays "
                          "device work only); move it outside the capture")


def _sim(run) -> None:
    """Simulated device work: done now, or recorded into the graph being captured."""
    if CAPTURE is not None:
        CAPTURE.record(run)
    else:
        run()


def memory_allocated() -> int:
    """Bytes held by live device buffers."""
    return _Stats.allocated


def max_memory_allocated() -> int:
    """Peak of :func:`memory_allocated` since the last reset."""
    return _Stats.peak


def reset_peak_memory_stats() -> None:
    """Restart peak tracking from the current allocation."""
    _Stats.peak = _Stats.allocated


# ---------------------------------------------------------------------------------------
# the driver (real mode)
_driver = None
_state: dict = {}


def _cu():
    """``cuda.bindings.driver``, or a DeviceError naming what is missing."""
    global _driver
    if _driver is None:
        try:
            from cuda.bindings import driver
        except ImportError:
            raise DeviceError("device 'cuda' is not available: NVIDIA's cuda-bindings package is "
                              "not installed (pip install 'framework[cuda]'), and "
                              "FW_TRITON_INTERPRET=1 (simulated device) is not set") from None
        _driver = driver
    return _driver


def check(result, what: str):
    """Unpack a cuda-bindings result tuple, raising DeviceError on failure."""
    err = result[0]
    if int(err) != 0:
        name = getattr(err, "name", str(err))
        raise DeviceError(f"CUDA {what} failed: {name}")
    rest = result[1:]
    return rest[0] if len(rest) == 1 else (rest or None)


def init(index: int = 0):
    """Initialise the driver, the primary context of device ``index``, a stream and the
    memory pool (once). Raises DeviceError naming the missing piece."""
    if SIMULATED:
        return None
    key = ("dev", index)
    if key in _state:
        return _state[key]
    cu = _cu()
    try:
        err = cu.cuInit(0)[0]
    except Exception as exc:  # library present but no driver (libcuda.so missing)
        raise DeviceError(f"device 'cuda' is not available: the NVIDIA driver could not be "
                          f"loaded ({exc})") from None
    if int(err) != 0:
        raise DeviceError(f"device 'cuda' is not available: no NVIDIA driver or GPU "
                          f"(cuInit: {getattr(err, 'name', err)})")
    count = check(cu.cuDeviceGetCount(), "cuDeviceGetCount")
    if index >= count:
        raise DeviceError(f"device 'cuda:{index}' is not available: {count} GPU(s) found")
    dev = check(cu.cuDeviceGet(index), "cuDeviceGet")
    ctx = check(cu.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
    check(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    stream = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate")
    pool = check(cu.cuDeviceGetDefaultMemPool(dev), "cuDeviceGetDefaultMemPool")
    threshold = cu.cuuint64_t(2 ** 64 - 1)
    check(cu.cuMemPoolSetAttribute(pool, cu.CUmemPool_attribute.CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                                   threshold), "cuMemPoolSetAttribute")
    st = dict(device=dev, context=ctx, stream=stream, pool=pool, index=index)
    _state[key] = st
    return st


def device_count() -> int:
    """Number of usable GPUs (1 for the simulated device, 0 when none)."""
    if SIMULATED:
        return 1
    try:
        cu = _cu()
        if int(cu.cuInit(0)[0]) != 0:
            return 0
        return int(check(cu.cuDeviceGetCount(), "cuDeviceGetCount"))
    except Exception:
        return 0


def current_stream(index: int = 0) -> int:
    """The handle (int) of the stream kernels and copies run on (0 when simulated)."""
    if SIMULATED:
        return 0
    return int(init(index)["stream"])


def synchronize(index: int = 0) -> None:
    """Wait until all queued work on the device is done."""
    not_capturing("synchronizing with the device (fw.cuda.synchronize())")
    if SIMULATED:
        return
    check(_cu().cuStreamSynchronize(init(index)["stream"]), "cuStreamSynchronize")


# ---------------------------------------------------------------------------------------
# allocations
class Allocation:
    """``nbytes`` of device memory (a NumPy byte array when simulated); freed when the
    last buffer viewing it is garbage collected."""

    __slots__ = ("ptr", "nbytes", "host", "device", "guard", "__weakref__")

    def __init__(self, nbytes: int, index: int = 0):
        self.nbytes = int(nbytes)
        self.device = index
        _Stats.allocations += 1
        if CAPTURE is not None:  # from the capturing graph's private pool
            CAPTURE.allocate(self)
        elif SIMULATED:
            self.host, self.ptr, self.guard = host_block(self.nbytes)
            if DEBUG_BOUNDS:
                _LIVE.add(self)
            weakref.finalize(self, _count, -self.nbytes)
        else:
            st = init(index)
            self.host = None
            self.ptr = int(check(_cu().cuMemAllocAsync(max(self.nbytes, 1), st["stream"]),
                                 "cuMemAllocAsync"))
            weakref.finalize(self, _free, self.ptr, self.nbytes, index)
        _count(self.nbytes)


def host_block(nbytes: int) -> tuple:
    """Simulated device memory: ``(host bytes, address, guard bytes)``, 16-byte aligned like
    cudaMalloc (vectorised loads assume it), zero-filled, guard bytes after it under
    FW_CUDA_DEBUG_BOUNDS."""
    extra = _GUARD if DEBUG_BOUNDS else 0
    raw = np.zeros(nbytes + 16 + extra, np.uint8)
    off = (-raw.ctypes.data) % 16
    host = raw[off:off + nbytes]
    guard = raw[off + nbytes:off + nbytes + extra]
    guard[:] = _GUARD_BYTE
    return host, int(host.ctypes.data), guard


def check_bounds(kernel_name: str) -> None:
    """Raise DeviceError if a kernel wrote past the end of a live simulated allocation."""
    for a in list(_LIVE):
        if (a.guard != _GUARD_BYTE).any():
            a.guard[:] = _GUARD_BYTE
            raise DeviceError(f"kernel {kernel_name} wrote past the end of a {a.nbytes}-byte "
                              "device buffer (FW_CUDA_DEBUG_BOUNDS)")


if DEBUG_BOUNDS:
    from compiler.codegen import triton_launch as _tl
    _tl.AFTER_LAUNCH.append(check_bounds)


def _free(ptr: int, nbytes: int, index: int) -> None:
    _count(-nbytes)
    if CAPTURE is not None:  # a free on the capturing stream would enter the graph
        CAPTURE.defer(lambda: _free_now(ptr, index))
        return
    _free_now(ptr, index)


def _free_now(ptr: int, index: int) -> None:
    st = _state.get(("dev", index))
    if st is not None and _driver is not None:
        _driver.cuMemFreeAsync(ptr, st["stream"])


def copy_h2d(alloc: Allocation, byte_offset: int, array: np.ndarray) -> None:
    """Copy the contiguous host ``array`` into ``alloc`` at ``byte_offset``."""
    not_capturing("copying host memory to the device (fw.tensor(..., device='cuda'), "
                  ".to('cuda'))")
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    if SIMULATED:
        alloc.host[byte_offset:byte_offset + array.nbytes] = array.reshape(-1).view(np.uint8)
        return
    st = init(alloc.device)
    check(_cu().cuMemcpyHtoDAsync(alloc.ptr + byte_offset, array.ctypes.data, array.nbytes,
                                  st["stream"]), "cuMemcpyHtoDAsync")
    # pageable source: the call returns once the data is staged; keep ordering simple
    synchronize(alloc.device)


def copy_d2h(alloc: Allocation, byte_offset: int, out: np.ndarray) -> np.ndarray:
    """Copy ``out.nbytes`` bytes from ``alloc`` at ``byte_offset`` into host ``out``."""
    not_capturing("reading device memory on the host (.item(), .tolist(), .numpy(), .cpu())")
    if SIMULATED:
        out.reshape(-1).view(np.uint8)[:] = alloc.host[byte_offset:byte_offset + out.nbytes]
        return out
    st = init(alloc.device)
    check(_cu().cuMemcpyDtoHAsync(out.ctypes.data, alloc.ptr + byte_offset, out.nbytes,
                                  st["stream"]), "cuMemcpyDtoHAsync")
    synchronize(alloc.device)
    return out


def copy_d2d(dst: Allocation, dst_off: int, src: Allocation, src_off: int, nbytes: int) -> None:
    """Device-to-device byte copy (stream ordered)."""
    if SIMULATED:
        d, s = dst.host, src.host  # the memory, not the allocations (a graph keeps raw memory)

        def run():
            d[dst_off:dst_off + nbytes] = s[src_off:src_off + nbytes]
        return _sim(run)
    st = init(dst.device)
    check(_cu().cuMemcpyDtoDAsync(dst.ptr + dst_off, src.ptr + src_off, nbytes, st["stream"]),
          "cuMemcpyDtoDAsync")


# ---------------------------------------------------------------------------------------
# events
class Event:
    """A CUDA event for timing (``elapsed_time`` in milliseconds); host clock when simulated."""

    def __init__(self, enable_timing: bool = False, index: int = 0):
        self.enable_timing = enable_timing
        self.index = index
        self._event = None
        self._t = None
        if not SIMULATED:
            cu = _cu()
            init(index)
            flags = cu.CUevent_flags.CU_EVENT_DEFAULT if enable_timing else \
                cu.CUevent_flags.CU_EVENT_DISABLE_TIMING
            self._event = check(cu.cuEventCreate(flags), "cuEventCreate")

    def record(self, stream=None) -> None:
        """Mark this point of the stream."""
        not_capturing("recording a CUDA event")
        if SIMULATED:
            import time
            self._t = time.perf_counter()
            return
        s = init(self.index)["stream"] if stream is None else stream
        check(_cu().cuEventRecord(self._event, s), "cuEventRecord")

    def synchronize(self) -> None:
        """Wait until the work before the recorded point is done."""
        not_capturing("waiting for a CUDA event")
        if not SIMULATED:
            check(_cu().cuEventSynchronize(self._event), "cuEventSynchronize")

    def query(self) -> bool:
        """True when the recorded work has completed."""
        if SIMULATED:
            return True
        return int(_cu().cuEventQuery(self._event)[0]) == 0

    def elapsed_time(self, end: Event) -> float:
        """Milliseconds between this event and ``end`` (both recorded)."""
        if not (self.enable_timing and end.enable_timing):
            raise DeviceError("elapsed_time: both events need enable_timing=True")
        if SIMULATED:
            if self._t is None or end._t is None:
                raise DeviceError("elapsed_time: record both events first")
            return (end._t - self._t) * 1000.0
        end.synchronize()
        return float(check(_cu().cuEventElapsedTime(self._event, end._event),
                           "cuEventElapsedTime"))

    def __del__(self):
        # getattr: a constructor that raised (no device) never set _event
        if getattr(self, "_event", None) is not None and _driver is not None:
            try:
                _driver.cuEventDestroy(self._event)
            except Exception:
                pass


def memset_d8(alloc: Allocation, byte_offset: int, value: int, nbytes: int) -> None:
    """Set ``nbytes`` bytes to ``value`` (used to flush the L2 cache when benchmarking)."""
    if SIMULATED:
        h = alloc.host

        def run():
            h[byte_offset:byte_offset + nbytes] = value
        return _sim(run)
    st = init(alloc.device)
    check(_cu().cuMemsetD8Async(alloc.ptr + byte_offset, value, nbytes, st["stream"]),
          "cuMemsetD8Async")


def memset_d32(alloc: Allocation, byte_offset: int, bits: int, count: int) -> None:
    """Set ``count`` 32-bit words at ``byte_offset`` (4-byte aligned) to ``bits``: an
    asynchronous write of a host value (a CUDA graph's device scalars) without a kernel."""
    if SIMULATED:
        h = alloc.host

        def run():
            h[byte_offset:byte_offset + 4 * count].view(np.uint32)[:] = bits
        return _sim(run)
    st = init(alloc.device)
    check(_cu().cuMemsetD32Async(alloc.ptr + byte_offset, int(bits), count, st["stream"]),
          "cuMemsetD32Async")
