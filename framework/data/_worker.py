"""What runs inside a DataLoader worker process, and ``get_worker_info``.

Protocol (one index queue per worker, one shared result queue):
``("task", epoch, task_id, indices)`` -> ``(epoch, task_id, batch | _Failure | _Exhausted)``;
``("resume", epoch)`` restarts an IterableDataset's iterator (persistent workers);
``None`` stops the worker.
"""

from __future__ import annotations

import os
import queue
import random
import traceback
from dataclasses import dataclass

_info = None
_WATCHDOG_S = 2.0  # how often an idle worker checks that its parent is still alive


@dataclass(frozen=True)
class WorkerInfo:
    """Inside a worker: its ``id``, ``num_workers``, ``seed`` and its copy of ``dataset``."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """The :class:`WorkerInfo` of the current worker process, or None in the main process."""
    return _info


class _Exhausted:
    """An IterableDataset ran out in this worker."""


class _Failure:
    """An exception raised in a worker, carried back with its formatted traceback."""

    def __init__(self, worker_id: int, exc: BaseException):
        self.exc_type = type(exc)
        self.message = (f"Caught {type(exc).__name__} in DataLoader worker process "
                        f"{worker_id}.\nOriginal " + "".join(
                            traceback.format_exception(type(exc), exc, exc.__traceback__)))

    def reraise(self):
        """Raise in the main process: the original exception type when it takes a message."""
        try:
            err = self.exc_type(self.message)
        except Exception:
            err = RuntimeError(self.message)
        raise err


def seed_worker(base_seed: int, worker_id: int) -> int:
    """Seed ``random``, the framework's default generator and NumPy's global RNG for one
    worker (``base_seed + worker_id``, as PyTorch) and return the seed."""
    import numpy as np

    from ..random import manual_seed
    seed = base_seed + worker_id
    random.seed(seed)
    manual_seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))
    return seed


def _fetch_map(dataset, indices, auto_batch, collate):
    if auto_batch:
        many = getattr(dataset, "__getitems__", None)
        data = many(indices) if callable(many) else [dataset[i] for i in indices]
        return collate(data)
    return collate(dataset[indices])


def _fetch_iter(iterator, batch_size, drop_last, auto_batch, collate):
    """The next batch of an IterableDataset's iterator, or _Exhausted."""
    if not auto_batch:
        try:
            return collate(next(iterator))
        except StopIteration:
            return _Exhausted()
    data = []
    for item in iterator:
        data.append(item)
        if len(data) == batch_size:
            break
    if not data or (drop_last and len(data) < batch_size):
        return _Exhausted()
    return collate(data)


def worker_loop(dataset, index_queue, result_queue, worker_id, num_workers, base_seed,
                worker_init_fn, auto_batch, collate, is_iterable, batch_size, drop_last,
                parent_pid):
    """The body of one worker process (see the module docstring for the protocol). It
    exits on ``None`` or when its parent process has gone away."""
    global _info
    seed = seed_worker(base_seed, worker_id)
    _info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
    init_error = None
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
        iterator = iter(dataset) if is_iterable else None
    except Exception as exc:  # reported on the first task
        init_error = _Failure(worker_id, exc)
    exhausted = False
    while True:
        try:
            msg = index_queue.get(timeout=_WATCHDOG_S)
        except queue.Empty:
            if os.getppid() != parent_pid:
                return
            continue
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if msg is None:
            result_queue.cancel_join_thread()  # exit even if results stay unread
            return
        if msg[0] == "resume":
            exhausted = False
            try:
                iterator = iter(dataset) if is_iterable else None
            except Exception as exc:
                init_error = _Failure(worker_id, exc)
            continue
        _, epoch, task_id, indices = msg
        if init_error is not None:
            result_queue.put((epoch, task_id, init_error))
            init_error = None
            exhausted = is_iterable
            continue
        if exhausted:
            result_queue.put((epoch, task_id, _Exhausted()))
            continue
        try:
            if is_iterable:
                out = _fetch_iter(iterator, batch_size, drop_last, auto_batch, collate)
                exhausted = isinstance(out, _Exhausted)
            else:
                out = _fetch_map(dataset, indices, auto_batch, collate)
        except Exception as exc:
            out = _Failure(worker_id, exc)
        result_queue.put((epoch, task_id, out))
