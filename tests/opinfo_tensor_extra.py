"""OpInfo records: the Tensor methods and ``torch.*`` functions of
framework/ops/tensor_extra.py (ravel, moveaxis, narrow_copy, unfold, sum_to_size,
masked_scatter, slice/select/diagonal_scatter, put, the shifts, angle, mvlgamma).

None of them is a registered op (``op=None``). The random in-place fills and the non-op
methods of framework/tensor_info.py are covered by tests/test_tensor_extra_methods.py."""

from __future__ import annotations

import math
import operator

import numpy as np

import framework as fw
from tests.opinfo import (ALL, FLOAT_INT, FLOATS, NUMERIC, OpInfo, Sample, float_out, make,
                          noncontig, register_opinfo, rng, transposed, unary_samples)

_I = np.int64
_SHIFT_INTS = (fw.int64, fw.int32, fw.uint8, fw.int8, fw.int16)


def _method(name):
    def call(x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)
    return call


# -- shapes -------------------------------------------------------------------------------
def _moveaxis_samples(dt):
    g = rng(80)
    x = make((2, 3, 4), dt, g)
    return [Sample((x, 0, -1)), Sample((x, (0, 1), (2, 0))), Sample((transposed(
        make((3, 4), dt, g)), 1, 0)), Sample((make((0, 2), dt, g), 0, 1))]


def _narrow_samples(dt):
    g = rng(81)
    return [Sample((make((4, 5), dt, g), 1, 1, 3)), Sample((make((4, 5), dt, g), 0, -2, 2)),
            Sample((noncontig(make((3, 4), dt, g)), -1, 0, 0))]


def _narrow_ref(x, dim, start, length):
    start = start % x.shape[dim] if start < 0 else start
    return np.take(x, np.arange(start, start + length), axis=dim)


def _unfold_samples(dt):
    g = rng(82)
    return [Sample((make((7,), dt, g), 0, 2, 2)), Sample((make((7,), dt, g), 0, 3, 1)),
            Sample((make((3, 6), dt, g), 1, 4, 3)), Sample((make((5, 2, 3), dt, g), 0, 2, 2)),
            Sample((transposed(make((4, 5), dt, g)), -1, 4, 1)),
            Sample((make((4, 3), dt, g), 0, 4, 5)), Sample((make((0, 3), dt, g), 1, 2, 1)),
            Sample((make((3,), dt, g), 0, 0, 1))]


def _unfold_ref(x, dim, size, step):
    w = np.lib.stride_tricks.sliding_window_view(x, size, axis=dim)
    return np.take(w, np.arange(0, w.shape[dim], step), axis=dim)


def _sum_to_size_samples(dt):
    g = rng(83)
    x = make((2, 3, 4), dt, g)
    return [Sample((x, 3, 1)), Sample((x, (1, 3, 1))), Sample((x, 4)), Sample((x, 2, 3, 4)),
            Sample((transposed(make((4, 3), dt, g)), 1, 3))]


def _sum_to_size_ref(x, *size):
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], tuple) else size
    lead = x.ndim - len(size)
    out = x.sum(axis=tuple(range(lead))) if lead else x
    dims = tuple(i for i, s in enumerate(size) if s == 1 and out.shape[i] != 1)
    return out.sum(axis=dims, keepdims=True) if dims else out


# -- scatters -----------------------------------------------------------------------------
def _masked_scatter_samples(dt, inplace=False):
    g = rng(84)
    x = make((3, 4), dt, g)
    out = [Sample((x, g.random((3, 4)) < 0.5, make((12,), dt, g))),
           Sample((x, g.random((4,)) < 0.5, make((5, 4), dt, g)), name="bcast-mask"),
           Sample((transposed(make((3, 4), dt, g)), np.ones((3, 4), bool),
                   make((3, 4), dt, g)), name="all"),
           Sample((x, np.zeros((3, 4), bool), make((0,), dt, g)), name="none")]
    if not inplace:
        out.append(Sample((make((4,), dt, g), g.random((3, 1)) < 0.5, make((12,), dt, g)),
                          name="bcast-input"))
    return out


def _masked_scatter_ref(x, mask, src):
    shape = np.broadcast_shapes(x.shape, mask.shape)
    out = np.broadcast_to(x, shape).copy()
    m = np.broadcast_to(mask, shape)
    out[m] = src.reshape(-1)[:int(m.sum())]
    return out


