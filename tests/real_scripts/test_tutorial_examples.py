"""pytorch/tutorials ``beginner_source/examples_autograd/polynomial_custom_function.py``
and ``examples_nn/{dynamic_net,polynomial_module,polynomial_optim}.py`` on fw.

The scripts' loops run for 2000-30000 steps; here a few hundred (or a handful, compared
eager against compiled) with the scripts' own models, losses and update rules.
"""

import math
import random
import warnings

import numpy as np
import pytest

import framework as torch

from ._checks import assert_onnx_export_matches, assert_stats


# -- polynomial_custom_function.py ----------------------------------------------------
class LegendrePolynomial3(torch.autograd.Function):
    """
    We can implement our own custom autograd Functions by subclassing
    torch.autograd.Function and implementing the forward and backward passes
    which operate on Tensors.
    """

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


def _legendre_setup(dtype=torch.float):
    device = torch.device("cpu")
    x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
    y = torch.sin(x)
    a = torch.full((), 0.0, device=device, dtype=dtype, requires_grad=True)
    b = torch.full((), -1.0, device=device, dtype=dtype, requires_grad=True)
    c = torch.full((), 0.0, device=device, dtype=dtype, requires_grad=True)
    d = torch.full((), 0.3, device=device, dtype=dtype, requires_grad=True)
    return x, y, a, b, c, d


def _legendre_step(x, y, a, b, c, d, learning_rate=5e-6):
    # To apply our Function, we use Function.apply method. We alias this as 'P3'.
    P3 = LegendrePolynomial3.apply

    y_pred = a + b * P3(c + d * x)
    loss = (y_pred - y).pow(2).sum()

    loss.backward()

    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad

        # Manually zero the gradients after updating weights
        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None
    return loss


def test_legendre_function_values_gradients_and_training():
    u = torch.linspace(-1.2, 1.2, 7, dtype=torch.float64, requires_grad=True)
    p = LegendrePolynomial3.apply(u)
    un = u.detach().numpy()
    np.testing.assert_allclose(p.detach().numpy(), 0.5 * (5 * un ** 3 - 3 * un), rtol=1e-12)
    p.sum().backward()
    np.testing.assert_allclose(u.grad.numpy(), 1.5 * (5 * un ** 2 - 1), rtol=1e-12)
    v = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LegendrePolynomial3.apply, (v,))

    x, y, a, b, c, d = _legendre_setup()
    losses = [_legendre_step(x, y, a, b, c, d).item() for t in range(300)]
    assert losses[-1] < 0.7 * losses[0]
    assert all(t.grad is None for t in (a, b, c, d))
    assert f'Result: y = {a.item()} + {b.item()} * P3({c.item()} + {d.item()} x)'


def test_legendre_compiled_step_matches_eager():
    ref = _legendre_setup()
    le = [_legendre_step(*ref).item() for _ in range(5)]
    got = _legendre_setup()
    fn = torch.compile(lambda: _legendre_step(*got), mode="always")
    lc = [fn().item() for _ in range(5)]
    assert_stats(fn, eager_reason=None, captures=1, num_recompiles=0)
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-5)
    for r, g in zip(ref[2:], got[2:]):
        np.testing.assert_allclose(g.item(), r.item(), rtol=1e-4, atol=1e-6)


# -- polynomial_module.py -------------------------------------------------------------
class Polynomial3(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(()))
        self.b = torch.nn.Parameter(torch.randn(()))
        self.c = torch.nn.Parameter(torch.randn(()))
        self.d = torch.nn.Parameter(torch.randn(()))

    def forward(self, x):
        return self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3

    def string(self):
        return f'y = {self.a.item()} + {self.b.item()} x + {self.c.item()} x^2 + {self.d.item()} x^3'


