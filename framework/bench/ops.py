"""``python -m framework.bench ops``: per-call time of eager ops next to the same raw NumPy
call, measured side by side in one run.

Small ops (64 elements; 16x16 matmul) measure the framework's dispatch overhead, with and
without ``requires_grad`` (the grad case times the forward op only, graph recording
included). Large ops (1M elements; 512x512 matmul) should cost what NumPy costs.
"""

from __future__ import annotations

import argparse

import numpy as np

from .report import Report, Row, add_report_args, finish, set_clock, time_pair

SMALL_TARGET, SMALL_GRAD_TARGET, LARGE_TARGET = 8.0, 15.0, 1.1


def _cases(n_small: int, n_large: int, m_small: int, m_large: int):
    """(group, name, framework call, NumPy call, target) for every case."""
    import framework as fw
    rng = np.random.default_rng(0)
    out = []
    for group, n, m in (("small", n_small, m_small), ("large", n_large, m_large)):
        a, b = (rng.standard_normal(n).astype(np.float32) for _ in range(2))
        ma, mb = (rng.standard_normal((m, m)).astype(np.float32) for _ in range(2))
        grads = (False, True) if group == "small" else (False,)
        for grad in grads:
            x, y = fw.tensor(a, requires_grad=grad), fw.tensor(b, requires_grad=grad)
            mx, my = fw.tensor(ma, requires_grad=grad), fw.tensor(mb, requires_grad=grad)
            target = LARGE_TARGET if group == "large" else \
                (SMALL_GRAD_TARGET if grad else SMALL_TARGET)
            tag = f"{group}{' grad' if grad else ''}"
            out += [
                (tag, f"add  {n}", lambda x=x, y=y: x + y, lambda a=a, b=b: np.add(a, b), target),
                (tag, f"mul  {n}", lambda x=x, y=y: x * y, lambda a=a, b=b: np.multiply(a, b),
                 target),
                (tag, f"sum  {n}", lambda x=x: x.sum(), lambda a=a: np.sum(a), target),
                (tag, f"matmul {m}x{m}", lambda mx=mx, my=my: mx @ my,
                 lambda ma=ma, mb=mb: np.matmul(ma, mb), target),
            ]
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the eager-op benchmark and print the table."""
    p = argparse.ArgumentParser(prog="python -m framework.bench ops", description=__doc__)
    p.add_argument("--repeat", type=int, default=7, help="timing repeats (best is kept)")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="seconds per timing loop")
    p.add_argument("--small", type=int, default=64, help="elements of the small ops")
    p.add_argument("--large", type=int, default=1 << 20, help="elements of the large ops")
    add_report_args(p)
    args = p.parse_args(argv)
    set_clock(args.clock)
    report = Report("Eager op overhead: framework vs raw NumPy (float32, CPU)",
                    ref_name="numpy", clock=args.clock)
    for group, name, fn, ref, target in _cases(args.small, args.large, 16, 512):
        t_fn, t_ref = time_pair(fn, ref, min_time=args.min_time, repeat=args.repeat)
        label = f"{name}{' (requires_grad)' if 'grad' in group else ''}"
        report.add(Row(label, t_fn, t_ref, target, group))
    return finish(report, args)
