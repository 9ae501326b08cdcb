"""The demo's outputs: the summary table, ``figures.json`` and ``loss.png``."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

# Every key figures.json has (tests check them all).
FIGURES = (
    "config", "machine", "device", "num_parameters", "tokens_per_step", "unigram_loss",
    "final_train_loss", "final_val_loss", "eager_step_s", "compiled_step_s", "speedup",
    "eager_tokens_per_s", "compiled_tokens_per_s", "eager_step_cpu_s", "compiled_step_cpu_s",
    "first_compile_s", "capture_s",
    "ops_per_eager_step", "kernels_per_compiled_step", "kernel_calls_per_compiled_step",
    "peak_mem_eager_bytes", "peak_mem_compiled_bytes", "peak_mem_kind", "train_time_s",
    "total_time_s", "losses", "phases", "ab_window", "untimed", "evals", "compile_stats",
    "checkpoint", "onnx", "samples", "plot",
)


def machine() -> dict:
    """Where the figures come from."""
    import numpy
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "numpy": numpy.__version__}


def figures(cfg, device, res, checkpoint, onnx_info, sample_info, plot, total_s) -> dict:
    """All measured figures as one JSON-ready dict (keys: :data:`FIGURES`)."""
    eager, comp = res.median_step("eager"), res.median_step("compiled")
    final = res.evals[-1] if res.evals else (None, None, None)
    tok = res.tokens_per_step
    return {
        "config": _jsonable(vars(cfg)), "machine": machine(), "device": str(device),
        "num_parameters": res.num_parameters, "tokens_per_step": tok,
        "unigram_loss": res.unigram_loss, "final_train_loss": final[1],
        "final_val_loss": final[2], "eager_step_s": eager, "compiled_step_s": comp,
        "speedup": eager / comp if eager and comp else None,
        "eager_tokens_per_s": tok / eager if eager else None,
        "compiled_tokens_per_s": tok / comp if comp else None,
        "eager_step_cpu_s": res.median_step("eager", "cpu"),
        "compiled_step_cpu_s": res.median_step("compiled", "cpu"),
        "first_compile_s": res.first_compile_s, "capture_s": res.capture_s,
        "ops_per_eager_step": res.ops_per_eager_step,
        "kernels_per_compiled_step": res.kernels_per_compiled_step,
        "kernel_calls_per_compiled_step": res.kernel_calls_per_compiled_step,
        "peak_mem_eager_bytes": res.peak_mem_eager,
        "peak_mem_compiled_bytes": res.peak_mem_compiled, "peak_mem_kind": res.peak_mem_kind,
        "train_time_s": res.train_time_s, "total_time_s": total_s, "losses": res.losses,
        "phases": res.phases, "ab_window": res.ab_window,
        "untimed": res.untimed, "evals": [list(e) for e in res.evals],
        "compile_stats": _jsonable(res.compile_stats),
        "checkpoint": _jsonable({k: v for k, v in checkpoint.items() if k != "model"}),
        "onnx": _jsonable({k: v for k, v in onnx_info.items() if k != "session"}),
        "samples": sample_info, "plot": plot,
    }


def table(fig: dict) -> str:
    """The summary table printed at the end of the run."""
    def ms(s):
        return "-" if s is None else f"{s * 1e3:.1f}"

    def mb(b):
        return "-" if b is None else f"{b / 2**20:.1f}"

    def num(v, fmt="{:,.0f}"):
        return "-" if v is None else fmt.format(v)

    rows = [
        ("", "eager", "compiled"),
        ("step time (ms, median)", ms(fig["eager_step_s"]), ms(fig["compiled_step_s"])),
        ("step CPU time (ms, median)", ms(fig["eager_step_cpu_s"]),
         ms(fig["compiled_step_cpu_s"])),
        ("tokens / s", num(fig["eager_tokens_per_s"]), num(fig["compiled_tokens_per_s"])),
        ("speed-up", "1.00x", num(fig["speedup"], "{:.2f}x")),
        ("first compile (s)", "", num(fig["first_compile_s"], "{:.2f}")),
        ("ops | fused kernels per step", num(fig["ops_per_eager_step"]),
         num(fig["kernels_per_compiled_step"])),
        ("calls into NumPy/kernels per step", "", num(fig["kernel_calls_per_compiled_step"])),
        ("peak memory (MiB)", mb(fig["peak_mem_eager_bytes"]),
         mb(fig["peak_mem_compiled_bytes"])),
    ]
    w0 = max(len(r[0]) for r in rows)
    lines = [f"{a:<{w0}}  {b:>12}  {c:>12}" for a, b, c in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += ["-" * len(lines[0]),
              f"{'unigram baseline (val)':<{w0}}  {fig['unigram_loss']:>12.3f}",
              f"{'final train loss':<{w0}}  {num(fig['final_train_loss'], '{:.3f}'):>12}",
              f"{'final val loss':<{w0}}  {num(fig['final_val_loss'], '{:.3f}'):>12}",
              f"peak memory: {fig['peak_mem_kind']}; losses in nats per character"]
    if fig["ab_window"]:
        lo, hi = fig["ab_window"]
        lines.append(f"step times: steps {lo}-{hi - 1}, where eager and compiled steps "
                     "alternate (the same machine load for both)")
    return "\n".join(lines)


def plot_losses(res, path: Path) -> str:
    """Write the loss curves to ``path``; returns the path, or why nothing was written."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "skipped: matplotlib is not installed (pip install -e '.[plot]')"
    losses = np.asarray(res.losses)
    steps = np.arange(1, len(losses) + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    for phase, color in (("eager", "tab:blue"), ("compiled", "tab:orange")):
        mask = np.array([p == phase for p in res.phases])
        if mask.any():
            ax.plot(steps[mask], losses[mask], color=color, lw=0.8, label=f"train ({phase})")
    if res.evals:
        ev = np.asarray(res.evals)
        ax.plot(ev[:, 0], ev[:, 2], "o-", color="tab:green", label="validation")
    ax.axhline(res.unigram_loss, color="gray", ls="--", label="unigram baseline")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / char)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def write_json(fig: dict, path: Path) -> None:
    """Write ``fig`` as indented JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fig, f, indent=1)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)
