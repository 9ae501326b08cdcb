"""Storage views and storage-level tensor methods: ``Tensor.untyped_storage()``,
``Tensor.storage()`` (PyTorch's deprecated ``TypedStorage``), ``is_set_to``,
``new_empty_strided`` and ``map_``.

A tensor and its views share one buffer: the base tensor's array. A storage object here is a
read-only window on that buffer (its address, size and device), enough for the usual checks
(``a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()`` asks whether two tensors
share memory); storages cannot be resized or written through.
"""

from __future__ import annotations

import numpy as np

from .device import cpu, meta
from .errors import DeviceError, ShapeError
from .ops.inplace import commit
from .tensor import Tensor


def _root(t: Tensor) -> Tensor:
    return t._base if t._base is not None else t


class UntypedStorage:
    """The bytes a tensor's views share (``torch.UntypedStorage``, read-only here)."""

    def __init__(self, tensor: Tensor):
        self._root = _root(tensor)

    @property
    def device(self):
        return self._root.device

    def data_ptr(self) -> int:
        """Address of the buffer's first byte."""
        return self._root.data_ptr()

    def nbytes(self) -> int:
        """Size of the buffer in bytes."""
        return self._root.numel() * self._root.dtype.itemsize

    def size(self) -> int:
        """Size in bytes (the elements of an untyped storage are bytes)."""
        return self.nbytes()

    __len__ = size

    def element_size(self) -> int:
        return 1

    def __eq__(self, other) -> bool:
        return isinstance(other, UntypedStorage) and other._root is self._root

    def __hash__(self) -> int:
        return id(self._root)

    def __repr__(self) -> str:
        return f"UntypedStorage(device={self.device}, nbytes={self.nbytes()})"


class TypedStorage(UntypedStorage):
    """The buffer seen as elements of the tensor's dtype (``Tensor.storage()``)."""

    @property
    def dtype(self):
        return self._root.dtype

    def size(self) -> int:
        """Number of elements."""
        return self._root.numel()

    __len__ = size

    def element_size(self) -> int:
        return self._root.dtype.itemsize

    def untyped(self) -> UntypedStorage:
        return UntypedStorage(self._root)

    def tolist(self) -> list:
        """The buffer's elements in memory order."""
        return self._root.detach().reshape(-1).tolist()

    def __repr__(self) -> str:
        return f"TypedStorage(dtype={self.dtype}, device={self.device}, size={self.size()})"


def _untyped_storage(self) -> UntypedStorage:
    """The buffer this tensor views (shared by all its views)."""
    return UntypedStorage(self)


def _storage(self) -> TypedStorage:
    """The buffer this tensor views, typed by its dtype (PyTorch's deprecated
    ``TypedStorage``; prefer ``untyped_storage()``)."""
    return TypedStorage(self)


def _is_set_to(self, tensor: Tensor) -> bool:
    """True when both tensors view the same buffer with the same offset, shape and strides."""
    if _root(self) is not _root(tensor) or self.device is meta:
        return False
    return (self.storage_offset() == tensor.storage_offset() and
            tuple(self.shape) == tuple(tensor.shape) and self.stride() == tensor.stride())


def _new_empty_strided(self, size, stride, *, dtype=None, device=None, requires_grad=False):
    """An uninitialised (zero-filled) tensor with these sizes and strides, on this tensor's
    dtype and device unless given."""
    from .ops.torch_gaps import empty_strided
    return empty_strided(size, stride, dtype=self.dtype if dtype is None else dtype,
                         device=self.device if device is None else device,
                         requires_grad=requires_grad)


def _map_(self, tensor: Tensor, callable):
    """Replace each element ``a`` by ``callable(a, b)``, ``b`` the element of ``tensor``
    (broadcast to this shape) at the same position; in place, CPU only, a Python call per
    element (a graph break under ``fw.compile``)."""
    if self.device is not cpu or tensor.device is not cpu:
        raise DeviceError("map_(): is only implemented on CPU tensors")
    arr = self._host_array("Tensor.map_()")
    other = tensor._host_array("Tensor.map_()")
    try:
        other = np.broadcast_to(other, arr.shape)
    except ValueError:
        raise ShapeError(f"map_(): tensor of shape {tuple(tensor.shape)} cannot be broadcast "
                         f"to {tuple(self.shape)}") from None
    vals = [callable(a, b) for a, b in zip(arr.reshape(-1).tolist(), other.reshape(-1).tolist())]
    from .creation import tensor as make
    new = np.array(vals, dtype=self.dtype.np).reshape(arr.shape)
    return commit(self, make(new, dtype=self.dtype), "map_")


Tensor.untyped_storage = _untyped_storage
Tensor.storage = _storage
Tensor.is_set_to = _is_set_to
Tensor.new_empty_strided = _new_empty_strided
Tensor.map_ = _map_
