"""OpInfo records: reductions, scans, softmax/log_softmax, sort/topk."""

from __future__ import annotations

import math

import numpy as np

import framework as fw
from tests.opinfo import (ALL, FLOAT_INT, FLOATS, NUMERIC, OpInfo, Sample, float_out, make,
                          noncontig, register_opinfo, rng, special, transposed)

_F32_64 = (fw.float32, fw.float64)


def _axis(dim):
    return tuple(dim) if isinstance(dim, (list, tuple)) else dim


def _red_samples(dt, *, empty=True, low=-2.0, high=2.0, ieee=True, multi=True):
    g = rng(10)

    def m(shape):
        return make(shape, dt, g, low=low, high=high)
    out = [Sample((m((3, 4)),), name="all"),
           Sample((m((3, 4)),), {"dim": 1}),
           Sample((m((2, 3, 4)),), {"dim": -1}),
           Sample((transposed(m((3, 4))),), {"dim": 0}, name="T"),
           Sample((noncontig(m((2, 3))),), {"dim": -1, "keepdim": True}, name="strided"),
           Sample((m(()),), name="0d"),
           Sample((m(()),), {"dim": 0}, name="0d-dim")]
    if multi:
        out.append(Sample((m((2, 3, 4)),), {"dim": (0, 2), "keepdim": True}, name="dims"))
    if empty:
        out += [Sample((m((0, 3)),), {"dim": 0}, name="empty-dim"),
                Sample((m((0, 3)),), name="empty-all")]
    else:
        out.append(Sample((m((0, 3)),), {"dim": 1}, name="empty-kept"))
    if ieee and dt.is_floating_point:
        out.append(Sample((special(dt).reshape(1, 7),), {"dim": 1}, name="ieee", grad=False))
    return out


def _np_red(fn):
    def ref(x, dim=None, keepdim=False):
        if x.ndim == 0:
            dim = None
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, axis=_axis(dim), keepdims=keepdim))
    return ref


def _int64_out(dt):
    return dt if dt.is_floating_point else fw.int64


def _var_samples(dt):
    g = rng(11)
    x = make((3, 4), dt, g)
    return [Sample((x,)), Sample((x,), {"dim": 1}), Sample((x,), {"dim": 0, "correction": 0}),
            Sample((transposed(x),), {"dim": -1, "unbiased": False, "keepdim": True}),
            Sample((make((2, 3, 4), dt, g),), {"dim": (0, 2)}),
            Sample((make((1, 3), dt, g),), {"dim": 0}, name="single", grad=False)]


def _var_ref(fn):
    def ref(x, dim=None, unbiased=None, keepdim=False, correction=None):
        ddof = correction if correction is not None else (0 if unbiased is False else 1)
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, axis=_axis(dim), ddof=ddof, keepdims=keepdim))
    return ref


def _argred_samples(dt):
    g = rng(12)
    x = make((3, 4), dt, g)
    return [Sample((x,)), Sample((x,), {"dim": 1}), Sample((x,), {"dim": -1, "keepdim": True}),
            Sample((transposed(x),), {"dim": 0}), Sample((make((), dt, g),)),
            Sample((make((2, 3, 4), dt, g),), {"dim": 1})]


def _argref(fn):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            r = fn(x.reshape(-1))
            return np.asarray(r).reshape((1,) * x.ndim if keepdim else ())
        return np.asarray(fn(x, axis=dim, keepdims=keepdim))
    return ref


def _maxmin_samples(dt):
    g = rng(13)
    x = make((3, 4), dt, g)
    return [Sample((x,)), Sample((x, 1)), Sample((x, -1, True)), Sample((transposed(x), 0)),
            Sample((x, make((4,), dt, g)), name="other")]


def _maxmin_ref(fn, argfn, pair):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            return np.asarray(fn(x))
        if isinstance(dim, np.ndarray):
            return pair(x, dim)
        return (np.asarray(fn(x, axis=dim, keepdims=keepdim)),
                np.asarray(argfn(x, axis=dim, keepdims=keepdim)))
    return ref


def _maxmin_out(dt):
    return dt


def _scan_samples(dt):
    g = rng(14)
    lo, hi = (0.5, 1.5) if dt.is_floating_point else (-2, 2)
    x = make((3, 4), dt, g, low=lo, high=hi)
    return [Sample((x, 1)), Sample((x, 0)), Sample((transposed(x), -1)),
            Sample((make((), dt, g, low=lo, high=hi), 0)), Sample((make((0, 2), dt, g), 1))]


def _logsumexp_ref(x, dim=None, keepdim=False):
    ax = _axis(dim) if x.ndim else None
    x = x.astype(np.float64)
    with np.errstate(all="ignore"):
        m = np.max(x, axis=ax, keepdims=True, initial=-np.inf)
        m = np.where(np.isinf(m), 0, m)
        out = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
    if not keepdim:
        out = np.squeeze(out, axis=ax if ax is not None else tuple(range(x.ndim)))
    return out


