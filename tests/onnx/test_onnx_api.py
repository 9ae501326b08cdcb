"""fw.onnx.export: names, dynamic dims, eval mode, files, external data, checks, errors,
decomposition fallback, and the command line."""

import os
import subprocess
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import framework as fw
from compiler.onnx import LOWERINGS, supported_opsets
from compiler.onnx_lowering import DECOMPOSE
from framework import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def _mlp():
    fw.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def test_readable_names_from_module_paths():
    model = _mlp()
    m = fw.onnx.export(model, fw.randn(2, 8))
    inits = [i.name for i in m.graph.initializer if not i.name.startswith("const")]
    assert sorted(inits) == sorted(model.state_dict().keys())
    assert [i.name for i in m.graph.input] == ["input"]  # Sequential.forward(input)
    assert [o.name for o in m.graph.output] == ["output"]
    np.testing.assert_array_equal(
        onnx.numpy_helper.to_array(next(i for i in m.graph.initializer
                                        if i.name == "0.weight")),
        model[0].weight.detach().numpy())


def test_function_inputs_named_from_signature_and_closure_params():
    lin = _mlp()[0]

    def f(features, scale):
        return lin(features) * scale

    m = fw.onnx.export(f, (fw.randn(2, 8), fw.randn(16)), verify=True)
    assert [i.name for i in m.graph.input] == ["features", "scale"]
    assert {"lin.weight", "lin.bias"} <= {i.name for i in m.graph.initializer}


def test_input_output_names_and_multiple_outputs():
    def f(a, b):
        return a + b, (a * b).sum(-1)

    m = fw.onnx.export(f, (fw.randn(2, 3), fw.randn(2, 3)), input_names=["p", "q"],
                       output_names=["total", "dot"], verify=True)
    assert [i.name for i in m.graph.input] == ["p", "q"]
    assert [o.name for o in m.graph.output] == ["total", "dot"]


def test_dynamic_axes_named_and_list_form_and_output_axes():
    model = _mlp()
    m = fw.onnx.export(model, fw.randn(1, 8), input_names=["x"],
                       dynamic_axes={"x": [0], "output": {0: "rows"}}, verify=True)
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "x_dim0"
    assert m.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "rows"
    for n in (1, 5):
        (y,) = _run(m, {"x": np.ones((n, 8), np.float32)})
        assert y.shape == (n, 3)


