"""``fw.compiler``: is_compiling, disable, reset, list_backends, explain."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import GraphBreak


def test_is_compiling_is_true_only_while_a_capture_traces():
    seen = []

    def f(x):
        seen.append(fw.compiler.is_compiling())
        return x * 2
    assert not fw.compiler.is_compiling()
    cf = fw.compile(f, mode="always")
    cf(fw.ones(2))
    cf(fw.ones(2))   # generated code: f is not called again
    assert seen == [True]


def test_disable_breaks_the_capture_and_runs_eagerly():
    calls = []

    @fw.compiler.disable
    def helper(t):
        calls.append(1)
        return t * 2

    def f(x):
        return helper(x) + 1

    cf = fw.compile(f, mode="always")
    with pytest.warns(UserWarning, match=r"fw.compiler.disable\(helper\)"):
        out = cf(fw.ones(2))
    np.testing.assert_array_equal(out.numpy(), [3.0, 3.0])
    assert "fw.compiler.disable(helper)" in cf.stats()["eager_reason"]
    with pytest.raises(GraphBreak, match="disable"):
        fw.compile(f, fullgraph=True)(fw.ones(2))
    assert helper(fw.ones(1)).item() == 2.0   # eagerly it is a plain call


def test_disable_of_a_compiled_function_returns_the_original():
    def f(x):
        return x + 1
    plain = fw.compiler.disable(fw.compile(f))
    assert plain.__wrapped__ is f
    model = nn.Linear(2, 2)
    eager_model = fw.compiler.disable(fw.compile(model))
    x = fw.randn(3, 2)
    np.testing.assert_array_equal(eager_model(x).detach().numpy(), model(x).detach().numpy())
    with pytest.raises(NotImplementedError, match="recursive=False"):
        fw.compiler.disable(f, recursive=False)


def test_reset_forgets_graphs_and_eager_decisions():
    cf = fw.compile(lambda x: x * 3, mode="always")
    cf(fw.ones(2))
    assert cf.stats()["entries"] == 1
    broken = fw.compile(lambda x: x * x.sum().item(), mode="always")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        broken(fw.ones(2))
    assert broken.stats()["eager_reason"] is not None
    fw.compiler.reset()
    assert cf.stats()["entries"] == 0 and cf.stats()["calls"] == 0
    assert broken.stats()["eager_reason"] is None
    np.testing.assert_array_equal(cf(fw.ones(2)).numpy(), [3.0, 3.0])
    assert cf.stats()["captures"] == 1


def test_explain_reports_the_graph_or_the_break_without_running():
    lin = nn.Linear(3, 2)
    ran = []

    def f(x):
        ran.append(1)
        return lin(x).relu().sum()
    out = fw.compiler.explain(f)(fw.randn(4, 3))
    assert out.graph_count == 1 and out.graph_break_count == 0
    assert out.ops_per_graph[0][-2:] == ["relu", "sum"] and out.op_count >= 4
    assert "Graph Count: 1" in str(out)
    assert ran == [1]  # traced once (data-less), never executed on the data

    def g(x):
        return x * x.sum().item()
    out = fw.compiler.explain(g, fw.randn(4, 3))
    assert out.graph_count == 0 and out.graph_break_count == 1
    assert "item()" in out.break_reasons[0] and "Break Reason 1" in str(out)


def test_list_backends_are_accepted_by_compile():
    for b in fw.compiler.list_backends():
        fw.compile(lambda x: x, backend=b)
