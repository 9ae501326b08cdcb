"""Sparse tensors (framework/sparse): construction, accessors, conversions, layouts, the
sparse ops against NumPy dense references, and the errors for bad input."""

import copy
import pickle

import numpy as np
import pytest

import framework as fw
from framework.errors import FwTypeError
from framework.sparse import SparseTensor


def _coo(seed=0, shape=(4, 5), nnz=7, dup=True):
    """A random uncoalesced COO tensor (duplicated, unsorted indices) and its dense array."""
    g = np.random.default_rng(seed)
    idx = np.stack([g.integers(0, n, nnz) for n in shape])
    if dup:
        idx[:, -1] = idx[:, 0]
    vals = g.standard_normal(nnz)
    dense = np.zeros(shape)
    np.add.at(dense, tuple(idx), vals)
    return fw.sparse_coo_tensor(idx, fw.tensor(vals, dtype=fw.float32), shape), dense


def _np(t):
    return t.detach().numpy()


# -- construction and accessors ----------------------------------------------------------
def test_coo_construction_accessors_and_repr():
    s = fw.sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3.0, 4.0, 5.0], (2, 3))
    assert isinstance(s, SparseTensor) and s.layout is fw.sparse_coo and s.is_sparse
    assert not s.is_sparse_csr and s.shape == (2, 3) and s.size() == fw.Size([2, 3])
    assert s.size(-1) == 3 and s.dim() == 2 and s.dtype is fw.float32
    assert s.device == fw.device("cpu") and s.sparse_dim() == 2 and s.dense_dim() == 0
    assert s._nnz() == 3 and not s.is_coalesced() and s.numel() == 6
    assert s._indices().tolist() == [[0, 1, 1], [2, 0, 2]]
    assert s._values().tolist() == [3.0, 4.0, 5.0]
    assert _np(s.to_dense()).tolist() == [[0, 0, 3], [4, 0, 5]]
    assert repr(s) == ("tensor(indices=tensor([[0, 1, 1],\n"
                       "                       [2, 0, 2]]),\n"
                       "       values=tensor([3., 4., 5.]),\n"
                       "       size=(2, 3), nnz=3, layout=framework.sparse_coo)")
    assert fw.ones(2).layout is fw.strided and not fw.ones(2).is_sparse
    assert repr(fw.sparse_coo) == "framework.sparse_coo"


def test_size_is_inferred_and_dtype_device_requires_grad_kwargs():
    s = fw.sparse_coo_tensor([[0, 3], [1, 0]], [1, 2], dtype=fw.float64, requires_grad=True)
    assert s.shape == (4, 2) and s.dtype is fw.float64 and s.requires_grad and s.is_leaf
    empty = fw.sparse_coo_tensor(fw.zeros(2, 0, dtype=fw.int64), fw.zeros(0), (3, 3))
    assert empty._nnz() == 0 and empty.is_coalesced()
    assert _np(empty.to_dense()).tolist() == [[0.0] * 3] * 3


def test_values_are_not_aliased_by_requires_grad():
    v = fw.tensor([1.0, 2.0])
    s = fw.sparse_coo_tensor([[0, 1]], v, (2,))
    s.requires_grad_()
    assert s.requires_grad and not v.requires_grad


def test_coalesce_sums_duplicates_and_sorts():
    s, dense = _coo()
    c = s.coalesce()
    assert c.is_coalesced() and c.coalesce() is c
    idx = c.indices().numpy()
    keys = np.ravel_multi_index(tuple(idx), s.shape)
    assert (np.diff(keys) > 0).all()
    assert c._nnz() == len(set(map(tuple, s._indices().numpy().T)))
    np.testing.assert_allclose(_np(c.to_dense()), dense)
    np.testing.assert_allclose(_np(c.values()), dense[tuple(idx)])


def test_hybrid_coo_has_dense_trailing_dims():
    vals = np.arange(6.0).reshape(3, 2)
    s = fw.sparse_coo_tensor([[0, 2, 0]], fw.tensor(vals), (4, 2))
    assert s.sparse_dim() == 1 and s.dense_dim() == 1
    want = np.zeros((4, 2))
    np.add.at(want, [0, 2, 0], vals)
    np.testing.assert_allclose(_np(s.to_dense()), want)
    np.testing.assert_allclose(_np(s.coalesce().values()), want[[0, 2]])
    np.testing.assert_allclose(_np((s * 2.0).to_dense()), 2 * want)
    np.testing.assert_allclose(_np((s + s).to_dense()), 2 * want)
    np.testing.assert_allclose(_np(fw.sparse.sum(s, 1).to_dense()), want.sum(1))
    np.testing.assert_allclose(_np(fw.sparse.sum(s, 0)), want.sum(0))


