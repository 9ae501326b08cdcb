"""CUDA graphs: ``fw.cuda.CUDAGraph``, ``fw.cuda.graph``, ``fw.cuda.graph_pool_handle`` and
``fw.cuda.is_current_stream_capturing``, with PyTorch's names and semantics.

A capture records the device work issued on the framework's stream between
``capture_begin`` and ``capture_end`` without running it; ``replay()`` runs exactly that
work again on the same memory. Nothing is allocated during a replay: tensors created inside
the capture take their memory from the graph's **private pool** and keep it for the
graph's life.

- Real GPU: stream capture through cuda-bindings (``cuStreamBeginCapture`` /
  ``cuStreamEndCapture`` / ``cuGraphInstantiate`` / ``cuGraphLaunch``). The pool's blocks
  come from ``cuMemAlloc`` in relaxed capture mode (what PyTorch's allocator does), so the
  graph holds kernel, copy and memset nodes and no memory nodes; device memory freed during
  the capture is returned to the driver after it ends (a free would otherwise enter the
  graph).
- Simulated device (``FW_TRITON_INTERPRET=1``): the capture records each Triton launch
  (Triton's interpreter is intercepted) and each device copy/memset as a closure over the
  same memory, and ``replay()`` re-issues them in order. The pool logic (blocks reused in
  stream order, kept while the graph lives) is the same code as on a GPU.

On both, what a graph cannot hold raises ``DeviceError`` during the capture: host
synchronisation, ``.item()``/``.numpy()``/``.cpu()``, host-to-device copies, events, and
random numbers (a replay would repeat them).
"""

from __future__ import annotations

import functools
import gc
import weakref

import numpy as np

from .backends import cuda_runtime as rt
from .errors import ArgumentError, DeviceError

__all__ = ["CUDAGraph", "graph", "graph_pool_handle", "is_current_stream_capturing"]

_MODES = ("global", "thread_local", "relaxed")
_REAL_ROUND = 512  # real-device pool blocks are rounded up to this many bytes


# -- the private memory pool -----------------------------------------------------------
class _Block:
    __slots__ = ("ptr", "host", "guard", "size")

    def __init__(self, size: int):
        self.size = size
        if rt.SIMULATED:
            self.host, self.ptr, self.guard = rt.host_block(size)
        else:
            self.host, self.guard = None, None
            self.ptr = _raw_alloc(size)


def _raw_alloc(size: int) -> int:
    """``cuMemAlloc`` outside stream ordering (so it is no graph node), in relaxed capture
    mode for this call: what a capture forbids is a stream-ordered allocation, not this."""
    cu = rt._cu()
    rt.init(0)
    relaxed = cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED
    prev = rt.check(cu.cuThreadExchangeStreamCaptureMode(relaxed),
                    "cuThreadExchangeStreamCaptureMode")
    try:
        return int(rt.check(cu.cuMemAlloc(size), "cuMemAlloc"))
    finally:
        cu.cuThreadExchangeStreamCaptureMode(prev)


def _release(blocks: list) -> None:
    """Return a dead pool's blocks to the driver (after the work using them is done)."""
    if rt.SIMULATED or not blocks or rt._driver is None:
        return
    if rt.CAPTURE is not None:  # neither a sync nor a free may happen during a capture
        rt.CAPTURE.defer(functools.partial(_release, list(blocks)))
        return
    try:
        rt.synchronize()
        for b in blocks:
            rt._driver.cuMemFree(b.ptr)
    except Exception:  # interpreter shutdown: the context may already be gone
        pass


