"""fw.testing.assert_close and make_tensor follow torch.testing."""

import numpy as np
import pytest

import framework as fw
from framework.testing import assert_close, make_tensor


def test_close_tensors_pass_with_dtype_tolerances():
    x = fw.tensor([1.0, 2.0, 3.0])
    assert_close(x, x + 1e-6)                     # within float32's atol 1e-5
    assert_close(fw.tensor([1.0], dtype=fw.float64), fw.tensor([1.0 + 1e-8], dtype=fw.float64))
    assert_close(fw.tensor([100.0], dtype=fw.bfloat16), fw.tensor([101.0], dtype=fw.bfloat16))
    assert_close(x, np.array([1.0, 2.0, 3.0], np.float32))
    assert_close(fw.tensor([float("inf"), -float("inf")]), fw.tensor([float("inf"),
                                                                     -float("inf")]))


def test_mismatch_reports_counts_and_greatest_differences():
    with pytest.raises(AssertionError) as e:
        assert_close(fw.tensor([[1.0, 2.0], [3.0, 4.0]]), fw.tensor([[1.0, 2.0], [3.5, 4.0]]))
    text = str(e.value)
    assert "Mismatched elements: 1 / 4 (25.0%)" in text
    assert "Greatest absolute difference: 0.5 at index (1, 0)" in text
    with pytest.raises(AssertionError, match="float64 tolerance|up to 1e-07"):
        assert_close(fw.tensor([1.0], dtype=fw.float64), fw.tensor([1.0 + 1e-6],
                                                                   dtype=fw.float64))


def test_float64_differences_below_float32_tolerance_still_fail():
    with pytest.raises(AssertionError):
        assert_close(fw.tensor([1.0], dtype=fw.float64), fw.tensor([1.000001], dtype=fw.float64))


@pytest.mark.parametrize("a,b,what", [
    (fw.zeros(2), fw.zeros(3), "'shape'"),
    (fw.zeros(2), fw.zeros(2, dtype=fw.float64), "'dtype'"),
])
def test_attribute_mismatches(a, b, what):
    with pytest.raises(AssertionError, match=what):
        assert_close(a, b)


def test_check_dtype_false_uses_the_looser_tolerance():
    assert_close(fw.tensor([1.0]), fw.tensor([1.000001], dtype=fw.float64), check_dtype=False)


def test_nan_needs_equal_nan():
    n = fw.tensor([float("nan"), 1.0])
    with pytest.raises(AssertionError):
        assert_close(n, n)
    assert_close(n, n, equal_nan=True)


def test_integers_compare_exactly_and_custom_tolerances_apply():
    with pytest.raises(AssertionError):
        assert_close(fw.tensor([1, 2]), fw.tensor([1, 3]))
    assert_close(fw.tensor([1.0]), fw.tensor([1.5]), rtol=0, atol=0.5)
    with pytest.raises(AssertionError):
        assert_close(fw.tensor([1.0]), fw.tensor([1.6]), rtol=0, atol=0.5)


def test_nested_containers_name_the_failing_item():
    x = fw.ones(2)
    assert_close({"a": [x, 1.0]}, {"a": [x.clone(), 1.0]})
    with pytest.raises(AssertionError, match=r"item \['a'\]\[1\]"):
        assert_close({"a": [x, x]}, {"a": [x, x * 2]})
    with pytest.raises(AssertionError, match="length"):
        assert_close([x], [x, x])


def test_scalars_and_bad_arguments():
    assert_close(1.0, 1.0 + 1e-9)
    with pytest.raises(AssertionError, match="Scalars are not close"):
        assert_close(1.0, 1.1)
    with pytest.raises(AssertionError, match="'dtype'"):
        assert_close(1, 1.0)
    with pytest.raises(fw.ArgumentError, match="atol"):
        assert_close(fw.ones(1), fw.ones(1), rtol=1e-3)
    with pytest.raises(TypeError, match="assert_close"):
        assert_close(fw.ones(1), "1")
    with pytest.raises(AssertionError, match="custom"):
        assert_close(fw.ones(1), fw.zeros(1), msg="custom")


def test_make_tensor_ranges_dtypes_and_layout():
    f = make_tensor(50, dtype=fw.float32, low=-1, high=1)
    a = f.numpy()
    assert f.dtype is fw.float32 and a.shape == (50,) and (a >= -1).all() and (a < 1).all()
    i = make_tensor((4, 5), dtype=fw.int64)
    assert i.dtype is fw.int64 and (i.numpy() >= -9).all() and (i.numpy() < 10).all()
    assert make_tensor(3, dtype=fw.bool).dtype is fw.bool
    nz = make_tensor(200, dtype=fw.int32, low=-1, high=2, exclude_zero=True)
    assert (nz.numpy() != 0).all()
    g = make_tensor(3, 4, dtype=fw.float32, noncontiguous=True, requires_grad=True)
    assert not g.is_contiguous() and g.requires_grad and tuple(g.shape) == (3, 4)
    with pytest.raises(fw.ArgumentError):
        make_tensor(2, dtype=fw.float32, low=2, high=1)
