"""fw.multiprocessing: shared-memory tensors (share_memory_, is_shared, Module.share_memory),
tensors through queues / pipes / pools / process arguments, spawn() and its errors, and
the cleanup of the shared-memory segments (no /dev/shm leftovers, no resource_tracker
warnings).

Most tests fork (cheap); the ones about the spawn start method pay for one child importing
the framework (about a second).
"""

import gc
import mmap
import multiprocessing as std_mp
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import framework as fw
import framework.multiprocessing as mp
import framework.nn as nn
from framework.multiprocessing import _segments, reductions

SHM = "/dev/shm"
pytestmark = pytest.mark.skipif(not os.path.isdir(SHM), reason="needs POSIX shared memory")
_TIMEOUT = 20  # seconds; a broken child must fail a test, not hang it


def _segments_on_disk(prefix=_segments._PREFIX):
    return {n for n in os.listdir(SHM) if n.startswith(prefix)}


@pytest.fixture(autouse=True)
def _no_leaked_segments(monkeypatch, request):
    """Every test leaves /dev/shm as it found it, once its tensors are gone. Its segments
    (its own and its child processes') carry a tag of this test, so segments that tests
    running at the same time in other workers create are not counted."""
    tag = f"t{os.getpid()}x{abs(hash(request.node.nodeid)) % 10 ** 8}x"
    monkeypatch.setenv("FW_SHM_TAG", tag)
    prefix = _segments._PREFIX + tag
    gc.collect()
    before = _segments_on_disk(prefix)
    yield
    gc.collect()
    leaked = _segments_on_disk(prefix) - before
    assert not leaked, f"shared-memory segments left behind: {sorted(leaked)}"


def _fork():
    return mp.get_context("fork")


def _seg_name(t):
    return fw.tensor_sharing.SHARED[t._storage].name


def _holds(t):
    """(messages in flight, pids of the processes mapping it) from the segment's header."""
    seg = fw.tensor_sharing.SHARED[t._storage]
    pids = [p for p in _segments._SLOTS.unpack_from(seg.header, 64) if p]
    return _segments._MESSAGES.unpack_from(seg.header, 0)[0], pids


def _outside_view(t):
    """The segment of ``t`` mapped again, independently of the framework: a float32 view
    of its data bytes (proves the tensor really lives in the named shared memory)."""
    name = _seg_name(t)
    with open(os.path.join(SHM, name), "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
    return np.frombuffer(m, np.float32, offset=_segments.HEADER)


# -- share_memory_ / is_shared in one process ------------------------------------------------
def test_share_memory_keeps_object_layout_views_and_flags():
    base = fw.arange(12.0).reshape(3, 4)
    view = base[:, 1:3]                    # made before the move
    w = nn.Parameter(fw.ones(2, 3))
    assert not base.is_shared() and not view.is_shared()
    out = view.share_memory_()             # a view moves its whole storage
    assert out is view and base.is_shared() and view.is_shared()
    assert view.stride() == (4, 1) and view.storage_offset() == 1
    assert base[1:, ::2].is_shared()       # made after the move
    name = _seg_name(base)
    assert name in _segments.live_names() and os.path.exists(os.path.join(SHM, name))
    outside = _outside_view(base)
    outside[5] = 100.0                     # written through a second mapping
    assert base[1, 1].item() == 100.0 and view[1, 0].item() == 100.0
    view.mul_(2)                           # written through the tensor
    np.testing.assert_array_equal(outside[:12].reshape(3, 4)[:, 1:3], view.numpy())
    base.share_memory_()                   # already shared: no-op, same segment
    assert _seg_name(base) == name
    assert w.share_memory_() is w and isinstance(w, nn.Parameter) and w.requires_grad
    assert w.is_leaf and w.is_shared()
    (w * 3).sum().backward()               # autograd still works on the shared leaf
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 3), 3.0, np.float32))
    del outside
    gc.collect()


@pytest.mark.parametrize("dtype", [fw.float64, fw.bfloat16, fw.int32, fw.bool, fw.complex64])
def test_share_memory_dtypes_and_odd_layouts(dtype):
    src = (fw.arange(24) % 5).reshape(2, 3, 4)
    t = src.to(dtype).permute(2, 0, 1)     # non-contiguous root of its own storage
    want = t.clone()
    expanded = fw.ones(3, 1).to(dtype).expand(3, 4)  # stride 0, read-only in NumPy
    empty = fw.zeros(0, 5, dtype=dtype)
    for x in (t, expanded, empty):
        x.share_memory_()
        assert x.is_shared()
    assert t.dtype == dtype and t.shape == (4, 2, 3) and t.stride() == (1, 12, 4)
    assert fw.equal(t, want)
    assert expanded.stride() == (1, 0) and fw.equal(expanded, fw.ones(3, 4).to(dtype))
    with pytest.raises(ValueError, match="expanded"):
        expanded.zero_()                   # still refused, as before the move
    assert empty.shape == (0, 5)


