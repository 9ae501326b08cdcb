"""fw.data: datasets, samplers, collate and the DataLoader (with worker processes)."""

import collections
import os
import random
import time

import numpy as np
import pytest

import framework as fw
from framework.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset,
                            RandomSampler, SequentialSampler, StackDataset, Subset,
                            SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
                            default_collate, get_worker_info, random_split)
from framework.errors import ArgumentError, FwIndexError, ShapeError


def _ds(n=10):
    return TensorDataset(fw.arange(n), fw.arange(n) * 10)


def _as_lists(loader):
    return [[t.tolist() if isinstance(t, fw.Tensor) else t for t in b] for b in loader]


# -- datasets ----------------------------------------------------------------------------
def test_tensor_dataset():
    ds = _ds(5)
    assert len(ds) == 5
    x, y = ds[3]
    assert x.item() == 3 and y.item() == 30
    with pytest.raises(ArgumentError, match="size mismatch"):
        TensorDataset(fw.zeros(3), fw.zeros(4))


def test_concat_subset_stack():
    a, b = _ds(3), _ds(4)
    cat = a + b
    assert isinstance(cat, ConcatDataset) and len(cat) == 7
    assert cat[3][0].item() == 0 and cat[-1][0].item() == 3 and cat[2][0].item() == 2
    with pytest.raises(FwIndexError):
        cat[7]
    sub = Subset(b, [3, 1])
    assert len(sub) == 2 and sub[0][0].item() == 3
    st = StackDataset(a, a)
    assert st[1][1][0].item() == 1
    st = StackDataset(x=a, y=a)
    assert set(st[0]) == {"x", "y"}


def test_random_split_lengths_and_fractions():
    ds = _ds(10)
    parts = random_split(ds, [3, 7], generator=fw.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [3, 7]
    idx = sorted(parts[0].indices + parts[1].indices)
    assert idx == list(range(10))
    again = random_split(ds, [3, 7], generator=fw.Generator().manual_seed(0))
    assert again[0].indices == parts[0].indices
    other = random_split(ds, [3, 7], generator=fw.Generator().manual_seed(1))
    assert other[0].indices != parts[0].indices
    fr = random_split(_ds(11), [0.5, 0.3, 0.2])
    assert [len(p) for p in fr] == [6, 3, 2]  # floor 5, 3, 2 = 10; remainder to the first
    with pytest.raises(ArgumentError, match="does not equal the length"):
        random_split(ds, [3, 3])


# -- collate -----------------------------------------------------------------------------
Point = collections.namedtuple("Point", "x y")


def test_default_collate_nested():
    samples = [{"x": np.full((3,), i, dtype=np.float32), "y": i, "w": float(i), "ok": i % 2 == 0,
                "name": f"s{i}", "pair": (fw.ones(2) * i, [i, i + 1]), "pt": Point(i, -i),
                "s": np.int16(i)} for i in range(4)]
    batch = default_collate(samples)
    assert batch["x"].shape == (4, 3) and batch["x"].dtype is fw.float32
    assert batch["y"].dtype is fw.int64 and batch["y"].tolist() == [0, 1, 2, 3]
    assert batch["w"].dtype is fw.float64
    assert batch["ok"].dtype is fw.bool and batch["ok"].tolist() == [True, False, True, False]
    assert batch["name"] == ["s0", "s1", "s2", "s3"]
    assert isinstance(batch["pair"], list) and batch["pair"][0].shape == (4, 2)
    assert [t.tolist() for t in batch["pair"][1]] == [[0, 1, 2, 3], [1, 2, 3, 4]]
    assert isinstance(batch["pt"], Point) and batch["pt"].y.tolist() == [0, -1, -2, -3]
    assert batch["s"].dtype is fw.int16


def test_default_collate_errors():
    with pytest.raises(ShapeError, match="equal size"):
        default_collate([fw.zeros(2), fw.zeros(3)])
    with pytest.raises(ShapeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])


