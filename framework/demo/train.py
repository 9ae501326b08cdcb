"""The experiment loop: train the demo GPT eagerly, then through ``fw.compile``, and
measure both.

One training step is forward, cross-entropy, ``backward()``, ``clip_grad_norm_`` and
``AdamW.step()``; ``fw.compile`` captures all of it as one graph. The learning-rate
schedule (linear warm-up, then cosine decay) is a :class:`~framework.optim.lr_scheduler.LambdaLR`
stepped after each call: a scheduler is Python float arithmetic, and the new rate enters
the compiled graph as a runtime scalar, so it never causes a recompile.
"""

from __future__ import annotations

import math
import statistics
import time
import tracemalloc
from dataclasses import asdict, dataclass, field

import numpy as np

import framework as fw
from framework import nn, optim
from framework.errors import ArgumentError, DeviceError
from framework.device import to_device

from .corpus import Corpus, load_corpus
from .model import GPT, GPTConfig


@dataclass
class DemoConfig:
    """Every knob of the experiment (the command line sets a few of them)."""

    steps: int = 800
    eager_steps: int = 80          # the first steps run eagerly, the rest compiled
    ab_pairs: int = 20             # then eager and compiled steps alternate, timed side by side
    batch_size: int = 16
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    tie_weights: bool = False
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_batches: int = 8
    eval_every: int = 100
    seed: int = 0
    device: str = "cpu"
    compile: bool = True
    max_chars: int | None = None   # cut the corpus (tests use a small one)
    progress: bool = True
    blas_threads: int = 0          # > 0: limit OpenBLAS to this many threads (the CLI uses 1)

    def model_config(self, vocab_size: int) -> GPTConfig:
        """The GPT sizes for a vocabulary of ``vocab_size`` characters."""
        return GPTConfig(vocab_size=vocab_size, block_size=self.block_size,
                         n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd,
                         tie_weights=self.tie_weights)

    def check(self) -> None:
        """Raise ArgumentError for settings the loop cannot run."""
        if self.steps < 4:
            raise ArgumentError(f"demo: --steps must be >= 4, got {self.steps}")
        if self.compile and self.steps - self.eager_steps < 3:
            raise ArgumentError(f"demo: {self.steps} steps leave fewer than 3 compiled steps "
                                f"after {self.eager_steps} eager ones; raise --steps, lower "
                                "--eager-steps or pass --no-compile")
        if self.compile and self.eager_steps < 4:
            raise ArgumentError(f"demo: --eager-steps must be >= 4, got {self.eager_steps}")


@dataclass
class TrainResult:
    """What the loop measured (seconds, bytes, nats per character)."""

    losses: list = field(default_factory=list)        # training loss of every step
    phases: list = field(default_factory=list)        # "eager" / "compiled" per step
    ab_window: list | None = None                     # [first, last + 1) alternating steps
    step_times: list = field(default_factory=list)    # wall time of every step
    step_cpu_times: list = field(default_factory=list)  # process CPU time of every step
    untimed: list = field(default_factory=list)       # instrumented steps (not in medians)
    evals: list = field(default_factory=list)         # (step, train loss, val loss)
    unigram_loss: float = 0.0
    first_compile_s: float | None = None              # wall time of the first compiled call
    capture_s: float | None = None                    # capture + passes + codegen
    ops_per_eager_step: int | None = None             # ops dispatched (nested ones too)
    kernels_per_compiled_step: int | None = None      # fused groups in the generated code
    kernel_calls_per_compiled_step: int | None = None  # calls the generated code makes
    peak_mem_eager: int | None = None
    peak_mem_compiled: int | None = None
    peak_mem_kind: str = ""
    compile_stats: dict | None = None
    num_parameters: int = 0
    tokens_per_step: int = 0
    train_time_s: float = 0.0

    def median_step(self, phase: str, clock: str = "wall") -> float | None:
        """Median step time of ``phase`` (``clock``: "wall" or "cpu", the process CPU time,
        which a busy machine disturbs less). When eager and compiled steps alternated
        (``ab_window``), only those steps count, so both were timed under the same machine
        load; otherwise the whole phase counts. Each phase's first step (warm-up, or capture
        and code generation) and the instrumented steps are left out."""
        skip = set(self.untimed)
        times = self.step_times if clock == "wall" else self.step_cpu_times
        idx = [i for i, p in enumerate(self.phases) if p == phase and i not in skip]
        if self.ab_window:
            lo, hi = self.ab_window
            idx = [i for i in idx if lo <= i < hi]
        else:
            idx = idx[1:]
        ts = [times[i] for i in idx]
        return statistics.median(ts) if ts else None

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def lr_lambda(cfg: DemoConfig):
    """Multiplier of ``cfg.lr`` at a step: linear warm-up, then cosine decay to
    ``cfg.min_lr``."""
    floor = cfg.min_lr / cfg.lr

    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return f


