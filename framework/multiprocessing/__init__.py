"""``fw.multiprocessing``: Python's ``multiprocessing`` with tensors that are shared, not
copied (``torch.multiprocessing``).

Everything of the standard module is here (``Process``, ``Queue``, ``Pipe``, ``Pool``,
``get_context``, ``set_start_method``, ...: the very same objects), plus :func:`spawn`.
Importing this package registers tensor reducers with ``ForkingPickler``, so a CPU tensor
put on any ``multiprocessing`` queue or pipe, or passed to a process started with the
"spawn" or "forkserver" method, travels as a shared-memory name: the receiver maps the same
memory and sees the sender's in-place updates (see ``reductions`` for the rules and
``_segments`` for the lifetime of the memory). With the "fork" method, a process's
arguments are not pickled at all: share them first (``t.share_memory_()``,
``model.share_memory()``), as with PyTorch.

Only the ``"file_system"`` sharing strategy exists (named POSIX shared memory).
"""

from __future__ import annotations

import multiprocessing
from multiprocessing import *  # noqa: F401,F403  (a drop-in for the standard module)

from ..errors import ArgumentError
from . import reductions  # noqa: F401  (registers the tensor reducers)
from ._spawn import (ProcessContext, ProcessException, ProcessExitedException,  # noqa: F401
                     ProcessRaisedException, SpawnContext, spawn, start_processes)

_STRATEGIES = {"file_system"}
_strategy = "file_system"


def get_all_sharing_strategies() -> set[str]:
    """The sharing strategies this platform supports (``{"file_system"}``)."""
    return set(_STRATEGIES)


def get_sharing_strategy() -> str:
    """The current sharing strategy (always ``"file_system"``)."""
    return _strategy


def set_sharing_strategy(new_strategy: str) -> None:
    """Choose how CPU tensors are shared. Only ``"file_system"`` (named shared-memory
    segments) is implemented; ``"file_descriptor"`` (PyTorch's Linux default, file
    descriptors passed over Unix sockets) raises NotImplementedError."""
    if new_strategy == "file_descriptor":
        raise NotImplementedError(
            "set_sharing_strategy('file_descriptor'): passing shared-memory file descriptors "
            "between processes is not implemented; 'file_system' (named POSIX shared memory, "
            "the only strategy here) is used instead")
    if new_strategy not in _STRATEGIES:
        raise ArgumentError(f"set_sharing_strategy: unknown strategy {new_strategy!r}; "
                            f"expected one of {sorted(_STRATEGIES)}")


__all__ = list(multiprocessing.__all__) + [
    "spawn", "start_processes", "ProcessContext", "SpawnContext", "ProcessException",
    "ProcessRaisedException", "ProcessExitedException", "get_all_sharing_strategies",
    "get_sharing_strategy", "set_sharing_strategy"]
