"""Named POSIX shared-memory segments that hold tensor storages, and when they go away.

A segment is one ``multiprocessing.shared_memory.SharedMemory`` block named
``fwmp_<pid>_<random>``: a one-page header, then the bytes of one storage (page-aligned).
The header records who holds the segment, updated under a POSIX record lock on the block:

- the pid of each process that maps it (one mapping per process, shared by all the tensors
  of that process that view the segment; a forked child holds what it inherited);
- the number of pickled tensors in flight (put on a queue, sent through a pipe, passed to
  a spawned process): a message holds the segment from pickling until the receiver maps it
  (the receiver then drops the message's hold, or turns it into its own).

A process gives its hold back when the last NumPy array viewing its mapping is freed (a
weakref finalizer on the ``mmap``), or at its exit (a ``multiprocessing.util`` exit
finalizer, which runs in the main process and in every child). The process that leaves no
message and no live holder behind unlinks the name; holders that died without letting go
(a pool worker terminated mid-task, a process killed by a signal) are pruned then, by pid,
and a process that let go while such a holder was still alive looks again when it next
shares a tensor and at its exit. So a tensor put on a queue survives its sender freeing it
(or exiting) until the receiver has mapped it, and no segment outlives its last user.

The creating process registers the name with ``multiprocessing``'s resource tracker, which
unlinks what is left when the program ends (with its usual "leaked shared_memory objects"
warning): the segments of messages pickled but never received (a queue dropped with items
in it, a pickling that failed half-way), or of a process tree killed as a whole.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import signal
import struct
import threading
import weakref
from multiprocessing import resource_tracker, util

import numpy as np

from ..errors import SharedMemoryError

try:
    import _posixshmem
    import fcntl
except ImportError:  # Windows: no POSIX shared memory
    _posixshmem = fcntl = None

HEADER = 4096  # bytes before the data: the header, one page (the data stays page-aligned)
_MESSAGES = struct.Struct("q")  # at 0: holds of messages in flight
_TRACKER = struct.Struct("Q")  # at 8: inode of the creator's resource-tracker pipe
_SLOTS = struct.Struct(f"{(HEADER - 64) // 4}i")  # at 64: pids of the mapping processes, 0=free
_PREFIX = "fwmp_"

_lock = threading.RLock()  # one thread at a time updates this process's tables and counts
_open: dict[str, Segment] = {}  # this process's mapping of each segment, by name
# names this process has mapped and not seen unlinked: after letting go of one while others
# held it, the process checks it again (_sweep) in case those holders died holding it
_watch: set[str] = set()
_lent: list[str] = []  # segments held for the child of the fork in progress
_exit_hook = None


class Segment:
    """This process's mapping of one segment: its name, its file descriptor, a small
    mapping of the header and a weak reference to the data mapping (NumPy arrays of the
    tensors keep the data mapping alive; its death gives the hold back)."""

    __slots__ = ("name", "fd", "header", "base_addr", "pid", "released", "_data")

    def __init__(self, name: str, fd: int, header: mmap.mmap, data: mmap.mmap, base: int):
        self.name, self.fd, self.header, self.base_addr = name, fd, header, base
        self.pid = os.getpid()
        self.released = False
        self._data = weakref.ref(data)

    def data(self) -> mmap.mmap | None:
        """The data mapping, or None once no array views it any more."""
        return self._data()


def check_available(what: str) -> None:
    """Raise NotImplementedError where there is no POSIX shared memory (Windows)."""
    if _posixshmem is None:
        raise NotImplementedError(f"{what}: sharing tensors between processes needs POSIX "
                                  "shared memory (shm_open), which this platform lacks")


def create(nbytes: int) -> tuple[Segment, mmap.mmap]:
    """A new segment with room for ``nbytes`` bytes of data, held once by this process."""
    from multiprocessing.shared_memory import SharedMemory
    check_available("share_memory_()")
    size = HEADER + max(int(nbytes), 1)
    while True:
        # FW_SHM_TAG (inherited by child processes) lets a test tell its segments apart
        name = f"{_PREFIX}{os.environ.get('FW_SHM_TAG', '')}{os.getpid()}_{secrets.token_hex(4)}"
        try:
            shm = SharedMemory(name=name, create=True, size=size)  # registers with the tracker
        except FileExistsError:
            continue
        break
    shm.close()  # the name stays; this process maps it below like any other
    with _lock:
        try:
            seg, data = _map(name)
        except BaseException:
            _unlink(name, tracked=True)
            raise
        _TRACKER.pack_into(seg.header, 8, _tracker_inode())
        _update(seg, add_pid=True)
        _open[name] = seg
        _sweep()
    return seg, data


def attach(name: str) -> tuple[Segment, mmap.mmap]:
    """Map the segment a received message names, taking over the message's hold."""
    check_available("receiving a shared tensor")
    with _lock:
        seg = _open.get(name)
        data = seg.data() if seg is not None and seg.pid == os.getpid() and \
            not seg.released else None
        if data is not None:
            _update(seg, messages=-1)  # this process already holds it: drop the message's
            return seg, data
        seg, data = _map(name)
        _update(seg, messages=-1, add_pid=True)  # the message's hold becomes this process's
        _open[name] = seg
        return seg, data


