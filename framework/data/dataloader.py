"""DataLoader: batches from a dataset, in the main process or in worker processes.

Worker processes (``num_workers > 0``) each get indices from their own queue and send
collated batches back on a shared queue; the main process hands out tasks round-robin,
keeps ``prefetch_factor * num_workers`` in flight and yields them in sampler order, so the
batches are exactly those of ``num_workers=0``. Workers are seeded with
``base_seed + worker_id`` (``random``, ``fw`` and NumPy), ``base_seed`` being drawn from
``generator`` (or the default generator) once per iterator. ``pin_memory`` is accepted
and ignored (there is no pinned host memory on this backend).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import weakref

from ..errors import ArgumentError
from . import _worker
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, _fresh_seed

_POLL_S = 0.5  # how often a waiting main process checks that its workers are alive


class _InfiniteConstantSampler(Sampler):
    """The sampler of an IterableDataset: ``None`` forever (workers ignore indices)."""

    def __iter__(self):
        while True:
            yield None


_FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
           "persistent_workers")


class DataLoader:
    """Iterate over ``dataset`` in batches, like ``torch.utils.data.DataLoader``.

    ``batch_size=None`` disables automatic batching (``collate_fn`` then converts single
    samples). ``shuffle`` uses a :class:`RandomSampler` drawing from ``generator``.
    ``num_workers`` worker processes (``multiprocessing_context``, default "fork" where
    available) load batches in parallel in the same order; ``persistent_workers`` keeps
    them between epochs.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ArgumentError("num_workers option should be non-negative; use num_workers=0 "
                                "to disable multiprocessing.")
        if timeout < 0:
            raise ArgumentError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ArgumentError("prefetch_factor option could only be specified in "
                                "multiprocessing. let num_workers > 0 to enable "
                                "multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ArgumentError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ArgumentError("persistent_workers option needs num_workers > 0")
        self._is_iterable = isinstance(dataset, IterableDataset)
        if self._is_iterable:
            if shuffle not in (None, False):
                raise ArgumentError("DataLoader with IterableDataset: expected unspecified "
                                    f"shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ArgumentError("DataLoader with IterableDataset: expected unspecified "
                                    f"sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ArgumentError("DataLoader with IterableDataset: expected unspecified "
                                    f"batch_sampler option, but got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ArgumentError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ArgumentError("batch_sampler option is mutually exclusive with "
                                    "batch_size, shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ArgumentError("batch_size=None option disables auto-batching and is mutually "
                                "exclusive with drop_last")
        if sampler is None:
            if self._is_iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.in_order = in_order
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if self._auto_collation else default_convert)
        self.persistent_workers = persistent_workers
        self._iterator = None
        self._initialized = True

    def __setattr__(self, name, value):
        if getattr(self, "_initialized", False) and name in _FROZEN:
            raise ArgumentError(f"{name} attribute should not be set after "
                                f"{type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _mp_context(self):
        ctx = self.multiprocessing_context
        if ctx is None:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            return multiprocessing.get_context(method)
        if isinstance(ctx, str):
            if ctx not in multiprocessing.get_all_start_methods():
                raise ArgumentError(f"multiprocessing_context option should specify a valid "
                                    f"start method in {multiprocessing.get_all_start_methods()}"
                                    f", but got multiprocessing_context={ctx!r}")
            return multiprocessing.get_context(ctx)
        return ctx

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        return _MultiProcessIter(self)

    def __len__(self) -> int:
        if self._is_iterable:
            n = len(self.dataset)  # TypeError when the dataset has no length, as in torch
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)


class _BaseIter:
    """Shared iterator state. The worker base seed is drawn in both modes so that the
    sampler sees the same generator stream with and without workers."""

    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._base_seed = _fresh_seed(loader.generator)
        self._auto = loader._auto_collation
        self._collate = loader.collate_fn

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)


class _SingleProcessIter(_BaseIter):
    """Fetch and collate in the main process."""

    def __init__(self, loader):
        super().__init__(loader)
        ld = loader
        if ld._is_iterable:
            self._data_iter = iter(ld.dataset)
        else:
            self._sampler_iter = iter(ld._index_sampler)
        self._done = False

    def __next__(self):
        ld = self._loader
        if self._done:
            raise StopIteration
        if ld._is_iterable:
            out = _worker._fetch_iter(self._data_iter, ld.batch_size, ld.drop_last, self._auto,
                                      self._collate)
            if isinstance(out, _worker._Exhausted):
                self._done = True
                raise StopIteration
            return out
        indices = next(self._sampler_iter)
        return _worker._fetch_map(ld.dataset, indices, self._auto, self._collate)


