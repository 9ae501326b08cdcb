"""fw.onnx.export's PyTorch keyword arguments: f, dynamic_shapes, training,
export_params, keep_initializers_as_inputs, verbose, do_constant_folding, dynamo."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError

ort = pytest.importorskip("onnxruntime")


def _model():
    fw.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(6, 3))


def _run(model_proto, feeds):
    sess = ort.InferenceSession(model_proto.SerializeToString())
    return sess.run(None, feeds)[0]


def test_f_and_the_pytorch_only_flags(tmp_path, capsys):
    m = _model()
    path = tmp_path / "m.onnx"
    fw.onnx.export(m, (fw.randn(2, 4),), f=str(path), do_constant_folding=False, dynamo=True,
                   verbose=True, input_names=["x"], opset_version=None)
    out = capsys.readouterr().out
    assert path.exists() and any(op in out for op in ("Gemm", "MatMul"))
    with pytest.raises(ArgumentError, match="path or f"):
        fw.onnx.export(m, (fw.randn(2, 4),), str(path), f=str(path))


def test_dynamic_shapes_name_onnx_dims():
    m = _model().eval()
    batch = fw.export.Dim("batch")
    proto = fw.onnx.export(m, (fw.randn(2, 4),), input_names=["x"],
                           dynamic_shapes={"x": {0: batch}})
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 4
    proto = fw.onnx.export(m, (fw.randn(2, 4),), dynamic_shapes=([fw.export.Dim.AUTO, None],))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param.endswith("_dim_0")
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(proto, {proto.graph.input[0].name: x}),
                               m(fw.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ArgumentError, match="not both"):
        fw.onnx.export(m, (fw.randn(2, 4),), dynamic_axes={"x": [0]},
                       dynamic_shapes={"x": {0: batch}}, input_names=["x"])
    with pytest.raises(ArgumentError, match="not inputs"):
        fw.onnx.export(m, (fw.randn(2, 4),), dynamic_shapes={"y": {0: batch}},
                       input_names=["x"])


def test_training_modes():
    m = _model().train()
    x = fw.randn(8, 4)
    proto = fw.onnx.export(m, (x,), input_names=["x"])            # EVAL: running stats
    assert m.training  # restored
    m.eval()
    want_eval = m(x).detach().numpy()
    np.testing.assert_allclose(_run(proto, {"x": x.numpy()}), want_eval, rtol=1e-5,
                               atol=1e-6)
    proto = fw.onnx.export(m, (x,), input_names=["x"], training=fw.onnx.TrainingMode.PRESERVE)
    np.testing.assert_allclose(_run(proto, {"x": x.numpy()}), want_eval, rtol=1e-5,
                               atol=1e-6)
    bn_only = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)).eval()
    with pytest.warns(UserWarning, match="not exported"):  # running-stat updates
        proto = fw.onnx.export(bn_only, (x,), input_names=["x"],
                               training=fw.onnx.TrainingMode.TRAINING)
    assert not bn_only.training  # restored
    got = _run(proto, {"x": x.numpy()})  # batch statistics: every column has mean ~0
    np.testing.assert_allclose(got.mean(0), 0.0, atol=1e-5)


def test_export_params_false_and_initializers_as_inputs():
    m = _model().eval()
    x = fw.randn(2, 4)
    proto = fw.onnx.export(m, (x,), input_names=["x"], export_params=False)
    inputs = [i.name for i in proto.graph.input]
    weights = dict(m.state_dict())
    assert "0.weight" in inputs and not any(t.name == "0.weight" for t in
                                            proto.graph.initializer)
    feeds = {"x": x.numpy()}
    feeds.update({n: weights[n].numpy() for n in inputs if n in weights})
    np.testing.assert_allclose(_run(proto, feeds), m(x).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    proto = fw.onnx.export(m, (x,), input_names=["x"], keep_initializers_as_inputs=True)
    names = {i.name for i in proto.graph.input}
    assert {t.name for t in proto.graph.initializer} <= names
    np.testing.assert_allclose(_run(proto, {"x": x.numpy()}), m(x).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ArgumentError, match="export_params"):
        fw.onnx.export(m, (x,), export_params=False, verify=True)
