"""Autograd through sparse tensors: fw.sparse.mm gradients (dense for the dense operand,
sparse with the leaf's pattern for the sparse one) against NumPy references and finite
differences; embedding(sparse=True) gradients and their accumulation; clipping; and the
compiler: a GCN with a sparse constant compiled == eager and exported to ONNX."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.sparse import SparseTensor

IDX = np.array([[0, 2, 1, 2, 0], [1, 0, 3, 0, 1]])  # duplicated (2, 0) and (0, 1)
SHAPE = (3, 4)


def _dense_of(idx, vals, shape):
    a = np.zeros(shape)
    np.add.at(a, tuple(idx), vals)
    return a


def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_mm_gradients_match_dense_reference(layout):
    g = np.random.default_rng(0)
    vals, d, up = g.standard_normal(5), g.standard_normal((4, 2)), g.standard_normal((3, 2))
    s = fw.sparse_coo_tensor(IDX, fw.tensor(vals), SHAPE)
    if layout == "csr":
        s = s.to_sparse_csr()
    s.requires_grad_()
    dt = fw.tensor(d, requires_grad=True)
    out = fw.sparse.mm(s, dt)
    out.backward(fw.tensor(up))
    a = _np(s.to_dense())
    np.testing.assert_allclose(_np(dt.grad), a.T @ up, rtol=1e-12)
    gs = s.grad
    assert isinstance(gs, SparseTensor) and gs.layout is s.layout and gs._nnz() == s._nnz()
    rows, cols = (s._indices().numpy() if layout == "coo" else
                  (s._rows.numpy(), s.col_indices().numpy()))
    np.testing.assert_allclose(_np(gs._values()), (up @ d.T)[rows, cols], rtol=1e-12)
    assert s.grad is gs  # one object while the gradient is unchanged
    out2 = fw.sparse.mm(s, dt)
    out2.backward(fw.tensor(up))  # accumulates
    np.testing.assert_allclose(_np(s.grad._values()), 2 * (up @ d.T)[rows, cols], rtol=1e-12)
    s.grad = None
    assert s.grad is None


def test_mm_gradcheck_and_gradgradcheck():
    g = np.random.default_rng(1)
    v = fw.tensor(g.standard_normal(5), requires_grad=True)
    d = fw.tensor(g.standard_normal((4, 3)), requires_grad=True)

    def f(v, d):
        return fw.sparse.mm(fw.sparse_coo_tensor(IDX, v, SHAPE), d)
    assert fw.autograd.gradcheck(f, (v, d))
    assert fw.autograd.gradgradcheck(f, (v, d))
    assert fw.autograd.gradcheck(lambda v, d: fw.sparse.addmm(d[:3], fw.sparse_coo_tensor(
        IDX, v, SHAPE), d, beta=0.5, alpha=2.0), (v, d))


@pytest.mark.parametrize("name", ["to_dense", "coalesce", "softmax", "log_softmax", "sum",
                                  "sum_dim", "mul_dense", "add", "sampled_addmm", "t", "csr"])
def test_gradients_through_sparse_ops(name):
    g = np.random.default_rng(2)
    v = fw.tensor(g.standard_normal(5), requires_grad=True)
    w = fw.tensor(g.standard_normal(SHAPE), requires_grad=True)

    def s_of(v):
        return fw.sparse_coo_tensor(IDX, v, SHAPE)
    fns = {
        "to_dense": lambda v, w: s_of(v).to_dense() * w,
        "coalesce": lambda v, w: s_of(v).coalesce()._values() * 1.5,
        "softmax": lambda v, w: fw.sparse.softmax(s_of(v), 1).to_dense() * w,
        "log_softmax": lambda v, w: fw.sparse.log_softmax(s_of(v), 0).to_dense() * w,
        "sum": lambda v, w: fw.sparse.sum(s_of(v)) * w,
        "sum_dim": lambda v, w: fw.sparse.sum(s_of(v), 1).to_dense() * w[:, 0],
        "mul_dense": lambda v, w: (s_of(v) * w).to_dense(),
        "add": lambda v, w: (s_of(v) + s_of(v * 2)).to_dense() * w,
        "sampled_addmm": lambda v, w: fw.sparse.sampled_addmm(
            s_of(v).coalesce().to_sparse_csr(), w, w.t() @ w).to_dense(),
        "t": lambda v, w: (s_of(v).t() @ w).sum(0),
        "csr": lambda v, w: s_of(v).to_sparse_csr().to_dense() * w,
    }
    assert fw.autograd.gradcheck(fns[name], (v, w))


def test_to_sparse_is_differentiable_for_the_dense_input():
    x = fw.tensor([[0.0, 1.5], [2.0, 0.0]], requires_grad=True)
    (x.to_sparse() @ fw.tensor([[1.0], [2.0]])).sum().backward()
    assert x.grad.tolist() == [[0.0, 2.0], [1.0, 0.0]]  # only the stored entries


def test_sparse_from_values_in_a_graph_passes_gradients_back():
    v = fw.tensor([1.0, 2.0, 3.0, 4.0, 5.0], requires_grad=True)
    s = fw.sparse_coo_tensor(IDX, v * 2, SHAPE)
    assert s.requires_grad and not s.is_leaf
    fw.sparse.sum(s).backward()
    assert v.grad.tolist() == [2.0] * 5


# -- embedding(sparse=True) ---------------------------------------------------------------
def _emb(sparse, padding_idx=None):
    fw.manual_seed(0)
    return nn.Embedding(6, 3, padding_idx=padding_idx, sparse=sparse)


def test_embedding_sparse_grad_is_uncoalesced_coo_of_looked_up_rows():
    idx = fw.tensor([[1, 4, 1], [0, 4, 5]])
    e, ref = _emb(True), _emb(False)
    up = fw.randn(2, 3, 3)
    e(idx).backward(up)
    ref(idx).backward(up)
    g = e.weight.grad
    assert isinstance(g, SparseTensor) and g.layout is fw.sparse_coo and not g.is_coalesced()
    assert g.sparse_dim() == 1 and g.dense_dim() == 1 and g.shape == (6, 3)
    assert g._indices().tolist() == [[1, 4, 1, 0, 4, 5]]
    np.testing.assert_allclose(_np(g._values()), _np(up).reshape(6, 3))
    np.testing.assert_allclose(_np(g.to_dense()), _np(ref.weight.grad), rtol=1e-6)
    e(idx).backward(up)  # a second backward concatenates (PyTorch's sparse accumulation)
    assert e.weight.grad._nnz() == 12
    np.testing.assert_allclose(_np(e.weight.grad.to_dense()), 2 * _np(ref.weight.grad),
                               rtol=1e-6)


def test_embedding_sparse_padding_idx_functional_and_autograd_grad():
    idx = fw.tensor([2, 0, 3, 0])
    e = _emb(True, padding_idx=0)
    e(idx).sum().backward()
    assert e.weight.grad._indices().tolist() == [[2, 3]]  # the padding row is left out
    w = fw.randn(5, 2, requires_grad=True)
    out = nn.functional.embedding(fw.tensor([1, 1, 4]), w, sparse=True)
    (gw,) = fw.autograd.grad(out.sum(), w)
    assert isinstance(gw, SparseTensor) and gw._indices().tolist() == [[1, 1, 4]]
    out = nn.functional.embedding(fw.tensor([1]), w, max_norm=0.5, sparse=True)
    assert float(out.norm()) <= 0.5 + 1e-5


def test_embedding_sparse_nonleaf_weight_and_tied_use_get_dense_gradients():
    w = fw.randn(5, 2, requires_grad=True)
    idx = fw.tensor([1, 3, 1])
    nn.functional.embedding(idx, w * 2, sparse=True).sum().backward()
    want = np.zeros((5, 2))
    np.add.at(want, [1, 3, 1], 2.0)
    assert w.grad.__class__ is fw.Tensor
    np.testing.assert_allclose(_np(w.grad), want)
    w.grad = None  # tied: a sparse (lookup) and a dense (matmul) gradient for one leaf
    x = fw.ones(3, 2)
    (nn.functional.embedding(idx, w, sparse=True).sum() + (x @ w.t()).sum()).backward()
    assert w.grad.__class__ is fw.Tensor
    np.testing.assert_allclose(_np(w.grad), want / 2 + 3.0)


def test_embedding_sparse_refusals():
    e = nn.Embedding(4, 2, sparse=True, scale_grad_by_freq=True)
    out = e(fw.tensor([1, 1]))  # the forward works, as in PyTorch
    with pytest.raises(fw.AutogradError, match="scale_grad_by_freq not supported with sparse"):
        out.sum().backward()
    # EmbeddingBag(sparse=True) is supported: tests/nn/test_embedding_bag_offsets.py


def test_clip_grad_norm_handles_sparse_gradients():
    idx = fw.tensor([1, 4, 1])
    e, ref = _emb(True), _emb(False)
    e(idx).pow(2).sum().backward()
    ref(idx).pow(2).sum().backward()
    lin = nn.Linear(2, 2)
    lin(fw.ones(1, 2)).sum().backward()
    lin_ref = nn.Linear(2, 2)
    lin_ref.load_state_dict(lin.state_dict())
    lin_ref(fw.ones(1, 2)).sum().backward()
    n = nn.utils.clip_grad_norm_(list(e.parameters()) + list(lin.parameters()), 0.5)
    n_ref = nn.utils.clip_grad_norm_(list(ref.parameters()) + list(lin_ref.parameters()), 0.5)
    assert abs(float(n) - float(n_ref)) < 1e-5  # duplicates are summed before the norm
    assert isinstance(e.weight.grad, SparseTensor)
    np.testing.assert_allclose(_np(e.weight.grad.to_dense()), _np(ref.weight.grad), rtol=1e-5)


# -- compile and ONNX ----------------------------------------------------------------------
def _adjacency(n=12, p=0.3, seed=1):
    """A symmetric normalized adjacency with self loops, D^-1/2 (A + I) D^-1/2, as COO."""
    g = np.random.default_rng(seed)
    a = (g.random((n, n)) < p).astype(np.float32)
    a = np.maximum(a, a.T)
    np.fill_diagonal(a, 1.0)
    d = a.sum(1) ** -0.5
    return fw.tensor(a * d[:, None] * d[None, :]).to_sparse()


class GCN(nn.Module):
    def __init__(self, adj, n_in, hidden, n_out):
        super().__init__()
        self.adj = adj  # a sparse constant: not a parameter or buffer
        self.l1, self.l2 = nn.Linear(n_in, hidden), nn.Linear(hidden, n_out)

    def forward(self, x):
        h = fw.sparse.mm(self.adj, self.l1(x)).relu()
        return fw.sparse.mm(self.adj, self.l2(h))


def _train_gcn(compiled, layout):
    fw.manual_seed(0)
    adj = _adjacency()
    model = GCN(adj if layout == "coo" else adj.to_sparse_csr(), 5, 8, 3)
    opt = optim.Adam(model.parameters(), lr=0.05)
    x, y = fw.randn(12, 5), fw.randint(0, 3, (12,))

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    f = fw.compile(step, fullgraph=True) if compiled else step
    return [float(f(x, y)) for _ in range(20)], model, f, (x, y)


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_gcn_training_compiled_matches_eager(layout):
    eager, m_eager, _, _ = _train_gcn(False, layout)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no graph break, no eager fallback
        compiled, m_comp, f, args = _train_gcn(True, layout)
    assert eager[-1] < eager[0] - 0.1
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    for a, b in zip(m_eager.parameters(), m_comp.parameters()):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-4, atol=1e-5)
    assert "spmm_coo" in str(f.graph(*args))


def test_gcn_exports_to_onnx_and_matches_onnxruntime(tmp_path):
    _, model, _, (x, _) = _train_gcn(False, "coo")
    path = tmp_path / "gcn.onnx"
    fw.onnx.export(model, (x,), str(path), verify=True)  # checked in onnxruntime
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, _np(model(x)), rtol=1e-5, atol=1e-5)


def test_sparse_argument_to_a_compiled_function_graph_breaks():
    s = _adjacency(4)
    f = fw.compile(lambda s, x: fw.sparse.mm(s, x))
    with pytest.warns(UserWarning, match="a sparse tensor argument"):
        out = f(s, fw.ones(4, 2))
    np.testing.assert_allclose(_np(out), _np(s.to_dense()) @ np.ones((4, 2)), rtol=1e-6)
    with pytest.raises(fw.GraphBreak, match="sparse tensor argument"):
        fw.compile(lambda s, x: fw.sparse.mm(s, x), fullgraph=True)(s, fw.ones(4, 2))


def test_sparse_embedding_under_compile_never_gives_dense_or_wrong_gradients():
    idx = fw.tensor([1, 2, 2])
    e, ref = _emb(True), _emb(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = fw.compile(lambda i: e(i).pow(2).sum())(idx)
    loss.backward()  # backward outside the compiled function
    ref(idx).pow(2).sum().backward()
    assert isinstance(e.weight.grad, SparseTensor)
    np.testing.assert_allclose(_np(e.weight.grad.to_dense()), _np(ref.weight.grad.to_dense()))
    opt = optim.SparseAdam(e.parameters(), lr=0.1)

    def step(i):  # backward and a sparse optimizer inside: runs eagerly, with a warning
        opt.zero_grad()
        out = e(i).pow(2).sum()
        out.backward()
        opt.step()
        return out
    before = _np(e.weight).copy()
    with pytest.warns(UserWarning, match="embedding\\(sparse=True\\)"):
        fw.compile(step)(idx)
    changed = np.flatnonzero(np.abs(_np(e.weight) - before).sum(1))
    assert changed.tolist() == [1, 2]  # only the looked-up rows moved
