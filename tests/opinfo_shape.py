"""OpInfo records: movement and shape ops (views and copies), and creation ops."""

from __future__ import annotations

import numpy as np

import framework as fw
from tests.opinfo import (ALL, NUMERIC, OpInfo, Sample, make, noncontig, register_opinfo,
                          rng, transposed)


def _x(dt, shape, seed=20):
    return make(shape, dt, rng(seed))


def _s(*samples):
    """Samples from (shape-or-array, *extra args) tuples; arrays are used as given."""
    def build(dt):
        out = []
        for spec in samples:
            first, *rest = spec
            arr = first(dt) if callable(first) else _x(dt, first)
            out.append(Sample((arr, *[r(dt) if callable(r) else r for r in rest])))
        return out
    return build


def _T(shape):
    return lambda dt: transposed(_x(dt, shape))


def _nc(shape):
    return lambda dt: noncontig(_x(dt, shape))


def _rec(name, fn, ref, samples, op=None, dtypes=ALL, **kw):
    return OpInfo(name, fn, ref, samples, dtypes=dtypes, op=op, **kw)


def _pad_ref(x, pads, mode="constant", value=None):
    widths = [(0, 0)] * x.ndim
    for i in range(len(pads) // 2):
        widths[x.ndim - 1 - i] = (pads[2 * i], pads[2 * i + 1])
    if mode == "constant":
        # negative padding crops
        crop = tuple(slice(max(-lo, 0), x.shape[d] - max(-hi, 0))
                     for d, (lo, hi) in enumerate(widths))
        x = x[crop]
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
        return np.pad(x, widths, constant_values=0 if value is None else value)
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    return np.pad(x, widths, mode=np_mode)


def _split_ref(x, s, dim=0):
    if isinstance(s, int):
        idx = list(range(s, x.shape[dim], s))
    else:
        idx = list(np.cumsum(s)[:-1])
    return tuple(np.split(x, idx, axis=dim))


def _chunk_ref(x, chunks, dim=0):
    size = x.shape[dim]
    step = -(-size // chunks)
    return _split_ref(x, step, dim)


def _repeat_ref(x, *sizes):
    x = x.reshape((1,) * (len(sizes) - x.ndim) + x.shape)
    return np.tile(x, sizes)


def _movedim(x, s, d):
    return np.moveaxis(x, s, d)


def _unflatten_ref(x, dim, sizes):
    d = dim % x.ndim
    return x.reshape(x.shape[:d] + tuple(sizes) + x.shape[d + 1:])


def _squeeze_ref(x, dim=None):
    if dim is None:
        return np.squeeze(x)
    dims = (dim,) if isinstance(dim, int) else dim
    dims = tuple(d % x.ndim for d in dims if x.shape[d] == 1)
    return np.squeeze(x, axis=dims)


def _select_ref(x, dim, index):
    return np.take(x, index, axis=dim)


def _narrow_ref(x, dim, start, length):
    start = start % x.shape[dim]
    sl = [slice(None)] * x.ndim
    sl[dim] = slice(start, start + length)
    return x[tuple(sl)]


def _pair(n):
    return lambda dt: [_x(dt, (2, 3), 21 + i) for i in range(n)]


def _cat_samples(dt):
    g = rng(22)
    return [Sample(([make((2, 3), dt, g), make((1, 3), dt, g)],)),
            Sample(([make((2, 3), dt, g), transposed(make((2, 2), dt, g))], 1)),
            Sample(([make((2, 3), dt, g), make((2, 0), dt, g), make((2, 1), dt, g)], -1)),
            Sample(([make((3,), dt, g), make((0,), dt, g)],), name="legacy-empty")]


def _stack_samples(dt):
    g = rng(23)
    return [Sample(([make((2, 3), dt, g), make((2, 3), dt, g)],)),
            Sample(([make((2, 3), dt, g), transposed(make((3, 2), dt, g).T.copy())], -1)),
            Sample(([make((), dt, g), make((), dt, g), make((), dt, g)],)),
            Sample(([make((2,), dt, g), make((2,), dt, g)], 1))]


def _np_cat(xs, dim=0):
    xs = [x for x in xs if not (x.ndim == 1 and x.shape[0] == 0)] or xs[:1]
    return np.concatenate(xs, axis=dim)


def _trilu_samples(dt):
    return [Sample((_x(dt, (3, 4)),)), Sample((_x(dt, (3, 4)), 1)),
            Sample((_x(dt, (2, 3, 3)), -1)), Sample((transposed(_x(dt, (4, 3))),)),
            Sample((_x(dt, (0, 3)),))]


def _pad_samples(dt):
    x = _x(dt, (2, 3, 4))
    return [Sample((x, (1, 2))), Sample((x, (1, 0, 0, 2)), {"value": 1}),
            Sample((x, (-1, 2, 1, -1)), name="negative"),
            Sample((transposed(_x(dt, (4, 3))), (2, 1), "reflect")),
            Sample((x, (1, 2, 2, 0), "replicate")), Sample((x, (2, 1), "circular"))]


_MOVEMENT = [
    _rec("reshape", fw.reshape, np.reshape,
         _s(((3, 4), (4, 3)), ((2, 3, 4), (-1,)), (_T((3, 4)), (12,)), ((), (1, 1)),
            ((0, 3), (3, 0)), ((6,), (2, -1)), (_nc((2, 4)), (4, 2))), op="reshape"),
    _rec("view", fw.view, np.reshape,
         _s(((3, 4), (4, 3)), ((2, 3, 4), (-1, 4)), ((), ()), ((0, 3), (-1,)))),
    _rec("Tensor.view", lambda x, s: x.view(*s), np.reshape, _s(((3, 4), (2, 6)))),
    _rec("flatten", fw.flatten, lambda x, a=0, b=-1: x.reshape(
        x.shape[:a % max(x.ndim, 1)] + (-1,) + x.shape[b % max(x.ndim, 1) + 1:])
        if x.ndim else x.reshape(1),
         _s(((2, 3, 4),), ((2, 3, 4), 1), ((2, 3, 4), 0, 1), (_T((3, 4)),), ((),))),
    _rec("unflatten", fw.unflatten, _unflatten_ref,
         _s(((2, 12), 1, (3, 4)), ((6, 2), 0, (-1, 3)), (_T((3, 4)), -1, (2, 2)))),
    _rec("squeeze", fw.squeeze, _squeeze_ref,
         _s(((1, 3, 1),), ((1, 3, 1), 0), ((1, 3, 1), (0, -1)), ((2, 3), 0), ((),))),
    _rec("unsqueeze", fw.unsqueeze, np.expand_dims,
         _s(((3, 4), 0), ((3, 4), -1), ((), 0), (_T((3, 4)), 1))),
    _rec("permute", fw.permute, np.transpose,
         _s(((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (-1, 0, 1)), (_T((3, 4)), (1, 0)),
            ((0, 3), (1, 0))), op="permute"),
    _rec("Tensor.permute", lambda x, d: x.permute(*d), np.transpose,
         _s(((2, 3, 4), (1, 2, 0)))),
    _rec("transpose", fw.transpose, lambda x, a, b: np.swapaxes(x, a, b) if x.ndim else x,
         _s(((2, 3, 4), 0, 2), ((2, 3), -1, -2), ((), 0, -1))),
    _rec("swapaxes", fw.swapaxes, np.swapaxes, _s(((2, 3, 4), 1, 2))),
    _rec("swapdims", fw.swapdims, np.swapaxes, _s(((2, 3, 4), 0, 1))),
    _rec("t", fw.t, lambda x: x.T, _s(((2, 3),), ((3,),), ((),))),
    _rec("Tensor.T", lambda x: x.T, lambda x: x.T, _s(((2, 3, 4),), ((3,),))),
    _rec("Tensor.mT", lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), _s(((2, 3, 4),))),
    _rec("movedim", fw.movedim, _movedim, _s(((2, 3, 4), 0, -1), ((2, 3, 4), (0, 1), (2, 0)))),
    _rec("expand", fw.expand, lambda x, s: np.broadcast_to(
        x, tuple(x.shape[i - len(s) + x.ndim] if v == -1 else v for i, v in enumerate(s))),
         _s(((3, 1), (3, 4)), ((3, 1), (2, 3, 4)), ((1,), (-1,)), ((3, 1), (-1, 5)),
            ((), (2, 2)), ((3, 1), (3, 0))), op="expand"),
    _rec("Tensor.expand", lambda x, s: x.expand(*s), np.broadcast_to, _s(((1, 4), (3, 4)))),
    _rec("broadcast_to", fw.broadcast_to, np.broadcast_to, _s(((3, 1), (2, 3, 5)))),
    _rec("expand_as", fw.expand_as, lambda x, y: np.broadcast_to(x, y.shape),
         _s(((3, 1), lambda dt: _x(dt, (3, 4))))),
    _rec("broadcast_tensors", fw.broadcast_tensors, np.broadcast_arrays,
         _s(((3, 1), lambda dt: _x(dt, (4,)), lambda dt: _x(dt, (2, 1, 1))))),
    _rec("contiguous", fw.contiguous, np.ascontiguousarray, _s((_T((3, 4)),), (_nc((2, 3)),),
                                                                ((3,),))),
    _rec("clone", fw.clone, np.copy, _s(((3, 4),), (_T((3, 4)),), ((),), ((0, 2),)),
         op="clone"),
    _rec("narrow", fw.narrow, _narrow_ref,
         _s(((4, 5), 0, 1, 2), ((4, 5), -1, -3, 2), (_T((4, 5)), 1, 0, 0)), op="slice"),
    _rec("select", fw.select, _select_ref, _s(((4, 5), 0, 1), ((4, 5), -1, -2), ((3,), 0, 2))),
    _rec("cat", fw.cat, _np_cat, _cat_samples, op="cat"),
    _rec("concat", fw.concat, _np_cat, _cat_samples),
    _rec("concatenate", fw.concatenate, _np_cat, _cat_samples),
    _rec("stack", fw.stack, lambda xs, dim=0: np.stack(xs, axis=dim), _stack_samples),
    _rec("hstack", fw.hstack, np.hstack, lambda dt: [Sample((_pair(2)(dt),)),
                                                     Sample(([_x(dt, (3,)), _x(dt, (2,))],))]),
    _rec("vstack", fw.vstack, np.vstack, lambda dt: [Sample((_pair(3)(dt),)),
                                                     Sample(([_x(dt, (3,)), _x(dt, (2, 3))],))]),
    _rec("split", fw.split, _split_ref,
         _s(((5, 3), 2), ((5, 3), [1, 4]), (_T((3, 5)), 2, 1), ((4, 2), [2, 0, 2]))),
    _rec("chunk", fw.chunk, _chunk_ref, _s(((5, 3), 2), ((6, 3), 3), ((2, 7), 3, -1))),
    _rec("unbind", fw.unbind, lambda x, dim=0: tuple(np.moveaxis(x, dim, 0)),
         _s(((3, 2),), ((3, 2), 1), (_T((2, 3)), -1))),
    _rec("flip", fw.flip, np.flip, _s(((3, 4), (0,)), ((2, 3, 4), (0, 2)), (_T((3, 4)), (-1,)),
                                      ((0, 2), (1,))), op="flip"),
    _rec("fliplr", fw.fliplr, np.fliplr, _s(((3, 4),))),
    _rec("flipud", fw.flipud, np.flipud, _s(((3, 4),))),
    _rec("roll", fw.roll, np.roll, _s(((3, 4), 1, 1), ((3, 4), (1, -2), (0, 1)), ((3, 4), 5),
                                      (_T((3, 4)), -1, 0))),
    _rec("repeat", fw.repeat, lambda x, s: _repeat_ref(x, *s),
         _s(((2, 3), (2, 1)), ((3,), (2, 2)), ((), (3,)), (_T((2, 3)), (1, 2)))),
    _rec("Tensor.repeat", lambda x, s: x.repeat(*s), lambda x, s: _repeat_ref(x, *s),
         _s(((2, 3), (1, 2)))),
    _rec("tile", fw.tile, np.tile, _s(((2, 3), (2,)), ((2, 3), (2, 1, 2)))),
    _rec("tril", fw.tril, np.tril, _trilu_samples, op="trilu"),
    _rec("triu", fw.triu, np.triu, _trilu_samples),
    _rec("tril_", lambda x, *a: x.tril_(*a), np.tril, _trilu_samples, dtypes=NUMERIC,
         inplace=True),
    _rec("pad", fw.pad, _pad_ref, _pad_samples, op="pad", dtypes=NUMERIC),
]


# ---------------------------------------------------------------------------------------
# creation (no tensor inputs, or only a template tensor for *_like); the functions take
# an optional device=, which device suites pass
def _created(fn):
    return lambda dt: [Sample((), {"dtype": dt, **kw}) for kw in fn]


_CREATION = [
    OpInfo("full", lambda dtype, size, value, device=None: fw.full(size, value, dtype=dtype,
                                                                   device=device),
           lambda dtype, size, value: np.full(size, value),
           _created([{"size": (2, 3), "value": 1}, {"size": (0,), "value": 0},
                     {"size": (), "value": 1}]),
           dtypes=ALL, op="full", differentiable=False),
    OpInfo("zeros", lambda dtype, size, device=None: fw.zeros(*size, dtype=dtype, device=device),
           lambda dtype, size: np.zeros(size), _created([{"size": (2, 3)}, {"size": ()}]),
           dtypes=ALL, differentiable=False),
    OpInfo("ones", lambda dtype, size, device=None: fw.ones(size, dtype=dtype, device=device),
           lambda dtype, size: np.ones(size), _created([{"size": (2, 3)}, {"size": (0, 2)}]),
           dtypes=ALL, differentiable=False),
    OpInfo("arange", lambda dtype, a, device=None: fw.arange(*a, dtype=dtype, device=device),
           lambda dtype, a: np.arange(*a),
           _created([{"a": (5,)}, {"a": (1, 7, 2)}, {"a": (5, 1, -2)}, {"a": (3, 3)}]),
           dtypes=NUMERIC, op="arange", differentiable=False),
    OpInfo("linspace", lambda dtype, a, device=None: fw.linspace(*a, dtype=dtype,
                                                                   device=device),
           lambda dtype, a: np.linspace(*a),
           _created([{"a": (0, 1, 5)}, {"a": (-2, 2, 1)}, {"a": (0, 1, 0)}]),
           dtypes=(fw.float32, fw.float64), differentiable=False),
    OpInfo("logspace", lambda dtype, a, device=None: fw.logspace(*a, dtype=dtype,
                                                                   device=device),
           lambda dtype, a: np.logspace(*a), _created([{"a": (0, 2, 3)}]),
           dtypes=(fw.float32, fw.float64), differentiable=False),
    OpInfo("eye", lambda dtype, a, device=None: fw.eye(*a, dtype=dtype, device=device),
           lambda dtype, a: np.eye(*a),
           _created([{"a": (3,)}, {"a": (2, 4)}]), dtypes=ALL, differentiable=False),
    OpInfo("zeros_like", fw.zeros_like, np.zeros_like, _s(((2, 3),), (_T((3, 2)),)),
           dtypes=ALL, differentiable=False),
    OpInfo("ones_like", fw.ones_like, np.ones_like, _s(((2, 3),)), dtypes=ALL,
           differentiable=False),
    OpInfo("full_like", lambda x: fw.full_like(x, 2), lambda x: np.full_like(x, 2),
           _s(((2, 3),), ((),)), dtypes=NUMERIC, differentiable=False),
]

register_opinfo(*_MOVEMENT, *_CREATION)
