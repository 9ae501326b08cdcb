"""``fw.linalg``: linear algebra with ``torch.linalg``'s names, defaults and semantics.

Every function works on batches (leading dims are batch dims) of float32/float64
matrices, and most also on complex64/complex128 ones, as in PyTorch: ``det``, ``slogdet``
(a complex ``sign``, a real ``logabsdet``), ``inv``, ``solve``, ``cholesky`` (Hermitian
positive-definite, ``L L^H = A``), ``qr``, ``eigh``/``eigvalsh`` (Hermitian, real
eigenvalues), ``svd``/``svdvals`` (real singular values), ``eig``/``eigvals``
(``framework/ops/linalg_eig.py``), the norms and ``cond`` (real results), ``pinv``,
``lstsq``, ``matrix_rank``, ``solve_triangular``, ``matrix_exp``, ``matrix_power``, the
``*_ex`` variants and ``matmul``. Gradients of complex input follow PyTorch's conjugate
Wirtinger convention (conjugate transposes where the real formulas transpose); a loss of
complex eigenvectors / singular vectors must not depend on their phases (else an
:class:`~framework.errors.AutogradError`, as PyTorch). The LU functions, ``vecdot`` and
``householder_product`` take real input only (a clear :class:`~framework.DTypeError`).
The factorizations are registered ops with LAPACK kernels (``framework/ops/linalg_ops.py``:
``det``, ``slogdet``, ``inv``, ``solve``, ``cholesky``, ``qr``, ``eigh``, ``svd``; and
``framework/ops/linalg_extra_ops.py``: ``solve_triangular``, ``lu_factor``, ``matrix_exp``,
``cholesky_ex``, ``inv_ex``, ``solve_ex``); on a
CUDA device they run on a host copy of the data and the result is copied back (device
kernels are future work). Everything else is composed from public ops (norms through
reductions and ``svdvals``, ``matrix_power``/``multi_dot`` through ``matmul``, ``pinv``,
``matrix_rank`` and ``lstsq`` through ``svd``), so it differentiates, compiles and exports
like any composite. ``fw.linalg.matmul`` is ``fw.matmul``.
"""

# ruff: noqa: N803  (PyTorch's argument names: A, B, UPLO)
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .errors import ArgumentError, DTypeError, FwTypeError, ShapeError
from .ops.linalg import matmul
from .ops.linalg_extra_ops import (cholesky_ex, inv_ex, linalg_lu, linalg_lu_solve,
                                   lu_factor, lu_factor_ex, matrix_exp, solve_ex,
                                   solve_triangular)
from .ops.linalg_eig import EigResult, eig, eigvals
from .ops.linalg_ops import (LinAlgError, check_matrix, cholesky, det, eigh, eigvalsh, inv,
                             qr, slogdet, solve_matrix, svd, svdvals)
from .ops.math_extra import cross as _cross
from .ops.math_extra import diagonal as _diagonal
from .ops.movement import broadcast_tensors, cat, movedim, tril
from .ops.pointwise import where
from .ops.reduce import amax, amin, cumprod
from .ops.reduce import norm as _pnorm
from .ops.reduce import sum as _sum
from .ops.shapes import normalize_dim
from .tensor import Tensor

SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])
QRResult = namedtuple("qr", ["Q", "R"])
EighResult = namedtuple("eigh", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("svd", ["U", "S", "Vh"])
LstsqResult = namedtuple("lstsq", ["solution", "residuals", "rank", "singular_values"])


def _float_tensor(x, fn, name="input", complex_ok=False):
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{fn}: expected a Tensor as {name}, got {type(x).__name__}")
    if complex_ok and x.dtype.is_complex:
        return x
    if not x.dtype.is_floating_point:
        raise DTypeError(f"{fn}: expected a floating point tensor as {name} (complex numbers "
                         f"are not supported), got {x.dtype.name}")
    return x


# ---------------------------------------------------------------------------------------
# norms
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None) -> Tensor:
    """Vector ``ord``-norm of ``x`` over ``dim`` (an int, a tuple, or None: every element):
    ``ord`` is any real number (``0`` counts non-zeros, ``inf``/``-inf`` are max/min of
    ``|x|``, negative ``p`` is ``sum(|x|^p)^(1/p)``). Complex input gives the real norm
    of ``|x|``."""
    _float_tensor(x, "linalg.vector_norm", "x", complex_ok=True)
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise ArgumentError(f"linalg.vector_norm: ord must be a real number, got {ord!r}")
    if dtype is not None:
        x = x.to(dtype)
    if dim is None and keepdim:
        dim = tuple(range(x.ndim))
    return _pnorm(x, ord, dim, keepdim)


