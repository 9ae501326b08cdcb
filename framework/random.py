"""Random number generators: ``fw.Generator``, ``fw.manual_seed`` and the default generator.

A Generator wraps NumPy's PCG64 bit generator. Streams are reproducible under a seed, but
not bit-identical to PyTorch's Philox/MT streams.
"""

from __future__ import annotations

import numpy as np


class Generator:
    """A seeded random stream (``device`` is accepted for PyTorch compatibility)."""

    def __init__(self, device="cpu"):
        self.device = device
        self._seed = 67280421310721
        self._rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> Generator:
        """Reset the stream to ``seed``."""
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        """Reseed from OS entropy and return the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy) % (2 ** 63))
        return self._seed

    def initial_seed(self) -> int:
        """The seed the stream was last reset to."""
        return self._seed

    def get_state(self):
        """An opaque snapshot of the stream (restore with ``set_state``)."""
        return self._rng.bit_generator.state

    def set_state(self, state) -> None:
        """Restore a snapshot taken with ``get_state``."""
        self._rng.bit_generator.state = state

    @property
    def numpy(self) -> np.random.Generator:
        return self._rng


default_generator = Generator()


last_manual_seed = None  # the latest fw.manual_seed, for a CUDA stream created after it


def manual_seed(seed: int) -> Generator:
    """Seed the default generator and the CUDA one (now, or when ``framework.cuda`` loads)."""
    global last_manual_seed
    default_generator.manual_seed(seed)
    last_manual_seed = int(seed)
    import sys
    cuda = sys.modules.get("framework.cuda")
    if cuda is not None and hasattr(cuda, "manual_seed_all"):
        cuda.manual_seed_all(seed)
    return default_generator


def seed() -> int:
    """Seed the default generator from OS entropy."""
    return default_generator.seed()


def initial_seed() -> int:
    """The default generator's seed."""
    return default_generator.initial_seed()


def get_rng_state():
    """Snapshot of the default generator."""
    return default_generator.get_state()


def set_rng_state(state) -> None:
    """Restore the default generator."""
    default_generator.set_state(state)


def snapshot_all():
    """The default random streams: (the CPU generator's state, the CUDA Philox stream's
    (seed, offset), or None while ``framework.cuda`` is not loaded: its stream is then
    still at its initial state). For transforms that repeat or compare random draws."""
    import sys
    cuda = sys.modules.get("framework.cuda")
    return get_rng_state(), None if cuda is None else (cuda._DEFAULT.seed, cuda._DEFAULT.offset)


def restore_all(state) -> None:
    """Put the default random streams back to a :func:`snapshot_all`."""
    import sys
    cpu, philox = state
    set_rng_state(cpu)
    cuda = sys.modules.get("framework.cuda")
    if cuda is not None:
        seed, offset = philox if philox is not None else (cuda._Philox.seed, 0)
        cuda._DEFAULT.seed, cuda._DEFAULT.offset = seed, offset


def resolve(generator) -> Generator:
    """``generator`` or the default one."""
    return default_generator if generator is None else generator