def test_dense_to_sparse_and_back():
    g = np.random.default_rng(3)
    x = g.standard_normal((3, 4, 2)) * (g.random((3, 4, 2)) < 0.4)
    t = fw.tensor(x)
    s = t.to_sparse()
    assert s.is_coalesced() and s._nnz() == int((x != 0).sum()) and s.sparse_dim() == 3
    np.testing.assert_allclose(_np(s.to_dense()), x)
    h = t.to_sparse(2)
    assert h.sparse_dim() == 2 and h.dense_dim() == 1
    assert h._nnz() == int((x != 0).any(-1).sum())
    np.testing.assert_allclose(_np(h.to_dense()), x)
    np.testing.assert_allclose(_np(t.to_sparse_coo().to_dense()), x)
    assert t.to_sparse(layout=fw.strided) is t and t.to_dense() is t


def test_csr_construction_conversions_and_repr():
    c = fw.sparse_csr_tensor([0, 2, 2, 3], [0, 3, 1], [1.0, 2.0, 3.0], (3, 4))
    assert c.layout is fw.sparse_csr and c.is_sparse_csr and not c.is_sparse
    assert c.crow_indices().tolist() == [0, 2, 2, 3] and c.col_indices().tolist() == [0, 3, 1]
    want = np.array([[1, 0, 0, 2], [0, 0, 0, 0], [0, 3, 0, 0]], float)
    np.testing.assert_allclose(_np(c.to_dense()), want)
    coo = c.to_sparse_coo()
    assert coo.is_coalesced() and coo.indices().tolist() == [[0, 0, 2], [0, 3, 1]]
    back = coo.to_sparse_csr()
    assert back.crow_indices().tolist() == [0, 2, 2, 3]
    d = fw.tensor(want).to_sparse_csr()
    assert d.col_indices().tolist() == [0, 3, 1] and d.values().tolist() == [1, 2, 3]
    assert fw.tensor(want).to_sparse(layout=fw.sparse_csr).layout is fw.sparse_csr
    assert "crow_indices=tensor([0, 2, 2, 3])" in repr(c) and "layout=framework.sparse_csr" \
        in repr(c)
    assert fw.sparse_csr_tensor([0, 1, 2], [2, 0], [1.0, 1.0]).shape == (2, 3)


def test_transpose_clone_detach_to_and_pickle():
    s, dense = _coo(1)
    np.testing.assert_allclose(_np(s.t().to_dense()), dense.T)
    np.testing.assert_allclose(_np(s.transpose(0, 1).to_dense()), dense.T)
    c = s.to_sparse_csr()
    assert c.t().layout is fw.sparse_csr
    np.testing.assert_allclose(_np(c.t().to_dense()), dense.T)
    h = fw.tensor(np.arange(24.0).reshape(2, 3, 4)).to_sparse(1)
    np.testing.assert_allclose(_np(h.transpose(1, 2).to_dense()),
                               np.arange(24.0).reshape(2, 3, 4).transpose(0, 2, 1))
    k = s.clone()
    k._values().mul_(0)
    np.testing.assert_allclose(_np(s.to_dense()), dense)  # the clone owns its values
    assert s.detach()._values()._data is s._values()._data
    d = s.to(fw.float64)
    assert d.dtype is fw.float64 and d._indices() is s._indices()
    p = pickle.loads(pickle.dumps(s))
    assert p.layout is fw.sparse_coo and p._nnz() == s._nnz()
    np.testing.assert_allclose(_np(p.to_dense()), dense)
    np.testing.assert_allclose(_np(copy.deepcopy(c).to_dense()), dense)


def test_zero_and_inplace_scaling():
    s, dense = _coo(2)
    s.mul_(2.0)
    np.testing.assert_allclose(_np(s.to_dense()), 2 * dense)
    s.div_(fw.tensor(4.0))
    np.testing.assert_allclose(_np(s.to_dense()), dense / 2)
    s.zero_()
    assert s._nnz() == 0 and s.shape == (4, 5) and not _np(s.to_dense()).any()


