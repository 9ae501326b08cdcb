"""Pooling, adaptive pooling, interpolation and unfold/fold against NumPy loops over
PyTorch's formulas; gradients by finite differences (float64, tiny shapes)."""

import itertools

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, ShapeError
from framework.nn import functional_conv as FC, functional_resample as FR
from framework.nn.modules.fold import Fold, Unfold
from framework.nn.modules.pooling import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d,
                                          AvgPool2d, MaxPool1d, MaxPool2d)
from framework.nn.modules.upsampling import Upsample

R = np.random.default_rng(2)


def t64(a, grad=False):
    return fw.tensor(a, dtype=fw.float64, requires_grad=grad)


def _out_len(n, k, s, p, d, ceil):
    span = n + 2 * p - d * (k - 1) - 1
    o = (-(-span // s) if ceil else span // s) + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def ref_max_pool(x, k, s, p, d, ceil):
    """Returns (values, flat indices) by scanning every window."""
    nd = len(k)
    sp = x.shape[-nd:]
    out = [_out_len(sp[i], k[i], s[i], p[i], d[i], ceil) for i in range(nd)]
    lead = x.shape[:-nd]
    vals = np.full(lead + tuple(out), -np.inf)
    idx = np.zeros(lead + tuple(out), np.int64)
    for o in itertools.product(*[range(v) for v in out]):
        for kk in itertools.product(*[range(v) for v in k]):
            pos = [o[i] * s[i] - p[i] + kk[i] * d[i] for i in range(nd)]
            if any(q < 0 or q >= sp[i] for i, q in enumerate(pos)):
                continue
            v = x[(Ellipsis,) + tuple(pos)]
            better = v > vals[(Ellipsis,) + o]
            vals[(Ellipsis,) + o] = np.where(better, v, vals[(Ellipsis,) + o])
            idx[(Ellipsis,) + o] = np.where(better, np.ravel_multi_index(pos, sp),
                                            idx[(Ellipsis,) + o])
    return vals, idx


def ref_avg_pool(x, k, s, p, ceil, include_pad, divisor=None):
    nd = len(k)
    sp = x.shape[-nd:]
    out = [_out_len(sp[i], k[i], s[i], p[i], 1, ceil) for i in range(nd)]
    res = np.zeros(x.shape[:-nd] + tuple(out))
    for o in itertools.product(*[range(v) for v in out]):
        start = [o[i] * s[i] - p[i] for i in range(nd)]
        end = [min(start[i] + k[i], sp[i] + p[i]) for i in range(nd)]
        size = np.prod([end[i] - start[i] for i in range(nd)])
        lo = [max(a, 0) for a in start]
        hi = [min(b, sp[i]) for i, b in enumerate(end)]
        win = x[(Ellipsis,) + tuple(slice(a, b) for a, b in zip(lo, hi))]
        cnt = size if include_pad else np.prod([b - a for a, b in zip(lo, hi)])
        res[(Ellipsis,) + o] = win.sum(axis=tuple(range(-nd, 0))) / (divisor or cnt)
    return res


# (kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [((2, 2), None, (0, 0), (1, 1), False), ((3, 3), (2, 2), (1, 1), (1, 1), True),
             ((3, 2), (2, 1), (1, 0), (2, 1), False), ((2, 3), (3, 2), (1, 1), (1, 2), True),
             ((3,), (2,), (1,), (1,), True), ((2,), (1,), (0,), (3,), False)]


@pytest.mark.parametrize("case", MAX_CASES, ids=str)
def test_max_pool_values_indices_and_grad(case):
    k, s, p, d, ceil = case
    nd = len(k)
    x = R.standard_normal((2, 3) + (7, 8)[:nd])
    fn = FC.max_pool2d if nd == 2 else FC.max_pool1d
    vals, idx = fn(t64(x), k, s, p, d, ceil, return_indices=True)
    rv, ri = ref_max_pool(x, k, s or k, p, d, ceil)
    np.testing.assert_array_equal(vals.numpy(), rv)
    np.testing.assert_array_equal(idx.numpy(), ri)
    assert idx.dtype is fw.int64
    shape = (1, 2) + (6, 6)[:nd]
    xs = t64(R.permutation(int(np.prod(shape))).reshape(shape) * 0.1, True)  # no ties
    assert fw.autograd.gradcheck(lambda a: fn(a, k, s, p, d, ceil), (xs,))


def test_max_pool_unbatched_and_errors():
    x = fw.randn(3, 6, 6)
    assert FC.max_pool2d(x, 2).shape == (3, 3, 3)
    with pytest.raises(ArgumentError, match="pad should be at most half"):
        FC.max_pool2d(x, 2, padding=2)
    with pytest.raises(ShapeError, match="too small"):
        FC.max_pool2d(fw.randn(1, 1, 2, 2), 3)
    with pytest.raises(ShapeError, match="3-D or 4-D"):
        FC.max_pool2d(fw.randn(6), 2)


# (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [((2, 2), None, (0, 0), False, True, None), ((3, 3), (2, 2), (1, 1), True, True, None),
             ((3, 3), (2, 2), (1, 1), True, False, None), ((3, 2), (2, 3), (1, 1), False, False,
                                                           None),
             ((2, 2), (1, 1), (1, 0), False, True, 3), ((3,), (2,), (1,), True, False, None)]


