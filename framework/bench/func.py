"""``python -m framework.bench func``: the functional transforms, side by side.

- per-sample gradients ``vmap(grad(loss), in_dims=(None, 0, 0))`` of a small MLP: the
  batched vmap (one trace, batching rules) against calling ``fw.grad`` per sample;
- ``jacrev`` of a 64 -> 64 map (one VJP per output row, batched by vmap) against the
  explicit loop of VJPs.
"""

from __future__ import annotations

import argparse


def _per_sample_case(batch: int):
    import framework as fw
    from framework import nn
    fw.manual_seed(0)
    params = (fw.randn(128, 64) * 0.1, fw.zeros(128), fw.randn(10, 128) * 0.1, fw.zeros(10))

    def loss(params, x, y):
        w1, b1, w2, b2 = params
        h = (x @ w1.t() + b1).relu()
        return nn.functional.cross_entropy((h @ w2.t() + b2)[None], y[None])

    g = fw.grad(loss)
    xs, ys = fw.randn(batch, 64), fw.randint(0, 10, (batch,))
    batched = fw.vmap(g, in_dims=(None, 0, 0))

    def run_batched():
        return batched(params, xs, ys)

    def run_loop():
        return [g(params, xs[i], ys[i]) for i in range(batch)]
    return run_batched, run_loop


def _jacrev_case(n: int):
    import framework as fw
    fw.manual_seed(1)
    w = fw.randn(n, n) / n ** 0.5
    x = fw.randn(n)

    def f(t):
        return (w @ t).tanh() * t

    jac = fw.func.jacrev(f)

    def run_loop():
        _, pullback = fw.vjp(f, x)
        return fw.stack([pullback(e)[0] for e in fw.eye(n)])
    return (lambda: jac(x)), run_loop


def main(argv=None) -> int:
    """Command-line entry point (``python -m framework.bench func``)."""
    from . import report
    p = argparse.ArgumentParser(prog="python -m framework.bench func",
                                description="vmap's batched evaluation vs loops")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--min-time", type=float, default=0.2)
    report.add_report_args(p)
    a = p.parse_args(argv)
    report.set_clock(a.clock)
    rep = report.Report("functional transforms: batched (framework) vs a loop (reference)",
                        ref_name="loop", clock=a.clock)
    for name, (fn, ref) in ((f"per-sample grads, MLP 64-128-10, batch {a.batch}",
                             _per_sample_case(a.batch)),
                            ("jacrev of a 64 -> 64 map", _jacrev_case(64))):
        t, r = report.time_pair(fn, ref, min_time=a.min_time)
        rep.add(report.Row(name, t, r))
    return report.finish(rep, a)


if __name__ == "__main__":
    raise SystemExit(main())
