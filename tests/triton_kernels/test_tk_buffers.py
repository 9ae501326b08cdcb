"""HostBuffer protocol and the launcher view helpers."""

import types

import numpy as np
import pytest
from _tk_utils import BF16

from triton_kernels import _common
from triton_kernels.buffers import HostBuffer, host_empty, interpreter_enabled, strides_of


def test_host_buffer_protocol():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    view = HostBuffer(base[1:, ::2])
    assert view.shape == (3, 3) and view.stride() == (6, 2) and view.stride(1) == 2
    assert view.data_ptr() == base.ctypes.data + 6 * 4
    assert view.untyped_storage() is view and view.cpu() is view and view.new_empty(0) is view
    assert view.set_(view, 0, (3, 3), (6, 2)) is view and view.storage_offset() == 0
    view.copy_(np.ones((3, 3), np.float32))
    assert base[1:, ::2].sum() == 9 and view.size() == (3, 3)
    assert str(HostBuffer.empty((2,), BF16).dtype) == "bfloat16"
    assert host_empty((2, 3), np.int64).numpy().dtype == np.int64
    assert np.all(HostBuffer.zeros((2,), np.float16).numpy() == 0)
    assert interpreter_enabled()


def test_strides_fallback_and_views():
    arr = np.zeros((5, 7), np.float16)
    numpy_like = types.SimpleNamespace(shape=arr.shape, dtype=arr.dtype, strides=arr.strides,
                                       data_ptr=lambda: 0)
    assert strides_of(numpy_like) == (7, 1)
    _common.check_buffer("x", numpy_like)
    assert _common.rows_view("x", HostBuffer(np.zeros((2, 3, 4)))) == (6, 4, 4, 1)
    assert _common.rows_view("x", HostBuffer(np.zeros((4, 3)).T)) == (3, 4, 1, 3)
    with pytest.raises(ValueError, match="cannot be collapsed"):
        _common.rows_view("x", HostBuffer(np.zeros((2, 3, 4)).transpose(1, 0, 2)))
    assert _common.flat_view("i", HostBuffer(np.zeros((3, 4))[:, 1])) == (3, 4)
    with pytest.raises(TypeError):
        _common.check_buffer("x", np.zeros(3))  # plain arrays have no data_ptr
    g = _common.row_blocks(8, 100, interpreter=False)
    assert g.single_block and g.block_n == 128
    assert not _common.row_blocks(8, 70000, interpreter=False).single_block
