"""OpInfo records: ``scatter_reduce`` and ``index_reduce`` (out of place and in place),
with a NumPy reference written as a plain loop over the index (independent of the
``ufunc.at`` kernels)."""

from __future__ import annotations

import math

import numpy as np

import framework as fw
from tests.opinfo import NUMERIC, OpInfo, Sample, make, register_opinfo, rng, transposed

_I = np.int64
_COMBOS = [("sum", True), ("prod", False), ("mean", True), ("amax", False), ("amin", True),
           ("sum", False), ("prod", True), ("mean", False), ("amax", True), ("amin", False)]


def reduce_values(vals, reduce, integer):
    """One reduction of a list of values, PyTorch's way (NaN propagates through amax/amin,
    integer mean floors)."""
    if reduce == "sum":
        return sum(vals)
    if reduce == "prod":
        return math.prod(vals)
    if reduce == "mean":
        return sum(vals) // len(vals) if integer else sum(vals) / len(vals)
    if not integer and any(v != v for v in vals):
        return math.nan
    return max(vals) if reduce == "amax" else min(vals)


def scatter_reduce_ref(x, dim, index, src, reduce, include_self=True):
    """``scatter_reduce`` by a loop: collect every value aimed at each position, reduce."""
    shape = x.shape
    x, index, src = (np.asarray(a).reshape(1) if np.ndim(a) == 0 else np.asarray(a)
                     for a in (x, index, src))
    dim %= x.ndim
    out = x.copy()
    integer = x.dtype.kind in "iub"
    groups: dict = {}
    for p in np.ndindex(*index.shape):
        q = list(p)
        q[dim] = int(index[p])
        groups.setdefault(tuple(q), []).append(src[p].item())
    for q, vals in groups.items():
        vals = ([x[q].item()] if include_self else []) + vals
        out[q] = reduce_values(vals, reduce, integer)
    return out.reshape(shape)


def index_reduce_ref(x, dim, index, source, reduce, include_self=True):
    """``index_reduce`` by a loop over the index entries (slices along ``dim``)."""
    shape = x.shape
    x = x.reshape(1) if x.ndim == 0 else x
    source = source.reshape(1) if source.ndim == 0 else source
    dim %= x.ndim
    index = np.asarray(index).reshape(-1)
    integer = x.dtype.kind in "iub"
    out = x.copy()
    lanes = np.moveaxis(out, dim, 0)  # a view: writes land in out
    src_lanes = np.moveaxis(source, dim, 0)
    for pos in np.ndindex(*lanes.shape[1:]):
        groups: dict = {}
        for i, k in enumerate(index):
            groups.setdefault(int(k), []).append(src_lanes[(i,) + pos].item())
        for k, vals in groups.items():
            vals = ([lanes[(k,) + pos].item()] if include_self else []) + vals
            lanes[(k,) + pos] = reduce_values(vals, reduce, integer)
    return out.reshape(shape)


def _idx(g, high, shape):
    return g.integers(0, high, size=shape).astype(_I)


def _nan(a, *positions):
    a = a.copy()
    for p in positions:
        a[p] = math.nan
    return a


