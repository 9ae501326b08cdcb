"""Autoregressive sampling that works the same for any logits function (the eager model,
an onnxruntime session), so both can be fed the same random draws and compared."""

from __future__ import annotations

from typing import Callable

import numpy as np

from framework.errors import ArgumentError


def sample_next(logits: np.ndarray, temperature: float, top_k: int | None,
                rng: np.random.Generator) -> np.ndarray:
    """One token id per row of ``logits`` (B, V): softmax(logits / temperature) restricted
    to the ``top_k`` largest, sampled by inverse CDF with one uniform draw per row."""
    if temperature <= 0:
        raise ArgumentError(f"sample: temperature must be > 0, got {temperature}")
    z = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.sort(z, axis=-1)[:, -top_k][:, None]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p / p.sum(axis=-1, keepdims=True), axis=-1)
    u = rng.random((z.shape[0], 1))
    return np.minimum((cdf < u).sum(axis=-1), z.shape[-1] - 1)


def generate(logits_fn: Callable[[np.ndarray], np.ndarray], prompt: np.ndarray,
             max_new_tokens: int, block_size: int, temperature: float = 0.8,
             top_k: int | None = 20, seed: int = 0) -> np.ndarray:
    """Extend ``prompt`` (B, T) int64 by ``max_new_tokens``; ``logits_fn`` maps a (B, T')
    int64 array (T' <= block_size) to (B, T', V) logits."""
    rng = np.random.default_rng(seed)
    idx = np.asarray(prompt, dtype=np.int64)
    if idx.ndim != 2:
        raise ArgumentError(f"sample: prompt must be (batch, time), got shape {idx.shape}")
    for _ in range(max_new_tokens):
        logits = np.asarray(logits_fn(idx[:, -block_size:]))[:, -1, :]
        idx = np.concatenate([idx, sample_next(logits, temperature, top_k, rng)[:, None]],
                             axis=1)
    return idx
