"""``python -m framework.bench attention --device cuda``: fused (flash) attention against
the math path (matmul, softmax, matmul: the L x S scores in memory), forward and
forward + backward through ``scaled_dot_product_attention``, same inputs, side by side.

The default case is a GPT training shape: B=4, H=8, L=S=1024, D=64, causal, bf16. GPU time
comes from CUDA events while earlier copies keep the GPU busy (``kernels.GpuTimer``), so
the host's autograd bookkeeping is hidden; TFLOP/s count the useful matmul work (causal:
half the scores). ``python -m framework.bench kernels`` adds the same rows to its table.
On the simulated device it checks the fused path against the math path at a small size.
"""

from __future__ import annotations

import argparse

import numpy as np

from .report import Report, Row, add_report_args, cuda_device_problem, finish

DEFAULT = dict(batch=4, heads=8, seq=1024, dim=64, dtype="bfloat16", causal=True)


def _inputs(fw, batch, heads, seq, dim, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dt = getattr(fw, dtype)
    q, k, v, g = (fw.tensor(rng.standard_normal((batch, heads, seq, dim)).astype(np.float32),
                            device="cuda").to(dt) for _ in range(4))
    return [t.requires_grad_() for t in (q, k, v)], g


def _runner(fw, backend, qkv, grad, causal, backward):
    """One call of sdpa restricted to ``backend`` (and its backward when asked)."""
    from ..nn.attention import sdpa_kernel
    from ..nn.functional import scaled_dot_product_attention as sdpa

    def run():
        with sdpa_kernel(backend):
            out = sdpa(*qkv, is_causal=causal)
        if backward:
            fw.autograd.grad(out, qkv, grad)
    return run


def flops(batch, heads, seq, dim, causal, backward) -> float:
    """Matmul FLOPs of attention: 2 products of 2*L*S*D forward, 2.5x that backward."""
    fwd = 4.0 * batch * heads * seq * seq * dim * (0.5 if causal else 1.0)
    return fwd * (3.5 if backward else 1.0)


def add_rows(fw, timer, report, batch=4, heads=8, seq=1024, dim=64, dtype="bfloat16",
             causal=True) -> None:
    """Time flash vs math (forward, forward + backward) and add one row each."""
    from ..nn.attention import SDPBackend
    qkv, grad = _inputs(fw, batch, heads, seq, dim, dtype)
    shape = f"B={batch} H={heads} L=S={seq} D={dim} {dtype}{' causal' if causal else ''}"
    for backward in (False, True):
        fused = _runner(fw, SDPBackend.FLASH_ATTENTION, qkv, grad, causal, backward)
        math = _runner(fw, SDPBackend.MATH, qkv, grad, causal, backward)
        t_fused, _, host = timer.time(fused)
        t_math, _, _ = timer.time(math)
        work = flops(batch, heads, seq, dim, causal, backward)
        what = "fwd+bwd" if backward else "fwd"
        print(f"[attention {what}] flash {t_fused * 1e6:.0f} us ({work / t_fused / 1e12:.0f} "
              f"TFLOP/s), math {t_math * 1e6:.0f} us ({work / t_math / 1e12:.0f} TFLOP/s)")
        report.add(Row(f"attention {what} {shape}: flash vs math path (ref column) "
                       f"[{work / t_fused / 1e12:.0f} vs {work / t_math / 1e12:.0f} TFLOP/s; "
                       f"host {host * 1e6:.0f} us/call]", t_fused, t_math, None, "attention"))


def smoke(fw) -> float:
    """Simulated device: the fused path (values and gradients) vs the math path at a small
    size; returns the largest difference."""
    from ..nn.attention import SDPBackend, sdpa_kernel
    from ..nn.functional import scaled_dot_product_attention as sdpa
    qkv, grad = _inputs(fw, 1, 2, 48, 16, "float32")
    results = []
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.MATH):
        with sdpa_kernel(backend):
            out = sdpa(*qkv, is_causal=True)
        results.append([out] + list(fw.autograd.grad(out, qkv, grad)))
    worst = max(float(np.max(np.abs(a.detach().cpu().numpy() - b.detach().cpu().numpy())))
                for a, b in zip(*results))
    print(f"  {'attention fwd+bwd (flash vs math)':<36} max |flash - math| = {worst:.2e}")
    return worst


def main(argv: list[str] | None = None) -> int:
    """Run the attention benchmark and print the table."""
    p = argparse.ArgumentParser(prog="python -m framework.bench attention", description=__doc__)
    p.add_argument("--device", default="cuda", help="only 'cuda' is meaningful")
    p.add_argument("--batch", type=int, default=DEFAULT["batch"])
    p.add_argument("--heads", type=int, default=DEFAULT["heads"])
    p.add_argument("--seq", type=int, default=DEFAULT["seq"], help="L = S")
    p.add_argument("--dim", type=int, default=DEFAULT["dim"], help="head dim (<= 128)")
    p.add_argument("--dtype", default=DEFAULT["dtype"],
                   choices=("bfloat16", "float16", "float32"))
    p.add_argument("--no-causal", dest="causal", action="store_false")
    p.add_argument("--launches", type=int, default=10, help="calls per timed loop")
    p.add_argument("--repeat", type=int, default=5, help="timed loops (best is kept)")
    add_report_args(p)
    args = p.parse_args(argv)
    import framework as fw
    problem = cuda_device_problem(fw, args.device, "attention")
    if problem is not None:
        return problem
    if fw.cuda.is_simulated():
        print("device 'cuda' is the simulated device: timings need a real GPU. Checking the "
              "fused path against the math path instead:")
        return 0 if smoke(fw) < 1e-3 else 1
    from .kernels import GpuTimer
    timer = GpuTimer(fw, args.launches, args.repeat)
    report = Report(f"Fused attention vs the math path on {fw.cuda.get_device_name()}",
                    ref_name="math path", clock="GPU time: events under a busy GPU")
    add_rows(fw, timer, report, args.batch, args.heads, args.seq, args.dim, args.dtype,
             args.causal)
    return finish(report, args)


if __name__ == "__main__":
    raise SystemExit(main())
