"""OpInfo records: the composites of framework/ops/math_extra.py (hypot, logaddexp(2),
diff, cross, rot90, diagonal/diag/diag_embed/trace, tril/triu_indices, repeat_interleave,
take, index_copy/index_fill and their in-place forms, cdist, logcumsumexp, cummax/cummin).
None of them is a registered op (``op=None``): the records feed the forward, gradcheck,
compiled, ONNX and GPU suites."""

from __future__ import annotations

import numpy as np

import framework as fw
from tests.opinfo import (ALL, FLOAT_INT, FLOATS, NUMERIC, OpInfo, Sample, binary_samples,
                          make, noncontig, register_opinfo, rng, transposed)

_I = np.int64


def _tensor_pairs(dt):
    """binary_samples without Python scalars (these ops take two tensors, as PyTorch)."""
    return binary_samples(dt, scalars=False)


# -- diff ----------------------------------------------------------------------------------
def _diff_samples(dt):
    g = rng(60)
    x = make((3, 6), dt, g)
    return [Sample((x,)), Sample((x,), {"n": 2, "dim": 0}),
            Sample((transposed(make((4, 5), dt, g)),), {"n": 3, "dim": 1}),
            Sample((x,), {"n": 2, "prepend": make((3, 2), dt, g), "append": make((3, 1), dt, g)}),
            Sample((x,), {"n": 9}), Sample((make((0, 4), dt, g),), {"dim": 0}),
            Sample((x,), {"n": 0})]


def _diff_ref(x, n=1, dim=-1, prepend=None, append=None):
    kw = {k: v for k, v in (("prepend", prepend), ("append", append)) if v is not None}
    return np.diff(x, n, dim, **kw)


# -- cross ---------------------------------------------------------------------------------
def _cross_samples(dt):
    g = rng(61)
    return [Sample((make((4, 3), dt, g), make((4, 3), dt, g)), {"dim": 1}),
            Sample((make((2, 1, 3), dt, g), make((1, 5, 3), dt, g)), {"dim": -1}),
            Sample((make((3, 2), dt, g), noncontig(make((3, 2), dt, g)))),
            Sample((make((0, 3), dt, g), make((0, 3), dt, g)), {"dim": 1})]


def _cross_ref(a, b, dim=None):
    if dim is None:
        dim = a.shape.index(3)
    return np.cross(a, b, axis=dim)


# -- rotation and diagonals ----------------------------------------------------------------
def _rot90_samples(dt):
    g = rng(62)
    x = make((2, 3, 4), dt, g)
    return [Sample((x,)), Sample((x,), {"k": 2, "dims": (1, 2)}),
            Sample((x,), {"k": -1, "dims": (2, 0)}),
            Sample((transposed(make((3, 5), dt, g)),), {"k": 3}),
            Sample((make((0, 2), dt, g),), {"k": 1})]


def _diagonal_samples(dt):
    g = rng(63)
    x = make((3, 4, 5), dt, g)
    return [Sample((make((4, 4), dt, g),)), Sample((x,), {"offset": 1, "dim1": 1, "dim2": 2}),
            Sample((x,), {"offset": -2, "dim1": -1, "dim2": 0}),
            Sample((transposed(make((3, 5), dt, g)),), {"offset": 7}),
            Sample((make((0, 3), dt, g),))]


def _diag_samples(dt):
    g = rng(64)
    return [Sample((make((4,), dt, g),)), Sample((make((3,), dt, g), 2)),
            Sample((make((3, 5), dt, g), -1)), Sample((noncontig(make((4, 4), dt, g)), 1)),
            Sample((make((0,), dt, g),))]


def _diag_embed_samples(dt):
    g = rng(65)
    x = make((2, 3), dt, g)
    return [Sample((x,)), Sample((x, 1)), Sample((x, -2, 0, 2)),
            Sample((make((2, 3, 4), dt, g), 0, -1, 1)), Sample((make((0,), dt, g), 1))]


def _diag_embed_ref(x, offset=0, dim1=-2, dim2=-1):
    n = x.shape[-1]
    m = n + abs(offset)
    out = np.zeros(x.shape[:-1] + (m, m), x.dtype)
    for i in range(n):
        r, c = (i, i + offset) if offset >= 0 else (i - offset, i)
        out[..., r, c] = x[..., i]
    nd = x.ndim + 1
    return np.moveaxis(out, (-2, -1), (dim1 % nd, dim2 % nd))


def _trace_samples(dt):
    g = rng(66)
    return [Sample((make((3, 3), dt, g),)), Sample((make((2, 5), dt, g),)),
            Sample((transposed(make((4, 3), dt, g)),)), Sample((make((0, 2), dt, g),))]