def _norm_samples(dt):
    g = rng(15)
    x = make((3, 4), dt, g)
    return [Sample((x,)), Sample((x, 2, 1)), Sample((x, 1, 0)), Sample((x, math.inf, 1)),
            Sample((x, -math.inf, -1)), Sample((x, 3, 1, True)), Sample((x, 0, 1)),
            Sample((transposed(x), "fro"))]


def _norm_ref(x, p="fro", dim=None, keepdim=False):
    ax = _axis(dim)
    a = np.abs(x)
    if p in ("fro", 2):
        return np.sqrt(np.sum(a * a, axis=ax, keepdims=keepdim))
    if p == math.inf:
        return np.max(a, axis=ax, keepdims=keepdim)
    if p == -math.inf:
        return np.min(a, axis=ax, keepdims=keepdim)
    if p == 0:
        return np.sum(a != 0, axis=ax, keepdims=keepdim).astype(x.dtype)
    return np.sum(a ** p, axis=ax, keepdims=keepdim) ** (1.0 / p)


def _softmax_samples(dt):
    g = rng(16)
    x = make((3, 4), dt, g)
    out = [Sample((x, 1)), Sample((x, 0)), Sample((make((2, 3, 4), dt, g), -1)),
           Sample((transposed(x), 1)), Sample((make((), dt, g), 0)),
           Sample((make((0, 3), dt, g), 1))]
    if dt.is_floating_point:
        big = np.array([[1000.0, 0.0, -1000.0], [-math.inf, 0.0, 1.0]], dt.np)
        out.append(Sample((big, 1), name="extreme", grad=False))
    return out


def _softmax_ref(x, dim):
    with np.errstate(all="ignore"):
        e = np.exp(x - np.max(x, axis=dim, keepdims=True))
        return e / np.sum(e, axis=dim, keepdims=True)


def _log_softmax_ref(x, dim):
    with np.errstate(all="ignore"):
        s = x - np.max(x, axis=dim, keepdims=True)
        return s - np.log(np.sum(np.exp(s), axis=dim, keepdims=True))


def _sort_samples(dt):
    g = rng(17)
    x = make((3, 5), dt, g)
    out = [Sample((x,)), Sample((x, 0)), Sample((transposed(x), -1, True), name="desc"),
           Sample((make((6,), dt, g),), {"descending": True}),
           Sample((make((2, 4, 3), dt, g), 1, True), {"stable": True}, name="3d-stable"),
           Sample((noncontig(make((2, 5), dt, g)),), {"dim": -1}, name="strided"),
           Sample((make((), dt, g),), name="0d"),
           Sample((make((2, 0), dt, g),), {"dim": 1, "descending": True}, name="empty")]
    ties = np.array([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 1]], dtype=dt.np)
    out += [Sample((ties,), name="ties", grad=False),
            Sample((ties, -1, True), name="ties-desc", grad=False)]
    if dt.is_floating_point:
        s = special(dt).reshape(1, 7)
        out += [Sample((s,), name="ieee", grad=False),
                Sample((s,), {"descending": True}, name="ieee-desc", grad=False)]
    return out


def _sort_key(v, descending):
    """PyTorch's order of one element: NaN above +inf, -0.0 == +0.0 (Python floats)."""
    if isinstance(v, float) and math.isnan(v):
        return (0, 0) if descending else (1, 0)
    return (1, -v) if descending else (0, v)


def _argsort_ref(x, dim=-1, descending=False, stable=False):
    """Lane by lane with Python's stable ``sorted`` (independent of the kernels)."""
    if x.ndim == 0:
        return np.zeros((), np.int64)
    moved = np.moveaxis(x, dim, -1)
    lanes = moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1]).tolist()
    idx = [sorted(range(len(r)), key=lambda i, r=r: _sort_key(r[i], descending))
           for r in lanes]
    return np.moveaxis(np.array(idx, np.int64).reshape(moved.shape), -1, dim)


def _sort_ref(x, dim=-1, descending=False, stable=False):
    idx = _argsort_ref(x, dim, descending)
    return (np.take_along_axis(x, idx, axis=dim) if x.ndim else x.copy()), idx


def _topk_samples(dt):
    g = rng(18)
    x = make((3, 5), dt, g)
    out = [Sample((x, 2)), Sample((x, 1, 0)), Sample((x, 3), {"largest": False}),
           Sample((transposed(make((5, 3), dt, g)), 2, -1)),
           Sample((x, 5), name="k=size"), Sample((x, 0), name="k=0"),
           Sample((make((), dt, g), 1), name="0d"),
           Sample((make((2, 6), dt, g), 3), {"sorted": False}, name="unsorted")]
    ties = np.array([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 1]], dtype=dt.np)
    out += [Sample((ties, 3), name="ties", grad=False),
            Sample((ties, 4), {"largest": False}, name="ties-smallest", grad=False)]
    if dt.is_floating_point:
        out.append(Sample((special(dt).reshape(1, 7), 3), name="ieee", grad=False))
    return out


