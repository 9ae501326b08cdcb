"""``python -m framework.bench kernels --device cuda``: memory bandwidth of generated fused
kernels (softmax, layer norm, cross-entropy, a 5-op pointwise chain) and of the
hand-written ones, as a fraction of a device-to-device copy measured in the same run.

Each case moves at least ``--mb`` MB (default 64); consecutive calls read ``--sets``
different input sets (default 4), so the data comes from memory rather than the L2 cache
(50-60 MB on Hopper). Kernels are timed with CUDA events over back-to-back launches of
the compiled graph's kernel steps, enqueued while the GPU is kept busy by earlier copies,
so the events measure GPU time alone; the host's time per call (Python dispatch and
launch) and the end-to-end rate without that cover are printed beside it. The table's
ratio is copy bandwidth / kernel bandwidth (target <= 1/0.85, i.e. the kernel reaches 85%
of the copy's bandwidth). ``--sweep`` also times each kernel step under a range of launch
geometries (block sizes, warps, persistent or looped rows).

On the simulated device (Triton interpreter) bandwidth means nothing: the command says so
and runs each case once at a small size, checked against NumPy.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from compiler.codegen.triton_launch import next_pow2

from .report import Report, Row, add_report_args, finish

TARGET = 1 / 0.85


def _cases(fw, rows: int, cols: int):
    """(name, fn, args, bytes moved, NumPy reference) of each benchmarked computation."""
    from framework import nn
    x = fw.randn(rows, cols, device="cuda")
    y = fw.randn(rows, cols, device="cuda")
    w, b = fw.randn(cols, device="cuda"), fw.randn(cols, device="cuda")
    t = fw.randint(0, cols, (rows,), device="cuda")
    n = rows * cols * 4
    xs, ys, ws, bs, ts = (a.cpu().numpy().astype(np.float64) for a in (x, y, w, b, t))

    def np_softmax(a):
        e = np.exp(a - a.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def np_ln(a):
        mu = a.mean(-1, keepdims=True)
        return (a - mu) / np.sqrt(a.var(-1, keepdims=True) + 1e-5) * ws + bs

    def np_ce(a):
        lse = np.log(np.exp(a - a.max(-1, keepdims=True)).sum(-1)) + a.max(-1)
        return (lse - a[np.arange(rows), ts.astype(int)]).mean()

    def chain(a, c):
        return ((a * 1.5 + c).sigmoid() * a).exp() - 1.0

    def np_chain(a, c):
        return np.exp((1 / (1 + np.exp(-(a * 1.5 + c)))) * a) - 1.0
    return [
        ("softmax (fused, generated)", lambda a: fw.softmax(a, -1), (x,), 2 * n,
         lambda: np_softmax(xs)),
        ("layer_norm (fused, generated)",
         lambda a: nn.functional.layer_norm(a, (cols,), w, b), (x,), 2 * n, lambda: np_ln(xs)),
        ("cross_entropy (fused, generated)", nn.functional.cross_entropy, (x, t), n,
         lambda: np_ce(xs)),
        ("5-op pointwise chain (generated)", chain, (x, y), 3 * n, lambda: np_chain(xs, ys)),
    ]


def _step_runner(cf, args):
    """A closure running the compiled graph's kernel steps on fixed inputs, and the steps."""
    entry = cf._entry_for(tuple(args), {})
    plan = entry.plan
    graph = plan.graph  # the decomposed graph the kernel steps were built from
    env = dict(zip(graph.inputs, [a._data for a in args]))
    env.update({v: (t if t.device.type == "cuda" else t.to("cuda"))._data
                for v, t in graph.constants.items()})
    sizes = {f"ks_{name}": int(v) for name, v in zip(graph.symbols, ())}

    def run(only=None):
        for i, step in enumerate(plan.steps):
            if only is None or i == only:
                step.run(env, sizes, 0)
    return run, plan


def _cycle(runners):
    """One callable running ``runners`` in turn (each call the next one), so that repeated
    calls read several input sets and the working set outgrows the L2 cache."""
    turn = itertools.cycle(runners)
    return lambda *args: next(turn)(*args)


