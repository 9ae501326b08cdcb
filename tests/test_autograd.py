"""Autograd: accumulation, backward options, autograd.grad and higher order, grad modes
(thread-local), detach, hooks, retain_grad, custom Functions and gradcheck itself."""

import threading

import numpy as np
import pytest

import framework as fw
from framework.errors import AutogradError


def _x(*vals, dtype=fw.float64):
    return fw.tensor(list(vals), dtype=dtype, requires_grad=True)


def test_grad_accumulates_across_backward_calls():
    x = _x(1.0, 2.0)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])
    assert x.grad.requires_grad is False and x.grad.grad_fn is None


def test_backward_gradient_argument_for_non_scalar():
    x = _x(1.0, 2.0, 3.0)
    y = x * x
    y.backward(gradient=fw.tensor([1.0, 0.5, 0.0], dtype=fw.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 0.0])


def test_retain_graph_allows_a_second_backward():
    x = _x(2.0)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0])
    with pytest.raises(AutogradError, match="second time"):
        y.backward()


def test_autograd_grad_returns_without_accumulating():
    x = _x(1.0, 2.0)
    y = _x(3.0, 4.0)
    gx, gy = fw.autograd.grad((x * y).sum(), [x, y])
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(gy.numpy(), [1.0, 2.0])
    assert x.grad is None and y.grad is None


def test_autograd_grad_outputs_and_unused():
    x, z = _x(1.0, 2.0), _x(5.0)
    out = x * 2
    (g,) = fw.autograd.grad(out, x, grad_outputs=fw.tensor([1.0, 3.0], dtype=fw.float64),
                            retain_graph=True)
    np.testing.assert_allclose(g.numpy(), [2.0, 6.0])
    with pytest.raises(AutogradError, match="not have been used"):
        fw.autograd.grad(out.sum(), [x, z], retain_graph=True)
    gx, gz = fw.autograd.grad(out.sum(), [x, z], allow_unused=True)
    assert gz is None and gx is not None


def test_higher_order_gradients():
    x = _x(0.5, -1.5)
    y = (x ** 3).sum()
    (g1,) = fw.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g1.detach().numpy(), 3 * x.detach().numpy() ** 2)
    assert g1.requires_grad
    (g2,) = fw.autograd.grad(g1.sum(), x, create_graph=True)
    np.testing.assert_allclose(g2.detach().numpy(), 6 * x.detach().numpy())
    (g3,) = fw.autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.numpy(), [6.0, 6.0])


def test_higher_order_through_composites():
    x = fw.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype=fw.float64, requires_grad=True)
    assert fw.autograd.gradgradcheck(lambda t: fw.softmax(t.tanh() * t, 1), (x,))
    assert fw.autograd.gradgradcheck(lambda t: (t @ t.mT).sigmoid().sum(0), (x,))


def test_backward_create_graph_then_second_derivative():
    x = _x(2.0)
    y = x.exp() * x
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    (gg,) = fw.autograd.grad(g.sum(), x)
    # d/dx (e^x x) = e^x (x + 1); second derivative e^x (x + 2)
    np.testing.assert_allclose(gg.numpy(), [np.exp(2.0) * 4], rtol=1e-12)


def test_backward_inputs_restricts_accumulation():
    x, y = _x(1.0), _x(2.0)
    (x * y).backward(inputs=[x])
    assert x.grad is not None and y.grad is None


def test_no_grad_enable_grad_set_grad_enabled_inference_mode():
    x = _x(1.0)
    with fw.no_grad():
        assert not fw.is_grad_enabled()
        assert not (x * 2).requires_grad
        with fw.enable_grad():
            assert (x * 2).requires_grad
    assert fw.is_grad_enabled()
    with fw.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    fw.set_grad_enabled(False)
    try:
        assert not fw.is_grad_enabled()
    finally:
        fw.set_grad_enabled(True)
    with fw.inference_mode():
        assert fw.is_inference_mode_enabled() and not (x * 2).requires_grad
    assert not fw.is_inference_mode_enabled()

    @fw.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad and fw.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}

    def worker():
        seen["enabled"] = fw.is_grad_enabled()
        seen["records"] = (_x(1.0) * 2).requires_grad

    with fw.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not fw.is_grad_enabled()
    assert seen == {"enabled": True, "records": True}


def test_detach_shares_storage_and_stops_gradients():
    x = _x(1.0, 2.0)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    d[0] = 10.0
    assert y[0].item() == 10.0
    z = (x * d).sum()
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [10.0, 4.0])


def test_requires_grad_flag_rules():
    x = fw.ones(2)
    assert x.requires_grad_() is x and x.requires_grad and x.is_leaf
    with pytest.raises(AutogradError, match="floating point"):
        fw.ones(2, dtype=fw.int64).requires_grad_()
    y = x * 2
    assert not y.is_leaf and y.grad_fn.name() == "MulBackward0"
    with pytest.raises(AutogradError, match="leaf"):
        y.requires_grad_(False)
    assert not (x > 0).requires_grad  # non-float outputs never require grad
    assert not x.argmax().requires_grad