class _GraphPool:
    """The memory of one or more graphs (``graph_pool_handle()``, ``CUDAGraph.pool()``):
    blocks handed to tensors created during captures into it; a block freed by its tensor
    goes back to the pool's free list for later allocations of later captures into the
    same pool (replays run in capture order, so the reuse is stream-ordered), never to
    the process; the blocks are released when the pool and every graph holding it die."""

    def __init__(self):
        self._free: dict = {}
        self._blocks: list = []
        weakref.finalize(self, _release, self._blocks)

    @property
    def reserved_bytes(self) -> int:
        """Bytes of device memory the pool holds."""
        return sum(b.size for b in self._blocks)

    @property
    def num_blocks(self) -> int:
        """Blocks the pool holds (reused ones counted once)."""
        return len(self._blocks)

    def take(self, nbytes: int) -> _Block:
        """A block of at least ``nbytes``: a free one of that size, else a new one."""
        size = nbytes if rt.SIMULATED else -(-max(nbytes, 1) // _REAL_ROUND) * _REAL_ROUND
        free = self._free.get(size)
        if free:
            return free.pop()
        block = _Block(size)
        self._blocks.append(block)
        return block

    def give(self, block: _Block, nbytes: int) -> None:
        """The tensor using ``block`` died: the block becomes free for this pool."""
        rt._count(-nbytes)
        self._free.setdefault(block.size, []).append(block)

    def __repr__(self) -> str:
        return f"<fw.cuda graph pool: {self.num_blocks} blocks, {self.reserved_bytes} bytes>"


def graph_pool_handle() -> _GraphPool:
    """A new memory pool for graphs to share: ``CUDAGraph.capture_begin(pool=...)``,
    ``fw.cuda.graph(g, pool=...)``, ``make_graphed_callables(..., pool=...)``."""
    return _GraphPool()


# -- the capture in progress -----------------------------------------------------------
class _Memory:
    """The memory of an allocation without the allocation (a recorded launch's view of
    it): its address and, simulated, its host bytes (which stay valid)."""

    __slots__ = ("ptr", "host", "nbytes", "device")

    def __init__(self, alloc):
        self.ptr, self.host, self.nbytes, self.device = \
            alloc.ptr, alloc.host, alloc.nbytes, alloc.device


class _Capture:
    """What ``rt.CAPTURE`` holds during a capture (see cuda_runtime)."""

    def __init__(self, pool: _GraphPool):
        self.pool = pool
        self.records: list = []    # simulated device: the work, in issue order
        self.deferred: list = []   # real device: driver calls made after the capture

    def allocate(self, alloc) -> None:
        block = self.pool.take(alloc.nbytes)
        alloc.ptr, alloc.guard = block.ptr, block.guard
        alloc.host = None if block.host is None else block.host[:alloc.nbytes]
        if rt.DEBUG_BOUNDS:
            rt._LIVE.add(alloc)
        weakref.finalize(alloc, self.pool.give, block, alloc.nbytes)

    def record(self, fn) -> None:
        self.records.append(fn)

    def defer(self, fn) -> None:
        self.deferred.append(fn)

    def flush(self) -> None:
        """Run what had to wait for the end of the capture."""
        work, self.deferred = self.deferred, []
        for fn in work:
            fn()


def _detached(arg):
    """A launch argument as recorded: device buffers keep their memory, not their
    allocation, so a tensor dying after the capture frees its block as on a GPU."""
    from .backends.cuda import CudaBuffer
    if type(arg) is CudaBuffer:
        return CudaBuffer(_Memory(arg.alloc), arg.shape, arg._strides, arg.offset, arg.dtype)
    return arg


def _install_recorder() -> None:
    """Simulated device: make Triton's interpreter record launches during a capture."""
    from triton.runtime import interpreter
    launch = interpreter.GridExecutor.__call__
    if getattr(launch, "_fw_records", False):
        return

    def recording_launch(self, *args, **kwargs):
        cap = rt.CAPTURE
        if cap is None:
            return launch(self, *args, **kwargs)
        args = tuple(_detached(a) for a in args)
        kwargs = {k: _detached(v) for k, v in kwargs.items()}
        cap.record(functools.partial(launch, self, *args, **kwargs))
        return None

    recording_launch._fw_records = True
    interpreter.GridExecutor.__call__ = recording_launch


def is_current_stream_capturing() -> bool:
    """True while a CUDA graph capture is under way on the framework's stream."""
    return rt.CAPTURE is not None


def _check_stream(stream, what: str) -> None:
    if stream is None:
        return
    from . import cuda as fw_cuda
    handle = getattr(stream, "cuda_stream", stream)
    fw_cuda._ensure()
    if handle != rt.current_stream():
        raise NotImplementedError(
            f"{what}: the runtime queues all work on one stream per process "
            f"({rt.current_stream():#x}); capturing on stream {handle:#x} is not supported")


# -- CUDAGraph ---------------------------------------------------------------------------
class CUDAGraph:
    """A captured CUDA graph (``torch.cuda.CUDAGraph``): ``capture_begin()``,
    ``capture_end()``, ``replay()``, ``reset()``, ``pool()``, ``debug_dump(path)``. Use it
    through :class:`graph` or :func:`make_graphed_callables` rather than directly."""

    def __init__(self, keep_graph: bool = False):
        self._pool: _GraphPool | None = None
        self._capture: _Capture | None = None
        self._records: list | None = None   # simulated: the captured work
        self._graph = None                   # real: the CUgraph (kept for debug_dump)
        self._exec = None                    # real: the instantiated CUgraphExec
        self.keep_graph = keep_graph

    def capture_begin(self, pool=None, capture_error_mode: str = "global") -> None:
        """Start capturing the framework stream's work into this graph. ``pool``: a
        :func:`graph_pool_handle` (or another graph's ``pool()``) to share memory with;
        ``capture_error_mode``: "global", "thread_local" or "relaxed" (CUDA's
        ``cudaStreamCaptureMode``; the simulated device checks the value only)."""
        if capture_error_mode not in _MODES:
            raise ArgumentError(f"CUDAGraph.capture_begin: capture_error_mode must be one of "
                                f"{_MODES}, got {capture_error_mode!r}")
        if pool is not None and not isinstance(pool, _GraphPool):
            raise ArgumentError("CUDAGraph.capture_begin: pool must come from "
                                "fw.cuda.graph_pool_handle() or CUDAGraph.pool(), got "
                                f"{type(pool).__name__}")
        if rt.CAPTURE is not None:
            raise DeviceError("CUDAGraph.capture_begin: another CUDA graph capture is in "
                              "progress (captures cannot be nested)")
        if self._records is not None or self._exec is not None:
            raise DeviceError("CUDAGraph.capture_begin: this graph already holds a capture; "
                              "call reset() first")
        from . import cuda as fw_cuda
        fw_cuda._ensure()
        self._pool = pool if pool is not None else _GraphPool()
        cap = _Capture(self._pool)
        if rt.SIMULATED:
            _install_recorder()
        else:
            cu = rt._cu()
            mode = getattr(cu.CUstreamCaptureMode,
                           f"CU_STREAM_CAPTURE_MODE_{capture_error_mode.upper()}")
            rt.check(cu.cuStreamBeginCapture(rt.init(0)["stream"], mode),
                     "cuStreamBeginCapture")
        self._capture = cap
        rt.CAPTURE = cap

    def capture_end(self) -> None:
        """Finish the capture begun by :meth:`capture_begin` (the graph can then replay)."""
        cap = self._capture
        if cap is None or rt.CAPTURE is not cap:
            raise DeviceError("CUDAGraph.capture_end: this graph is not capturing "
                              "(call capture_begin first)")
        rt.CAPTURE = None
        self._capture = None
        try:
            if rt.SIMULATED:
                self._records = cap.records
                return
            cu = rt._cu()
            stream = rt.init(0)["stream"]
            graph = rt.check(cu.cuStreamEndCapture(stream), "cuStreamEndCapture")
            instantiate = getattr(cu, "cuGraphInstantiateWithFlags", None) or \
                cu.cuGraphInstantiate
            try:
                self._exec = rt.check(instantiate(graph, 0), "cuGraphInstantiate")
            except DeviceError:
                cu.cuGraphDestroy(graph)
                raise
            self._graph = graph
        finally:
            cap.flush()

    def _abort(self) -> None:
        """Leave capture mode after an error inside the capture, discarding the work."""
        cap = self._capture
        if cap is None:
            return
        if rt.CAPTURE is cap:
            rt.CAPTURE = None
        self._capture = None
        if not rt.SIMULATED:
            cu = rt._cu()
            res = cu.cuStreamEndCapture(rt.init(0)["stream"])
            if int(res[0]) == 0 and res[1] is not None:
                cu.cuGraphDestroy(res[1])
        cap.flush()
        self._pool = None

    def replay(self) -> None:
        """Run the captured work again (on the same memory; nothing is allocated)."""
        if rt.CAPTURE is not None:
            raise DeviceError("CUDAGraph.replay: cannot replay a graph while a capture is in "
                              "progress")
        if rt.SIMULATED:
            if self._records is None:
                raise DeviceError("CUDAGraph.replay: no captured work (capture first)")
            with np.errstate(all="ignore"):  # as at launch: masked lanes compute too
                for work in self._records:
                    work()
            return
        if self._exec is None:
            raise DeviceError("CUDAGraph.replay: no captured work (capture first)")
        rt.check(rt._cu().cuGraphLaunch(self._exec, rt.init(0)["stream"]), "cuGraphLaunch")

    def reset(self) -> None:
        """Drop the captured work and this graph's hold on its memory pool."""
        if self._capture is not None:
            self._abort()
        self._records = None
        if self._exec is not None or self._graph is not None:
            cu = rt._driver
            if cu is not None:
                if self._exec is not None:
                    cu.cuGraphExecDestroy(self._exec)
                if self._graph is not None:
                    cu.cuGraphDestroy(self._graph)
        self._exec = self._graph = None
        self._pool = None

    def pool(self) -> _GraphPool:
        """This graph's memory pool, to share with a later capture
        (``other.capture_begin(pool=g.pool())``)."""
        if self._pool is None:
            raise DeviceError("CUDAGraph.pool: the graph has no pool (capture first)")
        return self._pool

    def debug_dump(self, path: str) -> None:
        """Write the captured graph as a Graphviz DOT file (``cuGraphDebugDotPrint``)."""
        if rt.SIMULATED:
            raise NotImplementedError(
                "CUDAGraph.debug_dump needs a real GPU (cuGraphDebugDotPrint): the simulated "
                "device records Triton launches and copies, not a CUDA graph")
        if self._graph is None:
            raise DeviceError("CUDAGraph.debug_dump: no captured graph (capture first)")
        cu = rt._cu()
        verbose = int(cu.CUgraphDebugDot_flags.CU_GRAPH_DEBUG_DOT_FLAGS_VERBOSE)
        rt.check(cu.cuGraphDebugDotPrint(self._graph, str(path).encode(), verbose),
                 "cuGraphDebugDotPrint")

    def __del__(self):
        try:
            self.reset()
        except Exception:
            pass

    def __repr__(self) -> str:
        done = self._records is not None or self._exec is not None
        return f"<fw.cuda.CUDAGraph {'captured' if done else 'empty'}>"


class graph:  # noqa: N801  (named like torch.cuda.graph)
    """``with fw.cuda.graph(g):`` captures the block's device work into the CUDAGraph
    ``g`` (synchronising and collecting garbage first, as PyTorch does). ``pool``: share
    memory with another graph; ``stream``: None or the framework's stream (the runtime
    has one stream); ``capture_error_mode``: see :meth:`CUDAGraph.capture_begin`. An
    error inside the block ends the capture, discards it and propagates."""

    def __init__(self, cuda_graph: CUDAGraph, pool=None, stream=None,
                 capture_error_mode: str = "global"):
        if not isinstance(cuda_graph, CUDAGraph):
            raise ArgumentError(f"fw.cuda.graph: expected a fw.cuda.CUDAGraph, got "
                                f"{type(cuda_graph).__name__}")
        _check_stream(stream, "fw.cuda.graph")
        self.cuda_graph = cuda_graph
        self.pool = pool
        self.capture_error_mode = capture_error_mode

    def __enter__(self):
        if rt.CAPTURE is not None:
            raise DeviceError("fw.cuda.graph: another CUDA graph capture is in progress "
                              "(captures cannot be nested)")
        from . import cuda as fw_cuda
        fw_cuda.synchronize()
        gc.collect()  # so finalizers of earlier garbage do not run during the capture
        self.cuda_graph.capture_begin(pool=self.pool,
                                      capture_error_mode=self.capture_error_mode)
        return self.cuda_graph

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.cuda_graph.capture_end()
        else:
            self.cuda_graph._abort()
        return False
