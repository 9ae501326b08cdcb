"""OpInfo records: indexing (getitem/setitem, gather/scatter family, masks) and linear
algebra (matmul family, einsum)."""

from __future__ import annotations

import numpy as np

import framework as fw
from tests.opinfo import (ALL, FLOAT_INT, NUMERIC, OpInfo, Sample, make, noncontig,
                          register_opinfo, rng, transposed)

_I = np.int64


def _getitem_basic(dt):
    x = make((3, 4, 5), dt, rng(30))
    keys = [(1,), (slice(1, 3),), (slice(None, None, 2), -1), (Ellipsis, 1),
            (None, slice(None), 0), (slice(-2, None), None, slice(None, None, 3)),
            (-1, -1, -1), (slice(5, 10),), (Ellipsis,), (slice(None), slice(3, 0))]
    out = [Sample((x, k), name=repr(k)) for k in keys]
    out.append(Sample((transposed(make((4, 3), dt, rng(31))), (slice(None, None, 2), 1)),
                      name="T"))
    return out


def _getitem_adv(dt):
    g = rng(32)
    x = make((3, 4, 5), dt, g)
    mask = make((3, 4, 5), dt, g) > make((), dt, g) if dt is not fw.bool else x
    keys = [np.array([0, 2, -1]), (slice(None), np.array([[0, 1], [3, 0]])),
            np.asarray(mask), np.array([True, False, True]), (np.array([0, 1]), slice(None),
                                                               np.array([1, 4])),
            (1, np.array([0, 0, 3])), [0, 2], (Ellipsis, np.array([4, 0])),
            (np.array([], _I),)]
    return [Sample((x, k), name=f"key{i}") for i, k in enumerate(keys)]


def _getitem_ref(x, key):
    return x[key]


def _setitem_samples(dt):
    g = rng(33)
    x = make((3, 4), dt, g)
    sc = True if dt is fw.bool else (2 if not dt.is_floating_point else 1.5)
    return [Sample((x, (1,), make((4,), dt, g))),
            Sample((x, (slice(None), slice(1, 3)), make((3, 2), dt, g))),
            Sample((x, (slice(None, None, 2),), sc)),
            Sample((x, np.array([0, 2]), make((2, 4), dt, g))),
            Sample((x, np.asarray(make((3, 4), dt, g) != make((), dt, g)), sc), name="mask"),
            Sample((x, (Ellipsis, 0), make((3,), dt, g))),
            Sample((x, (np.array([0, 2]), np.array([1, 3])), make((2,), dt, g))),
            Sample((transposed(x), (0,), make((1, 4), dt, g)), name="T-bcast")]


def _setitem(x, key, v):
    y = fw.clone(x)
    y[key] = v
    return y


def _setitem_inplace(x, key, v):
    x[key] = v
    return x


def _setitem_ref(x, key, v):
    y = x.copy()
    y[key] = v
    return y


def _idx(g, high, shape):
    return g.integers(0, high, size=shape).astype(_I)


def _gather_samples(dt):
    g = rng(34)
    x = make((3, 4), dt, g)
    return [Sample((x, 0, _idx(g, 3, (2, 4)))), Sample((x, 1, _idx(g, 4, (3, 6)))),
            Sample((x, -1, _idx(g, 4, (3, 0)))), Sample((transposed(x), 0, _idx(g, 3, (5, 4))))]


def _unique_idx(g, size, shape, dim):
    perm = np.argsort(g.random(shape[:dim] + (size,) + shape[dim + 1:]), axis=dim)
    sl = [slice(None)] * len(shape)
    sl[dim] = slice(0, shape[dim])
    return perm[tuple(sl)].astype(_I)


def _scatter_samples(dt):
    g = rng(35)
    x = make((3, 4), dt, g)
    sc = True if dt is fw.bool else (7 if not dt.is_floating_point else 2.5)
    return [Sample((x, 0, _unique_idx(g, 3, (2, 4), 0), make((2, 4), dt, g))),
            Sample((x, 1, _unique_idx(g, 4, (3, 2), 1), make((3, 3), dt, g)), name="big-src"),
            Sample((x, -1, _unique_idx(g, 4, (3, 2), 1)), {"value": sc}),
            Sample((transposed(x), 0, _unique_idx(g, 3, (3, 4), 0), make((3, 4), dt, g)))]


def _scatter_add_samples(dt):
    g = rng(36)
    x = make((3, 4), dt, g)
    return [Sample((x, 0, _idx(g, 3, (5, 4)), make((5, 4), dt, g))),
            Sample((x, 1, _idx(g, 4, (3, 6)), make((3, 6), dt, g))),
            Sample((noncontig(x), -1, _idx(g, 4, (2, 2)), make((2, 2), dt, g)))]


def _scatter_ref(x, dim, index, src=None, value=None, reduce=None):
    out = x.copy()
    src = value if src is None else src
    pos = list(np.indices(index.shape, sparse=True))
    pos[dim] = index
    vals = src[tuple(slice(0, s) for s in index.shape)] if isinstance(src, np.ndarray) else src
    if reduce == "add":
        np.add.at(out, tuple(pos), vals)
    else:
        out[tuple(pos)] = vals
    return out


