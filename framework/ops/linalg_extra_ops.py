"""The second set of ``fw.linalg`` primitives (``torch.linalg`` semantics) and the functions
built on them: triangular solves, the LU factorization and its solver, the matrix
exponential and the ``*_ex`` variants that report failures in an ``info`` tensor.

===========================  ===========================================  ===================
op                           outputs                                      attrs
===========================  ===========================================  ===================
``linalg_solve_triangular``  ``X`` with ``T X = B`` (T: a triangle of A)  ``upper``,
                                                                          ``unitriangular``
``linalg_lu_factor``         ``(LU, pivots int32, info int32)``           ``check_errors``
``linalg_lu_permutation``    ``perm (*, m)`` int64 of ``pivots``          ``m``
``linalg_matrix_exp``        ``exp(A)``                                   --
``linalg_cholesky_ex``       ``(L, info)``                                ``check_errors``
``linalg_inv_ex``            ``(A^-1, info)``                             ``check_errors``
``linalg_solve_ex``          ``(X, info)`` with ``A X = B``               ``check_errors``
===========================  ===========================================  ===================

The NumPy kernels are in ``framework/backends/cpu_linalg_extra.py`` (on "cuda" they run on a
host copy); the VJPs are written with public ops, so they differentiate again. ``lu``,
``lu_unpack`` and ``lu_solve`` are compositions (the permutation matrix is a comparison of
``perm`` with an ``arange``; the solves are two triangular solves reading the packed
``LU``), so their gradients come from the primitives'. The ``*_ex`` functions never raise
for a singular / not positive-definite matrix unless ``check_errors=True``: ``info`` holds
LAPACK's index (0: success) and the result of a failed matrix is NaN-filled. The module also
has PyTorch's top-level spellings (``fw.matrix_exp``, ``fw.triangular_solve``,
``fw.lu_unpack``, ``fw.lu``, ``fw.lu_solve``) and their Tensor methods.
"""

# ruff: noqa: N803, N806  (PyTorch's argument names: A, B, LU, LU_data, LU_pivots)
from __future__ import annotations

from collections import namedtuple

from .. import dtypes
from ..errors import DTypeError, FwTypeError, ShapeError
from ..tensor import Tensor
from .creation_ops import arange
from .linalg import matmul
from .linalg_ops import LINALG, _cholesky_vjp, _inv_vjp, _solve_vjp, check_matrix
from .movement import cat, tril, triu
from .pointwise import sum_to_shape
from .registry import apply, register
from .shapes import broadcast_shapes

__all__ = ["matrix_exp", "triangular_solve", "lu_unpack", "lu", "lu_solve"]
METHODS = "matrix_exp triangular_solve lu lu_solve"  # names of __all__ that are Tensor methods
INPLACE_METHODS = ""

LUFactorResult = namedtuple("linalg_lu_factor", ["LU", "pivots"])
LUFactorExResult = namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LUResult = namedtuple("linalg_lu", ["P", "L", "U"])
LUUnpackResult = namedtuple("lu_unpack", ["P", "L", "U"])
CholeskyExResult = namedtuple("linalg_cholesky_ex", ["L", "info"])
InvExResult = namedtuple("linalg_inv_ex", ["inverse", "info"])
SolveExResult = namedtuple("linalg_solve_ex", ["result", "info"])
TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])


def _eye(n, m, like):
    from ..creation import eye
    return eye(n, m, dtype=like.dtype, device=like.device)


def _same_dtype(A, B, fn, names=("A", "B")):
    if not isinstance(B, Tensor):
        raise FwTypeError(f"{fn}: expected a Tensor as {names[1]}, got {type(B).__name__}")
    if A.dtype is not B.dtype:
        raise DTypeError(f"{fn}: expected {names[0]} and {names[1]} to have the same dtype, "
                         f"got {A.dtype.name} and {B.dtype.name}")


def _rhs_check(A, B, fn, left=True):
    """``B (*, n, k)`` fits the square ``A (*, n, n)`` in ``AX = B`` (``XA = B``)."""
    check_matrix(B, fn, square=False, name="B", complex_ok=True)  # A's check gates complex
    n, m = A.shape[-1], B.shape[-2] if left else B.shape[-1]
    if isinstance(n, int) and isinstance(m, int) and n != m:
        eq = "AX = B" if left else "XA = B"
        raise ShapeError(f"{fn}: Incompatible shapes of A and B for the equation {eq} "
                         f"({'x'.join(map(str, A.shape[-2:]))} and "
                         f"{'x'.join(map(str, B.shape[-2:]))})")
    broadcast_shapes(A.shape[:-2], B.shape[:-2], fn)


