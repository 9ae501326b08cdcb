"""PyTorch top-level products, grids, statistics, integration and linalg spellings
(framework/ops/torch_products.py): values against NumPy (np.kron, np.tensordot, np.cov,
np.corrcoef, np.vander, np.trapezoid...), errors, gradients (gradcheck in float64),
fw.compile (fullgraph) against eager and ONNX export."""

import itertools
import math

import numpy as np
import pytest

import framework as fw
from framework.autograd import gradcheck
from tests.function_checks import (check_compile_fullgraph, check_onnx_export,
                                   rand_tensor as _rand, to_np as _np)

NAN, INF = math.nan, math.inf


def _close(got, want, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(_np(got), want, rtol=rtol, atol=atol)


# -- grids -------------------------------------------------------------------------------------
@pytest.mark.parametrize("indexing", [None, "ij", "xy"])
@pytest.mark.parametrize("sizes", [(3,), (3, 4), (2, 3, 4), (0, 2)])
def test_meshgrid(indexing, sizes):
    arrays = [np.arange(float(n)) + 10 * i for i, n in enumerate(sizes)]
    got = fw.meshgrid(*[fw.tensor(a) for a in arrays], indexing=indexing)
    want = np.meshgrid(*arrays, indexing=indexing or "ij")  # PyTorch's default: 'ij'
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_array_equal(_np(g), w)
    as_list = fw.meshgrid([fw.tensor(a) for a in arrays], indexing=indexing)
    assert [g.shape for g in as_list] == [g.shape for g in got]


def test_meshgrid_scalars_and_errors():
    a, b = fw.meshgrid(fw.tensor(1.0), fw.tensor([1.0, 2.0]))
    assert a.shape == b.shape == (1, 2)
    with pytest.raises(fw.ShapeError, match="meshgrid"):
        fw.meshgrid(fw.ones(2, 2))
    with pytest.raises(fw.DTypeError, match="meshgrid"):
        fw.meshgrid(fw.ones(2), fw.arange(2))
    with pytest.raises(fw.ArgumentError, match="indexing"):
        fw.meshgrid(fw.ones(2), indexing="ji")
    with pytest.raises(fw.ArgumentError, match="meshgrid"):
        fw.meshgrid()


def test_cartesian_prod_and_combinations():
    a, b, c = [1, 2], [3, 4, 5], [6, 7]
    got = fw.cartesian_prod(fw.tensor(a), fw.tensor(b), fw.tensor(c))
    assert got.tolist() == [list(t) for t in itertools.product(a, b, c)]
    one = fw.tensor([1, 2])
    assert fw.cartesian_prod(one) is one
    x = [1.5, 2.5, 3.5, 4.5]
    for r, wr in ((2, False), (3, False), (2, True), (1, False)):
        gen = itertools.combinations_with_replacement if wr else itertools.combinations
        got = fw.combinations(fw.tensor(x), r, wr)
        assert got.tolist() == [list(t) for t in gen(x, r)]
    assert fw.combinations(fw.tensor([1, 2]), 3).shape == (0, 3)
    assert fw.combinations(fw.tensor([1, 2]), 0).shape == (0,)
    with pytest.raises(fw.ShapeError, match="combinations"):
        fw.combinations(fw.ones(2, 2))
    with pytest.raises(fw.ArgumentError, match="combinations"):
        fw.combinations(fw.ones(2), -1)
    with pytest.raises(fw.ShapeError, match="cartesian_prod"):
        fw.cartesian_prod(fw.ones(2), fw.ones(2, 2))


# -- products ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [((2, 3), (3, 2, 2)), ((4,), (2, 3)), ((), (3,)),
                                    ((2, 1, 3), (1, 2, 1))])
def test_kron(shapes):
    a, b = _rand(*shapes[0]), _rand(*shapes[1], seed=1)
    _close(fw.kron(a, b), np.kron(_np(a), _np(b)))
    _close(a.kron(b), np.kron(_np(a), _np(b)))
    assert fw.kron(fw.tensor([[1, 2]]), fw.tensor([[3], [4]])).tolist() == [[3, 6], [4, 8]]


