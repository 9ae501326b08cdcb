"""Exporting with a dynamic batch a model that does ``int(x.shape[0] / n)`` (Swin's
window_reverse) raises a GraphBreak that says what to change; it was sympy's bare
``TypeError: Cannot convert symbols to int``. The ``//`` form exports dynamically."""

import numpy as np
import pytest

import framework as fw


class IntOfSize(fw.nn.Module):
    def forward(self, x):
        b = int(x.shape[0] * 4 / 8)  # float arithmetic on a size, then int()
        return x.reshape(b, -1)


class FloorDivOfSize(fw.nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0] * 4 // 8, -1)


def test_int_of_a_dynamic_size_raises_a_graph_break_naming_the_fix(tmp_path):
    x = fw.randn(4, 3)
    with pytest.raises(fw.errors.GraphBreak, match="turns a dynamic dim into a Python int"):
        fw.onnx.export(IntOfSize(), (x,), str(tmp_path / "m.onnx"), input_names=["x"],
                       dynamic_axes={"x": {0: "b"}})
    fw.onnx.export(IntOfSize(), (x,), str(tmp_path / "static.onnx"))  # static: fine


def test_floor_division_of_a_dynamic_size_exports(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = str(tmp_path / "m.onnx")
    fw.onnx.export(FloorDivOfSize(), (fw.randn(4, 3),), path, input_names=["x"],
                   dynamic_axes={"x": {0: "b"}})
    x = np.arange(18, dtype=np.float32).reshape(6, 3)
    got = ort.InferenceSession(path).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, x.reshape(3, 6))
