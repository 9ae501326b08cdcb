"""In-place activations inside a compiled training step (torchvision's classifiers):
``Hardswish(inplace=True)`` / ``SiLU(inplace=True)`` keep a copy of their input for backward,
and ``Dropout(inplace=True)`` / ``relu_`` write into ``flatten(pool(x), 1)``, a view (reshape
of a permute) of a tensor that takes part in autograd. Both used to make the capture fall
back to eager; now the compiled step must match eager with no fallback."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn


def _run(make, x, compiled):
    fw.manual_seed(0)
    m = make()
    opt = fw.optim.SGD(m.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = m(x).square().mean()
        loss.backward()
        opt.step()
        return loss

    fn = fw.compile(step) if compiled else step
    fw.manual_seed(5)  # the dropout masks: the same draws in both runs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to eager warns: make it fail the test
        losses = [fn(x).item() for _ in range(3)]
    return losses, [p.detach().numpy().copy() for p in m.parameters()], fn


HEADS = {
    "hardswish_": (lambda: nn.Sequential(nn.Linear(8, 6), nn.Hardswish(inplace=True),
                                         nn.Linear(6, 3)), (4, 8)),
    "silu_": (lambda: nn.Sequential(nn.Linear(8, 6), nn.SiLU(inplace=True), nn.Linear(6, 3)),
              (4, 8)),
    "pool_flatten_dropout_": (lambda: nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
        nn.Dropout(0.3, inplace=True), nn.Linear(8, 3)), (4, 3, 5, 5)),
    "pool_flatten_relu_": (lambda: nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.ReLU(inplace=True),
        nn.Linear(8, 3)), (4, 3, 5, 5)),
}


@pytest.mark.parametrize("name", list(HEADS))
def test_compiled_step_with_inplace_activation_matches_eager(name):
    make, shape = HEADS[name]
    x = fw.randn(*shape)
    want, want_p, _ = _run(make, x, compiled=False)
    got, got_p, fn = _run(make, x, compiled=True)
    assert fn.stats()["eager_reason"] is None
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for a, b in zip(got_p, want_p):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_inplace_write_through_permute_then_reshape_view_gradients():
    # y = (x @ w).T is a permute view, v = y.reshape(-1) a view of it; v.mul_(c) in place:
    # d/dw sum(v * c * g) = x.T @ (c * g reshaped back through the inverse steps)
    rng = np.random.default_rng(0)
    xn, wn = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    cn, gn = rng.normal(size=6), rng.normal(size=6)

    def f(x, w, c, g):
        y = (x @ w).permute(1, 0)
        v = y.reshape(-1)
        v.mul_(c)
        return (v * g).sum()

    args = [fw.tensor(a) for a in (xn, wn, cn, gn)]
    want = (cn * gn).reshape(2, 3).T  # dL/d(x @ w)
    for fn in (f, fw.compile(f)):
        x, w = (a.clone().requires_grad_() for a in args[:2])
        fn(x, w, *args[2:]).backward()
        np.testing.assert_allclose(w.grad.numpy(), xn.T @ want, rtol=1e-10)
        np.testing.assert_allclose(x.grad.numpy(), want @ wn.T, rtol=1e-10)


def test_inplace_write_through_slices_of_a_non_leaf_gradients():
    # Swin V2's qkv bias: b = bias.clone(); b[n:2n].zero_(), then a strided slice of a
    # reshape of it scaled in place: grad w = x * [3, 1, 0, 0, 1, 3]
    def f(w, x):
        b = w.clone()
        b[2:4].zero_()
        b.view(2, 3)[:, ::2].mul_(3.0)
        return (b * x).sum()

    xn = np.arange(1.0, 7.0)
    for fn in (f, fw.compile(f)):
        w = fw.randn(6, dtype=fw.float64, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loss = fn(w, fw.tensor(xn))
        wn = w.detach().numpy()
        np.testing.assert_allclose(loss.item(), (wn * xn * [3, 1, 0, 0, 1, 3]).sum())
        loss.backward()
        np.testing.assert_allclose(w.grad.numpy(), xn * [3, 1, 0, 0, 1, 3])
