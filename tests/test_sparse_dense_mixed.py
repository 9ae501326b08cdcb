"""A dense tensor on the left of ``+ - *`` with a sparse one (the dense operand's method runs
first and must hand over to fw.sparse), and ``fw.spmm`` (torch.spmm)."""

import numpy as np
import pytest

import framework as fw


def _adj():
    return fw.sparse_coo_tensor([[0, 1, 1], [1, 0, 2]], fw.ones(3), (3, 3), dtype=fw.int64)


def test_dense_plus_minus_sparse_is_dense_with_promotion():
    s = _adj()
    want = s.to_dense().numpy()
    out = fw.eye(3) + s  # gcn/main.py: adj_mat = torch.eye(V) + adj_mat
    assert out.layout is fw.strided and out.dtype is fw.float32
    np.testing.assert_array_equal(out.numpy(), np.eye(3) + want)
    np.testing.assert_array_equal((fw.eye(3) - s).numpy(), np.eye(3) - want)
    np.testing.assert_array_equal(fw.add(fw.eye(3), s, alpha=2).numpy(), np.eye(3) + 2 * want)
    np.testing.assert_array_equal(fw.sub(fw.eye(3), s, alpha=2).numpy(), np.eye(3) - 2 * want)


def test_dense_times_sparse_is_sparse_and_differentiable():
    s = fw.sparse_coo_tensor([[0, 1], [1, 0]], fw.tensor([2.0, 3.0]), (2, 2))
    d = fw.tensor([[1.0, 5.0], [7.0, 1.0]], requires_grad=True)
    out = d * s
    assert out.layout is fw.sparse_coo
    np.testing.assert_array_equal(out.to_dense().detach().numpy(), [[0, 10], [21, 0]])
    out.to_dense().sum().backward()
    np.testing.assert_array_equal(d.grad.numpy(), [[0, 2], [3, 0]])


def test_spmm_matches_dense_product_and_its_gradient():
    fw.manual_seed(0)
    a = fw.rand(4, 3)
    a = a * (a > 0.5)
    x = fw.randn(3, 2, requires_grad=True)
    out = fw.spmm(a.to_sparse(), x)
    np.testing.assert_allclose(out.detach().numpy(), a.numpy() @ x.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), a.numpy().T @ np.ones((4, 2)), rtol=1e-6)
    np.testing.assert_allclose(fw.spmm(a, x).detach().numpy(), out.detach().numpy())


def test_sparse_plus_a_number_still_refused():
    with pytest.raises(TypeError, match="sparse"):
        _ = 1 + _adj()
