"""Convolutions (functional + modules) against direct NumPy loops over the formula,
gradients by finite differences (float64, tiny shapes)."""

import itertools
import math

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, DTypeError, ShapeError
from framework.nn import functional_conv as FC
from framework.nn.modules.conv import (Conv1d, Conv2d, Conv3d, ConvTranspose1d,
                                       ConvTranspose2d)


# ---------------------------------------------------------------------------------------
# NumPy references: literal sums over the definition
def ref_conv(x, w, b, stride, pads, dil, groups):
    """pads: per-dim (lo, hi)."""
    nd = w.ndim - 2
    x = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    n, c = x.shape[:2]
    cout, k = w.shape[0], w.shape[2:]
    cg, coutg = c // groups, cout // groups
    out_sz = [(x.shape[2 + i] - dil[i] * (k[i] - 1) - 1) // stride[i] + 1 for i in range(nd)]
    out = np.zeros((n, cout, *out_sz))
    for co in range(cout):
        g = co // coutg
        for o in itertools.product(*[range(v) for v in out_sz]):
            for kk in itertools.product(*[range(v) for v in k]):
                idx = tuple(o[i] * stride[i] + kk[i] * dil[i] for i in range(nd))
                xs = x[(slice(None), slice(g * cg, (g + 1) * cg)) + idx]
                out[(slice(None), co) + o] += (xs * w[(co, slice(None)) + kk]).sum(1)
    if b is not None:
        out += b.reshape((1, -1) + (1,) * nd)
    return out


def ref_conv_transpose(x, w, b, stride, pad, dil, groups, opad):
    nd = w.ndim - 2
    n, cin = x.shape[:2]
    cing, coutg, k, s = cin // groups, w.shape[1], w.shape[2:], x.shape[2:]
    full = [(s[i] - 1) * stride[i] + dil[i] * (k[i] - 1) + 1 + opad[i] for i in range(nd)]
    out = np.zeros((n, coutg * groups, *full))
    for ci in range(cin):
        g = ci // cing
        for p in itertools.product(*[range(v) for v in s]):
            for kk in itertools.product(*[range(v) for v in k]):
                idx = tuple(p[i] * stride[i] + kk[i] * dil[i] for i in range(nd))
                out[(slice(None), slice(g * coutg, (g + 1) * coutg)) + idx] += \
                    x[(slice(None), ci) + p][:, None] * w[(ci, slice(None)) + kk][None]
    out = out[(slice(None),) * 2 + tuple(slice(pad[i], full[i] - pad[i]) for i in range(nd))]
    if b is not None:
        out += b.reshape((1, -1) + (1,) * nd)
    return out


def t64(a, grad=False):
    return fw.tensor(a, dtype=fw.float64, requires_grad=grad)


R = np.random.default_rng(1)


# (nd, C_in, C_out, kernel, stride, padding, dilation, groups, bias)
CONV_CASES = [
    (1, 2, 3, 3, 1, 0, 1, 1, True),
    (1, 4, 6, 2, 2, 1, 2, 2, False),
    (1, 3, 3, 3, 1, "same", 2, 3, True),
    (1, 2, 2, 4, 1, "same", 1, 1, False),      # even kernel: extra pad at the end
    (2, 3, 4, (3, 2), (2, 1), (1, 0), (1, 2), 1, True),
    (2, 4, 4, 3, 1, "same", 1, 4, True),       # depthwise
    (2, 4, 6, (2, 3), 3, 2, 1, 2, False),
    (2, 2, 3, 1, 1, "valid", 1, 1, True),
    (3, 2, 2, 2, 1, 1, 1, 1, True),
]


def _pairs(padding, k, d, nd):
    k = (k,) * nd if isinstance(k, int) else k
    d = (d,) * nd if isinstance(d, int) else d
    if padding == "same":
        return [(dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2) for kk, dd in zip(k, d)]
    if padding == "valid":
        return [(0, 0)] * nd
    p = (padding,) * nd if isinstance(padding, int) else padding
    return [(q, q) for q in p]


def _tup(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}d-{c[1:]}")
def test_conv_forward_matches_reference(case):
    nd, cin, cout, k, s, p, d, g, bias = case
    kt = _tup(k, nd)
    x = R.standard_normal((2, cin) + (7,) * nd)
    w = R.standard_normal((cout, cin // g) + kt)
    b = R.standard_normal(cout) if bias else None
    fn = (FC.conv1d, FC.conv2d, FC.conv3d)[nd - 1]
    out = fn(t64(x), t64(w), None if b is None else t64(b), s, p, d, g)
    ref = ref_conv(x, w, b, _tup(s, nd), _pairs(p, k, d, nd), _tup(d, nd), g)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("case", CONV_CASES[:8], ids=lambda c: f"{c[0]}d-{c[1:]}")
def test_conv_gradcheck(case):
    nd, cin, cout, k, s, p, d, g, bias = case
    kt = _tup(k, nd)
    size = 6 if nd == 1 else 5
    x = t64(R.standard_normal((1, cin) + (size,) * nd), True)
    w = t64(R.standard_normal((cout, cin // g) + kt), True)
    b = t64(R.standard_normal(cout), True) if bias else None
    fn = (FC.conv1d, FC.conv2d)[nd - 1]
    inputs = (x, w) + ((b,) if bias else ())
    assert fw.autograd.gradcheck(lambda *a: fn(a[0], a[1], a[2] if bias else None, s, p, d, g),
                                 inputs)


def test_conv_second_order_gradient():
    # d/dx of sum(grad_w(conv)) -- exercises the VJP of the VJP (conv_transpose + conv)
    x = t64(R.standard_normal((1, 2, 5, 5)), True)
    w = t64(R.standard_normal((2, 2, 3, 3)), True)

    def f(x):
        y = FC.conv2d(x, w, stride=2, padding=1)
        (gw,) = fw.autograd.grad((y * y).sum(), [w], create_graph=True)
        return (gw * gw).sum()

    g = fw.autograd.grad(f(x), [x])[0].numpy()
    eps, num = 1e-6, np.zeros(x.shape)
    base = x.detach().numpy()
    for i in range(base.size):
        vals = []
        for sgn in (1, -1):
            pert = base.copy()
            pert.reshape(-1)[i] += sgn * eps
            vals.append(f(t64(pert, True)).item())
        num.reshape(-1)[i] = (vals[0] - vals[1]) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-4, atol=1e-5)


# (nd, C_in, C_out, kernel, stride, padding, output_padding, groups, dilation)
TRANSPOSE_CASES = [
    (1, 2, 3, 3, 1, 0, 0, 1, 1),
    (1, 4, 2, 3, 2, 1, 1, 2, 1),
    (1, 2, 2, 2, 3, 0, 2, 1, 2),
    (2, 3, 2, (3, 2), (2, 1), (1, 0), (1, 0), 1, 1),
    (2, 4, 4, 3, 2, 1, 1, 4, (1, 2)),
    (2, 2, 4, 2, 2, 0, 0, 2, 1),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=lambda c: f"{c[0]}d-{c[1:]}")
def test_conv_transpose_forward_and_grad(case):
    nd, cin, cout, k, s, p, op, g, d = case
    kt = _tup(k, nd)
    x = R.standard_normal((2, cin) + (4,) * nd)
    w = R.standard_normal((cin, cout // g) + kt)
    b = R.standard_normal(cout)
    fn = (FC.conv_transpose1d, FC.conv_transpose2d)[nd - 1]
    out = fn(t64(x), t64(w), t64(b), s, p, op, g, d)
    ref = ref_conv_transpose(x, w, b, _tup(s, nd), _tup(p, nd), _tup(d, nd), g, _tup(op, nd))
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)
    xs = t64(R.standard_normal((1, cin) + (3,) * nd), True)
    ws, bs = t64(w, True), t64(b, True)
    assert fw.autograd.gradcheck(lambda a, c, e: fn(a, c, e, s, p, op, g, d), (xs, ws, bs))


def test_conv_transpose_is_adjoint_of_conv():
    x = R.standard_normal((2, 3, 9, 8))
    w = R.standard_normal((4, 3, 3, 3))
    y = R.standard_normal((2, 4, 5, 4))
    cx = FC.conv2d(t64(x), t64(w), stride=2, padding=1).numpy()
    ty = FC.conv_transpose2d(t64(y), t64(w), stride=2, padding=1, output_padding=(0, 1))
    assert ty.shape == x.shape
    np.testing.assert_allclose((cx * y).sum(), (x * ty.numpy()).sum(), rtol=1e-10)


def test_conv_low_precision_and_unbatched():
    x = R.standard_normal((3, 10)).astype(np.float32)
    w = R.standard_normal((5, 3, 3)).astype(np.float32)
    ref = ref_conv(x[None].astype(np.float64), w.astype(np.float64), None, (1,), [(1, 1)],
                   (1,), 1)[0]
    out = FC.conv1d(fw.tensor(x), fw.tensor(w), padding=1)
    assert out.shape == (5, 10) and out.dtype is fw.float32
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)
    out16 = FC.conv1d(fw.tensor(x).half(), fw.tensor(w).half(), padding=1)
    assert out16.dtype is fw.float16
    np.testing.assert_allclose(out16.float().numpy(), ref, rtol=2e-2, atol=5e-2)


def test_conv_errors_name_the_problem():
    x = fw.randn(1, 3, 8, 8)
    with pytest.raises(ShapeError, match="channels"):
        FC.conv2d(x, fw.randn(4, 2, 3, 3))
    with pytest.raises(ShapeError, match="groups"):
        FC.conv2d(x, fw.randn(4, 1, 3, 3), groups=2)
    with pytest.raises(ArgumentError, match="same"):
        FC.conv2d(x, fw.randn(4, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ShapeError, match="smaller than the dilated kernel"):
        FC.conv2d(x, fw.randn(4, 3, 5, 5), dilation=2)
    with pytest.raises(DTypeError, match="share a dtype"):
        FC.conv2d(x, fw.randn(4, 3, 3, 3, dtype=fw.float64))
    with pytest.raises(ShapeError, match="4-D"):
        FC.conv2d(fw.randn(8, 8), fw.randn(4, 3, 3, 3))
    with pytest.raises(ArgumentError, match="output_padding"):
        FC.conv_transpose2d(x, fw.randn(3, 2, 3, 3), stride=2, output_padding=2)


def test_float_channel_counts_raise_type_error_like_pytorch():
    """``nn.Conv2d(24, 40 / 4)`` (Python 2 division in old scripts) is a TypeError in
    PyTorch; so are float sizes given to creation functions and BatchNorm2d."""
    for args in ((24, 40 / 4, 1), (10.0, 4, 3)):
        with pytest.raises(TypeError, match="Conv2d: (in|out)_channels must be an int"):
            Conv2d(*args)
    with pytest.raises(TypeError, match="sequence of ints"):
        fw.zeros(2.0, 3)
    with pytest.raises(TypeError, match="sequence of ints"):
        fw.nn.BatchNorm2d(2.5)
    assert Conv2d(4, 8, 3, groups=4).weight.shape == (8, 1, 3, 3)


# ---------------------------------------------------------------------------------------
# modules
def test_conv2d_module_params_init_and_repr():
    fw.manual_seed(0)
    m = Conv2d(4, 6, (3, 5), stride=2, padding=1, groups=2)
    assert m.weight.shape == (6, 2, 3, 5) and m.bias.shape == (6,)
    assert list(m.state_dict()) == ["weight", "bias"]
    bound = 1 / math.sqrt(2 * 15)
    w = m.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(m.bias.detach().numpy()).max() <= bound
    assert repr(m) == ("Conv2d(4, 6, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), "
                       "groups=2)")
    assert repr(Conv1d(2, 3, 3, padding="same", bias=False)) == \
        "Conv1d(2, 3, kernel_size=(3,), stride=(1,), padding='same', bias=False)"
    t = ConvTranspose2d(4, 6, 3, stride=2, groups=2)
    assert t.weight.shape == (4, 3, 3, 3)
    tb = 1 / math.sqrt(3 * 9)
    assert np.abs(t.weight.detach().numpy()).max() <= tb
    x = fw.randn(2, 4, 9, 9)
    out = m(x)
    ref = ref_conv(x.numpy().astype(np.float64), w.astype(np.float64),
                   m.bias.detach().numpy().astype(np.float64), (2, 2), [(1, 1), (2 - 1, 1)],
                   (1, 1), 2)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"),
                                          ("circular", "wrap")])
def test_conv_padding_modes(mode, np_mode):
    m = Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode).double()
    x = R.standard_normal((2, 2, 6, 7))
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (2, 2)], mode=np_mode)
    ref = ref_conv(xp, m.weight.detach().numpy(), m.bias.detach().numpy(), (1, 1),
                   [(0, 0), (0, 0)], (1, 1), 1)
    np.testing.assert_allclose(m(t64(x)).detach().numpy(), ref, atol=1e-10)
    # 'same' with an even kernel pads the extra element at the end
    m2 = Conv1d(1, 1, 4, padding="same", padding_mode=mode, bias=False).double()
    x1 = R.standard_normal((1, 1, 6))
    ref2 = ref_conv(np.pad(x1, [(0, 0), (0, 0), (1, 2)], mode=np_mode),
                    m2.weight.detach().numpy(), None, (1,), [(0, 0)], (1,), 1)
    np.testing.assert_allclose(m2(t64(x1)).detach().numpy(), ref2, atol=1e-10)


def test_conv_module_backward_and_3d():
    m = Conv3d(2, 2, 2, padding=1)
    y = m(fw.randn(1, 2, 3, 3, 3))
    assert y.shape == (1, 2, 4, 4, 4)
    y.sum().backward()
    assert m.weight.grad.shape == m.weight.shape and m.bias.grad is not None
    np.testing.assert_allclose(m.bias.grad.numpy(), np.full(2, 64.0))


def test_conv_transpose_module_output_size():
    m = ConvTranspose1d(2, 3, 3, stride=2, padding=1)
    x = fw.randn(1, 2, 5)
    assert m(x).shape == (1, 3, 9)
    assert m(x, output_size=[10]).shape == (1, 3, 10)
    with pytest.raises(ArgumentError, match="not reachable"):
        m(x, output_size=[12])
    with pytest.raises(ArgumentError, match="divisible"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ArgumentError, match="padding_mode"):
        Conv2d(3, 4, 3, padding_mode="mirror")


def test_gradgradcheck_conv_transpose_and_pool():
    x = t64(R.standard_normal((1, 2, 4, 4)), True)
    w = t64(R.standard_normal((2, 1, 2, 2)), True)
    assert fw.autograd.gradgradcheck(
        lambda a, b: FC.conv2d(a, b, stride=2, padding=1, groups=2), (x, w))
    assert fw.autograd.gradgradcheck(
        lambda a, b: FC.conv_transpose2d(a, b, stride=2, padding=1, output_padding=1,
                                         groups=2), (x, w))
    assert fw.autograd.gradgradcheck(lambda a: FC.max_pool2d(a, 2) ** 2, (x,))
