"""The second half of ``fw.linalg`` (solve_triangular, the LU family, matrix_exp, the
``*_ex`` variants, cond, vander, householder_product; eig/eigvals: test_linalg_eig.py),
PyTorch's top-level spellings and Tensor methods, and ``nn.utils.parametrizations.orthogonal``:
values against NumPy, PyTorch's errors, gradients (float64 finite differences), batches,
``fw.compile`` and the ONNX refusal. Per-op records (forward / gradcheck / compile / ONNX /
GPU suites) are in ``tests/opinfo_linalg_extra.py``."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.autograd import gradcheck, gradgradcheck
from framework.errors import ArgumentError, DTypeError, ShapeError
from framework.linalg import LinAlgError
from tests.linalg_helpers import as_tensor as _t, assert_close as _close, random_matrix as _np
from tests.opinfo_linalg_extra import expm_ref, lu_ref, tri_ref

L = fw.linalg


# ---------------------------------------------------------------------------------------
# the namespace
def test_new_names_exist_with_docstrings():
    for name in ("solve_triangular", "lu_factor", "lu_factor_ex", "lu", "lu_solve",
                 "matrix_exp", "cholesky_ex", "inv_ex", "solve_ex", "cond", "vander",
                 "householder_product", "eig", "eigvals"):
        assert getattr(L, name).__doc__, name
    for name in ("triangular_solve", "lu_unpack", "matrix_exp", "lu", "lu_solve"):
        assert getattr(fw, name).__doc__, name
    for name in ("matrix_exp", "triangular_solve", "lu", "lu_solve"):
        assert callable(getattr(fw.Tensor, name)), name


# ---------------------------------------------------------------------------------------
# solve_triangular / triangular_solve
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("unit", [True, False])
def test_solve_triangular_matches_numpy(dtype, upper, unit):
    tol = 1e-4 if dtype == np.float32 else 1e-10
    A = _np((2, 4, 4), 3.0, dtype)
    B = _np((2, 4, 3), 0.0, dtype)
    T = tri_ref(A, upper, unit)
    _close(L.solve_triangular(_t(A), _t(B), upper=upper, unitriangular=unit),
           np.linalg.solve(T, B), tol)
    Br = _np((2, 3, 4), 0.0, dtype)
    want = np.swapaxes(np.linalg.solve(np.swapaxes(T, -1, -2), np.swapaxes(Br, -1, -2)), -1, -2)
    _close(L.solve_triangular(_t(A), _t(Br), upper=upper, left=False, unitriangular=unit),
           want, tol)


def test_solve_triangular_broadcasts_and_ignores_the_other_triangle():
    A = _np((3, 1, 3, 3), 3.0)
    B = _np((2, 3, 2))
    want = np.linalg.solve(np.broadcast_to(np.tril(A), (3, 2, 3, 3)),
                           np.broadcast_to(B, (3, 2, 3, 2)))
    _close(L.solve_triangular(_t(A), _t(B), upper=False), want)
    junk = A + np.triu(np.full((3, 3), 100.0), 1)
    _close(L.solve_triangular(_t(junk), _t(B), upper=False), want)


def test_solve_triangular_zero_diagonal_gives_inf_not_an_error():
    A = np.array([[1.0, 2.0], [0.0, 0.0]])
    X = L.solve_triangular(_t(A), _t(np.ones((2, 1))), upper=True).numpy()
    assert not np.isfinite(X).all()


def test_solve_triangular_errors():
    A, B = _t(_np((3, 3), 3.0)), _t(_np((4, 2)))
    with pytest.raises(ShapeError, match=r"Incompatible shapes of A and B for the equation "
                                         r"AX = B \(3x3 and 4x2\)"):
        L.solve_triangular(A, B, upper=True)
    with pytest.raises(ShapeError, match="XA = B"):
        L.solve_triangular(A, _t(_np((2, 4))), upper=True, left=False)
    with pytest.raises(ShapeError, match="square"):
        L.solve_triangular(_t(_np((3, 4))), B, upper=True)
    with pytest.raises(ShapeError, match="not broadcastable|broadcast"):
        L.solve_triangular(_t(_np((2, 3, 3))), _t(_np((3, 3, 1))), upper=True)
    with pytest.raises(DTypeError, match="same dtype"):
        L.solve_triangular(A, B[:3].float(), upper=True)
    with pytest.raises(TypeError):
        L.solve_triangular(A, B[:3])  # upper is required, as in PyTorch


def test_triangular_solve_torch_spelling():
    A, b = _np((2, 3, 3), 3.0), _np((3, 2))
    At = _t(A)
    X, cloned = fw.triangular_solve(_t(b), At)  # upper=True by default
    _close(X, np.linalg.solve(np.triu(A), np.broadcast_to(b, (2, 3, 2))))
    _close(cloned, A)
    assert cloned._data is not At._data
    Xt, _ = _t(b).triangular_solve(At, upper=False, transpose=True)
    _close(Xt, np.linalg.solve(np.swapaxes(np.tril(A), -1, -2), b))


# ---------------------------------------------------------------------------------------
# LU
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 5, 5), (3, 5), (2, 5, 3), (1, 1)])
def test_lu_factor_reconstructs_and_matches_getrf(shape):
    A = _np(shape)
    LU, piv = L.lu_factor(_t(A))
    assert piv.dtype is fw.int32 and tuple(piv.shape) == shape[:-2] + (min(shape[-2:]),)
    P, Lm, U, LU_ref, piv_ref, _ = lu_ref(A)
    _close(LU, LU_ref)
    np.testing.assert_array_equal(piv.numpy(), piv_ref)
    assert piv.numpy().min() >= 1 and piv.numpy().max() <= shape[-2]
    p, lo, up = L.lu(_t(A))
    _close(p @ lo @ up, A)
    _close(p, P)
    _close(lo, Lm)
    _close(up, U)
    P2, L2, U2 = fw.lu_unpack(LU, piv)
    _close(P2, P)
    _close(L2, Lm)
    _close(U2, U)


def test_lu_singular_matrices():
    S = np.array([[[2.0, 1.0], [1.0, 3.0]], [[1.0, 2.0], [2.0, 4.0]]])
    with pytest.raises(LinAlgError, match=r"linalg.lu_factor: \(Batch element 1\): U\[2,2\] "
                                          r"is zero and using it on lu_solve"):
        L.lu_factor(_t(S))
    LU, piv, info = L.lu_factor_ex(_t(S))
    assert info.dtype is fw.int32 and info.tolist() == [0, 2]
    with pytest.raises(LinAlgError, match="U\\[2,2\\] is zero"):
        L.lu_factor_ex(_t(S), check_errors=True)
    P, Lm, U = L.lu(_t(S))  # no error: the factorization exists
    _close(P @ Lm @ U, S)
    a_lu, a_piv, infos = fw.lu(_t(S), get_infos=True)
    assert infos.tolist() == [0, 2]
    with pytest.raises(LinAlgError):
        fw.lu(_t(S))
    with pytest.raises(NotImplementedError, match="without pivoting"):
        L.lu_factor(_t(S), pivot=False)


def test_lu_unpack_flags_and_errors():
    LU, piv = L.lu_factor(_t(_np((3, 3))))
    P, Lm, U = fw.lu_unpack(LU, piv, unpack_data=False)
    assert P.shape == (3, 3) and Lm.numel() == 0 and U.numel() == 0
    P, Lm, U = fw.lu_unpack(LU, piv, unpack_pivots=False)
    assert P.numel() == 0 and Lm.shape == (3, 3)
    with pytest.raises(ShapeError, match="LU_pivots of shape"):
        fw.lu_unpack(LU, piv[:2])
    with pytest.raises(DTypeError, match="int32"):
        fw.lu_unpack(LU, piv.float())


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve_matches_numpy_solve(left, adjoint):
    A = _np((2, 4, 4), 2.0)
    B = _np((3, 1, 4, 2) if left else (3, 1, 2, 4))
    LU, piv = L.lu_factor(_t(A))
    M = np.swapaxes(A, -1, -2) if adjoint else A
    if left:
        want = np.linalg.solve(np.broadcast_to(M, (3, 2, 4, 4)), np.broadcast_to(B, (3, 2, 4, 2)))
    else:
        want = np.swapaxes(np.linalg.solve(np.broadcast_to(np.swapaxes(M, -1, -2), (3, 2, 4, 4)),
                                           np.broadcast_to(np.swapaxes(B, -1, -2),
                                                           (3, 2, 4, 2))), -1, -2)
    _close(L.lu_solve(LU, piv, _t(B), left=left, adjoint=adjoint), want, 1e-9)


def test_lu_solve_torch_spellings_and_errors():
    A, b = _np((3, 3), 2.0), _np((3, 2))
    _close(fw.lu_solve(_t(b), *fw.lu(_t(A))), np.linalg.solve(A, b))
    _close(_t(b).lu_solve(*_t(A).lu()), np.linalg.solve(A, b))
    LU, piv = L.lu_factor(_t(A))
    with pytest.raises(ShapeError, match="Incompatible shapes"):
        L.lu_solve(LU, piv, _t(_np((4, 2))))
    with pytest.raises(ShapeError, match="pivots of shape"):
        L.lu_solve(LU, piv[:2], _t(b))
    with pytest.raises(DTypeError, match="same dtype"):
        L.lu_solve(LU, piv, _t(b).float())


def test_zero_size_inputs():
    for shape in ((0, 3, 3), (3, 0), (2, 3, 0)):
        LU, piv, info = L.lu_factor_ex(fw.zeros(*shape))
        assert LU.shape == shape and piv.shape == shape[:-2] + (0 if 0 in shape[-2:] else 3,)
        P, Lm, U = L.lu(fw.zeros(*shape))
        m, n = shape[-2:]
        assert (P.shape[-2:], Lm.shape[-2:], U.shape[-2:]) == ((m, m), (m, min(m, n)),
                                                              (min(m, n), n))
    assert L.solve_triangular(fw.zeros(0, 3, 3), fw.zeros(0, 3, 2), upper=True).shape == \
        (0, 3, 2)
    assert L.lu_solve(*L.lu_factor(fw.eye(3)), fw.zeros(3, 0)).shape == (3, 0)
    assert L.inv_ex(fw.zeros(0, 2, 2)).info.shape == (0,)


# ---------------------------------------------------------------------------------------
# matrix_exp
def test_matrix_exp_known_values():
    d = np.array([0.5, -1.0, 2.0])
    _close(L.matrix_exp(_t(np.diag(d))), np.diag(np.exp(d)), 1e-13)
    N = np.triu(np.ones((4, 4)), 1)  # nilpotent: exp(N) = I + N + N^2/2 + N^3/6
    N2 = N @ N
    _close(L.matrix_exp(_t(N)), np.eye(4) + N + N2 / 2 + N2 @ N / 6, 1e-13)
    _close(L.matrix_exp(_t(np.zeros((2, 3, 3)))), np.broadcast_to(np.eye(3), (2, 3, 3)))
    R = L.matrix_exp(_t(np.array([[0.0, -1.0], [1.0, 0.0]]))).numpy()  # a rotation by 1 rad
    _close(R, [[math.cos(1), -math.sin(1)], [math.sin(1), math.cos(1)]], 1e-14)


@pytest.mark.parametrize("scale", [1e-4, 0.02, 0.2, 0.9, 2.0, 8.0, 50.0])
def test_matrix_exp_symmetric_matches_eigendecomposition(scale):
    S = _np((3, 4, 4))
    S = (S + np.swapaxes(S, -1, -2)) / 2 * scale
    w, V = np.linalg.eigh(S)
    want = (V * np.exp(w)[..., None, :]) @ np.swapaxes(V, -1, -2)
    got = L.matrix_exp(_t(S)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    got32 = L.matrix_exp(_t(S.astype(np.float32))).numpy()
    assert got32.dtype == np.float32
    if scale < 20:  # exp(50 * ...) overflows float32
        np.testing.assert_allclose(got32, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_matrix_exp_general_matrices_against_taylor_and_identities():
    A = _np((5, 3, 3)) * np.array([0.01, 0.3, 1.0, 3.0, 10.0])[:, None, None]  # mixed degrees
    E = L.matrix_exp(_t(A)).numpy()
    np.testing.assert_allclose(E, expm_ref(A), rtol=1e-10, atol=1e-10 * np.abs(E).max())
    Einv = L.matrix_exp(_t(-A)).numpy()
    _close(E[:3] @ Einv[:3], np.broadcast_to(np.eye(3), (3, 3, 3)), 1e-10)
    K = _np((3, 3))
    Q = fw.matrix_exp(_t(K - K.T)).numpy()  # skew-symmetric -> orthogonal
    _close(Q.T @ Q, np.eye(3), 1e-13)
    _close(_t(A).matrix_exp(), E)


def test_matrix_exp_edge_cases_and_errors():
    assert L.matrix_exp(_t(np.zeros((2, 0, 0)))).shape == (2, 0, 0)
    out = L.matrix_exp(_t(np.array([[np.inf, 0.0], [0.0, 1.0]]))).numpy()
    assert np.isnan(out).all()
    with pytest.raises(ShapeError, match="square"):
        L.matrix_exp(_t(_np((2, 3))))
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        L.matrix_exp(_t(_np((3,))))
    with pytest.raises(DTypeError, match="float32, float64, complex64 or complex128"):
        L.matrix_exp(fw.tensor([[1, 2], [3, 4]]))


# ---------------------------------------------------------------------------------------
# cholesky_ex / inv_ex / solve_ex
def test_ex_variants_report_info():
    A = _np((3, 3), 3.0)
    S = A @ A.T + 3 * np.eye(3)
    bad = np.stack([S, -np.eye(3)])
    Lx, info = L.cholesky_ex(_t(bad))
    assert info.dtype is fw.int32 and info.tolist() == [0, 1]
    _close(Lx[0], np.linalg.cholesky(S))
    U, info = L.cholesky_ex(_t(S), upper=True)
    _close(U, np.linalg.cholesky(S).T)
    assert info.tolist() == 0
    with pytest.raises(LinAlgError, match=r"linalg.cholesky_ex: \(Batch element 1\).*order 1"):
        L.cholesky_ex(_t(bad), check_errors=True)
    sing = np.stack([A, np.array([[1.0, 2, 3], [2, 4, 6], [1, 0, 1]])])
    Ainv, info = L.inv_ex(_t(sing))
    assert info.tolist() == [0, 3]  # getrf: U[3, 3] is the zero pivot
    _close(Ainv[0], np.linalg.inv(A))
    with pytest.raises(LinAlgError, match=r"linalg.inv_ex: \(Batch element 1\): The diagonal "
                                          r"element 3 is zero"):
        L.inv_ex(_t(sing), check_errors=True)
    b = _np((3,))
    X, info = L.solve_ex(_t(sing), _t(b))
    assert info.tolist() == [0, 3] and X.shape == (2, 3)
    _close(X[0], np.linalg.solve(A, b))
    Xr, _ = L.solve_ex(_t(A), _t(_np((2, 3))), left=False)
    _close(Xr @ _t(A), Xr.numpy() @ A)
    with pytest.raises(LinAlgError, match="solve_ex.*singular"):
        L.solve_ex(_t(sing), _t(b), check_errors=True)


# ---------------------------------------------------------------------------------------
# cond, vander, householder_product, eig
@pytest.mark.parametrize("p", [None, 2, -2, "fro", "nuc", 1, -1, math.inf, -math.inf])
def test_cond_matches_numpy(p):
    A = _np((2, 4, 4), 1.0)
    _close(L.cond(_t(A), p), np.linalg.cond(A, p), 1e-9)


def test_cond_singular_nonsquare_and_errors():
    S = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert L.cond(_t(S), 1).item() == math.inf
    assert L.cond(_t(S)).item() > 1e15
    W = _np((3, 5))
    _close(L.cond(_t(W)), np.linalg.cond(W), 1e-9)
    with pytest.raises(ShapeError, match=r"cond\(ord=1\): A must be batches of square"):
        L.cond(_t(W), 1)
    with pytest.raises(ArgumentError, match="invalid norm type"):
        L.cond(_t(S), 3)


def test_vander_increasing_powers():
    x = np.array([2.0, -1.0, 0.5, 3.0])
    _close(L.vander(_t(x)), np.vander(x, increasing=True))
    _close(L.vander(_t(x), N=6), np.vander(x, 6, increasing=True))
    xb = _np((2, 3))
    _close(L.vander(_t(xb)), np.stack([np.vander(r, increasing=True) for r in xb]))
    vi = L.vander(fw.tensor([1, 2, 3], dtype=fw.int32))
    assert vi.dtype is fw.int64 and vi.tolist() == [[1, 1, 1], [1, 2, 4], [1, 3, 9]]
    with pytest.raises(ArgumentError, match="N must be greater than 1"):
        L.vander(_t(x), N=1)
    with pytest.raises(DTypeError):
        L.vander(fw.tensor([True, False]))


def test_householder_product_is_the_product_of_reflectors():
    A, tau = _np((2, 5, 3)), _np((2, 3)) * 0.3
    Q = L.householder_product(_t(A), _t(tau)).numpy()
    for b in range(2):
        want = np.eye(5)
        for i in range(3):
            v = np.concatenate([np.zeros(i), [1.0], A[b, i + 1:, i]])
            want = want @ (np.eye(5) - tau[b, i] * np.outer(v, v))
        _close(Q[b], want[:, :3])
    # with tau = 2 / ||v||^2 the reflectors are orthogonal, and so is Q
    V = np.tril(A, -1) + np.eye(5, 3)
    Qo = L.householder_product(_t(A), _t(2.0 / (V * V).sum(-2))).numpy()
    _close(np.swapaxes(Qo, -1, -2) @ Qo, np.broadcast_to(np.eye(3), (2, 3, 3)))
    with pytest.raises(ShapeError, match="greater than or equal"):
        L.householder_product(_t(_np((3, 5))), _t(_np((2,))))
    with pytest.raises(ShapeError, match="tau.shape"):
        L.householder_product(_t(_np((5, 3))), _t(_np((4,))))


# eig / eigvals (complex results): tests/test_linalg_eig.py


# ---------------------------------------------------------------------------------------
# gradients (float64 finite differences)
@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("unit", [True, False])
@pytest.mark.parametrize("left", [True, False])
def test_solve_triangular_gradcheck(upper, unit, left):
    A = _t(_np((2, 3, 3), 3.0), True)
    B = _t(_np((3, 2) if left else (2, 3)), True)  # broadcast over A's batch
    assert gradcheck(lambda a, b: L.solve_triangular(a, b, upper=upper, left=left,
                                                     unitriangular=unit), (A, B))


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (3, 5), (5, 3)])
def test_lu_gradcheck(shape):
    A = _t(_np(shape), True)
    assert gradcheck(lambda a: L.lu_factor(a).LU, (A,))
    assert gradcheck(lambda a: tuple(L.lu(a)), (A,))


def test_lu_solve_and_second_order_gradients():
    A, B = _t(_np((2, 3, 3), 2.0), True), _t(_np((2, 3, 2)), True)
    for adjoint in (False, True):
        assert gradcheck(lambda a, b: L.lu_solve(*L.lu_factor(a), b, adjoint=adjoint), (A, B))
    LU, piv = L.lu_factor(A.detach())
    LU.requires_grad_(True)
    assert gradcheck(lambda lu, b: L.lu_solve(lu, piv, b), (LU, B))
    assert gradgradcheck(lambda a: L.lu_factor(a).LU, (_t(_np((3, 3)), True),))
    assert gradgradcheck(lambda a, b: L.solve_triangular(a, b, upper=True),
                         (_t(_np((3, 3), 3.0), True), _t(_np((3, 1)), True)))


def test_matrix_exp_gradients():
    for scale in (0.05, 1.0, 6.0):  # Pade 3 .. 13 with squaring
        A = _t(_np((2, 3, 3)) * scale, True)
        assert gradcheck(L.matrix_exp, (A,), rtol=1e-4)
    assert gradgradcheck(L.matrix_exp, (_t(_np((2, 2)), True),))


def test_composite_and_ex_gradients():
    A = _t(_np((3, 3), 2.0), True)
    for p in (None, -2, "fro", "nuc"):
        assert gradcheck(lambda a: L.cond(a, p), (A,))
    assert gradcheck(lambda x: L.vander(x, N=4), (_t(_np((2, 3)), True),))
    assert gradcheck(L.householder_product, (_t(_np((4, 3)), True), _t(_np((2,)), True)))
    eye3 = fw.eye(3, dtype=fw.float64)
    assert gradcheck(lambda a: L.cholesky_ex(a @ a.mT + 3 * eye3).L, (A,))
    assert gradcheck(lambda a: L.inv_ex(a).inverse, (A,))
    assert gradcheck(lambda a, b: L.solve_ex(a, b).result, (A, _t(_np((3,)), True)))


# ---------------------------------------------------------------------------------------
# fw.compile and ONNX
def test_compiled_matches_eager(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def f(a, b):
        LU, piv = L.lu_factor(a)
        x = L.lu_solve(LU, piv, b)
        t = L.solve_triangular(a, b, upper=True)
        return x + t, L.matrix_exp(a * 0.1), L.inv_ex(a).inverse
    cf = fw.compile(f, fullgraph=True, mode="always")
    a, b = _t(_np((2, 3, 3), 3.0)), _t(_np((2, 3, 2)))
    got, want = cf(a, b), f(a, b)
    assert not cf.stats()["graph_breaks"]
    for g, w in zip(got, want):
        _close(g, w.numpy(), 1e-12)


def test_onnx_export_refuses_by_name():
    with pytest.raises(fw.GraphBreak, match="linalg_matrix_exp"):
        fw.onnx.export(lambda a: L.matrix_exp(a), (_t(_np((3, 3))),))


# ---------------------------------------------------------------------------------------
# nn.utils.parametrizations.orthogonal
def _gram_error(W):
    W = W.detach().numpy().astype(np.float64)
    G = W.T @ W if W.shape[-2] >= W.shape[-1] else W @ W.T
    return np.abs(G - np.eye(G.shape[0])).max()


@pytest.mark.parametrize("shape,orth_map,triv", [
    ((4, 4), None, True), ((5, 3), None, True), ((3, 5), None, True),
    ((4, 4), "cayley", True), ((5, 3), "matrix_exp", True), ((3, 5), "cayley", True),
    ((4, 4), "householder", False), ((5, 3), "householder", False),
    ((3, 5), "householder", True)])
def test_orthogonal_stays_orthogonal_under_training(shape, orth_map, triv):
    fw.manual_seed(0)
    m = nn.utils.parametrizations.orthogonal(nn.Linear(shape[1], shape[0]),
                                             orthogonal_map=orth_map, use_trivialization=triv)
    assert _gram_error(m.weight) < 1e-5
    keys = ["bias", "parametrizations.weight.original"]
    assert list(m.state_dict()) == keys + (["parametrizations.weight.0.base"] if triv else [])
    opt = optim.SGD(m.parameters(), lr=0.2)
    w0 = m.weight.detach().numpy().copy()
    for _ in range(4):
        x = fw.randn(6, shape[1])
        loss = (m(x) - 1.0).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        assert m.parametrizations.weight.original.grad is not None
        opt.step()
    assert np.abs(m.weight.detach().numpy() - w0).max() > 1e-3  # it trained
    assert _gram_error(m.weight) < 1e-5


def test_orthogonal_initial_value_assignment_and_defaults():
    lin = nn.Linear(4, 4).double()
    Q0, _ = np.linalg.qr(_np((4, 4)))
    lin.weight.data = _t(Q0)
    nn.utils.parametrizations.orthogonal(lin)
    assert lin.parametrizations.weight[0].orthogonal_map == "matrix_exp"
    _close(lin.weight, Q0, 1e-12)  # an orthogonal weight is kept as it is
    _close(lin.parametrizations.weight.original, -np.eye(4))
    Q1, _ = np.linalg.qr(_np((4, 4)))
    lin.weight = _t(Q1)
    _close(lin.weight, Q1, 1e-12)
    tall = nn.utils.parametrizations.orthogonal(nn.Linear(3, 5))
    assert tall.parametrizations.weight[0].orthogonal_map == "householder"
    h = nn.utils.parametrizations.orthogonal(nn.Linear(3, 5).double(), use_trivialization=False)
    Qt, _ = np.linalg.qr(_np((5, 3)))
    h.weight = _t(Qt)
    _close(h.weight, Qt, 1e-12)
    e = nn.utils.parametrizations.orthogonal(nn.Linear(3, 3), orthogonal_map="matrix_exp",
                                             use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        e.weight = fw.eye(3)


def test_orthogonal_errors_and_batches():
    P = nn.utils.parametrizations
    with pytest.raises(ValueError, match="orthogonal_map has to be one of"):
        P.orthogonal(nn.Linear(3, 3), orthogonal_map="qr")
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices"):
        P.orthogonal(nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match="no parameter or buffer with name 'kernel'"):
        P.orthogonal(nn.Linear(3, 3), "kernel")

    class Batched(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(fw.randn(2, 3, 3))
    b = P.orthogonal(Batched())
    W = b.weight.detach().numpy()
    _close(np.swapaxes(W, -1, -2) @ W, np.broadcast_to(np.eye(3), (2, 3, 3)), 1e-5)
