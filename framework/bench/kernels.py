"""``python -m framework.bench kernels --device cuda``: memory bandwidth of generated fused
kernels (softmax, layer norm, cross-entropy, a 5-op pointwise chain) and of the
hand-written ones, as a fraction of a device-to-device copy measured in the same run.

Each case moves at least ``--mb`` MB (default 64). Kernels are timed with CUDA events over
back-to-back launches of the compiled graph's kernel steps (no Python dispatch in the
loop); the table's ratio is copy bandwidth / kernel bandwidth (target <= 1/0.85, i.e. the
kernel reaches 85% of the copy's bandwidth). On the simulated device (Triton interpreter)
bandwidth means nothing: the command says so and runs each case once at a small size,
checked against NumPy.
"""

from __future__ import annotations

import argparse

import numpy as np

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
    """A closure running the compiled graph's kernel steps on fixed inputs."""
    entry = cf._entry_for(tuple(args), {})
    plan = entry.plan
    graph = plan.graph  # the decomposed graph the kernel steps were built from
    env = dict(zip(graph.inputs, [a._data for a in args]))
    env.update({v: (t if t.device.type == "cuda" else t.to("cuda"))._data
                for v, t in graph.constants.items()})
    sizes = {f"ks_{name}": int(v) for name, v in zip(graph.symbols, ())}

    def run():
        for step in plan.steps:
            step.run(env, sizes, 0)
    return run, plan.kernel_count


def _time_ms(fw, fn, launches: int, repeat: int) -> float:
    """Milliseconds per call of ``fn``: best of ``repeat`` event-timed loops."""
    fn()
    fw.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        start, end = fw.cuda.Event(enable_timing=True), fw.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(launches):
            fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / launches)
    return best


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
    src, dst = empty((n,), np.float32), empty((n,), np.float32)
    t_copy = _time_ms(fw, lambda: tk_copy.copy(src, dst), args.launches, args.repeat)
    copy_bw = 2 * n * 4 / (t_copy * 1e-3)
    report = Report(f"Kernel bandwidth vs device-to-device copy on {fw.cuda.get_device_name()}"
                    f" ({n * 4 / 2 ** 20:.0f} MB per input; copy {copy_bw / 1e9:.0f} GB/s)",
                    ref_name="copy @ same bytes", clock="cuda events")
    report.add(Row("copy (triton_kernels)", t_copy * 1e-3, t_copy * 1e-3, None, "reference"))
    for name, f, fargs, nbytes, _ in _cases(fw, rows, args.cols):
        cf = fw.compile(f)
        cf(*fargs)
        run, kernels = _step_runner(cf, fargs)
        t = _time_ms(fw, run, args.launches, args.repeat) * 1e-3
        frac = nbytes / t / copy_bw
        report.add(Row(f"{name} [{kernels} kernel(s), {frac:.2f} of copy bw]", t,
                       nbytes / copy_bw, TARGET, "generated"))
    return finish(report, args)


if __name__ == "__main__":
    raise SystemExit(main())
