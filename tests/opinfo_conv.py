"""OpInfo records: conv, conv_transpose, max_pool (and avg_pool, a decomposition).

The references sum one kernel tap at a time over plain strided slices of the padded input
(independent of the im2col kernels under test).
"""

from __future__ import annotations

import itertools

import numpy as np

import framework as fw
from framework.nn import functional_conv as FC
from tests.opinfo import OpInfo, Sample, make, register_opinfo, rng, transposed

_DTYPES = (fw.float32, fw.float64, fw.float16, fw.bfloat16)
_TOLS = {fw.float16: (5e-2, 2e-2), fw.bfloat16: (3e-1, 5e-2)}


def _taps(k):
    return itertools.product(*[range(n) for n in k])


def _tap_slices(tap, dilation, stride, out):
    return tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                 for t, d, s, o in zip(tap, dilation, stride, out))


def ref_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    nd = w.ndim - 2
    if x.ndim == nd + 1:  # unbatched
        return ref_conv(x[None], w, b, stride, padding, dilation, groups)[0]
    st, dl = (stride,) * nd if isinstance(stride, int) else stride, \
        (dilation,) * nd if isinstance(dilation, int) else dilation
    pd = (padding,) * nd if isinstance(padding, int) else padding
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pd])
    k = w.shape[2:]
    out = [(xp.shape[2 + i] - dl[i] * (k[i] - 1) - 1) // st[i] + 1 for i in range(nd)]
    n, c = x.shape[:2]
    cg, cog = c // groups, w.shape[0] // groups
    res = np.zeros((n, w.shape[0], *out))
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * cog:(g + 1) * cog]
        for tap in _taps(k):
            win = xs[(slice(None), slice(None)) + _tap_slices(tap, dl, st, out)]
            res[:, g * cog:(g + 1) * cog] += np.einsum("nc...,oc->no...", win,
                                                       ws[(Ellipsis,) + tap])
    if b is not None:
        res += b.reshape((1, -1) + (1,) * nd)
    return res


def ref_conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
    nd = w.ndim - 2

    def tup(v):
        return (v,) * nd if isinstance(v, int) else v
    st, pd, op, dl = tup(stride), tup(padding), tup(output_padding), tup(dilation)
    n, cin = x.shape[:2]
    cig, cog, k, sp = cin // groups, w.shape[1], w.shape[2:], x.shape[2:]
    full = [(sp[i] - 1) * st[i] + dl[i] * (k[i] - 1) + 1 + op[i] for i in range(nd)]
    res = np.zeros((n, cog * groups, *full))
    for g in range(groups):
        for tap in _taps(k):
            contrib = np.einsum("nc...,co->no...", x[:, g * cig:(g + 1) * cig],
                                w[(slice(g * cig, (g + 1) * cig), slice(None)) + tap])
            res[(slice(None), slice(g * cog, (g + 1) * cog)) +
                _tap_slices(tap, dl, st, sp)] += contrib
    res = res[(slice(None),) * 2 + tuple(slice(p, f - p) for p, f in zip(pd, full))]
    if b is not None:
        res += b.reshape((1, -1) + (1,) * nd)
    return res