@pytest.mark.parametrize("case", AVG_CASES, ids=str)
def test_avg_pool_matches_reference(case):
    k, s, p, ceil, inc, div = case
    nd = len(k)
    x = R.standard_normal((2, 3) + (7, 8)[:nd])
    if nd == 2:
        out = FC.avg_pool2d(t64(x), k, s, p, ceil, inc, div)
    else:
        out = FC.avg_pool1d(t64(x), k, s, p, ceil, inc)
    ref = ref_avg_pool(x, k, s or k, p, ceil, inc, div)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
    xs = t64(R.standard_normal((1, 1) + (5, 5)[:nd]), True)
    fn = (lambda a: FC.avg_pool2d(a, k, s, p, ceil, inc, div)) if nd == 2 else \
        (lambda a: FC.avg_pool1d(a, k, s, p, ceil, inc))
    assert fw.autograd.gradcheck(fn, (xs,))


def _adaptive_ref(x, out, reduce):
    nd = len(out)
    sp = x.shape[-nd:]
    res = np.zeros(x.shape[:-nd] + tuple(out))
    for o in itertools.product(*[range(v) for v in out]):
        sl = tuple(slice((o[i] * sp[i]) // out[i], -(-((o[i] + 1) * sp[i]) // out[i]))
                   for i in range(nd))
        res[(Ellipsis,) + o] = reduce(x[(Ellipsis,) + sl], axis=tuple(range(-nd, 0)))
    return res


@pytest.mark.parametrize("out", [(3, 5), (1, 1), (7, 4), (2, None)])
def test_adaptive_pools(out):
    x = R.standard_normal((2, 3, 7, 8))
    full = tuple(8 if o is None else o for o in out)
    np.testing.assert_allclose(FR.adaptive_avg_pool2d(t64(x), out).numpy(),
                               _adaptive_ref(x, full, np.mean), atol=1e-12)
    vals, idx = FR.adaptive_max_pool2d(t64(x), out, return_indices=True)
    np.testing.assert_allclose(vals.numpy(), _adaptive_ref(x, full, np.max))
    flat = x.reshape(2, 3, -1)
    np.testing.assert_allclose(np.take_along_axis(flat, idx.numpy().reshape(2, 3, -1), -1)
                               .reshape(vals.shape), vals.numpy())
    xs = t64(R.permutation(35).reshape(1, 1, 5, 7) * 0.1, True)
    assert fw.autograd.gradcheck(lambda a: FR.adaptive_max_pool2d(a, (2, 3)), (xs,))
    assert fw.autograd.gradcheck(lambda a: FR.adaptive_avg_pool2d(a, (3, 2)), (xs,))
    x1 = R.standard_normal((2, 10))
    np.testing.assert_allclose(FR.adaptive_avg_pool1d(t64(x1[None]), 3).numpy()[0],
                               _adaptive_ref(x1, (3,), np.mean), atol=1e-12)


def _ref_resize_1d(x, axis, out, mode, align_corners, scale=None):
    n = x.shape[axis]
    scale = n / out if scale is None else scale
    res = []
    for o in range(out):
        if mode == "nearest":
            res.append(np.take(x, min(int(np.floor(o * scale)), n - 1), axis))
            continue
        if mode == "nearest-exact":
            res.append(np.take(x, min(int(np.floor((o + 0.5) * scale)), n - 1), axis))
            continue
        if align_corners:
            src = o * (n - 1) / (out - 1) if out > 1 else 0.0
        else:
            src = max((o + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n - 1)
        i1 = min(i0 + 1, n - 1)
        lam = src - i0
        res.append((1 - lam) * np.take(x, i0, axis) + lam * np.take(x, i1, axis))
    return np.stack(res, axis)


@pytest.mark.parametrize("mode,align,size,sf", [
    ("nearest", None, (5, 11), None), ("nearest", None, None, 2), ("nearest", None, (3, 3), None),
    ("nearest-exact", None, (5, 11), None), ("bilinear", False, (5, 11), None),
    ("bilinear", True, (5, 11), None), ("bilinear", False, None, 1.5),
    ("bilinear", True, (2, 3), None)])
def test_interpolate_2d(mode, align, size, sf):
    x = R.standard_normal((2, 3, 4, 6))
    out = FR.interpolate(t64(x), size=size, scale_factor=sf, mode=mode, align_corners=align)
    target = size or (int(4 * sf), int(6 * sf))
    scales = [None, None] if sf is None else [1 / sf, 1 / sf]
    ref = _ref_resize_1d(x, 2, target[0], mode.replace("bi", ""), align, scales[0])
    ref = _ref_resize_1d(ref, 3, target[1], mode.replace("bi", ""), align, scales[1])
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
    xs = t64(R.standard_normal((1, 1, 3, 3)), True)
    assert fw.autograd.gradcheck(
        lambda a: FR.interpolate(a, size=(4, 5), mode=mode, align_corners=align), (xs,))


def test_interpolate_linear_area_and_errors():
    x = R.standard_normal((2, 3, 5))
    out = FR.interpolate(t64(x), size=8, mode="linear", align_corners=True)
    np.testing.assert_allclose(out.numpy(), _ref_resize_1d(x, 2, 8, "linear", True), atol=1e-12)
    np.testing.assert_allclose(FR.interpolate(t64(x), size=2, mode="area").numpy(),
                               _adaptive_ref(x, (2,), np.mean), atol=1e-12)
    with pytest.raises(ArgumentError, match="align_corners"):
        FR.interpolate(t64(x), size=4, mode="nearest", align_corners=True)
    with pytest.raises(ArgumentError, match="expects a 4-D"):
        FR.interpolate(t64(x), size=4, mode="bilinear")
    with pytest.raises(ArgumentError, match="exactly one"):
        FR.interpolate(t64(x))
    with pytest.raises(ArgumentError, match="bicubic"):   # bicubic: tests/nn/test_grid_sample
        FR.interpolate(fw.randn(1, 1, 3), size=4, mode="bicubic")
    up = Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    assert repr(up) == "Upsample(scale_factor=2.0, mode='bilinear')"
    assert up(fw.randn(1, 2, 3, 4)).shape == (1, 2, 6, 8)


def _ref_unfold(x, k, d, p, s):
    n, c, h, w = x.shape
    xp = np.pad(x, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])])
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    cols = np.zeros((n, c, k[0], k[1], oh, ow))
    for i, j in itertools.product(range(k[0]), range(k[1])):
        cols[:, :, i, j] = xp[:, :, i * d[0]: i * d[0] + s[0] * (oh - 1) + 1: s[0],
                              j * d[1]: j * d[1] + s[1] * (ow - 1) + 1: s[1]]
    return cols.reshape(n, c * k[0] * k[1], oh * ow)


