"""``fw.fx.wrap`` (torchvision calls it at the top of its model files) and ``fw._assert``
(``torch._assert``, used by torchvision's ViT and MaxViT)."""

import numpy as np
import pytest

import framework as fw


def _leaf(x):
    return x + 1


WRAPPED_BY_NAME = fw.fx.wrap("_leaf")
WRAPPED_FN = fw.fx.wrap(_leaf)


def test_wrap_at_module_level_returns_its_argument_and_records_the_name():
    assert WRAPPED_BY_NAME == "_leaf" and WRAPPED_FN is _leaf
    assert (id(globals()), "_leaf") in fw.fx._wrapped_fns
    # fw's tracers go through Python calls: a wrapped function is captured like any other
    f = fw.compile(lambda x: _leaf(x) * 2)
    np.testing.assert_array_equal(f(fw.ones(3)).numpy(), np.full(3, 4.0))


def test_wrap_inside_a_function_or_of_a_non_function_raises_as_in_pytorch():
    with pytest.raises(NotImplementedError, match="wrap must be called at the top level"):
        fw.fx.wrap("_leaf")
    with pytest.raises(TypeError, match="callable or string"):
        fw.fx.wrap(3)


def test_assert_passes_raises_and_reads_one_element_tensors():
    fw._assert(True, "unused")
    with pytest.raises(AssertionError, match="Wrong image height"):
        fw._assert(224 == 32, "Wrong image height!")
    with pytest.raises(AssertionError, match="bad"):
        fw._assert(fw.tensor(0) == 1, "bad")
    fw._assert(fw.tensor([2.0]) > 1, "unused")

    def f(x):
        fw._assert(x.dim() == 2, f"Expected 2-D input got {x.shape}")
        return x * 3

    np.testing.assert_array_equal(fw.compile(f)(fw.ones(2, 2)).numpy(), np.full((2, 2), 3.0))
    # the capture stops at the failed assert and the eager rerun raises it
    with pytest.raises(AssertionError, match="Expected 2-D input"), \
            pytest.warns(UserWarning, match="capture failed: AssertionError"):
        fw.compile(f)(fw.ones(2))
