"""Sorting: the ``argsort`` primitive and ``sort``/``argsort``/``topk`` built on it.

``argsort`` (attrs ``dim``, ``descending``, ``stable``) is the one registered op: int64
indices of the input's shape, not differentiable. Order is PyTorch's: NaN sorts as larger
than +inf (last ascending, first descending), -0.0 equals +0.0, and equal elements keep
their original order in both directions (every backend sorts stably, so ``stable=False``
gives the same order). ``sort`` gathers the values with those indices, so the values are
differentiable through ``gather``; ``topk`` takes the first ``k`` indices of the sort.
Because the output shape does not depend on the data, all three are captured by
``fw.compile`` (no graph break) and exported to ONNX (``TopK``).
"""

from __future__ import annotations

from .. import dtypes
from ..errors import ArgumentError, FwIndexError, FwTypeError
from ..tensor import Tensor
from .indexing import gather
from .reduce import _ValuesIndices
from .registry import SCAN, apply, register
from .shapes import normalize_dim


def _argsort_meta(x, *, dim, descending, stable):
    n = max(len(x.shape), 1)
    if not isinstance(dim, int) or not 0 <= dim < n:
        raise ArgumentError(f"argsort: dim must be in [0, {n - 1}] after normalization, "
                            f"got {dim!r}")
    return x.shape, dtypes.int64


#: The sort order along ``dim`` (int64 indices; the backends in cpu_sort.py/cuda_ops.py).
ARGSORT = register("argsort", SCAN, _argsort_meta)


def _flag(value, name, op):
    if value is None:
        return False
    if not isinstance(value, (bool, int)):
        raise FwTypeError(f"{op}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _order(input, dim, descending, stable, op):
    if not isinstance(input, Tensor):
        raise FwTypeError(f"{op}: expected a Tensor as input, got {type(input).__name__}")
    d = normalize_dim(dim, input.ndim, op)
    idx = apply(ARGSORT, input, dim=d, descending=_flag(descending, "descending", op),
                stable=_flag(stable, "stable", op))
    return d, idx


def _take(input, d, idx):
    """``gather(input, d, idx)``; a 0-d input goes through shape [1] (its one element)."""
    if input.ndim:
        return gather(input, d, idx)
    return gather(input.reshape(1), 0, idx.reshape(1)).reshape(())


def sort(input, dim=-1, descending=False, stable=False):
    """``(values, indices)`` of ``input`` sorted along ``dim`` (PyTorch's ``torch.sort``).

    NaN counts as larger than +inf; equal elements keep their original order (the sort is
    always stable). ``values`` is ``gather(input, dim, indices)``, differentiable."""
    d, idx = _order(input, dim, descending, stable, "sort")
    return _ValuesIndices.named("sort")((_take(input, d, idx), idx))


def argsort(input, dim=-1, descending=False, stable=False):
    """Indices (int64) that sort ``input`` along ``dim``; same order as :func:`sort`."""
    return _order(input, dim, descending, stable, "argsort")[1]


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim`` and their
    indices, as ``(values, indices)``; NaN counts as the largest value. The result is
    always sorted (``sorted=False`` allows any order in PyTorch; sorted is one of them).
    Ties keep the lower index first."""
    if isinstance(k, bool) or not isinstance(k, int):
        if isinstance(k, Tensor) and k.ndim == 0 and not k.dtype.is_floating_point:
            k = int(k.item())
        else:
            raise FwTypeError(f"topk: k must be an int, got {type(k).__name__}")
    d, idx = _order(input, dim, largest, False, "topk")
    size = input.shape[d] if input.ndim else 1
    if k < 0 or (isinstance(size, int) and k > size):
        raise FwIndexError(f"topk: k={k} is out of range for dimension {d} of size {size} "
                           f"(input shape {list(input.shape)}); expected 0 <= k <= {size}")
    if input.ndim:
        idx = idx.narrow(d, 0, k)
    return _ValuesIndices.named("topk")((_take(input, d, idx), idx))


__all__ = ["ARGSORT", "argsort", "sort", "topk"]
