"""``F.affine_grid(theta, x.size())`` with a symbolic batch size (a dynamic-batch ONNX
export or a ``dynamic=True`` compile of a spatial transformer): the batch stays symbolic
instead of ``size`` being refused as not a sequence of ints."""

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
from framework import nn


class _STN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 6)

    def forward(self, x):
        theta = self.fc(x.flatten(1)).view(-1, 2, 3)
        grid = F.affine_grid(theta, x.size())
        return F.grid_sample(x, grid)


def test_affine_grid_exports_with_a_dynamic_batch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    fw.manual_seed(0)
    model = _STN().eval()
    x = fw.randn(3, 1, 4, 4)
    path = str(tmp_path / "stn.onnx")
    fw.onnx.export(model, x, path, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    sess = ort.InferenceSession(path)
    for n in (3, 5):
        xn = fw.randn(n, 1, 4, 4)
        (got,) = sess.run(None, {"x": xn.numpy()})
        with fw.no_grad():
            np.testing.assert_allclose(got, model(xn).numpy(), rtol=1e-5, atol=1e-6)


def test_affine_grid_compiles_with_a_dynamic_batch():
    fw.manual_seed(0)
    model = _STN()
    cf = fw.compile(model, dynamic=True, mode="always")
    with fw.no_grad():
        for n in (2, 4):
            x = fw.randn(n, 1, 4, 4)
            np.testing.assert_allclose(cf(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    assert cf.stats()["captures"] == 1


def test_affine_grid_still_refuses_a_symbolic_spatial_size():
    import sympy
    with pytest.raises(NotImplementedError, match="static spatial sizes"):
        F.affine_grid(fw.zeros(1, 2, 3), (1, 1, sympy.Symbol("h"), 4))
