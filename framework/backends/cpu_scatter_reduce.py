"""NumPy kernel of the ``scatter_reduce`` op (``framework/ops/scatter_reduce_ops.py``),
registered into the CPU backend's table; the CUDA backend runs the same function on a host
copy (``backends/cuda_index.py``).

Each reduction is an unbuffered ``ufunc.at`` over the scattered positions, so repeated
indices accumulate: ``np.add`` (sum, mean), ``np.multiply`` (prod), ``np.maximum`` /
``np.minimum`` (amax/amin: these propagate NaN, unlike ``fmax``/``fmin``, as PyTorch's
kernels do). ``include_self=False`` first writes the reduction's identity at the written
positions; ``mean`` then divides by the count of reduced values (floor division for
integer dtypes, as PyTorch). float16/bfloat16 are reduced in float32 and rounded once.
"""

from __future__ import annotations

import numpy as np

from ..errors import FwIndexError
from .cpu import IMPLS, impl

_UFUNC = {"sum": np.add, "mean": np.add, "prod": np.multiply, "amax": np.maximum,
          "amin": np.minimum}


def identity(reduce: str, dtype: np.dtype):
    """The value a written position starts from when ``include_self=False``."""
    dtype = np.dtype(dtype)
    if reduce in ("sum", "mean"):
        return dtype.type(0)
    if reduce == "prod":
        return dtype.type(1)
    largest = reduce == "amin"
    if dtype.kind == "b":
        return np.bool_(largest)
    if dtype.kind == "f":
        return dtype.type(np.inf if largest else -np.inf)
    info = np.iinfo(dtype)
    return dtype.type(info.max if largest else info.min)


def _work_dtype(dt: np.dtype) -> np.dtype:
    if dt.kind == "V" or (dt.kind == "f" and dt.itemsize < 4) or dt.name == "bfloat16":
        return np.dtype(np.float32)
    return dt


def scatter_reduce_numpy(x, index, src, dim: int, reduce: str, include_self: bool,
                         op: str = "scatter_reduce") -> np.ndarray:
    """``x`` with ``src`` reduced into it at ``index`` along ``dim`` (a new array).

    0-d arrays count as one element along dim 0; indices outside ``[0, x.shape[dim])``
    raise :class:`FwIndexError` naming ``op``."""
    x, index, src = np.asarray(x), np.asarray(index), np.asarray(src)
    shape, dt = x.shape, x.dtype
    x, index, src = (a.reshape(1) if a.ndim == 0 else a for a in (x, index, src))
    size = x.shape[dim]
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = index[(index < 0) | (index >= size)].flat[0]
        raise FwIndexError(f"{op}: index {int(bad)} is out of bounds for dimension {dim} "
                           f"with size {size}")
    work = _work_dtype(dt)
    out = x.astype(work, copy=True)
    if index.size == 0:
        return out.astype(dt, copy=False).reshape(shape)
    pos = list(np.indices(index.shape, sparse=True))
    pos[dim] = index
    pos = tuple(pos)
    vals = src[tuple(slice(0, n) for n in index.shape)].astype(work, copy=False)
    if not include_self:
        out[pos] = identity(reduce, work)
    _UFUNC[reduce].at(out, pos, vals)
    if reduce == "mean":
        count = np.full(out.shape, 1 if include_self else 0, np.int64)
        np.add.at(count, pos, 1)
        np.maximum(count, 1, out=count)
        out = out / count if work.kind == "f" else np.floor_divide(out, count)
    return out.astype(dt, copy=False).reshape(shape)


@impl("scatter_reduce")
def _scatter_reduce(x, index, src, dim, reduce, include_self):
    """The CPU ``scatter_reduce`` kernel."""
    return scatter_reduce_numpy(x, index, src, dim, reduce, include_self)


__all__ = ["IMPLS", "identity", "scatter_reduce_numpy"]