@pytest.mark.parametrize("k,d,p,s", [((2, 2), (1, 1), (0, 0), (1, 1)),
                                     ((3, 2), (1, 2), (1, 0), (2, 1)),
                                     ((2, 3), (2, 1), (1, 1), (2, 3))])
def test_unfold_fold(k, d, p, s):
    x = R.standard_normal((2, 3, 7, 8))
    cols = FR.unfold(t64(x), k, d, p, s)
    ref = _ref_unfold(x, k, d, p, s)
    np.testing.assert_allclose(cols.numpy(), ref, atol=1e-12)
    # fold is the adjoint of unfold: <unfold(x), y> == <x, fold(y)>
    y = R.standard_normal(ref.shape)
    folded = FR.fold(t64(y), (7, 8), k, d, p, s)
    assert folded.shape == x.shape
    np.testing.assert_allclose((ref * y).sum(), (x * folded.numpy()).sum(), rtol=1e-10)
    xs = t64(R.standard_normal((1, 2, 4, 5)), True)
    assert fw.autograd.gradcheck(lambda a: FR.unfold(a, k, d, p, s), (xs,))
    mod = Unfold(k, d, p, s)
    assert mod(t64(x)).shape == ref.shape
    assert Fold((7, 8), k, d, p, s)(t64(y)).shape == x.shape
    with pytest.raises(ShapeError, match="sliding blocks"):
        FR.fold(t64(y[:, :, :-1]), (7, 8), k, d, p, s)


