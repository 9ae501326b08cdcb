"""OpInfo records: the PyTorch top-level composites of framework/ops/torch_products.py
(meshgrid, kron, tensordot, inner, vdot, addmm/addmv/addr/addbmm/baddbmm and their
in-place forms, chain_matmul, block_diag, cartesian_prod, combinations, dist, cov,
corrcoef, vander, trapezoid/trapz, cumulative_trapezoid) and the ``torch.*`` spellings of
the ``fw.linalg`` factorizations (det, logdet, slogdet, inverse, pinverse, svd, qr,
cholesky, matrix_power). References are NumPy in float64.

None of them is a registered op (``op=None``). Matrices for the factorizations are kept
well conditioned as in tests/opinfo_linalg_ops.py; singular vectors are compared through
sign-invariant values (``|U|``, ``|V|``, ``U diag(S) V^T``)."""

from __future__ import annotations

import itertools
import math

import numpy as np

import framework as fw
from tests.linalg_helpers import random_matrix
from tests.opinfo import (ALL, FLOAT_INT, FLOATS, NUMERIC, OpInfo, Sample, float_out, make,
                          noncontig, register_opinfo, rng, transposed)

_I = np.int64
F = (fw.float32, fw.float64)
TOL = {fw.float32: (2e-4, 2e-4)}
_LOW = {fw.float16: (5e-2, 2e-2), fw.bfloat16: (2e-1, 5e-2)}


# -- grids ---------------------------------------------------------------------------------
def _meshgrid_samples(dt):
    g = rng(110)
    a, b, c = make((3,), dt, g), make((4,), dt, g), make((2,), dt, g)
    return [Sample((a, b), name="ij"), Sample((a, b), {"indexing": "xy"}, name="xy"),
            Sample((a, b, c), {"indexing": "ij"}, name="three"),
            Sample((a, b, c), {"indexing": "xy"}, name="three-xy"),
            Sample((make((), dt, g), b), name="0d"), Sample(([a, c],), name="list"),
            Sample((a,), name="one"), Sample((a[:0], b), name="empty")]


def _meshgrid_ref(*ts, indexing="ij"):
    if len(ts) == 1 and isinstance(ts[0], list):
        ts = ts[0]
    return tuple(np.meshgrid(*ts, indexing=indexing))


def _cartesian_samples(dt):
    g = rng(111)
    a, b, c = make((3,), dt, g), make((2,), dt, g), make((2,), dt, g)
    return [Sample((a, b)), Sample((a, b, c)), Sample(([b, c],), name="list"),
            Sample((a,), name="one"), Sample((a, b[:0]), name="empty")]


def _cartesian_ref(*ts):
    if len(ts) == 1 and isinstance(ts[0], list):
        ts = ts[0]
    if len(ts) == 1:
        return ts[0]
    rows = list(itertools.product(*[t.tolist() for t in ts]))
    return np.array(rows, ts[0].dtype).reshape(-1, len(ts))


def _combinations_samples(dt):
    g = rng(112)
    x = make((4,), dt, g)
    return [Sample((x,)), Sample((x, 3)), Sample((x, 2, True), name="replacement"),
            Sample((x,), {"r": 1, "with_replacement": True}), Sample((x, 0), name="r=0"),
            Sample((x, 5), name="r>n"), Sample((noncontig(make((3,), dt, g)), 2)),
            Sample((x[:0],), name="empty")]


def _combinations_ref(x, r=2, with_replacement=False):
    if r == 0:
        return x[:0]
    gen = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    idx = np.array(list(gen(range(len(x)), r)), _I).reshape(-1, r)
    return x[idx]


# -- products ------------------------------------------------------------------------------
def _kron_samples(dt):
    g = rng(113)
    return [Sample((make((2, 3), dt, g), make((3, 2), dt, g))),
            Sample((make((3,), dt, g), make((2, 2), dt, g)), name="1d-2d"),
            Sample((make((2, 1, 2), dt, g), make((3, 2), dt, g)), name="3d-2d"),
            Sample((make((), dt, g), make((3,), dt, g)), name="0d"),
            Sample((transposed(make((2, 3), dt, g)), noncontig(make((2, 2), dt, g))),
                   name="noncontig"),
            Sample((make((0, 2), dt, g), make((2, 3), dt, g)), name="empty")]


