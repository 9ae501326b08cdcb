"""Profiling long-running jobs step by step, as ``torch.profiler.schedule``.

```python
with fw.profiler.profile(schedule=fw.profiler.schedule(wait=1, warmup=1, active=2),
                         on_trace_ready=fw.profiler.tensorboard_trace_handler("./log")) as p:
    for batch in loader:
        train_step(batch)
        p.step()
```

A schedule maps a step number (from 0) to a :class:`ProfilerAction`. At each
``prof.step()`` the profile moves from the previous step's action to the next one's, and
the pair decides what happens (:data:`TRANSITIONS`): warm-up steps record but are thrown
away when recording starts; the last active step of a cycle (``RECORD_AND_SAVE``) ends
the trace and calls ``on_trace_ready(prof)``.
"""

from __future__ import annotations

import enum
import os
import socket
import time
import warnings

from .errors import ArgumentError

__all__ = ["ProfilerAction", "schedule", "tensorboard_trace_handler"]


class ProfilerAction(enum.Enum):
    """What the profiler does during one step."""

    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0,
             skip_first: int = 0):
    """A ``step -> ProfilerAction`` function: skip the first ``skip_first`` steps, then
    run cycles of ``wait`` idle steps, ``warmup`` warm-up steps and ``active`` recorded
    steps (the last one ``RECORD_AND_SAVE``); stop after ``repeat`` cycles (0: never)."""
    for name, value, least in (("wait", wait, 0), ("warmup", warmup, 0), ("active", active, 1),
                               ("repeat", repeat, 0), ("skip_first", skip_first, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ArgumentError(f"profiler.schedule: {name} must be an int >= {least}, "
                                f"got {value!r}")
    if warmup == 0:
        warnings.warn("profiler.schedule: profiler won't be using warmup, this can skew "
                      "profiler results", stacklevel=2)
    cycle = wait + warmup + active

    def schedule_fn(step: int) -> ProfilerAction:
        if step < 0:
            raise ArgumentError(f"profiler.schedule: step must be >= 0, got {step}")
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        pos = step % cycle
        if pos < wait:
            return ProfilerAction.NONE
        if pos < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if pos < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return schedule_fn


def default_schedule(step: int) -> ProfilerAction:
    """Without a schedule the profile records everything (one trace, at the end)."""
    return ProfilerAction.RECORD


_N, _W, _R, _S = (ProfilerAction.NONE, ProfilerAction.WARMUP, ProfilerAction.RECORD,
                  ProfilerAction.RECORD_AND_SAVE)
# (previous action, next action) -> the profile methods to call, in order (PyTorch's
# action map). ``None`` as the next action means the profile is closing.
TRANSITIONS = {
    (_N, _W): ("_prepare_trace",),
    (_N, _R): ("_prepare_trace", "_start_trace"),
    (_N, _S): ("_prepare_trace", "_start_trace"),
    (_W, _N): ("_start_trace", "_stop_trace"),
    (_W, _R): ("_start_trace",),
    (_W, _S): ("_start_trace",),
    (_R, _N): ("_stop_trace",),
    (_R, _W): ("_stop_trace",),
    (_S, _N): ("_stop_trace", "_trace_ready"),
    (_S, _W): ("_stop_trace", "_trace_ready", "_prepare_trace"),
    (_S, _R): ("_stop_trace", "_trace_ready", "_prepare_trace", "_start_trace"),
    (_S, _S): ("_stop_trace", "_trace_ready", "_prepare_trace", "_start_trace"),
    (_W, None): ("_start_trace", "_stop_trace"),
    (_R, None): ("_stop_trace", "_trace_ready"),
    (_S, None): ("_stop_trace", "_trace_ready"),
}
_SUSPICIOUS = {(_W, _N), (_R, _N), (_R, _W)}


def transit(prof, prev, nxt) -> None:
    """Run the actions for the move from ``prev`` to ``nxt`` on ``prof``."""
    if (prev, nxt) in _SUSPICIOUS:
        warnings.warn(f"profiler: incorrect schedule: {prev.name} followed by {nxt.name}",
                      stacklevel=3)
    for name in TRANSITIONS.get((prev, nxt), ()):
        getattr(prof, name)()


def tensorboard_trace_handler(dir_name, worker_name: str | None = None,
                              use_gzip: bool = False):
    """An ``on_trace_ready`` handler that writes each trace to
    ``dir_name/{worker_name}.{time ns}.pt.trace.json`` (``.gz`` with ``use_gzip``);
    ``worker_name`` defaults to ``{hostname}_{pid}``."""
    dir_name = os.fspath(dir_name)

    def handler(prof) -> None:
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        name = f"{worker}.{time.time_ns()}.pt.trace.json" + (".gz" if use_gzip else "")
        prof.export_chrome_trace(os.path.join(dir_name, name))

    return handler