def _poly_module_run(steps, compiled=False):
    torch.manual_seed(0)
    x = torch.linspace(-math.pi, math.pi, 2000)
    y = torch.sin(x)
    model = Polynomial3()
    criterion = torch.nn.MSELoss(reduction='sum')
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)

    def step(x, y):
        y_pred = model(x)
        loss = criterion(y_pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    fn = torch.compile(step, mode="always") if compiled else step
    losses = [fn(x, y).item() for t in range(steps)]
    return losses, model, fn


def test_polynomial_module_trains_and_matches_closed_form_gradient():
    losses, model, _ = _poly_module_run(300)
    assert losses[-1] < 0.2 * losses[0]
    assert model.string().startswith("y = ") and len(list(model.parameters())) == 4
    # the gradient of the summed squared error against its closed form
    x = torch.linspace(-math.pi, math.pi, 2000)
    model.zero_grad()
    torch.nn.MSELoss(reduction='sum')(model(x), torch.sin(x)).backward()
    xn = x.numpy().astype(np.float64)
    co = [model.a.item(), model.b.item(), model.c.item(), model.d.item()]
    r = co[0] + co[1] * xn + co[2] * xn ** 2 + co[3] * xn ** 3 - np.sin(xn)
    want = [2 * (r * xn ** k).sum() for k in range(4)]
    got = [model.a.grad.item(), model.b.grad.item(), model.c.grad.item(), model.d.grad.item()]
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-2)


def test_polynomial_module_compiled_matches_eager():
    le, me, _ = _poly_module_run(6)
    lc, mc, fn = _poly_module_run(6, compiled=True)
    assert_stats(fn, eager_reason=None, captures=1, num_recompiles=0)
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-5)
    for k, v in me.state_dict().items():
        np.testing.assert_allclose(mc.state_dict()[k].numpy(), v.numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=k)


# -- polynomial_optim.py ----------------------------------------------------------------
def _poly_optim_run(steps, optimizer_cls, learning_rate, compiled=False):
    torch.manual_seed(0)
    x = torch.linspace(-math.pi, math.pi, 2000)
    y = torch.sin(x)

    # Prepare the input tensor (x, x^2, x^3).
    p = torch.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)

    model = torch.nn.Sequential(
        torch.nn.Linear(3, 1),
        torch.nn.Flatten(0, 1)
    )
    loss_fn = torch.nn.MSELoss(reduction='sum')
    optimizer = optimizer_cls(model.parameters(), lr=learning_rate)

    def step(xx, y):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    fn = torch.compile(step, mode="always") if compiled else step
    losses = [fn(xx, y).item() for t in range(steps)]
    return losses, model, xx, fn


@pytest.mark.parametrize("opt, lr", [(torch.optim.SGD, 1e-6), (torch.optim.RMSprop, 1e-3)],
                         ids=["SGD", "RMSprop"])
def test_polynomial_optim_trains(opt, lr):
    losses, model, xx, _ = _poly_optim_run(200, opt, lr)
    # x.unsqueeze(-1).pow(p): int64 exponents broadcast over a float base stay float32
    assert xx.shape == (2000, 3) and xx.dtype == torch.float32
    np.testing.assert_allclose(xx[:, 2].numpy(), xx[:, 0].numpy() ** 3, rtol=1e-5)
    assert model(xx).shape == (2000,)
    assert losses[-1] < 0.5 * losses[0]
    linear_layer = model[0]
    text = (f'Result: y = {linear_layer.bias.item()} + {linear_layer.weight[:, 0].item()} x + '
            f'{linear_layer.weight[:, 1].item()} x^2 + {linear_layer.weight[:, 2].item()} x^3')
    assert text.count(" x") == 3


@pytest.mark.parametrize("opt, lr", [(torch.optim.SGD, 1e-6), (torch.optim.RMSprop, 1e-3)],
                         ids=["SGD", "RMSprop"])