def _index_select_samples(dt):
    g = rng(37)
    x = make((3, 4), dt, g)
    return [Sample((x, 0, np.array([2, 0, 2]))), Sample((x, 1, np.array([3]))),
            Sample((x, -1, np.array(1))), Sample((transposed(x), 1, np.array([], _I)))]


def _index_add_samples(dt):
    g = rng(38)
    x = make((3, 4), dt, g)
    return [Sample((x, 0, np.array([0, 2, 0]), make((3, 4), dt, g))),
            Sample((x, 1, np.array([1, 3]), make((3, 2), dt, g)), {"alpha": 2}),
            Sample((transposed(x), -1, np.array([0]), make((3, 1), dt, g)))]


def _index_add_ref(x, dim, index, source, alpha=1):
    out = x.copy()
    key = (slice(None),) * (dim % x.ndim) + (index,)
    np.add.at(out, key, source * alpha)
    return out


def _mask_samples(dt):
    g = rng(39)
    x = make((3, 4), dt, g)
    m = np.asarray(g.random((3, 4)) < 0.5)
    sc = True if dt is fw.bool else (2 if not dt.is_floating_point else -1.5)
    return [Sample((x, m, sc)), Sample((x, m[0], sc), name="bcast"),
            Sample((transposed(x), m, np.array(sc, dt.np)), name="0d-value"),
            Sample((x[:0], m[:0], sc), name="empty")]


def _take_samples(dt):
    g = rng(40)
    x = make((3, 4), dt, g)
    return [Sample((x, _idx(g, 4, (3, 2)), 1)), Sample((x, _idx(g, 3, (1, 4)), 0)),
            Sample((x, _idx(g, 12, (5,)))), Sample((transposed(x), _idx(g, 3, (2, 1)), 0))]


def _take_ref(x, idx, dim=None):
    if dim is None:
        return x.reshape(-1)[idx]
    shape = list(np.broadcast_shapes(
        tuple(1 if i == dim else s for i, s in enumerate(x.shape)),
        tuple(1 if i == dim else s for i, s in enumerate(idx.shape))))
    xs, ix = list(shape), list(shape)
    xs[dim], ix[dim] = x.shape[dim], idx.shape[dim]
    return np.take_along_axis(np.broadcast_to(x, xs), np.broadcast_to(idx, ix), axis=dim)


def _index_put_samples(dt):
    g = rng(41)
    x = make((3, 4), dt, g)
    return [Sample((x, (np.array([0, 2]),), make((2, 4), dt, g))),
            Sample((x, (np.array([0, 2]), np.array([1, 3])), make((2,), dt, g))),
            Sample((x, (np.array([0, 0, 1]), np.array([1, 1, 2])), make((3,), dt, g), True),
                   name="accumulate")]


def _index_put_ref(x, indices, values, accumulate=False):
    out = x.copy()
    if accumulate:
        np.add.at(out, tuple(indices), values)
    else:
        out[tuple(indices)] = values
    return out


def _nonzero_samples(dt):
    g = rng(42)
    x = make((3, 4), dt, g)
    x[g.random((3, 4)) < 0.4] = 0
    return [Sample((x,)), Sample((np.zeros((0, 2), dt.np),)),
            Sample((np.asarray(x[0, 0]),), name="0d"), Sample((transposed(x),))]


# ---------------------------------------------------------------------------------------
def _matmul_samples(dt):
    g = rng(43)

    def m(*shape):
        return make(shape, dt, g)
    return [Sample((m(3, 4), m(4, 5))), Sample((m(4), m(4, 5)), name="vec-mat"),
            Sample((m(3, 4), m(4)), name="mat-vec"), Sample((m(4), m(4)), name="dot"),
            Sample((m(2, 3, 4), m(4, 5)), name="batch"),
            Sample((m(2, 1, 3, 4), m(5, 4, 2)), name="bcast-batch"),
            Sample((transposed(m(4, 3)), noncontig(m(3, 2))), name="noncontig"),
            Sample((m(0, 4), m(4, 3)), name="empty-m"), Sample((m(3, 0), m(0, 2)), name="k0")]


def _einsum_samples(dt):
    g = rng(44)

    def m(*shape):
        return make(shape, dt, g)
    return [Sample(("ij,jk->ik", m(3, 4), m(4, 2))), Sample(("bij,bjk->bik", m(2, 3, 4),
                                                             m(2, 4, 2))),
            Sample(("i,j->ij", m(3), m(2))), Sample(("ij->ji", transposed(m(2, 3)))),
            Sample(("ij->", m(2, 3))), Sample(("ijk->ik", m(2, 3, 4))),
            Sample(("ij,ij->i", m(3, 4), m(3, 4))), Sample(("ij,jk,kl->il", m(2, 3), m(3, 4),
                                                           m(4, 2)))]


_NUM = NUMERIC