def _tensordot_samples(dt):
    g = rng(114)
    a, b = make((2, 3, 4), dt, g), make((3, 4, 2), dt, g)
    return [Sample((a, b), name="dims=2"),
            Sample((a, make((4, 5), dt, g)), {"dims": 1}, name="dims=1"),
            Sample((make((2, 3), dt, g), make((2,), dt, g)), {"dims": 0}, name="outer"),
            Sample((a, b), {"dims": ([1, 0], [0, 2])}, name="lists"),
            Sample((a, make((4, 3), dt, g)), {"dims": ([-1, 1], [0, 1])}, name="negative"),
            Sample((transposed(make((3, 4), dt, g)), noncontig(make((4, 3), dt, g))),
                   {"dims": ([1], [0])}, name="noncontig"),
            Sample((make((0, 3), dt, g), make((3, 2), dt, g)), {"dims": 1}, name="empty")]


def _tensordot_ref(a, b, dims=2):
    return np.tensordot(a, b, axes=dims)


def _inner_samples(dt):
    g = rng(115)
    return [Sample((make((3,), dt, g), make((3,), dt, g)), name="vectors"),
            Sample((make((2, 4), dt, g), make((3, 4), dt, g)), name="matrices"),
            Sample((make((2, 1, 3), dt, g), make((3,), dt, g)), name="3d-1d"),
            Sample((make((), dt, g), make((2, 3), dt, g)), name="0d"),
            Sample((transposed(make((4, 2), dt, g)), make((2,), dt, g)), name="T")]


def _vdot_samples(dt):
    g = rng(116)
    return [Sample((make((5,), dt, g), make((5,), dt, g))),
            Sample((noncontig(make((3,), dt, g)), make((3,), dt, g)), name="strided"),
            Sample((make((0,), dt, g), make((0,), dt, g)), name="empty")]


def _fused_samples(shapes, dt, int_alpha=2):
    """Samples of ``f(input, m1, m2, beta=, alpha=)`` for the input shapes given."""
    g = rng(117)
    inp, m1, m2, bcast = shapes
    a = int_alpha if not dt.is_floating_point else 0.5
    out = [Sample((make(inp, dt, g), make(m1, dt, g), make(m2, dt, g)), name="plain"),
           Sample((make(bcast, dt, g), make(m1, dt, g), make(m2, dt, g)),
                  {"beta": 2, "alpha": a}, name="bcast"),
           Sample((make(inp, dt, g), make(m1, dt, g), make(m2, dt, g)), {"beta": 0},
                  name="beta=0")]
    if dt.is_floating_point:
        nan = np.full(inp, math.nan, dt.np)  # beta=0 ignores NaN in input, as PyTorch
        out += [Sample((nan, make(m1, dt, g), make(m2, dt, g)), {"beta": 0, "alpha": -1.5},
                       name="beta=0-nan", grad=False),
                Sample((transposed(make(inp[::-1], dt, g).T) if len(inp) == 2 else
                        make(inp, dt, g), make(m1, dt, g), make(m2, dt, g)),
                       {"beta": -0.5}, name="beta")]
    return out


_FUSED = {  # name -> (input, mat1, mat2, broadcast input) shapes, product
    "addmm": (((3, 4), (3, 2), (2, 4), (4,)), np.matmul),
    "addmv": (((3,), (3, 2), (2,), ()), np.matmul),
    "addr": (((3, 4), (3,), (4,), (3, 1)), np.outer),
    "addbmm": (((3, 4), (2, 3, 2), (2, 2, 4), (1, 4)), lambda a, b: np.matmul(a, b).sum(0)),
    "baddbmm": (((2, 3, 4), (2, 3, 2), (2, 2, 4), (3, 1)), np.matmul),
}