def test_hooks_on_leaf_and_non_leaf():
    x = _x(1.0, 2.0)
    seen = []
    x.register_hook(lambda g: g * 10)
    y = x * 3
    h = y.register_hook(lambda g: seen.append(g.numpy().copy()))
    y2 = y * 2
    y2.register_hook(lambda g: g + 1)
    y2.sum().backward()
    np.testing.assert_allclose(seen[0], [4.0, 4.0])  # (1 + 1) * 2
    np.testing.assert_allclose(x.grad.numpy(), [120.0, 120.0])  # 4 * 3 * 10
    h.remove()
    x.grad = None
    (x * 3 * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [60.0, 60.0])
    with pytest.raises(AutogradError):
        fw.ones(2).register_hook(lambda g: g)


def test_retain_grad_on_non_leaf():
    x = _x(1.0, 2.0)
    y = x * x
    y.retain_grad()
    assert y.retains_grad
    (y * 3).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])


class _Cube(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * x * scale

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return g * 3 * x * x * ctx.scale, None


def test_custom_function():
    x = _x(1.0, -2.0)
    y = _Cube.apply(x, 2.0)
    assert y.grad_fn is not None
    np.testing.assert_allclose(y.detach().numpy(), [2.0, -16.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])
    assert fw.autograd.gradcheck(lambda t: _Cube.apply(t, 0.5), (_x(0.3, 0.7),))
    with fw.no_grad():
        assert not _Cube.apply(x, 1.0).requires_grad


def test_custom_function_saved_tensor_modified_in_place():
    x = _x(1.0, 2.0)
    a = x * 1
    y = _Cube.apply(a, 1.0)
    with fw.no_grad():
        a.add_(1)
    with pytest.raises(AutogradError, match="modified by an inplace operation"):
        y.sum().backward()


class _WrongSquare(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x  # wrong: should be 2 * g * x


def test_gradcheck_detects_a_wrong_vjp():
    x = _x(0.5, 1.5, -1.0)
    with pytest.raises(AutogradError, match="Jacobian mismatch"):
        fw.autograd.gradcheck(_WrongSquare.apply, (x,))
    assert fw.autograd.gradcheck(_WrongSquare.apply, (x,), raise_exception=False) is False
    assert fw.autograd.gradcheck(lambda t: t * t, (x,))


def test_cast_vjp_returns_input_dtype():
    x = _x(1.0, 2.0)
    y = x.float() * 3
    y.sum().backward()
    assert x.grad.dtype is fw.float64
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_amax_gradient_is_shared_between_ties():
    x = _x(1.0, 3.0, 3.0)
    x.amax().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5, 0.5])


def test_in_place_on_non_leaf_keeps_correct_gradients():
    x = _x(0.5, 1.0)
    y = x * 2
    y.sin_()
    y[0] = y[0] * 3
    y.sum().backward()
    want = 2 * np.cos(2 * np.array([0.5, 1.0])) * np.array([3.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), want)


def test_in_place_on_leaf_under_no_grad_is_allowed():
    w = _x(1.0, 2.0)
    with fw.no_grad():
        w.sub_(0.5)
        w *= 2
    assert w.requires_grad and w.is_leaf
    np.testing.assert_allclose(w.detach().numpy(), [1.0, 3.0])


def test_gradient_flows_into_buffer_filled_in_place():
    w = _x(1.0, 2.0)
    buf = fw.zeros(2, dtype=fw.float64)
    buf.add_(w * 3)
    buf.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3.0, 3.0])


def test_next_functions_and_leaf_edges():
    x = _x(1.0)
    y = (x * 2).exp()
    fns = y.grad_fn.next_functions
    assert fns[0][0].name() == "MulBackward0"
    assert fns[0][0].next_functions[0][0].variable is x

    # as PyTorch: a leaf shows as its AccumulateGrad node (one per leaf), an input that
    # does not require grad as (None, 0); ops are named XxxBackward0
    w, c = _x(1.0), fw.ones(2)
    edges = (w * c).grad_fn.next_functions
    acc = edges[0][0]
    assert isinstance(acc, fw.autograd.AccumulateGrad) and acc.variable is w
    assert edges[1] == (None, 0) and (w + c).grad_fn.next_functions[0][0] is acc
    assert acc.name() == "torch::autograd::AccumulateGrad" and acc.next_functions == ()
    assert repr((w * c).grad_fn) == "<MulBackward0 object>"