# -- DataLoader basics ---------------------------------------------------------------------
def test_batching_and_drop_last():
    loader = DataLoader(_ds(10), batch_size=4)
    batches = _as_lists(loader)
    assert len(loader) == 3 and [len(b[0]) for b in batches] == [4, 4, 2]
    assert batches[0] == [[0, 1, 2, 3], [0, 10, 20, 30]]
    loader = DataLoader(_ds(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and len(list(loader)) == 2


def test_no_auto_batching_converts_numpy():
    class Arrays(Dataset):
        def __getitem__(self, i):
            return np.arange(3) + i

        def __len__(self):
            return 2

    items = list(DataLoader(Arrays(), batch_size=None))
    assert isinstance(items[0], fw.Tensor) and items[1].tolist() == [1, 2, 3]


def test_shuffle_reproducible_and_different_across_epochs():
    def epoch_orders(loader, n=3):
        return [[i for b in loader for i in b[0].tolist()] for _ in range(n)]

    fw.manual_seed(123)
    first = epoch_orders(DataLoader(_ds(20), batch_size=6, shuffle=True))
    fw.manual_seed(123)
    second = epoch_orders(DataLoader(_ds(20), batch_size=6, shuffle=True))
    assert first == second
    assert all(sorted(o) == list(range(20)) for o in first)
    assert first[0] != first[1] != first[2]
    g = fw.Generator().manual_seed(7)
    a = epoch_orders(DataLoader(_ds(20), batch_size=6, shuffle=True, generator=g))
    g.manual_seed(7)
    b = epoch_orders(DataLoader(_ds(20), batch_size=6, shuffle=True, generator=g))
    assert a == b and a[0] != a[1]


def test_samplers():
    ds = _ds(10)
    assert list(SequentialSampler(ds)) == list(range(10))
    fw.manual_seed(0)
    r = list(RandomSampler(ds))
    assert sorted(r) == list(range(10))
    rep = list(RandomSampler(ds, replacement=True, num_samples=50))
    assert len(rep) == 50 and set(rep) <= set(range(10)) and len(set(rep)) <= 10
    more = list(RandomSampler(ds, num_samples=25))
    assert len(more) == 25 and sorted(more[:10]) == list(range(10))
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, False)) == 3
    assert sorted(SubsetRandomSampler([5, 7, 9])) == [5, 7, 9]
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 40))
    assert set(w) <= {1, 3} and w.count(3) > w.count(1)
    with pytest.raises(ArgumentError, match="batch_size should be a positive"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ArgumentError, match="num_samples"):
        RandomSampler(ds, num_samples=0)


def test_custom_sampler_and_batch_sampler():
    loader = DataLoader(_ds(6), sampler=[5, 4, 3], batch_size=2)
    assert [b[0].tolist() for b in loader] == [[5, 4], [3]]
    loader = DataLoader(_ds(6), batch_sampler=[[0, 5], [2]])
    assert [b[0].tolist() for b in loader] == [[0, 5], [2]]
    assert len(loader) == 2


