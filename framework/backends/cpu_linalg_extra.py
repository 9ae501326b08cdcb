"""NumPy kernels of the second set of linear-algebra ops (``framework/ops/linalg_extra_ops.py``):
triangular solves, the pivoted LU factorization, pivots -> permutations, the matrix
exponential and the ``*_ex`` variants of ``inv``/``solve``/``cholesky`` that report failures
in an ``info`` tensor instead of raising. The CUDA backend runs them on a host copy.

NumPy has no triangular solver or LU routine (and SciPy is not a dependency), so:

- ``linalg_solve_triangular`` masks the other triangle (and the diagonal, for unit-triangular
  systems) and calls LAPACK ``gesv``, which is backward stable on a triangular matrix; a
  zero on the diagonal makes ``gesv`` refuse, and the system is then solved by substitution
  so the result holds the IEEE ``inf``/``nan`` that PyTorch's ``trsm`` gives;
- ``linalg_lu_factor`` is LAPACK ``getf2``'s right-looking partial-pivoting sweep,
  vectorised over the batch (one Python step per column), with ``getrf``'s conventions:
  1-based int32 pivots and ``info`` = the first exactly-zero pivot;
- ``linalg_matrix_exp`` is scaling and squaring with Padé approximants of degree 3, 5, 7, 9
  or 13 chosen per matrix from its 1-norm (Higham, SIAM J. Matrix Anal. Appl. 26(4), 2005,
  Algorithm 2.3), computed in float64.
"""

# ruff: noqa: N803, N806  (PyTorch's / the papers' matrix names: A, B, LU, U, V)
from __future__ import annotations

import numpy as np

from ..ops.linalg_ops import LinAlgError
from .cpu import impl
from .cpu_linalg import _batch_prefix, first_bad_minor, first_zero_pivot


def _broadcast_pair(A, B):
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    return (np.broadcast_to(A, batch + A.shape[-2:]),
            np.broadcast_to(B, batch + B.shape[-2:]))


def _substitute(T, B, upper):
    """``T^-1 B`` by forward/back substitution over broadcast batches (IEEE inf/nan for a
    zero diagonal, as BLAS ``trsm``)."""
    n = T.shape[-1]
    X = np.array(B, dtype=np.result_type(T, B), copy=True)
    order = range(n - 1, -1, -1) if upper else range(n)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i in order:
            others = slice(i + 1, n) if upper else slice(0, i)
            row = T[..., i, others]
            acc = np.einsum("...j,...jk->...k", row, X[..., others, :])
            X[..., i, :] = (X[..., i, :] - acc) / T[..., i, i, None]
    return X


@impl("linalg_solve_triangular")
def _solve_triangular(A, B, upper, unitriangular):
    """``X`` with ``T X = B`` for the ``upper``/lower triangle ``T`` of ``A`` (unit diagonal
    when ``unitriangular``), over broadcast batch dims."""
    A, B = _broadcast_pair(A, B)
    T = np.triu(A) if upper else np.tril(A)
    if unitriangular:
        T = T.copy()
        idx = np.arange(T.shape[-1])
        T[..., idx, idx] = 1
    if T.size == 0 or B.size == 0:
        return np.zeros(B.shape, A.dtype)
    try:
        return np.linalg.solve(T, B)
    except np.linalg.LinAlgError:
        return _substitute(T, B, upper)


def lu_factor_np(A):
    """``(LU, pivots, info)`` of ``A (*, m, n)``: ``P L U = A`` packed as LAPACK getrf (unit
    lower ``L`` below the diagonal, ``U`` on and above it), 1-based int32 ``pivots (*, k)``
    (row ``i`` was swapped with row ``pivots[i] - 1``) and int32 ``info (*)``: the 1-based
    index of the first exactly-zero pivot, 0 if none."""
    batch, (m, n) = A.shape[:-2], A.shape[-2:]
    k = min(m, n)
    nb = int(np.prod(batch, dtype=np.int64))
    LU = np.array(A, copy=True).reshape((nb, m, n))
    piv = np.empty((nb, k), np.int32)
    info = np.zeros((nb,), np.int32)
    rows = np.arange(nb)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j in range(k):
            p = j + np.argmax(np.abs(LU[:, j:, j]), axis=1) if nb else np.zeros(0, int)
            piv[:, j] = p + 1
            top = LU[rows, j].copy()
            LU[rows, j] = LU[rows, p]
            LU[rows, p] = top
            d = LU[:, j, j]
            zero = d == 0
            info[(info == 0) & zero] = j + 1
            mult = LU[:, j + 1:, j] / np.where(zero, 1, d)[:, None]
            LU[:, j + 1:, j] = mult
            LU[:, j + 1:, j + 1:] -= mult[:, :, None] * LU[:, j, None, j + 1:]
    return LU.reshape(A.shape), piv.reshape(batch + (k,)), info.reshape(batch)


