"""OpInfo records: the registered ``fw.linalg`` primitives (det, slogdet, inv, solve,
cholesky, qr, eigh, svd) and the composites built on them or on matmul/reductions (norms,
matrix_power, multi_dot, pinv). References are ``numpy.linalg`` in float64.

Matrices are kept well conditioned (random plus a multiple of the identity), symmetric
positive-definite inputs are built inside ``fn`` (``A A^T + n I``) and symmetric ones as
``(A + A^T) / 2``, so finite differences see the same function the analytic gradient
describes. Eigenvector and singular-vector signs are LAPACK's choice, so the eigh/svd
records compare sign-invariant values (``V * V``, ``|U|``, ``U diag(S) Vh``)."""

from __future__ import annotations

import math

import numpy as np

import framework as fw
from tests.linalg_helpers import random_matrix
from tests.opinfo import OpInfo, Sample, register_opinfo

F = (fw.float32, fw.float64)
TOL = {fw.float32: (2e-4, 2e-4)}


def _mat(shape, dtype, seed, shift=0.0):
    return random_matrix(shape, shift, dtype, seed)


def _square(dtype):
    return [Sample((_mat((3, 3), dtype, 1, 3.0),), name="3x3"),
            Sample((_mat((2, 4, 4), dtype, 2, 4.0),), name="batch"),
            Sample((_mat((2, 1, 2, 2), dtype, 3, 2.0),), name="batch2d"),
            Sample((_mat((1, 1), dtype, 4, 1.5),), name="1x1")]


def _spd_fw(A):
    n = A.shape[-1]
    return A @ A.mT + n * fw.eye(n, dtype=A.dtype, device=A.device)


def _spd_np(A):
    return A @ np.swapaxes(A, -1, -2) + A.shape[-1] * np.eye(A.shape[-1])


def _sym_np(A):
    return (A + np.swapaxes(A, -1, -2)) / 2


def _solve_samples(dtype):
    return [Sample((_mat((3, 3), dtype, 5, 3.0), _mat((3, 2), dtype, 6)), name="matrix"),
            Sample((_mat((2, 3, 3), dtype, 7, 3.0), _mat((3,), dtype, 8)), name="vector"),
            Sample((_mat((2, 3, 3), dtype, 9, 3.0), _mat((4, 1, 3, 2), dtype, 10)),
                   name="broadcast"),
            Sample((_mat((3, 3), dtype, 11, 3.0), _mat((2, 3), dtype, 12)),
                   {"left": False}, name="right")]


def _solve_ref(A, B, left=True):
    if not left:
        return np.swapaxes(_solve_ref(np.swapaxes(A, -1, -2), np.swapaxes(B, -1, -2)), -1, -2)
    if B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1]):
        return np.linalg.solve(A, B[..., None])[..., 0]
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    return np.linalg.solve(np.broadcast_to(A, batch + A.shape[-2:]),
                           np.broadcast_to(B, batch + B.shape[-2:]))


def _qr_samples(dtype):
    return [Sample((_mat((5, 3), dtype, 13),), {"mode": "reduced"}, name="tall"),
            Sample((_mat((2, 4, 4), dtype, 14),), {"mode": "reduced"}, name="batch"),
            Sample((_mat((4, 4), dtype, 15),), {"mode": "complete"}, name="complete-square"),
            Sample((_mat((3, 5), dtype, 16),), {"mode": "reduced"}, name="wide", grad=False),
            Sample((_mat((5, 3), dtype, 17),), {"mode": "complete"}, name="complete-tall",
                   grad=False),
            Sample((_mat((2, 5, 3), dtype, 18),), {"mode": "r"}, name="r", grad=False)]


def _qr_ref(A, mode="reduced"):
    if mode == "r":
        return np.zeros((0,)), np.linalg.qr(A, mode="r")
    return tuple(np.linalg.qr(A, mode=mode))


def _eigh_fn(A, UPLO="L"):
    w, V = fw.linalg.eigh((A + A.mT) / 2, UPLO=UPLO)
    return w, V * V


def _eigh_ref(A, UPLO="L"):
    w, V = np.linalg.eigh(_sym_np(A), UPLO=UPLO)
    return w, V * V


