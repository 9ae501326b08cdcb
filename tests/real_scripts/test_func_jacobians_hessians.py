"""pytorch/tutorials ``intermediate_source/jacobians_hessians.py`` ported to fw.

``predict(weight, bias, x) = tanh(linear(x))``: its Jacobian row by row with
``autograd.grad``, with ``vmap(vjp_fn)``, with ``jacrev`` (``argnums=2`` and ``(0, 1)``) and
``jacfwd``, the Hessian with ``hessian`` / ``jacfwd(jacfwd)`` / ``jacrev(jacrev)``, batch
Jacobians and Hessians (``vmap`` and the sum trick with ``movedim``), and Hessian-vector
products (``jvp(grad(f))`` and ``vjp(grad(f))``). Sizes are smaller than the tutorial's
(2048-wide layers, 500 timing runs) so the file runs in a second. Every quantity is also
checked against its closed form in NumPy, and the transforms a user would compile are
compiled.
"""
# ruff: noqa: E701, E702, E231  (the original's lines are kept as written)

from functools import partial

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
from framework.func import hessian, jacfwd, jacrev, jvp, vjp, vmap
from framework.func import grad as fgrad


def predict(weight, bias, x):
    return F.linear(x, weight, bias).tanh()


def _data(dout, din, batch=None, seed=0):
    fw.manual_seed(seed)
    weight = fw.randn(dout, din)
    bias = fw.randn(dout)
    x = fw.randn(din) if batch is None else fw.randn(batch, din)
    return weight, bias, x


def _np_jac(weight, bias, x):
    """d tanh(W x + b) / dx = diag(1 - y^2) W, and the pieces of the closed forms."""
    W, b, xv = (t.numpy().astype(np.float64) for t in (weight, bias, x))
    y = np.tanh(W @ xv + b)
    return (1 - y ** 2)[:, None] * W, y, W, xv


def _np_hess(weight, bias, x):
    """d^2 y_k / dx_i dx_j = -2 y_k (1 - y_k^2) W_ki W_kj."""
    _, y, W, _ = _np_jac(weight, bias, x)
    return (-2 * y * (1 - y ** 2))[:, None, None] * W[:, :, None] * W[:, None, :]


def _close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(a.numpy() if isinstance(a, fw.Tensor) else a,
                               b.numpy() if isinstance(b, fw.Tensor) else b,
                               rtol=rtol, atol=atol)


def test_jacobian_row_by_row_vmap_vjp_and_jacrev_agree():
    D = 16
    weight, bias, x = _data(D, D)

    def compute_jac(xp):
        jacobian_rows = [fw.autograd.grad(predict(weight, bias, xp), xp, vec)[0]
                         for vec in unit_vectors]
        return fw.stack(jacobian_rows)

    xp = x.clone().requires_grad_()
    unit_vectors = fw.eye(D)

    jacobian = compute_jac(xp)
    assert jacobian.shape == (D, D)

    _, vjp_fn = vjp(partial(predict, weight, bias), x)
    ft_jacobian, = vmap(vjp_fn)(unit_vectors)
    assert fw.allclose(ft_jacobian, jacobian)

    ft_jacobian = jacrev(predict, argnums=2)(weight, bias, x)
    assert fw.allclose(ft_jacobian, jacobian)
    _close(jacobian, _np_jac(weight, bias, x)[0])


def test_jacobians_with_respect_to_weight_and_bias():
    weight, bias, x = _data(6, 4)
    # note the change in input via argnums params of 0,1 to map to weight and bias
    ft_jac_weight, ft_jac_bias = jacrev(predict, argnums=(0, 1))(weight, bias, x)
    assert ft_jac_weight.shape == (6, 6, 4) and ft_jac_bias.shape == (6, 6)
    _, y, _, xv = _np_jac(weight, bias, x)
    d = np.diag(1 - y ** 2)                        # dy_k/db_i = (1 - y_k^2) [k == i]
    _close(ft_jac_bias, d)
    _close(ft_jac_weight, d[:, :, None] * xv[None, None, :])   # ... * x_j
    fwd_w, fwd_b = jacfwd(predict, argnums=(0, 1))(weight, bias, x)
    _close(fwd_w, ft_jac_weight)
    _close(fwd_b, ft_jac_bias)


@pytest.mark.parametrize("din,dout", [(8, 64), (64, 8)])   # tutorial: (32, 2048), (2048, 32)
def test_jacfwd_and_jacrev_agree_on_tall_and_wide_jacobians(din, dout):
    weight, bias, x = _data(dout, din, seed=din)
    fwd = jacfwd(predict, argnums=2)(weight, bias, x)
    rev = jacrev(predict, argnums=2)(weight, bias, x)
    assert fwd.shape == rev.shape == (dout, din)
    _close(fwd, rev)
    _close(rev, _np_jac(weight, bias, x)[0])


