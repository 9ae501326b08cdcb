"""``python -m framework.bench kernels --device cuda``: memory bandwidth of generated fused
kernels (softmax, layer norm, cross-entropy, a 5-op pointwise chain) and of the
hand-written ones, as a fraction of a device-to-device copy measured in the same run.

Each case moves ``--mb`` MB per input (default 64 and 256); consecutive calls read
``--sets`` different input sets (default 4), so the data comes from memory rather than the
L2 cache (50-60 MB on Hopper). The table's GPU time comes from a CUDA graph replaying the
kernel launches of many calls (the host's Python and launch cost drop out); where a graph
cannot be captured, from CUDA events over back-to-back launches enqueued while the GPU is
kept busy by earlier copies. Both are printed, with the host's time per call and the
end-to-end rate without cover. The table's ratio is copy time / kernel time at the same
bytes (target <= 1/0.85, i.e. the kernel reaches 85% of the copy's bandwidth). ``--sweep``
also times each kernel step under a range of launch geometries (block sizes, warps,
persistent or looped rows).

On the simulated device (Triton interpreter) bandwidth means nothing: the command says so
and runs each case once at a small size, checked against NumPy.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from compiler.codegen.triton_launch import next_pow2

from . import attention
from .cuda_graph import graph_seconds, record_launches, replay
from .report import Report, Row, add_report_args, cuda_device_problem, finish

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
        self.graph_error: str | None = None
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

    def graph(self, fn) -> float | None:
        """GPU seconds per call of the launch-only ``fn`` by CUDA-graph replay, or None
        (with the reason printed once) where the graph cannot be captured."""
        if self.graph_error is not None:
            return None
        try:
            return graph_seconds(self.fw, fn, 4 * self.launches, self.repeat)
        except Exception as e:  # a driver or launcher refusing capture: fall back to events
            self.graph_error = f"{type(e).__name__}: {e}"
            print(f"CUDA-graph timing unavailable ({self.graph_error}); using events only")
            return None


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


def _replayed(run, kernels, sets: int, launches: int, only=None):
    """A launch-only callable cycling through the recorded kernel launches of ``sets``
    calls of ``run(only)`` (one per input set), or None when a call made other launches
    than ``launches`` generated ones (a step the replay would miss)."""
    replays = []
    for _ in range(sets):
        calls = record_launches(lambda: run(only), kernels)
        if calls is None or len(calls) != launches:
            return None
        replays.append(replay(calls))
    return _cycle(replays)


def _gpu_time(timer, run, kernels, sets: int, launches: int, only=None):
    """(GPU seconds per call, how they were measured, end-to-end s, host s): a CUDA-graph
    replay of the recorded launches where possible, else events under a busy GPU."""
    events, e2e, host = timer.time(lambda: run(only))
    replayed = _replayed(run, kernels, sets, launches, only)
    graph = timer.graph(replayed) if replayed is not None else None
    if graph is None:
        return events, "events", e2e, host
    print(f"    graph replay {graph * 1e6:.1f} us, events under a busy GPU {events * 1e6:.1f} us")
    return graph, "graph", e2e, host


def _sweep(timer, run, plan, sets: int) -> None:
    """Time each kernel step of ``plan`` alone, then under each launch geometry of the
    sweep (steps touching fewer than 2**20 elements are only timed)."""
    from compiler.codegen.triton_launch import sm_count
    for i, step in enumerate(plan.steps):
        kernels = _step_kernels(step)
        if not kernels:
            continue
        alone, how, _, host = _gpu_time(timer, run, kernels, sets, 1, i)
        print(f"  step {i} ({step.label[:50]}): {alone * 1e6:.1f} us GPU ({how}), host "
              f"{host * 1e6:.0f} us; launch: {_launch_configs(step)}")
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
                gpu, how, _, _ = _gpu_time(timer, run, kernels, sets, 1, i)
                print(f"    {cfg}: {gpu * 1e6:8.1f} us ({how})")
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
    worst = max(worst, attention.smoke(fw))
    return 0 if worst < 1e-3 else 1


def _sizes(text: str) -> list[int]:
    """``--mb`` values: a comma-separated list of MB per input."""
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MB values like 64,256, got {text!r}") \
            from None
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return sizes


def _bench_size(fw, timer, report, args, mb: int) -> None:
    """Measure the copy and every case with ``mb`` MB per input; add rows to ``report``."""
    from triton_kernels import copy as tk_copy
    from framework.backends.cuda import empty
    rows = max(1, mb * 2 ** 20 // (4 * args.cols))
    n = rows * args.cols
    size = f"{n * 4 / 2 ** 20:.0f} MB"
    pairs = [(empty((n,), np.float32), empty((n,), np.float32)) for _ in range(args.sets)]
    copies = _cycle([lambda p=p: tk_copy.copy(*p) for p in pairs])
    t_copy, _, host_copy = timer.time(copies)
    graph_copy = timer.graph(copies)  # the copy launches one kernel and allocates nothing
    t_copy = graph_copy if graph_copy is not None else t_copy
    copy_bw = 2 * n * 4 / t_copy
    print(f"[{size} per input] copy: {copy_bw / 1e9:.0f} GB/s "
          f"({'graph replay' if graph_copy is not None else 'events'})")
    report.add(Row(f"[{size}] copy (triton_kernels) [{copy_bw / 1e9:.0f} GB/s; host "
                   f"{host_copy * 1e6:.0f} us/call]", t_copy, t_copy, None, f"copy {mb}"))
    sets = [_cases(fw, rows, args.cols) for _ in range(args.sets)]
    for j, (name, f, fargs, nbytes, _) in enumerate(sets[0]):
        cf = fw.compile(f)
        cf(*fargs)
        runners = [_step_runner(cf, cases[j][2]) for cases in sets]
        plan = runners[0][1]
        run = _cycle([r for r, _ in runners])
        kernels = [k for st in plan.steps for k in _step_kernels(st)]
        print(f"[{size}] {name}: " + " | ".join(_launch_configs(st) for st in plan.steps))
        t, how, e2e, host = _gpu_time(timer, run, kernels, args.sets, plan.kernel_count)
        frac = nbytes / t / copy_bw
        report.add(Row(f"[{size}] {name} [{plan.kernel_count} kernel(s), {frac:.2f} of copy "
                       f"bw ({how}); host {host * 1e6:.0f} us/call, end-to-end "
                       f"{nbytes / e2e / copy_bw:.2f}]", t, nbytes / copy_bw, TARGET,
                       f"generated {mb}"))
        if args.sweep and mb == args.mb[0]:  # the geometries' ranking: at the first size
            print(f"[{size}] {name}: launch geometries")
            _sweep(timer, run, plan, args.sets)


def main(argv: list[str] | None = None) -> int:
    """Run the kernel bandwidth benchmark and print the table."""
    p = argparse.ArgumentParser(prog="python -m framework.bench kernels", description=__doc__)
    p.add_argument("--device", default="cuda", help="only 'cuda' is meaningful")
    p.add_argument("--mb", type=_sizes, default=[64, 256],
                   help="MB of input per case, comma-separated (default 64,256)")
    p.add_argument("--cols", type=int, default=4096, help="row length of the row kernels")
    p.add_argument("--launches", type=int, default=20, help="launches per timed loop")
    p.add_argument("--repeat", type=int, default=5, help="timed loops (best is kept)")
    p.add_argument("--sets", type=int, default=4,
                   help="input sets read in turn (defeats the L2 cache; default 4)")
    p.add_argument("--sweep", action="store_true",
                   help="also time every kernel step under a range of launch geometries "
                        "(at the first --mb size)")
    add_report_args(p)
    args = p.parse_args(argv)
    import framework as fw
    problem = cuda_device_problem(fw, args.device, "kernels")
    if problem is not None:
        return problem
    if fw.cuda.is_simulated():
        print("device 'cuda' is the simulated device (Triton interpreter, FW_TRITON_INTERPRET=1):"
              "\nbandwidth figures need a real GPU. Checking each benchmarked kernel at a "
              "small size instead:")
        return _smoke(fw)
    timer = GpuTimer(fw, args.launches, args.repeat)
    report = Report(f"Kernel bandwidth vs device-to-device copy on {fw.cuda.get_device_name()}",
                    ref_name="copy @ same bytes",
                    clock="GPU time: CUDA-graph replay (else events under a busy GPU)")
    for mb in args.mb:
        _bench_size(fw, timer, report, args, mb)
    try:  # compute-bound, so not a bandwidth row: flash vs the math path (bench/attention.py)
        attention.add_rows(fw, timer, report, **attention.DEFAULT)
    except Exception as e:  # keep the bandwidth table when the attention case fails
        print(f"attention benchmark failed: {type(e).__name__}: {e}")
    return finish(report, args)


if __name__ == "__main__":
    raise SystemExit(main())