@pytest.mark.parametrize("dims, sa, sb", [
    (2, (3, 4, 5), (4, 5, 3)), (1, (3, 4, 5), (5, 2)), (0, (3, 2), (2, 4)),
    (([1], [0]), (3, 4, 5), (4, 2)), (([1, 0], [0, 2]), (3, 4, 5), (4, 2, 3)),
    ([[0, 1], [1, 0]], (3, 4, 5), (4, 3, 2)), (([-1], [-2]), (2, 3), (3, 2))])
def test_tensordot(dims, sa, sb):
    a, b = _rand(*sa), _rand(*sb, seed=1)
    want = np.tensordot(_np(a), _np(b), dims if isinstance(dims, int) else tuple(dims))
    _close(fw.tensordot(a, b, dims), want)
    if isinstance(dims, int):
        _close(fw.tensordot(a, b, fw.tensor(dims)), want)


def test_tensordot_errors():
    a = fw.ones(2, 3)
    with pytest.raises(fw.ShapeError, match="contracted dimensions"):
        fw.tensordot(a, fw.ones(2, 3), 1)
    with pytest.raises(fw.ArgumentError, match="same length"):
        fw.tensordot(a, a, ([0, 1], [0]))
    with pytest.raises(fw.ShapeError, match="tensordot"):
        fw.tensordot(a, a, 3)
    with pytest.raises(fw.ArgumentError, match="tensordot"):
        fw.tensordot(a, a, -1)


def test_inner_vdot():
    a, b = _rand(2, 3, 4), _rand(5, 4, seed=1)
    _close(fw.inner(a, b), np.inner(_np(a), _np(b)))
    _close(a.inner(b), np.inner(_np(a), _np(b)))
    _close(fw.inner(_rand(), b), _np(b) * _rand().item())
    x, y = _rand(5), _rand(5, seed=1)
    _close(fw.vdot(x, y), np.vdot(_np(x), _np(y)))
    assert x.vdot(y).shape == ()
    with pytest.raises(fw.ShapeError, match="inner"):
        fw.inner(a, fw.ones(3))
    with pytest.raises(fw.ShapeError, match="vdot"):
        fw.vdot(fw.ones(2, 2), fw.ones(4))
    with pytest.raises(fw.DTypeError, match="vdot"):
        fw.vdot(fw.ones(2), fw.ones(2, dtype=fw.float64))


def test_fused_multiply_adds():
    m, n, c = _rand(3, 4), _rand(4, 2, seed=1), _rand(3, 2, seed=2)
    M, N, C = _np(m), _np(n), _np(c)  # noqa: N806
    _close(fw.addmm(c, m, n, beta=0.5, alpha=2), 0.5 * C + 2 * M @ N)
    _close(c[0].addmm(m, n), C[0] + M @ N)  # input broadcasts to (n, p)
    v = _rand(4, seed=3)
    _close(fw.addmv(c[:, 0], m, v, alpha=-1), C[:, 0] - M @ _np(v))
    _close(fw.addr(c, c[:, 0], c[0], beta=2), 2 * C + np.outer(C[:, 0], C[0]))
    b1, b2 = _rand(5, 3, 4, seed=4), _rand(5, 4, 2, seed=5)
    B1, B2 = _np(b1), _np(b2)  # noqa: N806
    _close(fw.baddbmm(c, b1, b2, alpha=3), C + 3 * B1 @ B2)
    _close(fw.addbmm(c, b1, b2, beta=0.25), 0.25 * C + (B1 @ B2).sum(0))
    # beta=0 ignores NaN and inf in input, as PyTorch
    bad = fw.full((3, 2), NAN, dtype=fw.float64)
    _close(fw.addmm(bad, m, n, beta=0), M @ N)
    _close(fw.baddbmm(bad * INF, b1, b2, beta=0.0), B1 @ B2)
    assert fw.addmm(fw.ones(2, 2, dtype=fw.int64), fw.ones(2, 3, dtype=fw.int64),
                    fw.ones(3, 2, dtype=fw.int64), alpha=2).tolist() == [[7, 7], [7, 7]]