def _fused_ref(prod):
    def ref(inp, m1, m2, beta=1, alpha=1):
        p = alpha * prod(m1, m2)
        if beta == 0:
            return np.broadcast_to(p, np.broadcast_shapes(inp.shape, p.shape)).astype(p.dtype)
        return beta * inp + p
    return ref


def _fused_records():
    recs = []
    for name, (shapes, prod) in _FUSED.items():
        def samples(dt, _s=shapes):
            return _fused_samples(_s, dt)

        def inplace_samples(dt, _s=shapes):
            return [s for s in _fused_samples(_s, dt) if s.name != "bcast"]
        ref = _fused_ref(prod)
        recs.append(OpInfo(name, getattr(fw, name), ref, samples, dtypes=FLOAT_INT, tols=_LOW))
        recs.append(OpInfo(name + "_", lambda x, *a, _n=name + "_", **k: getattr(x, _n)(*a, **k),
                           ref, inplace_samples, dtypes=F, inplace=True))
    return recs


def _chain_samples(dt):
    g = rng(118)
    ms = [make(s, dt, g, low=-1, high=1) for s in ((2, 3), (3, 4), (4, 2), (2, 5))]
    return [Sample((ms[0], ms[1]), name="two"), Sample(tuple(ms), name="four"),
            Sample((ms[:3],), name="list"), Sample((ms[1],), name="one")]


def _chain_ref(*ms):
    if len(ms) == 1 and isinstance(ms[0], list):
        ms = ms[0]
    return ms[0].copy() if len(ms) == 1 else np.linalg.multi_dot(ms)


def _block_diag_samples(dt):
    g = rng(119)
    return [Sample((make((2, 2), dt, g), make((1, 3), dt, g))),
            Sample((make((), dt, g), make((3,), dt, g), make((2, 1), dt, g)), name="mixed-nd"),
            Sample((make((2, 3), dt, g),), name="one"),
            Sample((make((0, 2), dt, g), make((2, 0), dt, g), make((1, 1), dt, g)),
                   name="empty-blocks")]


def _block_diag_ref(*ts):
    mats = [t.reshape(1, -1) if t.ndim < 2 else t for t in ts]
    out = np.zeros((sum(m.shape[0] for m in mats), sum(m.shape[1] for m in mats)),
                   ts[0].dtype)
    r = c = 0
    for m in mats:
        out[r:r + m.shape[0], c:c + m.shape[1]] = m
        r, c = r + m.shape[0], c + m.shape[1]
    return out


# -- statistics ----------------------------------------------------------------------------
def _dist_samples(dt):
    g = rng(120)
    a, b = make((3, 4), dt, g), make((3, 4), dt, g)
    return [Sample((a, b)), Sample((a, make((4,), dt, g), 1), name="bcast"),
            Sample((a, b, 3)), Sample((a, b, 0.5)), Sample((a, b, 0), name="p=0", grad=False),
            Sample((a, b, math.inf), name="inf", grad=False),
            Sample((a, b, -math.inf), name="-inf", grad=False),
            Sample((make((), dt, g), b), name="0d"),
            Sample((make((0, 2), dt, g), make((0, 2), dt, g)), name="empty", grad=False)]


def _dist_ref(a, b, p=2):
    d = np.abs(a - b).reshape(-1)
    if p == 0:
        return np.asarray(np.count_nonzero(d), np.float64)
    if p == math.inf:
        return d.max() if d.size else np.zeros(())
    if p == -math.inf:
        return d.min()
    return np.asarray((d ** p).sum() ** (1.0 / p))