def _created(kws):
    return lambda dt: [Sample((), {"dtype": dt, **kw}) for kw in kws]


_TRI = [{"row": 4, "col": 4}, {"row": 3, "col": 5, "offset": 1}, {"row": 5, "col": 2,
                                                                   "offset": -2},
        {"row": 0, "col": 3}]


def _tri_ref(np_fn):
    def ref(dtype, row, col, offset=0):
        return np.stack(np_fn(row, offset, col)).reshape(2, -1)
    return ref


# -- repeat_interleave, take, index_copy, index_fill --------------------------------------
def _repeat_samples(dt):
    g = rng(67)
    x = make((2, 3), dt, g)
    return [Sample((x, 2)), Sample((x, 3), {"dim": 1}), Sample((x, 0), {"dim": 0}),
            Sample((x, np.array([2, 0, 1], _I)), {"dim": -1}),
            Sample((transposed(make((3, 2), dt, g)), np.array([1, 3], _I)), {"dim": 1}),
            Sample((make((0, 2), dt, g), 2), {"dim": 0})]


def _repeat_ref(x, repeats, dim=None):
    return np.repeat(x, repeats, axis=dim)


def _take_samples(dt):
    g = rng(68)
    x = make((3, 4), dt, g)
    return [Sample((x, np.array([[0, -1], [7, 3]], _I))), Sample((x, np.array(5, _I))),
            Sample((transposed(make((4, 2), dt, g)), np.array([1, 6, -8], _I))),
            Sample((x, np.array([], _I)))]


def _index_copy_samples(dt):
    g = rng(69)
    x = make((4, 3), dt, g)
    return [Sample((x, 0, np.array([3, 0], _I), make((2, 3), dt, g))),
            Sample((x, -1, np.array([1], _I), make((4, 1), dt, g))),
            Sample((transposed(make((3, 4), dt, g)), 1, np.array([2, 0, 3], _I),
                    make((3, 3), dt, g))),
            Sample((x, 0, np.array([], _I), make((0, 3), dt, g)))]


def _index_copy_ref(x, dim, index, source):
    y = x.copy()
    sl = [slice(None)] * x.ndim
    sl[dim] = index
    y[tuple(sl)] = source
    return y


def _index_fill_samples(dt):
    g = rng(70)
    x = make((4, 3), dt, g)
    v = True if dt is fw.bool else 2
    return [Sample((x, 0, np.array([3, -4], _I), v)),
            Sample((x, 1, np.array(1, _I), make((), dt, g))),
            Sample((transposed(make((3, 4), dt, g)), -1, np.array([0, 2], _I), v)),
            Sample((x, 0, np.array([], _I), v))]


def _index_fill_ref(x, dim, index, value):
    y = x.copy()
    sl = [slice(None)] * x.ndim
    sl[dim] = np.asarray(index).reshape(-1)
    y[tuple(sl)] = value
    return y


def _inplace(fn):
    def call(x, *args, **kwargs):
        return getattr(x, fn + "_")(*args, **kwargs)
    return call


# -- cdist and the scans -------------------------------------------------------------------
def _cdist_samples(dt):
    g = rng(71)
    a, b = make((2, 4, 3), dt, g), make((5, 3), dt, g)
    return [Sample((a, b)), Sample((a, b, 1.0)), Sample((a, b, 0.0), grad=False),
            Sample((a, b, 3.0)), Sample((a, b, float("inf"))),
            Sample((make((30, 2), dt, g), make((3, 2), dt, g))),
            Sample((make((0, 3), dt, g), b))]


def _cdist_ref(a, b, p=2.0):
    d = np.abs(a[..., :, None, :] - b[..., None, :, :])
    if p == 0:
        return (d != 0).sum(-1).astype(a.dtype)
    if p == np.inf:
        return d.max(-1)
    return (d ** p).sum(-1) ** (1.0 / p)


def _scan_samples(dt):
    g = rng(72)
    out = [Sample((make((7,), dt, g), 0)), Sample((make((3, 6), dt, g), 1)),
           Sample((transposed(make((5, 3), dt, g)), 0)), Sample((make((2, 0), dt, g), 1)),
           Sample((make((), dt, g), 0))]
    if dt.is_floating_point:
        s = np.array([1.0, np.nan, 5.0, -np.inf, np.inf, np.nan, 0.0], dt.np)
        out.append(Sample((s, 0), name="ieee", grad=False))
    else:
        out.append(Sample((np.array([1, 1, 0, 2, 2, 1], dt.np), 0), name="ties"))
    return out


