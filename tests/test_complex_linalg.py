"""Complex input for the core ``fw.linalg`` functions (no torch): values against NumPy on
random complex (batched, Hermitian / Hermitian positive-definite where needed) matrices, the
defining identities (``A inv(A) = I``, ``L L^H = A``, ``Q R = A`` with ``Q`` unitary,
``U diag(S) V^H = A``, ``A V = V diag(L)``), the real dtypes of eigenvalues, singular
values and ``logabsdet``, finite-difference gradients (tests/complex_helpers.py) -- of
phase-invariant losses for ``eigh``/``svd``, whose phase-dependent losses raise as in
PyTorch -- and the functions that still refuse complex input."""

# ruff: noqa: N806  (matrix names)
from __future__ import annotations

import numpy as np
import pytest

import framework as fw
from framework.errors import AutogradError, DTypeError
from tests.complex_helpers import complex_gradcheck, crandn

L = fw.linalg
_Z = crandn(2, 3, 3, seed=1)          # general square, batched
_B = crandn(2, 3, 2, seed=2)          # right-hand sides
_W = crandn(2, 4, 3, seed=3)          # tall
_H = _Z @ np.conj(np.swapaxes(_Z, -1, -2)) + 3 * np.eye(3)  # Hermitian positive-definite
_T = np.triu(_Z) + 3 * np.eye(3)     # upper triangular, well conditioned
_DT = [(fw.complex128, 1e-10), (fw.complex64, 1e-4)]


def _mh(a):
    return np.conj(np.swapaxes(a, -1, -2))


def _herm(a):
    """The Hermitian part: the functions that read one triangle are checked through it."""
    return (a + a.mH) * 0.5


def _close(got, want, tol):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=tol * 10, rtol=tol)


# ---------------------------------------------------------------------------------------
# values and identities
@pytest.mark.parametrize("dt,tol", _DT)
def test_det_slogdet_inv_solve_values(dt, tol):
    A = fw.tensor(_Z, dtype=dt)
    z = A.numpy().astype(np.complex128)
    assert L.det(A).dtype is dt
    _close(L.det(A).numpy(), np.linalg.det(z), tol)
    sign, logabs = L.slogdet(A)
    assert sign.dtype is dt and logabs.dtype is dt.to_real()
    _close(np.abs(sign.numpy()), 1.0, tol)
    _close(sign.numpy() * np.exp(logabs.numpy()), np.linalg.det(z), tol)
    Ai = L.inv(A)
    _close((A @ Ai).numpy(), np.broadcast_to(np.eye(3), z.shape), tol)
    B = fw.tensor(_B, dtype=dt)
    X = L.solve(A, B)
    _close((A @ X).numpy(), B.numpy(), tol)
    _close(L.solve(A, B[..., 0]).numpy(), np.linalg.solve(z, _B[..., :1].astype(z.dtype))[..., 0],
           tol)
    Xr = L.solve(A, B.mT, left=False)  # X A = B^T
    _close((Xr @ A).numpy(), B.mT.numpy(), tol)
    _close(L.solve(A[0], B).numpy(), np.linalg.solve(z[0], B.numpy()), tol)  # broadcast
    _close(L.inv_ex(A).inverse.numpy(), Ai.numpy(), tol)
    _close(L.solve_ex(A, B).result.numpy(), X.numpy(), tol)


def test_singular_complex_matrix():
    A = fw.tensor(np.array([[1 + 1j, 2 - 1j], [2 + 2j, 4 - 2j]]))
    assert abs(L.det(A).item()) < 1e-12
    sign, logabs = L.slogdet(A)
    assert sign.item() == 0 and logabs.item() == -np.inf
    with pytest.raises(L.LinAlgError, match="singular"):
        L.inv(A)
    assert L.inv_ex(A).info.item() > 0


