"""``DistributedSampler``: the slice of a dataset one of ``num_replicas`` processes reads
(PyTorch's ``torch.utils.data.distributed.DistributedSampler``)."""

from __future__ import annotations

import math

from ..errors import ArgumentError, DistributedError
from .sampler import Sampler


class DistributedSampler(Sampler):
    """Indices ``rank, rank + num_replicas, ...`` of a (shuffled) list of the dataset's
    indices, padded by repeating its head to a multiple of ``num_replicas`` (or, with
    ``drop_last``, cut down to one), so every rank gets ``len(self)`` indices.

    This framework has no distributed runtime, so ``num_replicas`` and ``rank`` must be
    given (a :class:`~framework.errors.DistributedError` otherwise). With ``shuffle`` the
    permutation comes from a generator seeded with ``seed + epoch``: the same on every
    rank, different per epoch; call :meth:`set_epoch` at the start of each epoch. (It is
    the framework generator's permutation, not bit-identical to PyTorch's.)
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        for arg, value in (("num_replicas", num_replicas), ("rank", rank)):
            if value is None:
                raise DistributedError(
                    f"DistributedSampler: {arg} was not given and there is no default "
                    "process group to read it from (this framework has no distributed "
                    "runtime); pass num_replicas= and rank= explicitly")
        if num_replicas <= 0:
            raise ArgumentError(f"DistributedSampler: num_replicas should be a positive "
                                f"integer, but got num_replicas={num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ArgumentError(f"Invalid rank {rank}, rank should be in the interval "
                                f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            from ..creation import randperm
            from ..random import Generator
            g = Generator().manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding_size = self.total_size - len(indices)
            if padding_size <= len(indices):
                indices += indices[:padding_size]
            else:
                indices += (indices * math.ceil(padding_size / len(indices)))[:padding_size]
        else:
            indices = indices[:self.total_size]
        indices = indices[self.rank:self.total_size:self.num_replicas]
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s permutation from now on (call it before each epoch, on
        every rank, so the ranks shuffle alike and epochs differ)."""
        self.epoch = epoch
