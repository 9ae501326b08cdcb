"""After training: checkpoint round trip, ONNX export checked in onnxruntime, and samples
from both the eager model and the ONNX model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import framework as fw
from framework.errors import FrameworkError

from .model import GPT, GPTConfig
from .sampling import generate

PROMPT = "def forward(self, x):\n"
ONNX_RTOL, ONNX_ATOL = 1e-4, 1e-4


def save_checkpoint(model, corpus, path: Path) -> dict:
    """``fw.save`` the weights, the model config and the vocabulary; reload them into a new
    model on the same device and compare its logits with ``model``'s on a fixed batch.
    ``"model"`` in the result is the reloaded model, on the CPU."""
    t0 = time.perf_counter()
    fw.save({"model": model.state_dict(), "config": model.config.to_dict(),
             "chars": list(corpus.chars)}, path)
    ck = fw.load(path)
    fresh = GPT(GPTConfig(**ck["config"]))
    fresh.load_state_dict(ck["model"])
    fresh.to(_device_of(model))
    x = _probe_batch(corpus, model.config.block_size)
    ref = _logits(model, x)
    got = _logits(fresh, x)
    fresh.to("cpu")
    return {"path": str(path), "bytes": path.stat().st_size,
            "max_abs_diff": float(np.abs(ref - got).max()),
            "identical": bool(np.array_equal(ref, got)),
            "vocab_roundtrip": ck["chars"] == list(corpus.chars),
            "seconds": time.perf_counter() - t0, "model": fresh}


def export_onnx(model, corpus, path: Path, reference=None) -> dict:
    """Export ``model`` (on the CPU) with dynamic batch and sequence axes, run it in
    onnxruntime on a batch of another size than the export example, and compare with the
    eager logits of ``reference`` (default ``model``; it may live on another device)."""
    reference = model if reference is None else reference
    t0 = time.perf_counter()
    example = fw.tensor(_probe_batch(corpus, model.config.block_size)[:2, :16])
    fw.onnx.export(model, (example,), path, input_names=["idx"], output_names=["logits"],
                   dynamic_axes={"idx": {0: "batch", 1: "seq"},
                                 "logits": {0: "batch", 1: "seq"}})
    info = {"path": str(path), "bytes": path.stat().st_size,
            "export_seconds": time.perf_counter() - t0}
    try:
        import onnxruntime as ort
    except ImportError:
        info["skipped"] = ("onnxruntime is not installed (pip install onnxruntime): the "
                           "exported model was checked with onnx.checker only")
        return info
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    info["input_shape"] = [d if isinstance(d, str) else int(d)
                           for d in session.get_inputs()[0].shape]
    x = _probe_batch(corpus, model.config.block_size)            # (3, block_size)
    got = session.run(None, {"idx": x})[0]
    ref = _logits(reference, x)
    err = np.abs(got - ref)
    info.update({"check_shape": list(x.shape), "max_abs_diff": float(err.max()),
                 "matches": bool(np.allclose(got, ref, rtol=ONNX_RTOL, atol=ONNX_ATOL)),
                 "session": session})
    if not info["matches"]:
        raise FrameworkError(f"demo: onnxruntime logits differ from eager by up to "
                             f"{err.max():.3g} (tolerance {ONNX_ATOL})")
    return info


def samples(model, corpus, session=None, n_chars: int = 200, seed: int = 0) -> dict:
    """Text sampled from the eager model and, when given, the onnxruntime session, with the
    same prompt and random draws."""
    prompt = corpus.encode(PROMPT)[None, :]
    block = model.config.block_size
    out = {"prompt": PROMPT}
    ids = generate(lambda a: _logits(model, a), prompt, n_chars, block, seed=seed)
    out["eager"] = corpus.decode(ids[0])
    if session is not None:
        ids_onnx = generate(lambda a: session.run(None, {"idx": a})[0], prompt, n_chars,
                            block, seed=seed)
        out["onnx"] = corpus.decode(ids_onnx[0])
        out["same_text"] = out["onnx"] == out["eager"]
    return out


def _probe_batch(corpus, block_size: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return corpus.batch("val", 3, block_size, rng)[0]


def _device_of(model):
    return next(iter(model.parameters())).device


@fw.no_grad()
def _logits(model, x: np.ndarray) -> np.ndarray:
    was = model.training
    model.eval()
    try:
        ids = fw.tensor(np.ascontiguousarray(x)).to(_device_of(model))
        return model(ids).cpu().numpy()
    finally:
        model.train(was)