def _topk_ref(x, k, dim=-1, largest=True, sorted=True):
    v, i = _sort_ref(x, dim, descending=largest)
    if not x.ndim:
        return v, i
    sl = [slice(None)] * x.ndim
    sl[dim] = slice(0, k)
    return v[tuple(sl)], i[tuple(sl)]


def _idx_out(dt):
    return fw.int64


def _pair_out(first):
    return lambda dt: (first(dt), fw.int64)


register_opinfo(
    OpInfo("sum", fw.sum, _np_red(np.sum), _red_samples, dtypes=ALL, op="sum",
           out_dtype=_int64_out),
    OpInfo("prod", fw.prod, _np_red(np.prod),
           lambda dt: _red_samples(dt, low=0.5, high=1.5, multi=False) + [
               Sample((np.array([[0.0, 2.0, 3.0], [1.5, 0.0, 0.0]], dt.np),), {"dim": 1},
                      name="zeros")] if dt.is_floating_point else
           _red_samples(dt, multi=False),
           dtypes=ALL, op="prod", out_dtype=_int64_out),
    OpInfo("mean", fw.mean, _np_red(np.mean), _red_samples, dtypes=FLOATS),
    OpInfo("amax", fw.amax, _np_red(np.max), lambda dt: _red_samples(dt, empty=False),
           dtypes=ALL, op="amax"),
    OpInfo("amin", fw.amin, _np_red(np.min), lambda dt: _red_samples(dt, empty=False),
           dtypes=ALL, op="amin"),
    OpInfo("any", fw.any, _np_red(np.any), _red_samples, dtypes=ALL, op="any",
           differentiable=False),
    OpInfo("all", fw.all, _np_red(np.all), _red_samples, dtypes=ALL, op="all",
           differentiable=False),
    OpInfo("var", fw.var, _var_ref(np.var), _var_samples, dtypes=FLOATS),
    OpInfo("std", fw.std, _var_ref(np.std), _var_samples, dtypes=FLOATS),
    OpInfo("var_mean", fw.var_mean,
           lambda x, dim=None, **k: (_var_ref(np.var)(x, dim, **k),
                                     _np_red(np.mean)(x, dim, k.get("keepdim", False))),
           _var_samples, dtypes=_F32_64),
    OpInfo("std_mean", fw.std_mean,
           lambda x, dim=None, **k: (_var_ref(np.std)(x, dim, **k),
                                     _np_red(np.mean)(x, dim, k.get("keepdim", False))),
           _var_samples, dtypes=_F32_64),
    OpInfo("argmax", fw.argmax, _argref(np.argmax), _argred_samples, dtypes=NUMERIC,
           op="argmax", differentiable=False, out_dtype=_idx_out),
    OpInfo("argmin", fw.argmin, _argref(np.argmin), _argred_samples, dtypes=NUMERIC,
           op="argmin", differentiable=False, out_dtype=_idx_out),
    OpInfo("max", fw.max, _maxmin_ref(np.max, np.argmax, np.maximum), _maxmin_samples,
           dtypes=NUMERIC, out_dtype=lambda dt: dt),
    OpInfo("min", fw.min, _maxmin_ref(np.min, np.argmin, np.minimum), _maxmin_samples,
           dtypes=NUMERIC, out_dtype=lambda dt: dt),
    OpInfo("cumsum", fw.cumsum, lambda x, d: np.cumsum(x, axis=d) if x.ndim else x,
           _scan_samples, dtypes=NUMERIC, op="cumsum", out_dtype=_int64_out),
    OpInfo("cumprod", fw.cumprod, lambda x, d: np.cumprod(x, axis=d) if x.ndim else x,
           _scan_samples, dtypes=NUMERIC, op="cumprod", out_dtype=_int64_out),
    OpInfo("logsumexp", fw.logsumexp, _logsumexp_ref, _red_samples, dtypes=FLOAT_INT,
           out_dtype=float_out),
    OpInfo("norm", fw.norm, _norm_ref, _norm_samples, dtypes=FLOATS),
    OpInfo("softmax", fw.softmax, _softmax_ref, _softmax_samples, dtypes=FLOAT_INT,
           op="softmax", out_dtype=float_out),
    OpInfo("log_softmax", fw.log_softmax, _log_softmax_ref, _softmax_samples,
           dtypes=FLOAT_INT, op="log_softmax", out_dtype=float_out),
    OpInfo("sort", fw.sort, _sort_ref, _sort_samples, dtypes=ALL + (fw.uint8,),
           out_dtype=_pair_out(lambda dt: dt)),
    OpInfo("argsort", fw.argsort, _argsort_ref, _sort_samples, dtypes=ALL + (fw.uint8,),
           op="argsort", differentiable=False, out_dtype=_idx_out),
    OpInfo("topk", fw.topk, _topk_ref, _topk_samples, dtypes=NUMERIC + (fw.uint8,),
           out_dtype=_pair_out(lambda dt: dt)),
)