def _slice_scatter_samples(dt):
    g = rng(85)
    x = make((5, 4), dt, g)
    return [Sample((x, make((2, 4), dt, g)), {"start": 1, "end": 3}),
            Sample((x, make((5, 2), dt, g), 1, 0, None, 2)),
            Sample((x, make((5, 1), dt, g)), {"dim": -1, "start": -1}),
            Sample((transposed(make((4, 5), dt, g)), make((4, 5), dt, g))),
            Sample((x, make((0, 4), dt, g)), {"start": 7})]


def _slice_scatter_ref(x, src, dim=0, start=None, end=None, step=1):
    out = x.copy()
    key = [slice(None)] * x.ndim
    key[dim] = slice(start, end, step)
    out[tuple(key)] = src
    return out


def _select_scatter_samples(dt):
    g = rng(86)
    x = make((3, 4), dt, g)
    return [Sample((x, make((4,), dt, g), 0, 1)), Sample((x, make((3,), dt, g), 1, -1)),
            Sample((make((2, 3, 2), dt, g), make((2, 2), dt, g), 1, 2)),
            Sample((make((4,), dt, g), make((), dt, g), 0, 3))]


def _select_scatter_ref(x, src, dim, index):
    out = x.copy()
    key = [slice(None)] * x.ndim
    key[dim] = index
    out[tuple(key)] = src
    return out


def _diagonal_scatter_samples(dt):
    g = rng(87)
    return [Sample((make((3, 3), dt, g), make((3,), dt, g))),
            Sample((make((3, 5), dt, g), make((3,), dt, g), 2)),
            Sample((make((4, 3), dt, g), make((2,), dt, g), -2)),
            Sample((make((2, 3, 4), dt, g), make((4, 2), dt, g), 0, 0, 1)),
            Sample((make((2, 3, 4), dt, g), make((2, 2), dt, g), 1, 2, 1)),
            Sample((make((2, 2), dt, g), make((0,), dt, g), 3))]


def _diagonal_scatter_ref(x, src, offset=0, dim1=0, dim2=1):
    out = x.copy()
    v = np.moveaxis(out, (dim1, dim2), (-2, -1))  # a view: writes land in out
    n = np.diagonal(v, offset, -2, -1).shape[-1]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    v[..., np.arange(r0, r0 + n), np.arange(c0, c0 + n)] = src
    return out


def _put_samples(dt, inplace=False):
    g = rng(88)
    x = make((3, 4), dt, g)
    out = [Sample((x, np.array([0, 5, -1], _I), make((3,), dt, g))),
           Sample((x, np.array([[2, 7], [11, -12]], _I), make((4,), dt, g))),
           Sample((x, np.array([1, 1, 3], _I), make((3,), dt, g), True), name="accumulate"),
           Sample((transposed(make((4, 3), dt, g)), np.array([4], _I), make((1,), dt, g))),
           Sample((x, np.zeros((0,), _I), make((0,), dt, g)), name="empty")]
    return out


def _put_ref(x, index, source, accumulate=False):
    out = x.copy().reshape(-1)
    idx = np.where(index < 0, index + out.size, index).reshape(-1)
    if accumulate:
        np.add.at(out, idx, source.reshape(-1))
    else:
        out[idx] = source.reshape(-1)
    return out.reshape(x.shape)


# -- shifts ---------------------------------------------------------------------------------
def _shift_samples(dt):
    g = rng(89)
    bits = dt.itemsize * 8
    lo = 0 if dt is fw.uint8 else -50
    a = g.integers(lo, 100, size=(3, 4)).astype(dt.np)
    s = g.integers(0, bits, size=(3, 4)).astype(dt.np)
    edge = np.array([0, 1, bits - 2, bits - 1, bits, bits + 3], dt.np)
    out = [Sample((a, s), name="same"), Sample((a, 3), name="scalar"),
           Sample((a, s[:1]), name="bcast"), Sample((a[0], edge[:4]), name="edge-in"),
           Sample((a[:, :1].copy(), edge[None]), name="edge-out"),
           Sample((transposed(a), noncontig(s)), name="noncontig"),
           Sample((a, bits), name="scalar-out"), Sample((5, s), name="scalar-lhs")]
    if dt.is_signed:
        out.append(Sample((a, np.array([-1, 2, -3, 0], dt.np)), name="negative"))
    return out


def _bits(dt):
    return np.dtype(dt).itemsize * 8


def _shift_ref(left):
    def ref(a, s):
        dt = np.result_type(a, s)
        a = np.asarray(a).astype(dt)
        s = np.asarray(s).astype(np.int64)
        bits = _bits(dt)
        signed = np.dtype(dt).kind == "i"
        top = bits if left else bits - signed
        ok = (s >= 0) & (s < top)
        sc = np.where(ok, s, 0).astype(dt)
        with np.errstate(all="ignore"):
            if left:
                return np.where(ok, np.left_shift(a, sc), 0).astype(dt)
            fill = np.right_shift(a, bits - 1) if signed else np.zeros_like(a)
            return np.where(ok, np.right_shift(a, sc), fill).astype(dt)
    return ref


