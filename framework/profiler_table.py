"""The text table of ``fw.profiler`` (``prof.table()``, ``prof.key_averages().table()``).

Columns: name, kind, calls, total / self / average time, self time as a share of the
block's wall time; then, when present, CUDA time, "CPU Mem" and "Self CPU Mem"
(``profile_memory=True``), "Input Shapes" (``group_by_input_shape=True``) and "Source
Location" (``group_by_stack_n=N``, one frame a line).
"""

from __future__ import annotations

from .errors import ArgumentError
from .profiler_memory import format_memory

SORT_KEYS = {
    "total": "total", "cpu_time_total": "total", "self": "self",
    "self_cpu_time_total": "self", "count": "count", "avg": "avg", "cpu_time": "avg",
    "cuda_total": "cuda_total", "cuda_time_total": "cuda_total", "name": "name",
    "cpu_memory_usage": "cpu_memory_usage", "self_cpu_memory_usage": "self_cpu_memory_usage",
}


def table(rows, prof, sort_by: str = "total", row_limit: int | None = None) -> str:
    """``rows`` (EventAverage) as text, largest ``sort_by`` first, at most ``row_limit``
    rows, with the wall time of ``prof``'s block and how much of it the events cover."""
    key = SORT_KEYS.get(sort_by)
    if key is None:
        raise ArgumentError(f"profile.table: sort_by must be one of "
                            f"{sorted(SORT_KEYS)}, got {sort_by!r}")
    rows = sorted(rows, key=lambda r: getattr(r, key), reverse=key != "name")
    if row_limit is not None and row_limit >= 0:
        rows = rows[:row_limit]
    cuda = any(r.cuda_total for r in rows)
    memory = getattr(prof, "profile_memory", False)
    shapes = any(r.input_shapes is not None for r in rows)
    stacks = any(r.stack for r in rows)
    width = max([len(r.name) for r in rows] + [4])
    shape_w = max([len(r.input_shapes or "") for r in rows] + [12])
    head = f"{'name':<{width}}  {'kind':<8} {'calls':>7} {'total ms':>10} " \
           f"{'self ms':>10} {'avg us':>10} {'% self':>7}"
    if cuda:
        head += f" {'cuda ms':>10}"
    if memory:
        head += f" {'CPU Mem':>12} {'Self CPU Mem':>12}"
    if shapes:
        head += f"  {'Input Shapes':<{shape_w}}"
    if stacks:
        head += "  Source Location"
    lines = [head, "-" * len(head)]
    wall = prof.wall_time or 1e-30
    for r in rows:
        line = (f"{r.name:<{width}}  {r.kind:<8} {r.count:>7} {r.total * 1e3:>10.3f} "
                f"{r.self * 1e3:>10.3f} {r.avg * 1e6:>10.1f} "
                f"{100 * r.self / wall:>6.1f}%")
        if cuda:
            line += f" {r.cuda_total * 1e3:>10.3f}"
        if memory:
            line += (f" {format_memory(r.cpu_memory_usage):>12}"
                     f" {format_memory(r.self_cpu_memory_usage):>12}")
        if shapes:
            line += f"  {r.input_shapes or '':<{shape_w}}"
        if stacks:
            pad = " " * (len(line) + 2)
            line += "  " + "\n".join([r.stack[0]] + [pad + f for f in r.stack[1:]]) \
                if r.stack else ""
        lines.append(line.rstrip())
    lines.append("-" * len(head))
    lines.append(f"wall time {prof.wall_time * 1e3:.3f} ms; events cover "
                 f"{prof.total_time * 1e3:.3f} ms ({100 * prof.total_time / wall:.1f}%), "
                 "the rest is Python outside ops")
    return "\n".join(lines)
