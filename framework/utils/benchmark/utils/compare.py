"""``Compare``: many Measurements as one table, as ``torch.utils.benchmark.Compare``.

One table per ``label``; a row per (``num_threads``, ``env``, ``sub_label`` or ``stmt``),
rows grouped under a ``"N threads: ----"`` line; a column per ``description``. Cells are
medians in one unit for the whole table. Replicates (same TaskSpec) are merged first.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict

from . import common

__all__ = ["Colorize", "Compare"]

BEST = "\033[92m"
GOOD = "\033[34m"
BAD = "\033[2m\033[91m"
VERY_BAD = "\033[31m"
BOLD = "\033[1m"
TERMINATE = "\033[0m"


class Colorize(enum.Enum):
    """How :meth:`Compare.colorize` marks the best cells."""

    NONE = "none"
    COLUMNWISE = "columnwise"
    ROWWISE = "rowwise"


def _color(segment: str, value: float, best: float) -> str:
    """Green for the best (within 1%), blue within 10%, dim red at 2x, red at 5x."""
    if value <= best * 1.01 or value <= best + 100e-9:
        return BEST + BOLD + segment + TERMINATE * 2
    if value <= best * 1.1:
        return GOOD + BOLD + segment + TERMINATE * 2
    if value >= best * 5:
        return VERY_BAD + BOLD + segment + TERMINATE * 2
    if value >= best * 2:
        return BAD + segment + TERMINATE * 2
    return segment


class _Column:
    """The number format of one column, from the results in it."""

    def __init__(self, results, scale: float, trim: bool, highlight: bool):
        present = [r for r in results if r is not None]
        self.trim = trim
        self.highlight = highlight and any(r.has_warnings for r in present)
        digits = [(math.ceil(math.log10(r.median / scale)), r) for r in present]
        unit_digits = max(d for d, _ in digits)
        decimals = min(max(r.significant_figures - d, 0) for d, r in digits) if trim else 1
        width = unit_digits + decimals + (1 if decimals else 0)
        self.template = f"{{:>{width}.{decimals}f}}{{:>{7 if self.highlight else 0}}}"

    def cell(self, value: float | None, sigfigs: int, spread: float | None) -> str:
        """``value`` formatted (blank of the same width for a missing result)."""
        if value is None:
            return " " * len(self.cell(1, sigfigs, None))
        if self.trim:
            value = common.trim_sigfig(value, sigfigs)
        note = f" (! {spread * 100:.0f}%)" if self.highlight and spread is not None else ""
        return self.template.format(value, note)


class Table:
    """The table of one label."""

    def __init__(self, results: list, colorize: Colorize, trim: bool, highlight: bool):
        if len({r.label for r in results}) != 1:
            raise ValueError("All results must share the same label")
        self.results = results
        self.colorize = colorize
        self.highlight = highlight
        self.label = results[0].label
        self.time_unit, self.time_scale = common.select_unit(min(r.median for r in results))
        rows = common.ordered_unique(self.row_key(r) for r in results)
        self.row_keys = sorted(rows, key=lambda k: (k[0], k[1]))  # stable: stmt order kept
        self.column_keys = common.ordered_unique(r.description for r in results)
        cells = {(self.row_key(r), r.description): r for r in results}
        self.grid = [[cells.get((rk, ck)) for ck in self.column_keys] for rk in self.row_keys]
        # colour and number format are decided within each thread-count group
        groups = defaultdict(list)
        for rk, row in zip(self.row_keys, self.grid):
            groups[rk[0]].append(row)
        self.columns = [_Column([row[j] for g in groups.values() for row in g],
                                self.time_scale, trim, highlight)
                        for j in range(len(self.column_keys))]
        self.groups = groups

    @staticmethod
    def row_key(m) -> tuple:
        """(threads, env, row name) of a measurement."""
        return m.num_threads, m.env, m.as_row_name

    def _row_strings(self, rk, row, render_env: bool, env_width: int) -> list:
        env = f"({rk[1]})" if render_env else ""
        out = ["  " + env.ljust(env_width + 4) + rk[2]]
        for m, col in zip(row, self.columns):
            if m is None:
                out.append(col.cell(None, 1, None))
            else:
                out.append(col.cell(m.median / self.time_scale, m.significant_figures,
                                    m.iqr / m.median if m.has_warnings else None))
        return out

    def _best(self, rk, row) -> list:
        if self.colorize is Colorize.ROWWISE:
            best = min(m.median for m in row if m is not None)
            return [best] * len(row)
        if self.colorize is Colorize.COLUMNWISE:
            group = self.groups[rk[0]]
            return [min((r[j].median for r in group if r[j] is not None), default=None)
                    for j in range(len(row))]
        return [None] * len(row)

    def render(self) -> str:
        """The table as text, ending with the unit line."""
        envs = {r.env for r in self.results}
        render_env = len(envs) > 1
        env_width = max(len(e) for e in envs) if render_env else 0
        strings = [[""] + [str(c) if c is not None else "" for c in self.column_keys]]
        prev_env = None
        prev_threads = None
        for rk, row in zip(self.row_keys, self.grid):
            if rk[0] != prev_threads:
                prev_threads, prev_env = rk[0], None
            strings.append(self._row_strings(rk, row, render_env and rk[1] != prev_env,
                                             env_width))
            prev_env = rk[1]
        widths = [max(len(s[i]) for s in strings) for i in range(len(strings[0]))]
        head = "  |  ".join(s.center(w) for s, w in zip(strings[0], widths))
        lines, prev_threads = [head], None
        for rk, row, cells in zip(self.row_keys, self.grid, strings[1:]):
            if rk[0] != prev_threads:
                prev_threads = rk[0]
                lines.append(f"{rk[0]} threads: ".ljust(len(head), "-"))
            parts = [cells[0].ljust(widths[0])]
            for cell, w, m, best in zip(cells[1:], widths[1:], row, self._best(rk, row)):
                cell = cell.center(w)
                if self.colorize is not Colorize.NONE and m is not None and best is not None:
                    cell = _color(cell, m.median, best)
                parts.append(cell)
            lines.append("  |  ".join(parts))
        title = f"[{(' ' + (self.label or '') + ' ').center(len(head) - 2, '-')}]"
        text = [title] + lines + ["", f"Times are in {common.unit_to_english(self.time_unit)}s "
                                      f"({self.time_unit})."]
        if self.highlight and any(r.has_warnings for r in self.results):
            text.append("(! XX%) Measurement has high variance, where XX is the IQR / median "
                        "* 100.")
        return "\n".join(text) + "\n"


class Compare:
    """Print many Measurements as tables (see the module docstring): ``print()`` or
    ``str()``; :meth:`trim_significant_figures`, :meth:`colorize` and
    :meth:`highlight_warnings` change the rendering."""

    def __init__(self, results: list):
        self._results: list = []
        self.extend_results(results)
        self._trim_significant_figures = False
        self._colorize = Colorize.NONE
        self._highlight_warnings = False

    def __str__(self) -> str:
        return "\n".join(self._render())

    def extend_results(self, results) -> None:
        """Add Measurements to the ones already held."""
        for r in results:
            if not isinstance(r, common.Measurement):
                raise ValueError(f"Expected an instance of `Measurement`, got {type(r)} "
                                 "instead.")
        self._results.extend(results)

    def trim_significant_figures(self) -> None:
        """Show only the digits each measurement's spread supports."""
        self._trim_significant_figures = True

    def colorize(self, rowwise: bool = False) -> None:
        """Colour cells against the best of their column (or row, ``rowwise=True``)."""
        self._colorize = Colorize.ROWWISE if rowwise else Colorize.COLUMNWISE

    def highlight_warnings(self) -> None:
        """Mark cells whose IQR is large compared to their median: ``(! XX%)``."""
        self._highlight_warnings = True

    def print(self) -> None:
        """Print the tables."""
        print(str(self))

    def _render(self) -> list:
        by_label: dict = defaultdict(list)
        for r in common.Measurement.merge(self._results):
            by_label[r.label].append(r)
        return [Table(group, self._colorize, self._trim_significant_figures,
                      self._highlight_warnings).render() for group in by_label.values()]
