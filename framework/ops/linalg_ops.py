"""The registered linear-algebra primitives of ``fw.linalg`` (``torch.linalg`` semantics).

Eight ops, each with a meta rule, a VJP written with public ops (so backward runs on
traced values and is differentiable again) and a NumPy/LAPACK kernel in
``framework/backends/cpu_linalg.py``:

=================  =========================================  ==========================
op                 outputs                                    attrs
=================  =========================================  ==========================
``linalg_det``     ``det``                                    --
``linalg_slogdet`` ``(sign, logabsdet)``                      --
``linalg_inv``     ``A^-1``                                   --
``linalg_solve``   ``X`` with ``A X = B`` (B is ``(*, n, k)``)  --
``linalg_cholesky`` lower factor ``L``                        --
``linalg_qr``      ``(Q, R)``                                 ``mode``
``linalg_eigh``    ``(eigenvalues ascending, eigenvectors)``  ``UPLO``
``linalg_svd``     ``(U, S, Vh)``                             ``full_matrices``
=================  =========================================  ==========================

Inputs are float32/float64 or complex64/complex128 batches of matrices (leading dims are
batch dims; eigenvalues, singular values and ``logabsdet`` are real for complex input); the
public functions (``fw.linalg.det`` ...) check that and name the function and the bad
shape/dtype. The VJPs of complex input are PyTorch's (conjugate Wirtinger convention:
``mH`` where the real formulas have ``mT``); those of ``eigh``/``svd`` raise, as PyTorch,
when the loss depends on the phases of the complex eigen/singular vectors. On a CUDA
device the kernels run on a host copy (see ``cuda_ops.py``).
Failures of the factorization (a singular matrix for ``inv``/``solve``, a matrix that is
not positive-definite for ``cholesky``) raise :class:`LinAlgError` with PyTorch's message.
"""

# ruff: noqa: N803  (PyTorch's argument names: A, B, UPLO)
from __future__ import annotations

import numpy as np

from .._state import tls
from ..errors import (ArgumentError, AutogradError, DTypeError, FrameworkError, FwTypeError,
                      ShapeError)
from ..tensor import Tensor
from .linalg import matmul
from .math_extra import diag_embed, diagonal
from .movement import tril, triu
from .pointwise import sum_to_shape, where
from .registry import apply, register
from .shapes import broadcast_shapes

#: Op group of the linear-algebra primitives (opaque to the fusion pass).
LINALG = "linalg"


class LinAlgError(FrameworkError, RuntimeError):
    """A matrix the factorization cannot handle (singular, not positive-definite);
    ``torch.linalg.LinAlgError``."""


# ---------------------------------------------------------------------------------------
# argument checks (public functions) and meta rules
def check_matrix(A, fn: str, square: bool = True, name: str = "A",
                 complex_ok: bool = False) -> Tensor:
    """``A`` must be a float32/float64 (``complex_ok``: or complex64/complex128) tensor of
    shape ``(*, m, n)`` (``m == n`` when ``square``); raises a framework error naming
    ``fn`` otherwise."""
    if not isinstance(A, Tensor):
        raise FwTypeError(f"{fn}: expected a Tensor as {name}, got {type(A).__name__}")
    if complex_ok:
        if A.dtype.name not in ("float32", "float64", "complex64", "complex128"):
            raise DTypeError(f"{fn}: expected a float32, float64, complex64 or complex128 "
                             f"tensor as {name}, got {A.dtype.name}")
    elif A.dtype.name not in ("float32", "float64"):
        raise DTypeError(f"{fn}: expected a float32 or float64 tensor as {name} (other "
                         f"dtypes and complex numbers are not supported), got {A.dtype.name}")
    if A.ndim < 2:
        raise ShapeError(f"{fn}: {name} must have at least 2 dimensions, got shape "
                         f"{list(A.shape)}")
    if square and isinstance(A.shape[-1], int) and isinstance(A.shape[-2], int) \
            and A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{fn}: expected a batch of square matrices, got shape "
                         f"{list(A.shape)}")
    return A