def _two_dims(A, dim, fn):
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise ArgumentError(f"{fn}: dim must be a 2-tuple of ints, got {dim!r}")
    d0, d1 = (normalize_dim(d, A.ndim, fn) for d in dim)
    if d0 == d1:
        raise ArgumentError(f"{fn}: dims must be different, got {tuple(dim)}")
    return d0, d1


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None) -> Tensor:
    """Matrix norm over the two dims ``dim``: ``'fro'``, ``'nuc'`` (sum of singular
    values), ``2``/``-2`` (largest/smallest singular value), ``1``/``-1`` (max/min column
    sum of ``|A|``), ``inf``/``-inf`` (max/min row sum). Complex input (a real result)
    takes every order."""
    fn = "linalg.matrix_norm"
    _float_tensor(A, fn, "A", complex_ok=True)
    if A.ndim < 2:
        raise ShapeError(f"{fn}: A must have at least 2 dimensions, got shape {list(A.shape)}")
    if dtype is not None:
        A = A.to(dtype)
    d0, d1 = _two_dims(A, dim, fn)
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord == "nuc" or ord in (2, -2):
        S = svdvals(movedim(A, (d0, d1), (-2, -1)))
        r = _sum(S, -1) if ord == "nuc" else amax(S, -1) if ord == 2 else amin(S, -1)
        if keepdim:
            r = r.unsqueeze(min(d0, d1)).unsqueeze(max(d0, d1))
        return r
    if ord in (1, -1, math.inf, -math.inf):
        inner, outer = (d0, d1) if ord in (1, -1) else (d1, d0)
        s = _sum(A.abs(), inner, True)
        r = amax(s, outer, True) if ord > 0 else amin(s, outer, True)
        return r if keepdim else r.squeeze(max(d0, d1)).squeeze(min(d0, d1))
    raise ArgumentError(f"{fn}: Order {ord!r} not supported (expected 'fro', 'nuc', inf, "
                        f"-inf, 1, -1, 2 or -2)")


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None) -> Tensor:
    """``vector_norm`` or ``matrix_norm`` chosen as ``torch.linalg.norm``: an int/1-tuple
    ``dim`` is a vector norm, a 2-tuple a matrix norm; with ``dim=None`` a 1-D input is a
    vector and a 2-D input a matrix (``ord=None``: the 2-norm of all elements)."""
    fn = "linalg.norm"
    _float_tensor(A, fn, "A", complex_ok=True)
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None:
        dim = tuple(dim)
        if len(dim) == 1:
            return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
        if len(dim) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
        raise ArgumentError(f"{fn}: dim must be an int or a tuple of 1 or 2 ints, got {dim}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 1:
        if isinstance(ord, str):
            raise ArgumentError(f"{fn}: order {ord!r} is a matrix norm; the 1-D input (shape "
                                f"{list(A.shape)}) needs a numeric ord")
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    raise ShapeError(f"{fn}: If dim is not specified but ord is, the input must be 1D or 2D. "
                     f"Got {A.ndim}D (shape {list(A.shape)})")


# ---------------------------------------------------------------------------------------
# solving
def _is_vector_rhs(A, B):
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def solve(A, B, *, left=True) -> Tensor:
    """``X`` with ``A X = B`` (``left=False``: ``X A = B``) for square ``A (*, n, n)``;
    ``B`` is ``(*, n, k)`` or a batch of vectors ``(*, n)`` (batch dims broadcast). A
    singular ``A`` raises :class:`LinAlgError` (LAPACK gesv). Real or complex."""
    check_matrix(A, "linalg.solve", complex_ok=True)
    if not isinstance(B, Tensor):
        raise FwTypeError(f"linalg.solve: expected a Tensor as B, got {type(B).__name__}")
    if B.dtype is not A.dtype:
        raise DTypeError(f"linalg.solve: expected A and B to have the same dtype, got "
                         f"{A.dtype.name} and {B.dtype.name}")
    A2 = A if left else A.mT
    if _is_vector_rhs(A, B):
        return solve_matrix(A2, B.unsqueeze(-1)).squeeze(-1)
    if B.ndim < 2:
        raise ShapeError(f"linalg.solve: B must be a vector or a batch of matrices, got shape "
                         f"{list(B.shape)} with A {list(A.shape)}")
    return solve_matrix(A2, B) if left else solve_matrix(A2, B.mT).mT


def _tolerance(S_max, atol, rtol, eps_default):
    """``max(atol, rtol * S_max)`` with ``torch.linalg``'s defaults."""
    if rtol is None:
        rtol = eps_default if atol is None or (not isinstance(atol, Tensor) and atol <= 0) \
            else 0.0
    tol = S_max * rtol
    if atol is not None:
        from .ops import maximum
        tol = maximum(tol, atol if isinstance(atol, Tensor) else tol * 0 + atol)
    return tol


def _eps(A):
    return float(np.finfo(A.dtype.np).eps) * max(A.shape[-2], A.shape[-1])


def pinv(A, *, atol=None, rtol=None, hermitian=False) -> Tensor:
    """Moore-Penrose pseudo-inverse through the SVD (``hermitian=True``: ``eigh``), with
    singular values at most ``max(atol, rtol * largest)`` treated as zero (default
    ``rtol = eps * max(m, n)`` when ``atol`` is not given). Real or complex."""
    check_matrix(A, "linalg.pinv", square=hermitian, complex_ok=True)
    if hermitian:
        L, Q = eigh(A)
        big = L.abs() > _tolerance(amax(L.abs(), -1, True), atol, rtol, _eps(A))
        Linv = where(big, 1.0 / where(big, L, 1.0), 0.0)
        return matmul(Q * Linv.unsqueeze(-2), Q.mH)
    U, S, Vh = svd(A, full_matrices=False)
    big = S > _tolerance(amax(S, -1, True), atol, rtol, _eps(A))
    Sinv = where(big, 1.0 / where(big, S, 1.0), 0.0)
    return matmul(Vh.mH * Sinv.unsqueeze(-2), U.mH)


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False) -> Tensor:
    """Number (int64) of singular values (``hermitian``: |eigenvalues|) larger than
    ``max(atol, rtol * largest)``; default ``rtol = eps * max(m, n)``."""
    check_matrix(A, "linalg.matrix_rank", square=hermitian, complex_ok=True)
    S = eigvalsh(A).abs() if hermitian else svdvals(A)
    if S.shape[-1] == 0:
        return _sum(S, -1).long()
    big = S > _tolerance(amax(S, -1, True), atol, rtol, _eps(A))
    return _sum(big.long(), -1)