# -- ops vs NumPy ----------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_mm_matmul_and_addmm_match_dense(layout):
    s, a = _coo(4)
    if layout == "csr":
        s = s.to_sparse_csr()
    d = np.random.default_rng(5).standard_normal((5, 3)).astype(np.float32)
    dt = fw.tensor(d)
    want = a @ d
    for got in (fw.sparse.mm(s, dt), s @ dt, fw.mm(s, dt), fw.matmul(s, dt), s.mm(dt)):
        np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-5)
    v = np.arange(5.0, dtype=np.float32)
    np.testing.assert_allclose(_np(s @ fw.tensor(v)), a @ v, rtol=1e-5, atol=1e-5)
    inp = fw.ones(4, 3)
    np.testing.assert_allclose(_np(fw.sparse.addmm(inp, s, dt, beta=0.5, alpha=2.0)),
                               0.5 + 2 * want, rtol=1e-5, atol=1e-5)
    w = np.random.default_rng(6).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(_np(fw.tensor(w) @ s), w @ a, rtol=1e-5, atol=1e-5)
    prod = s @ s.t()
    assert isinstance(prod, SparseTensor)
    np.testing.assert_allclose(_np(prod.to_dense()), a @ a.T, rtol=1e-5, atol=1e-5)


def test_add_sub_mul_neg():
    s1, a1 = _coo(7)
    s2, a2 = _coo(8)
    out = s1 + s2
    assert isinstance(out, SparseTensor) and not out.is_coalesced()  # uncoalesced inputs
    np.testing.assert_allclose(_np(out.to_dense()), a1 + a2, atol=1e-6)
    both = s1.coalesce() + s2.coalesce()
    assert both.is_coalesced()
    np.testing.assert_allclose(_np(both.to_dense()), a1 + a2, atol=1e-6)
    np.testing.assert_allclose(_np((s1 - s2).to_dense()), a1 - a2, atol=1e-6)
    np.testing.assert_allclose(_np(s1.add(s2, alpha=3).to_dense()), a1 + 3 * a2, atol=1e-5)
    np.testing.assert_allclose(_np((-s1).to_dense()), -a1, atol=1e-6)
    np.testing.assert_allclose(_np((s1 * 3).to_dense()), 3 * a1, atol=1e-6)
    np.testing.assert_allclose(_np((2 * s1 / 4).to_dense()), a1 / 2, atol=1e-6)
    d = np.random.default_rng(9).standard_normal((4, 5)).astype(np.float32)
    prod = s1 * fw.tensor(d)
    assert isinstance(prod, SparseTensor)
    np.testing.assert_allclose(_np(prod.to_dense()), a1 * d, atol=1e-6)
    row = fw.tensor(d[0])
    np.testing.assert_allclose(_np((s1 * row).to_dense()), a1 * d[0], atol=1e-6)
    np.testing.assert_allclose(_np((s1 * s2).to_dense()), a1 * a2, atol=1e-6)
    np.testing.assert_allclose(_np(s1 + fw.tensor(d)), a1 + d, atol=1e-6)
    c = s1.to_sparse_csr()
    assert (c + c).layout is fw.sparse_csr and (c * 2.0).layout is fw.sparse_csr
    np.testing.assert_allclose(_np((c + c).to_dense()), 2 * a1, atol=1e-6)
    np.testing.assert_allclose(_np((c * fw.tensor(d)).to_dense()), a1 * d, atol=1e-6)


def test_sum_over_dims():
    s, a = _coo(10, shape=(3, 4, 5), nnz=9)
    assert abs(fw.sparse.sum(s).item() - a.sum()) < 1e-5
    assert abs(s.sum().item() - a.sum()) < 1e-5
    for dim in (0, 1, 2, (0, 2), -1):
        got = fw.sparse.sum(s, dim)
        assert isinstance(got, SparseTensor) and got.is_coalesced()
        np.testing.assert_allclose(_np(got.to_dense()), a.sum(dim), atol=1e-5)
    np.testing.assert_allclose(_np(fw.sparse.sum(s, (0, 1, 2))), a.sum(), atol=1e-5)
    assert fw.sparse.sum(s, dtype=fw.float64).dtype is fw.float64