def _square_meta(A, fn):
    check_matrix(A, fn, complex_ok=True)
    return A.shape, A.dtype


def _det_meta(A):
    check_matrix(A, "linalg.det", complex_ok=True)
    return A.shape[:-2], A.dtype


def _slogdet_meta(A):
    check_matrix(A, "linalg.slogdet", complex_ok=True)
    return (A.shape[:-2], A.dtype), (A.shape[:-2], A.dtype.to_real())


def _solve_meta(A, B):
    check_matrix(A, "linalg.solve", complex_ok=True)
    check_matrix(B, "linalg.solve", square=False, name="B", complex_ok=True)
    if A.dtype is not B.dtype:
        raise DTypeError(f"linalg.solve: expected A and B to have the same dtype, got "
                         f"{A.dtype.name} and {B.dtype.name}")
    n, m = A.shape[-1], B.shape[-2]
    if isinstance(n, int) and isinstance(m, int) and n != m:
        raise ShapeError(f"linalg.solve: incompatible shapes of A and B for the equation "
                         f"AX = B: A is {list(A.shape)}, B is {list(B.shape)}")
    batch = broadcast_shapes(A.shape[:-2], B.shape[:-2], "linalg.solve")
    return batch + B.shape[-2:], A.dtype


def _qr_meta(A, *, mode):
    check_matrix(A, "linalg.qr", square=False, complex_ok=True)
    m, n = A.shape[-2], A.shape[-1]
    k = min(m, n) if isinstance(m, int) and isinstance(n, int) else m
    b = A.shape[:-2]
    if mode == "reduced":
        return (b + (m, k), A.dtype), (b + (k, n), A.dtype)
    if mode == "complete":
        return (b + (m, m), A.dtype), (b + (m, n), A.dtype)
    if mode == "r":
        return ((0,), A.dtype), (b + (k, n), A.dtype)
    raise ArgumentError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")


def _eigh_meta(A, *, UPLO):
    check_matrix(A, "linalg.eigh", complex_ok=True)
    if UPLO not in ("L", "U"):
        raise ArgumentError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    return (A.shape[:-1], A.dtype.to_real()), (A.shape, A.dtype)


def _svd_meta(A, *, full_matrices):
    check_matrix(A, "linalg.svd", square=False, complex_ok=True)
    m, n = A.shape[-2], A.shape[-1]
    if not (isinstance(m, int) and isinstance(n, int)):
        raise ShapeError(f"linalg.svd: needs static matrix dims, got shape {list(A.shape)}")
    k, b, rt = min(m, n), A.shape[:-2], A.dtype.to_real()
    if full_matrices:
        return (b + (m, m), A.dtype), (b + (k,), rt), (b + (n, n), A.dtype)
    return (b + (m, k), A.dtype), (b + (k,), rt), (b + (k, n), A.dtype)


# ---------------------------------------------------------------------------------------
# VJPs (public ops only)
def _mat(v):
    """A batch of scalars ``(*,)`` as ``(*, 1, 1)``."""
    return v.unsqueeze(-1).unsqueeze(-1)


def _det_vjp(g, args, out):
    (A,) = args
    # d det = det * tr(A^-1 dA): grad = g * conj(det) * A^-H (g * det * A^-T for real A)
    return (_mat(g * out.conj()) * inv(A).mH,)


def _slogdet_vjp(grads, args, out):
    g_sign, g_logabs = grads
    (A,) = args
    g = g_logabs
    if A.dtype.is_complex:
        # d log det = tr(A^-1 dA): logabsdet moves with its real part, the phase of sign
        # with its imaginary part, so grad = (g_logabs + i Im(g_sign conj(sign))) A^-H
        from .complex_ops import complex, imag
        g = complex(g_logabs, imag(g_sign * out[0].conj()))
    return (_mat(g) * inv(A).mH,)