def _lu_error(info, nd):
    """PyTorch's message for the first matrix whose ``U`` has a zero on its diagonal."""
    flat = info.reshape(-1)
    b = int(np.flatnonzero(flat)[0])
    k = int(flat[b])
    where = f"(Batch element {b}): " if nd > 2 else ""
    return LinAlgError(f"linalg.lu_factor: {where}U[{k},{k}] is zero and using it on lu_solve "
                       f"would result in a division by zero. If you still want to perform "
                       f"the factorization, consider calling linalg.lu(A, pivot) or "
                       f"linalg.lu_factor_ex(A, pivot)")


@impl("linalg_lu_factor")
def _lu_factor(A, check_errors):
    """Partial-pivoting LU (LAPACK getrf conventions); ``check_errors`` raises for a
    matrix with a zero pivot."""
    LU, piv, info = lu_factor_np(A)
    if check_errors and info.any():
        raise _lu_error(info, A.ndim)
    return LU, piv, info


@impl("linalg_lu_permutation")
def _lu_permutation(pivots, m):
    """The row permutation ``perm (*, m)`` (int64) of LAPACK ``pivots (*, k)``: row ``i`` of
    ``L U`` is row ``perm[i]`` of ``A``."""
    batch, k = pivots.shape[:-1], pivots.shape[-1]
    nb = int(np.prod(batch, dtype=np.int64))
    perm = np.broadcast_to(np.arange(m, dtype=np.int64), (nb, m)).copy()
    piv = pivots.reshape(nb, k).astype(np.int64) - 1
    if piv.size and (piv.min() < 0 or piv.max() >= m):
        raise LinAlgError(f"lu_unpack: pivots must be between 1 and {m} (the number of rows "
                          f"of LU), got values from {piv.min() + 1} to {piv.max() + 1}")
    rows = np.arange(perm.shape[0])
    for i in range(k):
        p = piv[:, i]
        a = perm[:, i].copy()
        perm[:, i] = perm[rows, p]
        perm[rows, p] = a
    return perm.reshape(batch + (m,))


# -- matrix exponential (Higham 2005) --------------------------------------------------------
_THETA = {3: 1.495585217958292e-2, 5: 2.539398330063230e-1, 7: 9.504178996162932e-1,
          9: 2.097847961257068e0, 13: 5.371920351148152e0}
_PADE = {
    3: (120., 60., 12., 1.),
    5: (30240., 15120., 3360., 420., 30., 1.),
    7: (17297280., 8648640., 1995840., 277200., 25200., 1512., 56., 1.),
    9: (17643225600., 8821612800., 2075673600., 302702400., 30270240., 2162160., 110880.,
        3960., 90., 1.),
    13: (64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800.,
         129060195264000., 10559470521600., 670442572800., 33522128640., 1323241920.,
         40840800., 960960., 16380., 182., 1.)}


