"""Shared benchmark helpers: timing, a result table, ``--json`` output and ``--compare``
against an earlier JSON run."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from typing import Callable


def add_report_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--json [FILE]`` (``-`` or no value: stdout) and ``--compare FILE``."""
    parser.add_argument("--json", metavar="FILE", nargs="?", const="-", default=None,
                        help="also write the results as JSON (to FILE, or stdout)")
    parser.add_argument("--compare", metavar="FILE", default=None,
                        help="show the change against an earlier --json result file")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time (default) or process CPU time (for busy machines)")


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = [time.perf_counter]


def set_clock(name: str) -> None:
    """Time with the wall clock (default) or the process CPU clock ("cpu": robust against
    other processes competing for the cores, e.g. on a shared CI machine)."""
    _clock[0] = CLOCKS[name]


def time_call(fn: Callable[[], object], *, min_time: float = 0.1, repeat: int = 5) -> float:
    """Seconds per call of ``fn``: the best of ``repeat`` loops of at least ``min_time``."""
    clock = _clock[0]
    fn()  # warm up (imports, caches)
    number = 1
    while True:
        t0 = clock()
        for _ in range(number):
            fn()
        dt = clock() - t0
        if dt >= min_time / 4 or number >= 1 << 22:
            break
        number *= 4
    best = dt / number
    for _ in range(repeat - 1):
        t0 = clock()
        for _ in range(number):
            fn()
        best = min(best, (clock() - t0) / number)
    return best


def time_pair(fn: Callable, ref: Callable, *, min_time: float = 0.1,
              repeat: int = 5) -> tuple[float, float]:
    """Time ``fn`` and ``ref`` alternately (so machine noise hits both) -> best of each."""
    best_fn = best_ref = float("inf")
    for _ in range(repeat):
        best_fn = min(best_fn, time_call(fn, min_time=min_time, repeat=1))
        best_ref = min(best_ref, time_call(ref, min_time=min_time, repeat=1))
    return best_fn, best_ref


@dataclasses.dataclass
class Row:
    """One measured case: framework time, reference time, and the allowed ratio."""

    name: str
    seconds: float
    ref_seconds: float | None = None
    target: float | None = None
    group: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ref_seconds is None or self.ref_seconds <= 0:
            return None
        return self.seconds / self.ref_seconds

    @property
    def ok(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio <= self.target


def machine_info() -> dict:
    """CPU, core count, Python and NumPy versions (recorded with every result)."""
    import numpy as np
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"cpu": cpu, "cores": cores, "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform()}


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1:
        return f"{s * 1e3:.3f} ms"
    return f"{s:.3f} s"


class Report:
    """A titled list of rows, printable as a table or as JSON."""

    def __init__(self, title: str, ref_name: str = "reference", clock: str = "wall"):
        self.title = title
        self.clock = clock
        self.ref_name = ref_name
        self.rows: list[Row] = []
        self.machine = machine_info()

    def add(self, row: Row) -> Row:
        """Append a row (and return it)."""
        self.rows.append(row)
        return row

    def to_dict(self) -> dict:
        """The report as plain data (what ``--json`` writes)."""
        return {"title": self.title, "reference": self.ref_name, "machine": self.machine,
                "clock": self.clock,
                "rows": [dict(dataclasses.asdict(r), ratio=r.ratio, ok=r.ok)
                         for r in self.rows]}

    def render(self, previous: dict | None = None) -> str:
        """The table as text; with ``previous`` (an earlier ``to_dict``) a change column."""
        old = {r["name"]: r for r in previous["rows"]} if previous else {}
        head = ["case", "framework", self.ref_name, "ratio", "target", ""]
        if previous:
            head.append("vs previous")
        lines = []
        for r in self.rows:
            cells = [r.name, _fmt_time(r.seconds), _fmt_time(r.ref_seconds),
                     "-" if r.ratio is None else f"{r.ratio:.2f}x",
                     "-" if r.target is None else f"<= {r.target:g}x",
                     {True: "ok", False: "MISS", None: ""}[r.ok]]
            if previous:
                p = old.get(r.name)
                cells.append(f"{r.seconds / p['seconds']:.2f}x time" if p else "new")
            lines.append(cells)
        widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]

        def fmt(cells):
            return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
        m = self.machine
        out = [self.title,
               f"machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, "
               f"NumPy {m['numpy']}; {self.clock} clock, best of repeated loops", "",
               fmt(head), fmt(["-" * w for w in widths])]
        group = None
        for r, cells in zip(self.rows, lines):
            if r.group != group and group is not None:
                out.append("")
            group = r.group
            out.append(fmt(cells))
        return "\n".join(out)


def finish(report: Report, args: argparse.Namespace) -> int:
    """Print the table (with ``--compare``), write ``--json``; exit code 0."""
    previous = None
    if getattr(args, "compare", None):
        with open(args.compare) as f:
            previous = json.load(f)
    print(report.render(previous))
    if getattr(args, "json", None):
        text = json.dumps(report.to_dict(), indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
            print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


def cuda_device_problem(fw, device: str, bench: str) -> int | None:
    """Why a GPU benchmark cannot time on ``device``, printed, as an exit status (2: not
    "cuda", 1: no CUDA device); None when a real device is there or the simulated one is
    (whose callers check values instead of timing)."""
    if device != "cuda":
        print(f"framework.bench {bench} measures GPU kernels: use --device cuda")
        return 2
    if not fw.cuda.is_available():
        try:
            fw.tensor([0.0], device="cuda")
        except fw.DeviceError as e:
            print(f"no CUDA device: {e}")
        return 1
    return None
