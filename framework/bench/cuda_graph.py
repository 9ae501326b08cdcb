"""GPU time of kernel launches by CUDA-graph replay, so the host's launch cost drops out.

The benchmark records the launches one call of a compiled graph makes (kernel, grid,
launch constants and the very buffers it used), captures many replays of them into a CUDA
graph on the framework's stream, and times graph launches with CUDA events. Replays
allocate nothing, so the captured graph holds kernel nodes only.
"""

from __future__ import annotations

import contextlib


def record_launches(run, kernels) -> list | None:
    """The kernel launches one ``run()`` makes through ``kernels`` (generated
    :class:`TritonKernel` objects) as ``(fn, grid, kwargs, args)``; None when ``run``
    launched nothing through them."""
    calls = []
    for k in kernels:
        def record(fn, grid, kwargs, args, _orig=k._launch):
            calls.append((fn, grid, dict(kwargs), list(args)))
            _orig(fn, grid, kwargs, args)
        k._launch = record  # an instance attribute shadows the method for this call only
    try:
        run()
    finally:
        for k in kernels:
            vars(k).pop("_launch", None)
    return calls or None


def replay(calls: list):
    """A callable launching the recorded ``calls`` again (no allocation, no heuristics)."""
    def run():
        for fn, grid, kwargs, args in calls:
            fn[grid](*args, **kwargs)
    return run


@contextlib.contextmanager
def _captured(cu, rt, stream):
    """Capture the stream's work inside the block into a graph; yields a list that holds
    the graph afterwards."""
    mode = cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED
    rt.check(cu.cuStreamBeginCapture(stream, mode), "cuStreamBeginCapture")
    holder = []
    try:
        yield holder
    finally:  # always leave capture mode, or the stream stays unusable
        holder.append(rt.check(cu.cuStreamEndCapture(stream), "cuStreamEndCapture"))


def graph_seconds(fw, fn, calls: int, repeat: int) -> float:
    """GPU seconds per call of ``fn`` (which must launch kernels only, allocating nothing):
    ``calls`` calls captured in one CUDA graph, the best of ``repeat`` graph launches."""
    from framework.backends import cuda_runtime as rt
    cu = rt._cu()
    stream = rt.init(0)["stream"]
    fn()  # compiled and loaded before capture: module loading is not capturable everywhere
    rt.synchronize()
    with _captured(cu, rt, stream) as holder:
        for _ in range(calls):
            fn()
    graph = holder[0]
    instantiate = getattr(cu, "cuGraphInstantiateWithFlags", None) or cu.cuGraphInstantiate
    try:
        exe = rt.check(instantiate(graph, 0), "cuGraphInstantiate")
        try:
            rt.check(cu.cuGraphLaunch(exe, stream), "cuGraphLaunch")  # warm-up replay
            rt.synchronize()
            best = float("inf")
            for _ in range(repeat):
                start = fw.cuda.Event(enable_timing=True)
                end = fw.cuda.Event(enable_timing=True)
                start.record()
                rt.check(cu.cuGraphLaunch(exe, stream), "cuGraphLaunch")
                end.record()
                end.synchronize()
                best = min(best, start.elapsed_time(end))
        finally:
            cu.cuGraphExecDestroy(exe)
    finally:
        cu.cuGraphDestroy(graph)
    return best / calls * 1e-3
