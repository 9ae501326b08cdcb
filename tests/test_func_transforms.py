"""torch.func's transforms: vmap (against explicit loops), jacrev/jacfwd/hessian (against
finite differences and closed forms), linearize, grad_and_value, functional_call."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.func import (functional_call, grad, grad_and_value, hessian, jacfwd, jacrev,
                            linearize, value_and_grad, vmap)
from tests.param_grad import numeric_jacobian as _fd_jac


def _t(a):
    return fw.tensor(np.asarray(a, dtype=np.float64))


def _np(t):
    return t.detach().numpy()


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- vmap ------------------------------------------------------------------------------------
def test_vmap_matches_loops_for_matmul_elementwise_and_reductions():
    x, w, v = _rand(5, 3, 4), _rand(4, 2, seed=1), _rand(3, 5, seed=2)
    out = vmap(lambda a, b: a @ b, in_dims=(0, None))(_t(x), _t(w))
    np.testing.assert_allclose(_np(out), np.stack([x[i] @ w for i in range(5)]))
    out = vmap(lambda a, b: (a.sin() * b[:, None]).sum(-1), in_dims=(0, 1))(_t(x), _t(v))
    ref = np.stack([(np.sin(x[i]) * v[:, i][:, None]).sum(-1) for i in range(5)])
    np.testing.assert_allclose(_np(out), ref, rtol=1e-12)
    out = vmap(lambda a: a.softmax(-1).max(0).values, in_dims=2)(_t(x))
    ex = np.exp(x - x.max(1, keepdims=True))  # a sample's dim -1 is x's dim 1
    sm = ex / ex.sum(1, keepdims=True)
    np.testing.assert_allclose(_np(out), np.stack([sm[:, :, i].max(0) for i in range(4)]),
                               rtol=1e-12)
    assert vmap(lambda a: a.sum())(_t(x)).shape == (5,)  # 0-d outputs stack to (B,)


def test_vmap_out_dims_negative_and_per_output():
    x = _rand(4, 2, 3)
    f = lambda a: (a * 2, a.sum(0))  # noqa: E731
    a, b = vmap(f, out_dims=(-1, 1))(_t(x))
    np.testing.assert_allclose(_np(a), np.moveaxis(x * 2, 0, -1))
    np.testing.assert_allclose(_np(b), np.moveaxis(x.sum(1), 0, 1))
    assert vmap(lambda a: a, out_dims=(1,))(_t(x)).shape == (2, 4, 3)
    with pytest.raises(ValueError, match="dimension out of range"):
        vmap(lambda a: a, out_dims=4)(_t(x))


def test_vmap_nested_and_pytrees():
    x, y = _rand(3, 4, 2), _rand(4, 2, seed=1)
    # nested: outer over dim 0 of x, inner over dim 0 of both
    out = vmap(vmap(lambda a, b: (a * b).sum()), in_dims=(0, None))(_t(x), _t(y))
    np.testing.assert_allclose(_np(out), (x * y).sum(-1), rtol=1e-12)
    # pytree inputs: a dict with a per-leaf in_dim, a list, a kwarg (never mapped)
    p = {"w": _t(_rand(3, 2, seed=2)), "b": _t(_rand(2, seed=3))}

    def f(p, xs, scale=1.0):
        return {"y": (xs[0] * p["w"]).sum() + p["b"].sum(), "z": [xs[1] * scale]}

    xs = [_t(_rand(2, 3, seed=4)), _t(_rand(3, seed=5))]
    out = vmap(f, in_dims=({"w": 0, "b": None}, [1, 0]))(p, xs, scale=2.0)
    for i in range(3):
        ref = f({"w": p["w"][i], "b": p["b"]}, [xs[0][:, i], xs[1][i]], 2.0)
        np.testing.assert_allclose(_np(out["y"][i]), _np(ref["y"]), rtol=1e-12)
        np.testing.assert_allclose(_np(out["z"][0][i]), _np(ref["z"][0]))
    assert isinstance(out["z"], list)


def test_vmap_unmapped_outputs_and_scalar_outputs():
    x = _t(_rand(3, 2))
    a, s = vmap(lambda t: (t.exp(), 7), out_dims=(0, None))(x)
    assert s == 7 and a.shape == (3, 2)
    with pytest.raises(ValueError, match="must only return Tensors"):
        vmap(lambda t: (t, 1.0))(x)


def test_vmap_errors_name_the_arguments_and_sizes():
    a, b = _t(_rand(3, 2)), _t(_rand(4, 2))
    with pytest.raises(ValueError, match=r"same size in the mapped dimension.*\[3, 4\]"
                                         r".*args\[1\]"):
        vmap(lambda p, q: p + q)(a, b)
    with pytest.raises(ValueError, match="not compatible with the structure"):
        vmap(lambda p, q: p + q, in_dims=((0, 0), 0))(a, b)
    with pytest.raises(ValueError, match="one in_dim per input"):
        vmap(lambda p, q: p + q, in_dims=(0,))(a, b)
    with pytest.raises(ValueError, match="non-Tensor"):
        vmap(lambda p, s: p * s)(a, 2.0)
    with pytest.raises(ValueError, match="dimensionality 2"):
        vmap(lambda p: p, in_dims=2)(a)
    with pytest.raises(ValueError, match="at least one input"):
        vmap(lambda p: p, in_dims=(None,))(a)
    with pytest.raises(ValueError, match="chunk_size"):
        vmap(lambda p: p, chunk_size=0)
    with pytest.raises(ValueError, match="randomness"):
        vmap(lambda p: p, randomness="maybe")


def test_vmap_randomness_modes():
    x = fw.zeros(4, 3)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        vmap(lambda t: t + fw.randn(3))(x)
    fw.manual_seed(0)
    diff = _np(vmap(lambda t: t + fw.randn(3), randomness="different")(x))
    assert not np.allclose(diff[0], diff[1])
    fw.manual_seed(0)
    same = _np(vmap(lambda t: t + fw.randn(3), randomness="same")(x))
    np.testing.assert_array_equal(same, np.broadcast_to(same[0], same.shape))
    fw.manual_seed(0)
    np.testing.assert_array_equal(same[0], _np(fw.randn(3)))
    assert not np.array_equal(_np(fw.randn(3)), same[0])  # the stream moved on once


def test_vmap_chunk_size_does_not_change_results():
    x = _t(_rand(7, 3))
    f = lambda t: t.tanh() @ t  # noqa: E731
    np.testing.assert_array_equal(_np(vmap(f, chunk_size=2)(x)), _np(vmap(f)(x)))


def test_gradients_flow_through_vmap():
    x0, w0 = _rand(5, 3), _rand(3, 4, seed=1)
    x, w = _t(x0).requires_grad_(), _t(w0).requires_grad_()
    vmap(lambda a, b: (a @ b).sin().sum(), in_dims=(0, None))(x, w).sum().backward()
    c = np.cos(x0 @ w0)
    np.testing.assert_allclose(_np(x.grad), c @ w0.T, rtol=1e-10)
    np.testing.assert_allclose(_np(w.grad), x0.T @ c, rtol=1e-10)
    g = fw.grad(lambda a: vmap(lambda r: (r @ _t(w0)).sin().sum())(a).sum())(_t(x0))
    np.testing.assert_allclose(_np(g), c @ w0.T, rtol=1e-10)


def test_per_sample_gradients_match_a_loop():
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = _t(_rand(6, 3)), _t(_rand(6, 1, seed=1))

    def loss(p, xi, yi):
        return ((functional_call(model, p, (xi[None],)) - yi) ** 2).mean()

    per = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    for i in range(6):
        model.zero_grad()
        ((model(x[i:i + 1]) - y[i]) ** 2).mean().backward()
        for k, p in model.named_parameters():
            assert per[k].shape == (6,) + tuple(p.shape)
            np.testing.assert_allclose(_np(per[k][i]), _np(p.grad), rtol=1e-10, atol=1e-14)


# -- jacobians -------------------------------------------------------------------------------
def _mlp(x, w1, w2):
    return (x @ w1).tanh() @ w2


def _mlp_np(x, w1, w2):
    return np.tanh(x @ w1) @ w2


def test_jacrev_and_jacfwd_match_finite_differences_and_each_other():
    x0, w10, w20 = _rand(2, 3), _rand(3, 4, seed=1), _rand(4, 2, seed=2)
    args = (_t(x0), _t(w10), _t(w20))
    refs = (_fd_jac(lambda a: _mlp_np(a, w10, w20), x0),
            _fd_jac(lambda a: _mlp_np(x0, a, w20), w10),
            _fd_jac(lambda a: _mlp_np(x0, w10, a), w20))
    jr = jacrev(_mlp, argnums=(0, 1, 2))(*args)
    jf = jacfwd(_mlp, argnums=(0, 1, 2))(*args)
    assert isinstance(jr, tuple) and len(jr) == 3
    for a, b, ref, arg in zip(jr, jf, refs, args):
        assert a.shape == (2, 2) + tuple(arg.shape)
        np.testing.assert_allclose(_np(a), ref, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-12, atol=1e-14)
    single = jacrev(_mlp, argnums=1)(*args)
    np.testing.assert_allclose(_np(single), _np(jr[1]))
    np.testing.assert_allclose(_np(jacfwd(_mlp, argnums=-1)(*args)), _np(jr[2]))


def test_jacobians_of_multiple_outputs_containers_and_aux():
    x0 = _rand(3)

    def f(p):
        y = p["a"].sin() * p["b"]
        return (y, {"s": y.sum()}), p["a"].shape[0]

    p = {"a": _t(x0), "b": _t(_rand(3, seed=1))}
    for jac in (jacrev, jacfwd):
        (j_y, j_s), aux = jac(f, has_aux=True)(p)
        assert aux == 3
        assert set(j_y) == {"a", "b"} and j_y["a"].shape == (3, 3)
        np.testing.assert_allclose(_np(j_y["a"]), np.diag(np.cos(x0) * _np(p["b"])),
                                   rtol=1e-12)
        np.testing.assert_allclose(_np(j_y["b"]), np.diag(np.sin(x0)), rtol=1e-12)
        assert j_s["s"]["a"].shape == (3,)
        np.testing.assert_allclose(_np(j_s["s"]["b"]), np.sin(x0), rtol=1e-12)


def test_jacrev_chunk_size_equivalence():
    x = _t(_rand(4))
    f = lambda a: (a[:, None] * a).exp()  # noqa: E731
    np.testing.assert_array_equal(_np(jacrev(f, chunk_size=3)(x)), _np(jacrev(f)(x)))


def test_hessian_matches_closed_form_and_finite_differences_of_grad():
    x0 = _rand(4)
    h = hessian(lambda x: x.sin().sum())(_t(x0))
    np.testing.assert_allclose(_np(h), np.diag(-np.sin(x0)), atol=1e-14)
    w0 = _rand(4, 3, seed=1)

    def f(x):
        return (x @ _t(w0)).tanh().sum() + (x ** 3).sum()

    h = hessian(f)(_t(x0))
    ref = _fd_jac(lambda a: _np(grad(f)(_t(a))), x0)
    np.testing.assert_allclose(_np(h), ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(_np(h), _np(h).T, rtol=1e-12)


def test_hessian_with_argnums_tuple_is_nested_blocks():
    x, y = _t(_rand(3)), _t(_rand(2, seed=1))

    def f(a, b):
        return (a.sin().sum() * b.exp()).sum() + (a[:2] * b).sum() ** 2

    h = hessian(f, argnums=(0, 1))(x, y)
    ref = jacrev(jacrev(f, argnums=(0, 1)), argnums=(0, 1))(x, y)
    assert [[b.shape for b in row] for row in h] == [[(3, 3), (3, 2)], [(2, 3), (2, 2)]]
    for row, ref_row in zip(h, ref):
        for b, r in zip(row, ref_row):
            np.testing.assert_allclose(_np(b), _np(r), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_np(h[0][1]), _np(h[1][0]).T, rtol=1e-12)


def test_linearize_and_jvp_agree():
    x0, t0 = _rand(3), _rand(3, seed=1)
    f = lambda x: (x.exp() * x, x.sum())  # noqa: E731
    out, jvp_fn = linearize(f, _t(x0))
    np.testing.assert_allclose(_np(out[0]), np.exp(x0) * x0)
    tan = jvp_fn(_t(t0))
    np.testing.assert_allclose(_np(tan[0]), np.exp(x0) * (1 + x0) * t0, rtol=1e-12)
    np.testing.assert_allclose(_np(tan[1]), t0.sum(), rtol=1e-12)
    _, ref = fw.jvp(f, (_t(x0),), (_t(t0),))
    np.testing.assert_allclose(_np(tan[0]), _np(ref[0]), rtol=1e-12)


def test_jacobian_argument_errors():
    with pytest.raises(ValueError, match="argnums"):
        jacrev(lambda x: x, argnums=2)(_t([1.0]))
    with pytest.raises(RuntimeError, match="floating point"):
        jacfwd(lambda x: x * 2)(fw.tensor([1, 2]))
    with pytest.raises(ValueError, match="only tensors"):
        jacrev(lambda x: (x, 1.0))(_t([1.0]))


# -- grad_and_value, vjp with aux, functional_call --------------------------------------------
def test_grad_and_value_is_value_and_grad_swapped():
    x = _t(_rand(3))
    f = lambda a: ((a ** 2).sum(), a.mean())  # noqa: E731
    g, (v, aux) = grad_and_value(f, has_aux=True)(x)
    (v2, aux2), g2 = value_and_grad(f, has_aux=True)(x)
    np.testing.assert_allclose(_np(g), 2 * _np(x))
    assert v.item() == v2.item() and aux.item() == aux2.item()
    np.testing.assert_array_equal(_np(g), _np(g2))


def test_vjp_with_tensor_aux_takes_cotangents_for_the_output_only():
    x0 = _rand(3)
    out, fn, aux = fw.vjp(lambda a: (a.sin(), a.cos()), _t(x0), has_aux=True)
    (g,) = fn(_t(np.ones(3)))
    np.testing.assert_allclose(_np(g), np.cos(x0), rtol=1e-12)
    np.testing.assert_allclose(_np(aux), np.cos(x0), rtol=1e-12)


def test_functional_call_with_linear_and_top_level_names():
    fw.manual_seed(0)
    lin = nn.Linear(3, 2).double()
    w, b = _t(_rand(2, 3)), _t(_rand(2, seed=1))
    x = _t(_rand(4, 3, seed=2))
    out = functional_call(lin, {"weight": w, "bias": b}, (x,))
    np.testing.assert_allclose(_np(out), _np(x) @ _np(w).T + _np(b), rtol=1e-12)
    assert not np.allclose(_np(lin.weight), _np(w))  # the module is unchanged
    assert fw.vmap is vmap and fw.func.functional_call is functional_call


def test_vjp_and_jvp_take_containers_of_tensors_as_primals():
    """torch.func style: a primal may be a dict (or tuple) of parameters; vjp returns the
    same container of gradients, jvp takes the same container of tangents (as the NTK
    tutorial's ``vjp(func_x1, params)`` / ``jvp(func_x2, (params,), vjps)``)."""
    import framework.autograd.forward_ad as fwAD
    rng = np.random.default_rng(0)
    w, b, x = (_t(rng.standard_normal(s)) for s in ((3, 4), (3,), (4,)))

    def f(p, x):
        return (p["w"] @ x + p["b"]).tanh()

    params = {"w": w, "b": b}
    out, vjp_fn = fw.func.vjp(f, params, x)
    v = _t(rng.standard_normal(3))
    gp, gx = vjp_fn(v)
    d = (1 - np.tanh(w.numpy() @ x.numpy() + b.numpy()) ** 2) * v.numpy()
    assert isinstance(gp, dict) and list(gp) == ["w", "b"]
    np.testing.assert_allclose(gp["w"].numpy(), np.outer(d, x.numpy()), rtol=1e-10)
    np.testing.assert_allclose(gp["b"].numpy(), d, rtol=1e-10)
    np.testing.assert_allclose(gx.numpy(), w.numpy().T @ d, rtol=1e-10)

    tw, tb = _t(rng.standard_normal((3, 4))), _t(rng.standard_normal(3))
    s = 1 - np.tanh(w.numpy() @ x.numpy() + b.numpy()) ** 2
    ref = s * (tw.numpy() @ x.numpy() + tb.numpy())
    for p, t in (({"w": w, "b": b}, {"w": tw, "b": tb}), ((w, b), (tw, tb))):
        g = (lambda p: f({"w": p[0], "b": p[1]}, x)) if isinstance(p, tuple) else \
            (lambda p: f(p, x))
        primal, tangent = fw.func.jvp(g, (p,), (t,))
        np.testing.assert_allclose(primal.numpy(), out.numpy(), rtol=1e-12)
        np.testing.assert_allclose(tangent.numpy(), ref, rtol=1e-10)
        with fwAD.dual_level():   # inside a dual level: the double-VJP path
            _, tangent2 = fw.func.jvp(g, (p,), (t,))
        np.testing.assert_allclose(tangent2.numpy(), ref, rtol=1e-10)
    with pytest.raises(fw.ArgumentError, match="structure of its primal"):
        fw.func.jvp(lambda p: f(p, x), (params,), ({"w": tw},))
    with pytest.raises(fw.ArgumentError, match="tangent 0 has shape"):
        fw.func.jvp(lambda p: f(p, x), (params,), ({"w": tw, "b": tw},))
