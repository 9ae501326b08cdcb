"""Tensor creation, metadata, repr, interop (NumPy, DLPack, .to) and IEEE special values."""

import math
import pickle

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError


# -- creation -------------------------------------------------------------------------------
def test_tensor_infers_pytorch_dtypes_and_copies():
    assert fw.tensor([1, 2]).dtype is fw.int64
    assert fw.tensor([1.0, 2]).dtype is fw.float32
    assert fw.tensor([True]).dtype is fw.bool
    assert fw.tensor(np.zeros(2)).dtype is fw.float64  # NumPy arrays keep their dtype
    assert fw.tensor(np.zeros(2, np.int16)).dtype is fw.int16
    assert fw.tensor(3).shape == () and fw.tensor([]).shape == (0,)
    t = fw.tensor([[1, 2], [3, 4]], dtype=fw.float16)
    assert t.dtype is fw.float16 and t.shape == (2, 2)
    u = fw.tensor(t)
    u.fill_(0)
    assert t[0, 0].item() == 1
    assert fw.tensor([fw.tensor(1.0), fw.tensor(2.0)]).tolist() == [1.0, 2.0]
    assert fw.Tensor([1.0, 2.0]).tolist() == [1.0, 2.0]


def test_filled_creation_functions():
    assert fw.zeros(2, 3).tolist() == [[0.0] * 3] * 2 and fw.zeros((2, 3)).shape == (2, 3)
    assert fw.ones([2]).dtype is fw.float32
    assert fw.full((2,), 7).dtype is fw.int64 and fw.full((2,), 7.5).dtype is fw.float32
    assert fw.full((2,), True).dtype is fw.bool
    assert fw.empty(2, 3).shape == (2, 3)
    x = fw.ones(2, 3, dtype=fw.float64)
    for fn in (fw.zeros_like, fw.ones_like, fw.empty_like, fw.rand_like, fw.randn_like):
        y = fn(x)
        assert y.shape == x.shape and y.dtype is fw.float64
    assert fw.full_like(x, 3).tolist() == [[3.0] * 3] * 2
    assert fw.zeros(2, requires_grad=True).requires_grad
    assert fw.zeros(size=(2, 3)).shape == (2, 3) and fw.randn(size=[4]).shape == (4,)
    assert fw.ones(size=(1,)).shape == (1,) and fw.rand(size=(2, 2)).shape == (2, 2)