def add_hold(seg: Segment) -> None:
    """One more hold on ``seg``: the one a message being pickled carries."""
    with _lock:
        if seg.released:
            raise SharedMemoryError(f"shared memory segment {seg.name!r} was already released "
                                    "by this process (it is exiting)")
        _update(seg, messages=+1)


def release_all() -> None:
    """Give back every hold of this process, then unlink what it created that nobody holds
    any more (runs at process exit)."""
    with _lock:
        mine = [s for s in _open.values() if s.pid == os.getpid()]
    for seg in mine:
        _release(seg)
    with _lock:
        _sweep()


def live_names() -> list[str]:
    """Names of the segments this process maps now (for tests and debugging)."""
    with _lock:
        return sorted(n for n, s in _open.items()
                      if s.pid == os.getpid() and not s.released and s.data() is not None)


# -- internals -------------------------------------------------------------------------------
def _map(name: str) -> tuple[Segment, mmap.mmap]:
    try:
        fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
    except FileNotFoundError:
        raise SharedMemoryError(
            f"shared memory segment {name!r} no longer exists: every process holding it "
            "released it before this one received the tensor (was the message pickled "
            "twice, or the sender's segment leaked and cleaned up?)") from None
    try:
        size = os.fstat(fd).st_size
        header = mmap.mmap(fd, HEADER)
        data = mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise
    base = np.ndarray((1,), np.uint8, buffer=data).__array_interface__["data"][0]
    return _own(Segment(name, fd, header, data, base), data), data


def _own(seg: Segment, data: mmap.mmap) -> Segment:
    """Make ``seg`` this process's mapping: released when ``data`` dies, or at exit."""
    fin = weakref.finalize(data, _release, seg)
    fin.atexit = False  # the exit hook below gives holds back in every kind of process
    _watch.add(seg.name)
    _ensure_exit_hook()
    return seg


def _update(seg: Segment, messages: int = 0, add_pid: bool = False,
            drop_pid: bool = False) -> bool:
    """Update the segment's holders under the cross-process lock: ``messages`` more (or
    fewer) messages in flight, this process's pid added or dropped. Returns True when nobody
    holds it any more (no message, no live process; dead pids are pruned then)."""
    return _locked_update(seg.fd, seg.header, messages, add_pid, drop_pid)


def _locked_update(fd, header, messages, add_pid, drop_pid) -> bool:
    pid = os.getpid()
    with _signals_deferred():
        fcntl.lockf(fd, fcntl.LOCK_EX, 8, 0)
        try:
            return _update_holders(header, pid, messages, add_pid, drop_pid)
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 8, 0)


def _update_holders(header, pid, messages, add_pid, drop_pid) -> bool:
    """The header update itself (the caller holds the lock)."""
    count = _MESSAGES.unpack_from(header, 0)[0] + messages
    _MESSAGES.pack_into(header, 0, count)
    slots = list(_SLOTS.unpack_from(header, 64))
    if add_pid:
        if 0 not in slots:
            raise SharedMemoryError(f"shared memory: more than {len(slots)} processes map "
                                    "one tensor storage")
        slots[slots.index(0)] = pid
    if drop_pid:  # this process lets go: forget it and the holders that died
        slots = [0 if p == pid or (p and not _alive(p)) else p for p in slots]
    if add_pid or drop_pid:
        _SLOTS.pack_into(header, 64, *slots)
    return count <= 0 and not any(slots)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _release(seg: Segment) -> None:
    with _lock, _signals_deferred():
        # a mapping inherited through fork belongs to the parent: the child never held it
        if seg.released or seg.pid != os.getpid():
            return
        seg.released = True
        if _open.get(seg.name) is seg:
            del _open[seg.name]
        try:
            if _update(seg, drop_pid=True):
                creator = _TRACKER.unpack_from(seg.header, 8)[0]
                _unlink(seg.name, tracked=creator != 0 and creator == _tracker_inode())
                _watch.discard(seg.name)
        finally:
            seg.header.close()
            os.close(seg.fd)