def lstsq(A, B, rcond=None, *, driver=None):
    """Least-squares solution of ``A X = B`` as ``(solution, residuals, rank,
    singular_values)``.

    The solution is the minimum-norm one, computed through the SVD (``pinv(A, rtol=rcond)
    @ B``; default ``rcond = eps * max(m, n)``), which is what LAPACK's gelsy (PyTorch's
    CPU default), gelsd and gelss return up to rounding. As in PyTorch: ``rank`` is
    returned for every driver but ``'gels'``; ``singular_values`` only for ``'gelsd'`` and
    ``'gelss'`` (else empty); ``residuals`` (squared column norms of ``A X - B``) only
    when ``m > n`` and every matrix has full rank (else empty) -- deciding that reads the
    data, so under ``fw.compile`` that branch is a graph break. Complex ``A``/``B`` give
    real ``residuals`` and ``singular_values``."""
    fn = "linalg.lstsq"
    check_matrix(A, fn, square=False, complex_ok=True)
    if not isinstance(B, Tensor) or B.dtype is not A.dtype:
        raise DTypeError(f"{fn}: expected B to be a tensor of A's dtype {A.dtype.name}, got "
                         f"{getattr(B, 'dtype', type(B)).__str__()}")
    driver = "gelsy" if driver is None else driver
    if driver not in ("gels", "gelsy", "gelsd", "gelss"):
        raise ArgumentError(f"{fn}: driver must be one of 'gels', 'gelsy', 'gelsd', 'gelss' "
                            f"or None, got {driver!r}")
    vector = _is_vector_rhs(A, B)
    B2 = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2], A.shape[-1]
    if B2.ndim < 2 or B2.shape[-2] != m:
        raise ShapeError(f"{fn}: incompatible shapes of A and B for the equation AX = B: A is "
                         f"{list(A.shape)}, B is {list(B.shape)}")
    rtol = rcond if rcond is not None and rcond >= 0 else None
    X = matmul(pinv(A, rtol=rtol), B2)
    empty = A.new_zeros((0,), dtype=A.dtype.to_real())
    rank = matrix_rank(A, rtol=rtol) if driver != "gels" else empty.long()
    residuals = empty
    if m > n and (driver == "gels" or bool((rank == n).all())):
        r = matmul(A, X) - B2
        residuals = _sum((r * r.conj()).real, -2)  # |r|^2
        residuals = residuals.squeeze(-1) if vector else residuals
    sv = svdvals(A) if driver in ("gelsd", "gelss") else empty
    return LstsqResult(X.squeeze(-1) if vector else X, residuals, rank, sv)


