"""How tensors cross process boundaries: reducers registered with
``multiprocessing.reduction.ForkingPickler`` (the pickler behind every ``Queue``, ``Pipe``,
``Pool`` and the arguments of spawned processes).

A CPU tensor is sent as the name of its shared-memory segment plus its layout (byte offset,
shape, strides, dtype) and autograd flag; the receiver maps the same memory, so in-place
updates are seen on both sides. As in PyTorch, a tensor that is not shared yet is moved to
shared memory in the sender when it is sent (``t.is_shared()`` is True afterwards).
``Parameter`` objects arrive as ``Parameter`` with their ``requires_grad``; ``.grad`` and
hooks are not sent (as PyTorch). Received tensors are new tensor objects that share one
version counter per segment; they are not views (``storage_offset()`` is 0, as after
``set_``), but their memory is the sender's.

Refused, as PyTorch does: non-leaf tensors that require grad (autograd does not cross
processes) and CUDA tensors (CUDA IPC is not implemented here). Meta tensors travel as
metadata. Inside a DataLoader worker, batches are sent by copy: a loader stopped mid-epoch
drops results in flight, and copies leave no shared segment behind.
"""

from __future__ import annotations

import sys
import weakref
from multiprocessing.reduction import ForkingPickler

import numpy as np

from .. import dtypes
from ..device import cpu, meta
from ..errors import AutogradError
from ..nn.parameter import Parameter
from ..tensor import Storage, Tensor, meta_tensor
from ..tensor_sharing import SHARED, share_tensors
from . import _segments

# segment name -> the Storage of the tensors this process received from it (one version
# counter per segment, as PyTorch's received tensors share their storage)
_storages: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def reduce_tensor(t: Tensor):
    """``ForkingPickler`` reducer for Tensor and Parameter (see the module docstring)."""
    kind = "parameter" if isinstance(t, Parameter) else "tensor"
    if t.device.type == "cuda":
        raise NotImplementedError(
            "fw.multiprocessing: CUDA tensors cannot be sent to another process: CUDA IPC "
            "(cudaIpcGetMemHandle / cudaIpcOpenMemHandle) is not implemented; send "
            "t.cpu() instead")
    if t.requires_grad and t.grad_fn is not None:
        raise AutogradError(
            "fw.multiprocessing: refusing to send a non-leaf tensor that requires grad: "
            "autograd does not cross process boundaries. Send t.detach() to transfer the data")
    if t.device is meta:
        return _rebuild_meta, (tuple(t.shape), t.dtype.name, t.requires_grad, kind)
    if _in_dataloader_worker():
        return type(t).__reduce_ex__(t, 2)
    share_tensors([t], "sending a tensor to another process")
    seg = SHARED[t._storage]
    arr = t._data
    offset = arr.__array_interface__["data"][0] - seg.base_addr  # from the mapping's start
    _segments.add_hold(seg)  # the message's hold, dropped by the receiver
    return _rebuild_shared, (seg.name, offset, tuple(arr.shape), tuple(arr.strides),
                             t.dtype.name, bool(arr.flags.writeable), t.requires_grad, kind)


def _rebuild_shared(name, offset, shape, strides, dtype_name, writeable, requires_grad, kind):
    seg, data = _segments.attach(name)
    dt = dtypes.from_name(dtype_name)
    arr = np.ndarray(shape, dt.np, buffer=data, offset=offset, strides=strides)
    if not writeable:
        arr.flags.writeable = False
    return _finish(Tensor._wrap(arr, dt, cpu, tuple(shape), _local_storage(seg)),
                   requires_grad, kind)


def _local_storage(seg) -> Storage:
    """The Storage (version counter) of this process's tensors in ``seg``: the sender's own
    when a tensor comes back to the process that shared it, else one per received segment."""
    storage = _storages.get(seg.name)
    if storage is None or SHARED.get(storage) is not seg:
        storage = next((s for s, g in list(SHARED.items()) if g is seg), None) or Storage()
        _storages[seg.name] = storage
        SHARED[storage] = seg
    return storage


def _rebuild_meta(shape, dtype_name, requires_grad, kind):
    return _finish(meta_tensor(shape, dtypes.from_name(dtype_name)), requires_grad, kind)


def _finish(t: Tensor, requires_grad: bool, kind: str) -> Tensor:
    if kind == "parameter":
        return Parameter(t, requires_grad)
    t.requires_grad = requires_grad
    return t


def _in_dataloader_worker() -> bool:
    worker = sys.modules.get("framework.data._worker")
    return worker is not None and worker.get_worker_info() is not None


def init_reductions() -> None:
    """Register the tensor reducers with ``ForkingPickler`` (done on import)."""
    for cls in (Tensor, Parameter):
        ForkingPickler.register(cls, reduce_tensor)


init_reductions()
