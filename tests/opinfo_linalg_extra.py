"""OpInfo records: the second set of ``fw.linalg`` primitives (solve_triangular, lu_factor,
the pivots -> permutation op behind lu_unpack, matrix_exp, cholesky_ex / inv_ex /
solve_ex), the functions composed from them (lu, lu_solve, cond, vander,
householder_product) and PyTorch's top-level spellings (``fw.triangular_solve``,
``fw.lu``, ``fw.lu_unpack``, ``fw.lu_solve``, ``fw.matrix_exp``).

References are NumPy in float64: triangular systems through ``np.linalg.solve`` on the
masked triangle, the LU factorization through a plain partial-pivoting sweep
(:func:`lu_ref`, LAPACK getrf's pivot choice), ``matrix_exp`` through a 40-term Taylor
series after scaling by a power of two. Matrices are kept well conditioned (random plus a
multiple of the identity) so finite differences see smooth functions; the singular and
not positive-definite samples (``info`` != 0) are forward-only. ONNX has no triangular
solve, LU or matrix exponential, so those records' exports are refused by name (skipped).
"""

from __future__ import annotations

import math

import numpy as np

import framework as fw
from tests.linalg_helpers import random_matrix
from tests.opinfo import OpInfo, Sample, register_opinfo, rng

F = (fw.float32, fw.float64)
TOL = {fw.float32: (2e-4, 2e-4)}
L = fw.linalg


def _mat(shape, dtype, seed, shift=0.0):
    return random_matrix(shape, shift, dtype, seed)


def _T(a):
    return np.swapaxes(a, -1, -2)


def _spd_fw(A):
    n = A.shape[-1]
    return A @ A.mT + n * fw.eye(n, dtype=A.dtype, device=A.device)


def _spd_np(A):
    return A @ _T(A) + A.shape[-1] * np.eye(A.shape[-1])


# ---------------------------------------------------------------------------------------
# references
def tri_ref(A, upper, unitriangular=False):
    """The triangle of ``A`` a triangular solve reads (unit diagonal if asked)."""
    T = np.triu(A) if upper else np.tril(A)
    if unitriangular:
        T = T.copy()
        i = np.arange(A.shape[-1])
        T[..., i, i] = 1
    return T


def solve_ref(A, B):
    """``np.linalg.solve`` over broadcast batch dims."""
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    return np.linalg.solve(np.broadcast_to(A, batch + A.shape[-2:]),
                           np.broadcast_to(B, batch + B.shape[-2:]))


def _solve_triangular_ref(A, B, upper, left=True, unitriangular=False):
    T = tri_ref(A, upper, unitriangular)
    return solve_ref(T, B) if left else _T(solve_ref(_T(T), _T(B)))


def lu_ref(A):
    """``(P, L, U, LU, pivots, info)`` of partial-pivoting LU (LAPACK getrf), per matrix."""
    m, n = A.shape[-2:]
    k = min(m, n)
    outs = [[] for _ in range(6)]
    for M in A.reshape((-1, m, n)):
        U = M.astype(np.float64).copy()
        perm, piv, info = np.arange(m), [], 0
        for j in range(k):
            p = j + int(np.argmax(np.abs(U[j:, j])))
            piv.append(p + 1)
            U[[j, p]], perm[[j, p]] = U[[p, j]], perm[[p, j]]
            if U[j, j] == 0:
                info = info or j + 1
                continue
            U[j + 1:, j] /= U[j, j]
            U[j + 1:, j + 1:] -= np.outer(U[j + 1:, j], U[j, j + 1:])
        P = np.zeros((m, m))
        P[perm, np.arange(m)] = 1
        Lm = np.tril(U, -1)[:, :k] + np.eye(m, k)
        for o, v in zip(outs, (P, Lm, np.triu(U)[:k], U, np.array(piv, np.int32), info)):
            o.append(v)
    batch = A.shape[:-2]
    return tuple(np.array(o).reshape(batch + np.shape(o[0])) for o in outs)


def expm_ref(A):
    """``exp(A)``: 40 Taylor terms of ``A / 2^s`` (norm <= 1/2), squared ``s`` times."""
    A = np.asarray(A, np.float64)
    out = np.empty_like(A)
    for idx in np.ndindex(*A.shape[:-2]):
        M = A[idx]
        if M.size == 0:
            continue
        s = max(0, int(math.ceil(math.log2(max(np.abs(M).sum(0).max(), 1e-300) * 2))))
        X = M / 2.0 ** s
        term = np.eye(M.shape[-1])
        R = term.copy()
        for j in range(1, 40):
            term = term @ X / j
            R = R + term
        for _ in range(s):
            R = R @ R
        out[idx] = R
    return out


