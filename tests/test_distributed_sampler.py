"""data.DistributedSampler: PyTorch's padding / drop_last / strided per-rank slices and
seed + epoch shuffling (properties: the permutation itself is the framework generator's),
and the error when no world size / rank is given."""

import math

import pytest

import framework as fw
from framework.data import DataLoader, DistributedSampler, TensorDataset
from framework.errors import DistributedError


def _ranks(n, replicas, **kw):
    return [DistributedSampler(range(n), num_replicas=replicas, rank=r, **kw)
            for r in range(replicas)]


@pytest.mark.parametrize("n,replicas", [(10, 3), (12, 4), (5, 8), (7, 1)])
def test_unshuffled_layout_is_pytorchs(n, replicas):
    samplers = _ranks(n, replicas, shuffle=False)
    total = math.ceil(n / replicas) * replicas
    padded = (list(range(n)) * math.ceil(total / n))[:total]
    for r, s in enumerate(samplers):
        assert list(s) == padded[r:total:replicas]
        assert len(s) == math.ceil(n / replicas) == len(list(s))


def test_drop_last_cuts_to_a_multiple():
    samplers = _ranks(10, 3, shuffle=False, drop_last=True)
    assert [list(s) for s in samplers] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert all(len(s) == 3 for s in samplers)
    assert [len(s) for s in _ranks(9, 3, drop_last=True)] == [3, 3, 3]


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_ranks_cover_the_dataset_and_follow_the_epoch(drop_last):
    n, replicas = 23, 4
    samplers = _ranks(n, replicas, seed=7, drop_last=drop_last)
    per_rank = [list(s) for s in samplers]
    flat = [i for r in per_rank for i in r]
    assert len({len(r) for r in per_rank}) == 1
    if drop_last:
        assert len(flat) == len(set(flat)) == 20  # disjoint, 3 left out
    else:
        assert set(flat) == set(range(n)) and len(flat) == 24  # one index repeated
    assert [list(s) for s in samplers] == per_rank  # same epoch, same order
    again = _ranks(n, replicas, seed=7, drop_last=drop_last)
    assert [list(s) for s in again] == per_rank  # deterministic across instances
    for s in samplers:
        s.set_epoch(1)
    epoch1 = [list(s) for s in samplers]
    assert epoch1 != per_rank
    flat1 = [i for r in epoch1 for i in r]
    assert len(set(flat1)) == (20 if drop_last else n) and len(flat1) == len(flat)
    other_seed = _ranks(n, replicas, seed=8, drop_last=drop_last)
    assert [list(s) for s in other_seed] != per_rank
    # seed + epoch is what counts: seed 8 at epoch 0 is seed 7 at epoch 1
    assert [list(s) for s in other_seed] == epoch1
    # the global generator plays no part
    fw.manual_seed(123)
    assert [list(s) for s in samplers] == epoch1


def test_with_a_dataloader_and_errors():
    ds = TensorDataset(fw.arange(10))
    sampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    batches = [b[0].tolist() for b in DataLoader(ds, batch_size=2, sampler=sampler)]
    assert batches == [[1, 3], [5, 7], [9]]
    with pytest.raises(DistributedError, match="num_replicas.*process group"):
        DistributedSampler(ds)
    with pytest.raises(RuntimeError, match="rank"):
        DistributedSampler(ds, num_replicas=2)
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval "
                                         r"\[0, 1\]"):
        DistributedSampler(ds, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="Invalid rank -1"):
        DistributedSampler(ds, num_replicas=2, rank=-1)
    from framework.utils.data.distributed import DistributedSampler as Same
    assert Same is DistributedSampler