# ---------------------------------------------------------------------------------------
# meta rules
def _solve_triangular_meta(A, B, *, upper, unitriangular):
    fn = "linalg.solve_triangular"
    check_matrix(A, fn, complex_ok=True)
    _same_dtype(A, B, fn)
    _rhs_check(A, B, fn)
    return broadcast_shapes(A.shape[:-2], B.shape[:-2], fn) + B.shape[-2:], A.dtype


def _lu_factor_meta(A, *, check_errors):
    check_matrix(A, "linalg.lu_factor", square=False)
    m, n = A.shape[-2], A.shape[-1]
    k = min(m, n) if isinstance(m, int) and isinstance(n, int) else m
    b = A.shape[:-2]
    return (A.shape, A.dtype), (b + (k,), dtypes.int32), (b, dtypes.int32)


def _lu_permutation_meta(pivots, *, m):
    if not isinstance(pivots, Tensor) or pivots.dtype.name not in ("int32", "int64") \
            or pivots.ndim < 1:
        raise DTypeError(f"lu_unpack: expected LU_pivots to be an int32 tensor with at least "
                         f"one dimension, got {getattr(pivots, 'dtype', type(pivots))}")
    return pivots.shape[:-1] + (m,), dtypes.int64


def _matrix_exp_meta(A):
    check_matrix(A, "linalg.matrix_exp", complex_ok=True)
    return A.shape, A.dtype


def _ex_meta(fn):
    def meta(A, *, check_errors):
        check_matrix(A, fn, complex_ok=True)
        return (A.shape, A.dtype), (A.shape[:-2], dtypes.int32)
    return meta


def _solve_ex_meta(A, B, *, check_errors):
    fn = "linalg.solve_ex"
    check_matrix(A, fn, complex_ok=True)
    _same_dtype(A, B, fn)
    _rhs_check(A, B, fn)
    batch = broadcast_shapes(A.shape[:-2], B.shape[:-2], fn)
    return (batch + B.shape[-2:], A.dtype), (batch, dtypes.int32)


# ---------------------------------------------------------------------------------------
# VJPs (public ops only)
def _solve_triangular_vjp(g, args, out, upper, unitriangular):
    A, B = args
    # X = T^-1 B: gB = T^-H g, gT = -gB X^H restricted to the triangle that was read
    gB = solve_triangular(A.mH, g, upper=not upper, unitriangular=unitriangular)
    gA = -matmul(gB, out.mH)
    off = 1 if unitriangular else 0
    gA = triu(gA, off) if upper else tril(gA, -off)
    return sum_to_shape(gA, A.shape), sum_to_shape(gB, B.shape)


def _lu_factor_vjp(grads, args, out, check_errors):
    """PyTorch's ``linalg_lu_backward`` (square, wide and tall cases) for ``A = P L U``."""
    gLU = grads[0]
    LU, pivots, _ = out
    m, n = LU.shape[-2], LU.shape[-1]
    k = min(m, n)
    P, L, U = lu_unpack(LU, pivots)
    gL = tril(gLU, -1)[..., :, :k]
    gU = triu(gLU)[..., :k, :]
    if m == n:
        # P L^-T [tril(L^T gL, -1) + triu(gU U^T)] U^-T
        X = tril(matmul(L.mT, gL), -1) + triu(matmul(gU, U.mT))
        X = solve_triangular(U.mT, X, upper=False, left=False)
        X = solve_triangular(L.mT, X, upper=True, unitriangular=True)
    elif m < n:
        X = tril(matmul(L.mT, gL) - matmul(gU, U.mT), -1)
        X = solve_triangular(U[..., :, :m].mT, X, upper=False, left=False)
        X = cat([X + gU[..., :, :m], gU[..., :, m:]], -1)
        X = solve_triangular(L.mT, X, upper=True, unitriangular=True)
    else:
        X = triu(matmul(gU, U.mT) - matmul(L.mT, gL))
        X = solve_triangular(L[..., :n, :].mT, X, upper=True, unitriangular=True)
        X = cat([X + gL[..., :n, :], gL[..., n:, :]], -2)
        X = solve_triangular(U.mT, X, upper=False, left=False)
    return (matmul(P, X),)


