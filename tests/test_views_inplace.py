"""Views share storage with their base; in-place ops write through and bump the version
counter; NumPy interop shares memory where PyTorch does."""

import numpy as np
import pytest

import framework as fw
from framework.errors import ShapeError


def _base():
    return fw.arange(12, dtype=fw.float32).reshape(3, 4)


@pytest.mark.parametrize("make_view,write,check", [
    (lambda x: x[1], lambda v: v.fill_(-1), lambda x: (x[1] == -1).all()),
    (lambda x: x[:, 1:3], lambda v: v.zero_(), lambda x: (x[:, 1:3] == 0).all()),
    (lambda x: x[::2, ::3], lambda v: v.add_(100), lambda x: x[2, 3].item() == 111),
    (lambda x: x.T, lambda v: v.__setitem__((0, 1), 7.0), lambda x: x[1, 0].item() == 7),
    (lambda x: x.transpose(0, 1), lambda v: v.mul_(2), lambda x: x[2, 3].item() == 22),
    (lambda x: x.reshape(12), lambda v: v.__setitem__(5, 50.0), lambda x: x[1, 1].item() == 50),
    (lambda x: x.view(2, 6), lambda v: v[1].fill_(3), lambda x: (x[1:, :].reshape(-1)[2:] == 3)
     .all()),
    (lambda x: x.unsqueeze(0), lambda v: v[0, 0].copy_(fw.ones(4)),
     lambda x: (x[0] == 1).all()),
    (lambda x: x.flatten(), lambda v: v.clamp_(max=2), lambda x: x.max().item() == 2),
    (lambda x: x.narrow(1, 2, 2), lambda v: v.neg_(), lambda x: x[0, 3].item() == -3),
    (lambda x: x.select(1, -1), lambda v: v.fill_(9), lambda x: (x[:, 3] == 9).all()),
    (lambda x: x.split(2, 1)[1], lambda v: v.fill_(8), lambda x: (x[:, 2:] == 8).all()),
    (lambda x: x.unbind(0)[2], lambda v: v.fill_(4), lambda x: (x[2] == 4).all()),
    (lambda x: x.permute(1, 0)[1:], lambda v: v.fill_(0), lambda x: (x[:, 1:] == 0).all()),
    (lambda x: x[..., None][:, :, 0], lambda v: v.sub_(1), lambda x: x[0, 0].item() == -1),
    (lambda x: x.detach(), lambda v: v.fill_(5), lambda x: (x == 5).all()),
])
def test_writes_through_views_reach_the_base(make_view, write, check):
    x = _base()
    v = make_view(x)
    v0 = x._version
    write(v)
    assert bool(check(x)), x
    assert x._version > v0 and v._version == x._version


def test_reshape_of_non_contiguous_copies_and_view_refuses():
    x = _base()
    y = x.T.reshape(12)
    y[0] = 100.0
    assert x[0, 0].item() == 0
    with pytest.raises(ShapeError, match="view"):
        x.T.view(12)


def test_version_counter_bumps_on_every_in_place_op():
    x = fw.zeros(3)
    versions = [x._version]
    for op in (lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.__setitem__(0, 5.0),
               lambda t: t.copy_(fw.ones(3)), lambda t: t.fill_(2), lambda t: t.zero_(),
               lambda t: t.__iadd__(1), lambda t: t.clamp_(0, 1), lambda t: t.uniform_()):
        op(x)
        versions.append(x._version)
    assert versions == sorted(set(versions)), versions
    y = x + 1  # out of place: no bump
    assert x._version == versions[-1] and y._version == 0


def test_augmented_assignment_keeps_identity_and_storage():
    x = fw.ones(2, 2)
    data, ident = x._data, id(x)
    x += 1
    x *= fw.tensor([1.0, 3.0])
    x -= 1
    x /= 2
    assert id(x) == ident and x._data is data
    np.testing.assert_allclose(x.numpy(), [[0.5, 2.5], [0.5, 2.5]])


def test_copy_broadcasts_and_casts():
    x = fw.zeros(2, 3, dtype=fw.int64)
    x.copy_(fw.tensor([1.7, 2.2, -3.9]))
    np.testing.assert_array_equal(x.numpy(), [[1, 2, -3]] * 2)
    x.fill_(fw.tensor(4))
    assert (x == 4).all()


def test_in_place_on_expanded_tensor_is_refused():
    x = fw.ones(1, 3).expand(2, 3)
    with pytest.raises(ShapeError, match="single memory location"):
        x.add_(1)


