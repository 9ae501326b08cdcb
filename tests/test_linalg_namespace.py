"""``fw.linalg`` (torch.linalg semantics): the namespace itself, values against
``numpy.linalg`` for every function (batched, float32/float64, non-square), PyTorch's error
messages, gradients (float64 finite differences), ``fw.compile`` with ``fullgraph=True``
and ONNX export. Per-op records (forward/gradcheck/compile/ONNX/GPU for free) live in
``tests/opinfo_linalg_ops.py``."""

import math

import numpy as np
import pytest

import framework as fw
from framework.autograd import gradcheck
from framework.errors import FwTypeError
from framework.linalg import LinAlgError
from tests.linalg_helpers import as_tensor as _t, assert_close as _close, random_matrix as _np

L = fw.linalg


# ---------------------------------------------------------------------------------------
# the namespace
def test_namespace_is_the_linalg_module():
    import framework.linalg as mod
    import framework.ops.linalg as ops_mod
    assert fw.linalg is mod and fw.linalg is not ops_mod
    assert L.matmul is fw.matmul.__wrapped__ and fw.einsum is ops_mod.einsum
    for name in ("norm", "vector_norm", "matrix_norm", "det", "slogdet", "inv", "solve",
                 "cholesky", "qr", "eigh", "eigvalsh", "svd", "svdvals", "pinv", "lstsq",
                 "matrix_rank", "matrix_power", "cross", "vecdot", "multi_dot", "diagonal",
                 "tensorinv", "tensorsolve", "LinAlgError"):
        assert hasattr(L, name), name
        assert getattr(L, name).__doc__, name
    assert issubclass(LinAlgError, RuntimeError) and issubclass(LinAlgError, fw.FrameworkError)


# ---------------------------------------------------------------------------------------
# values
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_factorizations_match_numpy(dtype):
    tol = 1e-4 if dtype == np.float32 else 1e-10
    A = _np((2, 3, 4, 4), 4.0, dtype)
    B = _np((2, 3, 4, 2), 0.0, dtype)
    _close(L.det(_t(A)), np.linalg.det(A), tol)
    s, la = L.slogdet(_t(A))
    ws, wla = np.linalg.slogdet(A)
    _close(s, ws, tol)
    _close(la, wla, tol)
    assert L.slogdet(_t(A)).logabsdet.dtype is _t(A).dtype
    _close(L.inv(_t(A)), np.linalg.inv(A), tol)
    _close(L.solve(_t(A), _t(B)), np.linalg.solve(A, B), tol)
    S = A @ np.swapaxes(A, -1, -2)
    _close(L.cholesky(_t(S)), np.linalg.cholesky(S), tol * 10)
    _close(L.cholesky(_t(S), upper=True), np.swapaxes(np.linalg.cholesky(S), -1, -2), tol * 10)
    w, V = L.eigh(_t(S))
    ww, wV = np.linalg.eigh(S)
    _close(w, ww, tol * 100)
    assert (np.diff(w.numpy(), axis=-1) >= 0).all()  # ascending
    _close((V.mT @ _t(S) @ V), np.vectorize(np.diag, signature="(n)->(n,n)")(w.numpy()),
           tol * 100)
    _close(L.eigvalsh(_t(S), UPLO="U"), ww, tol * 100)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4), (2, 1, 6, 2)])
def test_qr_svd_non_square(shape):
    A = _np(shape)
    for mode in ("reduced", "complete"):
        Q, R = L.qr(_t(A), mode=mode)
        wQ, wR = np.linalg.qr(A, mode=mode)
        _close(Q, wQ)
        _close(R, wR)
        _close(Q @ R, A)
    Q, R = L.qr(_t(A), mode="r")
    assert Q.shape == (0,) and R.shape == np.linalg.qr(A, mode="r").shape
    for full in (True, False):
        U, S, Vh = L.svd(_t(A), full_matrices=full)
        wU, wS, wVh = np.linalg.svd(A, full_matrices=full)
        assert U.shape == wU.shape and Vh.shape == wVh.shape
        _close(S, wS)
        k = S.shape[-1]
        _close(U[..., :k] @ fw.diag_embed(S) @ Vh[..., :k, :], A)
        _close(U.mT @ U, np.broadcast_to(np.eye(U.shape[-1]), U.shape[:-2] + (U.shape[-1],) * 2))
    _close(L.svdvals(_t(A)), np.linalg.svd(A, compute_uv=False))