def test_module_share_memory_params_grads_buffers_and_optimizer_writes():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model(fw.randn(5, 3)).sum().backward()
    assert model.share_memory() is model
    for name, p in model.named_parameters():
        assert p.is_shared() and p.grad.is_shared(), name
    for name, b in model.named_buffers():
        assert b.is_shared(), name
    outside = _outside_view(model[0].weight)
    opt = fw.optim.SGD(model.parameters(), lr=0.5)
    opt.step()                             # the optimizer writes into shared memory
    np.testing.assert_array_equal(outside[:12].reshape(4, 3), model[0].weight.detach().numpy())
    del outside
    gc.collect()


def test_share_memory_refuses_cuda_and_skips_meta():
    from framework.tensor import meta_tensor
    fake_cuda = meta_tensor((2,), fw.float32, fw.device("cuda"))
    with pytest.raises(NotImplementedError, match="CUDA IPC"):
        fake_cuda.share_memory_()
    with pytest.raises(NotImplementedError, match="CUDA IPC"):
        std_mp.reduction.ForkingPickler.dumps(fake_cuda)
    m = fw.empty(3, device="meta")
    assert m.share_memory_() is m and not m.is_shared()
    back = pickle.loads(std_mp.reduction.ForkingPickler.dumps(m.requires_grad_()))
    assert back.device.type == "meta" and back.shape == (3,) and back.requires_grad


def test_pickled_messages_hold_the_segment_until_received():
    me = [os.getpid()]
    t = fw.arange(4.0).share_memory_()
    assert _holds(t) == (0, me)
    msg = std_mp.reduction.ForkingPickler.dumps(t)
    assert _holds(t) == (1, me)            # the message's hold
    back = pickle.loads(msg)               # received in the same process: hold dropped
    assert _holds(t) == (0, me) and back is not t and back.is_shared()
    assert back._storage is t._storage     # back home: the same version counter
    back[0] = 7.0
    assert t[0].item() == 7.0
    name = _seg_name(t)
    msg = std_mp.reduction.ForkingPickler.dumps(t)
    del t, back
    gc.collect()
    assert os.path.exists(os.path.join(SHM, name))   # the message still holds it
    again = pickle.loads(msg)
    assert again.tolist() == [7.0, 1.0, 2.0, 3.0]
    del again
    gc.collect()
    assert not os.path.exists(os.path.join(SHM, name))


def test_sending_refuses_nonleaf_requiring_grad_and_missing_segments():
    x = fw.ones(2, requires_grad=True)
    with pytest.raises(fw.AutogradError, match="detach"):
        std_mp.reduction.ForkingPickler.dumps(x * 2)
    with pytest.raises(fw.errors.SharedMemoryError, match="no longer exists"):
        reductions._rebuild_shared("fwmp_0_missing", 0, (1,), (4,), "float32", True, False,
                                   "tensor")


def test_sharing_strategies_and_drop_in_names():
    assert mp.get_all_sharing_strategies() == {"file_system"}
    assert mp.get_sharing_strategy() == "file_system"
    mp.set_sharing_strategy("file_system")
    with pytest.raises(NotImplementedError, match="file descriptors"):
        mp.set_sharing_strategy("file_descriptor")
    with pytest.raises(fw.ArgumentError):
        mp.set_sharing_strategy("nope")
    assert mp.Process is std_mp.Process and mp.Queue == std_mp.Queue
    assert fw.multiprocessing is mp
    for name in ("Pool", "Pipe", "get_context", "set_start_method", "spawn"):
        assert name in mp.__all__


# -- across processes (fork) ------------------------------------------------------------------
def _child_update(q_in, q_out):
    t, view, p, plain = q_in.get()
    t.add_(1)                              # seen by the parent
    view.fill_(-1.0)                       # a view: only its elements
    q_out.put((t.is_shared(), type(p).__name__, p.requires_grad, p.grad is None,
               plain.requires_grad, plain.tolist()))


