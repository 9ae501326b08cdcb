"""What a measurement is: :class:`TaskSpec` (what was timed) and :class:`Measurement`
(the times), with the formatting helpers they share (as ``torch.utils.benchmark``)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import textwrap
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

__all__ = ["TaskSpec", "Measurement", "select_unit", "unit_to_english", "trim_sigfig",
           "ordered_unique", "set_torch_threads"]

_MAX_SIGNIFICANT_FIGURES = 4
_MIN_CONFIDENCE_INTERVAL = 25e-9  # 25 ns
# A measurement warns when its interquartile range is this large a share of its median.
_IQR_WARN_THRESHOLD = 0.1
_IQR_GROSS_WARN_THRESHOLD = 0.25


@dataclasses.dataclass(init=True, repr=False, eq=True, frozen=True)
class TaskSpec:
    """What a Timer measures (everything but its globals)."""

    stmt: str
    setup: str
    global_setup: str = ""
    label: str | None = None
    sub_label: str | None = None
    description: str | None = None
    env: str | None = None
    num_threads: int = 1

    @property
    def title(self) -> str:
        """The label (or the one-line stmt), with the sub-label."""
        sub = f": {self.sub_label}" if self.sub_label else ""
        if self.label is not None:
            return self.label + sub
        if "\n" not in self.stmt:
            return self.stmt + sub
        return (f"stmt:{f' ({self.sub_label})' if self.sub_label else ''}\n"
                f"{textwrap.indent(self.stmt, '  ')}")

    def setup_str(self) -> str:
        """The setup as shown in a Measurement's repr ("" for none)."""
        if self.setup == "pass" or not self.setup:
            return ""
        if "\n" in self.setup:
            return f"setup:\n{textwrap.indent(self.setup, '  ')}"
        return f"setup: {self.setup}"

    def summarize(self) -> str:
        """Title, description and setup, one per line."""
        parts = [self.title, self.description or "", self.setup_str()]
        return "\n".join(f"{p}\n" if "\n" in p else p for p in parts if p)


_TASKSPEC_FIELDS = tuple(f.name for f in dataclasses.fields(TaskSpec))


