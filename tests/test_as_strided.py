"""as_strided: PyTorch's storage-relative views (framework/ops/strided.py)."""

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, FwTypeError


def test_view_shares_memory_and_writes_reach_the_input():
    x = fw.arange(12.0)
    v = x.as_strided((3, 3), (2, 1), 1)
    np.testing.assert_array_equal(v.numpy(), [[1, 2, 3], [3, 4, 5], [5, 6, 7]])
    v[0, 0] = 100.0
    assert x[1].item() == 100.0
    assert v._base is x


def test_a_repeating_view_refuses_in_place_writes():
    v = fw.arange(3.0).as_strided((2, 3), (0, 1))
    with pytest.raises(fw.ShapeError, match="single memory location"):
        v.add_(1.0)


def test_offset_defaults_to_the_inputs_storage_offset():
    x = fw.arange(10.0)
    tail = x[4:]
    assert tail.storage_offset() == 4
    np.testing.assert_array_equal(tail.as_strided((2, 2), (1, 1)).numpy(), [[4, 5], [5, 6]])
    # an explicit offset is a storage position, not a position in `tail`
    np.testing.assert_array_equal(tail.as_strided((3,), (1,), 0).numpy(), [0, 1, 2])


def test_non_contiguous_input_reads_its_base_storage():
    base = fw.arange(12.0).reshape(3, 4)
    t = base.t()
    np.testing.assert_array_equal(t.as_strided((2, 3), (1, 4)).numpy(),
                                  [[0, 4, 8], [1, 5, 9]])


def test_gradient_adds_up_over_overlapping_windows():
    x = fw.tensor(np.arange(8.0), requires_grad=True)
    w = fw.tensor(np.random.default_rng(0).standard_normal((3, 4)))
    (x.as_strided((3, 4), (2, 1), 0) * w).sum().backward()
    want = np.zeros(8)
    for i in range(3):
        for j in range(4):
            want[2 * i + j] += w.numpy()[i, j]
    np.testing.assert_allclose(x.grad.numpy(), want)


def test_gradient_reaches_a_leaf_through_a_non_contiguous_view():
    w = fw.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    w.t().as_strided((3,), (2,), 0).sum().backward()  # storage positions 0, 2, 4
    np.testing.assert_array_equal(w.grad.numpy(), [[1, 0, 1], [0, 1, 0]])


def test_compiled_and_cuda_like_paths_match_eager():
    def f(a):
        return (a.as_strided((4, 3), (2, 1), 1) * 2).sum(0)
    x = fw.randn(10)
    np.testing.assert_allclose(fw.compile(f)(x).numpy(), f(x).numpy(), rtol=1e-6)


def test_onnx_export_matches_eager():
    pytest.importorskip("onnxruntime")

    def f(a):
        return a.as_strided((3, 3), (3, 1), 2).exp()
    fw.onnx.export(f, fw.randn(12), verify=True)


def test_errors_name_the_argument():
    x = fw.arange(6.0)
    with pytest.raises(ArgumentError, match="out of bounds for storage of size 24"):
        x.as_strided((3, 3), (1, 1), 2)
    with pytest.raises(ArgumentError, match="mismatch in length"):
        x.as_strided((2, 2), (1,))
    with pytest.raises(ArgumentError, match="negative"):
        x.as_strided((2,), (-1,))
    with pytest.raises(ArgumentError, match="storage_offset must be >= 0"):
        x.as_strided((2,), (1,), -1)
    with pytest.raises(FwTypeError, match="sequence of ints"):
        x.as_strided((2.0,), (1,))
    leaf = fw.randn(3, 4).t().detach().requires_grad_()
    with pytest.raises(NotImplementedError, match="contiguous"):
        leaf.as_strided((2,), (1,))
