"""The optional parts of ``fw.profiler.profile``: memory (``profile_memory=True``), Python
stacks (``with_stack=True``) and their text forms.

Memory: while the profile records, every buffer an eagerly dispatched op's outputs hold
is counted once, when it first appears, against the innermost open event ("Self CPU Mem";
"CPU Mem" adds nested events). A weakref finalizer on the buffer counts its release
(negative bytes) against the event open when it is freed, or a ``[memory]`` event
outside any. Outputs that are views of, or the same buffer as, an input allocate
nothing; a composite's output that is its decomposition's buffer counts once, in the op
that made it. Only host (NumPy) buffers are counted: CUDA memory is not tracked.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
# Frames of the profiler, the op layer and the Tensor methods are left out of stacks: in
# PyTorch they are C++ (``x * 2`` shows the user's line), while nn modules stay.
_SKIP = tuple(os.path.join(_HERE, f) for f in
              ("profiler", os.path.join("ops", ""), "tensor.py", "tensor_"))


def _root(arr):
    """The array that owns ``arr``'s memory (``arr`` itself when it is not a view)."""
    while isinstance(arr, np.ndarray) and isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


class MemoryTracker:
    """Counts the buffers tensors made by ``registry.apply`` hold, for one profile."""

    def __init__(self, prof):
        self.prof = prof
        self.live: dict[int, weakref.finalize] = {}  # id(buffer) -> its finalizer
        self._undo = None

    def input_roots(self, args) -> frozenset:
        """The ids of the buffers an op's tensor operands hold (outputs sharing one of
        them allocate nothing)."""
        return frozenset(id(_root(a._data)) for a in args
                         if getattr(a, "_data", None) is not None)

    def install(self) -> None:
        """Watch ``registry._init`` (every tensor ``apply`` makes) until :meth:`remove`."""
        from .ops import registry
        orig = registry._init
        tracker = self

        def init(t, data, shape, dtype, dev, storage):
            orig(t, data, shape, dtype, dev, storage)
            if data is not None:
                tracker.allocated(data)

        registry._init = init
        self._undo = lambda: setattr(registry, "_init", orig)

    def remove(self) -> None:
        """Stop watching; buffers freed from now on are no longer counted."""
        if self._undo is not None:
            self._undo()
            self._undo = None
        for fin in self.live.values():
            fin.detach()
        self.live.clear()

    def allocated(self, data) -> None:
        """Count ``data``'s buffer against the innermost open event, once."""
        root = _root(data)
        if not isinstance(root, np.ndarray) or id(root) in self.live:
            return
        stack = self.prof._stacks.get(threading.get_ident())
        if not stack:
            return
        ev = stack[-1]
        if id(root) in ev.input_roots:
            return
        nbytes = int(root.nbytes)
        ev.mem_self += nbytes
        key = id(root)
        try:
            self.live[key] = weakref.finalize(root, self._freed, key, nbytes)
        except TypeError:  # not weak-referenceable: counted, its release is not
            pass

    def _freed(self, key, nbytes) -> None:
        self.live.pop(key, None)
        prof = self.prof
        stack = prof._stacks.get(threading.get_ident())
        if stack:
            stack[-1].mem_self -= nbytes
        else:
            ev = prof._instant("[memory]", "memory")
            ev.mem_self = -nbytes


def capture_stack() -> tuple:
    """The user's Python call stack, innermost frame first, as ``file(line): function``
    entries (PyTorch's ``with_stack`` form); the profiler's and dispatcher's frames are
    left out."""
    out = []
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if not code.co_filename.startswith(_SKIP):
            out.append(f"{code.co_filename}({frame.f_lineno}): {code.co_name}")
        frame = frame.f_back
    return tuple(out)


def format_memory(nbytes: int) -> str:
    """Bytes as PyTorch's tables print them: ``12 b``, ``1.50 Kb``, ``94.79 Mb``..."""
    for unit, size in (("Gb", 1 << 30), ("Mb", 1 << 20), ("Kb", 1 << 10)):
        if abs(nbytes) >= size:
            return f"{nbytes / size:.2f} {unit}"
    return f"{nbytes} b"


def input_shapes(shapes) -> str:
    """An op's recorded operand shapes as PyTorch prints them: ``[[2, 3], [], [3]]``
    (``[]`` for an operand that is not a tensor)."""
    if shapes is None:
        return "[]"
    return str([s if isinstance(s, list) else [] for s in shapes])


# profile.export_stacks metrics -> the per-event value (microseconds)
_STACK_METRICS = {
    "self_cpu_time_total": lambda e: e.self_time / 1e3,
    "self_cuda_time_total": lambda e: (e.cuda_ms or 0.0) * 1e3,
    "self_device_time_total": lambda e: (e.cuda_ms or 0.0) * 1e3,
}


def export_stacks(events, path, metric: str) -> None:
    """Write one ``outer;...;inner value`` line per event that has a stack and a positive
    ``metric`` (integer microseconds): the input of flamegraph.pl and speedscope."""
    from .errors import ArgumentError
    value_of = _STACK_METRICS.get(metric)
    if value_of is None:
        raise ArgumentError(f"profile.export_stacks: metric must be one of "
                            f"{sorted(_STACK_METRICS)}, got {metric!r}")
    with open(os.fspath(path), "w", encoding="utf-8") as f:
        for e in events:
            value = int(value_of(e))
            if e.stack and value > 0:
                f.write(";".join(reversed(e.stack)) + f" {value}\n")
