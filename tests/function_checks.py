"""Checks shared by the tests of the torch-level functions (tests/test_torch_extra.py,
tests/test_torch_products.py, tests/test_math_extra.py): seeded random inputs, a function
compiled with ``fullgraph=True`` against eager, a compiled training step's loss and
gradients, and ONNX export with verification."""

import numpy as np
import pytest

import framework as fw


def to_np(t) -> np.ndarray:
    """A tensor's values as a NumPy array (detached, on the host)."""
    return t.detach().cpu().numpy()


def rand_tensor(*shape, seed=0, dtype=fw.float64, lo=None, hi=None, grad=False) -> fw.Tensor:
    """Standard-normal values of ``shape`` (uniform in ``[lo, hi)`` when ``lo`` is given)
    from a generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape) if lo is None else rng.uniform(lo, hi, shape)
    return fw.tensor(a, dtype=dtype, requires_grad=grad)


def _inputs():
    """The ``(x, y)`` float32 pair the compile and ONNX checks call ``f(x, y)`` with."""
    return rand_tensor(4, 5, dtype=fw.float32), rand_tensor(4, 1, seed=1, dtype=fw.float32)


def check_compile_fullgraph(f, monkeypatch, atol=1e-6) -> None:
    """``fw.compile(f, fullgraph=True)`` (strict) matches eager ``f(x, y)`` to rtol 1e-5 and
    ``atol``, without graph breaks."""
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    fn = fw.compile(f, fullgraph=True, mode="always")
    x, y = _inputs()
    np.testing.assert_allclose(to_np(fn(x, y)), to_np(f(x, y)), rtol=1e-5, atol=atol)
    assert not fn.stats()["graph_breaks"]


def check_compiled_backward(step, monkeypatch) -> None:
    """A training ``step(x)`` (loss and ``backward``) compiled with ``fullgraph=True``
    gives eager's loss and gradient on a (3, 5) float32 input."""
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    fn = fw.compile(step, fullgraph=True, mode="always")
    a = rand_tensor(3, 5, dtype=fw.float32, grad=True)
    b = rand_tensor(3, 5, dtype=fw.float32, grad=True)
    np.testing.assert_allclose(fn(a).item(), step(b).item(), rtol=1e-5)
    np.testing.assert_allclose(to_np(a.grad), to_np(b.grad), rtol=1e-5, atol=1e-6)


def check_onnx_export(f) -> None:
    """``f(x, y)`` exports to ONNX and onnxruntime reproduces it (skipped without
    onnxruntime)."""
    pytest.importorskip("onnxruntime")
    fw.onnx.export(f, _inputs(), verify=True)