def scatter_reduce_samples(dt):
    """Every reduce x include_self with repeated indices, negative dims, a src larger than
    the index, transposed/0-d/empty inputs, zeros for prod and NaN for amax/amin."""
    g = rng(60)
    x = make((3, 4), dt, g)
    out = []
    for k, (red, inc) in enumerate(_COMBOS):
        dim = (0, 1, -1, -2)[k % 4]
        if dim in (0, -2):
            idx, src = _idx(g, 3, (5, 4)), make((5, 4), dt, g)
        else:
            idx, src = _idx(g, 4, (3, 6)), make((3, 6), dt, g)
        out.append(Sample((x, dim, idx, src, red), {"include_self": inc},
                          name=f"{red}-{'self' if inc else 'noself'}-d{dim}"))
    out += [
        Sample((x, 0, _idx(g, 3, (2, 3)), make((4, 5), dt, g), "amax"), name="big-src"),
        Sample((transposed(make((4, 3), dt, g)), 1, _idx(g, 3, (4, 5)), make((4, 5), dt, g),
                "mean"), {"include_self": False}, name="T"),
        Sample((make((), dt, g), 0, np.zeros(3, _I), make((3,), dt, g), "sum"), name="0d"),
        Sample((make((), dt, g), 0, np.zeros((), _I), make((), dt, g), "amin"),
               {"include_self": False}, name="0d-all"),
        Sample((x, 1, np.zeros((3, 0), _I), make((3, 0), dt, g), "prod"), name="empty"),
        Sample((make((2, 3, 4), dt, g), 1, _idx(g, 3, (2, 5, 4)), make((2, 5, 4), dt, g),
                "amin"), name="3d"),
    ]
    zx = np.array([[0, 2, 3], [1, 0, 2]], dt.np)
    zs = np.array([[0, 0, 3], [2, 0, 0], [1, 2, 0]], dt.np)
    zi = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1]], _I)
    for inc in (True, False):
        out.append(Sample((zx, 0, zi, zs, "prod"), {"include_self": inc},
                          name=f"prod-zeros-{inc}"))
    if dt.is_floating_point:
        for red, inc in (("amax", True), ("amin", False), ("amax", False)):
            out.append(Sample((_nan(x, (0, 1)), 0, np.array([[0, 1, 2, 0], [1, 1, 0, 0]], _I),
                               _nan(make((2, 4), dt, g), (0, 2), (1, 0)), red),
                              {"include_self": inc}, name=f"nan-{red}-{inc}", grad=False))
    return out


def index_reduce_samples(dt):
    """Every reduce x include_self with repeated indices, negative dims, transposed, 0-d
    and empty indices, and NaN for amax/amin."""
    g = rng(61)
    x = make((3, 4), dt, g)
    out = []
    for k, (red, inc) in enumerate(c for c in _COMBOS if c[0] != "sum"):
        if k % 2:
            idx = np.array([3, 0, 3, 1, 3], _I)
            out.append(Sample((x, -1, idx, make((3, 5), dt, g), red), {"include_self": inc},
                              name=f"{red}-{inc}-d-1"))
        else:
            idx = np.array([2, 0, 2, 2], _I)
            out.append(Sample((x, 0, idx, make((4, 4), dt, g), red), {"include_self": inc},
                              name=f"{red}-{inc}-d0"))
    out += [
        Sample((transposed(make((4, 3), dt, g)), 1, np.array([1, 1], _I), make((4, 2), dt, g),
                "mean"), name="T"),
        Sample((x, 0, np.array(1, _I), make((1, 4), dt, g), "amax"), name="0d-index"),
        Sample((x, 1, np.array([], _I), make((3, 0), dt, g), "prod"), name="empty"),
        Sample((make((), dt, g), 0, np.array([0, 0], _I), make((2,), dt, g), "prod"),
               {"include_self": False}, name="0d"),
    ]
    if dt.is_floating_point:
        out.append(Sample((_nan(x, (1, 2)), 0, np.array([1, 0, 1], _I),
                           _nan(make((3, 4), dt, g), (2, 0)), "amin"), name="nan", grad=False))
    return out


def _inplace(name):
    def fn(x, *args, **kwargs):
        return getattr(x, name + "_")(*args, **kwargs)
    return fn


register_opinfo(
    OpInfo("scatter_reduce", fw.scatter_reduce, scatter_reduce_ref, scatter_reduce_samples,
           dtypes=NUMERIC, op="scatter_reduce"),
    OpInfo("scatter_reduce_", _inplace("scatter_reduce"), scatter_reduce_ref,
           scatter_reduce_samples, dtypes=NUMERIC, inplace=True),
    OpInfo("index_reduce", fw.index_reduce, index_reduce_ref, index_reduce_samples,
           dtypes=NUMERIC, op="scatter_reduce"),
    OpInfo("index_reduce_", _inplace("index_reduce"), index_reduce_ref, index_reduce_samples,
           dtypes=NUMERIC, inplace=True),
)