@pytest.mark.parametrize("dt,tol", _DT)
def test_cholesky_values(dt, tol):
    A = fw.tensor(_H, dtype=dt)
    Lo = L.cholesky(A)
    lo = Lo.numpy()
    _close(lo @ _mh(lo), _H, tol * 10)
    _close(lo, np.tril(lo), 0)  # lower triangular, real positive diagonal
    d = np.diagonal(lo, 0, -2, -1)
    assert (d.real > 0).all() and np.abs(d.imag).max() == 0
    _close(lo, np.linalg.cholesky(_H.astype(lo.dtype)), tol)
    U = L.cholesky(A, upper=True).numpy()
    _close(_mh(U) @ U, _H, tol * 10)
    _close(L.cholesky_ex(A).L.numpy(), lo, tol)
    _close(L.cholesky_ex(A, upper=True).L.numpy(), U, tol)
    with pytest.raises(L.LinAlgError, match="positive-definite"):
        L.cholesky(fw.tensor(-_H))
    assert (L.cholesky_ex(fw.tensor(-_H)).info.numpy() == 1).all()


@pytest.mark.parametrize("dt,tol", _DT)
@pytest.mark.parametrize("shape,mode", [((2, 4, 3), "reduced"), ((2, 4, 3), "complete"),
                                        ((3, 5), "reduced"), ((2, 3, 3), "r")])
def test_qr_values(dt, tol, shape, mode):
    a = crandn(*shape, seed=4)
    Q, R = L.qr(fw.tensor(a, dtype=dt), mode)
    r = R.numpy()
    _close(r, np.triu(r), 0)
    want = np.linalg.qr(a.astype(r.dtype), mode=mode)
    _close(r, want if mode == "r" else want[1], tol * 10)  # LAPACK's phases
    if mode != "r":
        q = Q.numpy()
        _close(q @ r, a, tol * 10)
        _close(_mh(q) @ q, np.broadcast_to(np.eye(q.shape[-1]), q.shape[:-2] +
                                           (q.shape[-1],) * 2), tol * 10)


@pytest.mark.parametrize("dt,tol", _DT)
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh_values(dt, tol, uplo):
    h = _H - 3 * np.eye(3)  # indefinite Hermitian
    # only the UPLO triangle is read: spoil the other one
    spoiled = np.triu(h, 1) * 7 + np.tril(h) if uplo == "L" else np.tril(h, -1) * 7 + np.triu(h)
    A = fw.tensor(spoiled, dtype=dt)
    w, V = L.eigh(A, uplo)
    assert w.dtype is dt.to_real() and V.dtype is dt
    _close(w.numpy(), np.linalg.eigvalsh(h), tol * 10)
    v = V.numpy()
    _close(h @ v, v * w.numpy()[..., None, :], tol * 10)
    _close(_mh(v) @ v, np.broadcast_to(np.eye(3), h.shape), tol * 10)
    _close(L.eigvalsh(A, uplo).numpy(), w.numpy(), tol)


@pytest.mark.parametrize("dt,tol", _DT)
@pytest.mark.parametrize("shape", [(2, 4, 3), (3, 5), (2, 3, 3)])
@pytest.mark.parametrize("full", [False, True])
def test_svd_values(dt, tol, shape, full):
    a = crandn(*shape, seed=5)
    U, S, Vh = L.svd(fw.tensor(a, dtype=dt), full_matrices=full)
    assert S.dtype is dt.to_real() and U.dtype is dt and Vh.dtype is dt
    _close(S.numpy(), np.linalg.svd(a, compute_uv=False), tol * 10)
    k = S.shape[-1]
    u, s, vh = U.numpy()[..., :k], S.numpy(), Vh.numpy()[..., :k, :]
    _close((u * s[..., None, :]) @ vh, a, tol * 10)
    for q in (U.numpy(), _mh(Vh.numpy())):
        _close(_mh(q) @ q, np.broadcast_to(np.eye(q.shape[-1]), q.shape[:-2] +
                                           (q.shape[-1],) * 2), tol * 10)
    sv = L.svdvals(fw.tensor(a, dtype=dt))
    assert sv.dtype is dt.to_real()
    _close(sv.numpy(), s, tol)