def test_from_numpy_shares_memory_both_ways():
    a = np.zeros((2, 3), np.float32)
    t = fw.from_numpy(a)
    a[0, 1] = 5
    assert t[0, 1].item() == 5
    t[1, 2] = 7.0
    assert a[1, 2] == 7
    t.add_(1)
    assert a[0, 0] == 1
    assert np.shares_memory(t.numpy(), a)
    assert np.shares_memory(np.asarray(t), a)
    assert fw.as_tensor(a)._data is a or np.shares_memory(fw.as_tensor(a).numpy(), a)
    c = fw.tensor(a)
    c.fill_(0)
    assert a[0, 0] == 1  # fw.tensor copies


def test_from_numpy_keeps_strides():
    a = np.arange(12, dtype=np.float64).reshape(3, 4).T
    t = fw.from_numpy(a)
    assert t.shape == (4, 3) and not t.is_contiguous() and t.stride() == (1, 4)
    np.testing.assert_array_equal(t.numpy(), a)


def test_dlpack_round_trip_shares_memory():
    a = np.arange(6, dtype=np.float32)
    t = fw.from_dlpack(a)
    a[0] = 42
    assert t[0].item() == 42
    b = np.from_dlpack(t)
    assert np.shares_memory(a, b)
    assert t.__dlpack_device__() == a.__dlpack_device__()


def test_strides_contiguity_and_offsets():
    x = _base()
    assert x.stride() == (4, 1) and x.is_contiguous() and x.storage_offset() == 0
    t = x.T
    assert t.stride() == (1, 4) and not t.is_contiguous()
    s = x[1:, 2:]
    assert s.storage_offset() == 6 and s.stride() == (4, 1)
    c = t.contiguous()
    assert c.is_contiguous() and c._data is not x._data
    assert x.contiguous() is x


def test_views_share_base_and_clone_does_not():
    x = _base()
    root = x._base if x._base is not None else x  # x itself is a view of arange's result
    v = x[1:]
    assert v._base is root and v.T._base is root
    c = v.clone()
    c.fill_(0)
    assert x[1, 0].item() == 4
    assert c._version == 1 and x._version == 0


def test_view_dtype_reinterprets_bytes():
    x = fw.tensor([1.0, 2.0])
    y = x.view(fw.int32)
    np.testing.assert_array_equal(y.numpy(), np.array([1.0, 2.0], np.float32).view(np.int32))
    y[0] = 0
    assert x[0].item() == 0.0
    with pytest.raises(NotImplementedError, match="element sizes"):
        x.view(fw.float64)


