"""A dynamic size used as a number with a constant tensor, the sympy expression on the left:
``(point_coords.shape[1] - 2.5) * torch.tensor([[1000, 0, 0, 0]])`` (SAM's ONNX wrapper picks
its single-mask output this way). sympy called ``float()`` on the tensor (an error); then
the constant's eager value was computed with the unresolved symbol in it."""

import numpy as np
import pytest

import framework as fw


def _select(x, w):
    n = x.shape[1]
    score = w + (n - 2.5) * w.new_tensor([[1000.0, 0.0, 0.0]])
    return fw.argmax(score, dim=1), score - n


def test_size_expression_times_a_constant_exports_dynamically(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    w = fw.tensor([[0.1, 0.7, 0.2]])
    path = str(tmp_path / "m.onnx")
    fw.onnx.export(_select, (fw.randn(1, 5, 2), w), path, input_names=["x", "w"],
                   dynamic_axes={"x": {1: "n"}})
    sess = ort.InferenceSession(path)
    for n in (1, 2, 3, 7):
        x = np.zeros((1, n, 2), np.float32)
        got = sess.run(None, {"x": x, "w": w.numpy()})
        want = _select(fw.tensor(x), w)
        assert got[0].tolist() == want[0].tolist() == [0 if n > 2 else 1]
        np.testing.assert_allclose(got[1], want[1].numpy(), rtol=1e-6)


def test_sympy_expression_defers_to_the_tensor_operator():
    import sympy
    s = sympy.Symbol("s", integer=True, positive=True)
    t = fw.ones(2)
    assert (s - 2.5).__mul__(t) is NotImplemented
    assert (sympy.Integer(3) * t).tolist() == [3.0, 3.0]