def _matrix_exp_vjp(g, args, out):
    # the Frechet derivative at A^H applied to g: exp([[A^H, g], [0, A^H]])[:n, n:]
    (A,) = args
    n = A.shape[-1]
    At = A.mH
    top = cat([At, g], -1)
    bottom = cat([At * 0.0, At], -1)
    return (matrix_exp(cat([top, bottom], -2))[..., :n, n:],)


def _first_vjp(vjp):
    """A single-output VJP applied to output 0 of an ``(result, info)`` op."""
    def rule(grads, args, out, check_errors):
        return vjp(grads[0], args, out[0])
    rule.__name__ = vjp.__name__ + "_ex"
    return rule


SOLVE_TRIANGULAR = register("linalg_solve_triangular", LINALG, _solve_triangular_meta,
                            vjp=_solve_triangular_vjp, saves_output=True, saves_args=(0,),
                            complex_ok=True)
LU_FACTOR = register("linalg_lu_factor", LINALG, _lu_factor_meta, vjp=_lu_factor_vjp,
                     num_outputs=3, saves_output=True, saves_args=())
LU_PERMUTATION = register("linalg_lu_permutation", LINALG, _lu_permutation_meta)
MATRIX_EXP = register("linalg_matrix_exp", LINALG, _matrix_exp_meta, vjp=_matrix_exp_vjp,
                      complex_ok=True)
CHOLESKY_EX = register("linalg_cholesky_ex", LINALG, _ex_meta("linalg.cholesky_ex"),
                       vjp=_first_vjp(_cholesky_vjp), num_outputs=2, saves_output=True,
                       saves_args=(), complex_ok=True)
INV_EX = register("linalg_inv_ex", LINALG, _ex_meta("linalg.inv_ex"), vjp=_first_vjp(_inv_vjp),
                  num_outputs=2, saves_output=True, saves_args=(), complex_ok=True)
SOLVE_EX = register("linalg_solve_ex", LINALG, _solve_ex_meta, vjp=_first_vjp(_solve_vjp),
                    num_outputs=2, saves_output=True, saves_args=(0,), complex_ok=True)


# ---------------------------------------------------------------------------------------
# fw.linalg functions
def solve_triangular(A, B, *, upper, left=True, unitriangular=False) -> Tensor:
    """``X`` with ``A X = B`` (``left=False``: ``X A = B``) for a triangular ``A (*, n, n)``:
    only its upper (``upper=True``) or lower triangle is read, and with ``unitriangular``
    its diagonal is taken to be ones. ``B`` is ``(*, n, k)`` (``(*, k, n)`` when
    ``left=False``); batch dims broadcast. A zero on the diagonal gives ``inf``/``nan``, as
    PyTorch (no error is raised)."""
    fn = "linalg.solve_triangular"
    check_matrix(A, fn, complex_ok=True)
    _same_dtype(A, B, fn)
    _rhs_check(A, B, fn, left)
    if not left:
        return apply(SOLVE_TRIANGULAR, A.mT, B.mT, upper=not upper,
                     unitriangular=bool(unitriangular)).mT
    return apply(SOLVE_TRIANGULAR, A, B, upper=bool(upper), unitriangular=bool(unitriangular))


def _check_pivot(pivot, fn):
    if not pivot:
        raise NotImplementedError(f"{fn}: LU without pivoting is not implemented (PyTorch has "
                                  f"it only on CUDA); use pivot=True")


def lu_factor_ex(A, *, pivot=True, check_errors=False):
    """``(LU, pivots, info)``: the partial-pivoting LU factorization ``A = P L U`` of
    ``A (*, m, n)`` packed as LAPACK getrf (``L`` unit lower below the diagonal, ``U`` on and
    above it), 1-based int32 ``pivots (*, min(m, n))`` and int32 ``info`` (the 1-based
    index of the first zero on ``U``'s diagonal, 0 if none). A singular matrix raises only
    with ``check_errors=True``. Differentiable in ``A`` (square full-rank, wide and tall
    inputs, as PyTorch)."""
    check_matrix(A, "linalg.lu_factor_ex", square=False)
    _check_pivot(pivot, "linalg.lu_factor_ex")
    return LUFactorExResult(*apply(LU_FACTOR, A, check_errors=bool(check_errors)))