def _svd_samples(dtype):
    return [Sample((_mat((5, 3), dtype, 19),), {"full_matrices": False}, name="tall"),
            Sample((_mat((2, 3, 4), dtype, 20),), {"full_matrices": False}, name="wide"),
            Sample((_mat((3, 3), dtype, 21),), {"full_matrices": True}, name="square-full"),
            Sample((_mat((4, 2), dtype, 22),), {"full_matrices": True}, name="tall-full",
                   grad=False)]


def _svd_fn(A, full_matrices=True):
    U, S, Vh = fw.linalg.svd(A, full_matrices=full_matrices)
    k = S.shape[-1]
    rec = U[..., :k] @ fw.diag_embed(S) @ Vh[..., :k, :]
    return U.abs(), S, Vh.abs(), rec


def _svd_ref(A, full_matrices=True):
    U, S, Vh = np.linalg.svd(A, full_matrices=full_matrices)
    return np.abs(U), S, np.abs(Vh), A


def _slogdet_ref(A):
    s, la = np.linalg.slogdet(A)
    return s, la


def _vector_norm_samples(dtype):
    x = _mat((3, 4), dtype, 23)
    return [Sample((x,), {"ord": o, "dim": d}, name=f"ord={o},dim={d}",
                   grad=o not in (0, math.inf, -math.inf))
            for o, d in ((2, None), (1, -1), (3, (0, 1)), (-1.5, 0), (0.5, None),
                         (math.inf, -1), (-math.inf, None), (0, 1))] + \
        [Sample((x,), {"ord": 2, "dim": 1, "keepdim": True}, name="keepdim")]


def _vector_norm_ref(x, ord=2, dim=None, keepdim=False):
    a = np.abs(x)
    if ord == math.inf:
        return a.max(axis=dim, keepdims=keepdim)
    if ord == -math.inf:
        return a.min(axis=dim, keepdims=keepdim)
    if ord == 0:
        return (a != 0).sum(axis=dim, keepdims=keepdim).astype(x.dtype)
    return (a ** ord).sum(axis=dim, keepdims=keepdim) ** (1.0 / ord)


def _matrix_norm_samples(dtype):
    A = _mat((2, 3, 4), dtype, 24)
    out = [Sample((A,), {"ord": o}, name=f"ord={o}", grad=o not in (1, -1, math.inf, -math.inf))
           for o in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)]
    return out + [Sample((A,), {"ord": "nuc", "dim": (0, 2), "keepdim": True}, name="dims")]


def _matrix_norm_ref(A, ord="fro", dim=(-2, -1), keepdim=False):
    X = np.moveaxis(A, dim, (-2, -1))
    r = np.linalg.norm(X, ord=ord, axis=(-2, -1))
    if keepdim:
        for d in sorted(x % A.ndim for x in dim):
            r = np.expand_dims(r, d)
    return r


def _mpow_samples(dtype):
    A = _mat((2, 3, 3), dtype, 25, 2.0) / 2
    return [Sample((A, n), name=f"n={n}", grad=n != 0) for n in (0, 1, 2, 5, -1, -3)]


def _multi_dot_samples(dtype):
    g = [_mat(s, dtype, 26 + i) for i, s in enumerate(((3,), (3, 4), (4, 6), (6, 2),
                                                       (2, 5)))]
    return [Sample(([g[1], g[2]],), name="two"),
            Sample(([g[0], g[1], g[2], g[3]],), name="vec-first"),
            Sample(([g[1], g[2], g[3], g[4]],), name="four"),
            Sample(([g[1], g[2], g[3], _mat((2,), dtype, 40)],), name="vec-last")]


def _multi_dot_ref(ts):
    return np.linalg.multi_dot(ts)


def _pinv_samples(dtype):
    return [Sample((_mat((5, 3), dtype, 31),), name="tall"),
            Sample((_mat((2, 3, 4), dtype, 32),), name="wide"),
            Sample((_mat((3, 3), dtype, 33),), {"hermitian": True}, name="hermitian")]


def _pinv_fn(A, hermitian=False):
    return fw.linalg.pinv((A + A.mT) / 2 if hermitian else A, hermitian=hermitian)