def ref_max_pool2d(x, kernel_size, stride=None, padding=0, return_indices=False):
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    p = (padding,) * 2 if isinstance(padding, int) else padding
    h, w = x.shape[-2:]
    xp = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p[0], p[0]), (p[1], p[1])],
                constant_values=-np.inf)
    pos = np.pad(np.arange(h * w).reshape(h, w), [(p[0], p[0]), (p[1], p[1])],
                 constant_values=-1)
    out = [(xp.shape[-2 + i] - k[i]) // s[i] + 1 for i in range(2)]
    best = np.full(x.shape[:-2] + tuple(out), -np.inf)
    idx = np.zeros(best.shape, np.int64)
    for tap in _taps(k):
        sl = _tap_slices(tap, (1, 1), s, out)
        v = xp[(Ellipsis,) + sl]
        better = v > best
        best = np.where(better, v, best)
        idx = np.where(better, pos[sl], idx)
    return (best, idx) if return_indices else best


def ref_avg_pool2d(x, kernel_size, stride=None, padding=0):
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    p = (padding,) * 2 if isinstance(padding, int) else padding
    xp = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p[0], p[0]), (p[1], p[1])])
    out = [(xp.shape[-2 + i] - k[i]) // s[i] + 1 for i in range(2)]
    acc = sum(xp[(Ellipsis,) + _tap_slices(t, (1, 1), s, out)] for t in _taps(k))
    return acc / (k[0] * k[1])  # count_include_pad=True


def _conv2d_samples(dt):
    g = rng(30)

    def m(shape):
        return make(shape, dt, g, low=-1.0, high=1.0)
    return [
        Sample((m((2, 3, 6, 5)), m((4, 3, 3, 3)), m((4,))), {"padding": 1}, name="pad"),
        Sample((m((1, 4, 7, 6)), m((6, 2, 2, 3))), {"stride": (2, 1), "dilation": (1, 2),
                                                    "groups": 2}, name="groups"),
        Sample((transposed(m((2, 2, 6, 5))), m((3, 2, 3, 1))), {"stride": 2},
               name="T-input"),
        Sample((m((0, 2, 4, 4)), m((3, 2, 2, 2))), name="empty-batch", grad=False),
    ]


def _conv1d_samples(dt):
    g = rng(31)

    def m(shape):
        return make(shape, dt, g, low=-1.0, high=1.0)
    return [Sample((m((2, 4, 9)), m((4, 1, 3)), m((4,))), {"padding": 2, "dilation": 2,
                                                           "groups": 4}, name="depthwise"),
            Sample((m((3, 7)), m((2, 3, 2))), {"stride": 3}, name="unbatched")]


def _conv_transpose_samples(dt):
    g = rng(32)

    def m(shape):
        return make(shape, dt, g, low=-1.0, high=1.0)
    return [Sample((m((2, 3, 4, 3)), m((3, 2, 3, 3)), m((2,))),
                   {"stride": 2, "padding": 1, "output_padding": 1}, name="stride2"),
            Sample((m((1, 4, 3, 3)), m((4, 1, 2, 2))), {"groups": 2, "dilation": 2},
                   name="groups-dilation")]


def _pool_samples(dt):
    g = rng(33)

    def m(shape):
        return make(shape, dt, g)
    return [Sample((m((2, 3, 6, 7)), 2)),
            Sample((m((1, 2, 7, 7)), 3), {"stride": 2, "padding": 1}, name="pad"),
            Sample((transposed(m((2, 6, 5))), (2, 3)), {"stride": 1}, name="T-unbatched")]


def _with_indices(*args, **kwargs):
    return FC.max_pool2d(*args, return_indices=True, **kwargs)


def _ref_with_indices(*args, **kwargs):
    return ref_max_pool2d(*args, return_indices=True, **kwargs)


register_opinfo(
    OpInfo("conv2d", FC.conv2d, ref_conv, _conv2d_samples, dtypes=_DTYPES, op="conv",
           tols=_TOLS),
    OpInfo("conv1d", FC.conv1d, ref_conv, _conv1d_samples, dtypes=_DTYPES, op="conv",
           tols=_TOLS),
    OpInfo("conv_transpose2d", FC.conv_transpose2d, ref_conv_transpose,
           _conv_transpose_samples, dtypes=_DTYPES, op="conv_transpose", tols=_TOLS),
    OpInfo("max_pool2d_with_indices", _with_indices, _ref_with_indices, _pool_samples,
           dtypes=_DTYPES, op="max_pool", out_dtype=lambda dt: (dt, fw.int64)),
    OpInfo("max_pool2d", FC.max_pool2d, ref_max_pool2d, _pool_samples, dtypes=_DTYPES,
           op="max_pool"),
    # a decomposition: a depthwise conv with a ones kernel, then a constant divisor
    OpInfo("avg_pool2d", FC.avg_pool2d, ref_avg_pool2d, _pool_samples, dtypes=_DTYPES,
           op="conv", tols=_TOLS),
)