def lu_factor(A, *, pivot=True):
    """``(LU, pivots)`` of :func:`lu_factor_ex`; raises :class:`LinAlgError` when ``U`` has
    a zero on its diagonal (a singular matrix), as PyTorch."""
    check_matrix(A, "linalg.lu_factor", square=False)
    _check_pivot(pivot, "linalg.lu_factor")
    LU, pivots, _ = apply(LU_FACTOR, A, check_errors=True)
    return LUFactorResult(LU, pivots)


def linalg_lu(A, *, pivot=True):
    """``(P, L, U)`` with ``A = P L U`` (``fw.linalg.lu``): ``P (*, m, m)`` a permutation
    matrix, ``L (*, m, k)`` unit lower and ``U (*, k, n)`` upper triangular, ``k = min(m,
    n)``. Works for singular matrices (no error) and differentiates as ``lu_factor``."""
    check_matrix(A, "linalg.lu", square=False)
    _check_pivot(pivot, "linalg.lu")
    LU, pivots, _ = apply(LU_FACTOR, A, check_errors=False)
    return LUResult(*lu_unpack(LU, pivots))


def _permutation(pivots, m, like):
    """The permutation matrix ``P (*, m, m)`` of ``pivots`` (``P[r, c] = perm[c] == r``)."""
    perm = apply(LU_PERMUTATION, pivots, m=m)
    rows = arange(m, device=like.device).unsqueeze(-1)
    return (perm.unsqueeze(-2) == rows).to(like.dtype)


def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):
    """``(P, L, U)`` from the packed output of :func:`lu_factor` (``torch.lu_unpack``).
    ``unpack_data=False`` gives empty ``L``/``U``, ``unpack_pivots=False`` an empty ``P``.
    Differentiable in ``LU_data``."""
    fn = "lu_unpack"
    check_matrix(LU_data, fn, square=False, name="LU_data")
    if not isinstance(LU_pivots, Tensor) or LU_pivots.dtype.name not in ("int32", "int64"):
        raise DTypeError(f"{fn}: LU_pivots is expected to be a tensor of int32 dtype, got "
                         f"{getattr(LU_pivots, 'dtype', type(LU_pivots).__name__)}")
    m, n = LU_data.shape[-2], LU_data.shape[-1]
    k = min(m, n)
    if tuple(LU_pivots.shape) != tuple(LU_data.shape[:-2]) + (k,):
        raise ShapeError(f"{fn}: expected LU_pivots of shape {list(LU_data.shape[:-2]) + [k]} "
                         f"for LU_data of shape {list(LU_data.shape)}, got "
                         f"{list(LU_pivots.shape)}")
    empty = LU_data.new_zeros((0,))
    P = _permutation(LU_pivots, m, LU_data) if unpack_pivots else empty
    if not unpack_data:
        return LUUnpackResult(P, empty, empty)
    L = tril(LU_data, -1)[..., :, :k] + _eye(m, k, LU_data)
    U = triu(LU_data)[..., :k, :]
    return LUUnpackResult(P, L, U)


def linalg_lu_solve(LU, pivots, B, *, left=True, adjoint=False) -> Tensor:
    """``X`` with ``A X = B`` from ``(LU, pivots) = lu_factor(A)`` (``fw.linalg.lu_solve``);
    ``adjoint=True`` solves ``A^T X = B``, ``left=False`` solves ``X A = B``. Two triangular
    solves on the packed ``LU`` and a row permutation: differentiable in ``LU`` and ``B``."""
    fn = "linalg.lu_solve"
    check_matrix(LU, fn, name="LU")
    _same_dtype(LU, B, fn, ("LU", "B"))
    _rhs_check(LU, B, fn, left)
    if not isinstance(pivots, Tensor) or tuple(pivots.shape) != tuple(LU.shape[:-1]):
        raise ShapeError(f"{fn}: expected pivots of shape {list(LU.shape[:-1])} (LU's shape "
                         f"without its last dim), got "
                         f"{list(getattr(pivots, 'shape', [])) or type(pivots).__name__}")
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return linalg_lu_solve(LU, pivots, B.mT, adjoint=not adjoint).mT
    P = _permutation(pivots, LU.shape[-2], LU)
    if not adjoint:  # P L U X = B
        Y = solve_triangular(LU, matmul(P.mT, B), upper=False, unitriangular=True)
        return solve_triangular(LU, Y, upper=True)
    # U^T L^T P^T X = B
    Z = solve_triangular(LU.mT, B, upper=False)
    return matmul(P, solve_triangular(LU.mT, Z, upper=True, unitriangular=True))