def _sweep() -> None:
    """Unlink the segments this process let go of that nobody holds any more: their last
    holder was killed (a pool worker terminated mid-task) after this process let go."""
    for name in list(_watch):
        seg = _open.get(name)
        if seg is not None and seg.pid == os.getpid() and not seg.released:
            continue  # still mapped here
        try:
            fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
        except FileNotFoundError:
            _watch.discard(name)  # unlinked by its last holder
            continue
        try:
            with _signals_deferred():
                header = mmap.mmap(fd, HEADER)
                try:
                    if _locked_update(fd, header, 0, False, True):
                        _unlink(name, tracked=_TRACKER.unpack_from(header, 8)[0] ==
                                _tracker_inode() != 0)
                        _watch.discard(name)
                finally:
                    header.close()
        finally:
            os.close(fd)


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGTERM/SIGINT in this thread while holders are updated and a segment unlinked
    and unregistered, so that ``Pool.terminate()`` cannot stop a worker half-way."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _unlink(name: str, tracked: bool) -> None:
    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        return
    if tracked:  # the creator registered it with this same tracker process
        resource_tracker.unregister("/" + name, "shared_memory")


def _tracker_inode() -> int:
    """Identity of this process's resource tracker (its pipe's inode), 0 when it has none:
    a segment is unregistered only from the tracker that registered it."""
    fd = getattr(getattr(resource_tracker, "_resource_tracker", None), "_fd", None)
    if fd is None:
        return 0
    try:
        return os.fstat(fd).st_ino
    except OSError:
        return 0


def _ensure_exit_hook() -> None:
    global _exit_hook
    if _exit_hook is None or not _exit_hook.still_active():
        # priority below the queues' feeder threads (-5): their messages are pickled first
        _exit_hook = util.Finalize(None, release_all, exitpriority=-10)


def _after_fork(_obj) -> None:
    """In a new process (fork, or spawn's bootstrap, which clears multiprocessing's exit
    finalizers): register the exit hook again if this process maps segments."""
    global _exit_hook
    _exit_hook = None
    if any(s.pid == os.getpid() for s in _open.values()):
        _ensure_exit_hook()


def _before_fork() -> None:
    # A forked child shares the parent's tracker only if it runs before the fork: then one
    # tracker serves the whole process tree, and whoever unlinks a segment unregisters it
    # where it was registered (see _tracker_inode).
    try:
        resource_tracker.ensure_running()
    except Exception:  # never let a fork fail because of the tracker
        pass
    # The child inherits this process's mappings and holds them like its own: one message
    # hold per segment now (so the parent cannot let go of it first), which the child turns
    # into its pid. The lock stays taken across the fork, so the child's tables are whole.
    _lock.acquire()
    pid = os.getpid()
    for seg in list(_open.values()):
        if seg.pid == pid and not seg.released and seg.data() is not None:
            try:
                _update(seg, messages=+1)
            except (OSError, ValueError, SharedMemoryError):
                continue
            _lent.append(seg.name)


def _after_fork_in_parent() -> None:
    _lent.clear()
    _lock.release()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.RLock()
    _watch.clear()  # the parent's to check, not this child's
    from ..tensor_sharing import SHARED
    adopted = {}
    for name in _lent:
        seg = _open[name]
        data = seg.data()
        if data is None:
            continue
        try:
            _locked_update(seg.fd, seg.header, -1, True, False)
        except (OSError, ValueError, SharedMemoryError):
            continue
        _open[name] = adopted[id(seg)] = _own(
            Segment(name, seg.fd, seg.header, data, seg.base_addr), data)
    _lent.clear()
    for storage, seg in list(SHARED.items()):
        if id(seg) in adopted:
            SHARED[storage] = adopted[id(seg)]


_AFTER_FORK_KEY = type("_AfterForkKey", (), {})()  # a weakref-able owner for the callback
util.register_after_fork(_AFTER_FORK_KEY, _after_fork)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