def _inv_vjp(g, args, out):
    return (-matmul(matmul(out.mH, g), out.mH),)


def _solve_vjp(g, args, out):
    A, B = args
    gB = solve_matrix(A.mH, g)  # mH: the conjugate transpose (mT for real A)
    gA = -matmul(gB, out.mH)
    return sum_to_shape(gA, A.shape), sum_to_shape(gB, B.shape)


def _phi(X):
    """The lower triangle of ``X`` with its diagonal halved."""
    return tril(X, -1) + diag_embed(diagonal(X, 0, -2, -1) * 0.5)


def _cholesky_vjp(g, args, out):
    # L^-H phi(L^H gL) L^-1, made Hermitian (symmetric for real input)
    L = out
    L_inv = inv(L)
    phi = _phi(matmul(L.mH, g))
    gA = matmul(matmul(L_inv.mH, phi), L_inv)
    return ((gA + gA.mH) * 0.5,)


def _syminvadj(X):
    """``X + X^H`` with the diagonal halved (so the diagonal is ``Re(diag(X))``)."""
    S = X + X.mH
    return S - diag_embed(diagonal(S, 0, -2, -1) * 0.5)


def _phase_check(d, fn, what):
    """PyTorch's check that a loss of complex eigen/singular vectors does not depend on
    their phases: ``Im(d)`` must be ~0 (``allclose(Im(d), 0, rtol=atol=1e-2)``). Skipped
    while tracing (the values are not known)."""
    if tls.tracer is None:
        im = np.abs(d.imag.detach()._host_array(fn))
        if im.size and im.max() > 1e-2:
            raise AutogradError(
                f"{fn}: The {what} in the complex case are specified up to multiplication "
                f"by e^{{i phi}}. The specified loss function depends on this quantity, so "
                f"it is ill-defined.")


def _qr_vjp(grads, args, out, mode):
    gQ, gR = grads
    (A,) = args
    Q, R = out
    m, n = A.shape[-2], A.shape[-1]
    if mode == "r":
        raise NotImplementedError("linalg.qr: the derivative of linalg.qr depends on Q, which "
                                  "is not computed when mode='r'. Use mode='reduced'")
    if m < n:
        raise NotImplementedError(f"linalg.qr: the backward is implemented for inputs with "
                                  f"rows >= columns only, got shape {list(A.shape)}")
    if mode == "complete" and m > n:
        raise NotImplementedError(f"linalg.qr: the QR decomposition is not differentiable "
                                  f"when mode='complete' and rows > columns (shape "
                                  f"{list(A.shape)})")
    # gA = [gQ + Q syminvadj(triu(gR R^H - Q^H gQ))] R^-H  (^T for real A)
    M = matmul(gR, R.mH) - matmul(Q.mH, gQ)
    gA = gQ + matmul(Q, _syminvadj(triu(M)))
    return (matmul(gA, inv(R).mH),)


def _eigh_vjp(grads, args, out, UPLO):
    gL, gV = grads
    L, V = out
    VhgV = matmul(V.mH, gV)
    if V.dtype.is_complex:
        _phase_check(diagonal(VhgV, 0, -2, -1), "linalg_eigh_backward", "eigenvectors")
    skew = (VhgV - VhgV.mH) * 0.5
    E = L.unsqueeze(-2) - L.unsqueeze(-1)  # E[i, j] = L[j] - L[i]
    off = E != 0
    F = where(off, skew / where(off, E, 1.0), 0.0)
    inner = F + diag_embed(gL)
    return (matmul(matmul(V, inner), V.mH),)