# ---------------------------------------------------------------------------------------
# samples
def _st_samples(dt):
    return [Sample((_mat((3, 3), dt, 1, 3.0), _mat((3, 2), dt, 2)), {"upper": True},
                   name="upper"),
            Sample((_mat((2, 4, 4), dt, 3, 3.0), _mat((2, 4, 3), dt, 4)), {"upper": False},
                   name="lower-batch"),
            Sample((_mat((3, 3), dt, 5), _mat((3, 1), dt, 6)),
                   {"upper": False, "unitriangular": True}, name="unit"),
            Sample((_mat((3, 3), dt, 7, 3.0), _mat((2, 3), dt, 8)),
                   {"upper": True, "left": False}, name="right"),
            Sample((_mat((2, 1, 3, 3), dt, 9, 3.0), _mat((4, 3, 2), dt, 10)),
                   {"upper": True}, name="broadcast")]


def _ts_samples(dt):
    return [Sample((_mat((3, 2), dt, 11), _mat((3, 3), dt, 12, 3.0)), name="default"),
            Sample((_mat((2, 3, 2), dt, 13), _mat((3, 3), dt, 14, 3.0)),
                   {"upper": False, "transpose": True}, name="lower-T-batch"),
            Sample((_mat((3, 1), dt, 15), _mat((2, 3, 3), dt, 16)),
                   {"unitriangular": True}, name="unit")]


def _ts_ref(b, A, upper=True, transpose=False, unitriangular=False):
    T = tri_ref(A, upper, unitriangular)
    X = solve_ref(_T(T) if transpose else T, b)
    return X, np.broadcast_to(A, X.shape[:-2] + A.shape[-2:])


def _lu_samples(dt):
    return [Sample((_mat((3, 3), dt, 17),), name="square"),
            Sample((_mat((2, 4, 4), dt, 18),), name="batch"),
            Sample((_mat((3, 5), dt, 19),), name="wide"),
            Sample((_mat((2, 5, 3), dt, 20),), name="tall"),
            Sample((_mat((1, 1), dt, 21, 1.5),), name="1x1")]


_SINGULAR = np.array([[[1.0, 2.0], [2.0, 4.0]], [[2.0, 1.0], [1.0, 3.0]]])


def _lu_ex_samples(dt):
    return _lu_samples(dt)[:2] + [Sample((_SINGULAR.astype(dt.np),), name="singular",
                                         grad=False)]


def _lu_solve_samples(dt):
    return [Sample((_mat((3, 3), dt, 22, 2.0), _mat((3, 2), dt, 23)), name="matrix"),
            Sample((_mat((2, 3, 3), dt, 24, 2.0), _mat((2, 3, 1), dt, 25)),
                   {"adjoint": True}, name="adjoint-batch"),
            Sample((_mat((3, 3), dt, 26, 2.0), _mat((4, 3), dt, 27)), {"left": False},
                   name="right"),
            Sample((_mat((3, 3), dt, 28, 2.0), _mat((2, 3), dt, 29)),
                   {"left": False, "adjoint": True}, name="right-adjoint"),
            Sample((_mat((3, 3), dt, 30, 2.0), _mat((2, 1, 3, 2), dt, 31)),
                   name="broadcast")]


def _lu_solve_ref(A, B, left=True, adjoint=False):
    M = _T(A) if adjoint else A
    return solve_ref(M, B) if left else _T(solve_ref(_T(M), _T(B)))


def _expm_samples(dt):
    out = [Sample((_mat((3, 3), dt, 32) * s,), name=f"norm~{s}")
           for s in (0.001, 0.05, 0.3, 1.0, 4.0)]
    return out + [Sample((_mat((2, 2, 2), dt, 33),), name="batch"),
                  Sample((_mat((1, 1), dt, 34),), name="1x1"),
                  Sample((np.zeros((2, 0, 0), dt.np),), name="empty", grad=False)]


def _spd_ex_samples(dt):
    bad = np.array([[[2.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 1.0]]], dt.np)
    return [Sample((_mat((3, 3), dt, 35),), name="3x3"),
            Sample((_mat((2, 4, 4), dt, 36),), {"upper": True}, name="upper-batch"),
            Sample((bad,), {"spd": False}, name="not-pd", grad=False)]


def _cholesky_ex_fn(A, upper=False, spd=True):
    return tuple(L.cholesky_ex(_spd_fw(A) if spd else A, upper=upper))


