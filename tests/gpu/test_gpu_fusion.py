"""Compiled graphs on device "cuda": generated kernels match eager, and fusion produces the
expected (small) number of kernels for the classic patterns."""

import os

import numpy as np
import pytest

import framework as fw
from framework import nn, optim


@pytest.fixture(autouse=True)
def _strict(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")  # a failing codegen raises, never hides


def _plan(cf, *args):
    return cf._entry_for(args, {}).plan


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy(), rtol=tol,
                               atol=tol)


def test_softmax_is_one_kernel():
    x = fw.randn(6, 33, device="cuda")
    cf = fw.compile(lambda t: fw.softmax(t, -1))
    _close(cf(x), fw.softmax(x, -1))
    plan = _plan(cf, x)
    assert plan.kernel_count == 1, [s.describe() for s in plan.steps]


def test_softmax_over_dim0_is_one_kernel():
    x = fw.randn(33, 6, device="cuda")
    cf = fw.compile(lambda t: fw.log_softmax(t, 0))
    _close(cf(x), fw.log_softmax(x, 0))
    assert _plan(cf, x).kernel_count == 1


def test_layer_norm_is_one_kernel():
    x = fw.randn(4, 5, 24, device="cuda")
    w, b = fw.randn(24, device="cuda"), fw.randn(24, device="cuda")
    f = lambda t: nn.functional.layer_norm(t, (24,), w, b)  # noqa: E731
    cf = fw.compile(f)
    _close(cf(x), f(x), 1e-4)
    plan = _plan(cf, x)
    assert plan.kernel_count == 1, [s.describe() for s in plan.steps]


def test_cross_entropy_is_two_kernels():
    """Row kernel (logsumexp + pick the target) and the mean over rows."""
    x = fw.randn(7, 19, device="cuda")
    y = fw.randint(0, 19, (7,), device="cuda")
    f = nn.functional.cross_entropy
    cf = fw.compile(f)
    _close(cf(x, y), f(x, y))
    plan = _plan(cf, x, y)
    assert plan.kernel_count == 2, [s.describe() for s in plan.steps]


def test_linear_bias_rides_in_the_matmul_kernel():
    x, w, b = fw.randn(8, 16, device="cuda"), fw.randn(12, 16, device="cuda"), \
        fw.randn(12, device="cuda")
    cf = fw.compile(nn.functional.linear)
    _close(cf(x, w, b), nn.functional.linear(x, w, b), 1e-4)
    plan = _plan(cf, x, w, b)
    assert plan.kernel_count == 1, [s.describe() for s in plan.steps]


def test_gelu_linear_forward_is_matmul_plus_one_epilogue():
    x, w, b = fw.randn(8, 16, device="cuda"), fw.randn(16, 12, device="cuda"), \
        fw.randn(12, device="cuda")
    f = lambda x, w, b: nn.functional.gelu(x @ w + b, approximate="tanh")  # noqa: E731
    cf = fw.compile(f)
    _close(cf(x, w, b), f(x, w, b), 1e-4)
    plan = _plan(cf, x, w, b)
    assert plan.kernel_count == 2, [s.describe() for s in plan.steps]


def test_gelu_linear_forward_backward_kernel_count():
    x = fw.randn(8, 16, device="cuda")
    w = fw.randn(16, 12, device="cuda").requires_grad_()
    b = fw.randn(12, device="cuda").requires_grad_()

    def step(x, w, b):
        loss = nn.functional.gelu(x @ w + b).sum()
        loss.backward()
        return loss

    cf = fw.compile(step)
    loss = cf(x, w, b)
    gw, gb = w.grad.detach().clone(), b.grad.detach().clone()
    w.grad = b.grad = None
    ref = step(x, w, b)
    _close(loss, ref, 1e-4)
    _close(gw, w.grad, 1e-4)
    _close(gb, b.grad, 1e-4)
    plan = _plan(cf, x, w, b)
    # forward matmul + epilogue, sum, d(gelu) pointwise, dW matmul, db reduction
    assert plan.kernel_count <= 7, [s.describe() for s in plan.steps]


def test_code_shows_triton_source():
    x = fw.randn(4, 8, device="cuda")
    cf = fw.compile(lambda t: (t * 2).exp() + 1)
    cf(x)
    src = cf.code(x)
    assert "@triton.jit" in src and "tl.exp(" in src


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_compiled_mlp_training_matches_eager(opt_name):
    def run(compiled):
        fw.manual_seed(0)
        model = nn.Sequential(nn.Linear(12, 16), nn.GELU(), nn.Linear(16, 5)).to("cuda")
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt_name == "sgd" else \
            optim.AdamW(model.parameters(), lr=0.01)

        def step(x, y):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        fn = fw.compile(step) if compiled else step
        gen = np.random.default_rng(1)
        losses = []
        for _ in range(3):
            x = fw.tensor(gen.standard_normal((4, 12)).astype(np.float32), device="cuda")
            y = fw.tensor(gen.integers(0, 5, 4), device="cuda")
            losses.append(float(fn(x, y)))
        return losses, [p.detach().cpu().numpy() for p in model.parameters()]
    le, pe = run(False)
    lc, pc = run(True)
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-5)
    for a, b in zip(pc, pe):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_strict_env_is_set():
    assert os.environ["FW_COMPILE_STRICT"] == "1"


def test_dynamic_shapes_reuse_one_kernel_set():
    f = lambda t: fw.softmax(t * 2, -1).sum(0)  # noqa: E731
    cf = fw.compile(f, dynamic=True)
    for n in (3, 5, 9):
        x = fw.randn(n, 7, device="cuda")
        _close(cf(x), f(x))
    plan = _plan(cf, x)
    # the row kernel, then the column sum (a reduction over other rows: its own kernel)
    assert plan.kernel_count == 2, [s.describe() for s in plan.steps]
    assert "ks_" in cf.code(x)  # sizes are kernel arguments


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn", "lstm", "transformer"])
def test_compiled_training_matches_eager_for_the_compiler_suite_models(name):
    from tests.compiler import test_train_steps as suite

    def run(compiled):
        fw.manual_seed(0)
        model = suite._MODELS[name]().to("cuda")
        opt = optim.AdamW(model.parameters(), lr=0.01)

        def step(x, y):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        fn = fw.compile(step) if compiled else step
        fw.manual_seed(1)
        batches = [suite._BATCHES[name]() for _ in range(3)]
        losses = [float(fn(x.to("cuda"), y.to("cuda"))) for x, y in batches]
        return losses, [p.detach().cpu().numpy() for p in model.parameters()]
    le, pe = run(False)
    lc, pc = run(True)
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-5)
    for a, b in zip(pc, pe):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
