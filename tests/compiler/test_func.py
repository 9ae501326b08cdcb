"""fw.grad / value_and_grad / vjp / jvp against finite differences and closed forms."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from tests.param_grad import numeric_jacobian as _fd_grad


FUNCS = {
    "sin_mul": lambda x: (x.sin() * x).sum(),
    "softmax": lambda x: (x.softmax(-1) * fw.arange(x.shape[-1], dtype=x.dtype)).sum(),
    "tanh_matmul": lambda x: (x @ x.T).tanh().mean(),
    "logsumexp_view": lambda x: x.transpose(0, 1).reshape(-1).exp().sum().log(),
    "broadcast": lambda x: (x - x.mean(0, keepdim=True)).square().sum(),
}


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_grad_matches_finite_differences(name):
    f = FUNCS[name]
    x0 = np.random.default_rng(0).standard_normal((3, 4))
    g = fw.grad(f)(fw.tensor(x0)).numpy()
    ref = _fd_grad(lambda a: f(fw.tensor(a)).item(), x0)
    np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-6)


def test_second_order_grad_matches_finite_differences_of_grad():
    f = FUNCS["sin_mul"]
    x0 = np.random.default_rng(1).standard_normal(5)
    gg = fw.grad(lambda x: fw.grad(f)(x).sum())(fw.tensor(x0)).numpy()
    ref = _fd_grad(lambda a: fw.grad(f)(fw.tensor(a)).sum().item(), x0)
    np.testing.assert_allclose(gg, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gg, 2 * np.cos(x0) - x0 * np.sin(x0), rtol=1e-6)


def test_value_and_grad_argnums_and_aux():
    a0 = np.random.default_rng(2).standard_normal((2, 3))
    b0 = np.random.default_rng(3).standard_normal((2, 3))

    def f(a, b):
        loss = (a * b.exp()).sum()
        return loss, a.shape[0] * 1.0

    (v, aux), (ga, gb) = fw.value_and_grad(f, argnums=(0, 1), has_aux=True)(
        fw.tensor(a0), fw.tensor(b0))
    np.testing.assert_allclose(v.item(), (a0 * np.exp(b0)).sum(), rtol=1e-10)
    assert aux == 2.0
    np.testing.assert_allclose(ga.numpy(), np.exp(b0), rtol=1e-10)
    np.testing.assert_allclose(gb.numpy(), a0 * np.exp(b0), rtol=1e-10)


def test_grad_through_module_parameters_closure():
    fw.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    x0 = np.random.default_rng(4).standard_normal((2, 3))
    g = fw.grad(lambda x: m(x).sum())(fw.tensor(x0)).detach().numpy()
    with fw.no_grad():
        ref = _fd_grad(lambda a: m(fw.tensor(a)).sum().item(), x0)
    np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-7)


def test_vjp_and_jvp():
    x0 = np.random.default_rng(5).standard_normal(4)
    x = fw.tensor(x0)
    f = lambda a: a.exp() * a  # noqa: E731
    out, fn = fw.vjp(f, x)
    np.testing.assert_allclose(out.numpy(), np.exp(x0) * x0)
    ct = np.arange(4.0)
    (g,) = fn(fw.tensor(ct))
    np.testing.assert_allclose(g.numpy(), ct * np.exp(x0) * (1 + x0), rtol=1e-10)
    t0 = np.array([1.0, -2.0, 0.5, 3.0])
    out2, tangent = fw.jvp(f, (x,), (fw.tensor(t0),))
    np.testing.assert_allclose(tangent.numpy(), t0 * np.exp(x0) * (1 + x0), rtol=1e-10)


def test_grad_inside_compile_is_captured():
    f = FUNCS["sin_mul"]
    cf = fw.compile(lambda x: fw.grad(f)(x) * 2, mode="always", fullgraph=True)
    x = fw.randn(5)
    np.testing.assert_allclose(cf(x).numpy(), 2 * fw.grad(f)(x).numpy(), rtol=1e-6)
    g = cf.graph(x)
    assert any(n.op.name == "cos" for n in g.nodes)  # the backward is in the graph


def test_autodiff_pass_returns_a_verified_gradient_graph():
    from compiler.capture import capture_graph
    from compiler.passes import autodiff
    g = capture_graph(lambda x: (x.exp() * 3).sum(), (fw.randn(2, 3),))
    gg = autodiff.run(g, wrt=(0,))
    gg.verify()
    assert len(gg.outputs) == 2 and gg.outputs[1].shape == (2, 3)
    assert "autodiff" in str(gg).splitlines()[0]


def test_grad_errors():
    with pytest.raises(ValueError, match="scalar"):
        fw.grad(lambda x: x * 2)(fw.randn(3))
    with pytest.raises(ValueError, match="argnums"):
        fw.grad(lambda x: x.sum(), argnums=3)(fw.randn(3))


def test_grad_inside_compile_closing_over_traced_values():
    def h(x, y):
        z = y.exp() * 2
        return fw.grad(lambda a: (a.sin() * z).sum())(x)

    cf = fw.compile(h, mode="always", fullgraph=True)
    x, y = fw.randn(4), fw.randn(4)
    np.testing.assert_allclose(cf(x, y).numpy(), (x.cos() * y.exp() * 2).numpy(), rtol=1e-5)
    x2, y2 = fw.randn(4), fw.randn(4)
    np.testing.assert_allclose(cf(x2, y2).numpy(), (x2.cos() * y2.exp() * 2).numpy(),
                               rtol=1e-5)
    assert cf.stats()["captures"] == 1


def test_grad_with_float_arguments_uses_their_values():
    g = fw.grad(lambda x, t: (x * t).sum())
    x = fw.randn(3)
    np.testing.assert_allclose(g(x, 1.0).numpy(), [1.0] * 3)
    np.testing.assert_allclose(g(x, 2.5).numpy(), [2.5] * 3)


def test_grad_with_respect_to_a_dict_or_tuple_of_tensors():
    # JAX/torch.func style: params in a container; the gradient is the same container
    rng = np.random.default_rng(0)
    w0, b0, x0 = (rng.standard_normal(s) for s in ((3, 2), (2,), (4, 3)))

    def loss(params, x, scale):
        return ((x @ params["w"] + params["b"]).tanh() * scale).square().sum()

    def np_loss(w, b):
        return float(((np.tanh(x0 @ w + b) * 2.0) ** 2).sum())

    params = {"w": fw.tensor(w0), "b": fw.tensor(b0)}
    x = fw.tensor(x0)
    (value, aux), g = fw.value_and_grad(lambda p, x, s: (loss(p, x, s), p["b"]),
                                       has_aux=True)(params, x, 2.0)
    assert set(g) == {"w", "b"}
    np.testing.assert_allclose(aux.numpy(), b0)
    np.testing.assert_allclose(value.numpy(), np_loss(w0, b0), rtol=1e-10)
    np.testing.assert_allclose(g["w"].numpy(), _fd_grad(lambda w: np_loss(w, b0), w0),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g["b"].numpy(), _fd_grad(lambda b: np_loss(w0, b), b0),
                               rtol=1e-5, atol=1e-7)

    def sgd(ps, x):
        gs = fw.grad(lambda ps, x: loss({"w": ps[0], "b": ps[1]}, x, 2.0))(ps, x)
        return tuple(p - 0.01 * gp for p, gp in zip(ps, gs))

    step = fw.compile(sgd, mode="always")
    pe = pc = (params["w"], params["b"])
    for _ in range(3):
        pe, pc = sgd(pe, x), step(pc, x)
    for a, b in zip(pe, pc):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-10)
    assert step.stats()["eager_reason"] is None
    with pytest.raises(fw.errors.ArgumentError, match="argument 1 is not a tensor"):
        fw.grad(lambda p, s: p.sum() * s, argnums=1)(fw.ones(2), 3.0)


def test_grad_of_an_integer_argument_is_an_error():
    with pytest.raises(fw.errors.AutogradError, match="floating point"):
        fw.grad(lambda a: a.sum())(fw.tensor([1, 2]))


def test_grad_stops_at_detach_like_eager_autograd():
    """A straight-through estimator: the rounding error is detached, so d/dx is 1 (ignoring
    the detach would give round'(x) = 0), eagerly, through fw.grad and inside fw.compile."""
    x = fw.tensor([0.3, 1.7, -2.4])

    def f(t):
        return (t + (t.round() - t).detach()).sum()
    xe = x.clone().requires_grad_()
    f(xe).backward()
    np.testing.assert_array_equal(xe.grad.numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(fw.grad(f)(x).numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(fw.compile(fw.grad(f))(x).numpy(), [1.0, 1.0, 1.0])
    _, tangent = fw.jvp(lambda t: t * t.detach(), (x,), (fw.ones(3),))
    np.testing.assert_allclose(tangent.numpy(), x.numpy())  # not 2x


def test_grad_of_a_closure_tracks_what_it_reads_unless_detached():
    w = fw.randn(3, 3, requires_grad=True)
    x = fw.randn(2, 3)
    assert fw.grad(lambda t: (t @ w).sin().sum())(x).requires_grad
    assert not fw.grad(lambda t: (t @ w.detach()).sin().sum())(x).requires_grad


def test_grad_respects_no_grad_inside_the_function_only():
    """As torch.func.grad: a no_grad region inside f stops the gradient; a no_grad around
    the call does not."""
    x = fw.tensor([0.3, 1.7])

    def f(t):
        with fw.no_grad():
            c = t * 3
        return (t * c).sum()
    xe = x.clone().requires_grad_()
    f(xe).backward()
    np.testing.assert_allclose(fw.grad(f)(x).numpy(), xe.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(fw.compile(fw.grad(f))(x).numpy(), xe.grad.numpy(), rtol=1e-6)
    with fw.no_grad():
        np.testing.assert_allclose(fw.grad(lambda t: (t * t).sum())(x).numpy(),
                                   2 * x.numpy(), rtol=1e-6)
    second = fw.grad(lambda t: fw.grad(lambda u: (u ** 3).sum())(t).sum())(x)
    np.testing.assert_allclose(second.numpy(), 6 * x.numpy(), rtol=1e-6)


class _ScaledSTE(fw.autograd.Function):
    """Straight-through rounding whose backward (3 g) is not the forward's derivative."""

    @staticmethod
    def forward(ctx, x):
        return x.round()

    @staticmethod
    def backward(ctx, g):
        return g * 3


def test_custom_function_gradients_are_never_silently_zero():
    """Regression: a traced graph holds a custom Function's forward ops (run under
    no_grad), not its Python backward; differentiating that graph gave zeros."""
    x = fw.tensor([1.2, 2.7])
    compiled = fw.compile(lambda t: _ScaledSTE.apply(t * 1).sum())
    z = x.clone().requires_grad_()
    compiled(z).backward()  # runs eagerly: the backward is the Function's
    assert z.grad.tolist() == [3.0, 3.0] and compiled.stats()["eager_calls"] == 1

    def step(t):
        loss = _ScaledSTE.apply(t * 1).sum()
        loss.backward()  # backward inside the capture: recorded through the Function
        return loss
    w = x.clone().requires_grad_()
    fw.compile(step)(w)
    assert w.grad.tolist() == [3.0, 3.0]
    with pytest.raises(NotImplementedError, match="_ScaledSTE"):
        fw.func.grad(lambda t: _ScaledSTE.apply(t * 1).sum())(x)


def test_transforms_retrace_when_an_attribute_they_read_changes():
    """fw.grad and fw.vmap cache a trace per signature: a config attribute the trace read
    (``cfg.scale``) is part of what must still hold, or the cached trace is stale."""
    class Cfg:
        scale = None

    cfg = Cfg()
    cfg.scale = 2.0
    g = fw.func.grad(lambda t: (t * cfg.scale).sum())
    v = fw.vmap(lambda t: t * cfg.scale)
    assert g(fw.ones(2)).tolist() == [2.0, 2.0] and v(fw.ones(2, 1)).tolist() == [[2.0]] * 2
    cfg.scale = 5.0
    assert g(fw.ones(2)).tolist() == [5.0, 5.0] and v(fw.ones(2, 1)).tolist() == [[5.0]] * 2