def _cholesky_ex_ref(A, upper=False, spd=True):
    M = _spd_np(A) if spd else A
    out, info = np.full(M.shape, np.nan), np.zeros(M.shape[:-2], np.int32)
    for idx in np.ndindex(*M.shape[:-2]):
        try:
            out[idx] = np.linalg.cholesky(M[idx])
        except np.linalg.LinAlgError:
            w = [np.linalg.det(M[idx][:j, :j]) for j in range(1, M.shape[-1] + 1)]
            info[idx] = 1 + next(j for j, d in enumerate(w) if d <= 0)
    return (_T(out) if upper else out), info


def _inv_ex_samples(dt):
    return [Sample((_mat((3, 3), dt, 37, 3.0),), name="3x3"),
            Sample((_mat((2, 4, 4), dt, 38, 4.0),), name="batch"),
            Sample((_SINGULAR.astype(dt.np),), name="singular", grad=False)]


def _inv_ex_ref(A):
    out, info = np.full(A.shape, np.nan), lu_ref(A)[5].astype(np.int32)
    ok = info == 0
    out[ok] = np.linalg.inv(A[ok])
    return out, info


def _solve_ex_samples(dt):
    return [Sample((_mat((3, 3), dt, 39, 3.0), _mat((3, 2), dt, 40)), name="matrix"),
            Sample((_mat((2, 3, 3), dt, 41, 3.0), _mat((3,), dt, 42)), name="vector"),
            Sample((_mat((3, 3), dt, 43, 3.0), _mat((2, 3), dt, 44)), {"left": False},
                   name="right"),
            Sample((_SINGULAR.astype(dt.np), _mat((2, 2, 1), dt, 45)), name="singular",
                   grad=False)]


def _solve_ex_ref(A, B, left=True):
    info = lu_ref(A)[5].astype(np.int32)
    vec = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    B2 = B[..., None] if vec else (B if left else _T(B))
    A2 = A if left else _T(A)
    batch = np.broadcast_shapes(A2.shape[:-2], B2.shape[:-2])
    A2 = np.broadcast_to(A2, batch + A2.shape[-2:])
    B2 = np.broadcast_to(B2, batch + B2.shape[-2:])
    X = np.full(B2.shape, np.nan)
    ok = np.broadcast_to(info == 0, batch)
    X[ok] = np.linalg.solve(A2[ok], B2[ok])
    X = X[..., 0] if vec else (X if left else _T(X))
    return X, np.broadcast_to(info, batch)


def _cond_samples(dt):
    A = _mat((2, 3, 3), dt, 46, 2.0)
    return [Sample((A,), {"p": p}, name=f"p={p}", grad=p not in (1, -1, math.inf, -math.inf))
            for p in (None, 2, -2, "fro", "nuc", 1, -1, math.inf, -math.inf)] + \
        [Sample((_mat((3, 5), dt, 47),), name="wide")]


def _cond_ref(A, p=None):
    return np.linalg.cond(A, p)


def _vander_samples(dt):
    g = rng(48)
    x = (g.uniform(0.5, 1.5, (4,)) * g.choice([-1, 1], 4)).astype(dt.np)
    if not dt.is_floating_point:
        x = np.array([1, -2, 3, 2], dt.np)
    return [Sample((x,), name="default"), Sample((x,), {"N": 6}, name="N=6"),
            Sample((np.stack([x, x[::-1]]),), {"N": 3}, name="batch"),
            Sample((x[:1].reshape(()),), {"N": 3}, name="0d")]


def _vander_ref(x, N=None):
    x = np.atleast_1d(x)
    n = x.shape[-1] if N is None else N
    out = x[..., None] ** np.arange(n)
    return out if x.dtype.kind == "f" else out.astype(np.int64)


def _hh_samples(dt):
    return [Sample((_mat((4, 3), dt, 49), _mat((3,), dt, 50)), name="full"),
            Sample((_mat((2, 5, 3), dt, 51), _mat((2, 2), dt, 52)), name="batch-k<n"),
            Sample((_mat((3, 3), dt, 53), _mat((0,), dt, 54)), name="k=0", grad=False)]


def _hh_ref(A, tau):
    m, n = A.shape[-2:]
    out = np.empty(A.shape)
    for idx in np.ndindex(*A.shape[:-2]):
        Q = np.eye(m)
        for i in range(tau.shape[-1]):
            v = np.zeros(m)
            v[i], v[i + 1:] = 1.0, A[idx][i + 1:, i]
            Q = Q @ (np.eye(m) - tau[idx][i] * np.outer(v, v))
        out[idx] = Q[:, :n]
    return out


def _lu_fn(A):
    return tuple(L.lu_factor(A))


def _lu_unpack_fn(A, **kw):
    return tuple(fw.lu_unpack(*L.lu_factor(A), **kw))


