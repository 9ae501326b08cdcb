"""``fw.distributed``: what a script asks ``torch.distributed`` before it decides to train
on one process. There is no distributed runtime here (no process groups, no collectives):
``is_available()`` is False, ``is_initialized()`` is False, and everything that needs a
process group raises :class:`~framework.errors.DistributedError` with PyTorch's message,
as PyTorch itself does before ``init_process_group``."""

from __future__ import annotations

from .errors import DistributedError

__all__ = ["is_available", "is_initialized", "is_torchelastic_launched", "init_process_group",
           "get_rank", "get_world_size", "barrier", "destroy_process_group", "all_reduce",
           "broadcast", "all_gather"]

_NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to "
                    "call init_process_group. (this framework has no distributed runtime: "
                    "train on one process)")


def is_available() -> bool:
    """False: this framework is built without a distributed runtime."""
    return False


def is_initialized() -> bool:
    """False: no default process group exists (none can be created)."""
    return False


def is_torchelastic_launched() -> bool:
    """Whether the process was started by ``torchrun`` (its environment variable)."""
    import os
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def init_process_group(backend=None, *args, **kwargs):
    """Refused: there is no distributed backend (nccl, gloo, mpi) in this framework."""
    raise NotImplementedError(f"fw.distributed.init_process_group(backend={backend!r}): this "
                              "framework has no distributed runtime (no nccl or gloo "
                              "backend); train on one process")


def _needs_group(name):
    def refuse(*args, **kwargs):
        raise DistributedError(f"{name}: {_NOT_INITIALIZED}")
    refuse.__name__ = name
    refuse.__doc__ = f"``torch.distributed.{name}``: raises, as PyTorch does without an " \
                     "initialized process group."
    return refuse


get_rank = _needs_group("get_rank")
get_world_size = _needs_group("get_world_size")
barrier = _needs_group("barrier")
destroy_process_group = _needs_group("destroy_process_group")
all_reduce = _needs_group("all_reduce")
broadcast = _needs_group("broadcast")
all_gather = _needs_group("all_gather")
