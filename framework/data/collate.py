"""Turning a list of samples into a batch (``default_collate``) and converting single
samples (``default_convert``), with PyTorch's rules."""

from __future__ import annotations

import collections.abc as abc

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor


def _is_namedtuple(obj) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _numeric_array(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "biufc" or arr.dtype.name == "bfloat16"


def default_convert(data):
    """NumPy arrays and scalars become tensors, recursively through mappings and
    sequences; everything else is returned unchanged (used when batching is disabled)."""
    from ..creation import tensor
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return tensor(data) if _numeric_array(data) else data
    if isinstance(data, np.generic) and _numeric_array(np.asarray(data)):
        return tensor(data)
    if isinstance(data, abc.Mapping):
        converted = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, abc.Sequence) and not isinstance(data, (str, bytes)):
        converted = [default_convert(d) for d in data]
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    return data


def default_collate(batch):
    """Stack a list of samples into a batch.

    Tensors are stacked along a new first dimension; NumPy arrays and NumPy scalars become
    stacked tensors; Python floats a float64 tensor, ints an int64 tensor, bools a bool
    tensor; strings and bytes stay a list; mappings are collated per key, named tuples per
    field, and other sequences position-wise (tuples become lists, as in PyTorch).
    """
    from ..creation import tensor
    from ..ops import stack
    if not isinstance(batch, abc.Sequence) or len(batch) == 0:
        raise TypeError("default_collate: expected a non-empty list of samples, got "
                        f"{type(batch).__name__}")
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {tuple(b.shape) for b in batch}
        if len(shapes) != 1:
            raise ShapeError("default_collate: stack expects each tensor to be equal size, "
                             f"but got shapes {sorted(shapes)} in one batch")
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if not _numeric_array(elem):
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, "
                            f"numbers, dicts or lists; found numpy array of dtype {elem.dtype}")
        return default_collate([tensor(b) for b in batch])
    if isinstance(elem, np.generic):
        return tensor(np.array(batch))
    if isinstance(elem, bool):
        return tensor(list(batch))
    if isinstance(elem, float):
        from ..dtypes import float64
        return tensor(list(batch), dtype=float64)
    if isinstance(elem, int):
        from ..dtypes import int64
        return tensor(list(batch), dtype=int64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, abc.Mapping):
        collated = {k: default_collate([d[k] for d in batch]) for k in elem}
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise ShapeError("default_collate: each element in list of batch should be of "
                             f"equal size, got sizes {sorted({len(e) for e in batch})}")
        columns = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return columns
        try:
            return type(elem)(columns)
        except TypeError:
            return columns
    raise TypeError("default_collate: batch must contain tensors, numpy arrays, numbers, "
                    f"dicts or lists; found {type(elem).__name__}")