class _Identity(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g * 2


def test_custom_function_returning_its_input_keeps_the_leaf():
    x = _x(1.0, 2.0)
    y = _Identity.apply(x)
    assert x.is_leaf and x.grad_fn is None and y is not x and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_backward_releases_saved_buffers():
    import gc
    import weakref
    x = fw.randn(100, dtype=fw.float64, requires_grad=True)
    y = x.exp()  # exp saves its output
    ref = weakref.ref(y._data)
    loss = y.sum()
    del y
    gc.collect()
    assert ref() is not None  # kept alive by the graph until backward
    loss.backward()
    gc.collect()
    assert ref() is None and loss.grad_fn is not None


def test_norm_gradient_at_zero_is_zero():
    for p in (2, 3.0, "fro"):
        x = fw.zeros(3, requires_grad=True)
        n = fw.norm(x, p)
        n.backward()
        assert n.item() == 0.0 and x.grad.tolist() == [0.0, 0.0, 0.0]
    x = fw.zeros(2, 3, requires_grad=True)
    fw.nn.functional.normalize(x, dim=1).sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    y = fw.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=fw.float64, requires_grad=True)
    fw.norm(y, dim=1).sum().backward()
    assert np.allclose(y.grad.numpy(), [[0.6, 0.8], [0.0, 0.0]])
    assert fw.autograd.gradcheck(lambda a: fw.norm(a, dim=1), (fw.randn(2, 3, dtype=fw.float64,
                                                                         requires_grad=True),))


def test_gradcheck_of_a_function_that_calls_autograd_grad():
    """A gradient penalty: fn differentiates inside, so gradcheck's perturbed inputs must
    still require grad with grad mode on (as in PyTorch)."""
    lin = fw.nn.Linear(3, 4).double()

    def penalty(x):
        out = fw.nn.functional.gelu(lin(x)).sum()
        g, = fw.autograd.grad(out, x, create_graph=True)
        return (g * g).sum()
    assert fw.autograd.gradcheck(penalty, (fw.randn(2, 3, dtype=fw.float64,
                                                    requires_grad=True),))


class _Double(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale=2.0):  # a defaulted argument: backward returns a trailing None
        ctx.scale = scale
        x.mul_(scale)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, g):
        return g * ctx.scale, None


class _OnceExp(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.exp()

    @staticmethod
    @fw.autograd.function.once_differentiable
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * x.exp()


def test_custom_function_mark_dirty_extra_none_and_once_differentiable():
    a = fw.ones(2, requires_grad=True)
    y = a * 1
    out = _Double.apply(y)
    assert out is y and y.tolist() == [2.0, 2.0]
    (out * out).sum().backward()
    assert a.grad.tolist() == [8.0, 8.0]
    with pytest.raises(AutogradError, match="leaf Variable"):
        _Double.apply(fw.ones(2, requires_grad=True))
    x = fw.zeros(1, requires_grad=True)
    g, = fw.autograd.grad(_OnceExp.apply(x).sum(), x)
    assert g.tolist() == [1.0] and not g.requires_grad
    g, = fw.autograd.grad(_OnceExp.apply(x).sum(), x, create_graph=True)
    with pytest.raises(AutogradError, match="once_differentiable"):
        g.sum().backward()


def test_grad_mode_bare_decorators_and_generator_functions():
    x = fw.ones(1, requires_grad=True)

    @fw.no_grad
    def double(v):
        return v * 2

    @fw.inference_mode
    def triple(v):
        return v * 3

    @fw.no_grad()
    def stream(n):
        for i in range(n):
            yield (x * i).requires_grad, fw.is_grad_enabled()

    assert not double(x).requires_grad and not triple(x).requires_grad
    it = stream(2)
    assert next(it) == (False, False) and fw.is_grad_enabled()  # restored between steps
    assert next(it) == (False, False) and fw.is_grad_enabled()
    assert (x * 2).requires_grad


def test_gradcheck_accepts_fast_mode_and_still_checks():
    x = _x(0.5, 1.5, -1.0)
    for fast in (False, True):
        assert fw.autograd.gradcheck(lambda t: t * t, (x,), fast_mode=fast)
        assert fw.autograd.gradgradcheck(lambda t: t * t * t, (x,), fast_mode=fast)
        with pytest.raises(AutogradError, match="Jacobian mismatch"):
            fw.autograd.gradcheck(_WrongSquare.apply, (x,), fast_mode=fast)


def test_gradcheck_fast_mode_costs_two_calls_per_projection():
    """PyTorch's fast mode checks v^T J u along random directions: its cost does not grow
    with the number of input elements (the full check is two calls per element)."""
    calls = []

    def f(a, b):
        calls.append(1)
        return (a * b.sin()).sum(0), a.exp()

    a = fw.tensor(np.linspace(-1, 1, 30).reshape(6, 5), dtype=fw.float64, requires_grad=True)
    b = fw.tensor(np.linspace(0, 2, 30).reshape(6, 5), dtype=fw.float64, requires_grad=True)
    assert fw.autograd.gradcheck(f, (a, b), fast_mode=True, num_projections=3,
                                 check_undefined_grad=False)
    assert len(calls) == 3 * 3  # per projection: the outputs, then f(x + eps u), f(x - eps u)
    calls.clear()
    assert fw.autograd.gradcheck(f, (a, b), check_undefined_grad=False)
    assert len(calls) > 2 * 60