def test_polynomial_optim_compiled_matches_eager(opt, lr):
    le, me, _, _ = _poly_optim_run(6, opt, lr)
    lc, mc, _, fn = _poly_optim_run(6, opt, lr, compiled=True)
    assert_stats(fn, eager_reason=None, captures=1, num_recompiles=0)
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-5)
    for k, v in me.state_dict().items():
        np.testing.assert_allclose(mc.state_dict()[k].numpy(), v.numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=k)


def test_polynomial_optim_onnx(tmp_path):
    _, model, xx, _ = _poly_optim_run(1, torch.optim.SGD, 1e-6)
    assert_onnx_export_matches(model.eval(), xx[:10], tmp_path / "poly.onnx", rtol=1e-5)


# -- dynamic_net.py ---------------------------------------------------------------------
class DynamicNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(()))
        self.b = torch.nn.Parameter(torch.randn(()))
        self.c = torch.nn.Parameter(torch.randn(()))
        self.d = torch.nn.Parameter(torch.randn(()))
        self.e = torch.nn.Parameter(torch.randn(()))

    def forward(self, x):
        y = self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3
        for exp in range(4, random.randint(4, 6)):
            y = y + self.e * x ** exp
        return y

    def string(self):
        return f'y = {self.a.item()} + {self.b.item()} x + {self.c.item()} x^2 + {self.d.item()} x^3 + {self.e.item()} x^4 ? + {self.e.item()} x^5 ?'


def _dynamic_run(steps, compiled=False):
    torch.manual_seed(0)
    random.seed(0)
    x = torch.linspace(-math.pi, math.pi, 2000)
    y = torch.sin(x)
    model = DynamicNet()
    criterion = torch.nn.MSELoss(reduction='sum')
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-8, momentum=0.9)

    def step(x, y):
        y_pred = model(x)
        loss = criterion(y_pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    fn = torch.compile(step, mode="always") if compiled else step
    losses = [fn(x, y).item() for t in range(steps)]
    return losses, model, fn


def test_dynamic_net_weight_sharing_gradient():
    torch.manual_seed(0)
    model = DynamicNet()
    x = torch.linspace(-1, 1, 9, dtype=torch.float32)
    seen = set()
    for s in range(40):   # e's gradient is the sum over however many times forward used it
        random.seed(s)
        n_orders = random.randint(4, 6)
        random.seed(s)
        model.zero_grad()
        model(x).sum().backward()
        if n_orders == 4:   # e unused: zero_grad's None stays (PyTorch's set_to_none)
            assert model.e.grad is None
        else:
            want = sum((x.numpy() ** k).sum() for k in range(4, n_orders))
            np.testing.assert_allclose(model.e.grad.item(), want, rtol=1e-5, atol=1e-6)
        seen.add(n_orders)
    assert seen == {4, 5, 6}


def test_dynamic_net_trains():
    losses, model, _ = _dynamic_run(400)
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    assert model.string().count("x^") == 4


def test_dynamic_net_compiled_falls_back_with_a_warning_and_stays_correct():
    """``random.randint`` in forward picks the depth per call: a compiled graph would bake
    one draw. fw.compile must notice, warn once and run eagerly, giving eager's numbers."""
    le, me, _ = _dynamic_run(6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lc, mc, fn = _dynamic_run(6, compiled=True)
    msgs = [str(w.message) for w in caught if "random" in str(w.message)]
    assert len(msgs) == 1 and "running eagerly" in msgs[0], [str(w.message) for w in caught]
    st = fn.stats()
    assert st["captures"] == 0 and st["eager_calls"] == 6 and "random" in st["eager_reason"]
    np.testing.assert_array_equal(lc, le)
    for k, v in me.state_dict().items():
        np.testing.assert_array_equal(mc.state_dict()[k].numpy(), v.numpy(), err_msg=k)


def test_dynamic_net_fullgraph_raises():
    model = DynamicNet()
    fn = torch.compile(model, fullgraph=True, mode="always")
    with pytest.raises(torch.GraphBreak, match="random"):
        fn(torch.linspace(-1, 1, 5))