def _svd_vjp(grads, args, out, full_matrices):
    gU, gS, gVh = grads
    (A,) = args
    U, S, Vh = out
    m, n = A.shape[-2], A.shape[-1]
    k = min(m, n)
    if full_matrices and m != n:
        raise NotImplementedError(
            f"linalg.svd: the backward of full_matrices=True is not implemented for "
            f"non-square inputs (shape {list(A.shape)}); use full_matrices=False")
    V, gV = Vh.mH, gVh.mH
    UhgU = matmul(U.mH, gU)
    VhgV = matmul(V.mH, gV)
    cplx = A.dtype.is_complex
    if cplx:  # the loss must not depend on the phases: Im(diag(U^H gU + V^H gV)) ~ 0
        _phase_check(diagonal(UhgU + VhgV, 0, -2, -1), "svd_backward", "singular vectors")
    UhgU = UhgU - UhgU.mH
    VhgV = VhgV - VhgV.mH
    S2 = S * S
    E = S2.unsqueeze(-2) - S2.unsqueeze(-1)  # E[j, k] = S_k^2 - S_j^2
    off = E != 0
    num = UhgU * S.unsqueeze(-2) + S.unsqueeze(-1) * VhgV
    gA = where(off, num / where(off, E, 1.0), 0.0) + diag_embed(gS)
    if cplx:  # the diagonal of U^H gU - (U^H gU)^H is 2i Im(diag(U^H gU))
        gA = gA + diag_embed(diagonal(UhgU, 0, -2, -1) / (S * 2.0))
    if m > k:
        gA = matmul(U, gA)
        gUSinv = gU / S.unsqueeze(-2)
        gA = gA + gUSinv - matmul(U, matmul(U.mH, gUSinv))
        gA = matmul(gA, Vh)
    elif n > k:
        gA = matmul(gA, Vh)
        SinvgVh = gVh / S.unsqueeze(-1)
        gA = gA + SinvgVh - matmul(matmul(SinvgVh, V), Vh)
        gA = matmul(U, gA)
    else:
        gA = matmul(U, matmul(gA, Vh))
    return (gA,)


DET = register("linalg_det", LINALG, _det_meta, vjp=_det_vjp, saves_output=True,
               complex_ok=True)
SLOGDET = register("linalg_slogdet", LINALG, _slogdet_meta, vjp=_slogdet_vjp, num_outputs=2,
                   saves_output=True, complex_ok=True)
INV = register("linalg_inv", LINALG, lambda A: _square_meta(A, "linalg.inv"), vjp=_inv_vjp,
               saves_output=True, saves_args=(), complex_ok=True)
SOLVE = register("linalg_solve", LINALG, _solve_meta, vjp=_solve_vjp, saves_output=True,
                 saves_args=(0,), complex_ok=True)
CHOLESKY = register("linalg_cholesky", LINALG, lambda A: _square_meta(A, "linalg.cholesky"),
                    vjp=_cholesky_vjp, saves_output=True, saves_args=(), complex_ok=True)
QR = register("linalg_qr", LINALG, _qr_meta, vjp=_qr_vjp, num_outputs=2, saves_output=True,
              saves_args=(), complex_ok=True)
EIGH = register("linalg_eigh", LINALG, _eigh_meta, vjp=_eigh_vjp, num_outputs=2,
                saves_output=True, saves_args=(), complex_ok=True)
SVD = register("linalg_svd", LINALG, _svd_meta, vjp=_svd_vjp, num_outputs=3,
               saves_output=True, saves_args=(), complex_ok=True)


# ---------------------------------------------------------------------------------------
# public functions of the primitives (re-exported by fw.linalg)
def det(A) -> Tensor:
    """Determinant of each square matrix of ``A`` ``(*, n, n)`` -> ``(*)`` (LU; a singular
    matrix gives 0). The gradient is ``det * A^-T`` (needs ``A`` invertible)."""
    check_matrix(A, "linalg.det", complex_ok=True)
    return apply(DET, A)


def slogdet(A):
    """``(sign, logabsdet)`` of the determinant of each matrix of ``A`` (a named tuple;
    ``sign`` is 0 and ``logabsdet`` -inf for a singular matrix)."""
    from ..linalg import SlogdetResult
    check_matrix(A, "linalg.slogdet", complex_ok=True)
    return SlogdetResult(*apply(SLOGDET, A))