def test_fused_multiply_add_inplace_and_errors():
    m, n, c = _rand(3, 4), _rand(4, 3, seed=1), _rand(3, 3, seed=2)
    want = _np(c) + _np(m) @ _np(n)
    assert c.addmm_(m, n) is c
    _close(c, want)
    b1, b2 = _rand(2, 3, 4), _rand(2, 4, 3, seed=1)
    x = fw.zeros(2, 3, 3, dtype=fw.float64)
    x.baddbmm_(b1, b2)
    _close(x, _np(b1) @ _np(b2))
    with pytest.raises(fw.ShapeError, match="addmm.*mat1"):
        fw.addmm(c, fw.ones(3), n)
    with pytest.raises(fw.ShapeError, match="addmm"):
        fw.addmm(fw.ones(4, 3, dtype=fw.float64), m, n)
    with pytest.raises(fw.ShapeError, match="baddbmm.*batches"):
        fw.baddbmm(c, b1, _rand(3, 4, 3))
    with pytest.raises(fw.ArgumentError, match="beta"):
        fw.addmm(fw.ones(2, 2, dtype=fw.int64), fw.ones(2, 2, dtype=fw.int64),
                 fw.ones(2, 2, dtype=fw.int64), beta=0.5)


def test_chain_matmul_and_block_diag():
    a, b, c = _rand(2, 3), _rand(3, 4, seed=1), _rand(4, 2, seed=2)
    _close(fw.chain_matmul(a, b, c), _np(a) @ _np(b) @ _np(c))
    _close(fw.chain_matmul(a), _np(a))
    with pytest.raises(fw.ShapeError, match="chain_matmul"):
        fw.chain_matmul(a, fw.ones(3))
    got = fw.block_diag(fw.tensor([[1, 2], [3, 4]]), fw.tensor(5), fw.tensor([6.0, 7.0]))
    want = np.zeros((4, 5))
    want[:2, :2], want[2, 2], want[3, 3:] = [[1, 2], [3, 4]], 5, [6, 7]
    assert got.dtype is fw.float32
    np.testing.assert_array_equal(_np(got), want)
    assert fw.block_diag(fw.ones(2, 0), fw.ones(1, 2)).shape == (3, 2)
    assert fw.block_diag().shape == (1, 0)
    with pytest.raises(fw.ShapeError, match="block_diag"):
        fw.block_diag(fw.ones(1, 1, 1))


# -- statistics ----------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0, 1, 2, 3.5, INF, -INF])
def test_dist(p):
    a, b = _rand(3, 4), _rand(4, seed=1)
    d = (_np(a) - _np(b)).ravel()
    want = {0: np.count_nonzero(d), INF: np.abs(d).max(),
            -INF: np.abs(d).min()}.get(p, np.sum(np.abs(d) ** p) ** (1 / p) if p else 0)
    _close(fw.dist(a, b, p), want)
    _close(a.dist(b, p), want)


def test_dist_errors():
    with pytest.raises(fw.DTypeError, match="dist"):
        fw.dist(fw.tensor([1]), fw.tensor([2]))
    with pytest.raises(fw.ShapeError):
        fw.dist(fw.ones(2), fw.ones(3))


