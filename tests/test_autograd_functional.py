"""fw.autograd.functional: jacobian, hessian, vjp, jvp, hvp, vhp against analytic NumPy
formulas and finite differences; return structures, strict mode, create_graph, errors."""

import numpy as np
import pytest

import framework as fw
from framework.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp

F64 = fw.float64


def _t(v):
    return fw.tensor(np.asarray(v, dtype=np.float64), dtype=F64)


def _fd_jacobian(f, x, eps=1e-6):
    """Central differences of a NumPy function f: R^n -> R^m, shape (m..., n...)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.asarray(f(x))
    jac = np.zeros(out.shape + x.shape)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = eps
        jac[(Ellipsis,) + idx] = (np.asarray(f(x + d)) - np.asarray(f(x - d))) / (2 * eps)
    return jac


def f_np(x):
    return np.sin(x) * x[::-1] + np.exp(x).sum()


def f_fw(x):
    return x.sin() * x.flip(0) + x.exp().sum()


X = np.array([0.3, -1.1, 0.7, 2.0])


@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian_matches_finite_differences(vectorize):
    J = jacobian(f_fw, _t(X), vectorize=vectorize)
    assert isinstance(J, fw.Tensor) and J.shape == (4, 4) and not J.requires_grad
    np.testing.assert_allclose(J.numpy(), _fd_jacobian(f_np, X), rtol=1e-6, atol=1e-8)


def test_jacobian_forward_mode_strategy():
    J = jacobian(f_fw, _t(X), vectorize=True, strategy="forward-mode")
    np.testing.assert_allclose(J.numpy(), _fd_jacobian(f_np, X), rtol=1e-6, atol=1e-8)
    with pytest.raises(NotImplementedError, match="only implemented for `vectorize=True`"):
        jacobian(f_fw, _t(X), strategy="forward-mode")
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        jacobian(f_fw, _t(X), vectorize=True, strategy="forward-mode", create_graph=True)
    with pytest.raises(RuntimeError, match="strict=True"):
        jacobian(f_fw, _t(X), vectorize=True, strategy="forward-mode", strict=True)
    with pytest.raises(ValueError, match="forward-mode"):
        jacobian(f_fw, _t(X), strategy="sideways")


def test_jacobian_tuple_structures():
    a, b = np.array([0.5, 1.5, -0.5]), np.array([2.0, -1.0])

    def g(x, y):
        return (x * y.sum(), (x ** 2).sum() * y)

    J = jacobian(g, (_t(a), _t(b)))
    assert isinstance(J, tuple) and len(J) == 2 and all(isinstance(r, tuple) for r in J)
    assert [[j.shape for j in row] for row in J] == [[(3, 3), (3, 2)], [(2, 3), (2, 2)]]
    np.testing.assert_allclose(J[0][0].numpy(), np.eye(3) * b.sum())
    np.testing.assert_allclose(J[0][1].numpy(), np.outer(a, np.ones(2)))
    np.testing.assert_allclose(J[1][0].numpy(), np.outer(b, 2 * a))
    np.testing.assert_allclose(J[1][1].numpy(), np.eye(2) * (a ** 2).sum())
    # tensor output, tuple inputs -> a tuple per input
    J1 = jacobian(lambda x, y: x * y.sum(), (_t(a), _t(b)))
    assert isinstance(J1, tuple) and isinstance(J1[0], fw.Tensor) and len(J1) == 2
    # tuple output, tensor input -> a tuple per output
    J2 = jacobian(lambda x: (x.sin(), x.sum()), _t(a))
    assert isinstance(J2, tuple) and J2[0].shape == (3, 3) and J2[1].shape == (3,)
    np.testing.assert_allclose(J2[0].numpy(), np.diag(np.cos(a)))


def test_jacobian_strict_and_unused_inputs():
    a, b = _t([1.0, 2.0]), _t([3.0])
    J = jacobian(lambda x, y: x * 2, (a, b))
    np.testing.assert_allclose(J[1].numpy(), np.zeros((2, 1)))
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is "
                                           "independent of input 1"):
        jacobian(lambda x, y: x * 2, (a, b), strict=True)
    with pytest.raises(RuntimeError, match="does not require gradients"):
        jacobian(lambda x: fw.ones(2, dtype=F64), a, strict=True)
    with pytest.raises(RuntimeError, match="`strict=True` and `vectorized=True`"):
        jacobian(lambda x: x * 2, a, strict=True, vectorize=True)
    with pytest.raises(TypeError, match="must be either a Tensor or a tuple of Tensors"):
        jacobian(lambda x: x, [1.0, 2.0])


def test_jacobian_create_graph_is_differentiable():
    x = _t([0.4, 1.3]).requires_grad_(True)
    J = jacobian(lambda t: t ** 3, x, create_graph=True)
    assert J.requires_grad
    J.sum().backward()                       # d/dx sum(diag(3x^2)) = 6x
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy())


def test_hessian_matches_analytic_formula():
    x = np.array([0.2, -0.4, 1.1])
    A = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 1.5]])

    def f(t):
        return (t.sin() * t).sum() + t @ _t(A) @ t

    H = hessian(f, _t(x))
    expected = np.diag(2 * np.cos(x) - x * np.sin(x)) + A + A.T
    np.testing.assert_allclose(H.numpy(), expected, rtol=1e-10, atol=1e-12)
    Hf = hessian(f, _t(x), vectorize=True, outer_jacobian_strategy="forward-mode")
    np.testing.assert_allclose(Hf.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_hessian_tuple_inputs_and_errors():
    a, b = np.array([0.5, 2.0]), np.array([1.5])
    H = hessian(lambda x, y: (x ** 2).sum() * y.sum() ** 3, (_t(a), _t(b)))
    assert [[h.shape for h in row] for row in H] == [[(2, 2), (2, 1)], [(1, 2), (1, 1)]]
    np.testing.assert_allclose(H[0][0].numpy(), 2 * b[0] ** 3 * np.eye(2))
    np.testing.assert_allclose(H[0][1].numpy(), (6 * a * b[0] ** 2)[:, None])
    np.testing.assert_allclose(H[1][0].numpy(), (6 * a * b[0] ** 2)[None, :])
    np.testing.assert_allclose(H[1][1].numpy(), [[6 * (a ** 2).sum() * b[0]]])
    with pytest.raises(RuntimeError, match="should return a single Tensor"):
        hessian(lambda x: (x.sum(), x.sum()), _t(a))
    with pytest.raises(RuntimeError, match="should contain a single element"):
        hessian(lambda x: x ** 2, _t(a))
    with pytest.raises(RuntimeError, match="jacobian of the user-provided function with "
                                           "respect to input 0 is independent"):
        hessian(lambda x: x.sum() * 2, _t(a), strict=True)


def test_vjp_and_jvp():
    x = _t(X)
    J = _fd_jacobian(f_np, X)
    v_out, v_in = np.array([1.0, -2.0, 0.5, 3.0]), np.array([0.1, 0.2, -0.3, 0.4])
    out, g = vjp(f_fw, x, _t(v_out))
    np.testing.assert_allclose(out.numpy(), f_np(X))
    np.testing.assert_allclose(g.numpy(), v_out @ J, rtol=1e-6)
    out, t = jvp(f_fw, x, _t(v_in))
    np.testing.assert_allclose(t.numpy(), J @ v_in, rtol=1e-6)
    assert not t.requires_grad and not out.requires_grad
    # tuple inputs/outputs keep their structure
    out, (ga, gb) = vjp(lambda a, b: a * b, (_t([1.0, 2.0]), _t([3.0, 4.0])), _t([1.0, 1.0]))
    np.testing.assert_allclose(ga.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(gb.numpy(), [1.0, 2.0])
    out, (t1, t2) = jvp(lambda a: (a * 2, a.sum()), _t([1.0, 2.0]), _t([1.0, -1.0]))
    np.testing.assert_allclose(t1.numpy(), [2.0, -2.0])
    assert t2.item() == 0.0
    # v=None only for single elements
    _, g = vjp(lambda a: (a ** 2).sum(), _t([3.0]))
    np.testing.assert_allclose(g.numpy(), [6.0])
    with pytest.raises(RuntimeError, match="v can only be None"):
        vjp(lambda a: a * 2, _t([1.0, 2.0]))
    with pytest.raises(ValueError, match="v has invalid size"):
        jvp(lambda a: a * 2, _t([1.0, 2.0]), _t([1.0]))
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function does not "
                                           "require gradients"):
        jvp(lambda a: a.detach() * 2, _t([1.0, 2.0]), _t([1.0, 1.0]), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        vjp(lambda a, b: a * 2, (_t([1.0]), _t([2.0])), _t([1.0]), strict=True)


def test_hvp_and_vhp():
    x = np.array([0.5, -1.0, 2.0])
    v = np.array([1.0, 0.5, -2.0])

    def f(t):
        return (t ** 3).sum() + t[0] * t[1] * t[2]

    H = np.diag(6 * x)
    H[0, 1] = H[1, 0] = x[2]
    H[0, 2] = H[2, 0] = x[1]
    H[1, 2] = H[2, 1] = x[0]
    out, hv = hvp(f, _t(x), _t(v))
    np.testing.assert_allclose(out.item(), (x ** 3).sum() + x.prod())
    np.testing.assert_allclose(hv.numpy(), H @ v)
    _, vh = vhp(f, _t(x), _t(v))
    np.testing.assert_allclose(vh.numpy(), v @ H)
    # tuple inputs
    out, (ha, hb) = hvp(lambda a, b: (a * b).sum() ** 2, (_t([1.0, 2.0]), _t([3.0, 4.0])),
                        (_t([1.0, 0.0]), _t([0.0, 0.0])))
    # f = s^2, s = a.b: H_aa = 2 b b^T, H_ba = 2 (b a^T + s I)
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    np.testing.assert_allclose(ha.numpy(), 2 * np.outer(b, b) @ [1.0, 0.0])
    np.testing.assert_allclose(hb.numpy(), 2 * (np.outer(a, b) + a @ b * np.eye(2)) @ [1, 0])
    with pytest.raises(RuntimeError, match="jacobian of the user-provided function with "
                                           "respect to input 0 is independent"):
        hvp(lambda t: t.sum(), _t(x), _t(v), strict=True)
    with pytest.raises(RuntimeError, match="should return a single Tensor"):
        vhp(lambda t: (t.sum(), t.sum()), _t(x), _t(v))


def test_create_graph_results_stay_in_the_graph():
    x = _t([0.7, -0.2]).requires_grad_(True)
    _, g = vjp(lambda t: (t ** 3).sum(), x, create_graph=True)
    assert g.requires_grad
    (g2,) = fw.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(g2.numpy(), 6 * x.detach().numpy())
    H = hessian(lambda t: (t ** 4).sum(), x, create_graph=True)
    (d3,) = fw.autograd.grad(H.sum(), x)
    np.testing.assert_allclose(d3.numpy(), 24 * x.detach().numpy())