def inv(A) -> Tensor:
    """Inverse of each square matrix of ``A``; raises :class:`LinAlgError` for a singular
    matrix, naming the zero diagonal element of its LU factor as PyTorch does."""
    check_matrix(A, "linalg.inv", complex_ok=True)
    return apply(INV, A)


def solve_matrix(A, B) -> Tensor:
    """``X`` with ``A X = B`` for ``A (*, n, n)`` and ``B (*, n, k)`` (batch dims broadcast);
    the primitive behind :func:`framework.linalg.solve`."""
    return apply(SOLVE, A, B)


def cholesky(A, *, upper=False) -> Tensor:
    """Cholesky factor of each symmetric (complex: Hermitian) positive-definite matrix of
    ``A``: lower ``L`` with ``A = L L^H`` (only the lower triangle of ``A`` is read), or
    ``U = L^H`` with ``upper=True``. Raises :class:`LinAlgError` naming the leading minor
    that is not positive-definite. The gradient is symmetric (Hermitian)."""
    check_matrix(A, "linalg.cholesky", complex_ok=True)
    L = apply(CHOLESKY, A)
    return L.mH if upper else L


def qr(A, mode="reduced"):
    """QR decomposition ``(Q, R)`` of ``A (*, m, n)`` (Householder, LAPACK's signs): mode
    ``'reduced'`` (Q ``(*, m, k)``, R ``(*, k, n)``, ``k = min(m, n)``), ``'complete'``
    (Q ``(*, m, m)``) or ``'r'`` (Q empty). Differentiable for ``m >= n`` (not for
    ``'complete'`` with ``m > n``, nor ``'r'``)."""
    from ..linalg import QRResult
    check_matrix(A, "linalg.qr", square=False, complex_ok=True)
    return QRResult(*apply(QR, A, mode=mode))


def eigh(A, UPLO="L"):
    """``(eigenvalues, eigenvectors)`` of symmetric (complex: Hermitian) matrices
    (eigenvalues real and ascending, eigenvectors as columns); only the ``UPLO`` triangle of
    ``A`` is read. The signs (phases) of the eigenvectors are LAPACK's; the gradient is
    symmetric (Hermitian) in ``A``, needs distinct eigenvalues, and raises for a loss that
    depends on the phases of complex eigenvectors."""
    from ..linalg import EighResult
    check_matrix(A, "linalg.eigh", complex_ok=True)
    return EighResult(*apply(EIGH, A, UPLO=UPLO))


def eigvalsh(A, UPLO="L") -> Tensor:
    """Eigenvalues (ascending) of symmetric matrices; see :func:`eigh`."""
    return eigh(A, UPLO)[0]


def svd(A, full_matrices=True):
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` (singular values real, descending). The
    backward is implemented for ``full_matrices=False`` (or square inputs) and needs
    distinct singular values; ``U``/``Vh`` signs (phases) are LAPACK's, and for complex
    ``A`` a loss that depends on them raises."""
    from ..linalg import SVDResult
    check_matrix(A, "linalg.svd", square=False, complex_ok=True)
    return SVDResult(*apply(SVD, A, full_matrices=bool(full_matrices)))


def svdvals(A) -> Tensor:
    """Singular values (descending) of each matrix of ``A``."""
    check_matrix(A, "linalg.svdvals", square=False, complex_ok=True)
    return apply(SVD, A, full_matrices=False)[1]


__all__ = ["LINALG", "LinAlgError", "DET", "SLOGDET", "INV", "SOLVE", "CHOLESKY", "QR",
           "EIGH", "SVD", "check_matrix", "det", "slogdet", "inv", "solve_matrix", "cholesky",
           "qr", "eigh", "eigvalsh", "svd", "svdvals"]
