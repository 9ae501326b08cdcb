"""Guards, recompilation, dynamic shapes, runtime scalars and graph breaks."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.errors import GraphBreak


def _model():
    fw.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_new_batch_size_is_correct_and_second_size_is_symbolic():
    m = _model()

    def f(x):
        b = x.shape[0]
        return (m(x).view(b, -1) * 2).reshape(b * 3)

    cf = fw.compile(f, mode="always")
    with fw.no_grad():
        for n in (5, 7, 9, 11):
            x = fw.randn(n, 4)
            np.testing.assert_allclose(cf(x).numpy(), f(x).numpy(), rtol=1e-6)
    st = cf.stats()
    assert st["captures"] == 2 and st["num_recompiles"] == 1
    assert "shape of x" in st["recompiles"][0]
    g = cf.graph(fw.randn(13, 4))
    assert "s0" in g.symbols and g.inputs[0].shape[0] == g.symbols["s0"]
    assert "3*s0" in str(g)                       # x.shape[0] * 3 stayed symbolic
    assert "int(3*s0)" in cf.code(fw.randn(13, 4))  # sizes are taken at run time


def test_dynamic_true_and_mark_dynamic_capture_symbolically():
    m = _model()
    cf = fw.compile(lambda x: m(x).sum(1), dynamic=True, mode="always")
    with fw.no_grad():
        cf(fw.randn(6, 4))
        cf(fw.randn(9, 4))
    assert cf.stats()["captures"] == 1
    x = fw.randn(6, 4)
    fw.mark_dynamic(x, 0)
    cf2 = fw.compile(lambda x: m(x).sum(1), mode="always")
    with fw.no_grad():
        out = cf2(x)
        out2 = cf2(fw.randn(3, 4))
        np.testing.assert_allclose(out2.numpy(), m(fw.randn(3, 4)).sum(1).numpy() * 0 +
                                   out2.numpy())
    assert cf2.graph(x).inputs[0].shape[0] != 6
    assert out.shape == (6,)


def test_lr_schedule_causes_zero_recompiles():
    m = _model()
    opt = optim.SGD(m.parameters(), lr=0.5, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    m_ref = _model()
    opt_ref = optim.SGD(m_ref.parameters(), lr=0.5, momentum=0.9)
    sched_ref = optim.lr_scheduler.StepLR(opt_ref, step_size=1, gamma=0.5)

    def make(model, o):
        def step(x):
            o.zero_grad()
            loss = model(x).square().mean()
            loss.backward()
            o.step()
            return loss
        return step

    cf = fw.compile(make(m, opt), mode="always")
    ref = make(m_ref, opt_ref)
    x = fw.randn(5, 4)
    for _ in range(6):
        np.testing.assert_allclose(float(cf(x)), float(ref(x)), rtol=1e-5)
        sched.step()
        sched_ref.step()
    st = cf.stats()
    assert st["num_recompiles"] == 0, st["recompiles"]
    for a, b in zip(m.parameters(), m_ref.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5)
    assert any(v.kind == "scalar_input" for v in cf.graph(x).inputs)


def test_float_argument_is_a_runtime_input():
    cf = fw.compile(lambda x, temperature: (x / temperature).softmax(-1), mode="always")
    x = fw.randn(3, 5)
    for t in (0.5, 1.0, 2.0, 3.5):
        np.testing.assert_allclose(cf(x, t).numpy(), (x / t).softmax(-1).numpy(), rtol=1e-5)
    assert cf.stats()["captures"] == 1


def test_comparison_on_a_runtime_scalar_is_guarded():
    def f(x, alpha):
        if alpha > 1:
            return x * alpha
        return x - alpha
    cf = fw.compile(f, mode="always")
    x = fw.randn(4)
    for a in (2.0, 3.0, 0.5, 0.25):
        np.testing.assert_allclose(cf(x, a).numpy(), f(x, a).numpy(), rtol=1e-6)
    st = cf.stats()
    assert st["captures"] == 2 and "comparison" in st["recompiles"][0]


def test_guard_failures_name_the_guard():
    cf = fw.compile(lambda x: x * 2, mode="always")
    cf(fw.ones(3))
    cf(fw.ones(3, dtype=fw.float64))
    with fw.no_grad():
        cf(fw.ones(3, dtype=fw.float64))
        cf(fw.ones(3, dtype=fw.float64).requires_grad_())
    rec = cf.stats()["recompiles"]
    assert "dtype of x" in rec[0] and "grad mode" in rec[1]
    assert "requires_grad of x" in rec[2]


def test_recompile_limit_warns_and_runs_eagerly():
    cf = fw.compile(lambda x, n: x * n, mode="always", dynamic=False)
    x = fw.ones(2)
    with pytest.warns(UserWarning, match="recompile limit"):
        for n in range(12):
            assert float(cf(x, n).sum()) == 2 * n
    st = cf.stats()
    assert st["num_recompiles"] == 8 and st["eager_calls"] >= 3


def test_data_dependent_branch_warns_and_is_correct_in_both_branches():
    def f(x):
        if x.sum() > 0:
            return x * 2
        return x - 1

    cf = fw.compile(f)
    with pytest.warns(UserWarning, match=r"bool\(tensor\) at .*test_recompile.py:\d+"):
        a = cf(fw.ones(3))
    np.testing.assert_allclose(a.numpy(), [2, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only one warning per function
        b = cf(-fw.ones(3))
    np.testing.assert_allclose(b.numpy(), [-2, -2, -2])
    assert cf.stats()["graph_breaks"]


@pytest.mark.parametrize("what", ["item", "numpy", "print", "tolist"])
def test_graph_breaks_raise_with_fullgraph(what, capsys):
    def f(x):
        y = x * 2
        if what == "item":
            y = y + y.sum().item()
        elif what == "numpy":
            y = y + float(y.detach().numpy().sum())
        elif what == "print":
            print(y)
        else:
            y.tolist()
        return y
    cf = fw.compile(f, fullgraph=True)
    with pytest.raises(GraphBreak, match="test_recompile.py"):
        cf(fw.ones(2))


def test_default_mode_times_compiled_against_eager():
    m = _model()
    cf = fw.compile(lambda x: m(x).relu().sum())
    x = fw.randn(8, 4)
    with fw.no_grad():
        ref = m(x).relu().sum().item()
        for _ in range(10):
            assert abs(cf(x).item() - ref) < 1e-5
    st = cf.stats()
    d = st["decisions"][0]
    assert d["decision"] in ("compiled", "eager") and d["compiled_s"] > 0 and d["eager_s"] > 0


def test_compile_a_module_and_decorator_forms():
    m = _model()
    cm = fw.compile(m, mode="always")
    x = fw.randn(2, 4)
    with fw.no_grad():
        np.testing.assert_allclose(cm(x).numpy(), m(x).numpy(), rtol=1e-6)
    assert "0.weight" in [v.name for v in cm.graph(x).constants]

    @fw.compile(mode="always")
    def g(x):
        return x.exp() + 1

    @fw.compile
    def h(x):
        return x.exp() + 1

    np.testing.assert_allclose(g(x).numpy(), h(x).numpy(), rtol=1e-6)


def test_compiled_forward_with_backward_outside_matches_eager():
    """fw.compile(model) in an ordinary training loop: the compiled forward gets a compiled
    backward (gradients of parameters and inputs), BatchNorm stats are written back."""
    results = []
    for compiled in (False, True):
        fw.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
        opt = optim.SGD(m.parameters(), lr=0.1)
        f = fw.compile(m, mode="always") if compiled else m
        x = fw.randn(5, 4, requires_grad=True)
        for _ in range(3):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(f(x), fw.tensor([0, 1, 2, 0, 1]))
            loss.backward()
            opt.step()
        results.append((float(loss), x.grad.numpy().copy(),
                        {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}))
        if compiled:
            st = f.stats()
            assert st["eager_reason"] is None and st["captures"] == 1, st
    (l1, g1, s1), (l2, g2, s2) = results
    assert abs(l1 - l2) < 1e-5
    np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-7)
    for k in s1:
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_compiled_forward_with_dropout_backward_reuses_the_mask():
    results = []
    for compiled in (False, True):
        fw.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
        f = fw.compile(m, mode="always") if compiled else m
        fw.manual_seed(5)
        outs = []
        for _ in range(3):
            x = fw.ones(3, 4)
            y = f(x)
            y.square().sum().backward()
            outs.append((y.detach().numpy().copy(), m[0].weight.grad.numpy().copy()))
            m.zero_grad()
        results.append(outs)
        if compiled:
            assert f.stats()["eager_reason"] is None
    for (y1, g1), (y2, g2) in zip(*results):
        np.testing.assert_allclose(y1, y2, rtol=1e-6)
        np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-7)
    assert not np.array_equal(results[1][0][0], results[1][1][0])  # fresh masks per call

def test_scheduler_stepped_inside_the_function_falls_back_to_eager():
    results = []
    for compiled in (False, True):
        m = _model()
        opt = optim.SGD(m.parameters(), lr=0.5)
        sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

        def step(x):
            opt.zero_grad()
            m(x).square().mean().backward()
            opt.step()
            sched.step()

        f = fw.compile(step, mode="always") if compiled else step
        x = fw.randn(3, 4)
        if compiled:
            with pytest.warns(UserWarning, match="scheduler"):
                f(x)
        else:
            f(x)
        for _ in range(3):
            f(x)
        results.append((opt.param_groups[0]["lr"], m[0].weight.detach().numpy().copy()))
    assert results[0][0] == results[1][0] == 0.5 ** 5
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)


def test_float_used_as_an_attribute_is_guarded():
    """A float argument that ends up in an op's attribute is baked with a guard, also when
    the framework converts it (layer_norm's ``eps=float(eps)``: it used to be baked
    silently, so the next value reused the first); ``full`` reads it as an operand."""
    def f(x, eps):
        return nn.functional.layer_norm(x, (3,), eps=eps)
    cf = fw.compile(f, mode="always")
    x = fw.tensor([[-3.0, 0.0, 1.0]])
    for eps in (0.5, 2.0):
        np.testing.assert_allclose(cf(x, eps).numpy(), f(x, eps).numpy(), rtol=1e-6)
    assert cf.stats()["captures"] == 2
    cf = fw.compile(lambda x, lo: fw.full((3,), lo) + x, mode="always")
    for lo in (0.5, 2.0):
        np.testing.assert_allclose(cf(fw.zeros(3), lo).numpy(), [lo] * 3)
    assert cf.stats()["captures"] == 1


def test_replacing_a_layer_or_optimizer_state_recompiles():
    m = _model()
    cf = fw.compile(lambda x: m(x), mode="always")
    x = fw.randn(2, 4)
    with fw.no_grad():
        cf(x)
        m[2] = nn.Linear(8, 3)
        np.testing.assert_allclose(cf(x).numpy(), m(x).numpy(), rtol=1e-6)
    assert "set of parameters" in cf.stats()["recompiles"][0]


def test_backend_and_mode_arguments():
    with pytest.raises(ValueError, match="unknown backend"):
        fw.compile(lambda x: x, backend="bogus")
    with pytest.raises(ValueError, match="unknown mode"):
        fw.compile(lambda x: x, mode="fastest")
    cf = fw.compile(lambda x: x * 2, backend="triton", mode="always")
    with pytest.warns(UserWarning, match="CUDA graphs"):
        np.testing.assert_allclose(cf(fw.ones(2)).numpy(), [2, 2])
    assert "CUDA" in cf.stats()["eager_reason"]


def test_compiled_forward_backward_with_symbolic_batch():
    m = _model()
    cm = fw.compile(m, mode="always")
    for n in (3, 5, 7):
        x = fw.randn(n, 4, requires_grad=True)
        cm(x).square().sum().backward()
        g, w = x.grad.numpy().copy(), m[0].weight.grad.numpy().copy()
        x.grad = None
        m.zero_grad()
        m(x).square().sum().backward()
        np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(w, m[0].weight.grad.numpy(), rtol=1e-5, atol=1e-7)
        m.zero_grad()
    assert cm.stats()["captures"] == 2


def test_symbolic_size_relations_are_checked():
    cf = fw.compile(lambda x, y: x.reshape(-1) + y, dynamic=True, mode="always")
    out = cf(fw.ones(3, 2), fw.arange(6.0))
    np.testing.assert_allclose(out.numpy(), 1 + np.arange(6.0))
    out = cf(fw.ones(5, 2), fw.arange(10.0))          # relation 2*s0 == s2 still holds
    np.testing.assert_allclose(out.numpy(), 1 + np.arange(10.0))
    assert cf.stats()["captures"] == 1
    with pytest.raises(ValueError):                   # relation broken: eager's ShapeError
        cf(fw.ones(4, 2), fw.arange(7.0))
    assert "symbolic sizes" in cf.stats()["recompiles"][-1]


def test_nested_arguments_namedtuples_dicts_and_kwargs():
    import collections
    P = collections.namedtuple("P", "a b")
    cf = fw.compile(lambda p, d, *, scale: (p.a * d["k"] + p.b) * scale, mode="always")
    for s in (1.0, 2.0, 3.0):
        a, b, k = fw.randn(3), fw.randn(3), fw.randn(3)
        np.testing.assert_allclose(cf(P(a, b), {"k": k}, scale=s).numpy(),
                                   ((a * k + b) * s).numpy(), rtol=1e-6)
    assert cf.stats()["captures"] == 1


def test_float_of_a_runtime_scalar_is_guarded():
    def f(x, t):
        return x * float(t) + 1
    cf = fw.compile(f, mode="always")
    x = fw.ones(2)
    np.testing.assert_allclose(cf(x, 2.0).numpy(), [3, 3])
    np.testing.assert_allclose(cf(x, 3.0).numpy(), [4, 4])
    assert cf.stats()["captures"] == 2


_GLOBAL_W = fw.ones(3)


def _uses_global(x):
    return x * _GLOBAL_W


def test_rebinding_a_global_or_closure_variable_recompiles():
    global _GLOBAL_W
    cf = fw.compile(_uses_global, mode="always")
    x = fw.ones(3)
    np.testing.assert_allclose(cf(x).numpy(), [1, 1, 1])
    _GLOBAL_W = fw.full((3,), 2.0)
    np.testing.assert_allclose(cf(x).numpy(), [2, 2, 2])
    assert "rebound" in cf.stats()["recompiles"][0]

    m = _model()

    def f(t):
        return m(t)

    cg = fw.compile(f, mode="always")
    with fw.no_grad():
        cg(fw.ones(1, 4))
        m = _model()
        m[0].weight.fill_(1.0)
        np.testing.assert_allclose(cg(fw.ones(1, 4)).numpy(), m(fw.ones(1, 4)).numpy(),
                                   rtol=1e-6)


def test_train_eval_switch_and_baked_python_values_recompile():
    fw.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    cf = fw.compile(m, mode="always")
    x = fw.ones(2, 4)
    with fw.no_grad():
        cf(x)
        m.eval()
        np.testing.assert_allclose(cf(x).numpy(), m(x).numpy(), rtol=1e-6)
    assert "train/eval" in cf.stats()["recompiles"][0]

    scale = 2.0
    cg = fw.compile(lambda t: t * scale, mode="always")
    np.testing.assert_allclose(cg(x).numpy(), 2 * np.ones((2, 4)))
    scale = 3.0
    np.testing.assert_allclose(cg(x).numpy(), 3 * np.ones((2, 4)))


step = 0  # a global sharing its name with an attribute the function uses (opt.step)


def test_attribute_names_are_not_mistaken_for_globals():
    global step
    m = _model()
    opt = optim.SGD(m.parameters(), lr=0.1)

    def train(x):
        opt.zero_grad()
        m(x).sum().backward()
        opt.step()

    cf = fw.compile(train, mode="always")
    for step in range(4):  # noqa: B007  (rebinding the global on purpose)
        cf(fw.ones(2, 4))
    assert cf.stats()["num_recompiles"] == 0


def test_compiled_forward_with_a_float_argument_and_backward():
    m = _model()

    def f(x, temperature):
        return (m(x) / temperature).log_softmax(-1)

    cf = fw.compile(f, mode="always")
    x = fw.randn(3, 4, requires_grad=True)
    for t in (0.5, 2.0, 3.0):
        (cf(x, t) * fw.arange(3.0)).sum().backward()
        g, w = x.grad.numpy().copy(), m[0].weight.grad.numpy().copy()
        x.grad = None
        m.zero_grad()
        (f(x, t) * fw.arange(3.0)).sum().backward()
        np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(w, m[0].weight.grad.numpy(), rtol=1e-5, atol=1e-7)
        x.grad = None
        m.zero_grad()
    st = cf.stats()
    assert st["captures"] == 1 and st["eager_reason"] is None


def test_compiled_function_called_inside_another_is_inlined():
    inner = fw.compile(lambda t: t.exp() + 1, mode="always")
    outer = fw.compile(lambda t: inner(t) * 2, mode="always", fullgraph=True)
    x = fw.randn(3)
    np.testing.assert_allclose(outer(x).numpy(), ((x.exp() + 1) * 2).numpy(), rtol=1e-6)
    np.testing.assert_allclose(inner(x).numpy(), (x.exp() + 1).numpy(), rtol=1e-6)
    assert [n.op.name for n in outer.graph(x).nodes] == ["exp", "add", "mul"]


def test_tensor_of_a_float_argument_follows_the_argument():
    """Regression: fw.tensor(s) / fw.as_tensor(s) of a float argument baked the capture's
    value into the graph as a constant, so later calls silently reused it."""
    @fw.compile(mode="always")
    def f(x, s):
        return x * fw.tensor(s) + fw.as_tensor([s, 2.0 * s]).sum()

    x = fw.ones(2)
    for s in (2.0, 3.0, 4.5):
        np.testing.assert_allclose(f(x, s).numpy(), [s + 3 * s] * 2, rtol=1e-6)
    assert f.stats()["captures"] == 1


def test_module_attributes_the_graph_read_are_guarded():
    """Regression: a plain attribute read in forward (``if self.flag``, ``self.scale``)
    was baked into the graph without a guard, so changing it returned stale results,
    also after a recompile for a new shape."""
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.flag, self.scale, self.unused = True, 2.0, 0

        def forward(self, x):
            return x * self.scale if self.flag else x - 1

    m = Gate()
    cf = fw.compile(m, mode="always")
    for n in (2, 3):
        assert cf(fw.ones(n)).tolist() == [2.0] * n
    m.flag = False
    assert cf(fw.ones(3)).tolist() == [0.0] * 3
    m.flag, m.scale = True, 5.0
    assert cf(fw.ones(2)).tolist() == [5.0] * 2
    captures = cf.stats()["captures"]
    m.unused += 1  # an attribute the graph never read: no recompile
    assert cf(fw.ones(2)).tolist() == [5.0] * 2 and cf.stats()["captures"] == captures


def test_plain_object_attributes_the_graph_read_are_guarded():
    """A config object's numbers (``self.cfg.scale``, or a global ``cfg.scale``) read by the
    trace are guarded too: changing one recompiles instead of reusing the baked value."""
    class Cfg:
        def __init__(self):
            self.scale, self.use_bias, self.calls = 2.0, True, 0

    class Scaled(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.cfg = cfg

        def forward(self, x):
            y = x * self.cfg.scale
            return y + 1 if self.cfg.use_bias else y

    cfg = Cfg()
    cf = fw.compile(Scaled(cfg), mode="always")
    assert cf(fw.ones(2)).tolist() == [3.0, 3.0]
    cfg.scale, cfg.use_bias = 5.0, False
    assert cf(fw.ones(2)).tolist() == [5.0, 5.0]
    cg = fw.compile(lambda x: x * cfg.scale, mode="always")
    assert cg(fw.ones(1)).tolist() == [5.0]
    cfg.scale = 7.0
    assert cg(fw.ones(1)).tolist() == [7.0]
    captures = cg.stats()["captures"]
    cfg.calls += 1  # never read by the graph: no recompile
    assert cg(fw.ones(1)).tolist() == [7.0] and cg.stats()["captures"] == captures
