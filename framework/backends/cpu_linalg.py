"""NumPy (LAPACK) kernels of the linear-algebra ops (``framework/ops/linalg_ops.py``),
registered into the CPU backend's table; the CUDA backend runs the same functions on a
host copy of its buffers (``cuda_ops.py``).

Results keep the input's dtype (NumPy's LAPACK wrappers compute float32 in float32).
A singular matrix (``inv``, ``solve``) or one that is not positive-definite
(``cholesky``) raises :class:`~framework.ops.linalg_ops.LinAlgError` with PyTorch's
message; the index in it comes from a plain partial-pivoting LU / Cholesky sweep that runs
only on that error path, with LAPACK's conventions (1-based, first failure).
"""

# ruff: noqa: N803  (PyTorch's argument names: A, B, UPLO)
from __future__ import annotations

import numpy as np

from ..ops.linalg_ops import LinAlgError
from .cpu import IMPLS, impl


def _batch_items(A):
    """(batch index tuple, matrix) pairs of ``A (*, m, n)``."""
    for idx in np.ndindex(*A.shape[:-2]):
        yield idx, A[idx]


def _batch_prefix(A, idx):
    return f"(Batch element {int(np.ravel_multi_index(idx, A.shape[:-2]))}): " \
        if A.ndim > 2 else ""


def first_zero_pivot(M) -> int:
    """1-based index of the first exactly-zero diagonal element of ``U`` in the partial
    pivoting LU of the square matrix ``M`` (LAPACK getrf's ``info``), 0 if there is none."""
    U = np.array(M, dtype=np.result_type(M.dtype, np.float64), copy=True)
    n = U.shape[0]
    first = 0
    for j in range(n):
        p = j + int(np.argmax(np.abs(U[j:, j])))
        if p != j:
            U[[j, p]] = U[[p, j]]
        if U[j, j] == 0:
            first = first or j + 1
            continue
        U[j + 1:, j:] -= np.outer(U[j + 1:, j] / U[j, j], U[j, j:])
    return first


def first_bad_minor(M) -> int:
    """1-based order of the first leading minor of the symmetric (Hermitian) matrix ``M``
    (lower triangle read) that is not positive-definite (LAPACK potrf's ``info``), 0 if
    none."""
    L = np.tril(np.array(M, dtype=np.result_type(M.dtype, np.float64), copy=True))
    L = L + np.tril(L, -1).conj().T
    n = L.shape[0]
    for j in range(n):
        d = (L[j, j] - L[j, :j] @ L[j, :j].conj()).real
        if not d > 0:  # also NaN
            return j + 1
        L[j, j] = np.sqrt(d)
        L[j + 1:, j] = (L[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return 0


def _singular_error(A, fn, msg):
    for idx, M in _batch_items(A):
        k = first_zero_pivot(M)
        if k:
            return LinAlgError(f"{fn}: {_batch_prefix(A, idx)}" + msg.format(k=k))
    return LinAlgError(f"{fn}: " + msg.format(k="?"))


@impl("linalg_det")
def _det(A):
    """Determinants (LAPACK getrf)."""
    return np.linalg.det(A).astype(A.dtype, copy=False)


@impl("linalg_slogdet")
def _slogdet(A):
    """``(sign, logabsdet)`` (complex ``A``: a complex sign of modulus 1, a real
    logabsdet)."""
    sign, logabs = np.linalg.slogdet(A)
    real = np.zeros((), A.dtype).real.dtype
    return sign.astype(A.dtype, copy=False), logabs.astype(real, copy=False)


@impl("linalg_inv")
def _inv(A):
    """Inverses (LAPACK getrf + getri); a singular matrix raises LinAlgError."""
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        raise _singular_error(A, "linalg.inv", "The diagonal element {k} is zero, the "
                              "inversion could not be completed because the input matrix "
                              "is singular.") from None


@impl("linalg_solve")
def _solve(A, B):
    """``X`` with ``A X = B`` (LAPACK gesv) over broadcast batch dims."""
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    A = np.broadcast_to(A, batch + A.shape[-2:])
    B = np.broadcast_to(B, batch + B.shape[-2:])
    if A.size == 0 or B.size == 0:
        return np.zeros(B.shape, A.dtype)
    try:
        return np.linalg.solve(A, B)
    except np.linalg.LinAlgError:
        k = next((first_zero_pivot(M) for _, M in _batch_items(A) if first_zero_pivot(M)),
                 None)
        where = f" (the diagonal element {k} of its LU factor is zero)" if k else ""
        raise LinAlgError(f"linalg.solve: The solver failed because the input matrix is "
                          f"singular{where}.") from None


@impl("linalg_cholesky")
def _cholesky(A):
    """Lower Cholesky factors (LAPACK potrf on the lower triangle)."""
    try:
        return np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        for idx, M in _batch_items(A):
            k = first_bad_minor(M)
            if k:
                raise LinAlgError(
                    f"linalg.cholesky: {_batch_prefix(A, idx)}The factorization could not be "
                    f"completed because the input is not positive-definite (the leading "
                    f"minor of order {k} is not positive-definite).") from None
        raise LinAlgError("linalg.cholesky: The factorization could not be completed because "
                          "the input is not positive-definite.") from None


@impl("linalg_qr")
def _qr(A, mode):
    """``(Q, R)`` (LAPACK geqrf + orgqr); ``mode='r'`` gives an empty Q."""
    if mode == "r":
        return np.zeros((0,), A.dtype), np.linalg.qr(A, mode="r")
    Q, R = np.linalg.qr(A, mode=mode)
    return Q, R


@impl("linalg_eigh")
def _eigh(A, UPLO):
    """``(eigenvalues ascending, eigenvectors)`` (LAPACK syevd)."""
    w, V = np.linalg.eigh(A, UPLO=UPLO)
    return w, V


@impl("linalg_eig")
def _eig(A):
    """``(eigenvalues, eigenvectors)`` of general matrices (LAPACK geev), always complex."""
    ct = np.complex64 if A.dtype in (np.float32, np.complex64) else np.complex128
    if A.size == 0:
        return np.zeros(A.shape[:-1], ct), np.zeros(A.shape, ct)
    if not np.isfinite(A).all():
        raise LinAlgError("linalg.eig: input tensor should not contain infs or NaNs.")
    try:
        w, V = np.linalg.eig(A)
    except np.linalg.LinAlgError:
        raise LinAlgError("linalg.eig: The algorithm failed to converge because the input "
                          "matrix is ill-conditioned or has too many repeated eigenvalues "
                          "(error code: LAPACK geev).") from None
    return w.astype(ct, copy=False), V.astype(ct, copy=False)


@impl("linalg_svd")
def _svd(A, full_matrices):
    """``(U, S, Vh)`` (LAPACK gesdd)."""
    m, n = A.shape[-2:]
    if A.size == 0:  # LAPACK needs at least one element; U/Vh are identity blocks
        k, b = min(m, n), A.shape[:-2]
        cu, rv = (m, n) if full_matrices else (k, k)
        U = np.broadcast_to(np.eye(m, cu, dtype=A.dtype), b + (m, cu)).copy()
        Vh = np.broadcast_to(np.eye(rv, n, dtype=A.dtype), b + (rv, n)).copy()
        return U, np.zeros(b + (k,), A.dtype), Vh
    U, S, Vh = np.linalg.svd(A, full_matrices=full_matrices)
    return U, S, Vh


__all__ = ["IMPLS", "first_zero_pivot", "first_bad_minor"]

from . import cpu_linalg_extra  # noqa: E402,F401  (solve_triangular, lu, matrix_exp, *_ex)