def _pade(A, m):
    """``r_m(A)`` for a batch ``A (b, n, n)`` of float64 (complex128) matrices."""
    b = _PADE[m]
    ident = np.broadcast_to(np.eye(A.shape[-1]), A.shape)
    A2 = A @ A
    if m == 13:
        A4 = A2 @ A2
        A6 = A4 @ A2
        U = A @ (A6 @ (b[13] * A6 + b[11] * A4 + b[9] * A2)
                 + b[7] * A6 + b[5] * A4 + b[3] * A2 + b[1] * ident)
        V = A6 @ (b[12] * A6 + b[10] * A4 + b[8] * A2) + b[6] * A6 + b[4] * A4 \
            + b[2] * A2 + b[0] * ident
    else:
        powers = [ident, A2]
        for _ in range(2, m // 2 + 1):
            powers.append(powers[-1] @ A2)
        U = A @ sum(b[2 * j + 1] * P for j, P in enumerate(powers))
        V = sum(b[2 * j] * P for j, P in enumerate(powers))
    return np.linalg.solve(V - U, V + U)


@impl("linalg_matrix_exp")
def _matrix_exp(A):
    """``exp(A)`` per matrix (float64 inside, complex128 for complex ``A``); non-finite
    inputs give NaN matrices."""
    n = A.shape[-1]
    if A.size == 0:
        return np.zeros(A.shape, A.dtype)
    X = A.astype(np.result_type(A.dtype, np.float64)).reshape((-1, n, n))
    norm = np.abs(X).sum(axis=-2).max(axis=-1)  # 1-norm per matrix
    finite = np.isfinite(norm)
    norm = np.where(finite, norm, 0.0)
    degree = np.full(norm.shape, 13)
    for m in (9, 7, 5, 3):
        degree[norm <= _THETA[m]] = m
    with np.errstate(divide="ignore"):
        s = np.where(degree == 13, np.ceil(np.log2(np.maximum(norm, 1e-300) / _THETA[13])), 0)
    s = np.maximum(s, 0).astype(np.int64)
    out = np.empty_like(X)
    for m, sq in {(int(a), int(b)) for a, b in zip(degree, s)}:
        sel = (degree == m) & (s == sq)
        R = _pade(X[sel] / 2.0 ** sq, m)
        for _ in range(sq):
            R = R @ R
        out[sel] = R
    out[~finite] = np.nan
    return out.reshape(A.shape).astype(A.dtype, copy=False)


# -- the *_ex variants: failures reported in info ----------------------------------------------
def _per_matrix(A, compute, find_info, out_shape):
    """Run ``compute`` on each matrix of ``A`` (the batched call failed): ``(out, info)``
    with NaN results and ``find_info``'s index for the matrices LAPACK refuses."""
    out = np.full(out_shape, np.nan, A.dtype)
    info = np.zeros(A.shape[:-2], np.int32)
    for idx in np.ndindex(*A.shape[:-2]):
        try:
            out[idx] = compute(idx)
        except np.linalg.LinAlgError:
            info[idx] = find_info(A[idx]) or 1
    return out, info


def _ex_variant(name, A, compute, find_info, out_shape, check_errors, reason):
    """The ``*_ex`` pattern: ``compute(...)`` on the whole batch, ``info`` all zeros; if
    LAPACK refuses a matrix, ``compute(idx)`` per matrix (see :func:`_per_matrix`). With
    ``check_errors`` the first failure raises ``LinAlgError("<name>: <batch
    prefix><reason(code)>")``, ``code`` being that matrix's info."""
    try:
        return compute(...), np.zeros(A.shape[:-2], np.int32)
    except np.linalg.LinAlgError:
        pass
    out, info = _per_matrix(A, compute, find_info, out_shape)
    if check_errors:
        idx = np.unravel_index(int(np.flatnonzero(info)[0]), info.shape)
        raise LinAlgError(f"{name}: {_batch_prefix(A, idx)}{reason(int(info[idx]))}")
    return out, info


@impl("linalg_inv_ex")
def _inv_ex(A, check_errors):
    """``(inverse, info)``; ``info`` is getrf's first zero pivot (the inverse of such a
    matrix is NaN-filled here)."""
    return _ex_variant("linalg.inv_ex", A, lambda i: np.linalg.inv(A[i]), first_zero_pivot,
                       A.shape, check_errors,
                       lambda code: f"The diagonal element {code} is zero, the inversion "
                                    "could not be completed because the input matrix is "
                                    "singular.")


@impl("linalg_solve_ex")
def _solve_ex(A, B, check_errors):
    """``(X, info)`` with ``A X = B`` (``info`` as :func:`_inv_ex`; NaN-filled ``X`` for a
    singular ``A``)."""
    A, B = _broadcast_pair(A, B)
    if A.size == 0 or B.size == 0:
        return np.zeros(B.shape, A.dtype), np.zeros(A.shape[:-2], np.int32)
    return _ex_variant("linalg.solve_ex", A, lambda i: np.linalg.solve(A[i], B[i]),
                       first_zero_pivot, B.shape, check_errors,
                       lambda code: "The solver failed because the input matrix is singular.")


@impl("linalg_cholesky_ex")
def _cholesky_ex(A, check_errors):
    """``(L, info)``: ``info`` is potrf's order of the first leading minor that is not
    positive-definite (``L`` of such a matrix is NaN-filled here)."""
    return _ex_variant("linalg.cholesky_ex", A, lambda i: np.linalg.cholesky(A[i]),
                       first_bad_minor, A.shape, check_errors,
                       lambda code: "The factorization could not be completed because the "
                                    "input is not positive-definite (the leading minor of "
                                    f"order {code} is not positive-definite).")


__all__ = ["lu_factor_np"]
