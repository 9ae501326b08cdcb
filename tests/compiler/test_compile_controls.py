"""PyTorch's controls around torch.compile: set_stance, compile(disable=, options=),
the eager/aot_eager debugging backends, _dynamo.config.suppress_errors, allow_in_graph."""

import warnings

import numpy as np
import pytest

import framework as fw
from compiler import runtime
from compiler.runtime import RecompileError
from framework.errors import ArgumentError, GraphBreak


def _f(x):
    return (x * 2).sin() + 1


@pytest.fixture(autouse=True)
def _default_stance():
    yield
    fw.compiler.set_stance("default")


def test_force_eager_runs_the_python_and_captures_nothing():
    cf = fw.compile(_f, mode="always")
    x = fw.randn(4)
    with fw.compiler.set_stance("force_eager"):
        np.testing.assert_allclose(cf(x).numpy(), _f(x).numpy())
    st = cf.stats()
    assert st["captures"] == 0 and st["eager_calls"] == 1
    cf(x)                                                       # back to default
    assert cf.stats()["captures"] == 1


def test_eager_on_recompile_keeps_cached_code_and_runs_new_shapes_eagerly():
    cf = fw.compile(_f, mode="always", dynamic=False)
    cf(fw.randn(4))
    fw.compiler.set_stance("eager_on_recompile")               # plain call: sets it
    cf(fw.randn(4))
    out = cf(fw.randn(5))
    assert out.shape == (5,)
    st = cf.stats()
    assert st["captures"] == 1 and st["cache_hits"] == 1 and st["eager_calls"] == 1


def test_fail_on_recompile_raises_naming_the_guard():
    cf = fw.compile(_f, mode="always", dynamic=False)
    cf(fw.randn(4))
    with fw.compiler.set_stance("fail_on_recompile"):
        cf(fw.randn(4))
        with pytest.raises(RecompileError, match="fail_on_recompile"):
            cf(fw.randn(4, dtype=fw.float64))
    cf(fw.randn(4, dtype=fw.float64))                           # allowed again outside


def test_set_stance_as_a_decorator_applies_only_inside():
    cf = fw.compile(_f, mode="always")

    @fw.compiler.set_stance("force_eager")
    def run(x):
        return cf(x)

    assert runtime.STANCE == "default"
    run(fw.randn(3))
    assert cf.stats()["captures"] == 0 and runtime.STANCE == "default"
    with pytest.raises(ArgumentError, match="unknown stance"):
        fw.compiler.set_stance("sometimes")


def test_disable_returns_the_function_itself():
    assert fw.compile(_f, disable=True) is _f
    assert fw.compile(disable=True)(_f) is _f


def test_options():
    x = fw.randn(4)
    cf = fw.compile(_f, options={"triton.cudagraphs": True})
    assert cf.mode == "reduce-overhead"
    np.testing.assert_allclose(cf(x).numpy(), _f(x).numpy(), rtol=1e-6)
    assert fw.compile(_f, options={"max_autotune": True}).mode == "max-autotune"
    with pytest.warns(UserWarning, match="change nothing"):
        fw.compile(_f, options={"epilogue_fusion": False, "shape_padding": True})
    with pytest.raises(ArgumentError, match="unexpected optimization option"):
        fw.compile(_f, options={"no_such_thing": 1})
    with pytest.raises(ArgumentError, match="not both"):
        fw.compile(_f, mode="always", options={"max_autotune": True})


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_debugging_backends_capture_but_run_eagerly(backend):
    calls = []

    def f(x):
        calls.append(1)                     # Python side effect: runs only when eager
        return _f(x)

    cf = fw.compile(f, backend=backend)
    x = fw.randn(4)
    for _ in range(3):
        np.testing.assert_allclose(cf(x).numpy(), _f(x).numpy())
    st = cf.stats()
    assert st["captures"] == 1 and st["eager_calls"] >= 2
    assert len(calls) == 1 + 3              # the capture's trace, then every call eagerly

    def breaks(x):
        return x * float(x.sum())
    with pytest.raises(GraphBreak):
        fw.compile(breaks, backend=backend, fullgraph=True)(x)


def test_suppress_errors_false_raises_compiler_errors(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("codegen exploded")
    monkeypatch.setattr(runtime, "build_entry", broken)
    monkeypatch.delenv("FW_COMPILE_STRICT")        # the compiler tests' conftest sets it
    x = fw.randn(3)
    assert fw._dynamo.config.suppress_errors is True
    with pytest.warns(UserWarning, match="codegen exploded"):
        np.testing.assert_allclose(fw.compile(_f, mode="always")(x).numpy(), _f(x).numpy())
    fw._dynamo.config.suppress_errors = False
    try:
        with pytest.raises(RuntimeError, match="codegen exploded"):
            fw.compile(_f, mode="always")(x)
    finally:
        fw._dynamo.config.suppress_errors = True


def test_allow_in_graph_and_cudagraph_mark_step_begin():
    assert fw.compiler.allow_in_graph(_f) is _f
    cf = fw.compile(lambda x: fw.compiler.allow_in_graph(_f)(x), mode="always")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fw.compiler.cudagraph_mark_step_begin()
        cf(fw.randn(2))
    assert cf.stats()["captures"] == 1 and not cf.stats()["graph_breaks"]


def test_a_compiled_module_is_an_optimized_module_as_in_pytorch():
    m = fw.nn.Sequential(fw.nn.Linear(3, 4), fw.nn.ReLU(), fw.nn.Linear(4, 2))
    c = fw.compile(m, mode="always")
    assert isinstance(c, fw.nn.Module) and type(c).__name__ == "OptimizedModule"
    assert c._orig_mod is m
    assert list(c.state_dict()) == ["_orig_mod." + k for k in m.state_dict()]
    assert [id(p) for p in c.parameters()] == [id(p) for p in m.parameters()]
    x = fw.randn(5, 3)
    np.testing.assert_allclose(c(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-6)
    assert c.stats()["captures"] == 1
    c.eval()
    assert not m.training                                    # train/eval reach the original
    assert c._orig_mod[0] is m[0]
    assert c.extra_repr() == "" and "(_orig_mod): Sequential" in repr(c)
    c.note = "wrapper"                                       # set on the wrapper, as PyTorch
    assert not hasattr(m, "note")