def matrix_exp(A) -> Tensor:
    """The matrix exponential ``sum_k A^k / k!`` of each square matrix of ``A`` (scaling and
    squaring with a Padé approximant of degree up to 13, Higham 2005, in float64). The
    gradient is the Fréchet derivative, computed as a block matrix exponential."""
    check_matrix(A, "linalg.matrix_exp", complex_ok=True)
    return apply(MATRIX_EXP, A)


def cholesky_ex(A, *, upper=False, check_errors=False):
    """``(L, info)``: :func:`~framework.linalg.cholesky` that reports a matrix that is not
    positive-definite in ``info`` (the order of the failing leading minor; 0 on success;
    that matrix's ``L`` is NaN-filled) instead of raising, unless ``check_errors``."""
    check_matrix(A, "linalg.cholesky_ex", complex_ok=True)
    L, info = apply(CHOLESKY_EX, A, check_errors=bool(check_errors))
    return CholeskyExResult(L.mH if upper else L, info)


def inv_ex(A, *, check_errors=False):
    """``(inverse, info)``: :func:`~framework.linalg.inv` that reports a singular matrix in
    ``info`` (the first zero pivot of its LU factor; 0 on success; that matrix's inverse is
    NaN-filled) instead of raising, unless ``check_errors``."""
    check_matrix(A, "linalg.inv_ex", complex_ok=True)
    return InvExResult(*apply(INV_EX, A, check_errors=bool(check_errors)))


def solve_ex(A, B, *, left=True, check_errors=False):
    """``(result, info)``: :func:`~framework.linalg.solve` (``B`` a matrix or a batch of
    vectors, ``left=False`` for ``X A = B``) that reports a singular ``A`` in ``info``
    instead of raising, unless ``check_errors``."""
    fn = "linalg.solve_ex"
    check_matrix(A, fn, complex_ok=True)
    _same_dtype(A, B, fn)
    ce = bool(check_errors)
    A2 = A if left else A.mT
    if B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1])):
        X, info = apply(SOLVE_EX, A2, B.unsqueeze(-1), check_errors=ce)
        return SolveExResult(X.squeeze(-1), info)
    if left:
        return SolveExResult(*apply(SOLVE_EX, A2, B, check_errors=ce))
    X, info = apply(SOLVE_EX, A2, B.mT, check_errors=ce)
    return SolveExResult(X.mT, info)


# ---------------------------------------------------------------------------------------
# torch.* spellings
def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False):
    """``(solution, cloned_coefficient)`` of ``A X = b`` (``transpose``: ``A^T X = b``) for a
    triangular ``A`` (the deprecated ``torch.triangular_solve``; note ``b`` comes first and
    ``upper`` defaults to True). ``cloned_coefficient`` is a copy of ``A`` broadcast to the
    batch shape."""
    fn = "triangular_solve"
    if not isinstance(b, Tensor) or not isinstance(A, Tensor):
        raise FwTypeError(f"{fn}: expected Tensors as b and A")
    for name, t in (("b", b), ("A", A)):
        if t.ndim < 2:
            raise ShapeError(f"{fn}: Expected {name} to have at least 2 dimensions, but it "
                             f"has {t.ndim} dimensions instead")
    T = A.mT if transpose else A
    X = solve_triangular(T, b, upper=bool(upper) != bool(transpose),
                         unitriangular=unitriangular)
    batch = broadcast_shapes(A.shape[:-2], b.shape[:-2], fn)
    return TriangularSolveResult(X, A.expand(batch + tuple(A.shape[-2:])).clone())


def lu(A, pivot=True, get_infos=False):
    """``(A_LU, pivots)`` (and ``infos`` with ``get_infos=True``): the deprecated
    ``torch.lu``; raises for a singular matrix unless ``get_infos``."""
    check_matrix(A, "lu", square=False)
    _check_pivot(pivot, "lu")
    LU, pivots, info = apply(LU_FACTOR, A, check_errors=not get_infos)
    return (LU, pivots, info) if get_infos else (LU, pivots)


def lu_solve(b, LU_data, LU_pivots):
    """``X`` with ``A X = b`` from ``torch.lu``'s factorization (the deprecated
    ``torch.lu_solve``; ``fw.linalg.lu_solve(LU, pivots, B)`` is the current spelling)."""
    return linalg_lu_solve(LU_data, LU_pivots, b)