def test_hessian_api_fwdfwd_and_revrev_agree():
    weight, bias, x = _data(8, 12)   # tutorial: 32 x 512
    hess_api = hessian(predict, argnums=2)(weight, bias, x)
    hess_fwdfwd = jacfwd(jacfwd(predict, argnums=2), argnums=2)(weight, bias, x)
    hess_revrev = jacrev(jacrev(predict, argnums=2), argnums=2)(weight, bias, x)
    assert hess_api.shape == (8, 12, 12)
    assert fw.allclose(hess_api, hess_fwdfwd)
    _close(hess_api, hess_revrev)
    _close(hess_api, _np_hess(weight, bias, x), rtol=1e-4, atol=1e-5)


def test_batch_jacobian_and_batch_hessian():
    batch_size = 6
    Din = 5
    Dout = 7
    weight, bias, x = _data(Dout, Din, batch=batch_size)

    compute_batch_jacobian = vmap(jacrev(predict, argnums=2), in_dims=(None, None, 0))
    batch_jacobian0 = compute_batch_jacobian(weight, bias, x)
    assert batch_jacobian0.shape == (batch_size, Dout, Din)

    def predict_with_output_summed(weight, bias, x):
        return predict(weight, bias, x).sum(0)

    batch_jacobian1 = jacrev(predict_with_output_summed, argnums=2)(weight, bias, x).movedim(1, 0)
    assert fw.allclose(batch_jacobian0, batch_jacobian1)

    compute_batch_hessian = vmap(hessian(predict, argnums=2), in_dims=(None, None, 0))
    batch_hess = compute_batch_hessian(weight, bias, x)
    assert batch_hess.shape == (batch_size, Dout, Din, Din)
    for n in range(batch_size):
        _close(batch_jacobian0[n], _np_jac(weight, bias, x[n])[0])
        _close(batch_hess[n], _np_hess(weight, bias, x[n]), rtol=1e-4, atol=1e-5)


def hvp(f, primals, tangents):
  return jvp(fgrad(f), primals, tangents)[1]


def hvp_revrev(f, primals, tangents):
  _, vjp_fn = vjp(fgrad(f), *primals)
  return vjp_fn(*tangents)


def f(x):
  return x.sin().sum()


def test_hessian_vector_products():
    fw.manual_seed(1)
    x = fw.randn(64)        # tutorial: 2048
    tangent = fw.randn(64)
    result = hvp(f, (x,), (tangent,))
    result_hvp_revrev = hvp_revrev(f, (x,), (tangent,))
    assert fw.allclose(result, result_hvp_revrev[0])
    _close(result, -np.sin(x.numpy()) * tangent.numpy())   # H = diag(-sin x)


def test_compiled_jacobians_hessians_and_hvp_match_eager_without_recompiling():
    weight, bias, xs = _data(5, 4, batch=3)
    fns = {"jacrev": jacrev(predict, argnums=2), "jacfwd": jacfwd(predict, argnums=2),
           "hessian": hessian(predict, argnums=2),
           "batch_jacobian": vmap(jacrev(predict, argnums=2), in_dims=(None, None, 0)),
           "hvp": lambda w, b, x: hvp(f, (x,), (w[0],))}
    for name, fn in fns.items():
        compiled = fw.compile(fn)
        for step in range(3):
            x = xs[0] if name != "batch_jacobian" else xs
            x = x * (1 + step)           # new values every call, same shapes
            _close(compiled(weight, bias, x), fn(weight, bias, x), rtol=1e-5, atol=1e-6)
        st = compiled.stats()
        assert st["captures"] == 1 and st["num_recompiles"] == 0, (name, st["recompiles"])
        assert not st["graph_breaks"], (name, st["graph_breaks"])


def test_the_timer_comparisons_run():
    from framework.utils.benchmark import Timer

    def get_perf(first, first_descriptor, second, second_descriptor):
        """takes torch.benchmark objects and compares delta of second vs first."""
        faster = second.times[0]
        slower = first.times[0]
        gain = (slower-faster)/slower
        if gain < 0: gain *=-1
        final_gain = gain*100
        print(f" Performance delta: {final_gain:.4f} percent improvement with {second_descriptor} ")
        return final_gain

    weight, bias, x = _data(8, 8)
    env = dict(jacfwd=jacfwd, jacrev=jacrev, predict=predict, weight=weight, bias=bias, x=x)
    using_fwd = Timer(stmt="jacfwd(predict, argnums=2)(weight, bias, x)", globals=env)
    using_bwd = Timer(stmt="jacrev(predict, argnums=2)(weight, bias, x)", globals=env)
    jacfwd_timing = using_fwd.timeit(2)
    jacrev_timing = using_bwd.timeit(2)
    assert get_perf(jacfwd_timing, "jacfwd", jacrev_timing, "jacrev", ) >= 0