def test_argument_errors():
    ds = _ds(4)
    with pytest.raises(ArgumentError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(ArgumentError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ArgumentError, match="drop_last"):
        DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(ArgumentError, match="non-negative"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ArgumentError, match="persistent_workers"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ArgumentError, match="prefetch_factor"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ArgumentError, match="shuffle"):
        DataLoader(_Stream(4), shuffle=True)
    loader = DataLoader(ds, pin_memory=True)  # accepted and ignored
    with pytest.raises(ArgumentError, match="should not be set after"):
        loader.batch_size = 3


class _Stream(IterableDataset):
    """0..n-1, sharded across workers by get_worker_info()."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


def test_iterable_dataset_single_process():
    loader = DataLoader(_Stream(7), batch_size=3)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(loader) == 3
    loader = DataLoader(_Stream(7), batch_size=3, drop_last=True)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5]]


# -- worker processes -----------------------------------------------------------------------
class _Noisy(Dataset):
    """Each sample carries draws from fw, NumPy and random: they depend on worker seeding."""

    def __getitem__(self, i):
        info = get_worker_info()
        return {"i": i, "fw": fw.rand(1), "np": np.random.rand(), "py": random.random(),
                "seed": -1 if info is None else info.seed}

    def __len__(self):
        return 12


def test_workers_give_the_same_batches_as_main_process():
    fw.manual_seed(5)
    single = _as_lists(DataLoader(_ds(23), batch_size=4, shuffle=True))
    fw.manual_seed(5)
    multi = _as_lists(DataLoader(_ds(23), batch_size=4, shuffle=True, num_workers=2))
    assert single == multi and len(multi) == 6


def test_worker_seeding_info_and_init_fn():
    def init_fn(worker_id):
        info = get_worker_info()
        assert info.id == worker_id and info.num_workers == 2
        np.random.seed(1000 + worker_id)  # the init fn runs after the default seeding

    def run():
        fw.manual_seed(9)
        loader = DataLoader(_Noisy(), batch_size=3, num_workers=2, worker_init_fn=init_fn)
        return list(loader)

    a, b = run(), run()
    assert [x["i"].tolist() for x in a] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    for x, y in zip(a, b):  # reproducible under fw.manual_seed
        assert x["fw"].tolist() == y["fw"].tolist() and x["py"].tolist() == y["py"].tolist()
    # batches 0 and 1 come from workers 0 and 1: their streams differ
    assert a[0]["fw"].tolist() != a[1]["fw"].tolist()
    assert a[0]["py"].tolist() != a[1]["py"].tolist()
    np.testing.assert_allclose(a[0]["np"].numpy()[0], np.random.RandomState(1000).rand())
    seeds = [x["seed"].tolist()[0] for x in a]
    assert seeds[1] == seeds[0] + 1 and seeds[2] == seeds[0]  # base_seed + worker_id
    assert get_worker_info() is None


def test_iterable_dataset_with_workers_is_interleaved_in_order():
    loader = DataLoader(_Stream(10), batch_size=2, num_workers=2)
    # worker 0 streams 0,2,4,6,8 and worker 1 streams 1,3,5,7,9; batches alternate
    assert [b.tolist() for b in loader] == [[0, 2], [1, 3], [4, 6], [5, 7], [8], [9]]


def test_persistent_workers_and_out_of_order():
    loader = DataLoader(_ds(9), batch_size=2, num_workers=2, persistent_workers=True)
    first = _as_lists(loader)
    it = loader._iterator
    second = _as_lists(loader)
    assert first == second and loader._iterator is it and len(first) == 5
    unordered = DataLoader(_ds(9), batch_size=2, num_workers=2, in_order=False)
    got = sorted(i for b in unordered for i in b[0].tolist())
    assert got == list(range(9))
    stream = DataLoader(_Stream(5), batch_size=2, num_workers=2, persistent_workers=True)
    assert sorted(i for _ in range(2) for b in stream for i in b.tolist()) == \
        sorted(list(range(5)) * 2)


class _Broken(Dataset):
    def __getitem__(self, i):
        if i == 3:
            raise KeyError("sample 3 is missing")
        return i

    def __len__(self):
        return 6


def test_worker_exception_is_reraised_with_context():
    loader = DataLoader(_Broken(), batch_size=2, num_workers=2)
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 1"):
        list(loader)


def test_utils_data_alias():
    from framework.utils.data import DataLoader as DL
    from framework.utils.data.dataset import TensorDataset as TD
    import framework.utils.data as alias
    assert DL is DataLoader and TD is TensorDataset and alias is fw.data


class _Dies(Dataset):
    def __getitem__(self, i):
        if i == 2:
            os._exit(3)
        return i

    def __len__(self):
        return 4


def test_dead_worker_is_reported():
    with pytest.raises(RuntimeError, match="exited unexpectedly with exit code 3"):
        list(DataLoader(_Dies(), batch_size=1, num_workers=2))


class _Slow(Dataset):
    def __getitem__(self, i):
        time.sleep(0.6)
        return i

    def __len__(self):
        return 2


def test_timeout():
    with pytest.raises(RuntimeError, match="timed out after 0.2 seconds"):
        list(DataLoader(_Slow(), batch_size=1, num_workers=1, timeout=0.2))


def test_an_iterator_finalized_in_a_forked_process_leaves_the_workers_alone():
    """A forked worker of another loader may garbage-collect this loader's iterator; its
    shutdown must then do nothing (it cannot join the workers and must not stop them)."""
    import multiprocessing
    loader = DataLoader(_ds(6), batch_size=2, num_workers=1, persistent_workers=True)
    assert len(list(loader)) == 3
    child = multiprocessing.get_context("fork").Process(target=loader._iterator._finalizer)
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert len(list(loader)) == 3
