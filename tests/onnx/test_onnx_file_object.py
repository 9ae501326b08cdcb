"""``fw.onnx.export(model, args, f)`` with ``f`` an open binary file, as SAM's
scripts/export_onnx_model.py calls ``torch.onnx.export`` (``with open(output, "wb") as f``)."""

import io

import numpy as np
import onnx
import pytest

import framework as fw
from framework.errors import ArgumentError


def test_export_writes_into_a_file_object(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    fw.manual_seed(0)
    model = fw.nn.Sequential(fw.nn.Linear(4, 3), fw.nn.Tanh())
    x = fw.randn(2, 4)
    path = tmp_path / "m.onnx"
    with open(path, "wb") as f:
        fw.onnx.export(model, (x,), f, input_names=["x"], dynamic_axes={"x": {0: "b"}})
    sess = ort.InferenceSession(str(path))
    x3 = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with fw.no_grad():
        np.testing.assert_allclose(sess.run(None, {"x": x3})[0], model(fw.tensor(x3)).numpy(),
                                   rtol=1e-5, atol=1e-6)
    buf = io.BytesIO()
    fw.onnx.export(model, (x,), f=buf)
    assert onnx.load_from_string(buf.getvalue()).graph.node


def test_external_data_needs_a_path():
    with pytest.raises(ArgumentError, match="file path"):
        fw.onnx.export(fw.nn.Linear(2, 2), (fw.randn(1, 2),), io.BytesIO(), external_data=True)