@dataclasses.dataclass(init=True, repr=False)
class Measurement:
    """The result of a Timer measurement: ``raw_times`` (seconds per block of
    ``number_per_run`` runs) and statistics of the per-run ``times``. TaskSpec fields
    (``stmt``, ``label``, ``description``, ``num_threads``...) read through."""

    number_per_run: int
    raw_times: list
    task_spec: TaskSpec
    metadata: dict | None = None  # free for the user's own payload

    def __post_init__(self) -> None:
        self._sorted_times: tuple = ()
        self._warnings: tuple = ()
        self._median = self._mean = self._p25 = self._p75 = -1.0

    def __getattr__(self, name: str) -> Any:
        # TaskSpec fields read through (only called when normal lookup failed)
        if name in _TASKSPEC_FIELDS and "task_spec" in self.__dict__:
            return getattr(self.task_spec, name)
        raise AttributeError(f"'Measurement' object has no attribute {name!r}")

    @property
    def times(self) -> list:
        """Seconds per run of ``stmt``: each raw time over ``number_per_run``."""
        return [t / self.number_per_run for t in self.raw_times]

    @property
    def median(self) -> float:
        """Median of :attr:`times`."""
        self._lazy_init()
        return self._median

    @property
    def mean(self) -> float:
        """Mean of :attr:`times`."""
        self._lazy_init()
        return self._mean

    @property
    def iqr(self) -> float:
        """Interquartile range (75th - 25th percentile, linear interpolation)."""
        self._lazy_init()
        return self._p75 - self._p25

    @property
    def significant_figures(self) -> int:
        """Digits of the median worth showing (1 to 4): the interquartile points give a
        rough 90% confidence interval (z = 1.645) whose size sets the precision."""
        self._lazy_init()
        n = len(self._sorted_times)
        inner = self._sorted_times[n // 4:math.ceil(3 * n / 4)]
        std = float(np.std(np.asarray(inner, dtype=np.float64)))
        ci = max(1.645 * std / math.sqrt(len(inner)), _MIN_CONFIDENCE_INTERVAL)
        figures = math.floor(math.log10(self._median / ci))
        return min(max(figures, 1), _MAX_SIGNIFICANT_FIGURES)

    @property
    def has_warnings(self) -> bool:
        """True when the spread is large compared to the median."""
        self._lazy_init()
        return bool(self._warnings)

    def _lazy_init(self) -> None:
        if not self.raw_times or self._sorted_times:
            return
        self._sorted_times = tuple(sorted(self.times))
        t = np.asarray(self._sorted_times, dtype=np.float64)
        self._median = float(np.quantile(t, 0.5))
        self._mean = float(t.mean())
        self._p25 = float(np.quantile(t, 0.25))
        self._p75 = float(np.quantile(t, 0.75))
        if not self.meets_confidence(_IQR_GROSS_WARN_THRESHOLD):
            self._add_warning("This suggests significant environmental influence.")
        elif not self.meets_confidence(_IQR_WARN_THRESHOLD):
            self._add_warning("This could indicate system fluctuation.")

    def _add_warning(self, msg: str) -> None:
        rel = self.iqr / self.median * 100
        self._warnings += (f"  WARNING: Interquartile range is {rel:.1f}% of the median "
                           f"measurement.\n           {msg}",)

    def meets_confidence(self, threshold: float = _IQR_WARN_THRESHOLD) -> bool:
        """True when IQR / median is below ``threshold``."""
        return self.iqr / self.median < threshold

    @property
    def title(self) -> str:
        """The task's title (label or stmt, with the sub-label)."""
        return self.task_spec.title

    @property
    def env(self) -> str:
        """The ``env`` tag, or ``"Unspecified env"``."""
        env = self.task_spec.env
        return "Unspecified env" if env is None else env

    @property
    def as_row_name(self) -> str:
        """The row name in a Compare table: sub-label, else stmt."""
        return self.sub_label or self.stmt or "[Unknown]"

    def __repr__(self) -> str:
        self._lazy_init()
        n = len(self._sorted_times)
        unit, scale = select_unit(self._median)
        lines = [object.__repr__(self), self.task_spec.summarize(),
                 f"  {'Median: ' if n > 1 else ''}{self._median / scale:.2f} {unit}"]
        if n >= 4:
            lines.append(f"  IQR:    {self.iqr / scale:.2f} {unit} "
                         f"({self._p25 / scale:.2f} to {self._p75 / scale:.2f})")
        threads = self.num_threads
        lines.append(f"  {n} measurement{'s' if n > 1 else ''}, {self.number_per_run} runs "
                     f"{'per measurement,' if n > 1 else ','} {threads} "
                     f"thread{'s' if threads > 1 else ''}")
        lines += self._warnings
        return "\n".join(lines).strip()

    @staticmethod
    def merge(measurements: Iterable[Measurement]) -> list:
        """One Measurement per distinct TaskSpec, pooling the per-run times of its
        replicates (``number_per_run=1``, no metadata)."""
        groups: dict = defaultdict(list)
        for m in measurements:
            groups[m.task_spec].append(m)
        return [Measurement(number_per_run=1, raw_times=[t for m in group for t in m.times],
                            task_spec=spec)
                for spec, group in groups.items()]


def select_unit(t: float) -> tuple:
    """``(unit, scale)`` that shows ``t`` seconds with O(1) digits: ns, us, ms or s."""
    if t <= 0:
        return "ns", 1e-9
    unit = {-3: "ns", -2: "us", -1: "ms"}.get(max(int(math.log10(t) // 3), -3), "s")
    return unit, {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def unit_to_english(u: str) -> str:
    """``"us"`` -> ``"microsecond"``."""
    return {"ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second"}[u]


def trim_sigfig(x: float, n: int) -> float:
    """``x`` rounded to ``n`` significant figures (3.14159, 2 -> 3.1)."""
    if n != int(n):
        raise ValueError("Number of significant figures must be an integer")
    if x == 0:
        return 0.0
    magnitude = math.ceil(math.log10(abs(x)))
    scale = 10.0 ** (magnitude - n)
    return float(round(x / scale) * scale)


def ordered_unique(elements: Iterable) -> list:
    """The distinct elements, in first-seen order."""
    return list(dict.fromkeys(elements))


@contextlib.contextmanager
def set_torch_threads(n: int):
    """Run the block with ``n`` BLAS threads (``fw.set_num_threads``), then restore."""
    from ....settings import get_num_threads, set_num_threads
    prior = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(prior)