def test_composites_values():
    Z, W = fw.tensor(_Z), fw.tensor(_W)
    _close(L.pinv(W).numpy(), np.linalg.pinv(_W), 1e-10)
    _close(L.pinv(fw.tensor(_H), hermitian=True).numpy(), np.linalg.pinv(_H), 1e-10)
    Bt = crandn(2, 4, 2, seed=6)
    res = L.lstsq(W, fw.tensor(Bt))
    for i in range(2):
        x, r, rank, _ = np.linalg.lstsq(_W[i], Bt[i], rcond=None)
        _close(res.solution.numpy()[i], x, 1e-10)
        _close(res.residuals.numpy()[i], r, 1e-10)
    assert res.residuals.dtype is fw.float64 and res.rank.tolist() == [3, 3]
    assert L.matrix_rank(W).tolist() == [3, 3]
    assert L.matrix_rank(fw.tensor(_H), hermitian=True).tolist() == [3, 3]
    _close(L.cond(Z).numpy(), np.linalg.cond(_Z), 1e-10)
    for p in ("fro", "nuc", 1, np.inf):
        c = L.cond(Z, p)
        assert c.dtype is fw.float64
        _close(c.numpy(), np.linalg.cond(_Z, p), 1e-10)
    for o in ("nuc", 2, -2):
        _close(L.matrix_norm(Z, o).numpy(), np.linalg.norm(_Z, o, axis=(-2, -1)), 1e-10)
    _close(L.solve_triangular(fw.tensor(_T), fw.tensor(_B), upper=True).numpy(),
           np.linalg.solve(_T, _B), 1e-10)
    Tl = _mh(_T)
    _close(L.solve_triangular(fw.tensor(Tl), fw.tensor(_mh(_B)), upper=False, left=False)
           .numpy(), _mh(_B) @ np.linalg.inv(Tl), 1e-10)
    w, V = np.linalg.eig(_Z)
    _close(L.matrix_exp(Z).numpy(), V @ (np.exp(w)[..., None] * np.linalg.inv(V)), 1e-9)
    _close(L.matrix_exp(fw.tensor(_Z, dtype=fw.complex64)).numpy(),
           V @ (np.exp(w)[..., None] * np.linalg.inv(V)), 1e-4)
    _close(L.matrix_power(Z, 3).numpy(), _Z @ _Z @ _Z, 1e-10)
    _close(L.matrix_power(Z, -2).numpy(), np.linalg.inv(_Z @ _Z), 1e-10)
    assert L.matrix_power(Z, 0).dtype is fw.complex128


