"""``python -m framework.demo`` (``make demo``): see :mod:`framework.demo`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .train import DemoConfig


def parse_args(argv=None) -> tuple[DemoConfig, Path, int]:
    """The command line as (config, output directory, characters to sample)."""
    d = DemoConfig()
    p = argparse.ArgumentParser(prog="python -m framework.demo",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                description="Train a small character-level GPT on the "
                                "framework's own source, eagerly and then through "
                                "fw.compile; compare speed; checkpoint; export to ONNX.")
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--steps", type=int, default=d.steps, help="training steps in total")
    p.add_argument("--eager-steps", type=int, default=None,
                   help=f"steps run eagerly before compiling (when not given: {d.eager_steps}, or "
                   "a fifth of --steps when that is smaller)")
    p.add_argument("--no-compile", action="store_true", help="run every step eagerly")
    p.add_argument("--out", default="demo_out", help="output directory")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--block-size", type=int, default=d.block_size, help="context length")
    p.add_argument("--n-layer", type=int, default=d.n_layer)
    p.add_argument("--n-head", type=int, default=d.n_head)
    p.add_argument("--n-embd", type=int, default=d.n_embd)
    p.add_argument("--tie-weights", action="store_true",
                   help="share the token embedding with the output head")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--max-chars", type=int, default=None,
                   help="use only the first N characters of the corpus")
    p.add_argument("--sample-chars", type=int, default=200)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--blas-threads", type=int, default=1,
                   help="OpenBLAS threads (the matrices are small, and idle OpenBLAS "
                   "threads spin on a busy machine; 0 leaves the library's own setting)")
    a = p.parse_args(argv)
    eager = a.eager_steps if a.eager_steps is not None else \
        min(d.eager_steps, max(4, a.steps // 5))
    cfg = DemoConfig(steps=a.steps, eager_steps=eager, batch_size=a.batch_size,
                     block_size=a.block_size, n_layer=a.n_layer, n_head=a.n_head,
                     n_embd=a.n_embd, tie_weights=a.tie_weights, lr=a.lr, min_lr=a.lr / 10,
                     warmup_steps=min(d.warmup_steps, max(1, a.steps // 10)),
                     seed=a.seed, device=a.device, compile=not a.no_compile,
                     eval_every=a.eval_every, max_chars=a.max_chars,
                     progress=not a.no_progress)
    cfg.blas_threads = a.blas_threads
    return cfg, Path(a.out), a.sample_chars


def main(argv=None) -> dict:
    """Run the whole experiment; returns the figures written to ``figures.json``."""
    from . import deploy, report
    from .train import Experiment

    t0 = time.perf_counter()
    cfg, out, n_sample = parse_args(argv)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.blas_threads > 0:
        from .blas import set_blas_threads
        lib = set_blas_threads(cfg.blas_threads)
        print(f"BLAS: {lib} limited to {cfg.blas_threads} thread(s)" if lib else
              "BLAS: no OpenBLAS found to limit; its threads are left as they are")
    exp = Experiment(cfg)
    c = exp.corpus
    print(f"corpus: {len(c.train) + len(c.val):,} characters of the framework's own source "
          f"({c.vocab_size} distinct), {len(c.val):,} held out for validation")
    print(f"model: GPT, {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} wide, "
          f"context {cfg.block_size}: {exp.model.num_parameters():,} parameters; device "
          f"{exp.device}")
    print(f"unigram baseline (validation loss of character frequencies alone): "
          f"{c.unigram_loss():.3f} nats/char")
    n_eager = cfg.eager_steps if cfg.compile else cfg.steps
    print(f"training {cfg.steps} steps of {cfg.batch_size}x{cfg.block_size} tokens: "
          f"{n_eager} eager" + (f", then {cfg.steps - n_eager} through fw.compile"
                                if cfg.compile else " (--no-compile)"))
    res = exp.run()

    ck = deploy.save_checkpoint(exp.model, c, out / "checkpoint.safetensors")
    same = "identical" if ck["identical"] else f"differ by {ck['max_abs_diff']:.3g}"
    print(f"checkpoint: {ck['path']} ({ck['bytes'] / 1024:.0f} KiB), reloaded logits {same}")
    onnx_info = deploy.export_onnx(ck["model"], c, out / "model.onnx", reference=exp.model)
    if "skipped" in onnx_info:
        print(f"onnx: {onnx_info['path']} written; runtime check {onnx_info['skipped']}")
    else:
        print(f"onnx: {onnx_info['path']} (inputs {onnx_info['input_shape']}), onnxruntime "
              f"logits on a {onnx_info['check_shape']} batch match eager (max abs diff "
              f"{onnx_info['max_abs_diff']:.2e})")
    smp = deploy.samples(exp.model, c, onnx_info.get("session"), n_chars=n_sample)
    print("\n--- sample (eager) ---\n" + smp["eager"])
    if "onnx" in smp:
        same = "the same text" if smp["same_text"] else "a different text (sampling is " \
            "sensitive to tiny logit differences)"
        print(f"--- sample (onnxruntime, same random draws): {same} ---")
        if not smp["same_text"]:
            print(smp["onnx"])
    plot = report.plot_losses(res, out / "loss.png")
    fig = report.figures(cfg, exp.device, res, ck, onnx_info, smp, plot,
                         time.perf_counter() - t0)
    report.write_json(fig, out / "figures.json")
    print("\n" + report.table(fig))
    print(f"\nloss plot: {plot}\nfigures: {out / 'figures.json'} "
          f"(total {fig['total_time_s']:.1f} s)")
    return fig


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