def test_norms_match_numpy():
    A = _np((2, 3, 4))
    x = _np((6,))
    for o in (None, 1, -1, 2, -2, math.inf, -math.inf, 3.5, 0):
        _close(L.norm(_t(x), o), np.linalg.norm(x, o))
    for o in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
        _close(L.matrix_norm(_t(A), o), np.linalg.norm(A, o, axis=(-2, -1)))
        _close(L.norm(_t(A[0]), o), np.linalg.norm(A[0], o))
        _close(L.norm(_t(A), o, dim=(2, 0)), np.linalg.norm(A, o, axis=(2, 0)))
        got = L.matrix_norm(_t(A), o, dim=(0, 2), keepdim=True)
        assert got.shape == (1, 3, 1)
        _close(got, np.linalg.norm(A, o, axis=(0, 2), keepdims=True))
    _close(L.norm(_t(A)), np.linalg.norm(A.reshape(-1)))
    _close(L.vector_norm(_t(A), 3, dim=(0, 2)), (np.abs(A) ** 3).sum((0, 2)) ** (1 / 3))
    assert L.vector_norm(_t(A), keepdim=True).shape == (1, 1, 1)
    _close(L.vector_norm(_t(A), 0), np.count_nonzero(A))


def test_pinv_lstsq_rank():
    A = _np((2, 5, 3))
    B = _np((2, 5, 2))
    _close(L.pinv(_t(A)), np.linalg.pinv(A))
    S = A[0] @ A[0].T  # rank 3 of 5, symmetric
    _close(L.pinv(_t(S), hermitian=True), np.linalg.pinv(S, hermitian=True), 1e-8)
    assert L.matrix_rank(_t(S)).item() == 3 and L.matrix_rank(_t(S)).dtype is fw.int64
    assert L.matrix_rank(_t(S), hermitian=True).item() == 3
    assert L.matrix_rank(_t(S), atol=1e9).item() == 0
    assert L.matrix_rank(_t(A)).tolist() == [3, 3]
    sol, res, rank, sv = L.lstsq(_t(A), _t(B))
    want = [np.linalg.lstsq(A[i], B[i], rcond=None) for i in range(2)]
    _close(sol, np.stack([w[0] for w in want]))
    _close(res, np.stack([w[1] for w in want]))
    assert rank.tolist() == [3, 3] and sv.shape == (0,)
    out = L.lstsq(_t(A), _t(B), driver="gelsd")
    _close(out.singular_values, np.stack([w[3] for w in want]))
    # rank-deficient and wide: minimum-norm solution, no residuals
    W = _np((3, 5))
    sol, res, rank, _ = L.lstsq(_t(W), _t(_np((3,))))
    assert res.shape == (0,) and rank.item() == 3 and sol.shape == (5,)
    D = np.array([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]])
    b = np.array([[1.0], [2.0], [3.0]])
    sol, res, rank, _ = L.lstsq(_t(D), _t(b))
    _close(sol, np.linalg.lstsq(D, b, rcond=None)[0])
    assert rank.item() == 1 and res.shape == (0,)


def test_products():
    A = _np((2, 3, 3), 2.0) / 2
    for n in (0, 1, 2, 3, 7, -1, -4):
        _close(L.matrix_power(_t(A), n), np.linalg.matrix_power(A, n), 1e-9)
    ts = [_np((3,)), _np((3, 10)), _np((10, 2)), _np((2, 6)), _np((6,))]
    _close(L.multi_dot([_t(t) for t in ts]), np.linalg.multi_dot(ts))
    _close(L.multi_dot([_t(t) for t in ts[1:4]]), np.linalg.multi_dot(ts[1:4]))
    x, y = _np((4, 3)), _np((3,))
    _close(L.vecdot(_t(x), _t(y)), x @ y)
    _close(L.vecdot(_t(x), _t(x), dim=0), (x * x).sum(0))
    a, b = _np((2, 4, 3)), _np((4, 3))
    _close(L.cross(_t(a), _t(b)), np.cross(a, b))
    _close(L.diagonal(_t(a)), np.diagonal(a, axis1=-2, axis2=-1))
    _close(L.diagonal(_t(a), offset=1, dim1=0, dim2=2), np.diagonal(a, 1, 0, 2))