def test_queue_shares_tensors_views_and_parameters_with_a_child():
    ctx = _fork()
    t = fw.zeros(3, 4)
    t.share_memory_()
    p = nn.Parameter(fw.ones(2))
    p.grad = fw.ones(2)                    # not sent, as PyTorch
    plain = fw.tensor([1.0, 2.0], requires_grad=True)  # unshared: moved to shared on send
    q_in, q_out = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=_child_update, args=(q_in, q_out))
    proc.start()
    q_in.put((t, t[1, ::2], p, plain))
    got = q_out.get(timeout=_TIMEOUT)
    proc.join(_TIMEOUT)
    assert proc.exitcode == 0
    assert got == (True, "Parameter", True, True, True, [1.0, 2.0])
    want = np.ones((3, 4), np.float32)
    want[1, ::2] = -1.0
    np.testing.assert_array_equal(t.numpy(), want)
    assert plain.is_shared() and p.is_shared()   # what PyTorch does when sending


def _child_make(q):
    q.put(fw.arange(5.0) * 2)              # a temporary: freed right after sending
    q.put(fw.ones(2, 2).t())


def test_tensor_outlives_a_sender_that_freed_it_and_exited():
    ctx = _fork()
    q = ctx.Queue()
    proc = ctx.Process(target=_child_make, args=(q,))
    proc.start()
    proc.join(_TIMEOUT)                    # the child is gone before we read
    assert proc.exitcode == 0
    a, b = q.get(timeout=_TIMEOUT), q.get(timeout=_TIMEOUT)
    assert a.is_shared() and a.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert b.stride() == (1, 2) and fw.equal(b, fw.ones(2, 2))


def _child_hold_and_die(q, r):
    held = [q.get(), q.get()]
    r.put([x.sum().item() for x in held])  # SimpleQueue: sent before the next line
    q.get()
    os.kill(os.getpid(), signal.SIGKILL)   # dies holding both segments


def test_holders_killed_by_a_signal_do_not_keep_segments():
    ctx = _fork()
    a, b = fw.ones(4), fw.ones(2)
    q, r = ctx.Queue(), ctx.SimpleQueue()
    proc = ctx.Process(target=_child_hold_and_die, args=(q, r))
    proc.start()
    q.put(a)
    q.put(b)
    assert r.get() == [4.0, 2.0]
    name_a, name_b = _seg_name(a), _seg_name(b)
    del b                                   # let go first: the child still holds it
    gc.collect()
    assert os.path.exists(os.path.join(SHM, name_b))
    q.put("die")
    proc.join(_TIMEOUT)
    assert proc.exitcode == -signal.SIGKILL
    assert _holds(a) == (0, [os.getpid(), proc.pid])   # the dead child is still listed
    del a                                   # the last live holder lets go: dead pid pruned
    gc.collect()
    assert not os.path.exists(os.path.join(SHM, name_a))
    assert os.path.exists(os.path.join(SHM, name_b))  # its last holder died holding it
    fw.zeros(1).share_memory_()             # the creator sweeps what nobody holds any more
    gc.collect()
    assert not os.path.exists(os.path.join(SHM, name_b))


def _child_resend(t, go, q):
    go.get()
    q.put(t)                               # inherited through fork, sent on


def test_forked_child_holds_what_it_inherited():
    ctx = _fork()
    t = fw.arange(3.0).share_memory_()
    name = _seg_name(t)
    go, q = ctx.SimpleQueue(), ctx.SimpleQueue()
    proc = ctx.Process(target=_child_resend, args=(t, go, q))
    proc.start()
    del t                                  # the parent lets go first
    gc.collect()
    assert os.path.exists(os.path.join(SHM, name))
    go.put(1)
    back = q.get()
    proc.join(_TIMEOUT)
    assert proc.exitcode == 0 and back.tolist() == [0.0, 1.0, 2.0]


def _child_pipe(conn):
    t = conn.recv()
    t.mul_(10)
    conn.send("done")


def _square(t):
    return t * t


def test_pipe_and_pool():
    ctx = _fork()
    t = fw.arange(3.0)
    a, b = ctx.Pipe()
    proc = ctx.Process(target=_child_pipe, args=(b,))
    proc.start()
    a.send(t)
    assert a.poll(_TIMEOUT) and a.recv() == "done"
    proc.join(_TIMEOUT)
    assert t.tolist() == [0.0, 10.0, 20.0]
    pool = ctx.Pool(2)   # `with Pool` (terminate) is in the exit test below
    outs = pool.map_async(_square, [fw.full((2,), float(i)) for i in range(4)]).get(
        timeout=_TIMEOUT)
    pool.close()
    pool.join()
    assert [o.tolist() for o in outs] == [[float(i * i)] * 2 for i in range(4)]