register_opinfo(
    OpInfo("getitem_basic", lambda x, k: x[k], _getitem_ref, _getitem_basic, dtypes=ALL,
           op="slice"),
    OpInfo("getitem", fw.getitem, _getitem_ref, _getitem_adv, dtypes=ALL, op="index"),
    OpInfo("setitem", _setitem, _setitem_ref, _setitem_samples, dtypes=ALL, op="index_put"),
    OpInfo("setitem_", _setitem_inplace, _setitem_ref, _setitem_samples, dtypes=ALL,
           inplace=True),
    OpInfo("gather", fw.gather, lambda x, d, i: np.take_along_axis(x, i, axis=d),
           _gather_samples, dtypes=ALL, op="gather"),
    OpInfo("scatter", fw.scatter, _scatter_ref, _scatter_samples, dtypes=ALL, op="scatter"),
    OpInfo("scatter_reduce_add", lambda *a: fw.scatter(*a, reduce="add"),
           lambda *a: _scatter_ref(*a, reduce="add"), _scatter_add_samples, dtypes=_NUM),
    OpInfo("scatter_add", fw.scatter_add, lambda *a: _scatter_ref(*a, reduce="add"),
           _scatter_add_samples, dtypes=_NUM, op="scatter_add"),
    OpInfo("scatter_add_", lambda x, *a: x.scatter_add_(*a),
           lambda *a: _scatter_ref(*a, reduce="add"), _scatter_add_samples, dtypes=_NUM,
           inplace=True),
    OpInfo("index_select", fw.index_select,
           lambda x, d, i: np.take(x, i.reshape(-1), axis=d), _index_select_samples, dtypes=ALL),
    OpInfo("index_add", fw.index_add, _index_add_ref, _index_add_samples, dtypes=_NUM),
    OpInfo("masked_fill", fw.masked_fill, lambda x, m, v: np.where(m, v, x), _mask_samples,
           dtypes=ALL),
    OpInfo("masked_fill_", lambda x, m, v: x.masked_fill_(m, v),
           lambda x, m, v: np.where(m, v, x), _mask_samples, dtypes=ALL, inplace=True),
    OpInfo("masked_select", fw.masked_select,
           lambda x, m, v=None: np.broadcast_arrays(x, m)[0][np.broadcast_arrays(x, m)[1]],
           lambda dt: [Sample(s.args[:2]) for s in _mask_samples(dt)], dtypes=ALL),
    OpInfo("take_along_dim", fw.take_along_dim, _take_ref, _take_samples, dtypes=ALL),
    OpInfo("index_put", fw.index_put, _index_put_ref, _index_put_samples, dtypes=_NUM),
    OpInfo("nonzero", fw.nonzero, np.argwhere, _nonzero_samples, dtypes=ALL,
           differentiable=False, out_dtype=lambda dt: fw.int64),
    OpInfo("argwhere", fw.argwhere, np.argwhere, _nonzero_samples, dtypes=(fw.float32,),
           differentiable=False, out_dtype=lambda dt: fw.int64),
    OpInfo("nonzero_tuple", lambda x: fw.nonzero(x, as_tuple=True),
           lambda x: tuple(np.argwhere(x).T), lambda dt: _nonzero_samples(dt)[:2],
           dtypes=(fw.float32, fw.int64), differentiable=False,
           out_dtype=lambda dt: (fw.int64, fw.int64)),
    OpInfo("one_hot", fw.one_hot, lambda x, n=-1: np.eye(n if n > 0 else x.max() + 1,
                                                         dtype=_I)[x],
           lambda dt: [Sample((_idx(rng(45), 4, (3, 2)), 5)), Sample((np.array([0, 3, 1]),)),
                       Sample((np.array(2), 3))],
           dtypes=(fw.int64,), differentiable=False),
    OpInfo("matmul", fw.matmul, np.matmul, _matmul_samples, dtypes=FLOAT_INT, op="matmul"),
    OpInfo("__matmul__", lambda a, b: a @ b, np.matmul, _matmul_samples, dtypes=FLOAT_INT),
    OpInfo("mm", fw.mm, np.matmul, lambda dt: [s for s in _matmul_samples(dt)
                                               if s.args[0].ndim == s.args[1].ndim == 2]),
    OpInfo("bmm", fw.bmm, np.matmul, lambda dt: [
        Sample((make((2, 3, 4), dt, rng(46)), make((2, 4, 5), dt, rng(47)))),
        Sample((transposed(make((2, 3, 4), dt, rng(48))), make((2, 4, 1), dt, rng(49))))]),
    OpInfo("mv", fw.mv, np.matmul, lambda dt: [s for s in _matmul_samples(dt)
                                               if s.name == "mat-vec"]),
    OpInfo("dot", fw.dot, np.dot, lambda dt: [s for s in _matmul_samples(dt)
                                              if s.name == "dot"]),
    OpInfo("outer", fw.outer, np.outer, lambda dt: [
        Sample((make((3,), dt, rng(50)), make((4,), dt, rng(51)))),
        Sample((make((0,), dt, rng(50)), make((2,), dt, rng(51))))]),
    OpInfo("einsum", fw.einsum, np.einsum, _einsum_samples, dtypes=FLOAT_INT, op="einsum"),
)