def make_step(model, opt, grad_clip: float):
    """The training step ``step(x, y) -> loss`` that ``fw.compile`` captures whole."""
    def train_step(x, y):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        return loss
    return train_step


class Experiment:
    """Corpus, model, optimizer, schedule and the two versions of the step."""

    def __init__(self, cfg: DemoConfig, corpus: Corpus | None = None):
        cfg.check()
        self.cfg = cfg
        self.device = _resolve_device(cfg.device)
        self.corpus = corpus if corpus is not None else load_corpus(max_chars=cfg.max_chars)
        fw.manual_seed(cfg.seed)
        self.model = GPT(cfg.model_config(self.corpus.vocab_size)).to(self.device)
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.ndim < 2]
        self.opt = optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                {"params": no_decay, "weight_decay": 0.0}],
                               lr=cfg.lr, betas=(0.9, 0.99))
        self.sched = optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(cfg))
        self.step_fn = make_step(self.model, self.opt, cfg.grad_clip)
        self.compiled = fw.compile(self.step_fn, mode="always") if cfg.compile else None
        self.rng = np.random.default_rng(cfg.seed)

    def batch(self, split: str = "train", rng=None):
        """One (x, y) batch of ``split`` as int64 tensors on the experiment's device."""
        x, y = self.corpus.batch(split, self.cfg.batch_size, self.cfg.block_size,
                                 self.rng if rng is None else rng)
        return fw.tensor(x).to(self.device), fw.tensor(y).to(self.device)

    @fw.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Mean loss over ``eval_batches`` fixed batches of each split (eval mode)."""
        self.model.eval()
        out = []
        for split in ("train", "val"):
            rng = np.random.default_rng(1234)  # the same batches at every evaluation
            total = 0.0
            for _ in range(self.cfg.eval_batches):
                x, y = self.batch(split, rng)
                logits = self.model(x)
                total += float(nn.functional.cross_entropy(
                    logits.view(-1, logits.shape[-1]), y.view(-1)))
            out.append(total / self.cfg.eval_batches)
        self.model.train()
        return out[0], out[1]

    def run(self) -> TrainResult:
        """Train for ``cfg.steps`` steps and return the measurements."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        res = TrainResult(unigram_loss=self.corpus.unigram_loss(),
                          num_parameters=self.model.num_parameters(),
                          tokens_per_step=cfg.batch_size * cfg.block_size)
        n_eager = cfg.steps if self.compiled is None else cfg.eager_steps
        # A few steps are instrumented and left out of the timing figures: one eager step
        # under the profiler (ops per step), the last step of each phase under the memory
        # tracker.
        special = {n_eager - 2: "profile", n_eager - 1: "memory"}
        if self.compiled is not None:
            special[cfg.steps - 2] = "profile"
            special[cfg.steps - 1] = "memory"
            # after the first compiled call, eager and compiled steps alternate
            pairs = min(cfg.ab_pairs, (cfg.steps - n_eager - 3) // 2)
            if pairs > 0:
                res.ab_window = [n_eager + 1, n_eager + 1 + 2 * pairs]
        bar = tqdm(range(cfg.steps), desc="train", disable=not cfg.progress,
                   dynamic_ncols=True, leave=True)
        t_start = time.perf_counter()
        for step in bar:
            phase = "eager" if step < n_eager else "compiled"
            if res.ab_window and res.ab_window[0] <= step < res.ab_window[1] and \
                    (step - res.ab_window[0]) % 2 == 1:
                phase = "eager"
            fn = self.step_fn if phase == "eager" else self.compiled
            x, y = self.batch()
            how = special.get(step, "timed")
            c0 = time.process_time()
            if how == "memory":
                loss, dt, peak = self._memory_step(fn, x, y)
                setattr(res, f"peak_mem_{phase}", peak)
                res.peak_mem_kind = ("cuda max_memory_allocated" if self._on_cuda() else
                                     "tracemalloc peak of one step (NumPy buffers)")
            elif how == "profile":
                loss, dt, calls = self._profiled_step(fn, x, y)
                if phase == "eager":
                    res.ops_per_eager_step = calls
                else:
                    res.kernel_calls_per_compiled_step = calls
            else:
                t0 = time.perf_counter()
                loss = float(fn(x, y))  # waits for the device, so dt is the whole step
                dt = time.perf_counter() - t0
            res.step_cpu_times.append(time.process_time() - c0)
            self.sched.step()
            res.losses.append(loss)
            res.phases.append(phase)
            res.step_times.append(dt)
            if how != "timed":
                res.untimed.append(step)
            if phase == "compiled" and res.first_compile_s is None:
                res.first_compile_s = dt
            bar.set_postfix(phase=phase, loss=f"{loss:.3f}",
                            tok_s=f"{res.tokens_per_step / dt:,.0f}")
            if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
                res.evals.append((step + 1,) + self.evaluate())
        res.train_time_s = time.perf_counter() - t_start
        bar.close()
        if self.compiled is not None:
            st = self.compiled.stats()
            res.compile_stats = {k: st[k] for k in ("calls", "captures", "cache_hits",
                                                    "num_recompiles", "recompiles",
                                                    "eager_calls", "graph_breaks",
                                                    "eager_reason", "compile_time_s")}
            res.capture_s = sum(st["compile_time_s"]) if st["compile_time_s"] else None
            res.kernels_per_compiled_step = self.kernels_per_step(x, y)
        return res

    def kernels_per_step(self, x, y) -> int | None:
        """Fused kernels in the compiled step's generated code (None if it ran eagerly)."""
        if self.compiled is None or self.compiled.stats()["eager_reason"] is not None:
            return None
        from compiler.passes import fuse
        return len(fuse.run(self.compiled.graph(x, y)))

    def _profiled_step(self, fn, x, y):
        """One step under :mod:`framework.profiler`: (loss, seconds, calls), where calls
        counts the ops an eager step dispatches, or the kernel calls (NumPy calls and CPU
        kernels, or Triton launches) inside a compiled step's generated code."""
        from framework.profiler import profile
        with profile() as prof:
            t0 = time.perf_counter()
            loss = float(fn(x, y))
            dt = time.perf_counter() - t0
        if fn is self.step_fn:
            return loss, dt, sum(1 for e in prof.events if e.kind == "op")
        return loss, dt, sum(1 for e in prof.events if e.kind == "kernel" and e.depth >= 2)

    def _on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _memory_step(self, fn, x, y):
        """One step with its peak memory recorded (not used for timing figures)."""
        if self._on_cuda():
            fw.cuda.synchronize()
            fw.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            loss = float(fn(x, y))
            dt = time.perf_counter() - t0
            return loss, dt, int(fw.cuda.max_memory_allocated())
        tracemalloc.start()
        try:
            t0 = time.perf_counter()
            loss = float(fn(x, y))
            dt = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return loss, dt, int(peak)


def _resolve_device(name: str):
    dev = fw.device(name)
    if dev.type == "cuda" and not fw.cuda.is_available():
        raise DeviceError("demo: --device cuda needs a GPU (pip install -e '.[cuda]') or the "
                          "simulated device (FW_TRITON_INTERPRET=1); none is available")
    if dev.type not in ("cpu", "cuda"):
        raise ArgumentError(f"demo: --device must be 'cpu' or 'cuda', got {name!r}")
    return to_device(dev)  # where the tensors live: "cuda" is cuda:0