# -- pointwise ------------------------------------------------------------------------------
def _angle_ref(x):
    x = x.astype(np.float64) if x.dtype.kind != "f" else x
    return np.where(np.isnan(x), x, np.where(x < 0, math.pi, 0.0))


def _angle_samples(dt):
    out = unary_samples(dt)
    if dt.is_floating_point:
        out.append(Sample((np.array([-0.0, 0.0, -3.0, 2.0], dt.np),), name="zeros",
                          grad=False))
    return out


def _mvlgamma_samples(dt):
    g = rng(90)
    out = []
    for p in (1, 2, 3):
        lo = (p - 1) / 2 + 0.3
        if dt.is_floating_point:
            x = make((2, 3), dt, g, low=lo, high=lo + 4.0)
        else:
            x = g.integers(math.ceil(lo), 7, size=(2, 3)).astype(dt.np)
        out.append(Sample((x, p), name=f"p{p}"))
    out.append(Sample((make((0,), dt, g, positive=True), 2), name="empty"))
    return out


def _mvlgamma_ref(x, p):
    x = x.astype(np.float64)
    lg = np.vectorize(math.lgamma, otypes=[np.float64])
    out = p * (p - 1) / 4 * math.log(math.pi) + sum(lg(x - j / 2) for j in range(p)) \
        if x.size else np.zeros(x.shape)
    return np.asarray(out, np.float64)


_LOW = {fw.float16: (5e-2, 2e-2), fw.bfloat16: (3e-1, 5e-2)}

register_opinfo(
    OpInfo("ravel", fw.ravel, np.ravel, unary_samples, dtypes=ALL),
    OpInfo("moveaxis", fw.moveaxis, np.moveaxis, _moveaxis_samples, dtypes=ALL),
    OpInfo("narrow_copy", fw.narrow_copy, _narrow_ref, _narrow_samples, dtypes=ALL),
    OpInfo("Tensor.unfold", _method("unfold"), _unfold_ref, _unfold_samples, dtypes=ALL),
    OpInfo("Tensor.sum_to_size", _method("sum_to_size"), _sum_to_size_ref,
           _sum_to_size_samples, dtypes=FLOAT_INT, tols=_LOW),
    OpInfo("masked_scatter", fw.masked_scatter, _masked_scatter_ref, _masked_scatter_samples,
           dtypes=ALL),
    OpInfo("masked_scatter_", _method("masked_scatter_"), _masked_scatter_ref,
           lambda dt: _masked_scatter_samples(dt, inplace=True), dtypes=NUMERIC,
           inplace=True),
    OpInfo("slice_scatter", fw.slice_scatter, _slice_scatter_ref, _slice_scatter_samples,
           dtypes=ALL),
    OpInfo("select_scatter", fw.select_scatter, _select_scatter_ref, _select_scatter_samples,
           dtypes=ALL),
    OpInfo("diagonal_scatter", fw.diagonal_scatter, _diagonal_scatter_ref,
           _diagonal_scatter_samples, dtypes=ALL),
    OpInfo("put", fw.put, _put_ref, _put_samples, dtypes=NUMERIC, tols=_LOW),
    OpInfo("put_", _method("put_"), _put_ref, _put_samples, dtypes=NUMERIC, inplace=True,
           tols=_LOW),
    OpInfo("bitwise_left_shift", fw.bitwise_left_shift, _shift_ref(True), _shift_samples,
           dtypes=_SHIFT_INTS, differentiable=False),
    OpInfo("bitwise_right_shift", fw.bitwise_right_shift, _shift_ref(False), _shift_samples,
           dtypes=_SHIFT_INTS, differentiable=False),
    OpInfo("__lshift__", operator.lshift, _shift_ref(True), _shift_samples,
           dtypes=(fw.int64, fw.int32), differentiable=False),
    OpInfo("__rshift__", operator.rshift, _shift_ref(False), _shift_samples,
           dtypes=(fw.int64, fw.uint8), differentiable=False),
    OpInfo("angle", fw.angle, _angle_ref, _angle_samples, dtypes=ALL, out_dtype=float_out),
    OpInfo("mvlgamma", fw.mvlgamma, _mvlgamma_ref, _mvlgamma_samples, dtypes=FLOATS +
           (fw.int64,), out_dtype=float_out, tols={fw.float32: (1e-5, 1e-5), **_LOW}),
)
