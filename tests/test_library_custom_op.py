"""fw.library: custom ops (eager, fake, compiled, autograd, errors, opcheck)."""

import numpy as np
import pytest

import framework as fw
from framework import Tensor
from framework.errors import AutogradError


@pytest.fixture
def ops():
    """Custom ops made in a test, destroyed afterwards (the registry stays as it was)."""
    made = []
    yield made
    for op in made:
        op._destroy()


def _make_sin(ops, name="t_lib::mysin", fake=True, autograd=True):
    @fw.library.custom_op(name, mutates_args=())
    def mysin(x: Tensor) -> Tensor:
        return fw.from_numpy(np.sin(x.numpy()))
    ops.append(mysin)
    if fake:
        mysin.register_fake(lambda x: fw.empty_like(x))
    if autograd:
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * x.cos()
        mysin.register_autograd(backward, setup_context=setup_context)
    return mysin


def test_eager_matches_numpy_and_namespace(ops):
    mysin = _make_sin(ops)
    x = fw.randn(3, 4)
    np.testing.assert_allclose(mysin(x).numpy(), np.sin(x.numpy()), rtol=1e-6)
    assert fw.ops.t_lib.mysin is mysin
    np.testing.assert_allclose(fw.ops.t_lib.mysin(x).numpy(), np.sin(x.numpy()), rtol=1e-6)


def test_two_outputs_and_scalar_arg(ops):
    @fw.library.custom_op("t_lib::split_scale", mutates_args=())
    def split_scale(x: Tensor, k: float) -> tuple[Tensor, Tensor]:
        a = x.numpy()
        return fw.from_numpy(a * k), fw.from_numpy(a.sum(0))
    ops.append(split_scale)

    @fw.library.register_fake("t_lib::split_scale")
    def _(x, k):
        return fw.empty_like(x), x.new_empty(x.shape[1:])
    x = fw.randn(3, 4)
    a, b = split_scale(x, 2.5)
    np.testing.assert_allclose(a.numpy(), x.numpy() * 2.5, rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), x.numpy().sum(0), rtol=1e-5)
    f = fw.compile(lambda x: split_scale(x, 2.5)[1] + 1)
    np.testing.assert_allclose(f(x).numpy(), x.numpy().sum(0) + 1, rtol=1e-5)


def test_compiled_one_capture_op_in_code(ops):
    mysin = _make_sin(ops)
    f = fw.compile(lambda x: mysin(x * 2) + 1)
    x = fw.randn(4, 5)
    for _ in range(2):
        np.testing.assert_allclose(f(x).numpy(), np.sin(2 * x.numpy()) + 1, rtol=1e-5)
    st = f.stats()
    assert st["captures"] == 1 and st["eager_reason"] is None
    assert "_impl_t_lib__mysin(" in f.kernels(x)


def test_gradients_eager_and_compiled(ops):
    mysin = _make_sin(ops)
    x = fw.randn(3, 4, dtype=fw.float64).requires_grad_(True)
    assert fw.autograd.gradcheck(mysin, (x,))
    mysin(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(x.detach().numpy()), rtol=1e-10)
    # a compiled training step: forward, backward and SGD update in one graph
    w = fw.randn(3, 4).requires_grad_(True)
    opt = fw.optim.SGD([w], lr=0.1)
    xs = fw.randn(3, 4)

    @fw.compile
    def step(x):
        loss = mysin(x * w).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    for _ in range(2):
        w0 = w.detach().numpy().copy()
        step(xs)
        xn = xs.numpy()
        np.testing.assert_allclose(w.detach().numpy(), w0 - 0.1 * np.cos(xn * w0) * xn,
                                   rtol=1e-5, atol=1e-6)
    assert step.stats()["captures"] == 1 and step.stats()["eager_reason"] is None
    # a compiled forward differentiated outside
    x2 = fw.randn(5, dtype=fw.float64).requires_grad_(True)
    g = fw.compile(lambda x: mysin(x) * 3)
    g(x2).sum().backward()
    np.testing.assert_allclose(x2.grad.numpy(), 3 * np.cos(x2.detach().numpy()), rtol=1e-10)


def test_missing_fake_raises_under_compile(ops):
    mysin = _make_sin(ops, fake=False)
    x = fw.randn(3)
    np.testing.assert_allclose(mysin(x).numpy(), np.sin(x.numpy()), rtol=1e-6)  # eager: fine
    f = fw.compile(lambda x: mysin(x) + 1)
    with pytest.raises(RuntimeError, match=r"no fake impl registered.*t_lib::mysin.*"
                                           r"register_fake"):
        f(x)


def test_missing_autograd_raises_naming_the_op(ops):
    mysin = _make_sin(ops, autograd=False)
    x = fw.randn(3).requires_grad_(True)
    y = mysin(x).sum()
    with pytest.raises(AutogradError, match=r"t_lib::mysin.*register_autograd"):
        y.backward()


@pytest.mark.parametrize("bad", ["mysin", "a::b::c", "::x", "lib:x", "1lib::x", 3])
def test_bad_name(bad):
    with pytest.raises(ValueError, match="namespace::name"):
        fw.library.custom_op(bad, mutates_args=())(lambda x: x)


def test_registering_twice_raises(ops):
    _make_sin(ops)
    with pytest.raises(RuntimeError, match="already registered"):
        _make_sin(ops)


def test_mutating_op_eager_only(ops):
    @fw.library.custom_op("t_lib::add_one_", mutates_args=("x",))
    def add_one_(x: Tensor) -> None:
        x.numpy()[...] += 1
    ops.append(add_one_)
    x = fw.zeros(3)
    v = x._version
    assert add_one_(x) is None
    np.testing.assert_array_equal(x.numpy(), np.ones(3, np.float32))
    assert x._version == v + 1
    with pytest.raises(NotImplementedError, match="mutate"):
        fw.compile(add_one_, fullgraph=True)(x)


def test_onnx_export_refuses_naming_the_op(ops, tmp_path):
    mysin = _make_sin(ops)

    class M(fw.nn.Module):
        def forward(self, x):
            return mysin(x) + 1
    with pytest.raises(NotImplementedError, match="t_lib::mysin"):
        fw.onnx.export(M(), fw.randn(2, 3), str(tmp_path / "m.onnx"))


def test_opcheck(ops):
    mysin = _make_sin(ops)
    x = fw.randn(4, dtype=fw.float64).requires_grad_(True)
    res = fw.library.opcheck(mysin, (x,))
    assert set(res.values()) == {"SUCCESS"}
    # a wrong fake is caught
    mysin.register_fake(lambda x: x.new_empty((1,)))
    with pytest.raises(AssertionError, match="test_faketensor"):
        fw.library.opcheck(mysin, (x,))