_IDX = fw.tensor([[0, 1, 2], [2, 0, 1]])
_INPLACE_ARGS = {  # name -> extra args (the tensor itself comes first)
    "clamp": ((), {"min": -0.5, "max": 0.5}), "clip": ((-0.5, 0.5), {}),
    "clamp_min": ((0.1,), {}), "clamp_max": ((0.1,), {}), "lerp": ((fw.ones(2, 3), 0.3), {}),
    "addcmul": ((fw.ones(2, 3), fw.full((3,), 2.0)), {"value": 0.5}),
    "addcdiv": ((fw.ones(2, 3), fw.full((3,), 2.0)), {}),
    "masked_fill": ((fw.tensor([True, False, True]), 9.0), {}),
    "index_add": ((0, fw.tensor([1, 1]), fw.ones(2, 3)), {}),
    "scatter": ((1, _IDX, fw.zeros(2, 3)), {}), "scatter_add": ((1, _IDX, fw.ones(2, 3)), {}),
    "scatter_reduce": ((1, _IDX, fw.ones(2, 3), "amax"), {}),
    "hypot": ((fw.full((3,), 2.0),), {}),
    "index_copy": ((1, fw.tensor([2, 0]), fw.ones(2, 2)), {}),
    "index_fill": ((0, fw.tensor([1]), -1.0), {}),
    "index_reduce": ((1, fw.tensor([0, 2]), fw.full((2, 2), 2.0), "prod"), {}),
    "index_put": (((fw.tensor([0, 1]), fw.tensor([2, 0])), fw.tensor(5.0)), {}),
    "tril": ((), {}), "triu": ((1,), {}), "nan_to_num": ((), {}),
    "pow": ((2,), {}), "fmod": ((0.3,), {}), "remainder": ((0.3,), {}),
    "floor_divide": ((0.3,), {}), "maximum": ((fw.zeros(3),), {}),
    "minimum": ((fw.zeros(3),), {}), "add": ((1.5,), {}), "sub": ((fw.ones(3),), {}),
    "mul": ((2.0,), {}), "div": ((4.0,), {}),
    "addmm": ((fw.ones(2, 4), fw.full((4, 3), 0.5)), {"beta": 0.5, "alpha": 2}),
    "addmv": ((fw.ones(6, 2), fw.tensor([0.5, -1.0])), {"beta": 2}),
    "addr": ((fw.tensor([1.0, -2.0]), fw.tensor([0.5, 1.5, -1.0])), {"alpha": 3}),
    "addbmm": ((fw.ones(2, 2, 4), fw.full((2, 4, 3), 0.25)), {"beta": -1}),
    "baddbmm": ((fw.ones(1, 2, 4), fw.full((1, 4, 3), 0.25)), {"alpha": 0.5}),
    "arctan2": ((fw.tensor([-1.0, 2.0, 0.5]),), {}),
    "copysign": ((fw.tensor([-1.0, 1.0, -0.0]),), {}),
    "heaviside": ((fw.tensor([0.5, 0.5, 0.5]),), {}),
    "float_power": ((3,), {}), "ldexp": ((fw.tensor([1, -2, 3]),), {}),
    "nextafter": ((fw.zeros(3),), {}), "renorm": ((2, 0, 1.0), {}),
    "gcd": ((fw.tensor([6, 4, 0]),), {}), "lcm": ((fw.tensor([6, 4, 0]),), {}),
    "masked_scatter": ((fw.tensor([True, False, True]), fw.arange(6.0)), {}),
    "put": ((fw.tensor([0, -2]), fw.tensor([9.0, -9.0])), {}),
    "bitwise_left_shift": ((2,), {}), "bitwise_right_shift": ((fw.tensor([1, 2, 70]),), {}),
    "mvlgamma": ((2,), {}),
    "igamma": ((fw.full((3,), 1.5),), {}), "igammac": ((fw.full((3,), 1.5),), {}),
    "xlogy": ((fw.full((3,), 2.0),), {}),
}
_POSITIVE = {"log", "sqrt", "rsqrt", "log1p", "log2"}
# name -> the base tensor where the float32 (2, 3) one cannot be updated in place:
# integer-only ops, float_power_ (PyTorch requires a float64 base), a batched or 1-D result
_INPLACE_BASE = {
    "gcd": lambda b: fw.tensor([[4, -6, 9], [0, 12, -15]]),
    "lcm": lambda b: fw.tensor([[4, -6, 9], [0, 12, -15]]),
    "float_power": lambda b: b.double(),
    "baddbmm": lambda b: b.reshape(1, 2, 3),
    "addmv": lambda b: b.reshape(6),
    "bitwise_left_shift": lambda b: fw.tensor([[1, -6, 9], [0, 12, -15]]),
    "bitwise_right_shift": lambda b: fw.tensor([[1, -6, 9], [0, 12, -15]]),
    "mvlgamma": lambda b: b.abs() + 1,
    "igamma": lambda b: b.abs(), "igammac": lambda b: b.abs(),
}


@pytest.mark.parametrize("name", sorted(
    n[:-1] for n in dir(fw.Tensor) if n.endswith("_") and not n.startswith("_") and
    hasattr(fw.Tensor, n[:-1]) and n not in ("requires_grad_", "detach_", "zero_", "fill_",
                                             "copy_", "uniform_", "normal_", "bernoulli_",
                                             "exponential_", "bitwise_not_",
                                             "logical_not_",
                                             # layout changes: tests/test_inplace_views.py
                                             "unsqueeze_", "squeeze_", "transpose_", "t_",
                                             "swapdims_", "swapaxes_")))
def test_every_in_place_method_matches_its_function(name):
    base = fw.tensor([[0.25, -1.5, 2.0], [0.75, 1.25, -0.5]])
    if name in _POSITIVE:
        base = base.abs()
    base = _INPLACE_BASE.get(name, lambda b: b)(base)
    args, kwargs = _INPLACE_ARGS.get(name, ((), {}))
    want = getattr(base, name)(*args, **kwargs)
    x = base.clone()
    data = x._data
    out = getattr(x, name + "_")(*args, **kwargs)
    assert out is x and x._data is data and x._version == 1
    np.testing.assert_allclose(x.numpy(), want.numpy(), equal_nan=True)
    bits = fw.tensor([1, 6, 3])
    assert fw.equal(bits.clone().bitwise_not_(), ~bits)
    assert fw.equal(fw.tensor([True, False]).logical_not_(), fw.tensor([False, True]))