class GpuTimer:
    """Times GPU work alone: a queue of copies keeps the GPU busy while the timed
    launches are enqueued, so the events bracket kernel time, not the host's Python."""

    def __init__(self, fw, launches: int, repeat: int):
        from framework.backends.cuda import empty
        from triton_kernels import copy as tk_copy
        self.fw, self.launches, self.repeat = fw, launches, repeat
        n = 64 * 2 ** 20  # 256 MB of float32
        src, dst = empty((n,), np.float32), empty((n,), np.float32)
        self._busy_one = lambda: tk_copy.copy(src, dst)
        self._busy_s = self._events(self._busy_one, 4, 0) / 4 * 1e-3

    def _events(self, fn, launches: int, busy: int) -> float:
        """Milliseconds for ``launches`` calls, ``busy`` copies enqueued first."""
        for _ in range(busy):
            self._busy_one()
        start, end = self.fw.cuda.Event(enable_timing=True), self.fw.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(launches):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def host_seconds(self, fn) -> float:
        """Seconds of host time per call (enqueueing only; the GPU runs behind)."""
        fn()
        self.fw.cuda.synchronize()
        best = float("inf")
        for _ in range(self.repeat):
            t0 = time.perf_counter()
            for _ in range(self.launches):
                fn()
            best = min(best, (time.perf_counter() - t0) / self.launches)
            self.fw.cuda.synchronize()
        return best

    def time(self, fn) -> tuple[float, float, float]:
        """(GPU seconds per call, end-to-end seconds per call, host seconds per call)."""
        host = self.host_seconds(fn)
        busy = int(3 * host * self.launches / self._busy_s) + 2
        gpu = min(self._events(fn, self.launches, busy) for _ in range(self.repeat))
        e2e = min(self._events(fn, self.launches, 0) for _ in range(self.repeat))
        return gpu / self.launches * 1e-3, e2e / self.launches * 1e-3, host


MIN_SWEEP = 2 ** 20  # elements: smaller steps are timed but not swept
POINTWISE_SWEEP = [dict(XBLOCK=b, num_warps=w) for b, w in
                   ((512, 4), (1024, 4), (2048, 8), (4096, 8), (8192, 16))]


def _row_sweep(sms: int) -> list[dict]:
    plain = [dict(XBLOCK=1, num_warps=w, RPERSIST=True, XSTAGES=1, XPROGS=0)
             for w in (4, 8, 16)]
    strided = [dict(XBLOCK=1, num_warps=w, RPERSIST=True, XSTAGES=st, XPROGS=sms * k)
               for k, st, w in ((2, 1, 16), (2, 2, 16), (4, 2, 8), (4, 3, 8), (8, 1, 8),
                                (8, 2, 4), (16, 1, 4))]
    looped = [dict(XBLOCK=1, RBLOCK=rb, num_warps=w, RPERSIST=False, XSTAGES=1, XPROGS=0)
              for rb, w in ((1024, 8), (2048, 8))]
    return plain + strided + looped


def _step_kernels(step) -> list:
    """The generated kernels of a plan step (none for matmul, view and backend steps)."""
    return step.variants() if hasattr(step, "variants") else []


def _launch_configs(step) -> str:
    """The launch constants each kernel of ``step`` last used (autotuned or heuristic)."""
    out = []
    for k in _step_kernels(step):
        for (_, _, _, *_), (_, grid, kw) in k._launches.items():
            keep = {n: v for n, v in kw.items() if n not in ("INDEX64", "RBLOCK")}
            out.append(f"grid {grid[0]}, {keep}")
    return "; ".join(out) or "-"


def _sweep(timer, run, plan, nbytes: int, copy_bw: float) -> None:
    """Time each kernel step of ``plan`` alone, then under each launch geometry of the
    sweep (steps touching fewer than 2**20 elements are only timed)."""
    from compiler.codegen.triton_launch import sm_count
    for i, step in enumerate(plan.steps):
        kernels = _step_kernels(step)
        if not kernels:
            continue
        alone, _, host = timer.time(lambda: run(i))
        print(f"  step {i} ({step.label[:50]}): {alone * 1e6:.1f} us GPU, host {host * 1e6:.0f}"
              f" us; launch: {_launch_configs(step)}")
        extents = [key[:2] for k in kernels for key in k._launches]
        if max(x * r for x, r in extents) < MIN_SWEEP:
            continue
        configs = _row_sweep(sm_count()) if kernels[0].reduction else POINTWISE_SWEEP
        for cfg in configs:
            if kernels[0].reduction and cfg["RPERSIST"]:  # the whole row in one block
                cfg = dict(cfg, RBLOCK=next_pow2(max(r for _, r in extents)))
            for k in kernels:
                k.force = cfg
            try:
                gpu, _, _ = timer.time(lambda: run(i))
                print(f"    {cfg}: {gpu * 1e6:8.1f} us")
            except Exception as e:  # a config the compiler rejects (resources)
                print(f"    {cfg}: failed: {type(e).__name__}: {str(e)[:80]}")
            finally:
                for k in kernels:
                    k.force = None