def test_cov_corrcoef():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 6))
    fweights, aweights = np.array([1, 2, 0, 3, 1, 1]), rng.random(6)
    t = fw.tensor(x)
    _close(fw.cov(t), np.cov(x))
    _close(t.cov(correction=0), np.cov(x, ddof=0))
    _close(fw.cov(t, fweights=fw.tensor(fweights)), np.cov(x, fweights=fweights))
    _close(fw.cov(t, aweights=fw.tensor(aweights)), np.cov(x, aweights=aweights))
    for ddof in (0, 1, 2):
        _close(fw.cov(t, correction=ddof, fweights=fw.tensor(fweights),
                      aweights=fw.tensor(aweights)),
               np.cov(x, ddof=ddof, fweights=fweights, aweights=aweights))
    one = fw.cov(t[0])
    assert one.ndim == 0
    _close(one, np.cov(x[0]))
    _close(fw.corrcoef(t), np.corrcoef(x))
    _close(t.corrcoef(), np.corrcoef(x))
    assert fw.corrcoef(t[0]).item() == 1.0
    ints = fw.tensor([[1, 2, 4], [2, 2, 9]])
    assert fw.cov(ints).dtype is fw.float32
    np.testing.assert_allclose(_np(fw.cov(ints)), np.cov([[1, 2, 4], [2, 2, 9]]), rtol=1e-6)
    assert fw.cov(fw.ones(2, 1)).isnan().all()  # no degrees of freedom: 0/0


def test_cov_errors():
    x = fw.ones(2, 3)
    with pytest.raises(fw.ShapeError, match="two or fewer"):
        fw.cov(fw.ones(2, 2, 2))
    with pytest.raises(fw.DTypeError, match="fweights"):
        fw.cov(x, fweights=fw.ones(3))
    with pytest.raises(fw.DTypeError, match="aweights"):
        fw.cov(x, aweights=fw.tensor([1, 2, 3]))
    with pytest.raises(fw.ShapeError, match="observations"):
        fw.cov(x, fweights=fw.tensor([1, 2]))
    with pytest.raises(fw.ArgumentError, match="negative"):
        fw.cov(x, fweights=fw.tensor([1, -2, 1]))


def test_vander():
    x = np.array([1.5, -2.0, 3.0, 0.0])
    _close(fw.vander(fw.tensor(x)), np.vander(x))
    _close(fw.vander(fw.tensor(x), 6, increasing=True), np.vander(x, 6, increasing=True))
    ints = fw.vander(fw.tensor([1, 2, 3], dtype=fw.int32), 3)
    assert ints.dtype is fw.int64 and ints.tolist() == np.vander([1, 2, 3], 3).tolist()
    assert fw.vander(fw.tensor(x), 0).shape == (4, 0)
    assert fw.vander(fw.tensor(x), 1).tolist() == [[1.0]] * 4
    with pytest.raises(fw.ArgumentError, match="vander"):
        fw.vander(fw.tensor(x), -1)
    with pytest.raises(fw.ShapeError, match="vander"):
        fw.vander(fw.ones(2, 2))


# -- integration ---------------------------------------------------------------------------------
def test_trapezoid():
    rng = np.random.default_rng(8)
    y = rng.standard_normal((3, 5))
    xs = np.sort(rng.standard_normal(5))
    t = fw.tensor(y)
    _close(fw.trapezoid(t), np.trapezoid(y))
    _close(fw.trapezoid(t, dx=0.3, dim=0), np.trapezoid(y, dx=0.3, axis=0))
    _close(fw.trapezoid(t, fw.tensor(xs)), np.trapezoid(y, xs))
    xb = np.broadcast_to(xs, (3, 5)) * np.array([[1.0], [2.0], [0.5]])
    _close(fw.trapz(t, fw.tensor(xb)), np.trapezoid(y, xb))
    _close(fw.trapz(t, 0.5), np.trapezoid(y, dx=0.5))
    assert fw.trapezoid(fw.tensor([1, 2, 3])).item() == 4.0  # ints give a float
    assert fw.trapezoid(fw.ones(2, 0)).tolist() == [0.0, 0.0]
    assert fw.trapezoid(fw.ones(2, 1)).tolist() == [0.0, 0.0]