def test_tensorinv_tensorsolve():
    A = _np((6, 8, 4, 3, 4), 0.0)
    A = A.reshape(48, 48) + 8 * np.eye(48)
    A = A.reshape(6, 8, 4, 3, 4)
    _close(L.tensorinv(_t(A), ind=2), np.linalg.tensorinv(A, ind=2), 1e-9)
    B = _np((6, 8))
    _close(L.tensorsolve(_t(A), _t(B)), np.linalg.tensorsolve(A, B), 1e-9)
    A2 = np.moveaxis(A, 2, 0)
    _close(L.tensorsolve(_t(A2), _t(B), dims=(0,)), np.linalg.tensorsolve(A2, B, axes=(0,)),
           1e-9)


def test_solve_broadcasting_vectors_and_left():
    A = _np((2, 3, 3), 3.0)
    b = _np((3,))
    _close(L.solve(_t(A), _t(b)), np.linalg.solve(A, b[:, None])[..., 0])
    bb = _np((2, 3))  # a batch of vectors (B.shape == A.shape[:-1])
    _close(L.solve(_t(A), _t(bb)), np.linalg.solve(A, bb[..., None])[..., 0])
    B = _np((4, 1, 3, 2))
    _close(L.solve(_t(A), _t(B)), np.linalg.solve(A, B))
    X = _np((5, 3))
    _close(L.solve(_t(A), _t(X), left=False), X @ np.linalg.inv(A))