# ---------------------------------------------------------------------------------------
# products
def matrix_power(A, n) -> Tensor:
    """``A`` to the integer power ``n`` by repeated squaring (``n = 0``: the identity,
    ``n < 0``: powers of ``inv(A)``)."""
    fn = "linalg.matrix_power"
    if isinstance(n, bool) or not isinstance(n, int):
        raise FwTypeError(f"{fn}: n must be an int, got {type(n).__name__}")
    if not isinstance(A, Tensor):
        raise FwTypeError(f"{fn}: expected a Tensor as A, got {type(A).__name__}")
    if A.ndim < 2 or (isinstance(A.shape[-1], int) and A.shape[-1] != A.shape[-2]):
        raise ShapeError(f"{fn}: expected a batch of square matrices, got shape "
                         f"{list(A.shape)}")
    if n == 0:
        from .creation import eye
        return eye(A.shape[-1], dtype=A.dtype, device=A.device).expand(A.shape).clone()
    if n < 0:
        A, n = inv(A), -n
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def _chain_order(dims):
    """Optimal parenthesization of a matrix chain (dims p0..pn): split table."""
    k = len(dims) - 1
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(1, k):
        for i in range(k - length):
            j = i + length
            cost[i][j] = math.inf
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, s
    return split


def multi_dot(tensors) -> Tensor:
    """Product of a chain of 2-D matrices in the cheapest order (the first may be a 1-D
    row vector, the last a 1-D column vector, as ``torch.linalg.multi_dot``)."""
    fn = "linalg.multi_dot"
    ts = list(tensors)
    if len(ts) < 2:
        raise ArgumentError(f"{fn}: expected at least 2 tensors but got {len(ts)}")
    for i, t in enumerate(ts):
        if not isinstance(t, Tensor):
            raise FwTypeError(f"{fn}: tensor {i} is not a Tensor ({type(t).__name__})")
        ok = t.ndim == 2 or (t.ndim == 1 and i in (0, len(ts) - 1))
        if not ok:
            also = " or 1D" if i in (0, len(ts) - 1) else ""
            raise ShapeError(f"{fn}: tensor {i} must be 2D{also} but got {t.ndim}D (shape "
                             f"{list(t.shape)})")
        if t.dtype is not ts[0].dtype:
            raise DTypeError(f"{fn}: all tensors must have the same dtype, got "
                             f"{ts[0].dtype.name} and {t.dtype.name} (tensor {i})")
    first_vec, last_vec = ts[0].ndim == 1, ts[-1].ndim == 1
    if first_vec:
        ts[0] = ts[0].unsqueeze(0)
    if last_vec:
        ts[-1] = ts[-1].unsqueeze(-1)
    for i in range(len(ts) - 1):
        if ts[i].shape[1] != ts[i + 1].shape[0]:
            raise ShapeError(f"{fn}: tensors {i} and {i + 1} with shapes "
                             f"{list(ts[i].shape)} and {list(ts[i + 1].shape)} cannot be "
                             f"multiplied")
    split = _chain_order([ts[0].shape[0]] + [t.shape[1] for t in ts])

    def prod(i, j):
        if i == j:
            return ts[i]
        s = split[i][j]
        return matmul(prod(i, s), prod(s + 1, j))
    out = prod(0, len(ts) - 1)
    if first_vec:
        out = out.squeeze(0)
    if last_vec:
        out = out.squeeze(-1)
    return out