def test_ranges_and_eye():
    np.testing.assert_array_equal(fw.arange(5).numpy(), np.arange(5))
    assert fw.arange(5).dtype is fw.int64 and fw.arange(0, 1, 0.25).dtype is fw.float32
    np.testing.assert_allclose(fw.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(fw.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(fw.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(fw.eye(2, 3).numpy(), np.eye(2, 3))
    np.testing.assert_allclose(fw.logspace(0, 2, 3).numpy(), [1, 10, 100])


def test_random_functions_are_seeded_and_have_the_right_distribution():
    fw.manual_seed(123)
    a = fw.randn(10000)
    fw.manual_seed(123)
    b = fw.randn(10000)
    assert fw.equal(a, b)
    assert abs(a.mean().item()) < 0.05 and abs(a.std().item() - 1) < 0.05
    u = fw.rand(10000)
    assert 0 <= u.min().item() and u.max().item() < 1 and abs(u.mean().item() - 0.5) < 0.02
    r = fw.randint(3, 7, (1000,))
    assert r.dtype is fw.int64 and r.min().item() == 3 and r.max().item() == 6
    assert fw.randint(5, (3,)).max().item() < 5
    p = fw.randperm(20)
    assert sorted(p.tolist()) == list(range(20))
    n = fw.normal(fw.full((5000,), 3.0), fw.full((5000,), 0.5))
    assert abs(n.mean().item() - 3) < 0.05 and abs(n.std().item() - 0.5) < 0.05
    assert fw.normal(2.0, 1.0, size=(3,)).shape == (3,)
    g1, g2 = fw.Generator().manual_seed(7), fw.Generator().manual_seed(7)
    assert fw.equal(fw.rand(5, generator=g1), fw.rand(5, generator=g2))
    assert not fw.equal(fw.rand(5, generator=g1), fw.rand(5, generator=g2.manual_seed(8)))
    state = fw.get_rng_state()
    x = fw.rand(3)
    fw.set_rng_state(state)
    assert fw.equal(x, fw.rand(3))
    assert fw.rand(2, 3, dtype=fw.float64).dtype is fw.float64
    assert set(fw.bernoulli(fw.full((100,), 0.5)).tolist()) == {0.0, 1.0}


def test_in_place_random_fills():
    x = fw.empty(1000)
    x.uniform_(-2, 2)
    assert -2 <= x.min().item() and x.max().item() < 2
    x.normal_(5, 0.1)
    assert abs(x.mean().item() - 5) < 0.05


# -- metadata -------------------------------------------------------------------------------
def test_metadata():
    x = fw.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.size() == (2, 3, 4) and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24 and len(x) == 2
    assert x.dtype is fw.float32 and x.device == fw.device("cpu") and str(x.device) == "cpu"
    assert x.stride() == (12, 4, 1) and x.stride(0) == 12 and x.is_contiguous()
    assert x.element_size() == 4 and not x.requires_grad and x.grad is None
    assert x.is_leaf and x.grad_fn is None and x.is_floating_point()
    y = x.requires_grad_() * 2
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad


def test_repr_matches_pytorch_style():
    assert repr(fw.tensor([[1.0, -2.5], [10.0, 3.0]])) == \
        "tensor([[ 1.0000, -2.5000],\n        [10.0000,  3.0000]])"
    assert repr(fw.tensor([1, 2, 3])) == "tensor([1, 2, 3])"
    assert repr(fw.tensor(3.5)) == "tensor(3.5000)"
    assert repr(fw.tensor([True, False])) == "tensor([ True, False])"
    assert repr(fw.zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert repr(fw.tensor([1.0, 2.0], dtype=fw.float64)) == \
        "tensor([1., 2.], dtype=framework.float64)"
    assert repr(fw.tensor([1.5], requires_grad=True)) == "tensor([1.5000], requires_grad=True)"
    assert repr(fw.tensor([1.5], requires_grad=True) * 2) == \
        "tensor([3.], grad_fn=<MulBackward0>)"
    assert repr(fw.tensor([1e-3, 10.0])) == "tensor([1.0000e-03, 1.0000e+01])"
    assert repr(fw.tensor([math.nan, math.inf, 1.5])) == "tensor([   nan,    inf, 1.5000])"
    assert "..." in repr(fw.arange(5000))
    assert repr(fw.ones(2, device="meta")) == "tensor(..., device='meta', size=(2,))"


# -- interop --------------------------------------------------------------------------------
def test_numpy_item_tolist_array():
    x = fw.tensor([[1.5, 2.0]])
    assert isinstance(x.numpy(), np.ndarray) and x.numpy().dtype == np.float32
    assert np.asarray(x).shape == (1, 2) and np.asarray(x, dtype=np.float64).dtype == np.float64
    assert x[0, 1].item() == 2.0 and isinstance(fw.tensor(3).item(), int)
    assert x.tolist() == [[1.5, 2.0]] and fw.tensor(2.5).tolist() == 2.5
    assert float(fw.tensor(2.5)) == 2.5 and int(fw.tensor(7)) == 7
    assert [10, 20, 30][fw.tensor(1)] == 20
    assert bool(fw.tensor([0.0])) is False
    bf = fw.tensor([1.5]).bfloat16()
    assert bf.numpy().dtype.name == "bfloat16" and bf.item() == 1.5


def test_to_and_conversion_methods():
    x = fw.tensor([1.7, -2.2])
    assert x.to(fw.float64).dtype is fw.float64 and x.to("cpu") is x
    assert x.to(fw.float32) is x
    assert x.to(fw.zeros(1, dtype=fw.int32)).dtype is fw.int32
    assert x.to("cpu", fw.float16).dtype is fw.float16
    assert x.to(dtype=fw.bfloat16, device="cpu").dtype is fw.bfloat16
    for meth, dt in (("float", fw.float32), ("double", fw.float64), ("half", fw.float16),
                     ("bfloat16", fw.bfloat16), ("long", fw.int64), ("int", fw.int32),
                     ("bool", fw.bool), ("short", fw.int16), ("byte", fw.uint8),
                     ("char", fw.int8)):
        assert getattr(x, meth)().dtype is dt
    assert x.long().tolist() == [1, -2]  # truncation toward zero
    m = x.to("meta")
    assert m.device.type == "meta" and m.shape == (2,) and m.is_meta
    assert x.type_as(fw.ones(1, dtype=fw.float64)).dtype is fw.float64


def test_pickle_and_deepcopy():
    import copy
    x = fw.tensor([1.0, 2.0], requires_grad=True)
    y = pickle.loads(pickle.dumps(x))
    assert fw.equal(x.detach(), y.detach()) and y.requires_grad
    z = copy.deepcopy(x)
    assert z._data is not x._data and z.requires_grad


# -- IEEE special values --------------------------------------------------------------------
def test_nan_and_inf_propagate_per_ieee():
    z = fw.tensor([0.0, 1.0, -1.0])
    assert (z[1:] / 0).tolist() == [math.inf, -math.inf]
    assert math.isnan((z[:1] / 0).item())
    assert math.isnan(fw.tensor(-1.0).log().item()) and fw.tensor(0.0).log().item() == -math.inf
    assert math.isnan(fw.tensor(-1.0).sqrt().item())
    assert fw.tensor(1000.0).exp().item() == math.inf
    nan = fw.tensor([1.0, math.nan, 3.0])
    assert math.isnan(nan.sum().item()) and math.isnan(nan.max().item())
    assert math.isnan(nan.amin().item()) and nan.argmax().item() == 1
    assert math.isnan(fw.maximum(nan, fw.zeros(3))[1].item())
    assert math.isnan(nan.clamp(0, 2)[1].item()) and math.isnan(nan.relu()[1].item())
    assert math.isnan(fw.tensor([math.inf, -math.inf]).sum().item())
    assert (nan == nan).tolist() == [True, False, True] and (nan != nan)[1].item()
    assert fw.tensor(-0.0).item() == 0.0 and math.copysign(1, fw.tensor(-0.0).item()) < 0
    assert fw.tensor([math.inf]).sigmoid().item() == 1.0
    assert fw.tensor([-math.inf]).softmax(0).isnan().item()
    assert fw.tensor([1.0, -math.inf]).softmax(0).tolist() == [1.0, 0.0]
    h = fw.tensor([60000.0], dtype=fw.float16) * 2
    assert h.item() == math.inf


@pytest.mark.parametrize("dt", [fw.float16, fw.bfloat16, fw.float32, fw.float64])
def test_low_precision_arithmetic_stays_in_dtype(dt):
    x = fw.tensor([1.0, 2.0], dtype=dt)
    for y in (x + x, x * 2.5, x.exp(), x.sum(), x @ x, x.softmax(0), x.mean()):
        assert y.dtype is dt


def test_where_single_argument_and_empty_dim_list():
    c = fw.tensor([[True, False], [False, True]])
    rows, cols = fw.where(c)
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]
    x = fw.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.sum(dim=[]).item() == 10.0 and x.amax(dim=()).item() == 4.0


def test_to_copy_flag():
    x = fw.ones(2)
    y = x.to(fw.float32, copy=True)
    assert y is not x and not np.shares_memory(y.numpy(), x.numpy())
    assert x.to(fw.float32) is x


def test_format_and_contains():
    loss = fw.tensor(0.12345)
    assert f"{loss:.3f}" == "0.123" and f"{loss}" == repr(loss)
    assert f"{fw.ones(2)}" == "tensor([1., 1.])"
    assert 2.0 in fw.tensor([1.0, 2.0]) and 3 not in fw.tensor([1, 2])


@pytest.mark.parametrize("dt", [fw.float16, fw.bfloat16])
def test_low_precision_reductions_accumulate_in_float32(dt):
    x = fw.full((10000,), 0.1, dtype=dt)
    want = 10000 * float(x[0].item())
    assert abs(x.sum().item() - want) / want < 1e-2
    assert abs(x.cumsum(0)[-1].item() - want) / want < 1e-2
    assert abs(x.mean().item() - x[0].item()) < 1e-3


def test_half_mean_and_var_do_not_overflow():
    x = fw.ones(100000, dtype=fw.float16)
    assert x.mean().item() == 1.0 and x.var().item() == 0.0 and x.mean().dtype is fw.float16


def test_equality_with_none_or_a_string_falls_back_to_identity():
    x = fw.ones(2)
    assert (x == None) is False and (x != None) is True  # noqa: E711  (the point of the test)
    assert x in [None, "a", x] and (x == "a") is False
    assert (x == 1).tolist() == [True, True]


def test_reshape_and_view_take_the_size_by_keyword():
    """``x.reshape(shape=(...))`` (DiT / MAE's unpatchify) and ``x.view(size=...)``."""
    x = fw.arange(24.0)
    assert x.reshape(shape=(2, 3, 4)).shape == (2, 3, 4)
    assert fw.reshape(x, shape=(4, -1)).shape == (4, 6)
    assert x.view(size=[6, 4]).shape == (6, 4)
    np.testing.assert_array_equal(x.reshape(shape=(2, 12)).numpy(), x.numpy().reshape(2, 12))
    with pytest.raises(ArgumentError, match="multiple values for argument 'shape'"):
        x.reshape(2, 12, shape=(2, 12))
    with pytest.raises(ArgumentError, match="unexpected keyword argument 'size'"):
        x.reshape(size=(2, 12))


def test_split_method_takes_split_size_by_keyword():
    """``x.split(split_size=[d, d], dim=-1)`` (mamba-minimal): the method's argument is
    ``split_size``, the function's ``split_size_or_sections``, as in PyTorch."""
    x = fw.arange(12.0).reshape(2, 6)
    a, b = x.split(split_size=[2, 4], dim=-1)
    assert a.shape == (2, 2) and b.shape == (2, 4)
    np.testing.assert_array_equal(b.numpy(), x.numpy()[:, 2:])
    assert [t.shape for t in x.split(4, 1)] == [(2, 4), (2, 2)]
    assert [t.shape for t in fw.split(x, split_size_or_sections=3, dim=1)] == [(2, 3), (2, 3)]


def test_reductions_accept_numpy_axis_and_keepdims():
    """``probs.sum(axis=1, keepdims=True)`` (mamba-minimal's demo): PyTorch's argument parser
    takes NumPy's names for ``dim`` / ``keepdim`` in its native functions."""
    x = fw.tensor([[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]])
    np.testing.assert_array_equal(x.sum(axis=1, keepdims=True).numpy(), [[8.0], [7.0]])
    assert fw.mean(x, axis=0).tolist() == [2.5, 2.5, 2.5]
    assert x.max(axis=1, keepdims=True).indices.tolist() == [[1], [0]]
    assert x.argmin(axis=1).tolist() == [0, 1] and x.cumsum(axis=1)[0].tolist() == [1, 6, 8]
    assert fw.std(x, axis=1, keepdims=True).shape == (2, 1)
    with pytest.raises(ArgumentError, match="both dim= and its alias axis="):
        x.sum(dim=0, axis=1)