def test_cumulative_trapezoid_and_errors():
    rng = np.random.default_rng(9)
    y = rng.standard_normal((3, 5))
    xs = np.sort(rng.standard_normal(5))
    t = fw.tensor(y)
    _close(fw.cumulative_trapezoid(t, fw.tensor(xs)),
           np.cumsum((y[:, 1:] + y[:, :-1]) * np.diff(xs) / 2, -1))
    _close(fw.cumulative_trapezoid(t, dx=2.0, dim=0),
           np.cumsum(y[1:] + y[:-1], 0))
    assert fw.cumulative_trapezoid(fw.ones(4)).shape == (3,)
    with pytest.raises(fw.ShapeError, match="one x value"):
        fw.trapezoid(t, fw.ones(4))
    with pytest.raises(fw.ArgumentError, match="either x or dx"):
        fw.trapezoid(t, fw.ones(5), dx=1.0)
    with pytest.raises(fw.ShapeError, match="trapezoid"):
        fw.trapezoid(fw.tensor(1.0))


# -- torch.* spellings of fw.linalg --------------------------------------------------------------
def test_linalg_spellings():
    a = _rand(4, 3)
    A = _np(a)  # noqa: N806
    U, S, V = fw.svd(a)  # noqa: N806
    assert U.shape == (4, 3) and V.shape == (3, 3) and type(fw.svd(a)).__name__ == "svd"
    _close((U * S) @ V.mT, A)
    U, S, V = a.svd(some=False)  # noqa: N806
    assert U.shape == (4, 4) and V.shape == (3, 3)
    _close(S, np.linalg.svd(A, compute_uv=False))
    U, S, V = fw.svd(_rand(2, 4, 3), compute_uv=False)  # noqa: N806
    assert U.shape == (2, 4, 4) and V.shape == (2, 3, 3) and not U.any() and not V.any()
    Q, R = fw.qr(a)  # noqa: N806
    assert Q.shape == (4, 3) and R.shape == (3, 3)
    assert fw.qr(a, some=False).Q.shape == (4, 4)
    _close(Q @ R, A)
    p = a.mT @ a + fw.eye(3, dtype=fw.float64)
    P = _np(p)  # noqa: N806
    _close(fw.cholesky(p), np.linalg.cholesky(P))
    _close(p.cholesky(upper=True), np.linalg.cholesky(P).T)
    _close(fw.det(p), np.linalg.det(P))
    _close(p.logdet(), np.log(np.linalg.det(P)))
    sign, logabs = fw.slogdet(-p)
    assert sign.item() == -1.0
    _close(logabs, np.linalg.slogdet(P)[1])
    assert fw.logdet(-p).isnan().item() and fw.logdet(fw.zeros(2, 2)).item() == -INF
    _close(fw.inverse(p), np.linalg.inv(P))
    _close(a.pinverse(), np.linalg.pinv(A))
    _close(fw.matrix_power(p, 3), np.linalg.matrix_power(P, 3), rtol=1e-10)
    _close(p.matrix_power(-1), np.linalg.inv(P))


# -- gradients -----------------------------------------------------------------------------------
def _g(*shape, seed=0, lo=None, hi=None):
    return _rand(*shape, seed=seed, lo=lo, hi=hi, grad=True)