def vecdot(x, y, *, dim=-1) -> Tensor:
    """Dot product of vectors along ``dim`` (batch dims broadcast): ``sum(conj(x) * y,
    dim)`` (``x`` is conjugated when complex, as PyTorch does)."""
    _float_tensor(x, "linalg.vecdot", "x", complex_ok=True)
    _float_tensor(y, "linalg.vecdot", "y", complex_ok=True)
    if x.dtype.is_complex:
        from .ops.complex_ops import conj
        x = conj(x)
    return _sum(x * y, dim)


def cross(input, other, *, dim=-1) -> Tensor:
    """Cross product of 3-vectors along ``dim`` (default the last dim; batch dims
    broadcast); ``fw.cross`` with ``torch.linalg.cross``'s default."""
    if isinstance(input, Tensor) and isinstance(other, Tensor) and input.shape != other.shape:
        input, other = broadcast_tensors(input, other)
    return _cross(input, other, dim=dim)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1) -> Tensor:
    """The ``offset``-th diagonal of each matrix (the last two dims by default)."""
    return _diagonal(A, offset, dim1, dim2)


def tensorinv(A, ind=2) -> Tensor:
    """Inverse of ``A`` seen as a linear map from its last ``A.ndim - ind`` dims to its
    first ``ind`` dims: the result has shape ``A.shape[ind:] + A.shape[:ind]``."""
    if not isinstance(ind, int) or ind <= 0:
        raise ArgumentError(f"linalg.tensorinv: expected a strictly positive integer for "
                            f"'ind', but got {ind!r}")
    out_shape, in_shape = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    p, q = math.prod(out_shape), math.prod(in_shape)
    if p != q:
        raise ShapeError(f"linalg.tensorinv: expected prod(A.shape[:ind]) == "
                         f"prod(A.shape[ind:]), got shape {list(A.shape)} with ind={ind}")
    return inv(A.reshape(p, q)).reshape(in_shape + out_shape)


def tensorsolve(A, B, dims=None) -> Tensor:
    """``X`` with ``tensordot(A, X, X.ndim) = B``; ``dims`` are dims of ``A`` moved to the
    end first. ``X`` has shape ``A.shape[B.ndim:]``."""
    if dims is not None:
        dims = [normalize_dim(d, A.ndim, "linalg.tensorsolve") for d in dims]
        A = movedim(A, dims, list(range(A.ndim - len(dims), A.ndim)))
    x_shape = tuple(A.shape[B.ndim:])
    if tuple(A.shape[:B.ndim]) != tuple(B.shape) or math.prod(x_shape) != B.numel():
        raise ShapeError(f"linalg.tensorsolve: expected A.shape[:B.ndim] == B.shape and "
                         f"prod(A.shape[B.ndim:]) == B.numel(), got A {list(A.shape)} and "
                         f"B {list(B.shape)}")
    n = B.numel()
    return solve(A.reshape(n, n), B.reshape(n)).reshape(x_shape)


lu = linalg_lu
lu_solve = linalg_lu_solve


# ---------------------------------------------------------------------------------------
# condition numbers, Vandermonde and Householder matrices, general eigenproblems
def cond(A, p=None) -> Tensor:
    """Condition number of each matrix of ``A`` in the matrix norm ``p``: ``None``/``2``
    (largest over smallest singular value; any shape), ``-2`` (the inverse ratio),
    ``'fro'``, ``'nuc'``, ``inf``, ``-inf``, ``1``, ``-1`` (``norm(A) * norm(A^-1)``; square
    matrices; ``inf`` for a singular one, as PyTorch). Real (also for complex ``A``)."""
    fn = "linalg.cond"
    check_matrix(A, fn, square=False, complex_ok=True)
    real = A.dtype.to_real()
    if p in (None, 2, -2):
        if A.shape[-1] == 0 or A.shape[-2] == 0:
            return A.new_zeros(tuple(A.shape[:-2]), dtype=real)
        S = svdvals(A)
        big, small = S[..., 0], S[..., -1]
        return small / big if p == -2 else big / small
    if p not in ("fro", "nuc", math.inf, -math.inf, 1, -1):
        raise ArgumentError(f"{fn}: got an invalid norm type: {p!r} (expected None, 'fro', "
                            f"'nuc', inf, -inf, 1, -1, 2 or -2)")
    if A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{fn}(ord={p}): A must be batches of square matrices, but they are "
                         f"{A.shape[-2]} by {A.shape[-1]} matrices")
    if A.shape[-1] == 0:
        return A.new_zeros(tuple(A.shape[:-2]), dtype=real)
    Ainv, info = inv_ex(A)
    r = matrix_norm(A, p) * matrix_norm(Ainv, p)
    return where(info > 0, math.inf, r)


