"""pytorch/tutorials ``intermediate_source/torch_compile_tutorial.py`` on fw.

Changes beyond ``torch`` -> ``fw``: densenet121 (torchvision) becomes a small CNN on 3x32x32
inputs; ``timed`` uses ``time.perf_counter`` instead of CUDA events (CPU run); scipy's
``dct`` becomes a NumPy function; ``torch.jit.trace`` of ``f1``/``f3`` raises GraphBreak in
fw instead of silently baking in one path; FX tracing and a custom ``backend=`` callable
raise NotImplementedError (fw has no torch.fx); ``explain`` reports 0 graphs (fw's capture
is all or nothing) where PyTorch reports 2.
"""

import time
import warnings

import numpy as np
import pytest

import framework as torch
import framework._dynamo
from framework.errors import GraphBreak


def foo(x, y):
    a = torch.sin(x)
    b = torch.cos(y)
    return a + b


class MyModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(100, 10)

    def forward(self, x):
        return torch.nn.functional.relu(self.lin(x))


class SmallNet(torch.nn.Module):  # stands in for torchvision's densenet121
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1))
        self.classifier = torch.nn.Linear(8, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def generate_data(b):
    return (torch.randn(b, 3, 16, 16).to(torch.float32),
            torch.randint(10, (b,)))


def init_model():
    return SmallNet().to(torch.float32)


def test_basic_usage_function_decorator_and_module():
    x, y = torch.randn(10, 10), torch.randn(10, 10)
    opt_foo1 = torch.compile(foo)
    np.testing.assert_allclose(opt_foo1(x, y).numpy(), np.sin(x.numpy()) + np.cos(y.numpy()),
                               rtol=1e-6, atol=1e-6)

    @torch.compile
    def opt_foo2(x, y):
        a = torch.sin(x)
        b = torch.cos(y)
        return a + b
    np.testing.assert_allclose(opt_foo2(x, y).numpy(), foo(x, y).numpy(), rtol=1e-6)
    mod = MyModule()
    opt_mod = torch.compile(mod)
    inp = torch.randn(10, 100)
    ref = np.maximum(inp.numpy() @ mod.lin.weight.detach().numpy().T +
                     mod.lin.bias.detach().numpy(), 0)
    np.testing.assert_allclose(opt_mod(inp).detach().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_inference_reduce_overhead_matches_eager_without_recompiles():
    torch.manual_seed(0)
    model = init_model().eval()
    torch._dynamo.reset()
    model_opt = torch.compile(model, mode="reduce-overhead")
    with torch.no_grad():
        for _ in range(4):
            inp = generate_data(4)[0]
            eager, _ = timed(lambda: model(inp))
            comp, t = timed(lambda: model_opt(inp))
            assert t >= 0
            np.testing.assert_allclose(comp.numpy(), eager.numpy(), rtol=1e-4, atol=1e-5)
    assert model_opt.stats()["captures"] == 1


def _train_losses(compiled, steps=4):
    torch.manual_seed(0)
    model = init_model()
    opt = torch.optim.Adam(model.parameters())

    def train(mod, data):
        opt.zero_grad(True)
        pred = mod(data[0])
        loss = torch.nn.CrossEntropyLoss()(pred, data[1])
        loss.backward()
        opt.step()
        return loss

    step = torch.compile(train, mode="reduce-overhead") if compiled else train
    torch.manual_seed(1)
    data = [generate_data(8) for _ in range(steps)]
    losses = [timed(lambda: step(model, d))[0].item() for d in data]
    return losses, model, step


def test_training_compiled_matches_eager_and_learns():
    eager, m_e, _ = _train_losses(False)
    comp, m_c, step = _train_losses(True)
    np.testing.assert_allclose(comp, eager, rtol=1e-4, atol=1e-5)
    for (n, p), q in zip(m_e.named_parameters(), m_c.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=n)
    assert step.stats()["captures"] <= 2  # Adam's state is created on the first call
    torch.manual_seed(2)
    model = init_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = generate_data(8)
    losses = []
    for _ in range(40):
        opt.zero_grad(True)
        loss = torch.nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def f1(x, y):
    if x.sum() < 0:
        return -y
    return y


def fns_match(fn1, fn2, args):  # the tutorial's test_fns (renamed: not a pytest test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out1 = fn1(*args)
        out2 = fn2(*args)
    return torch.allclose(out1, out2)


def test_data_dependent_control_flow_compile_is_right_where_tracers_fail():
    inp1, inp2 = torch.randn(5, 5), torch.randn(5, 5)
    with pytest.raises(GraphBreak, match="bool"):  # PyTorch: silently one path
        torch.jit.trace(f1, (inp1, inp2))
    with pytest.raises(NotImplementedError, match="torch.fx"):
        torch.fx.symbolic_trace(f1)
    torch._dynamo.reset()
    compile_f1 = torch.compile(f1)
    assert fns_match(f1, compile_f1, (inp1, inp2))
    assert fns_match(f1, compile_f1, (-inp1, inp2))

    def f2(x, y):
        return x + y
    compile_f2 = torch.compile(f2)
    assert fns_match(f2, compile_f2, (inp1, 3))

    def f3(x):
        x = x * 2
        x = np.cumsum(x.numpy(), axis=-1)  # the tutorial: scipy.fft.dct
        x = torch.from_numpy(x)
        x = x * 2
        return x
    compile_f3 = torch.compile(f3)
    assert fns_match(f3, compile_f3, (inp2,))
    np.testing.assert_allclose(compile_f3(inp1).numpy(),
                               np.cumsum(inp1.numpy() * 2, -1) * 2, rtol=1e-6)


def bar(a, b):
    x = a / (torch.abs(a) + 1)
    if b.sum() < 0:
        b = b * -1
    return x * b


def test_graph_breaks_explain_fullgraph_and_custom_backend():
    def custom_backend(gm, example_inputs):
        gm.graph.print_tabular()
        return gm.forward
    torch._dynamo.reset()
    with pytest.raises(NotImplementedError, match="torch.fx"):
        torch.compile(init_model(), backend=custom_backend)
    explain_output = torch._dynamo.explain(bar)(torch.randn(10), torch.randn(10))
    assert explain_output.graph_break_count == 1
    assert "bool(tensor)" in str(explain_output)
    a, b = torch.randn(10), torch.randn(10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for bb in (b, -b):
            np.testing.assert_allclose(torch.compile(bar)(a, bb).numpy(), bar(a, bb).numpy())
    opt_bar = torch.compile(bar, fullgraph=True)
    with pytest.raises(GraphBreak, match="bool"):
        opt_bar(torch.randn(10), torch.randn(10))
    opt_model = torch.compile(init_model(), fullgraph=True)
    assert opt_model(generate_data(4)[0]).shape == (4, 10)


def test_cuda_event_without_a_device_is_a_clean_error():
    if torch.cuda.device_count() > 0:  # a GPU, or the simulated one (tests/gpu in this session)
        pytest.skip("a CUDA device is present: events work")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Exception ignored in __del__"
        with pytest.raises(Exception, match="not available"):
            torch.cuda.Event(enable_timing=True)
        import gc
        gc.collect()
