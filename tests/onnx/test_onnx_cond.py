"""fw.cond -> ONNX If and fw.while_loop -> ONNX Loop: checker (full_check) and
onnxruntime against eager, for every outcome of one exported model."""

import numpy as np
import onnx
import onnxruntime as ort

import framework as fw
from framework import nn


def _session(model):
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return fw.cond(x.sum() > 0, lambda t: self.a(t).relu(), lambda t: self.b(t) * 2, (x,))


def test_cond_exports_as_if_with_outer_scope_parameters():
    fw.manual_seed(0)
    m = Gated()
    model = fw.onnx.export(m, fw.randn(3, 4), dynamic_axes={"x": {0: "batch"}},
                           input_names=["x"])
    ifs = [n for n in model.graph.node if n.op_type == "If"]
    assert len(ifs) == 1
    branches = {a.name: a.g for a in ifs[0].attribute}
    assert set(branches) == {"then_branch", "else_branch"}
    assert all(len(g.input) == 0 for g in branches.values())   # outer values by name
    reads = {k: {i for n in g.node for i in n.input} for k, g in branches.items()}
    assert {"a.weight", "x"} <= reads["then_branch"] and "b.weight" in reads["else_branch"]
    sess = _session(model)
    for rows, sign in ((5, 1.0), (2, -1.0), (3, 1.0)):
        x = fw.randn(rows, 4).abs() * sign
        got = sess.run(None, {"x": x.numpy()})[0]
        np.testing.assert_allclose(got, m(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_nested_cond_and_several_outputs_verify():
    def f(x, y):
        def inner(a, b):
            return fw.cond(b.mean() > 0, lambda p, q: (p * q, p), lambda p, q: (p - q, q),
                           (a, b))
        return fw.cond(x.sum() > 0, inner, lambda a, b: (a + b, b * 2), (x, y))

    model = fw.onnx.export(f, (fw.randn(3), fw.randn(3)), verify=True)
    sess = _session(model)
    for sx, sy in ((1, 1), (1, -1), (-1, 1)):
        x, y = fw.randn(3).abs() * sx, fw.randn(3).abs() * sy
        got = sess.run(None, {"x": x.numpy(), "y": y.numpy()})
        for g, w in zip(got, f(x, y)):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-6)


def test_while_loop_exports_as_loop():
    w = fw.randn(3)

    def f(n, x):
        return fw.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a * 2 + w),
                             (fw.zeros((), dtype=fw.int64), x))

    model = fw.onnx.export(f, (fw.tensor(3), fw.randn(3)))
    assert [n.op_type for n in model.graph.node].count("Loop") == 1
    sess = _session(model)
    for n in (0, 1, 5):
        x = fw.randn(3)
        i, a = sess.run(None, {"n": np.array(n), "x": x.numpy()})
        want_i, want_a = f(fw.tensor(n), x)
        assert int(i) == int(want_i.item()) == n
        np.testing.assert_allclose(a, want_a.numpy(), rtol=1e-6)