def test_mark_dynamic_and_dynamic_true():
    x = fw.randn(4, 8)
    fw.mark_dynamic(x, 0)
    m = fw.onnx.export(lambda x: x.softmax(-1) * 2, x, verify=True)
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "x_dim0"
    m = fw.onnx.export(lambda x: x.sum(0), fw.randn(3, 5), dynamic=True, verify=True)
    dims = [d.dim_param for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["x_dim0", "x_dim1"]


def _dims(m, i=0):
    return [d.dim_param or d.dim_value for d in m.graph.input[i].type.tensor_type.shape.dim]


def test_dynamic_true_keeps_the_dims_the_model_constrains_static():
    """Like PyTorch's automatic dynamic shapes: attention's embedding dim and an MLP's
    features stay static (with a warning naming them), batch and sequence stay dynamic."""
    fw.manual_seed(0)
    attn = nn.MultiheadAttention(16, 4, batch_first=True)
    with pytest.warns(UserWarning, match="constrains x dim 2"):
        m = fw.onnx.export(lambda x: attn(x, x, x, need_weights=False)[0], fw.randn(2, 5, 16),
                           dynamic=True, verify=True)
    assert _dims(m) == ["x_dim0", "x_dim1", 16]
    with pytest.warns(UserWarning, match="constrains x dim 1"):
        m = fw.onnx.export(_mlp(), fw.randn(2, 8), input_names=["x"], dynamic=True,
                           verify=True)
    assert _dims(m) == ["x_dim0", 8]
    fw.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    with pytest.warns(UserWarning, match="constrains"):
        m = fw.onnx.export(cnn, fw.randn(2, 3, 8, 8), input_names=["x"], dynamic=True,
                           verify=True)
    assert _dims(m)[0] == "x_dim0" and _dims(m)[1] == 3


def test_dims_asked_for_by_name_are_never_specialized():
    attn = nn.MultiheadAttention(16, 4, batch_first=True)
    with pytest.raises(fw.ShapeError, match="embedding dimension"):
        fw.onnx.export(lambda x: attn(x, x, x, need_weights=False)[0], fw.randn(2, 5, 16),
                       input_names=["x"], dynamic_axes={"x": {0: "batch", 2: "embed"}},
                       dynamic=True)


def test_eval_mode_during_export_and_restored():
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5), nn.BatchNorm1d(8))
    model.train()
    model[2].running_mean.copy_(fw.randn(8))
    m = fw.onnx.export(model, fw.randn(4, 8), verify=True)
    assert model.training and model[1].training and model[2].training
    types = Counter(n.op_type for n in m.graph.node)
    assert "RandomUniform" not in types and "RandomUniformLike" not in types
    assert types["BatchNormalization"] == 1
    model.eval()
    x = fw.randn(4, 8)
    (y,) = _run(m, {"input": x.numpy()})
    np.testing.assert_allclose(y, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_writes_file_and_loads(tmp_path):
    path = tmp_path / "sub" / "mlp.onnx"
    m = fw.onnx.export(_mlp(), fw.randn(2, 8), str(path))
    loaded = onnx.load(str(path))
    assert loaded.SerializeToString() == m.SerializeToString()
    onnx.checker.check_model(str(path), full_check=True)


def test_external_data(tmp_path):
    path = tmp_path / "mlp.onnx"
    fw.onnx.export(_mlp(), fw.randn(2, 8), path, external_data=True, verify=True)
    assert (tmp_path / "mlp.onnx.data").exists()
    assert os.path.getsize(path) < 2000  # the weights live in the .data file
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"input": np.ones((2, 8), np.float32)})[0].shape == (2, 3)


@pytest.mark.parametrize("opset", sorted({12, 13, 17, 18, max(supported_opsets())}))
def test_every_supported_opset_checks(opset):
    m = fw.onnx.export(_mlp(), fw.randn(2, 8), opset_version=opset, verify=True)
    assert m.opset_import[0].version == opset
    onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)


@pytest.mark.parametrize("opset", [11, max(supported_opsets()) + 1, "18"])
def test_unsupported_opset_is_an_error(opset):
    with pytest.raises(ValueError, match="opset_version must be an int in"):
        fw.onnx.export(_mlp(), fw.randn(2, 8), opset_version=opset)