def _smoke(fw) -> int:
    """Simulated device: run every case once at a small size and check it against NumPy."""
    worst = 0.0
    for name, f, args, _, ref in _cases(fw, 8, 64):
        got = fw.compile(f)(*args).cpu().numpy().astype(np.float64)
        err = float(np.max(np.abs(got - ref())))
        worst = max(worst, err)
        print(f"  {name:<36} max |compiled - NumPy| = {err:.2e}")
    return 0 if worst < 1e-3 else 1


def main(argv: list[str] | None = None) -> int:
    """Run the kernel bandwidth benchmark and print the table."""
    p = argparse.ArgumentParser(prog="python -m framework.bench kernels", description=__doc__)
    p.add_argument("--device", default="cuda", help="only 'cuda' is meaningful")
    p.add_argument("--mb", type=int, default=64, help="MB of input per case (>= 64)")
    p.add_argument("--cols", type=int, default=4096, help="row length of the row kernels")
    p.add_argument("--launches", type=int, default=20, help="launches per timed loop")
    p.add_argument("--repeat", type=int, default=5, help="timed loops (best is kept)")
    p.add_argument("--sets", type=int, default=4,
                   help="input sets read in turn (defeats the L2 cache; default 4)")
    p.add_argument("--sweep", action="store_true",
                   help="also time every kernel step under a range of launch geometries")
    add_report_args(p)
    args = p.parse_args(argv)
    import framework as fw
    if args.device != "cuda":
        print("framework.bench kernels measures GPU kernels: use --device cuda")
        return 2
    if not fw.cuda.is_available():
        try:
            fw.tensor([0.0], device="cuda")
        except fw.DeviceError as e:
            print(f"no CUDA device: {e}")
        return 1
    if fw.cuda.is_simulated():
        print("device 'cuda' is the simulated device (Triton interpreter, FW_TRITON_INTERPRET=1):"
              "\nbandwidth figures need a real GPU. Checking each benchmarked kernel at a "
              "small size instead:")
        return _smoke(fw)
    from triton_kernels import copy as tk_copy
    from framework.backends.cuda import empty
    rows = max(1, args.mb * 2 ** 20 // (4 * args.cols))
    n = rows * args.cols
    timer = GpuTimer(fw, args.launches, args.repeat)
    pairs = [(empty((n,), np.float32), empty((n,), np.float32)) for _ in range(args.sets)]
    t_copy, _, host_copy = timer.time(_cycle([lambda p=p: tk_copy.copy(*p)
                                                     for p in pairs]))
    copy_bw = 2 * n * 4 / t_copy
    report = Report(f"Kernel bandwidth vs device-to-device copy on {fw.cuda.get_device_name()}"
                    f" ({n * 4 / 2 ** 20:.0f} MB per input; copy {copy_bw / 1e9:.0f} GB/s)",
                    ref_name="copy @ same bytes", clock="cuda events, GPU time")
    report.add(Row(f"copy (triton_kernels) [host {host_copy * 1e6:.0f} us/call]", t_copy,
                   t_copy, None, "reference"))
    sets = [_cases(fw, rows, args.cols) for _ in range(args.sets)]
    for j, (name, f, fargs, nbytes, _) in enumerate(sets[0]):
        cf = fw.compile(f)
        cf(*fargs)
        runners = [_step_runner(cf, cases[j][2]) for cases in sets]
        plan = runners[0][1]
        run = _cycle([r for r, _ in runners])
        t, e2e, host = timer.time(run)
        frac = nbytes / t / copy_bw
        print(f"{name}: " + " | ".join(_launch_configs(st) for st in plan.steps))
        report.add(Row(f"{name} [{plan.kernel_count} kernel(s), {frac:.2f} of copy bw; "
                       f"host {host * 1e6:.0f} us/call, end-to-end {nbytes / e2e / copy_bw:.2f}]",
                       t, nbytes / copy_bw, TARGET, "generated"))
        if args.sweep:
            print(f"{name}: launch geometries")
            _sweep(timer, run, plan, nbytes, copy_bw)
    return finish(report, args)


if __name__ == "__main__":
    raise SystemExit(main())