def _cov_samples(dt):
    g = rng(121)
    x = make((3, 6), dt, g)
    wdt = dt.np if dt.is_floating_point else np.float32
    fwts = np.array([1, 2, 1, 3, 1, 2], _I)
    awts = g.uniform(0.5, 2.0, size=6).astype(wdt)
    return [Sample((x,)), Sample((x,), {"correction": 0}), Sample((x,), {"correction": 2}),
            Sample((make((5,), dt, g),), name="1d"), Sample((transposed(x),), name="T"),
            Sample((x,), {"fweights": fwts}, name="fweights"),
            Sample((x,), {"aweights": awts}, name="aweights"),
            Sample((x,), {"fweights": fwts, "aweights": awts, "correction": 1}, name="both"),
            Sample((make((2, 1), dt, g),), {"correction": 0}, name="one-obs")]


def _cov_ref(x, correction=1, fweights=None, aweights=None):
    with np.errstate(all="ignore"):
        return np.asarray(np.cov(x.astype(np.float64), ddof=correction, fweights=fweights,
                                 aweights=aweights))


def _corrcoef_samples(dt):
    g = rng(122)
    return [Sample((make((3, 5), dt, g),)), Sample((transposed(make((2, 4), dt, g)),)),
            Sample((make((4,), dt, g),), name="1d", grad=False)]


def _vander_samples(dt):
    g = rng(123)
    x = make((4,), dt, g, low=-1.5, high=1.5)
    return [Sample((x,)), Sample((x, 3)), Sample((x,), {"N": 5, "increasing": True}),
            Sample((x, 1)), Sample((x, 0), name="N=0"), Sample((noncontig(x),)),
            Sample((x[:0], 2), name="empty")]


def _vander_ref(x, N=None, increasing=False):
    if x.dtype.kind != "f":
        x = x.astype(_I)
    return np.vander(x, N, increasing)


def _int_to_int64(dt):
    return dt if dt.is_floating_point else fw.int64


# -- integration ---------------------------------------------------------------------------
def _trapz_samples(dt):
    g = rng(124)
    y = make((3, 5), dt, g)
    xs = np.sort(g.uniform(-2, 2, size=5)).astype(dt.np if dt.is_floating_point
                                                   else np.float32)
    x2 = np.sort(g.uniform(-2, 2, size=(3, 5)), axis=1).astype(xs.dtype)
    return [Sample((y,)), Sample((y,), {"dx": 0.5}), Sample((y, 0.25), name="number-x"),
            Sample((y, xs), name="x-1d"), Sample((y, x2), name="x-nd"),
            Sample((y,), {"dim": 0, "dx": 2.0}), Sample((transposed(make((5, 3), dt, g)),
                                                         xs[:3]), {"dim": 1}, name="T"),
            Sample((make((4,), dt, g),), name="1d"), Sample((make((2, 1), dt, g),), name="n=1"),
            Sample((make((3, 0), dt, g),), name="empty")]


def _spacing(y, x, dx, dim):
    if x is not None and np.ndim(x) == 0:
        x, dx = None, x
    if x is None:
        return 1.0 if dx is None else dx
    d = np.diff(x, axis=dim if np.ndim(x) == y.ndim else 0)
    if np.ndim(x) == 1:
        shape = [1] * y.ndim
        shape[dim] = -1
        d = d.reshape(shape)
    return d


def _pairs(y, dim):
    n = y.shape[dim]
    return np.take(y, range(1, n), axis=dim) + np.take(y, range(0, n - 1), axis=dim)


def _trapz_ref(y, x=None, dx=None, dim=-1):
    y = y.astype(np.float64)
    dim = dim % y.ndim
    return np.asarray((_spacing(y, x, dx, dim) * _pairs(y, dim)).sum(axis=dim) / 2)


def _cumtrapz_ref(y, x=None, dx=None, dim=-1):
    y = y.astype(np.float64)
    dim = dim % y.ndim
    if y.shape[dim] == 0:
        return y
    return np.cumsum(_spacing(y, x, dx, dim) * _pairs(y, dim) / 2, axis=dim)


# -- linalg spellings ----------------------------------------------------------------------
def _mat(shape, dtype, seed, shift=0.0):
    return random_matrix(shape, shift, dtype, seed)


