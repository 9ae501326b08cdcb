"""Tensors in shared memory: ``Tensor.share_memory_()``, ``Tensor.is_shared()`` and the
helper behind ``nn.Module.share_memory()``.

``share_memory_()`` moves a CPU tensor's storage into a named shared-memory segment
(``framework.multiprocessing._segments``): the bytes are copied once, and the tensor object
and every tensor sharing its storage (its views, ``detach()`` aliases, a ``Parameter``
wrapping it) now read and write the segment, with their dtype, shape, strides, offsets and
autograd flags unchanged. ``framework.multiprocessing`` then sends such tensors between
processes as the segment's name plus the layout, so in-place updates in one process are
seen by the others.

NumPy arrays handed out before the move (``t.numpy()``) keep the old private memory, as
they do in PyTorch.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np

from .device import cpu, meta
from .errors import FwTypeError
from .tensor import Tensor

# Storage -> the Segment (framework.multiprocessing._segments) its tensors' arrays live in.
# Keyed by the Storage object that a base tensor and its views share, so is_shared() of a
# view answers for the whole storage, as PyTorch's does.
SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _is_shared(self) -> bool:
    """True when this tensor's storage lives in shared memory (``share_memory_()``, or a
    tensor received from another process)."""
    return self._storage in SHARED


def _share_memory_(self) -> Tensor:
    """Move this tensor's storage to shared memory (a no-op when it is already shared, and
    for meta tensors) and return the tensor. CUDA tensors are refused: CUDA IPC is not
    implemented."""
    share_tensors([self], "Tensor.share_memory_()")
    return self


def share_tensors(tensors, what: str = "share_memory()") -> None:
    """Move the storages of ``tensors`` to shared memory, one segment per storage (one scan
    of the heap finds every tensor that shares each storage)."""
    pending = {}
    for t in tensors:
        if not isinstance(t, Tensor):
            raise FwTypeError(f"{what}: expected a Tensor, got {type(t).__name__}")
        if t.device.type == "cuda":
            raise NotImplementedError(
                f"{what}: CUDA tensors cannot be shared between processes: CUDA IPC "
                "(cudaIpcGetMemHandle) is not implemented; move the tensor to the CPU first")
        if t.device is meta or t._storage in SHARED:
            continue
        if t.device is not cpu:
            raise NotImplementedError(f"{what}: sharing {t.device} tensors is not implemented")
        t._host_array(what)  # a graph break inside fw.compile, like other data accesses
        pending[id(t._storage)] = (t, t._storage)
    if not pending:
        return
    from .multiprocessing._segments import check_available
    check_available(what)
    holders = {key: [t] for key, (t, _) in pending.items()}
    for obj in gc.get_referrers(*(s for _, s in pending.values())):
        key = id(getattr(obj, "_storage", None))
        if isinstance(obj, Tensor) and key in holders:
            holders[key].append(obj)
    for key, (t, storage) in pending.items():
        _move(t, storage, holders[key])


def _owner(arr: np.ndarray):
    """The object that owns an array's memory (arrays with one owner can overlap)."""
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr.base if arr.base is not None else arr


def _move(t: Tensor, storage, holders: list) -> None:
    from .multiprocessing._segments import HEADER, create
    owner = _owner(t._data)
    seen, group = set(), []
    for h in holders:  # the tensors of this storage whose arrays share t's memory
        if id(h) not in seen and h._data is not None and _owner(h._data) is owner:
            seen.add(id(h))
            group.append(h)
    byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds  # NumPy 2 / NumPy 1
    bounds = [byte_bounds(h._data) for h in group]
    low = min(b[0] for b in bounds)
    seg, data = create(max(b[1] for b in bounds) - low)
    for h in group:
        old = h._data
        start = old.__array_interface__["data"][0] - low
        new = np.ndarray(old.shape, old.dtype, buffer=data, offset=HEADER + start,
                         strides=old.strides)
        np.copyto(new, old)
        new.flags.writeable = old.flags.writeable
        h._data = new
    SHARED[storage] = seg


def share_module(module) -> None:
    """``nn.Module.share_memory()``: parameters, their gradients and buffers."""
    tensors = []
    for p in module.parameters():
        tensors.append(p)
        if p.grad is not None and isinstance(p.grad, Tensor):
            tensors.append(p.grad)
    tensors.extend(b for b in module.buffers() if b is not None)
    share_tensors(tensors, f"{type(module).__name__}.share_memory()")


Tensor.share_memory_ = _share_memory_
Tensor.is_shared = _is_shared
