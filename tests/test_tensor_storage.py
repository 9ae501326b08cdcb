"""Storage views (untyped_storage, storage), is_set_to, new_empty_strided, map_ and the
inter-op thread setting."""

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, DeviceError, ShapeError


def test_views_share_one_storage_and_copies_do_not():
    base = fw.arange(12.0).reshape(3, 4)
    row, col = base[1], base[:, 2]
    s = base.untyped_storage()
    assert s.nbytes() == 48 and len(s) == 48 and s.element_size() == 1
    assert row.untyped_storage().data_ptr() == s.data_ptr() == base.data_ptr()
    assert col.untyped_storage() == s
    assert row.data_ptr() == s.data_ptr() + 4 * 4            # the view's own offset
    assert base.clone().untyped_storage().data_ptr() != s.data_ptr()
    assert base.clone().untyped_storage() != s


def test_typed_storage():
    x = fw.arange(6, dtype=fw.int32)[2:]
    st = x.storage()
    assert st.dtype == fw.int32 and st.size() == 6 and st.element_size() == 4
    assert st.tolist() == [0, 1, 2, 3, 4, 5]            # the whole buffer, not the view
    assert st.untyped().nbytes() == 24


def test_is_set_to():
    base = fw.zeros(2, 3)
    assert base.is_set_to(base) and base.view(2, 3).is_set_to(base)
    assert not base.t().is_set_to(base)                        # other strides
    assert not base[1].is_set_to(base[0])                      # other offset
    assert not base.clone().is_set_to(base)


def test_new_empty_strided():
    x = fw.ones(2, dtype=fw.float64)
    y = x.new_empty_strided((2, 3), (1, 2))
    assert y.shape == (2, 3) and y.stride() == (1, 2) and y.dtype == fw.float64


def test_map_():
    x = fw.tensor([1.0, 2.0, 3.0])
    assert x.map_(fw.tensor([10.0, 20.0, 30.0]), lambda a, b: a * b + 1) is x
    np.testing.assert_array_equal(x.numpy(), [11.0, 41.0, 91.0])
    x.map_(fw.tensor(2.0), lambda a, b: a - b)                 # broadcast
    np.testing.assert_array_equal(x.numpy(), [9.0, 39.0, 89.0])
    with pytest.raises(ShapeError, match="cannot be broadcast"):
        x.map_(fw.ones(2), lambda a, b: a)


def test_map_on_a_non_cpu_tensor_is_refused():
    with pytest.raises(DeviceError, match="CPU"):
        fw.ones(2, device="meta").map_(fw.ones(2), lambda a, b: a)


def test_interop_threads():
    before = fw.get_num_interop_threads()
    try:
        fw.set_num_interop_threads(3)
        assert fw.get_num_interop_threads() == 3
        with pytest.raises(ArgumentError, match="positive"):
            fw.set_num_interop_threads(0)
    finally:
        fw.set_num_interop_threads(before)