def _square(dtype):
    return [Sample((_mat((3, 3), dtype, 130, 3.0),), name="3x3"),
            Sample((_mat((2, 4, 4), dtype, 131, 4.0),), name="batch"),
            Sample((_mat((1, 1), dtype, 132, 1.5),), name="1x1")]


def _det_samples(dtype, *, log=False):
    neg = _mat((3, 3), dtype, 133, 3.0)
    neg[0] *= -1  # a negative determinant (logdet: NaN)
    return _square(dtype) + [Sample((neg,), name="negative", grad=not log),
                             Sample((np.zeros((2, 2), dtype.np),), name="singular",
                                    grad=False)]


def _logdet_ref(A):
    s, la = np.linalg.slogdet(A)
    return np.where(s < 0, math.nan, la)


def _pinverse_samples(dtype):
    low = np.diag([3.0, 1.0, 1e-3]) @ _mat((3, 4), fw.float64, 135)
    return [Sample((_mat((5, 3), dtype, 134),), name="tall"),
            Sample((_mat((2, 3, 4), dtype, 136),), name="wide"),
            Sample((low.astype(dtype.np), 1e-2), name="rcond", grad=False)]


def _pinverse_ref(A, rcond=1e-15):
    U, S, Vh = np.linalg.svd(A, full_matrices=False)
    keep = S > rcond * S.max(axis=-1, keepdims=True)
    inv = np.where(keep, 1 / np.where(keep, S, 1), 0)
    return np.swapaxes(Vh, -1, -2) @ (inv[..., :, None] * np.swapaxes(U, -1, -2))


def _svd_samples(dtype):
    return [Sample((_mat((5, 3), dtype, 137),), name="tall"),
            Sample((_mat((2, 3, 4), dtype, 138),), {"some": True}, name="wide"),
            Sample((_mat((3, 3), dtype, 139),), {"some": False}, name="square-full"),
            Sample((_mat((4, 2), dtype, 140),), {"some": False}, name="tall-full", grad=False),
            Sample((_mat((2, 4, 3), dtype, 141),), {"compute_uv": False}, name="no-uv")]


def _svd_fn(A, some=True, compute_uv=True):
    U, S, V = fw.svd(A, some=some, compute_uv=compute_uv)
    if not compute_uv:
        return U, S, V
    k = S.shape[-1]
    return U.abs(), S, V.abs(), U[..., :k] @ fw.diag_embed(S) @ V[..., :k].mT


def _svd_ref(A, some=True, compute_uv=True):
    U, S, Vh = np.linalg.svd(A, full_matrices=not some)
    if not compute_uv:
        m, n = A.shape[-2:]
        return (np.zeros(A.shape[:-2] + (m, m)), S, np.zeros(A.shape[:-2] + (n, n)))
    return np.abs(U), S, np.abs(np.swapaxes(Vh, -1, -2)), A


def _qr_samples(dtype):
    return [Sample((_mat((5, 3), dtype, 142),), name="tall"),
            Sample((_mat((2, 4, 4), dtype, 143),), name="batch"),
            Sample((_mat((4, 4), dtype, 144), False), name="complete-square"),
            Sample((_mat((3, 5), dtype, 145),), name="wide", grad=False),
            Sample((_mat((5, 3), dtype, 146),), {"some": False}, name="complete-tall",
                   grad=False)]


def _spd_fw(A):
    n = A.shape[-1]
    return A @ A.mT + n * fw.eye(n, dtype=A.dtype, device=A.device)


def _spd_np(A):
    return A @ np.swapaxes(A, -1, -2) + A.shape[-1] * np.eye(A.shape[-1])


def _cholesky_ref(A, upper=False):
    L = np.linalg.cholesky(_spd_np(A))
    return np.swapaxes(L, -1, -2) if upper else L


def _mpow_samples(dtype):
    A = _mat((2, 3, 3), dtype, 147, 2.0) / 2
    return [Sample((A, n), name=f"n={n}", grad=n != 0) for n in (0, 1, 2, 3, -1, -2)]