def _lu_unpack_ref(A, unpack_data=True, unpack_pivots=True):
    P, Lm, U = lu_ref(A)[:3]
    e = np.zeros((0,))
    return (P if unpack_pivots else e), (Lm if unpack_data else e), (U if unpack_data else e)


register_opinfo(
    OpInfo("linalg.solve_triangular", lambda A, B, **kw: L.solve_triangular(A, B, **kw),
           _solve_triangular_ref, _st_samples, F, op="linalg_solve_triangular", tols=TOL),
    OpInfo("triangular_solve", lambda b, A, **kw: tuple(fw.triangular_solve(b, A, **kw)),
           _ts_ref, _ts_samples, F, op="linalg_solve_triangular", tols=TOL),
    OpInfo("linalg.lu_factor", _lu_fn, lambda A: lu_ref(A)[3:5], _lu_samples, F,
           op="linalg_lu_factor", out_dtype=lambda dt: (dt, fw.int32), tols=TOL),
    OpInfo("linalg.lu_factor_ex", lambda A: tuple(L.lu_factor_ex(A)),
           lambda A: lu_ref(A)[3:6], _lu_ex_samples, F, op="linalg_lu_factor",
           out_dtype=lambda dt: (dt, fw.int32, fw.int32), tols=TOL),
    OpInfo("linalg.lu", lambda A: tuple(L.lu(A)), lambda A: lu_ref(A)[:3], _lu_samples, F,
           op="linalg_lu_factor", tols=TOL),
    OpInfo("lu", lambda A, **kw: tuple(fw.lu(A, **kw)),
           lambda A, get_infos=False: lu_ref(A)[3:6 if get_infos else 5],
           lambda dt: _lu_samples(dt)[:2] + [Sample((_SINGULAR.astype(dt.np),),
                                                    {"get_infos": True}, name="infos",
                                                    grad=False)],
           F, op="linalg_lu_factor", out_dtype=lambda dt: (dt, fw.int32, fw.int32), tols=TOL),
    OpInfo("lu_unpack", _lu_unpack_fn, _lu_unpack_ref,
           lambda dt: _lu_samples(dt) + [
               Sample((_mat((3, 3), dt, 55),), {"unpack_data": False}, name="no-data"),
               Sample((_mat((3, 3), dt, 56),), {"unpack_pivots": False}, name="no-pivots")],
           F, op="linalg_lu_permutation", tols=TOL),
    OpInfo("linalg.lu_solve", lambda A, B, **kw: L.lu_solve(*L.lu_factor(A), B, **kw),
           _lu_solve_ref, _lu_solve_samples, F, op="linalg_solve_triangular", tols=TOL),
    OpInfo("lu_solve", lambda b, A: fw.lu_solve(b, *fw.lu(A)),
           lambda b, A: solve_ref(A, b),
           lambda dt: [Sample((s.args[1], s.args[0]), name=s.name)
                       for s in _lu_solve_samples(dt) if not s.kwargs],
           F, op="linalg_solve_triangular", tols=TOL),
    OpInfo("linalg.matrix_exp", lambda A: L.matrix_exp(A), expm_ref, _expm_samples, F,
           op="linalg_matrix_exp", tols=TOL),
    OpInfo("matrix_exp", lambda A: fw.matrix_exp(A), expm_ref,
           lambda dt: _expm_samples(dt)[3:6], F, op="linalg_matrix_exp", tols=TOL),
    OpInfo("linalg.cholesky_ex", _cholesky_ex_fn, _cholesky_ex_ref, _spd_ex_samples, F,
           op="linalg_cholesky_ex", out_dtype=lambda dt: (dt, fw.int32), tols=TOL),
    OpInfo("linalg.inv_ex", lambda A: tuple(L.inv_ex(A)), _inv_ex_ref, _inv_ex_samples, F,
           op="linalg_inv_ex", out_dtype=lambda dt: (dt, fw.int32), tols=TOL),
    OpInfo("linalg.solve_ex", lambda A, B, **kw: tuple(L.solve_ex(A, B, **kw)),
           _solve_ex_ref, _solve_ex_samples, F, op="linalg_solve_ex",
           out_dtype=lambda dt: (dt, fw.int32), tols=TOL),
    OpInfo("linalg.cond", lambda A, **kw: L.cond(A, **kw), _cond_ref, _cond_samples, F,
           tols={fw.float32: (1e-3, 1e-3)}),
    OpInfo("linalg.vander", lambda x, **kw: L.vander(x, **kw), _vander_ref, _vander_samples,
           F + (fw.int64,), out_dtype=lambda dt: dt if dt.is_floating_point else fw.int64,
           tols=TOL),
    OpInfo("linalg.householder_product", lambda A, tau: L.householder_product(A, tau),
           _hh_ref, _hh_samples, F, tols=TOL),
)
