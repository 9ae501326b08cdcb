"""PyTorch API gaps filled in framework/ops/torch_gaps.py and nn: gradient (vs
numpy.gradient), broadcast_shapes, ger, poisson (seeding, generators, moments, zero
gradient), can_cast, empty_strided, asarray / frombuffer (memory sharing and errors),
InstanceNorm3d and AdaptiveLogSoftmaxWithLoss (vs a NumPy reference). Values, dtypes and
gradients of gradient/ger are also in the op database (tests/opinfo_torch_gaps.py)."""

import array
import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.autograd import gradcheck


def _np(t):
    return t.detach().numpy()


# -- gradient -------------------------------------------------------------------------------
@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_matches_numpy(edge_order):
    g = np.random.default_rng(0)
    x = g.standard_normal((4, 5, 6))
    got = fw.gradient(fw.tensor(x), edge_order=edge_order)
    want = np.gradient(x, edge_order=edge_order)
    assert isinstance(got, tuple) and len(got) == 3
    for a, b in zip(got, want):
        np.testing.assert_allclose(_np(a), b, rtol=1e-12, atol=1e-12)
    got = fw.gradient(fw.tensor(x), spacing=[0.5, 2.0], dim=(2, 0), edge_order=edge_order)
    want = np.gradient(x, 0.5, 2.0, axis=(2, 0), edge_order=edge_order)
    for a, b in zip(got, want):
        np.testing.assert_allclose(_np(a), b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_non_uniform_coordinates(edge_order):
    g = np.random.default_rng(1)
    x = g.standard_normal((3, 7))
    cx = np.cumsum(g.uniform(0.1, 1.0, 7))
    cy = np.array([0.0, 0.3, 1.5])
    got = fw.gradient(fw.tensor(x), spacing=[fw.tensor(cy), fw.tensor(cx)],
                      edge_order=edge_order)
    want = np.gradient(x, cy, cx, edge_order=edge_order)
    for a, b in zip(got, want):
        np.testing.assert_allclose(_np(a), b, rtol=1e-11, atol=1e-11)
    # second-order exact on a quadratic, on a non-uniform grid
    (d,) = fw.gradient(fw.tensor(cx ** 2), spacing=(fw.tensor(cx),), edge_order=2)
    np.testing.assert_allclose(_np(d), 2 * cx, rtol=1e-10)


def test_gradient_dtypes_and_autograd():
    (d,) = fw.gradient(fw.tensor([1, 4, 9, 16]))
    assert d.dtype is fw.float32 and d.tolist() == [3.0, 4.0, 6.0, 7.0]
    (d,) = fw.gradient(fw.tensor([1.0, 2.0], dtype=fw.float64), dim=0)
    assert d.dtype is fw.float64 and d.tolist() == [1.0, 1.0]
    x = fw.tensor(np.random.default_rng(2).standard_normal((3, 4)), requires_grad=True)
    c = fw.tensor([0.0, 0.5, 1.5, 1.75], dtype=fw.float64, requires_grad=True)
    assert gradcheck(lambda a, b: fw.gradient(a, spacing=[b], dim=1, edge_order=2)[0], (x, c))
    assert fw.gradient(fw.tensor(2.0)) == ()


def test_gradient_errors():
    x = fw.randn(3, 4)
    with pytest.raises(fw.ArgumentError, match="edge_order=1 and edge_order=2"):
        fw.gradient(x, edge_order=3)
    with pytest.raises(fw.ShapeError, match="at least edge_order\\+1 = 3.*size 2"):
        fw.gradient(fw.randn(2, 4), edge_order=2)
    with pytest.raises(fw.ArgumentError, match="spacing argument of length 2 and a dim "
                                               "argument of length 1"):
        fw.gradient(x, spacing=[1.0, 2.0], dim=0)
    with pytest.raises(fw.ArgumentError, match="input.dim\\(\\) = 2.*length 3"):
        fw.gradient(x, spacing=[1.0, 2.0, 3.0])
    with pytest.raises(fw.ArgumentError, match="multiple times"):
        fw.gradient(x, dim=[1, -1])
    with pytest.raises(fw.ArgumentError, match="out of range"):
        fw.gradient(x, dim=2)
    with pytest.raises(fw.ShapeError, match="coordinates for dim 1 must be a 1-D tensor of "
                                            "size 4"):
        fw.gradient(x, spacing=[fw.arange(3.0)], dim=1)
    with pytest.raises(TypeError, match="wrap it in a list"):
        fw.gradient(x, spacing=fw.arange(4.0), dim=1)
    with pytest.raises(fw.ShapeError, match="0-d input"):
        fw.gradient(fw.tensor(1.0), dim=0)
    with pytest.raises(fw.DTypeError, match="uint8"):
        fw.gradient(fw.tensor([1, 2, 3], dtype=fw.uint8))
    with pytest.raises(fw.DTypeError, match="bool"):
        fw.gradient(fw.tensor([True, False, True]))


# -- broadcast_shapes, ger, can_cast ----------------------------------------------------------
def test_broadcast_shapes():
    out = fw.broadcast_shapes((2, 1), (3,), 1, fw.Size([1, 1, 3]))
    assert isinstance(out, fw.Size) and out == (1, 2, 3)
    assert fw.broadcast_shapes() == () and fw.broadcast_shapes((0, 1), (4,)) == (0, 4)
    assert fw.broadcast_shapes(5, [1]) == (5,)
    with pytest.raises(fw.ShapeError, match=r"shapes \[2, 3\], \[4\] cannot be broadcast.*"
                                            r"size 3 vs 4 at dim -1"):
        fw.broadcast_shapes((2, 3), (4,))
    with pytest.raises(fw.ArgumentError, match="negative dimension -1"):
        fw.broadcast_shapes((2, -1))
    with pytest.raises(TypeError, match="shapes of ints"):
        fw.broadcast_shapes((2, 1.5))


def test_ger_is_outer():
    a, b = fw.tensor([1.0, 2.0]), fw.tensor([3.0, 4.0, 5.0])
    assert fw.ger(a, b).tolist() == np.outer([1, 2], [3, 4, 5]).tolist()
    assert a.ger(b).tolist() == fw.outer(a, b).tolist()
    with pytest.raises(fw.ShapeError, match="ger\\(\\): expected 1-D argument vec2, but got "
                                            "2-D"):
        fw.ger(a, fw.ones(2, 2))


def test_can_cast_follows_torch_rules():
    floats, ints = (fw.float16, fw.bfloat16, fw.float32, fw.float64), \
        (fw.uint8, fw.int8, fw.int16, fw.int32, fw.int64)
    for f in floats:
        assert all(fw.can_cast(f, g) for g in floats)
        assert not any(fw.can_cast(f, i) for i in ints) and not fw.can_cast(f, fw.bool)
    for i in ints:
        assert all(fw.can_cast(i, t) for t in floats + ints)  # narrowing included
        assert not fw.can_cast(i, fw.bool)
    assert all(fw.can_cast(fw.bool, t) for t in floats + ints + (fw.bool,))
    with pytest.raises(TypeError, match="argument 'to' must be a dtype"):
        fw.can_cast(fw.float32, "int32")


# -- poisson ----------------------------------------------------------------------------------
def test_poisson_moments_seeding_and_generator():
    rates = fw.tensor([0.0, 0.5, 3.0, 15.0, 120.0], dtype=fw.float64)
    fw.manual_seed(123)
    s = fw.poisson(rates.expand(20000, 5))
    assert s.dtype is fw.float64 and s.shape == (20000, 5)
    a = _np(s)
    assert (a >= 0).all() and (a == np.round(a)).all() and (a[:, 0] == 0).all()
    lam = np.array([0.5, 3.0, 15.0, 120.0])
    np.testing.assert_allclose(a[:, 1:].mean(0), lam, rtol=0.05)
    np.testing.assert_allclose(a[:, 1:].var(0), lam, rtol=0.1)
    fw.manual_seed(123)
    assert np.array_equal(_np(fw.poisson(rates.expand(20000, 5))), a)
    g1, g2 = fw.Generator().manual_seed(7), fw.Generator().manual_seed(7)
    state = fw.get_rng_state()
    x1 = fw.poisson(fw.full((50,), 4.0), generator=g1)
    assert fw.equal(fw.get_rng_state(), state)  # the default stream was not used
    assert x1.dtype is fw.float32
    assert fw.equal(x1, fw.poisson(fw.full((50,), 4.0), generator=g2))
    assert not fw.equal(x1, fw.poisson(fw.full((50,), 4.0), generator=g1))


def test_poisson_gradient_is_zero_and_errors():
    r = fw.tensor([1.0, 5.0, 30.0], requires_grad=True)
    s = fw.poisson(r)
    assert s.requires_grad
    (s * 3).sum().backward()
    assert r.grad.tolist() == [0.0, 0.0, 0.0]
    with fw.no_grad():
        assert not fw.poisson(r).requires_grad
    with pytest.raises(fw.ArgumentError, match="non-negative"):
        fw.poisson(fw.tensor([1.0, -0.5]))
    with pytest.raises(fw.ArgumentError, match="non-negative"):
        fw.poisson(fw.tensor([float("nan")]))
    with pytest.raises(fw.DTypeError, match="floating-point rate.*int64"):
        fw.poisson(fw.tensor([1, 2]))
    assert fw.poisson(fw.zeros(0, 3)).shape == (0, 3)


# -- empty_strided ------------------------------------------------------------------------------
def test_empty_strided_honours_strides():
    t = fw.empty_strided((2, 3), (1, 2))
    assert t.shape == (2, 3) and t.stride() == (1, 2) and not t.is_contiguous()
    assert t.dtype is fw.float32 and (_np(t) == 0).all()
    t.copy_(fw.arange(6.0).reshape(2, 3))
    assert t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert (t + 1).tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert t.t().is_contiguous()  # column-major: the transpose is row-major
    z = fw.empty_strided((3, 4), (0, 1), dtype=fw.int64)  # rows overlap
    assert z.stride() == (0, 1) and z.dtype is fw.int64
    c = fw.empty_strided((2, 3), (3, 1), dtype=fw.float64, requires_grad=True)
    assert c.is_contiguous() and c.requires_grad and c.is_leaf
    assert fw.empty_strided((0, 4), (4, 1)).shape == (0, 4)
    assert fw.empty_strided((2, 2), (1, 2), device="meta").device.type == "meta"
    with pytest.raises(fw.ArgumentError, match="mismatch in length of strides and shape"):
        fw.empty_strided((2, 3), (1,))
    with pytest.raises(fw.ArgumentError, match="negative stride -1"):
        fw.empty_strided((2, 3), (-1, 2))
    with pytest.raises(fw.ArgumentError, match="negative size -2"):
        fw.empty_strided((-2, 3), (3, 1))


# -- asarray ----------------------------------------------------------------------------------
def test_asarray_shares_numpy_memory():
    a = np.arange(6.0).reshape(2, 3)
    t = fw.asarray(a)
    assert t.dtype is fw.float64
    t[0, 0] = 10.0
    a[1, 2] = -1.0
    assert a[0, 0] == 10.0 and t[1, 2].item() == -1.0
    s = fw.asarray(a[:, ::2])  # a non-contiguous view is shared too
    s[0, 1] = 7.0
    assert a[0, 2] == 7.0
    c = fw.asarray(a, copy=True)
    c[0, 0] = 0.0
    assert a[0, 0] == 10.0
    f = fw.asarray(a, dtype=fw.float32)  # a dtype change needs a copy
    f[0, 0] = 1.0
    assert f.dtype is fw.float32 and a[0, 0] == 10.0
    with pytest.raises(fw.ArgumentError, match="can't alias tensor with dtype float64 into "
                                               "dtype float32"):
        fw.asarray(a, dtype=fw.float32, copy=False)
    with pytest.raises(fw.DTypeError, match="asarray"):
        fw.asarray(np.zeros(2, np.uint32))


def test_asarray_tensors_sequences_and_buffers():
    x = fw.tensor([1.0, 2.0], requires_grad=True)
    y = fw.asarray(x)
    assert y is not x and not y.requires_grad and y.is_leaf
    with fw.no_grad():
        y[0] = 5.0
    assert x[0].item() == 5.0
    assert fw.asarray(x, requires_grad=True).requires_grad
    z = fw.asarray(x, copy=True)
    with fw.no_grad():
        z[1] = 0.0
    assert x[1].item() == 2.0
    assert fw.asarray(x, dtype=fw.float64).dtype is fw.float64
    nested = fw.asarray([[1, 2], [3, 4]])
    assert nested.dtype is fw.int64 and nested.shape == (2, 2)
    assert fw.asarray([1.5, 2.0]).dtype is fw.float32
    assert fw.asarray(3.0, dtype=fw.float64, requires_grad=True).requires_grad
    with pytest.raises(fw.ArgumentError, match="can't alias a list"):
        fw.asarray([1, 2], copy=False)
    buf = bytearray(np.arange(3, dtype=np.int32).tobytes())
    b = fw.asarray(buf, dtype=fw.int32)
    b[2] = 9
    assert np.frombuffer(buf, np.int32).tolist() == [0, 1, 9]


# -- frombuffer -------------------------------------------------------------------------------
def test_frombuffer_shares_memory_count_offset():
    arr = array.array("f", [1.0, 2.0, 3.0, 4.0])
    t = fw.frombuffer(arr, dtype=fw.float32)
    assert t.shape == (4,) and t.tolist() == [1.0, 2.0, 3.0, 4.0]
    t[1] = 20.0
    assert arr[1] == 20.0
    part = fw.frombuffer(arr, dtype=fw.float32, count=2, offset=8)
    assert part.tolist() == [3.0, 4.0]
    raw = bytearray(10)
    h = fw.frombuffer(raw, dtype=fw.int16, offset=2)
    assert h.shape == (4,)
    h.fill_(1)
    assert raw == bytearray(b"\x00\x00" + b"\x01\x00" * 4)
    r = fw.frombuffer(bytearray(8), dtype=fw.float64, requires_grad=True)
    assert r.requires_grad and r.dtype is fw.float64


def test_frombuffer_errors_and_read_only():
    buf = bytearray(10)
    with pytest.raises(fw.ArgumentError, match="buffer length \\(0\\) and count"):
        fw.frombuffer(bytearray(), dtype=fw.float32)
    with pytest.raises(fw.ArgumentError, match="count \\(0\\) must not be 0"):
        fw.frombuffer(buf, dtype=fw.float32, count=0)
    with pytest.raises(fw.ArgumentError, match="offset \\(10 bytes\\) must be non-negative"):
        fw.frombuffer(buf, dtype=fw.uint8, offset=10)
    with pytest.raises(fw.ArgumentError, match="must be a multiple of element size \\(4\\)"):
        fw.frombuffer(buf, dtype=fw.float32)
    with pytest.raises(fw.ArgumentError, match="requested buffer length \\(3 \\* 4 bytes\\)"):
        fw.frombuffer(buf, dtype=fw.float32, count=3)
    with pytest.raises(TypeError, match="buffer protocol"):
        fw.frombuffer([1, 2], dtype=fw.uint8)
    with pytest.warns(UserWarning, match="not writable"):
        ro = fw.frombuffer(b"\x01\x02\x03\x04", dtype=fw.uint8)
    assert ro.tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        ro[0] = 5


# -- InstanceNorm3d ---------------------------------------------------------------------------
def test_instance_norm3d_matches_numpy():
    x = np.random.default_rng(3).standard_normal((2, 3, 2, 3, 4))
    m = nn.InstanceNorm3d(3, affine=True).double()
    with fw.no_grad():
        m.weight.copy_(fw.tensor([1.0, 2.0, 0.5], dtype=fw.float64))
        m.bias.copy_(fw.tensor([0.0, 1.0, -1.0], dtype=fw.float64))
    mu = x.mean((2, 3, 4), keepdims=True)
    want = (x - mu) / np.sqrt(x.var((2, 3, 4), keepdims=True) + 1e-5)
    want = want * np.array([1.0, 2.0, 0.5])[:, None, None, None] + \
        np.array([0.0, 1.0, -1.0])[:, None, None, None]
    np.testing.assert_allclose(_np(m(fw.tensor(x))), want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(_np(m(fw.tensor(x[0]))), want[0], rtol=1e-10, atol=1e-10)
    assert list(m.state_dict()) == ["weight", "bias"]
    with pytest.raises(fw.ShapeError, match="InstanceNorm3d: expected 4D or 5D input"):
        m(fw.randn(2, 3, 4, dtype=fw.float64))
    lazy = nn.LazyInstanceNorm3d(affine=True)
    lazy(fw.randn(2, 5, 2, 2, 2))
    assert type(lazy) is nn.InstanceNorm3d and tuple(lazy.weight.shape) == (5,)


# -- AdaptiveLogSoftmaxWithLoss ---------------------------------------------------------------
def _log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def _asm_reference(m, x):
    """The full (N, n_classes) log-distribution from the module's weights, in NumPy."""
    sd = {k: _np(v) for k, v in m.state_dict().items()}
    head = x @ sd["head.weight"].T + (sd["head.bias"] if "head.bias" in sd else 0.0)
    head_lp = _log_softmax(head)
    short = m.shortlist_size
    parts = [head_lp[:, :short]]
    for i in range(m.n_clusters):
        h = x @ sd[f"tail.{i}.0.weight"].T @ sd[f"tail.{i}.1.weight"].T
        parts.append(_log_softmax(h) + head_lp[:, short + i:short + i + 1])
    return np.concatenate(parts, 1)


@pytest.mark.parametrize("head_bias", [False, True])
def test_adaptive_log_softmax_matches_numpy(head_bias):
    fw.manual_seed(0)
    m = nn.AdaptiveLogSoftmaxWithLoss(16, 20, [4, 9, 15], div_value=2.0,
                                      head_bias=head_bias).double()
    keys = ["head.weight"] + (["head.bias"] if head_bias else []) + \
        [f"tail.{i}.{j}.weight" for i in range(3) for j in range(2)]
    assert list(m.state_dict()) == keys
    assert [tuple(m.state_dict()[f"tail.{i}.0.weight"].shape) for i in range(3)] == \
        [(8, 16), (4, 16), (2, 16)]
    assert m.head.out_features == 7 and m.tail[2][1].out_features == 5
    x = np.random.default_rng(4).standard_normal((9, 16))
    target = np.array([0, 3, 4, 8, 9, 14, 15, 19, 2])
    full = _asm_reference(m, x)
    np.testing.assert_allclose(np.exp(full).sum(1), 1.0, rtol=1e-12)
    lp = m.log_prob(fw.tensor(x))
    np.testing.assert_allclose(_np(lp), full, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(lp.exp().sum(1)), 1.0, rtol=1e-12)
    out, loss = m(fw.tensor(x), fw.tensor(target))
    np.testing.assert_allclose(_np(out), full[np.arange(9), target], rtol=1e-10)
    np.testing.assert_allclose(loss.item(), -full[np.arange(9), target].mean(), rtol=1e-10)
    assert m.predict(fw.tensor(x)).tolist() == full.argmax(1).tolist()
    one = m(fw.tensor(x[3]), fw.tensor(target[3]))
    assert one.output.shape == () and abs(one.loss.item() + full[3, target[3]]) < 1e-10


def test_adaptive_log_softmax_gradients_and_compile():
    fw.manual_seed(1)
    m = nn.AdaptiveLogSoftmaxWithLoss(6, 10, [2, 5], div_value=2.0).double()
    x = fw.randn(5, 6, dtype=fw.float64, requires_grad=True)
    t = fw.tensor([0, 1, 2, 4, 3])  # nothing in the last cluster
    assert gradcheck(lambda a: m(a, t).loss, (x,))
    m.zero_grad()
    m(x, t).loss.backward()
    assert m.tail[0][0].weight.grad is not None and m.tail[1][0].weight.grad is None
    t2 = fw.tensor([0, 9, 2, 6, 3])
    comp = fw.compile(lambda a, b: m(a, b).loss, mode="always", fullgraph=True)
    with fw.no_grad():
        np.testing.assert_allclose(comp(x.detach(), t2).item(), m(x.detach(), t2).loss.item(),
                                   rtol=1e-10)


def test_adaptive_log_softmax_errors():
    with pytest.raises(ValueError, match="length larger than 0"):
        nn.AdaptiveLogSoftmaxWithLoss(4, 10, [])
    for bad in ([5, 3], [0, 3], [3, 10], [3, 3], [2.5]):
        with pytest.raises(ValueError, match="unique, positive integers sorted"):
            nn.AdaptiveLogSoftmaxWithLoss(4, 10, bad)
    m = nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3])
    with pytest.raises(fw.ArgumentError, match=r"should be in \[0, 9\].*\[0, 10\]"):
        m(fw.randn(2, 4), fw.tensor([0, 10]))
    with pytest.raises(fw.ShapeError, match="same size in the batch dimension"):
        m(fw.randn(3, 4), fw.tensor([0, 1]))
    with pytest.raises(fw.ShapeError, match="1D target tensor expects 2D input"):
        m(fw.randn(2, 2, 4), fw.tensor([0, 1]))
    with pytest.raises(fw.ShapeError, match="0D target tensor expects 1D input"):
        m(fw.randn(2, 4), fw.tensor(1))
    with pytest.raises(fw.ShapeError, match="multi-target not supported"):
        m(fw.randn(2, 4), fw.tensor([[0], [1]]))
    with pytest.raises(fw.DTypeError, match="integer class-index target"):
        m(fw.randn(2, 4), fw.tensor([0.0, 1.0]))
    with pytest.raises(fw.ShapeError, match="log_prob: expected a 2D input"):
        m.log_prob(fw.randn(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert m.predict(fw.randn(3, 4)).shape == (3,)


def test_adaptive_log_softmax_and_instance_norm3d_export_to_onnx():
    fw.manual_seed(2)
    m = nn.AdaptiveLogSoftmaxWithLoss(8, 12, [3, 7], div_value=2.0)
    x, t = fw.randn(4, 8), fw.tensor([0, 5, 11, 2])
    fw.onnx.export(lambda a: m.log_prob(a), (x,), verify=True)
    fw.onnx.export(lambda a, b: m(a, b).loss, (x, t), verify=True)
    fw.onnx.export(nn.InstanceNorm3d(3, affine=True), (fw.randn(2, 3, 2, 3, 4),), verify=True)
