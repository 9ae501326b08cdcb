"""A slice of a static tensor bounded by a symbolic size (``pe[:x.size(0)]``, the
positional-encoding pattern): captured once for all lengths, checked against eager, and
re-captured when the bound runs past the end or changes sign."""

import numpy as np
import pytest

import framework as fw
from framework.errors import ShapeError

PE = fw.randn(6, 3)


def _run(fn, lengths):
    cf = fw.compile(fn, mode="always")
    for n in lengths:
        x = fw.randn(n, 3)
        np.testing.assert_allclose(cf(x).numpy(), fn(x).numpy(), rtol=1e-6, err_msg=str(n))
    return cf.stats()


def test_prefix_slice_by_input_length_is_captured_once():
    def f(x):
        return (x + PE[:x.size(0)]) * 2.0

    st = _run(f, (3, 4, 5, 2, 6))
    assert st["captures"] == 2 and st["num_recompiles"] == 1, st  # static, then dynamic
    assert st["recompiles"][0].endswith("-> dynamic")


def test_bound_past_the_end_recaptures_and_clamps_as_eager():
    def g(x):
        return PE[:x.size(0)] * 2.0

    cg = fw.compile(g, mode="always")
    for n in (3, 4, 9):
        x = fw.randn(n, 3)
        out = cg(x)
        assert out.shape == g(x).shape
        np.testing.assert_allclose(out.numpy(), g(x).numpy(), rtol=1e-6)
    assert cg.stats()["num_recompiles"] == 2  # 3 -> 4: dynamic; 9: past the end


def test_bound_past_the_end_raises_the_eager_error():
    def f(x):
        return (x + PE[:x.size(0)]).sum(0)

    cf = fw.compile(f, mode="always")
    for n in (3, 4):
        cf(fw.randn(n, 3))
    with pytest.raises(ShapeError, match="not broadcastable"):
        cf(fw.randn(9, 3))


@pytest.mark.parametrize("key", ["neg_stop", "window"])
def test_negative_and_window_bounds_match_eager(key):
    def neg_stop(x):
        return PE[:-x.size(0)].sum(0) + x.sum()

    def window(x):
        return PE[x.size(0) - 2: x.size(0)].sum(0) + x.sum()

    fn = {"neg_stop": neg_stop, "window": window}[key]
    st = _run(fn, (2, 3, 4, 5, 6, 7))
    assert st["eager_reason"] is None


def test_symbolic_slice_of_a_data_tensor_is_metadata_while_tracing():
    """The capture must not hand a symbolic bound to the NumPy backend."""
    def f(x):
        return PE[:x.size(0)] + x

    cf = fw.compile(f, mode="always", dynamic=True)
    x = fw.randn(4, 3)
    np.testing.assert_allclose(cf(x).numpy(), f(x).numpy(), rtol=1e-6)
    assert cf.stats()["captures"] == 1 and "s0" in str(cf.graph(x))


def test_onnx_export_with_a_dynamic_length_slicing_a_buffer(tmp_path):
    ort = pytest.importorskip("onnxruntime")

    class PosEnc(fw.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("pe", fw.randn(10, 1, 3))

        def forward(self, x):
            return x + self.pe[:x.size(0), :]

    m = PosEnc()
    path = str(tmp_path / "pe.onnx")
    fw.onnx.export(m, (fw.randn(4, 2, 3),), path, input_names=["x"],
                   dynamic_axes={"x": {0: "T", 1: "N"}})
    x = fw.randn(7, 5, 3)
    (y,) = ort.InferenceSession(path).run(None, {"x": x.numpy()})
    np.testing.assert_allclose(y, m(x).numpy(), rtol=1e-6)


def test_onnx_export_names_a_python_test_on_a_dynamic_dim():
    """``assert t <= block_size`` with t dynamic: a clear GraphBreak, not sympy's TypeError;
    with that dim static the same model exports."""
    class Crop(fw.nn.Module):
        def forward(self, x):
            b, t = x.size()
            assert t <= 8, f"sequence of length {t} is too long"
            return x * 2.0

    x = fw.randn(2, 5)
    with pytest.raises(fw.errors.GraphBreak, match=r"T <= 8.*export that dim static"):
        fw.onnx.export(Crop(), (x,), None, input_names=["x"],
                       dynamic_axes={"x": {0: "B", 1: "T"}})
    fw.onnx.export(Crop(), (x,), None, input_names=["x"], dynamic_axes={"x": {0: "B"}})