def _pinv_ref(A, hermitian=False):
    return np.linalg.pinv(_sym_np(A) if hermitian else A)


register_opinfo(
    OpInfo("linalg.det", lambda A: fw.linalg.det(A), np.linalg.det, _square, F,
           op="linalg_det", tols=TOL),
    OpInfo("linalg.slogdet", lambda A: tuple(fw.linalg.slogdet(A)), _slogdet_ref, _square, F,
           op="linalg_slogdet", tols=TOL),
    OpInfo("linalg.inv", lambda A: fw.linalg.inv(A), np.linalg.inv, _square, F,
           op="linalg_inv", tols=TOL),
    OpInfo("linalg.solve", lambda A, B, **kw: fw.linalg.solve(A, B, **kw), _solve_ref,
           _solve_samples, F, op="linalg_solve", tols=TOL),
    OpInfo("linalg.cholesky", lambda A, **kw: fw.linalg.cholesky(_spd_fw(A), **kw),
           lambda A, upper=False: (np.swapaxes(np.linalg.cholesky(_spd_np(A)), -1, -2)
                                   if upper else np.linalg.cholesky(_spd_np(A))),
           lambda dt: _square(dt) + [Sample((_mat((2, 3, 3), dt, 34),), {"upper": True},
                                            name="upper")],
           F, op="linalg_cholesky", tols=TOL),
    OpInfo("linalg.qr", lambda A, **kw: tuple(fw.linalg.qr(A, **kw)), _qr_ref, _qr_samples, F,
           op="linalg_qr", tols=TOL),
    OpInfo("linalg.eigh", _eigh_fn, _eigh_ref,
           lambda dt: _square(dt) + [Sample((_mat((3, 3), dt, 35),), {"UPLO": "U"},
                                            name="upper")],
           F, op="linalg_eigh", tols={fw.float32: (1e-3, 1e-3)}),
    OpInfo("linalg.svd", _svd_fn, _svd_ref, _svd_samples, F, op="linalg_svd",
           tols={fw.float32: (1e-3, 1e-3)}),
    OpInfo("linalg.svdvals", lambda A: fw.linalg.svdvals(A),
           lambda A: np.linalg.svd(A, compute_uv=False),
           lambda dt: [Sample(s.args, name=s.name) for s in _svd_samples(dt)], F,
           op="linalg_svd", tols=TOL),
    OpInfo("linalg.vector_norm", lambda x, **kw: fw.linalg.vector_norm(x, **kw),
           _vector_norm_ref, _vector_norm_samples, F, tols=TOL),
    OpInfo("linalg.matrix_norm", lambda A, **kw: fw.linalg.matrix_norm(A, **kw),
           _matrix_norm_ref, _matrix_norm_samples, F, tols=TOL),
    OpInfo("linalg.norm", lambda A, **kw: fw.linalg.norm(A, **kw),
           lambda A, ord=None, dim=None, keepdim=False: np.linalg.norm(
               A if dim is not None or ord is not None else A.reshape(-1), ord, dim, keepdim),
           lambda dt: [Sample((_mat((3, 4), dt, 36),), name="all"),
                       Sample((_mat((3, 4), dt, 37),), {"ord": "nuc"}, name="nuc"),
                       Sample((_mat((5,), dt, 38),), {"ord": 3}, name="vector"),
                       Sample((_mat((2, 3, 4), dt, 39),), {"dim": (0, 2)}, name="fro-dims"),
                       Sample((_mat((2, 3, 4), dt, 40),), {"ord": 1, "dim": 1},
                              name="vector-dim")],
           F, tols=TOL),
    OpInfo("linalg.matrix_power", lambda A, n: fw.linalg.matrix_power(A, n),
           lambda A, n: np.linalg.matrix_power(A, n), _mpow_samples, F, tols=TOL),
    OpInfo("linalg.multi_dot", lambda ts: fw.linalg.multi_dot(ts), _multi_dot_ref,
           _multi_dot_samples, F, tols=TOL),
    OpInfo("linalg.pinv", _pinv_fn, _pinv_ref, _pinv_samples, F, tols=TOL),
)
