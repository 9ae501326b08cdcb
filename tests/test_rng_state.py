"""Generator states are uint8 tensors, as in PyTorch: saved, cloned, compared, restored."""

import io

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError


def test_get_rng_state_is_a_byte_tensor_that_restores_the_stream():
    fw.manual_seed(3)
    state = fw.get_rng_state()
    assert state.dtype == fw.uint8 and state.shape == (48,) and state.device == fw.device("cpu")
    first = fw.randn(5)
    fw.set_rng_state(state)
    assert fw.equal(fw.randn(5), first)
    assert not fw.equal(fw.get_rng_state(), state)     # drawing moved the state on
    copy = state.clone()
    fw.set_rng_state(copy)
    assert fw.equal(fw.randn(5), first)


def test_the_state_survives_a_checkpoint_and_an_odd_buffered_draw():
    g = fw.Generator().manual_seed(11)
    g.numpy.integers(0, 2 ** 32, dtype=np.uint32)       # leaves a buffered 32-bit half
    buf = io.BytesIO()
    fw.save({"rng": g.get_state()}, buf)
    expected = fw.randint(0, 1000, (8,), generator=g)
    buf.seek(0)
    h = fw.Generator()
    h.set_state(fw.load(buf)["rng"])
    assert fw.equal(fw.randint(0, 1000, (8,), generator=h), expected)


def test_the_old_dict_state_is_still_accepted():
    g = fw.Generator().manual_seed(5)
    legacy = dict(g.numpy.bit_generator.state)
    x = fw.rand(4, generator=g)
    g.set_state(legacy)
    assert fw.equal(fw.rand(4, generator=g), x)


def test_a_wrong_state_is_a_clear_error():
    with pytest.raises(ArgumentError, match="48-byte uint8 tensor"):
        fw.set_rng_state(fw.zeros(48))
    with pytest.raises(ArgumentError, match="48-byte uint8 tensor"):
        fw.set_rng_state(fw.zeros(16, dtype=fw.uint8))
