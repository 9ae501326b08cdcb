"""Nearest upsampling by whole-number factors of dynamic spatial sizes (an export with
dynamic height / width, a compile with ``dynamic=True``): each element repeated, which
needs no static size; other resamplings of dynamic sizes still say they need static ones."""

import numpy as np
import pytest

import framework as fw
from framework import nn


def _np_repeat(x, sh, sw):
    return x.repeat(sh, axis=2).repeat(sw, axis=3)


class _Up(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return nn.functional.interpolate(x, **self.kw) * 2.0


@pytest.mark.parametrize("kw, factors", [
    ({"scale_factor": 2}, (2, 2)),
    ({"scale_factor": (2.0, 3.0), "mode": "nearest-exact"}, (2, 3)),
    ({"scale_factor": (1, 2)}, (1, 2)),
])
def test_onnx_export_with_dynamic_height_width(tmp_path, kw, factors):
    ort = pytest.importorskip("onnxruntime")
    model = _Up(**kw)
    path = str(tmp_path / "up.onnx")
    fw.onnx.export(model, fw.randn(1, 2, 4, 5), path, input_names=["x"],
                   dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for shape in [(1, 2, 4, 5), (3, 2, 7, 2)]:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        (got,) = sess.run(None, {"x": x})
        with fw.no_grad():
            want = model(fw.tensor(x)).numpy()
        np.testing.assert_array_equal(want, _np_repeat(x, *factors) * 2)
        np.testing.assert_array_equal(got, want)


def test_compiled_dynamic_sizes_match_eager_with_gradients():
    """One capture with symbolic (batch, channel, height, width) serves every size."""
    up = nn.Upsample(scale_factor=(3, 2), mode="nearest")

    def f(x, w):
        return (up(x) * w).square().mean()

    cf = fw.compile(f, dynamic=True, mode="always")
    for shape in [(2, 3, 4, 5), (4, 5, 6, 7), (7, 6, 9, 8)]:  # (equal sizes would share a symbol)
        x = fw.randn(*shape, requires_grad=True)
        w = fw.randn(1, shape[1], 1, 1, requires_grad=True)
        want = f(x, w)
        gx, gw = fw.autograd.grad(want, (x, w))
        got = cf(x, w)
        hx, hw = fw.autograd.grad(got, (x, w))
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
        np.testing.assert_allclose(hx.numpy(), gx.numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(hw.numpy(), gw.numpy(), rtol=1e-5, atol=1e-7)
    assert cf.stats()["eager_reason"] is None and cf.stats()["captures"] == 1


def test_fractional_factor_of_dynamic_size_still_refused(tmp_path):
    with pytest.raises(NotImplementedError, match="needs static spatial sizes"):
        fw.onnx.export(_Up(scale_factor=1.5), fw.randn(1, 2, 4, 4), str(tmp_path / "u.onnx"),
                       input_names=["x"], dynamic_axes={"x": {2: "h"}})