register_opinfo(
    OpInfo("meshgrid", fw.meshgrid, _meshgrid_ref, _meshgrid_samples, dtypes=ALL),
    OpInfo("cartesian_prod", fw.cartesian_prod, _cartesian_ref, _cartesian_samples,
           dtypes=ALL),
    OpInfo("combinations", fw.combinations, _combinations_ref, _combinations_samples,
           dtypes=ALL),
    OpInfo("kron", fw.kron, np.kron, _kron_samples, dtypes=ALL),
    OpInfo("tensordot", fw.tensordot, _tensordot_ref, _tensordot_samples, dtypes=FLOAT_INT,
           tols=_LOW),
    OpInfo("inner", fw.inner, np.inner, _inner_samples, dtypes=FLOAT_INT, tols=_LOW),
    OpInfo("vdot", fw.vdot, np.vdot, _vdot_samples, dtypes=FLOAT_INT, tols=_LOW),
    *_fused_records(),
    OpInfo("chain_matmul", fw.chain_matmul, _chain_ref, _chain_samples,
           dtypes=FLOATS + (fw.int64,), tols=_LOW),
    OpInfo("block_diag", fw.block_diag, _block_diag_ref, _block_diag_samples, dtypes=ALL),
    OpInfo("dist", fw.dist, _dist_ref, _dist_samples, dtypes=FLOATS, tols=_LOW),
    OpInfo("cov", fw.cov, _cov_ref, _cov_samples, dtypes=FLOAT_INT, out_dtype=float_out,
           tols=_LOW),
    OpInfo("corrcoef", fw.corrcoef, lambda x: np.asarray(np.corrcoef(x)), _corrcoef_samples,
           dtypes=FLOAT_INT, out_dtype=float_out, tols=_LOW),
    OpInfo("vander", fw.vander, _vander_ref, _vander_samples, dtypes=NUMERIC + (fw.bool,),
           out_dtype=_int_to_int64),
    OpInfo("trapezoid", fw.trapezoid, _trapz_ref, _trapz_samples, dtypes=FLOAT_INT,
           out_dtype=float_out, tols=_LOW),
    OpInfo("trapz", fw.trapz, _trapz_ref, lambda dt: _trapz_samples(dt)[:5], dtypes=F),
    OpInfo("cumulative_trapezoid", fw.cumulative_trapezoid, _cumtrapz_ref, _trapz_samples,
           dtypes=FLOAT_INT, out_dtype=float_out, tols=_LOW),
    OpInfo("det", fw.det, np.linalg.det, _det_samples, F, tols=TOL),
    OpInfo("logdet", fw.logdet, _logdet_ref, lambda dt: _det_samples(dt, log=True), F,
           tols=TOL),
    OpInfo("slogdet", lambda A: tuple(fw.slogdet(A)), lambda A: tuple(np.linalg.slogdet(A)),
           _det_samples, F, tols=TOL),
    OpInfo("inverse", fw.inverse, np.linalg.inv, _square, F, tols=TOL),
    OpInfo("pinverse", fw.pinverse, _pinverse_ref, _pinverse_samples, F, tols=TOL),
    OpInfo("svd", _svd_fn, _svd_ref, _svd_samples, F, tols={fw.float32: (1e-3, 1e-3)}),
    OpInfo("qr", lambda A, *a, **k: tuple(fw.qr(A, *a, **k)),
           lambda A, some=True: tuple(np.linalg.qr(A, mode="reduced" if some else "complete")),
           _qr_samples, F, tols=TOL),
    OpInfo("cholesky", lambda A, **k: fw.cholesky(_spd_fw(A), **k), _cholesky_ref,
           lambda dt: _square(dt) + [Sample((_mat((2, 3, 3), dt, 148),), {"upper": True},
                                            name="upper")], F, tols=TOL),
    OpInfo("matrix_power", fw.matrix_power, np.linalg.matrix_power, _mpow_samples, F,
           tols=TOL),
)