def _cum_ref(is_max):
    def ref(x, dim):
        if x.ndim == 0:
            return x.copy(), np.zeros((), _I)
        a = np.moveaxis(x, dim, -1)
        vals, idx = np.empty_like(a), np.zeros(a.shape, _I)
        for pos in np.ndindex(a.shape[:-1]):
            best, bi = None, 0
            for j, v in enumerate(a[pos]):
                nan = a.dtype.kind == "f" and np.isnan(v)
                bnan = best is not None and a.dtype.kind == "f" and np.isnan(best)
                better = best is None or (v >= best if is_max else v <= best)
                if nan or (not bnan and better):
                    best, bi = v, j
                vals[pos + (j,)], idx[pos + (j,)] = best, bi
        return np.moveaxis(vals, -1, dim), np.moveaxis(idx, -1, dim)
    return ref


def _logcumsumexp_ref(x, dim):
    return x.copy() if x.ndim == 0 else np.logaddexp.accumulate(x, axis=dim)


_LOW = {fw.float16: (2e-2, 1e-2), fw.bfloat16: (1e-1, 3e-2)}

register_opinfo(
    OpInfo("hypot", fw.hypot, np.hypot, _tensor_pairs, dtypes=FLOATS),
    OpInfo("hypot_", _inplace("hypot"), np.hypot,
           lambda dt: [s for s in _tensor_pairs(dt) if s.name in ("same", "bcast-rank", "ieee")],
           dtypes=FLOATS, inplace=True),
    OpInfo("logaddexp", fw.logaddexp, np.logaddexp, _tensor_pairs, dtypes=FLOATS),
    OpInfo("logaddexp2", fw.logaddexp2, np.logaddexp2, _tensor_pairs, dtypes=FLOATS),
    OpInfo("diff", fw.diff, _diff_ref, _diff_samples, dtypes=FLOAT_INT + (fw.bool,)),
    OpInfo("cross", fw.cross, _cross_ref, _cross_samples, dtypes=FLOAT_INT),
    OpInfo("rot90", fw.rot90, lambda x, k=1, dims=(0, 1): np.rot90(x, k, dims), _rot90_samples,
           dtypes=ALL),
    OpInfo("diagonal", fw.diagonal, lambda x, offset=0, dim1=0, dim2=1: np.diagonal(
        x, offset, dim1, dim2), _diagonal_samples, dtypes=ALL),
    OpInfo("diag", fw.diag, np.diag, _diag_samples, dtypes=ALL),
    OpInfo("diag_embed", fw.diag_embed, _diag_embed_ref, _diag_embed_samples, dtypes=ALL),
    OpInfo("trace", fw.trace, np.trace, _trace_samples, dtypes=NUMERIC,
           out_dtype=lambda dt: dt if dt.is_floating_point else fw.int64),
    OpInfo("tril_indices", lambda dtype, device=None, **kw: fw.tril_indices(
        dtype=dtype, device=device, **kw), _tri_ref(np.tril_indices), _created(_TRI),
           dtypes=(fw.int64, fw.int32), differentiable=False),
    OpInfo("triu_indices", lambda dtype, device=None, **kw: fw.triu_indices(
        dtype=dtype, device=device, **kw), _tri_ref(np.triu_indices), _created(_TRI),
           dtypes=(fw.int64, fw.int32), differentiable=False),
    OpInfo("repeat_interleave", fw.repeat_interleave, _repeat_ref, _repeat_samples,
           dtypes=ALL),
    OpInfo("take", fw.take, np.take, _take_samples, dtypes=ALL),
    OpInfo("index_copy", fw.index_copy, _index_copy_ref, _index_copy_samples, dtypes=ALL),
    OpInfo("index_copy_", _inplace("index_copy"), _index_copy_ref, _index_copy_samples,
           dtypes=NUMERIC, inplace=True),
    OpInfo("index_fill", fw.index_fill, _index_fill_ref, _index_fill_samples, dtypes=ALL),
    OpInfo("index_fill_", _inplace("index_fill"), _index_fill_ref, _index_fill_samples,
           dtypes=NUMERIC, inplace=True),
    OpInfo("cdist", fw.cdist, _cdist_ref, _cdist_samples, dtypes=(fw.float32, fw.float64)),
    OpInfo("logcumsumexp", fw.logcumsumexp, _logcumsumexp_ref, _scan_samples, dtypes=FLOATS,
           tols=_LOW),
    OpInfo("cummax", fw.cummax, _cum_ref(True), _scan_samples, dtypes=ALL,
           out_dtype=lambda dt: dt),
    OpInfo("cummin", fw.cummin, _cum_ref(False), _scan_samples, dtypes=ALL,
           out_dtype=lambda dt: dt),
)
