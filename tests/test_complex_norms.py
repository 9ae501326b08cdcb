"""Norms and common reductions/products of complex tensors (no torch): values against
NumPy, real-valued norms of ``|z|``, finite-difference gradients (tests/complex_helpers.py),
including the singular-value norms ('nuc', 2, -2) of complex matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

import framework as fw
from tests.complex_helpers import complex_gradcheck, crandn

_Z = crandn(3, 4, seed=2)


@pytest.mark.parametrize("ord", [2, 1, math.inf, -math.inf, 0, 3, 0.5])
@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
def test_vector_norm_of_complex(ord, dim):
    out = fw.linalg.vector_norm(fw.tensor(_Z), ord, dim)
    assert out.dtype is fw.float64
    a = np.abs(_Z)
    want = np.linalg.norm(a, ord, axis=1) if dim == 1 else np.linalg.norm(a.reshape(-1), ord)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    assert fw.linalg.vector_norm(fw.tensor(_Z, dtype=fw.complex64), ord).dtype is fw.float32
    if ord != 0:
        complex_gradcheck(lambda z: fw.linalg.vector_norm(z, ord, dim), [_Z])


@pytest.mark.parametrize("ord", ["fro", 1, -1, math.inf, -math.inf])
def test_matrix_norm_of_complex(ord):
    out = fw.linalg.matrix_norm(fw.tensor(_Z), ord)
    np.testing.assert_allclose(out.numpy(), np.linalg.norm(_Z, ord), rtol=1e-12)
    np.testing.assert_allclose(fw.linalg.norm(fw.tensor(_Z), ord).numpy(),
                               np.linalg.norm(_Z, ord), rtol=1e-12)
    complex_gradcheck(lambda z: fw.linalg.matrix_norm(z, ord), [_Z])


def test_norm_function_and_method_of_complex():
    z = fw.tensor(_Z)
    np.testing.assert_allclose(z.norm().item(), np.linalg.norm(_Z), rtol=1e-12)
    np.testing.assert_allclose(fw.norm(z, 1, 0).numpy(), np.abs(_Z).sum(0), rtol=1e-12)
    np.testing.assert_allclose(fw.linalg.norm(z).item(), np.linalg.norm(_Z), rtol=1e-12)
    complex_gradcheck(lambda t: t.norm(dim=1), [_Z])
    complex_gradcheck(lambda t: fw.norm(t, 3, 0), [_Z])


def test_norm_gradient_is_zero_at_zero_entries():
    z = fw.tensor([0j, 3 + 4j], requires_grad=True)
    fw.linalg.vector_norm(z).backward()
    np.testing.assert_allclose(z.grad.numpy(), [0, 0.6 + 0.8j])
    z = fw.zeros(2, dtype=fw.complex128, requires_grad=True)
    z.norm().backward()
    assert not np.isnan(z.grad.numpy()).any()


@pytest.mark.parametrize("ord", ["nuc", 2, -2])
def test_singular_value_norms_of_complex(ord):
    out = fw.linalg.matrix_norm(fw.tensor(_Z), ord)
    assert out.dtype is fw.float64
    np.testing.assert_allclose(out.numpy(), np.linalg.norm(_Z, ord), rtol=1e-12)
    complex_gradcheck(lambda z: fw.linalg.matrix_norm(z, ord), [_Z])


def test_mean_dot_inner_outer_vdot_of_complex():
    a, b = _Z[0], _Z[1]
    ta, tb = fw.tensor(a), fw.tensor(b)
    np.testing.assert_allclose(fw.tensor(_Z).mean(1).numpy(), _Z.mean(1), rtol=1e-12)
    np.testing.assert_allclose(fw.dot(ta, tb).item(), np.dot(a, b), rtol=1e-12)
    np.testing.assert_allclose(fw.inner(ta, tb).item(), np.inner(a, b), rtol=1e-12)
    np.testing.assert_allclose(fw.outer(ta, tb).numpy(), np.outer(a, b), rtol=1e-12)
    np.testing.assert_allclose(fw.vdot(ta, tb).item(), np.vdot(a, b), rtol=1e-12)
    complex_gradcheck(lambda z: z.mean(0), [_Z])
    complex_gradcheck(lambda x, y: fw.dot(x, y), [a, b])
    complex_gradcheck(lambda x, y: fw.inner(x, y), [a, b])
    complex_gradcheck(lambda x, y: fw.outer(x, y), [a, b])
    complex_gradcheck(lambda x, y: fw.vdot(x, y), [a, b])
    assert fw.allclose(ta, ta + 1e-12j) and not fw.allclose(ta, ta.conj())