def test_pool_modules():
    x = fw.randn(2, 3, 8, 8)
    m = MaxPool2d(3, stride=2, padding=1, return_indices=True)
    v, i = m(x)
    assert v.shape == (2, 3, 4, 4) and i.shape == (2, 3, 4, 4)
    assert repr(m) == "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"
    assert repr(AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert AvgPool1d(3, 2, 1, count_include_pad=False)(fw.randn(2, 5, 9)).shape == (2, 5, 5)
    assert MaxPool1d(2)(fw.randn(2, 5, 9)).shape == (2, 5, 4)
    assert AdaptiveAvgPool2d((1, 1))(x).shape == (2, 3, 1, 1)
    assert AdaptiveMaxPool2d(3, return_indices=True)(x)[1].dtype is fw.int64
    assert repr(AdaptiveAvgPool2d(1)) == "AdaptiveAvgPool2d(output_size=1)"
    y = AvgPool2d(2, divisor_override=1)(x)
    np.testing.assert_allclose(y.numpy(), x.numpy().reshape(2, 3, 4, 2, 4, 2).sum((3, 5)),
                               rtol=1e-5, atol=1e-5)


def test_pixel_and_channel_shuffle():
    from framework.nn import functional as F
    x = R.standard_normal((2, 8, 3, 4))
    out = F.pixel_shuffle(t64(x), 2).numpy()
    ref = np.zeros((2, 2, 6, 8))
    for c, h, w, i, j in itertools.product(range(2), range(3), range(4), range(2), range(2)):
        ref[:, c, h * 2 + i, w * 2 + j] = x[:, c * 4 + i * 2 + j, h, w]
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(F.pixel_unshuffle(t64(ref), 2).numpy(), x)
    cs = F.channel_shuffle(t64(x), 2).numpy()
    np.testing.assert_array_equal(cs, x[:, [0, 4, 1, 5, 2, 6, 3, 7]])
    from framework.nn.modules.channelshuffle import ChannelShuffle
    from framework.nn.modules.pixelshuffle import PixelShuffle, PixelUnshuffle
    assert PixelShuffle(2)(t64(x)).shape == (2, 2, 6, 8)
    assert PixelUnshuffle(2)(t64(ref)).shape == x.shape
    assert repr(ChannelShuffle(4)) == "ChannelShuffle(groups=4)"
    with pytest.raises(ShapeError, match="divisible"):
        F.pixel_shuffle(t64(x), 3)
    xs = t64(R.standard_normal((1, 4, 2, 2)), True)
    assert fw.autograd.gradcheck(lambda a: F.pixel_shuffle(a, 2), (xs,))


@pytest.mark.parametrize("name,np_mode", [("ZeroPad", "constant"), ("ReflectionPad", "reflect"),
                                          ("ReplicationPad", "edge"),
                                          ("CircularPad", "wrap")])
def test_padding_modules(name, np_mode):
    from framework.nn.modules import padding as P
    x = R.standard_normal((2, 3, 4, 5))
    m = getattr(P, name + "2d")((1, 2, 2, 0))
    ref = np.pad(x, [(0, 0), (0, 0), (2, 0), (1, 2)], mode=np_mode)
    np.testing.assert_array_equal(m(t64(x)).numpy(), ref)
    m1 = getattr(P, name + "1d")(2)
    np.testing.assert_array_equal(m1(t64(x[0])).numpy(),
                                  np.pad(x[0], [(0, 0), (0, 0), (2, 2)], mode=np_mode))
    assert repr(m) == f"{name}2d((1, 2, 2, 0))"
    c = P.ConstantPad3d(1, 2.5)
    assert repr(c) == "ConstantPad3d(padding=(1, 1, 1, 1, 1, 1), value=2.5)"
    np.testing.assert_array_equal(c(t64(x)).numpy(), np.pad(x, [(0, 0)] + [(1, 1)] * 3,
                                                            constant_values=2.5))
    with pytest.raises(ArgumentError, match="padding"):
        getattr(P, name + "2d")((1, 2, 3))


def test_max_unpool_inverts_pooling():
    from framework.nn.modules.pooling import MaxUnpool2d
    x = R.standard_normal((2, 3, 6, 7))
    vals, idx = FC.max_pool2d(t64(x), 2, return_indices=True)
    up = MaxUnpool2d(2)(vals, idx, output_size=(6, 7))
    ref = np.zeros((2, 3, 42))
    np.put_along_axis(ref, idx.numpy().reshape(2, 3, -1), vals.numpy().reshape(2, 3, -1), -1)
    np.testing.assert_array_equal(up.numpy(), ref.reshape(2, 3, 6, 7))
    v6, i6 = FC.max_pool2d(t64(x[..., :6]), 2, return_indices=True)
    assert FC.max_unpool2d(v6, i6, 2).shape == (2, 3, 6, 6)
    v1, i1 = FC.max_pool1d(t64(x[0]), 3, 2, 1, return_indices=True)
    assert FC.max_unpool1d(v1, i1, 3, 2, 1).shape == (3, 6, 7)
    vs = t64(vals.numpy(), True)
    assert fw.autograd.gradcheck(lambda v: FC.max_unpool2d(v, idx, 2, output_size=(6, 7)),
                                 (vs,))
    with pytest.raises(ArgumentError, match="output_size"):
        FC.max_unpool2d(vals, idx, 2, output_size=(9, 9))
