"""``fw.linalg.eig`` / ``eigvals`` (no torch): the defining identity ``A V = V diag(L)``,
eigenvalues against NumPy, unit-norm eigenvectors, dtypes and batches, PyTorch's errors,
and finite-difference gradients (tests/complex_helpers.py) of the eigenvalues and of
phase-invariant functions of the eigenvectors."""

from __future__ import annotations

import numpy as np
import pytest

import framework as fw
from framework.errors import AutogradError, DTypeError, ShapeError
from framework.ops.linalg_ops import LinAlgError
from tests.complex_helpers import complex_gradcheck, crandn

L = fw.linalg
_A = np.random.default_rng(0).standard_normal((3, 4, 4))
_Z = crandn(2, 3, 3, seed=1)


def _sorted(v):
    return np.sort_complex(np.asarray(v).reshape(-1, np.asarray(v).shape[-1]))


@pytest.mark.parametrize("data,dt,cdt,tol", [
    (_A, fw.float64, fw.complex128, 1e-10), (_A, fw.float32, fw.complex64, 1e-4),
    (_Z, fw.complex128, fw.complex128, 1e-10), (_Z, fw.complex64, fw.complex64, 1e-4)])
def test_eig_satisfies_its_definition(data, dt, cdt, tol):
    A = fw.tensor(data, dtype=dt)
    vals, vecs = L.eig(A)
    assert vals.dtype is cdt and vecs.dtype is cdt
    assert vals.shape == data.shape[:-1] and vecs.shape == data.shape
    a, lam, v = A.numpy().astype(np.complex128), vals.numpy(), vecs.numpy()
    np.testing.assert_allclose(a @ v, v * lam[..., None, :], atol=tol * 10)
    np.testing.assert_allclose(np.linalg.norm(v, axis=-2), 1.0, atol=tol)
    np.testing.assert_allclose(_sorted(lam), _sorted(np.linalg.eigvals(data)), atol=tol * 10)
    w = L.eigvals(A)
    assert w.dtype is cdt
    np.testing.assert_allclose(w.numpy(), lam, atol=tol)
    assert L.eig(A).eigenvalues is not None  # the named tuple


def test_real_matrix_with_complex_eigenvalues():
    rot = fw.tensor([[0.0, -1.0], [1.0, 0.0]])
    np.testing.assert_allclose(np.sort_complex(L.eigvals(rot).numpy()), [-1j, 1j], atol=1e-6)
    np.testing.assert_allclose(L.eigvals(fw.eye(3, dtype=fw.float64)).numpy(), np.ones(3))
    assert L.eigvals(fw.zeros(0, 2, 2)).shape == (0, 2)


def test_eig_errors():
    with pytest.raises(ShapeError, match="linalg.eig: A must be batches of square"):
        L.eig(fw.ones(2, 3))
    with pytest.raises(ShapeError, match="linalg.eigvals: A must have at least 2"):
        L.eigvals(fw.ones(3))
    with pytest.raises(DTypeError, match="linalg.eig.*int64"):
        L.eig(fw.ones(2, 2, dtype=fw.int64))
    with pytest.raises(LinAlgError, match="infs or NaNs"):
        L.eig(fw.tensor([[1.0, float("nan")], [0.0, 1.0]]))


@pytest.mark.parametrize("data", [_A[0], _Z[0], _A[:2, :3, :3]])
def test_eigvals_gradient(data):
    complex_gradcheck(lambda a: L.eigvals(a), [data])


@pytest.mark.parametrize("data", [_A[0], _Z[0]])
def test_eigenvector_gradient_of_phase_invariant_losses(data):
    complex_gradcheck(lambda a: L.eig(a).eigenvectors.abs(), [data])
    # both outputs at once
    complex_gradcheck(lambda a: L.eig(a)[1].abs() * L.eig(a)[0].unsqueeze(-2), [data])


def test_phase_dependent_loss_raises():
    a = fw.tensor(_Z[0], requires_grad=True)
    with pytest.raises(AutogradError, match="linalg_eig_backward.*e\\^\\{i phi\\}"):
        L.eig(a)[1].real.sum().backward()


def test_eigvals_compile():
    f = fw.compile(lambda a: L.eigvals(a).abs().sum(-1))
    a = fw.tensor(_A)
    np.testing.assert_allclose(f(a).numpy(), np.abs(np.linalg.eigvals(_A)).sum(-1),
                               atol=1e-10)
    assert f.stats()["graph_breaks"] == []