def test_singular_and_edge_cases():
    S = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert L.det(_t(S)).item() == 0.0
    sign, la = L.slogdet(_t(S))
    assert sign.item() == 0.0 and la.item() == -math.inf
    with pytest.raises(LinAlgError, match=r"linalg.inv: The diagonal element 2 is zero, the "
                       r"inversion could not be completed because the input matrix is "
                       r"singular\."):
        L.inv(_t(S))
    batch = np.stack([np.eye(3), np.zeros((3, 3))])
    with pytest.raises(RuntimeError, match=r"linalg.inv: \(Batch element 1\): The diagonal "
                       r"element 1 is zero"):
        L.inv(_t(batch))
    with pytest.raises(LinAlgError, match="linalg.solve: The solver failed because the input "
                       "matrix is singular"):
        L.solve(_t(S), _t(np.ones(2)))
    notpd = np.array([[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(LinAlgError, match=r"^linalg.cholesky: The factorization could not be "
                       r"completed because the input is not positive-definite \(the leading "
                       r"minor of order 2 is not positive-definite\)\.$"):
        L.cholesky(_t(notpd))
    with pytest.raises(LinAlgError, match=r"\(Batch element 1\).*order 1 is"):
        L.cholesky(_t(np.stack([np.eye(3), -np.eye(3)])))
    # empty matrices / batches
    assert L.det(_t(np.zeros((0, 0)))).item() == 1.0
    assert L.inv(_t(np.zeros((0, 3, 3)))).shape == (0, 3, 3)
    assert L.svdvals(_t(np.zeros((2, 0, 3)))).shape == (2, 0)
    # only the lower (or upper) triangle is read
    A = _np((3, 3))
    low = np.tril(A) + np.tril(A, -1).T
    up = np.triu(A) + np.triu(A, 1).T
    _close(L.eigvalsh(_t(A)), np.linalg.eigvalsh(low))
    _close(L.eigvalsh(_t(A), UPLO="U"), np.linalg.eigvalsh(up))
    P = low @ low.T + np.eye(3)
    _close(L.cholesky(_t(np.tril(P) + 5 * np.triu(np.ones((3, 3)), 1))), np.linalg.cholesky(P))


def test_bad_inputs_raise_framework_errors():
    x = fw.ones(2, 3)
    with pytest.raises(fw.ShapeError, match=r"linalg.inv: expected a batch of square "
                       r"matrices, got shape \[2, 3\]"):
        L.inv(x)
    with pytest.raises(fw.ShapeError, match=r"linalg.det: A must have at least 2 dimensions"):
        L.det(fw.ones(3))
    with pytest.raises(fw.DTypeError, match=r"linalg.det: expected a float32, float64, "
                       r"complex64 or complex128 tensor.*got int64"):
        L.det(fw.ones(2, 2, dtype=fw.int64))
    with pytest.raises(fw.DTypeError, match="linalg.cholesky.*got float16"):
        L.cholesky(fw.ones(2, 2, dtype=fw.float16))
    with pytest.raises(fw.DTypeError, match="linalg.solve: expected A and B to have the same "
                       "dtype, got float32 and float64"):
        L.solve(fw.eye(2), fw.ones(2, 1, dtype=fw.float64))
    with pytest.raises(fw.ShapeError, match=r"linalg.solve: incompatible shapes.*\[3, 3\].*"
                       r"\[2, 1\]"):
        L.solve(fw.eye(3), fw.ones(2, 1))
    with pytest.raises(fw.ArgumentError, match="linalg.qr: mode must be"):
        L.qr(fw.eye(2), mode="economic")
    with pytest.raises(fw.ArgumentError, match="linalg.eigh: UPLO must be"):
        L.eigh(fw.eye(2), UPLO="X")
    with pytest.raises(fw.ArgumentError, match="linalg.matrix_norm: Order 3"):
        L.matrix_norm(fw.eye(2), 3)
    with pytest.raises(fw.ShapeError, match="linalg.norm: If dim is not specified but ord "
                       "is, the input must be 1D or 2D. Got 3D"):
        L.norm(fw.ones(2, 2, 2), 2)
    with pytest.raises(fw.DTypeError, match="linalg.vector_norm.*int64"):
        L.vector_norm(fw.ones(3, dtype=fw.int64))
    with pytest.raises(fw.ShapeError, match=r"linalg.multi_dot: tensors 0 and 1 with shapes "
                       r"\[2, 3\] and \[2, 2\]"):
        L.multi_dot([fw.ones(2, 3), fw.ones(2, 2)])
    with pytest.raises(fw.ArgumentError, match="multi_dot: expected at least 2 tensors"):
        L.multi_dot([fw.ones(2, 2)])
    with pytest.raises(FwTypeError, match="linalg.matrix_power: n must be an int"):
        L.matrix_power(fw.eye(2), 1.5)
    with pytest.raises(fw.ArgumentError, match="linalg.lstsq: driver must be"):
        L.lstsq(fw.eye(2), fw.ones(2, 1), driver="gesv")


# ---------------------------------------------------------------------------------------
# gradients
def _sym(a):
    return (a + a.mT) / 2


GRAD_CASES = {
    "det": (lambda a: L.det(a), [(2, 3, 3)]),
    "slogdet": (lambda a: L.slogdet(a).logabsdet, [(3, 3)]),
    "inv": (lambda a: L.inv(a), [(2, 3, 3)]),
    "solve": (lambda a, b: L.solve(a, b), [(2, 3, 3), (3, 2)]),
    "cholesky": (lambda a: L.cholesky(a @ a.mT + 3 * fw.eye(3, dtype=a.dtype)), [(2, 3, 3)]),
    "qr": (lambda a: tuple(L.qr(a)), [(5, 3)]),
    "eigh": (lambda a: (lambda r: (r.eigenvalues, r.eigenvectors * r.eigenvectors))(
        L.eigh(_sym(a))), [(2, 4, 4)]),
    "svdvals": (lambda a: L.svdvals(a), [(4, 3)]),
    "svd_reconstruction": (lambda a: (lambda r: r.U @ fw.diag_embed(r.S) @ r.Vh)(
        L.svd(a, full_matrices=False)), [(3, 5)]),
    "norms": (lambda a: (L.norm(a), L.matrix_norm(a, "nuc"), L.matrix_norm(a, 2),
                         L.vector_norm(a, 3, dim=0)), [(4, 3)]),
    "pinv": (lambda a: L.pinv(a), [(4, 3)]),
    "matrix_power": (lambda a: (L.matrix_power(a, 3), L.matrix_power(a, -2)), [(3, 3)]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradcheck(name):
    fn, shapes = GRAD_CASES[name]
    args = [_t(_np(s, 2.0 if s[-1] == s[-2] and name not in ("eigh",) else 0.0), grad=True)
            for s in shapes]
    assert gradcheck(fn, tuple(args))


def test_backward_limits_are_clear():
    a = _t(_np((3, 5)), grad=True)
    with pytest.raises(NotImplementedError, match="linalg.qr: the backward is implemented "
                       r"for inputs with rows >= columns only, got shape \[3, 5\]"):
        L.qr(a).R.sum().backward()
    with pytest.raises(NotImplementedError, match="linalg.svd: the backward of "
                       "full_matrices=True is not implemented"):
        L.svd(a).U.sum().backward()
    with pytest.raises(NotImplementedError, match="mode='r'"):
        L.qr(a.mT, mode="r").R.sum().backward()
    b = _t(_np((3, 3)), grad=True)
    L.svd(b).U.sum().backward()  # square: full == reduced
    assert b.grad.shape == (3, 3)


# ---------------------------------------------------------------------------------------
# compile and ONNX
def test_compile_fullgraph_matches_eager(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def f(a, b):
        s = a @ a.mT + 3 * fw.eye(3)
        q, r = L.qr(a)
        w, v = L.eigh(s)
        return (L.det(a) + L.slogdet(a).logabsdet, L.inv(a), L.solve(a, b), L.cholesky(s),
                q @ r, w, L.svdvals(a), L.matrix_norm(a, "nuc"), L.matrix_power(a, -2))
    cf = fw.compile(f, fullgraph=True, mode="always")
    a = _t(_np((2, 3, 3), 3.0, np.float32))
    b = _t(_np((2, 3, 1), 0.0, np.float32))
    got, want = cf(a, b), f(a, b)
    assert not cf.stats()["graph_breaks"]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-4)
    assert "linalg_inv" in cf.code(a, b)


def test_compiled_backward_through_factorizations():
    def loss(a):
        return L.det(a) + L.inv(a).sum() + L.svdvals(a).sum()
    a = _t(_np((3, 3), 3.0), grad=True)
    g_eager = fw.autograd.grad(loss(a), a)[0]
    g = fw.compile(fw.grad(loss), fullgraph=True, mode="always")(a)
    _close(g, g_eager.numpy(), 1e-9)


def test_onnx_det_and_composites():
    pytest.importorskip("onnxruntime")
    a = _t(_np((2, 3, 3), 3.0, np.float32))
    x = _t(_np((3, 4), 0.0, np.float32))
    fw.onnx.export(lambda t: L.det(t), (a,), verify=True, rtol=1e-4, atol=1e-5)
    fw.onnx.export(lambda t: tuple(L.slogdet(t)), (a,), verify=True, rtol=1e-4, atol=1e-5)
    fw.onnx.export(lambda t: (L.norm(t), L.vector_norm(t, 3, dim=0), L.matrix_norm(t, 1),
                              L.matrix_norm(t, -math.inf), L.matrix_norm(t, "fro")),
                   (x,), verify=True, rtol=1e-4, atol=1e-5)
    fw.onnx.export(lambda t: L.matrix_power(t, 5), (a,), verify=True, rtol=1e-4, atol=1e-4)
    fw.onnx.export(lambda t, u: L.multi_dot([t, u, t]), (x, x.mT.contiguous()),
                   verify=True, rtol=1e-4, atol=1e-4)


def test_onnx_refuses_factorizations_by_name():
    pytest.importorskip("onnxruntime")
    a = _t(_np((3, 3), 3.0, np.float32))
    for fn, op in ((L.inv, "linalg_inv"), (L.svdvals, "linalg_svd"),
                   (lambda t: L.qr(t).Q, "linalg_qr"), (L.cholesky, "linalg_cholesky")):
        with pytest.raises(fw.GraphBreak, match=f"onnx export: op '{op}'.*has no ONNX "
                           "equivalent"):
            fw.onnx.export(fn, (a @ a.mT,))
