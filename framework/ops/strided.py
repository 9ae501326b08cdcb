"""``as_strided``: a view of a tensor's memory with explicit sizes, strides (in
elements) and storage offset, as ``torch.as_strided``.

PyTorch measures the strides and the offset in the *storage*. Here the op is recorded
relative to a contiguous source whose flat order is that storage: the input itself when
it is contiguous and holds every position the view reads, else its base (the tensor that
owns the memory). The CPU and CUDA results share memory with the input; compiled code and
ONNX read the same positions with a gather. Positions may repeat (overlapping windows);
their gradients add up, and positions of the storage outside the input get none.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import ArgumentError, FwTypeError
from ..tensor import Tensor
from .registry import MOVEMENT, apply, register

__all__ = ["as_strided"]


def _ints(values, what):
    if isinstance(values, int) and not isinstance(values, bool):
        values = (values,)
    out = tuple(values)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise FwTypeError(f"as_strided(): {what} must be a sequence of ints, got "
                              f"{list(out)}")
    return tuple(int(v) for v in out)


def _extent(size, stride) -> int:
    """Elements of storage the view spans past its offset (0 for an empty view)."""
    if any(n == 0 for n in size):
        return 0
    return 1 + sum((n - 1) * s for n, s in zip(size, stride))


def _positions(size, stride, offset, device) -> Tensor:
    """The flat storage position of every element of the view, in row-major order, built
    from ``arange`` so that it traces (a meta-device decomposition keeps its values)."""
    from ..creation import arange, full
    from .movement import reshape, unsqueeze
    pos = full((), offset, dtype=dtypes.int64, device=device)
    for n, s in zip(size, stride):
        pos = unsqueeze(pos, -1) + arange(n, device=device) * s
    return reshape(pos, -1)


def _meta(x, size, stride, offset):
    return tuple(size), x.dtype


def _vjp(g, args, out, size, stride, offset):
    from ..creation import zeros
    from .indexing import index_add
    from .movement import reshape
    x = args[0]
    idx = _positions(size, stride, offset, g.device)
    flat = index_add(zeros(x.numel(), dtype=g.dtype, device=g.device), 0, idx,
                     reshape(g, -1))
    return (reshape(flat, x.shape),)


def _decomp(x, size, stride, offset):
    """The same positions read by a gather (compiled code, ONNX)."""
    from .indexing import index_select
    from .movement import reshape
    idx = _positions(size, stride, offset, x.device)
    return reshape(index_select(reshape(x, -1), 0, idx), size)


AS_STRIDED = register("as_strided", MOVEMENT, _meta, vjp=_vjp, is_view=True,
                      decomp=_decomp, saves_args=(), complex_ok=True)


def _storage_offset(t: Tensor) -> int:
    """``t.storage_offset()``; 0 for a tensor without data (a traced or meta value, whose
    own positions are its storage)."""
    return 0 if t._data is None else t.storage_offset()


def _holds(t: Tensor, offset: int, extent: int) -> bool:
    """True when contiguous ``t`` holds storage positions [offset, offset + extent)."""
    start = _storage_offset(t)
    return t.is_contiguous() and start <= offset and offset + extent <= start + t.numel()


def as_strided(input, size, stride, storage_offset=None) -> Tensor:
    """A view of ``input``'s storage with shape ``size``, element ``stride`` and
    ``storage_offset`` (default: ``input``'s own offset), as ``torch.as_strided``.
    Elements may overlap; the view must stay inside the storage."""
    if not isinstance(input, Tensor):
        raise FwTypeError(f"as_strided(): input must be a Tensor, got {type(input).__name__}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise ArgumentError(f"as_strided(): mismatch in length of strides and shape: size "
                            f"{list(size)} has {len(size)} dims, stride {list(stride)} has "
                            f"{len(stride)}")
    if any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise ArgumentError(f"as_strided(): negative size or stride: size {list(size)}, "
                            f"stride {list(stride)}")
    offset = _storage_offset(input) if storage_offset is None else int(storage_offset)
    if offset < 0:
        raise ArgumentError(f"as_strided(): storage_offset must be >= 0, got {offset}")
    extent = _extent(size, stride)
    source = input
    if not _holds(input, offset, extent) and input._base is not None:
        source = input._base  # the view reads outside the input: use the owner's memory
    if not source.is_contiguous():
        raise NotImplementedError(
            "as_strided(): the input is not contiguous and its memory is not owned by a "
            "contiguous tensor; call .contiguous() first")
    if source is not input and input.requires_grad and not source.requires_grad:
        raise NotImplementedError(
            "as_strided(): a view reaching outside an input that requires grad on its own "
            "(a leaf made from a view); call .contiguous() first")
    start = _storage_offset(source)
    if extent and (offset < start or offset + extent > start + source.numel()):
        item = input.dtype.itemsize
        raise ArgumentError(f"as_strided(): setStorage: sizes {list(size)}, strides "
                            f"{list(stride)}, storage offset {offset}, and itemsize {item} "
                            f"requiring a storage size of {(offset + extent) * item} are out "
                            f"of bounds for storage of size {(start + source.numel()) * item}")
    return apply(AS_STRIDED, source, size=size, stride=stride, offset=offset - start)


METHODS = "as_strided"
INPLACE_METHODS = ""