class _Recorder:
    """The tracer protocol of docs/internals.md, recording what it is told."""

    def __init__(self):
        self.ops, self.mutations, self.aliases, self.breaks = [], [], [], []

    def record(self, op, args, attrs, outs):
        self.ops.append(op.name)

    def mutate(self, target, value):
        self.mutations.append((target, value))

    def alias(self, src, dst):
        self.aliases.append((src, dst))

    def graph_break(self, what):
        self.breaks.append(what)


def test_in_place_ops_and_leaving_the_framework_are_reported_to_the_tracer():
    from framework._state import tls
    rec = _Recorder()
    x = fw.ones(3, requires_grad=True)
    y = x * 2
    tls.tracer = rec
    try:
        y.sin_()
        y[0] = 5.0
        y.detach()  # with grad enabled: a stop-gradient op the trace records
        with fw.no_grad():
            d = y.detach()  # no gradient to stop: an alias of y
        y.sum().item()
        repr(y)
    finally:
        tls.tracer = None
    assert [t for t, _ in rec.mutations] == [y, y]
    assert rec.aliases == [(y, d)] and "detach" in rec.ops
    assert any("item" in b for b in rec.breaks) and any("print" in b for b in rec.breaks)
    # the copies that keep sin's input for backward are not part of the user's program
    assert rec.ops.count("clone") == 0 and "sin" in rec.ops and "index_put" in rec.ops


def test_setitem_mixing_ints_and_index_tensors_uses_pytorch_layout():
    # PyTorch selects with the int first: x[2, :, idx] has shape (4, 2), not NumPy's (2, 4).
    x = fw.zeros(3, 4, 5)
    idx = fw.tensor([0, 3])
    value = fw.arange(8.0).reshape(4, 2)
    assert x[2, :, idx].shape == (4, 2)
    x[2, :, idx] = value
    ref = np.zeros((3, 4, 5), np.float32)
    ref[2][:, [0, 3]] = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(x.numpy(), ref)
    base = fw.zeros(3, 4, 5, requires_grad=True)
    w = fw.ones(4, 2, requires_grad=True)
    y = base * 1
    y[2, :, idx] = w * 3
    y.sum().backward()
    assert base.grad.sum().item() == 60 - 8 and w.grad.sum().item() == 24


def test_inplace_on_a_view_of_a_non_leaf_flows_gradients_like_pytorch():
    x = fw.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = x * 1
    y[1:3].mul_(2)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy() * [1, 4, 4, 1])

    def f(a):
        y = a.sin() * 1
        yt = y.t()
        yt[0].zero_()
        yt[1:].mul_(yt[1:].clone())
        return y
    assert fw.autograd.gradcheck(f, (fw.randn(2, 3, dtype=fw.float64, requires_grad=True),))

    def g(w):  # the written value requires grad, the base does not
        z = fw.zeros(2, 3, dtype=fw.float64)
        z[:, 1].copy_(w)
        z.t()[2].add_(w * 3)
        return z * z
    assert fw.autograd.gradcheck(g, (fw.randn(2, dtype=fw.float64, requires_grad=True),))


def test_views_taken_before_an_inplace_update_see_the_new_graph():
    x = fw.ones(3, requires_grad=True)
    y = x * 1
    v = y[0:2]
    y.mul_(2)  # through the base
    v.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 0.0]
    x.grad = None
    y = x * 1
    v, w = y[0:2], y[1:3]
    v.mul_(2)  # through a sibling view
    w.mul_(3)
    (y * fw.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [2.0, 60.0, 300.0]


def test_inplace_on_a_view_of_a_leaf_that_requires_grad_is_refused():
    from framework.errors import AutogradError
    x = fw.ones(3, requires_grad=True)
    with pytest.raises(AutogradError, match="view of a leaf Variable"):
        x[1:].mul_(2)


def test_indexing_ops_do_not_pin_their_input_or_value_versions():
    """index/index_put/gather/scatter VJPs read only the indices (as in PyTorch), so later
    in-place updates of the indexed tensor or the written value are fine."""
    def f(a):
        x = a * 1
        x[:, :2] *= 2
        y = fw.zeros(2, 4, dtype=fw.float64)
        y[:, 0] = x[:, 1]  # index_put with a view of x as the value
        g = x.gather(1, fw.tensor([[0], [3]]))
        s = fw.zeros(2, 4, dtype=fw.float64).scatter(1, fw.tensor([[1], [2]]), x[:, :1])
        picked = x[fw.tensor([1, 0])]
        h = fw.nn.functional.relu(x, inplace=True)  # x changes after all of the above
        return (y * h).sum(1) + g.sum(1) + s.sum(1) + picked.sum(1)
    assert fw.autograd.gradcheck(f, (fw.randn(2, 4, dtype=fw.float64, requires_grad=True),))
