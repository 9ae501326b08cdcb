"""Passes (verifier after every pass, each pass doing its job), fusion groups, decomposition,
the disk cache (atomic, corrupt entries rebuilt) and FW_LOGS."""

import os

import numpy as np
import pytest

import framework as fw
from framework import nn
from compiler.capture import capture_graph
from compiler.ir import Graph, VerifyError
from compiler.passes import (PIPELINE, cse, dce, decompose, fold, fuse, memory_plan,
                             run_pipeline, simplify)


def _graphs():
    fw.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.LayerNorm(6), nn.Linear(6, 3))
    opt = fw.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    x, y = fw.randn(5, 4), fw.randint(0, 3, (5,))
    step(x, y)  # creates the optimizer state
    yield capture_graph(step, (x, y))
    yield capture_graph(lambda a: (a.exp() * 1 + 0).reshape(6, 2).reshape(3, 4).T.T.sum(0),
                        (fw.randn(3, 4),), dynamic=True)
    yield capture_graph(lambda a: a.softmax(-1) * fw.ones(3) + fw.arange(3) * 2.0,
                        (fw.randn(2, 3),))


@pytest.mark.parametrize("gi", range(3))
def test_verifier_passes_after_every_pass(gi):
    g = list(_graphs())[gi]
    g.verify()
    out = run_pipeline(g, PIPELINE, verify=True)
    decompose.run(out).verify()
    memory_plan.run(out).verify()
    assert all(any(p.startswith(name) for p in out.passes) for name in PIPELINE)


def test_verifier_catches_a_broken_graph():
    g = capture_graph(lambda a: a.exp() + 1, (fw.randn(2, 3),))
    g.nodes[0].outputs[0].shape = (3, 2)
    with pytest.raises(VerifyError, match="meta rule gives"):
        g.verify()
    g2 = capture_graph(lambda a: a.exp() + 1, (fw.randn(2, 3),))
    g2.nodes = g2.nodes[1:]
    with pytest.raises(VerifyError, match="before it is defined"):
        g2.verify()


def test_each_pass_does_its_job():
    g = capture_graph(lambda a: ((a * 1 + 0).exp() + (a * 1 + 0).exp()).reshape(6).reshape(2, 3)
                      .T.T, (fw.randn(2, 3),))
    s = simplify.run(g)
    names = [n.op.name for n in dce.run(s).nodes]
    assert "mul" not in names and names.count("reshape") <= 1 and "permute" not in names
    c = dce.run(cse.run(s))
    assert [n.op.name for n in c.nodes].count("exp") == 1
    f = fold.run(capture_graph(lambda a: a + fw.ones(3) * 2, (fw.randn(3),)))
    assert [n.op.name for n in dce.run(f).nodes] == ["add"]
    unused = capture_graph(lambda a: (a.sin(), a.cos())[1], (fw.randn(3),))
    assert [n.op.name for n in dce.run(unused).nodes] == ["cos"]


def test_fusion_groups_and_reasons():
    g = run_pipeline(capture_graph(
        lambda x, w, b: ((x @ w + b).relu() * 2).softmax(-1).sum(0),
        (fw.randn(4, 3), fw.randn(3, 5), fw.randn(5))))
    groups = fuse.run(g)
    kinds = [gr.kind for gr in groups]
    assert kinds[0] == "matmul" and [n.op.name for n in groups[0].nodes] == \
        ["matmul", "add", "relu", "mul"]
    assert any(gr.why_not for gr in groups)
    assert "kernel 0 [matmul]" in fuse.describe(groups)
    for gr in groups:
        assert all(isinstance(v, type(g.outputs[0])) for v in gr.inputs + gr.outputs)


