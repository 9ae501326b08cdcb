"""A sparse tensor as a module buffer (whisper's ``alignment_heads``: a bool mask kept as
``mask.to_sparse()``, non-persistent)."""

import numpy as np
import pytest

import framework as fw
from framework import nn


def _mask():
    return fw.tensor([[False, True], [True, True]])


def test_register_and_assign_sparse_buffer():
    m = nn.Linear(2, 2)
    m.register_buffer("heads", _mask().to_sparse(), persistent=False)
    assert m.heads.is_sparse and "heads" not in m.state_dict()
    assert [n for n, _ in m.named_buffers()] == ["heads"]
    m.heads = fw.tensor([[True, False], [False, False]]).to_sparse()  # re-assign the buffer
    np.testing.assert_array_equal(m.heads.to_dense().numpy(), [[1, 0], [0, 0]])
    with pytest.raises(TypeError, match="cannot assign 'list' as buffer 'heads'"):
        m.heads = [1, 2]
    with pytest.raises(TypeError, match="cannot assign 'str' object to buffer"):
        m.register_buffer("other", "x")


def test_sparse_buffers_follow_module_casts():
    m = nn.Linear(2, 2)
    m.register_buffer("heads", _mask().to_sparse())
    m.register_buffer("scale", fw.tensor([[0.0, 2.0], [0.5, 0.0]]).to_sparse())
    m.double()
    assert m.heads.dtype == fw.bool and m.scale.dtype == fw.float64  # floats only
    assert m.scale.is_sparse and m.weight.dtype == fw.float64
    np.testing.assert_array_equal(m.scale.to_dense().numpy(), [[0, 2], [0.5, 0]])
    sd = m.state_dict()
    assert sd["scale"].is_sparse


def test_persistent_sparse_buffer_loads_from_a_state_dict():
    src = nn.Linear(2, 2)
    src.register_buffer("scale", fw.tensor([[0.0, 2.0], [0.5, 0.0]]).to_sparse())
    dst = nn.Linear(2, 2).double()
    dst.register_buffer("scale", fw.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=fw.float64).to_sparse())
    dst.load_state_dict(src.state_dict())
    assert dst.scale.is_sparse and dst.scale.dtype == fw.float64  # the module's dtype kept
    np.testing.assert_array_equal(dst.scale.to_dense().numpy(), [[0, 2], [0.5, 0]])
    src.scale.values().mul_(3)  # a copy, not the checkpoint's tensor
    assert float(dst.scale.to_dense()[0, 1]) == 2.0
    dense = nn.Linear(2, 2)
    dense.register_buffer("scale", fw.zeros(2, 2))
    with pytest.raises(TypeError, match="must be a Tensor or a NumPy array, got SparseTensor"):
        dense.load_state_dict(src.state_dict())
