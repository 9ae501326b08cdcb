"""Random number generators: ``fw.Generator``, ``fw.manual_seed`` and the default generator.

A Generator wraps NumPy's PCG64 bit generator. Streams are reproducible under a seed, but
not bit-identical to PyTorch's Philox/MT streams. Its state, as ``get_state()`` and
``fw.get_rng_state()`` give it, is a uint8 tensor as in PyTorch (48 bytes: PCG64's 128-bit
state and increment, then the buffered 32-bit draw and its flag, little-endian), so it can be
saved, cloned and compared like PyTorch's.
"""

from __future__ import annotations

import contextlib

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
        """The stream's state as a uint8 tensor (restore with ``set_state``)."""
        from .creation import tensor
        return tensor(_pack(self._rng.bit_generator.state), dtype="uint8")

    def set_state(self, state) -> None:
        """Restore a state taken with ``get_state`` (a uint8 tensor or array; the dict of
        NumPy's PCG64 state, which earlier versions returned, is accepted too)."""
        if isinstance(state, dict):
            self._rng.bit_generator.state = state
            return
        raw = np.asarray(state.numpy() if hasattr(state, "numpy") else state)
        if raw.dtype != np.uint8 or raw.shape != (_STATE_BYTES,):
            from .errors import ArgumentError
            raise ArgumentError(f"set_rng_state: expected the {_STATE_BYTES}-byte uint8 tensor "
                                f"get_rng_state() returns, got {raw.dtype} of shape "
                                f"{tuple(raw.shape)}")
        self._rng.bit_generator.state = _unpack(raw)

    @property
    def numpy(self) -> np.random.Generator:
        return self._rng


_STATE_BYTES = 48


def _pack(state: dict) -> np.ndarray:
    """PCG64's state dict as 48 little-endian bytes."""
    if state.get("bit_generator") != "PCG64":
        raise ValueError(f"unexpected bit generator {state.get('bit_generator')!r}")
    inner = state["state"]
    words = [inner["state"] & (2 ** 64 - 1), inner["state"] >> 64,
             inner["inc"] & (2 ** 64 - 1), inner["inc"] >> 64,
             int(state["has_uint32"]), int(state["uinteger"])]
    return np.array(words, dtype="<u8").view(np.uint8)


def _unpack(raw: np.ndarray) -> dict:
    w = [int(v) for v in raw.view("<u8")]
    return {"bit_generator": "PCG64", "state": {"state": w[0] | w[1] << 64,
                                                "inc": w[2] | w[3] << 64},
            "has_uint32": w[4], "uinteger": w[5]}


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
    """The default generator's state: a uint8 tensor (see :meth:`Generator.get_state`)."""
    return default_generator.get_state()


def set_rng_state(state) -> None:
    """Restore the default generator."""
    default_generator.set_state(state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, device_type: str = "cuda"):
    """Run the block with the random streams forked: on exit the CPU generator (and the
    CUDA stream, when ``framework.cuda`` is loaded) are put back as they were on entry,
    so draws inside do not change what comes after. ``enabled=False`` forks nothing."""
    if not enabled:
        yield
        return
    state = snapshot_all()
    try:
        yield
    finally:
        restore_all(state)


def raw_state() -> dict:
    """The default generator's state as NumPy's dict, for internal snapshots (making no
    tensor, so it is safe while a trace records); restore with :func:`set_raw_state`."""
    return dict(default_generator._rng.bit_generator.state)


def set_raw_state(state: dict) -> None:
    """Restore a :func:`raw_state` snapshot."""
    default_generator._rng.bit_generator.state = state


def snapshot_all():
    """The default random streams: (the CPU generator's state, the CUDA Philox stream's
    (seed, offset), or None while ``framework.cuda`` is not loaded: its stream is then
    still at its initial state). For transforms that repeat or compare random draws."""
    import sys
    cuda = sys.modules.get("framework.cuda")
    return raw_state(), None if cuda is None else (cuda._DEFAULT.seed, cuda._DEFAULT.offset)


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