def test_dataloader_workers_send_batches_by_copy():
    data = fw.utils.data.TensorDataset(fw.arange(8.0).reshape(8, 1), fw.arange(8))
    loader = fw.utils.data.DataLoader(data, batch_size=4, num_workers=1)
    batches = list(loader)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert not any(x.is_shared() for b in batches for x in b)
    it = iter(fw.utils.data.DataLoader(data, batch_size=1, num_workers=2))
    next(it)                               # stopped mid-epoch: results in flight dropped
    del it


# -- spawn() ----------------------------------------------------------------------------------
def _train_rank(rank, w, q):
    with fw.no_grad():
        w[rank].add_(rank + 1.0)
    q.put(rank)


def _fail(rank, how):
    if rank == 1:
        if how == "raise":
            raise ValueError(f"bad rank {rank}")
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        sys.exit(3)
    import time
    time.sleep(30)                         # terminated by the parent when rank 1 fails


def test_spawn_shares_arguments_with_spawned_children():
    w = fw.zeros(2, 3, requires_grad=True)
    q = mp.get_context("spawn").SimpleQueue()
    assert mp.spawn(_train_rank, args=(w, q), nprocs=2) is None
    assert sorted([q.get(), q.get()]) == [0, 1]
    np.testing.assert_array_equal(w.detach().numpy(), [[1.0] * 3, [2.0] * 3])
    assert w.requires_grad and w.is_leaf


def test_spawn_join_false_and_failures():
    ctx = mp.spawn(_train_rank, args=(fw.zeros(1, 1), _fork().SimpleQueue()), nprocs=1,
                   join=False, start_method="fork")
    assert isinstance(ctx, mp.ProcessContext) and len(ctx.pids()) == 1
    while not ctx.join(timeout=_TIMEOUT):
        pass
    with pytest.raises(mp.ProcessRaisedException, match="ValueError: bad rank 1") as err:
        mp.spawn(_fail, args=("raise",), nprocs=2, start_method="fork")
    assert err.value.error_index == 1 and "Traceback" in str(err.value)
    assert "-- Process 1 terminated with the following error" in str(err.value)
    with pytest.raises(mp.ProcessExitedException, match="exit code 3") as err:
        mp.spawn(_fail, args=("exit",), nprocs=2, start_method="fork")
    assert err.value.exit_code == 3 and err.value.error_index == 1
    with pytest.raises(mp.ProcessExitedException, match="signal SIGKILL") as err:
        mp.spawn(_fail, args=("kill",), nprocs=2, start_method="fork")
    assert err.value.signal_name == "SIGKILL" and err.value.exit_code == -signal.SIGKILL
    with pytest.raises(fw.ArgumentError, match="nprocs"):
        mp.spawn(_fail, nprocs=0)


_EXIT_SCRIPT = textwrap.dedent("""
    import framework as fw
    import framework.multiprocessing as mp

    def child(rank, w, q):
        w.add_(1)
        q.put(fw.ones(3) * rank)       # a tensor made by the child, freed there

    if __name__ == "__main__":
        w = fw.zeros(4)
        q = mp.get_context("spawn").SimpleQueue()
        mp.spawn(child, args=(w, q), nprocs=1)
        got = q.get()
        q2 = mp.get_context("fork").Queue()
        q2.put(fw.arange(3.0))         # unshared: moved to shared memory on send
        back = q2.get()
        for _ in range(6):  # terminate() at each exit kills workers that still hold tasks
            with mp.get_context("fork").Pool(2) as pool:
                sums = pool.map(fw.Tensor.sum, [fw.ones(3), fw.ones(4)])
        print("OK", w.tolist(), got.tolist(), back.tolist(), [s.item() for s in sums],
              flush=True)
    """)


def test_no_resource_tracker_warnings_or_leftovers_at_exit(tmp_path):
    script = tmp_path / "mp_exit.py"
    script.write_text(_EXIT_SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    mine = _segments._PREFIX + os.environ["FW_SHM_TAG"]  # the script inherits the tag
    before = _segments_on_disk(mine)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert "OK [1.0, 1.0, 1.0, 1.0] [0.0, 0.0, 0.0] [0.0, 1.0, 2.0] [3.0, 4.0]" in res.stdout
    assert res.stderr == "", res.stderr    # no resource_tracker warning, no traceback
    assert _segments_on_disk(mine) <= before