def _sparse_softmax_ref(dense, mask, dim, log=False):
    x = np.where(mask, dense, -np.inf)
    m = np.max(x, axis=dim, keepdims=True)
    e = np.where(mask, np.exp(x - np.where(np.isfinite(m), m, 0)), 0)
    p = e / np.where(e.sum(dim, keepdims=True) == 0, 1, e.sum(dim, keepdims=True))
    return np.where(mask, np.log(np.where(mask, p, 1)) if log else p, 0)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_over_stored_values(dim, log):
    g = np.random.default_rng(11)
    mask = g.random((4, 6)) < 0.5
    dense = g.standard_normal((4, 6)) * 3 * mask
    dense[mask & (dense == 0)] = 1.0
    s = fw.tensor(dense).to_sparse()
    fn = fw.sparse.log_softmax if log else fw.sparse.softmax
    out = fn(s, dim)
    assert isinstance(out, SparseTensor) and out._nnz() == s._nnz()
    np.testing.assert_allclose(_np(out.to_dense()), _sparse_softmax_ref(dense, mask, dim, log),
                               rtol=1e-5, atol=1e-6)
    c = fn(s.to_sparse_csr(), dim)
    assert c.layout is fw.sparse_csr
    np.testing.assert_allclose(_np(c.to_dense()), _np(out.to_dense()), atol=1e-6)


def test_softmax_over_a_dense_dim_of_a_hybrid_tensor():
    x = np.arange(12.0).reshape(3, 4) / 5
    h = fw.tensor(x).to_sparse(1)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(_np(fw.sparse.softmax(h, 1).to_dense()),
                               e / e.sum(1, keepdims=True), rtol=1e-5)


def test_sampled_addmm():
    c = fw.sparse_csr_tensor([0, 2, 3], [0, 2, 1], [1.0, 2.0, 3.0], (2, 3))
    g = np.random.default_rng(12)
    m1, m2 = g.standard_normal((2, 4)), g.standard_normal((4, 3))
    out = fw.sparse.sampled_addmm(c, fw.tensor(m1, dtype=fw.float32),
                                  fw.tensor(m2, dtype=fw.float32), beta=0.5, alpha=2.0)
    assert out.layout is fw.sparse_csr and out._nnz() == 3
    mask = _np(c.to_dense()) != 0
    want = np.where(mask, 0.5 * _np(c.to_dense()) + 2 * (m1 @ m2), 0)
    np.testing.assert_allclose(_np(out.to_dense()), want, rtol=1e-5, atol=1e-5)


# -- errors ------------------------------------------------------------------------------
def test_construction_errors_name_the_op():
    with pytest.raises(fw.FwIndexError, match="sparse_coo_tensor: size is inconsistent"):
        fw.sparse_coo_tensor([[0, 3]], [1.0, 2.0], (3,))
    with pytest.raises(fw.FwIndexError, match="negative index -1"):
        fw.sparse_coo_tensor([[0, -1]], [1.0, 2.0], (3,))
    with pytest.raises(fw.ShapeError, match=r"indices must be 2-D \(sparse_dim, nnz\), got "
                                            r"shape \[2\]"):
        fw.sparse_coo_tensor([0, 1], [1.0, 2.0])
    with pytest.raises(fw.ShapeError, match="values must have nnz \\(2\\) rows"):
        fw.sparse_coo_tensor([[0, 1]], [1.0, 2.0, 3.0])
    with pytest.raises(fw.ShapeError, match="size \\[3, 2\\] does not match"):
        fw.sparse_coo_tensor([[0, 1]], [1.0, 2.0], (3, 2))
    with pytest.raises(fw.DTypeError, match="indices must be an integer tensor, got float32"):
        fw.sparse_coo_tensor(fw.zeros(1, 2), [1.0, 2.0])
    with pytest.raises(fw.ArgumentError, match="crow_indices must be non-decreasing"):
        fw.sparse_csr_tensor([0, 2, 1], [0, 1], [1.0, 2.0])
    with pytest.raises(fw.ArgumentError, match="crow_indices\\[-1\\] \\(1\\) must equal nnz"):
        fw.sparse_csr_tensor([0, 1, 1], [0, 1], [1.0, 2.0])
    with pytest.raises(fw.ShapeError, match="only 2-D CSR tensors are supported"):
        fw.sparse_csr_tensor([0, 1], [0], [[1.0]])
    with pytest.raises(fw.ShapeError, match="only 2-D CSR tensors are supported"):
        fw.sparse_csr_tensor([0, 1], [0], [1.0], (1, 2, 3))
    with pytest.raises(fw.FwIndexError, match="column index 4 is out of range"):
        fw.sparse_csr_tensor([0, 1], [4], [1.0], (1, 3))
    with pytest.raises(fw.ArgumentError, match="sorted and unique within each row"):
        fw.sparse_csr_tensor([0, 2], [2, 1], [1.0, 2.0], (1, 3))
    with pytest.raises(fw.ShapeError, match="to_sparse_csr: only 2-D"):
        fw.ones(2, 2, 2).to_sparse_csr()


