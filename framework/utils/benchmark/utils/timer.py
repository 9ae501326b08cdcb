"""``Timer``: ``timeit.Timer`` made aware of the framework (warm-up, BLAS threads, CUDA
synchronization) with PyTorch's adaptive strategies, as ``torch.utils.benchmark``."""

from __future__ import annotations

import enum
import statistics
import textwrap
import time
import timeit
from typing import Callable

from ....backends import _LOADED as _LOADED_BACKENDS
from ....errors import ArgumentError, FwTypeError
from . import common

__all__ = ["Timer", "timer", "Language"]


def timer() -> float:
    """``time.perf_counter()``, after waiting for the CUDA device once the process uses
    one (the CUDA backend is loaded), so queued kernels are inside the timed interval."""
    if "cuda" in _LOADED_BACKENDS:
        from .... import cuda
        cuda.synchronize()
    return time.perf_counter()


class Language(enum.Enum):
    """The language of ``stmt``: only Python here."""

    PYTHON = 0
    CPP = 1


class Timer:
    """Measure the execution time of ``stmt`` (a string of Python code) after ``setup``.

    Like ``timeit.Timer``, with ``label``, ``sub_label``, ``description`` and ``env`` to
    name the measurement (``Compare`` groups by them) and ``num_threads``, the BLAS
    threads the statement runs with (set with ``fw.set_num_threads`` while measuring,
    then restored: it bounds OpenBLAS, which runs matmul and linalg; with another BLAS
    library the value is only recorded; the rest of the CPU backend is single-threaded
    NumPy). ``globals`` gives the names ``stmt`` uses (copied;
    ``fw`` is added, and ``torch`` too, as PyTorch's Timer adds it, so statements
    written for PyTorch run unchanged). The default ``timer`` synchronizes CUDA (see
    :func:`timer`); a custom one (e.g. ``time.perf_counter``) does not. ``stmt`` must be a
    string, as in PyTorch; C++ statements and ``global_setup`` are not supported.
    """

    def __init__(self, stmt: str = "pass", setup: str = "pass", global_setup: str = "",
                 timer: Callable[[], float] = timer, globals: dict | None = None,
                 label: str | None = None, sub_label: str | None = None,
                 description: str | None = None, env: str | None = None,
                 num_threads: int = 1, language=Language.PYTHON):
        if not isinstance(stmt, str):
            raise ArgumentError("Currently only a `str` stmt is supported.")
        if language not in (Language.PYTHON, "py", "python"):
            if language in (Language.CPP, "cpp", "c++"):
                raise NotImplementedError("Timer(language='cpp'): timing C++ statements is "
                                          "not supported (the framework has no C++ API)")
            raise ArgumentError(f"Invalid language `{language}`.")
        if global_setup:
            raise ArgumentError(f"global_setup is C++ only, got `{global_setup}`. Most "
                                "likely this code can simply be moved to `setup`.")
        if isinstance(num_threads, bool) or not isinstance(num_threads, int):
            raise FwTypeError(f"Timer: num_threads must be an int, got "
                              f"{type(num_threads).__name__}")
        if num_threads < 1:
            raise ArgumentError(f"Timer: num_threads must be positive, got {num_threads}")
        import framework
        self._globals = dict(globals or {})
        self._globals.setdefault("fw", framework)
        self._globals.setdefault("torch", framework)
        self._language = Language.PYTHON
        stmt, setup = _tidy(stmt), _tidy(setup)
        self._timer = timeit.Timer(stmt=stmt, setup=setup, timer=timer, globals=self._globals)
        self._task_spec = common.TaskSpec(stmt=stmt, setup=setup, global_setup=global_setup,
                                          label=label, sub_label=sub_label,
                                          description=description, env=env,
                                          num_threads=num_threads)

    def _timeit(self, number: int) -> float:
        # no real statement takes under a nanosecond; this also avoids dividing by zero
        return max(self._timer.timeit(number), 1e-9)

    def _measurement(self, number: int, times: list) -> common.Measurement:
        return common.Measurement(number_per_run=number, raw_times=times,
                                  task_spec=self._task_spec)

    def timeit(self, number: int = 1000000) -> common.Measurement:
        """Run ``stmt`` ``number`` times (after a warm-up of ``number // 100``, at least 2)
        and return the one block as a Measurement (``timeit.Timer.timeit``)."""
        with common.set_torch_threads(self._task_spec.num_threads):
            self._timeit(number=max(number // 100, 2))
            return self._measurement(number, [self._timeit(number=number)])

    def repeat(self, repeat: int = -1, number: int = -1):
        """Not provided (as in PyTorch): use :meth:`blocked_autorange`."""
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def autorange(self, callback: Callable | None = None):
        """Not provided (as in PyTorch): use :meth:`blocked_autorange`."""
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def _measurement_loop(self, number, stop, min_run_time, max_run_time=None,
                          callback=None) -> list:
        total, can_stop, times = 0.0, False, []
        with common.set_torch_threads(self._task_spec.num_threads):
            while total < min_run_time or not can_stop:
                spent = self._timeit(number)
                times.append(spent)
                total += spent
                if callback:
                    callback(number, spent)
                can_stop = stop(times)
                if max_run_time and total > max_run_time:
                    break
        return times

    def _estimate_block_size(self, min_run_time: float) -> int:
        """Runs per block: grow by 10x until the timer's own overhead is under 0.01% of a
        block and a block takes at least min_run_time / 1000 (this is also the warm-up)."""
        with common.set_torch_threads(self._task_spec.num_threads):
            overhead = statistics.median(self._timeit(0) for _ in range(5))
            number = 1
            while True:
                taken = self._timeit(number)
                if overhead / taken <= 1e-4 and taken >= min_run_time / 1000:
                    break
                if taken > min_run_time or number * 10 > 2147483647:
                    break
                number *= 10
        return number

    def blocked_autorange(self, callback: Callable | None = None,
                          min_run_time: float = 0.2) -> common.Measurement:
        """Measure blocks of ``stmt`` until ``min_run_time`` seconds are spent; the block
        size makes the timer's overhead negligible. ``callback(number, seconds)`` is
        called after each block."""
        number = self._estimate_block_size(min_run_time)
        times = self._measurement_loop(number, lambda times: True, min_run_time,
                                       callback=callback)
        return self._measurement(number, times)

    def adaptive_autorange(self, threshold: float = 0.1, *, min_run_time: float = 0.01,
                           max_run_time: float = 10.0,
                           callback: Callable | None = None) -> common.Measurement:
        """Like :meth:`blocked_autorange`, but go on until IQR / median is below
        ``threshold`` (with more than 3 blocks and ``min_run_time`` spent) or
        ``max_run_time`` is reached."""
        number = self._estimate_block_size(min_run_time=0.05)

        def stop(times) -> bool:
            return len(times) > 3 and \
                self._measurement(number, times).meets_confidence(threshold=threshold)
        times = self._measurement_loop(number, stop, min_run_time, max_run_time, callback)
        return self._measurement(number, times)

    def collect_callgrind(self, *args, **kwargs):
        """Instruction counts under Valgrind's Callgrind are not supported."""
        raise NotImplementedError("Timer.collect_callgrind: instruction counts under "
                                  "Valgrind's Callgrind are not supported")


def _tidy(code: str) -> str:
    """Dedent, and drop the first newline of a block string and trailing whitespace."""
    code = textwrap.dedent(code)
    return (code[1:] if code and code[0] == "\n" else code).rstrip()