# ---------------------------------------------------------------------------------------
# gradients (finite differences on the real and imaginary parts)
_GRADS = {
    "det": (L.det, [_Z]),
    "slogdet.sign": (lambda a: L.slogdet(a).sign, [_Z]),
    "slogdet.logabsdet": (lambda a: L.slogdet(a).logabsdet, [_Z]),
    "slogdet.both": (lambda a: L.slogdet(a).sign * L.slogdet(a).logabsdet, [_Z]),
    "inv": (L.inv, [_Z]),
    "inv_ex": (lambda a: L.inv_ex(a).inverse, [_Z]),
    "solve": (L.solve, [_Z, _B]),
    "solve.vector": (lambda a, b: L.solve(a, b[..., 0]), [_Z, _B]),
    "solve.right": (lambda a, b: L.solve(a, b.mT, left=False), [_Z, _B]),
    "solve_ex": (lambda a, b: L.solve_ex(a, b).result, [_Z, _B]),
    "cholesky": (lambda a: L.cholesky(_herm(a)), [_H]),
    "cholesky.upper": (lambda a: L.cholesky(_herm(a), upper=True), [_H]),
    "cholesky_ex": (lambda a: L.cholesky_ex(_herm(a)).L, [_H]),
    "qr.square": (lambda a: L.qr(a).Q @ fw.diag_embed(L.qr(a).R.diagonal(0, -2, -1)), [_Z]),
    "qr.R": (lambda a: L.qr(a).R, [_W]),
    "qr.Q": (lambda a: L.qr(a).Q, [_W]),
    "eigvalsh": (lambda a: L.eigvalsh(_herm(a)), [_H]),
    "eigh.vectors": (lambda a: L.eigh(_herm(a)).eigenvectors.abs(), [_H]),
    "eigh.projector": (lambda a: (lambda w, v: (v * w.unsqueeze(-2)) @ v.mH)(
        *L.eigh(_herm(a))), [_H - 3 * np.eye(3)]),
    "svdvals": (L.svdvals, [_W]),
    "svd.UVh.square": (lambda a: (lambda u, s, vh: u @ vh)(*L.svd(a)), [_Z]),
    "svd.tall": (lambda a: (lambda u, s, vh: (u * s.unsqueeze(-2)) @ vh + u.abs().sum(-1, True))(
        *L.svd(a, full_matrices=False)), [_W]),
    "svd.wide": (lambda a: (lambda u, s, vh: u @ vh + vh.abs().sum(-2, True))(
        *L.svd(a, full_matrices=False)), [_mh(_W)]),
    "pinv": (L.pinv, [_W]),
    "pinv.hermitian": (lambda a: L.pinv(_herm(a), hermitian=True), [_H]),
    "lstsq": (lambda a, b: L.lstsq(a, b).solution, [_W, crandn(2, 4, 2, seed=6)]),
    "lstsq.residuals": (lambda a, b: L.lstsq(a, b).residuals, [_W, crandn(2, 4, 2, seed=6)]),
    "matrix_norm.nuc": (lambda a: L.matrix_norm(a, "nuc"), [_W]),
    "matrix_norm.2": (lambda a: L.matrix_norm(a, 2), [_Z]),
    "matrix_norm.-2": (lambda a: L.matrix_norm(a, -2), [_Z]),
    "cond": (L.cond, [_Z]),
    "solve_triangular": (lambda a, b: L.solve_triangular(a, b, upper=True), [_T, _B]),
    "solve_triangular.unit_right": (lambda a, b: L.solve_triangular(
        a, b.mT, upper=False, left=False, unitriangular=True), [_mh(_T), _B]),
    "matrix_exp": (L.matrix_exp, [_Z * 0.5]),
    "matrix_power": (lambda a: L.matrix_power(a, 3), [_Z]),
    "matrix_power.negative": (lambda a: L.matrix_power(a, -2), [_Z]),
}


@pytest.mark.parametrize("name", sorted(_GRADS))
def test_complex_gradients(name):
    fn, inputs = _GRADS[name]
    complex_gradcheck(fn, inputs)


@pytest.mark.parametrize("loss", [
    lambda a: L.eigh(a).eigenvectors.real,
    lambda a: L.svd(a).U.imag,
    lambda a: L.svd(a, full_matrices=False).Vh.real,
])
def test_phase_dependent_losses_raise(loss):
    A = fw.tensor(_H, requires_grad=True)
    with pytest.raises(AutogradError, match="e\\^\\{i phi\\}"):
        loss(A).sum().backward()


def test_real_input_keeps_real_results():
    a = np.random.default_rng(0).standard_normal((3, 3))
    A = fw.tensor(a, requires_grad=True)
    sign, logabs = L.slogdet(A)
    assert sign.dtype is fw.float64 and logabs.dtype is fw.float64
    (logabs + L.eigvalsh(A + A.mT).sum() + L.svdvals(A).sum()).backward()
    assert A.grad.dtype is fw.float64


def test_still_refusing_complex():
    Z = fw.tensor(_Z)
    for call in (lambda: L.lu_factor(Z), lambda: L.lu(Z),
                 lambda: L.householder_product(Z, Z[..., 0])):
        with pytest.raises(DTypeError):
            call()


def test_vecdot_conjugates_its_first_argument():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    y = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    got = L.vecdot(fw.tensor(x), fw.tensor(y))
    np.testing.assert_allclose(got.numpy(), np.sum(np.conj(x) * y, -1), rtol=1e-12)
    np.testing.assert_allclose(L.vecdot(fw.tensor(x), fw.tensor(x)).numpy().imag, 0,
                               atol=1e-12)
    complex_gradcheck(lambda a, b: L.vecdot(a, b, dim=0), [x, y])
    real = L.vecdot(fw.tensor(x.real), fw.tensor(y))  # real x: promoted, nothing to conj
    np.testing.assert_allclose(real.numpy(), np.sum(x.real * y, -1), rtol=1e-12)