def test_design_blueprint_call(tmp_path):
    """DESIGN.md's line: one input, dynamic_axes names it although forward calls it
    ``input``."""
    model = nn.Sequential(nn.Linear(784, 16), nn.GELU(), nn.Linear(16, 10))
    m = fw.onnx.export(model, fw.randn(1, 784), str(tmp_path / "mlp.onnx"),
                       dynamic_axes={"x": {0: "batch"}}, verify=True)
    assert m.graph.input[0].name == "x"
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_bad_dynamic_axes_are_errors():
    with pytest.raises(ValueError, match="neither inputs"):
        fw.onnx.export(lambda a, b: a + b, (fw.randn(2, 8), fw.randn(2, 8)),
                       dynamic_axes={"x": {0: "batch"}})
    with pytest.raises(ValueError, match="neither inputs"):
        fw.onnx.export(_mlp(), fw.randn(2, 8), dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    with pytest.raises(ValueError, match="has 2 dims"):
        fw.onnx.export(_mlp(), fw.randn(2, 8), dynamic_axes={"input": {2: "batch"}})
    with pytest.raises(ValueError, match="input_names"):
        fw.onnx.export(_mlp(), fw.randn(2, 8), input_names=["a", "b"])


def test_composite_without_native_op_falls_back_to_decomposition(monkeypatch):
    monkeypatch.setitem(LOWERINGS, "softmax", lambda ctx, node: DECOMPOSE)
    m = fw.onnx.export(lambda x: x.softmax(-1), fw.randn(3, 5), dynamic=True, verify=True)
    types = Counter(n.op_type for n in m.graph.node)
    assert "Softmax" not in types and types["Exp"] == 1 and types["ReduceMax"] == 1


def test_composite_with_no_rule_at_all_falls_back(monkeypatch):
    monkeypatch.delitem(LOWERINGS, "layer_norm")
    ln = nn.LayerNorm(6)
    m = fw.onnx.export(ln, fw.randn(2, 6), verify=True)
    assert "LayerNormalization" not in {n.op_type for n in m.graph.node}


def test_verify_reports_the_worst_mismatch():
    model = _mlp()
    m = fw.onnx.export(model, fw.randn(2, 8))
    with fw.no_grad():
        model[0].weight.add_(1.0)  # eager now differs from the exported weights
    with pytest.raises(fw.onnx.OnnxVerificationError, match=r"output 'output' differs"):
        fw.onnx.verify_model(m, model, (fw.randn(2, 8),))


def test_int_and_bool_inputs_verify_at_two_sizes():
    emb = nn.Embedding(10, 4)
    m = fw.onnx.export(lambda ids, keep: emb(ids) * keep.unsqueeze(-1).to(fw.float32),
                       (fw.tensor([[1, 2, 3]]), fw.tensor([[True, False, True]])),
                       dynamic_axes={"ids": {0: "b", 1: "t"}, "keep": {0: "b", 1: "t"}},
                       verify=True)
    assert Counter(n.op_type for n in m.graph.node)["Gather"] == 1


def test_bfloat16_model_is_verified():
    m = fw.onnx.export(lambda x: (x * 2).sum(-1), fw.randn(3, 4).to(fw.bfloat16), verify=True)
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.BFLOAT16


def test_command_line(tmp_path):
    src = tmp_path / "models.py"
    src.write_text("from framework import nn\n\n"
                   "def make():\n"
                   "    return nn.Sequential(nn.Linear(6, 4), nn.Tanh())\n")
    out = tmp_path / "m.onnx"
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "framework.onnx", f"{src}:make", "--shape",
                        "1,6", "-o", str(out), "--input-names", "x", "--dynamic",
                        "x:0:batch", "--verify"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "x[batch, 6]" in r.stdout and "verified" in r.stdout
    m = onnx.load(str(out))
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    r = subprocess.run([sys.executable, "-m", "framework.onnx", f"{src}:missing", "--shape",
                        "1,6"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "no attribute 'missing'" in r.stderr


def test_random_ops_become_random_nodes():
    """uniform/normal cannot match eager values: check the node, shapes and moments."""
    m = fw.onnx.export(lambda x: x + fw.rand(x.shape) * 2.0, fw.zeros(4, 5000),
                       input_names=["x"], dynamic_axes={"x": {0: "n"}})
    assert "RandomUniformLike" in {n.op_type for n in m.graph.node}
    (u,) = _run(m, {"x": np.zeros((3, 5000), np.float32)})
    assert u.shape == (3, 5000) and 0 <= u.min() and u.max() < 2 and abs(u.mean() - 1) < 0.05
    m = fw.onnx.export(lambda x: x + fw.randn(200, 100), fw.zeros(200, 100))
    assert "RandomNormal" in {n.op_type for n in m.graph.node}
    (z,) = _run(m, {"x": np.zeros((200, 100), np.float32)})
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


def test_to_device_is_an_identity():
    import framework.transfer  # noqa: F401  (registers to_device)
    from compiler.ir import Graph
    from compiler.onnx import graph_to_onnx
    from framework.ops.registry import OPS
    g = Graph()
    x = g.add_input("x", (2, 3), fw.float32)
    n = g.add_node(OPS["to_device"], (x,), {"device": fw.device("meta")})
    g.outputs.append(n.outputs[0])
    m = graph_to_onnx(g)
    assert [n.op_type for n in m.graph.node] == ["Identity"]
    onnx.checker.check_model(m, full_check=True)


def test_large_models_use_external_data(tmp_path, monkeypatch):
    """Above the 2 GB protobuf limit weights go to external data (limit lowered here)."""
    monkeypatch.setattr(fw.onnx, "_TWO_GB", 100)
    path = tmp_path / "big.onnx"
    fw.onnx.export(_mlp(), fw.randn(2, 8), path, verify=True)
    assert (tmp_path / "big.onnx.data").exists()
    fw.onnx.export(_mlp(), fw.randn(2, 8), verify=True)  # no path: checked via a temp file


def test_compiled_modules_and_functions_export_what_they_wrap():
    model = _mlp()
    m = fw.onnx.export(fw.compile(model), fw.randn(2, 8), verify=True)
    assert "0.weight" in {i.name for i in m.graph.initializer}
    m = fw.onnx.export(fw.compile(lambda x: x.exp() + 1), fw.randn(3), verify=True)
    assert [n.op_type for n in m.graph.node] == ["Exp", "Add"]


@pytest.mark.slow
def test_model_on_cuda_device_exports(tmp_path):
    """Parameters on the GPU are copied to host initializers (simulated CUDA device)."""
    script = ("import framework as fw\nfrom framework import nn\n"
              "m = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).to('cuda')\n"
              "p = fw.onnx.export(m, fw.randn(2, 4).to('cuda'), verify=True,\n"
              "                   input_names=['x'], dynamic_axes={'x': {0: 'b'}})\n"
              "print(sorted(i.name for i in p.graph.initializer))\n")
    env = dict(os.environ, PYTHONPATH=ROOT, FW_TRITON_INTERPRET="1")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "['0.bias', '0.weight']" in r.stdout


def test_export_is_deterministic():
    layer = _seeded_encoder()
    dyn = {"src": {0: "batch", 1: "seq"}}
    a = fw.onnx.export(layer, fw.randn(2, 5, 8), dynamic_axes=dyn)
    b = fw.onnx.export(layer, fw.randn(2, 5, 8), dynamic_axes=dyn)
    assert a.SerializeToString() == b.SerializeToString()
    names = [n.output[0] for n in a.graph.node]
    assert len(names) == len(set(names))
    assert all(not (x.startswith("t") and x[1:].isdigit()) for x in names), names


def _seeded_encoder():
    fw.manual_seed(0)
    return nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)


def test_graph_with_runtime_scalar_inputs():
    """A captured graph whose Python floats stay runtime inputs (fw.compile's capture)
    lowers them to float64 0-d inputs cast to each op's dtype."""
    from compiler.capture import trace
    from compiler.onnx import graph_to_onnx
    g = trace(lambda x, s: (x * s + s).where(x > 0, s), (fw.randn(3), 2.5)).graph
    assert g.inputs[1].kind == "scalar_input"
    m = graph_to_onnx(g)
    onnx.checker.check_model(m, full_check=True)
    x = np.array([-1, 0.5, 2], np.float32)
    (y,) = _run(m, {"x": x, g.inputs[1].name: np.array(3.0)})
    np.testing.assert_allclose(y, np.where(x > 0, x * 3 + 3, 3))


def test_verify_model_uses_eval_mode():
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.9))
    m = fw.onnx.export(model, fw.randn(4, 8))
    assert model.training
    fw.onnx.verify_model(m, model, (fw.randn(4, 8),))  # dropout off while comparing
    assert model.training


@pytest.mark.xfail(reason="onnxruntime 1.32 has no kernels for the opset-22 versions of "
                          "RandomUniform/RandomNormal(Like); the exported model is valid ONNX",
                   raises=Exception, strict=True)
def test_random_ops_at_opset_22_run_in_onnxruntime():
    m = fw.onnx.export(lambda x: x + fw.rand(3, 4), fw.zeros(3, 4), opset_version=22)
    onnx.checker.check_model(m, full_check=True)
    _run(m, {"x": np.zeros((3, 4), np.float32)})