GRAD_CASES = {
    "kron": (fw.kron, lambda: [_g(2, 3), _g(3, 2, seed=1)]),
    "tensordot": (lambda a, b: fw.tensordot(a, b, ([0, 2], [1, 0])),
                  lambda: [_g(2, 3, 4), _g(4, 2, 5, seed=1)]),
    "inner": (fw.inner, lambda: [_g(2, 3), _g(4, 3, seed=1)]),
    "vdot": (fw.vdot, lambda: [_g(4), _g(4, seed=1)]),
    "addmm": (lambda c, a, b: fw.addmm(c, a, b, beta=0.5, alpha=2),
              lambda: [_g(3, 1), _g(3, 4, seed=1), _g(4, 2, seed=2)]),
    "addmv": (fw.addmv, lambda: [_g(3), _g(3, 4, seed=1), _g(4, seed=2)]),
    "addr": (fw.addr, lambda: [_g(3, 2), _g(3, seed=1), _g(2, seed=2)]),
    "addbmm": (fw.addbmm, lambda: [_g(3, 2), _g(4, 3, 5, seed=1), _g(4, 5, 2, seed=2)]),
    "baddbmm": (lambda c, a, b: fw.baddbmm(c, a, b, beta=0.0),
                lambda: [_g(4, 3, 2), _g(4, 3, 5, seed=1), _g(4, 5, 2, seed=2)]),
    "chain_matmul": (fw.chain_matmul, lambda: [_g(2, 3), _g(3, 4, seed=1), _g(4, 2, seed=2)]),
    "block_diag": (fw.block_diag, lambda: [_g(2, 3), _g(2, seed=1)]),
    "meshgrid": (lambda a, b: fw.meshgrid(a, b, indexing="xy"), lambda: [_g(2), _g(3, seed=1)]),
    "cartesian_prod": (fw.cartesian_prod, lambda: [_g(2), _g(3, seed=1)]),
    "combinations": (fw.combinations, lambda: [_g(4)]),
    "dist": (lambda a, b: fw.dist(a, b, 3), lambda: [_g(3, 4), _g(4, seed=1)]),
    "cov": (lambda x, w: fw.cov(x, fweights=fw.tensor([1, 2, 1, 3, 1]), aweights=w),
            lambda: [_g(3, 5), _g(5, seed=1, lo=0.5, hi=2)]),
    "corrcoef": (fw.corrcoef, lambda: [_g(3, 5)]),
    "vander": (fw.vander, lambda: [_g(4)]),
    "trapezoid": (fw.trapezoid, lambda: [_g(3, 5), _g(5, seed=1)]),
    "cumulative_trapezoid": (lambda y: fw.cumulative_trapezoid(y, dx=0.5, dim=0),
                             lambda: [_g(3, 5)]),
    "svd": (lambda x: (lambda r: (r.U * r.S.unsqueeze(0)) @ r.V.mT)(fw.svd(x)),
            lambda: [_g(4, 3)]),
    "logdet": (fw.logdet, lambda: [fw.tensor(np.eye(3) * 2 + 0.1, requires_grad=True)]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients(name):
    fn, make = GRAD_CASES[name]
    assert gradcheck(fn, tuple(make()))


# -- fw.compile and ONNX -------------------------------------------------------------------------
COMPILE_CASES = {
    "meshgrid": lambda x, y: sum(fw.meshgrid(x[0], y[:, 0], indexing="xy")),
    "kron": lambda x, y: fw.kron(x, y),
    "tensordot": lambda x, y: fw.tensordot(x, x, ([1], [1])),
    "addmm": lambda x, y: fw.addmm(y, x, x.mT, beta=0.5, alpha=2.0),
    "cov": lambda x, y: fw.cov(x) + fw.corrcoef(x),
    "products": lambda x, y: (fw.block_diag(x, y).sum() + fw.vander(y[:, 0]).sum() +
                              fw.dist(x, y) + fw.inner(x, x).sum() +
                              fw.baddbmm(y, x[None], x.mT[None])),
    "grids": lambda x, y: fw.cartesian_prod(x[0], y[:, 0]).sum() + fw.combinations(x[0], 2),
    "trapezoid": lambda x, y: (fw.trapezoid(x, y[:, 0], dim=0) +
                               fw.cumulative_trapezoid(x, dx=0.5).sum()),
}


@pytest.mark.parametrize("name", sorted(COMPILE_CASES))
def test_compile_fullgraph_matches_eager(name, monkeypatch):
    check_compile_fullgraph(COMPILE_CASES[name], monkeypatch, atol=1e-5)


@pytest.mark.parametrize("name", ["meshgrid", "kron", "tensordot", "addmm", "cov"])
def test_onnx_export_verify(name):
    check_onnx_export(COMPILE_CASES[name])