def test_decompose_keeps_requested_composites_and_matches_values():
    m = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.LayerNorm(6))
    x = fw.randn(3, 4)
    g = capture_graph(lambda a: m(a).log_softmax(-1), (x,))
    d = decompose.run(g, keep={"layer_norm"})
    d.verify()
    ops = {n.op.name for n in d.nodes}
    assert "layer_norm" in ops and "log_softmax" not in ops and "gelu" not in ops
    from compiler.passes.autodiff import interpret
    with fw.no_grad():
        np.testing.assert_allclose(interpret(d, [x])[0].numpy(), m(x).log_softmax(-1).numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_memory_plan_reuses_buffers_and_updates_in_place():
    w = fw.randn(8, 8)

    def f(x):
        h = (x @ w).tanh().exp().sin()
        with fw.no_grad():
            w.sub_(h.sum(0) * 0.01)
        return h.sum()

    g = run_pipeline(capture_graph(f, (fw.randn(8, 8),)))
    plan = memory_plan.run(g).plan
    assert len(plan.slots) < sum(1 for n in g.nodes if n.outputs[0].kind == "node")
    assert plan.into_target  # the update of w is computed straight into w


def test_printer_reads_like_python():
    g = capture_graph(lambda a: a.exp().sum(0), (fw.randn(2, 3),))
    text = str(g)
    assert text.splitlines()[0].startswith("# passes: capture")
    assert "def graph(a):" in text and "# f32[2, 3]" in text and "# f32[3]" in text


def test_disk_cache_atomic_and_corrupt_entries(tmp_path, monkeypatch):
    from compiler.cache import DiskCache
    c = DiskCache("t", root=str(tmp_path))
    c.put("ab" * 32, b"hello")
    assert c.get("ab" * 32) == b"hello"
    path = c._path("ab" * 32)
    with open(path, "r+b") as f:
        f.seek(-2, os.SEEK_END)
        f.write(b"XX")
    with pytest.warns(UserWarning, match="corrupt"):
        assert c.get("ab" * 32) is None
    assert not os.path.exists(path)
    assert not [p for p in os.listdir(os.path.dirname(path)) if p.startswith(".tmp")]


def test_compiled_code_goes_through_the_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FW_CACHE_DIR", str(tmp_path))
    from compiler.codegen import numpy as cg
    cg._MEMORY.clear()
    f = fw.compile(lambda a: a.exp() * 3, mode="always")
    x = fw.randn(3)
    np.testing.assert_allclose(f(x).numpy(), (x.exp() * 3).numpy(), rtol=1e-6)
    files = [os.path.join(d, n) for d, _, ns in os.walk(tmp_path) for n in ns]
    assert len(files) == 1
    with open(files[0], "wb") as fh:
        fh.write(b"garbage")
    cg._MEMORY.clear()
    with pytest.warns(UserWarning, match="corrupt"):
        g = fw.compile(lambda a: a.exp() * 3, mode="always")
        np.testing.assert_allclose(g(x).numpy(), (x.exp() * 3).numpy(), rtol=1e-6)


def test_fw_logs_prints_graph_code_and_recompiles(monkeypatch, capsys):
    monkeypatch.setenv("FW_LOGS", "graph,code,recompiles,fusion")
    f = fw.compile(lambda a: a.exp(), mode="always")
    f(fw.randn(3))
    f(fw.randn(3, dtype=fw.float64))
    err = capsys.readouterr().err
    assert "[fw.compile:graph]" in err and "def kernel" in err
    assert "[fw.compile:recompiles]" in err and "dtype of a" in err
    assert "[fw.compile:fusion]" in err


def test_empty_graph_is_valid():
    Graph().verify()


def test_fold_leaves_nodes_with_a_size_expression_operand():
    """``full(()) * (n - 1)`` with n a dynamic dim is not a constant (it crashed folding)."""
    def f(x):
        return fw.full((), 0.5) * (x.shape[0] - 1) + x.sum()
    cf = fw.compile(f, fullgraph=True)
    for n in (3, 4, 5):
        x = fw.ones(n)
        assert float(cf(x)) == float(f(x)) == 0.5 * (n - 1) + n


def test_new_sizes_that_break_a_shape_rule_fail_as_eagerly():
    """A dynamic entry re-runs the shape rules for new sizes: topk's k past a shorter dim
    raises the eager error instead of returning fewer elements."""
    f = fw.compile(lambda x: x.topk(3).values * 2)
    for n in (5, 6, 7):
        assert f(fw.arange(float(n))).tolist() == [2.0 * (n - 1 - i) for i in range(3)]
    with pytest.raises(fw.FwIndexError, match="topk"):
        f(fw.arange(2.0))
    assert f(fw.arange(8.0)).tolist() == [14.0, 12.0, 10.0]


@pytest.mark.parametrize("dtype", [fw.bfloat16, fw.float16])
def test_half_precision_arithmetic_keeps_its_dtype_when_compiled(dtype):
    """NumPy computes bfloat16 * Python float in float32: the generated code rounds to the
    declared dtype, as eager does, whether or not the result lands in a planned buffer."""
    x = fw.tensor([1.3, 2.7, -0.6], dtype=dtype)

    def f(t):
        return (t * 0.4343).exp() + 1.5, t.log10() if dtype is fw.bfloat16 else t * 3.0
    got = fw.compile(f, mode="always")(x)
    want = f(x)
    for g, w in zip(got, want):
        assert g.dtype is dtype and g.numpy().dtype == w.numpy().dtype
        np.testing.assert_array_equal(g.numpy().astype(np.float32), w.numpy().astype(np.float32))
