"""``fw.multiprocessing.spawn``: start ``nprocs`` processes running ``fn(i, *args)`` and
report the first failure with the child's own traceback (``torch.multiprocessing.spawn``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import tempfile
import time

from ..errors import ArgumentError


class ProcessException(Exception):  # noqa: N818  (PyTorch's name)
    """A process started by :func:`spawn` failed; ``error_index`` is its ``i``, ``pid`` its
    process id."""

    def __init__(self, msg: str, error_index: int, pid: int):
        super().__init__(msg)
        self.msg, self.error_index, self.pid = msg, error_index, pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(ProcessException):
    """The process's function raised; the message holds the child's traceback."""

    def __init__(self, msg: str, error_index: int, error_pid: int):
        super().__init__(msg, error_index, error_pid)


class ProcessExitedException(ProcessException):
    """The process exited with a non-zero code, or was killed by a signal
    (``signal_name``)."""

    def __init__(self, msg: str, error_index: int, error_pid: int, exit_code: int,
                 signal_name: str | None = None):
        super().__init__(msg, error_index, error_pid)
        self.exit_code, self.signal_name = exit_code, signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid, self.exit_code,
                            self.signal_name)


def _wrap(fn, i, args, error_file):
    """The body of each spawned process: run ``fn(i, *args)``; on an exception, write its
    traceback where the parent looks for it and exit with code 1."""
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass  # the parent stopped us (SIGINT)
    except Exception:
        import traceback
        with open(error_file, "w") as f:
            f.write(traceback.format_exc())
        sys.exit(1)


class ProcessContext:
    """The processes :func:`spawn` started (``processes``, ``pids()``), joined with
    :meth:`join`."""

    def __init__(self, processes, error_files):
        self.processes = processes
        self.error_files = error_files
        self.sentinels = {p.sentinel: i for i, p in enumerate(processes)}

    def pids(self) -> list[int]:
        """The process ids."""
        return [p.pid for p in self.processes]

    def join(self, timeout: float | None = None, grace_period: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds) for the processes. Returns True once all have
        exited with code 0, False if some are still running. When one fails, the others
        are terminated (SIGTERM, then SIGKILL after ``grace_period`` seconds) and its error
        is raised: :class:`ProcessRaisedException` with its traceback, or
        :class:`ProcessExitedException` for a non-zero exit code or a signal."""
        if not self.sentinels:
            return True
        ready = multiprocessing.connection.wait(self.sentinels.keys(), timeout=timeout)
        failed = None
        for sentinel in ready:
            i = self.sentinels.pop(sentinel)
            p = self.processes[i]
            p.join()
            if p.exitcode != 0 and failed is None:
                failed = i
        if failed is None:
            if not self.sentinels:
                self._remove_error_files()
            return not self.sentinels
        self._stop_others(grace_period)
        try:
            self._raise(failed)
        finally:
            self._remove_error_files()

    def _stop_others(self, grace_period):
        alive = [p for p in self.processes if p.is_alive()]
        for p in alive:
            p.terminate()
        deadline = time.monotonic() + (30.0 if grace_period is None else grace_period)
        for p in alive:
            p.join(max(deadline - time.monotonic(), 0))
        for p in alive:
            if p.is_alive():
                p.kill()
                p.join()
        self.sentinels.clear()

    def _raise(self, i):
        p = self.processes[i]
        path = self.error_files[i]
        text = ""
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
        if text:
            raise ProcessRaisedException(
                f"\n\n-- Process {i} terminated with the following error:\n{text}", i, p.pid)
        if p.exitcode < 0:
            name = signal.Signals(-p.exitcode).name
            raise ProcessExitedException(f"process {i} terminated with signal {name}", i,
                                         p.pid, p.exitcode, name)
        raise ProcessExitedException(f"process {i} terminated with exit code {p.exitcode}", i,
                                     p.pid, p.exitcode)

    def _remove_error_files(self):
        for path in self.error_files:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


SpawnContext = ProcessContext  # the old name, kept for scripts that use it


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """Start ``nprocs`` processes with ``start_method`` running ``fn(i, *args)``; see
    :func:`spawn`."""
    if not isinstance(nprocs, int) or isinstance(nprocs, bool) or nprocs < 1:
        raise ArgumentError(f"spawn(): nprocs must be a positive int, got {nprocs!r}")
    if not isinstance(args, tuple):
        raise ArgumentError(f"spawn(): args must be a tuple, got {type(args).__name__}")
    ctx = multiprocessing.get_context(start_method)
    processes, error_files = [], []
    try:
        for i in range(nprocs):
            fd, path = tempfile.mkstemp(prefix="fw_spawn_err_")
            os.close(fd)  # stays empty unless the child fails
            error_files.append(path)
            p = ctx.Process(target=_wrap, args=(fn, i, args, path), daemon=daemon)
            p.start()
            processes.append(p)
    except BaseException:
        for p in processes:
            p.terminate()
            p.join()
        ProcessContext(processes, error_files)._remove_error_files()
        raise
    context = ProcessContext(processes, error_files)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """Start ``nprocs`` processes running ``fn(i, *args)`` (``i`` = 0..nprocs-1), as
    ``torch.multiprocessing.spawn``.

    With ``join=True`` wait for all of them and return None; if one fails, terminate the
    others and raise :class:`ProcessRaisedException` (carrying the child's traceback) or
    :class:`ProcessExitedException` (non-zero exit code or signal). With ``join=False``
    return the :class:`ProcessContext`. Tensors in ``args`` are shared, not copied."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)