def test_op_errors_name_the_op_shapes_and_dtypes():
    s, _ = _coo(13)
    with pytest.raises(fw.ShapeError, match=r"sparse.mm: shapes \[4, 5\] and \[4, 2\] cannot "
                                            r"be multiplied \(5 != 4\)"):
        fw.sparse.mm(s, fw.ones(4, 2))
    with pytest.raises(fw.ShapeError, match=r"mm: shapes \[4, 5\] and \[3, 2\]"):
        s @ fw.ones(3, 2)
    with pytest.raises(fw.DTypeError, match="float32 \\(sparse\\) and float64 \\(dense\\)"):
        fw.sparse.mm(s, fw.ones(5, 2, dtype=fw.float64))
    with pytest.raises(fw.ShapeError, match="expected a 2-D dense matrix"):
        fw.sparse.mm(s, fw.ones(5))
    with pytest.raises(fw.ShapeError, match="add: sparse tensors must have the same shape"):
        s + fw.sparse_coo_tensor([[0], [0]], [1.0], (2, 2))
    with pytest.raises(FwTypeError, match="adding a number would make it dense"):
        s + 1.0
    with pytest.raises(fw.ShapeError, match="does not broadcast to the sparse shape"):
        s * fw.ones(3)
    with pytest.raises(fw.ArgumentError, match="values\\(\\): Cannot get values on an "
                                               "uncoalesced tensor"):
        s.values()
    with pytest.raises(fw.ArgumentError, match="indices\\(\\): Cannot get indices"):
        s.indices()
    with pytest.raises(fw.ArgumentError, match="crow_indices\\(\\): expected a tensor of "
                                               "layout sparse_csr, got sparse_coo"):
        s.crow_indices()
    with pytest.raises(fw.ArgumentError, match="coalesce\\(\\): expected a sparse_coo"):
        s.to_sparse_csr().coalesce()
    with pytest.raises(fw.ArgumentError, match="between sparse and dense dimensions"):
        fw.ones(2, 3).to_sparse(1).transpose(0, 1)


def test_unsupported_tensor_methods_raise_naming_the_method():
    s, _ = _coo(14)
    with pytest.raises(NotImplementedError, match="exp\\(\\): not supported for sparse_coo"):
        s.exp()
    with pytest.raises(NotImplementedError, match="reshape\\(\\)"):
        s.reshape(20)
    assert not hasattr(s, "relu") and getattr(s, "no_such_thing", 7) == 7
    with pytest.raises(FwTypeError, match="call .to_dense\\(\\) first"):
        np.asarray(s)
    with pytest.raises(TypeError, match="relu\\(\\): argument 'input' must be a Tensor"):
        fw.relu(s)
    # dense * sparse is sparse, as s * dense (PyTorch accepts either order)
    np.testing.assert_array_equal((fw.ones(4, 5) * s).to_dense().numpy(),
                                  (s * fw.ones(4, 5)).to_dense().numpy())


def test_dense_ops_refuse_a_sparse_tensor_by_name():
    """A sparse tensor reaching a dense op's dispatch is a framework error naming the op
    (it used to be a raw AttributeError from inside apply)."""
    s = fw.eye(3).to_sparse()
    with pytest.raises(fw.errors.FwTypeError, match="sum: got a sparse tensor"):
        fw.sum(s)
    with pytest.raises(fw.errors.FwTypeError, match="cat: got a sparse tensor"):
        fw.cat([s, s])