def vander(x, N=None) -> Tensor:
    """Vandermonde matrix ``(*, n, N)`` of the vectors ``x (*, n)``: column ``j`` is
    ``x**j`` (increasing powers, unlike ``fw.vander``); ``N`` defaults to ``n`` and must be
    greater than 1. Integer inputs give int64 (a cumulative product, as PyTorch)."""
    fn = "linalg.vander"
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{fn}: expected a Tensor as x, got {type(x).__name__}")
    if x.dtype.name == "bool":
        raise DTypeError(f"{fn}: supports floating point and integer tensors, but got bool")
    if x.ndim == 0:
        x = x.unsqueeze(-1)
    n = x.shape[-1] if N is None else N
    if isinstance(n, bool) or not isinstance(n, int):
        raise FwTypeError(f"{fn}: N must be an int, got {type(n).__name__}")
    if n <= 1:
        raise ArgumentError(f"{fn}: N must be greater than 1, got {n}")
    powers = cumprod(x.unsqueeze(-1).expand(tuple(x.shape) + (n - 1,)), -1)
    return cat([powers.new_ones(tuple(x.shape) + (1,)), powers], -1)


def householder_product(A, tau) -> Tensor:
    """The first ``n`` columns of ``H_1 H_2 ... H_k`` for ``A (*, m, n)`` (``m >= n``) and
    ``tau (*, k)`` (``k <= n``), ``H_i = I - tau_i v_i v_i^T`` with ``v_i`` column ``i`` of
    ``A`` below the diagonal and a 1 on it (LAPACK orgqr; the Q of ``geqrf``'s output).
    Composed of matmuls, so it differentiates in ``A`` and ``tau``."""
    fn = "linalg.householder_product"
    check_matrix(A, fn, square=False)
    if not isinstance(tau, Tensor) or tau.dtype is not A.dtype:
        raise DTypeError(f"{fn}: expected tau to be a tensor of A's dtype {A.dtype.name}")
    m, n = A.shape[-2], A.shape[-1]
    if m < n:
        raise ShapeError(f"{fn}: input.shape[-2] must be greater than or equal to "
                         f"input.shape[-1], got shape {list(A.shape)}")
    if tau.ndim != A.ndim - 1 or tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise ShapeError(f"{fn}: expected tau of shape {list(A.shape[:-2])} + [k], got "
                         f"{list(tau.shape)} for input {list(A.shape)}")
    k = tau.shape[-1]
    if k > n:
        raise ShapeError(f"{fn}: input.shape[-1] must be greater than or equal to "
                         f"tau.shape[-1], got {n} and {k}")
    from .creation import eye
    ident = eye(m, n, dtype=A.dtype, device=A.device)
    V = tril(A, -1) + ident
    Q = ident.expand(tuple(A.shape)).clone()
    for i in reversed(range(k)):
        v = V[..., :, i:i + 1]
        Q = Q - tau[..., i:i + 1].unsqueeze(-1) * matmul(v, matmul(v.mT, Q))
    return Q


__all__ = ["LinAlgError", "SlogdetResult", "QRResult", "EighResult", "SVDResult",
           "LstsqResult", "norm", "vector_norm", "matrix_norm", "det", "slogdet", "inv",
           "solve", "cholesky", "qr", "eigh", "eigvalsh", "svd", "svdvals", "pinv", "lstsq",
           "matrix_rank", "matrix_power", "cross", "vecdot", "multi_dot", "diagonal",
           "tensorinv", "tensorsolve", "matmul", "solve_triangular", "lu_factor",
           "lu_factor_ex", "lu", "lu_solve", "matrix_exp", "cholesky_ex", "inv_ex",
           "solve_ex", "cond", "vander", "householder_product", "eig", "eigvals", "EigResult"]