class _MultiProcessIter(_BaseIter):
    """Hand out tasks to worker processes and yield their batches (in order by default)."""

    def __init__(self, loader):
        super().__init__(loader)
        ld = loader
        ctx = ld._mp_context()
        self._n = ld.num_workers
        self._result_queue = ctx.Queue()
        self._index_queues, self._workers = [], []
        for wid in range(self._n):
            q = ctx.Queue()
            w = ctx.Process(target=_worker.worker_loop, daemon=True, args=(
                ld.dataset, q, self._result_queue, wid, self._n, self._base_seed,
                ld.worker_init_fn, self._auto, self._collate, ld._is_iterable, ld.batch_size,
                ld.drop_last, os.getpid()))
            w.start()
            self._index_queues.append(q)
            self._workers.append(w)
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._index_queues,
                                           self._result_queue, os.getpid())
        self._epoch = 0
        self._reset(first=True)

    def _reset(self, first: bool = False) -> None:
        """Start an epoch (persistent workers reuse the processes)."""
        ld = self._loader
        self._epoch += 1
        self._sampler_iter = iter(ld._index_sampler)
        self._send_idx = 0
        self._rcvd_idx = 0
        self._outstanding: dict[int, int] = {}
        self._buffer: dict = {}
        self._active = [True] * self._n
        self._next_worker = 0
        self._sampler_done = False
        if not first and ld._is_iterable:
            for q in self._index_queues:
                q.put(("resume", self._epoch))
        for _ in range(ld.prefetch_factor * self._n):
            self._try_put()

    def _try_put(self) -> None:
        if self._sampler_done or not any(self._active):
            return
        while not self._active[self._next_worker]:
            self._next_worker = (self._next_worker + 1) % self._n
        wid = self._next_worker
        self._next_worker = (wid + 1) % self._n
        try:
            indices = next(self._sampler_iter)
        except StopIteration:
            self._sampler_done = True
            return
        self._index_queues[wid].put(("task", self._epoch, self._send_idx, indices))
        self._outstanding[self._send_idx] = wid
        self._send_idx += 1

    def __next__(self):
        while True:
            if self._loader.in_order:
                while self._rcvd_idx in self._buffer:
                    task = self._rcvd_idx
                    self._rcvd_idx += 1
                    out = self._process(task, self._buffer.pop(task))
                    if out is not _SKIP:
                        return out
            elif self._buffer:
                task = next(iter(self._buffer))
                out = self._process(task, self._buffer.pop(task))
                if out is not _SKIP:
                    return out
                continue
            if not self._outstanding and not self._buffer:
                self._end_epoch()
                raise StopIteration
            epoch, task, payload = self._get_result()
            if epoch == self._epoch:
                self._buffer[task] = payload

    def _process(self, task, payload):
        wid = self._outstanding.pop(task, None)
        if isinstance(payload, _worker._Exhausted) and wid is not None:
            self._active[wid] = False
        self._try_put()
        if isinstance(payload, _worker._Exhausted):
            return _SKIP
        if isinstance(payload, _worker._Failure):
            if not self._loader.persistent_workers:
                self._finalizer()
            payload.reraise()
        return payload

    def _end_epoch(self) -> None:
        if not self._loader.persistent_workers:
            self._finalizer()

    def _get_result(self):
        timeout = self._loader.timeout
        start = time.monotonic()
        while True:
            wait = _POLL_S if timeout <= 0 else min(_POLL_S, timeout)
            try:
                return self._result_queue.get(timeout=wait)
            except queue.Empty:
                for w in self._workers:
                    if not w.is_alive():
                        self._finalizer()
                        raise RuntimeError(f"DataLoader worker (pid {w.pid}) exited "
                                           f"unexpectedly with exit code {w.exitcode}") from None
                if timeout > 0 and time.monotonic() - start >= timeout:
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None


_SKIP = object()


def _shutdown(workers, index_queues, result_queue, owner_pid) -> None:
    """Stop the workers (politely, then by force) and close the queues. Only the process that
    started them does this: a forked worker of another loader that garbage-collects this
    iterator must leave them alone (it cannot join them, and must not stop them)."""
    if os.getpid() != owner_pid:
        return
    for q in index_queues:
        try:
            q.put(None)
        except (OSError, ValueError):
            pass
    for w in workers:
        w.join(timeout=5)
        if w.is_alive():
            w.terminate()
            w.join(timeout=1)
    for q in (*index_queues, result_queue):
        q.cancel_join_thread()
        q.close()
