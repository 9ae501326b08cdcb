"""The demo's embedded corpus: the framework's own Python source, read from the installed
package directory (nothing is downloaded).

Files are read in sorted path order and joined with a header line per file, so the text,
the vocabulary and the train/validation split are the same on every machine that has the
same source. The last ``val_fraction`` of the text is the validation set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framework.errors import ArgumentError


def source_root() -> Path:
    """The directory of the installed ``framework`` package."""
    import framework
    return Path(framework.__file__).resolve().parent


def read_source_text(root: Path | None = None, max_chars: int | None = None) -> str:
    """All ``*.py`` files under ``root`` (default: the framework package), sorted by path,
    each preceded by ``# file: <relative path>``; cut to ``max_chars`` when given."""
    root = source_root() if root is None else Path(root)
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise ArgumentError(f"demo corpus: no .py files under {root}")
    parts = []
    total = 0
    for p in files:
        text = p.read_text(encoding="utf-8", errors="replace")
        parts.append(f"# file: {p.relative_to(root).as_posix()}\n{text}\n")
        total += len(parts[-1])
        if max_chars is not None and total >= max_chars:
            break
    text = "".join(parts)
    return text if max_chars is None else text[:max_chars]


@dataclass
class Corpus:
    """Encoded text: ``train``/``val`` int64 token arrays and the character vocabulary."""

    chars: list
    train: np.ndarray
    val: np.ndarray

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters."""
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` (characters outside the vocabulary raise)."""
        index = {c: i for i, c in enumerate(self.chars)}
        missing = sorted({c for c in text if c not in index})
        if missing:
            raise ArgumentError(f"demo corpus: characters {missing!r} are not in the "
                                "vocabulary")
        return np.array([index[c] for c in text], dtype=np.int64)

    def decode(self, ids) -> str:
        """The text of token ids ``ids``."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))

    def unigram_loss(self) -> float:
        """Cross-entropy (nats/char) on ``val`` of the train set's character frequencies
        (add-one smoothed): the loss of a model that ignores all context."""
        counts = np.bincount(self.train, minlength=self.vocab_size).astype(np.float64) + 1.0
        logp = np.log(counts / counts.sum())
        return float(-logp[self.val].mean())

    def batch(self, split: str, batch_size: int, block_size: int, rng: np.random.Generator):
        """``(x, y)`` int64 arrays of shape (batch_size, block_size): random windows of
        ``split`` and the same windows shifted by one character."""
        data = self._split(split)
        if len(data) <= block_size + 1:
            raise ArgumentError(f"demo corpus: the {split} split has {len(data)} characters, "
                                f"fewer than block_size + 1 = {block_size + 1}")
        starts = rng.integers(0, len(data) - block_size - 1, size=batch_size)
        idx = starts[:, None] + np.arange(block_size)[None, :]
        return data[idx], data[idx + 1]

    def _split(self, split: str) -> np.ndarray:
        if split not in ("train", "val"):
            raise ArgumentError(f"demo corpus: split must be 'train' or 'val', got {split!r}")
        return self.train if split == "train" else self.val


def load_corpus(val_fraction: float = 0.1, max_chars: int | None = None,
                root: Path | None = None) -> Corpus:
    """Read, encode and split the framework's source (see the module docstring)."""
    if not 0.0 < val_fraction < 1.0:
        raise ArgumentError(f"demo corpus: val_fraction must be in (0, 1), got {val_fraction}")
    text = read_source_text(root, max_chars)
    chars = sorted(set(text))
    lookup = np.zeros(max(map(ord, chars)) + 1, dtype=np.int64)
    lookup[[ord(c) for c in chars]] = np.arange(len(chars))
    ids = lookup[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]
    n_val = max(1, math.floor(len(ids) * val_fraction))
    return Corpus(chars=chars, train=ids[:-n_val], val=ids[-n_val:])
