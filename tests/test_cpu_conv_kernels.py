"""The CPU fast paths for conv / conv_transpose / max_pool / scatter_add / index_put /
where, each against a plain NumPy reference (the straightforward formulation the fast path
replaced): windowed argmax, im2col, np.add.at with tuple indices, np.where."""

import numpy as np
import pytest

import framework as fw
from framework.backends import cpu, cpu_conv
from framework.ops.conv_ops import pool_out_len

RNG = np.random.default_rng(0)


# -- references ----------------------------------------------------------------------------
def ref_max_pool(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Windowed argmax over a lowest-value padded input (the former kernel)."""
    nd = len(kernel_size)
    lead, sp = x.shape[:x.ndim - nd], x.shape[x.ndim - nd:]
    out = tuple(pool_out_len(s, k, st, p, d, ceil_mode)
                for s, k, st, p, d in zip(sp, kernel_size, stride, padding, dilation))
    pads = tuple((p, max((o - 1) * st + d * (k - 1) + 1 - s - p, 0))
                 for o, st, d, k, s, p in zip(out, stride, dilation, kernel_size, sp, padding))
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    win = cpu_conv.windows(cpu_conv.pad_or_crop(x, pads, low), kernel_size, stride, dilation)
    win = win[(Ellipsis,) + tuple(slice(0, o) for o in out) + (slice(None),) * nd]
    nk = int(np.prod(kernel_size))
    flat = win.reshape(lead + out + (nk,))
    arg = np.argmax(flat, axis=-1)[..., None]
    pos = np.arange(int(np.prod(sp))).reshape(sp)
    pw = cpu_conv.windows(cpu_conv.pad_or_crop(pos, pads, -1), kernel_size, stride, dilation)
    pw = pw[tuple(slice(0, o) for o in out)].reshape(out + (nk,))
    idx = np.take_along_axis(np.broadcast_to(pw, flat.shape), arg, -1)[..., 0]
    return np.take_along_axis(flat, arg, -1)[..., 0], idx


def ref_conv(x, w, stride, padding, dilation, groups):
    """Direct float64 correlation over the windows."""
    nd = len(stride)
    xp = cpu_conv.pad_or_crop(x.astype(np.float64), padding)
    win = cpu_conv.windows(xp, w.shape[2:], stride, dilation)        # (N, C, *O, *K)
    n, c = x.shape[:2]
    cg, coutg = c // groups, w.shape[0] // groups
    outs = []
    for g in range(groups):
        wg = w[g * coutg:(g + 1) * coutg].astype(np.float64)
        wi = win[:, g * cg:(g + 1) * cg]
        axes = (list(range(1, 2)) + list(range(2 + nd, 2 + 2 * nd)),
                [1] + list(range(2, 2 + nd)))
        outs.append(np.moveaxis(np.tensordot(wi, wg, axes=axes), -1, 1))
    return np.concatenate(outs, axis=1)


def ref_conv_transpose(x, w, stride, padding, dilation, groups, output_padding):
    """Scatter every input element's weighted kernel into the output (float64)."""
    n, cin = x.shape[:2]
    sp, kernel = x.shape[2:], w.shape[2:]
    coutg, cing = w.shape[1], cin // groups
    full_len = tuple((s - 1) * st + d * (k - 1) + 1
                     for s, st, d, k in zip(sp, stride, dilation, kernel))
    full = np.zeros((n, groups * coutg) + full_len)
    for g in range(groups):
        xg = x[:, g * cing:(g + 1) * cing].astype(np.float64)
        wg = w[g * cing:(g + 1) * cing].astype(np.float64)
        for tap in np.ndindex(*kernel):
            key = (slice(None), slice(g * coutg, (g + 1) * coutg)) + tuple(
                slice(t * d, t * d + (s - 1) * st + 1, st)
                for t, d, s, st in zip(tap, dilation, sp, stride))
            full[key] += np.einsum("ni...,io->no...", xg, wg[(Ellipsis,) + tap])
    crop = tuple((-lo, -(hi - op)) for (lo, hi), op in zip(padding, output_padding))
    return cpu_conv.pad_or_crop(full, crop)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    assert a.tobytes() == b.tobytes()


# -- max_pool ------------------------------------------------------------------------------
POOL_CASES = [  # shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),      # the CNN case
    ((2, 3, 9, 7), (2, 2), (2, 2), (0, 0), (1, 1), False),      # odd sizes: cropped
    ((2, 3, 9, 7), (2, 2), (2, 2), (0, 0), (1, 1), True),       # ceil_mode: general path
    ((2, 3, 9, 9), (3, 3), (2, 2), (0, 0), (1, 1), False),      # overlapping windows
    ((2, 3, 9, 9), (3, 3), (2, 2), (1, 1), (1, 1), False),      # padding: general path
    ((2, 2, 11, 11), (2, 3), (1, 2), (0, 1), (2, 2), True),     # dilation + padding + ceil
    ((2, 2, 11, 11), (3, 2), (2, 1), (0, 0), (2, 3), False),    # dilation, no padding
    ((3, 10), (2,), (2,), (0,), (1,), False),                    # 1-d
    ((2, 2, 4, 6, 6), (2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), False),  # 3-d
    ((2, 2, 6, 6), (1, 1), (1, 1), (0, 0), (1, 1), False),      # one tap
    ((2, 2, 12, 12), (4, 5), (4, 5), (0, 0), (1, 1), False),    # 20 taps
    ((0, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),      # empty batch
    ((1, 2, 6, 300), (2, 2), (2, 2), (0, 0), (1, 1), False),    # offsets past uint8
    ((1, 1, 4, 9), (1, 3), (1, 3), (0, 0), (1, 1), False),      # three taps: odd bracket
]


def _pool_input(shape, kind, dtype):
    if kind == "ties":      # few distinct values: many equal maxima in a window
        x = RNG.integers(-2, 2, size=shape).astype(dtype)
    else:
        x = RNG.standard_normal(shape).astype(dtype) if np.dtype(dtype).kind == "f" else \
            RNG.integers(-50, 50, size=shape).astype(dtype)
    if kind == "inf" and x.size:
        x.reshape(-1)[::3] = -np.inf
        x.reshape(-1)[::7] = np.inf
    if kind == "neginf" and x.size:
        x[...] = -np.inf
    if kind == "nan" and x.size:
        x.reshape(-1)[::5] = np.nan
    if kind == "zeros" and x.size:   # +0.0 and -0.0 tie: the first one's bits win
        x[...] = 0.0
        x.reshape(-1)[1::2] = -0.0
    return x


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("kind,dtype", [
    ("rand", np.float32), ("ties", np.float32), ("inf", np.float32), ("neginf", np.float64),
    ("nan", np.float32), ("zeros", np.float32), ("rand", np.float16), ("ties", np.float16),
    ("rand", np.int64), ("ties", np.int32), ("rand", np.int8), ("ties", np.uint8)])
def test_max_pool_matches_windowed_argmax(case, kind, dtype):
    shape, k, s, p, d, ceil = case
    if np.dtype(dtype).kind != "f" and kind in ("inf", "neginf", "nan", "zeros"):
        pytest.skip("float-only values")
    if np.dtype(dtype).kind == "u" and kind == "ties":
        x = RNG.integers(0, 3, size=shape).astype(dtype)
    else:
        x = _pool_input(shape, kind, dtype)
    attrs = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    v, i = cpu_conv.max_pool(x, **attrs)
    rv, ri = ref_max_pool(x, k, s, p, d, ceil)
    same_bits(i, ri.astype(np.int64))
    same_bits(v, rv)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_max_pool_signed_zero_ties(dtype):
    """ReLU-like planes (+0.0 ties) take the no-read-back path; a single -0.0 anywhere
    switches to reading the values back at the index (np.maximum may return either zero)."""
    x = np.maximum(RNG.standard_normal((2, 3, 8, 10)), 0).astype(dtype)
    attrs = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                 ceil_mode=False)
    for planted in (None, (0, 0, 0, 1), (1, 2, 7, 9)):
        if planted is not None:
            x[planted] = -0.0
            x[planted[:2] + (planted[2] - 1, planted[3])] = 0.0
        v, i = cpu_conv.max_pool(x, **attrs)
        rv, ri = ref_max_pool(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
        same_bits(i, ri.astype(np.int64))
        same_bits(v, rv)


def test_max_pool_noncontiguous_input():
    x = RNG.standard_normal((4, 3, 10, 8)).astype(np.float32).transpose(1, 0, 3, 2)
    v, i = cpu_conv.max_pool(x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0),
                             dilation=(1, 1), ceil_mode=False)
    rv, ri = ref_max_pool(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    same_bits(v, rv)
    same_bits(i, ri.astype(np.int64))


# -- conv / conv_transpose -----------------------------------------------------------------
CONV_CASES = [  # x shape, w shape, stride, padding, dilation, groups
    ((4, 1, 12, 12), (8, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),   # first CNN conv
    ((4, 8, 7, 7), (16, 8, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),    # second
    ((1, 4, 12, 12), (6, 4, 12, 12), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # weight-grad
    ((2, 6, 9, 10), (4, 3, 3, 2), (2, 1), ((0, 1), (2, 0)), (1, 2), 2),   # groups, asym
    ((2, 4, 9, 9), (8, 1, 3, 3), (1, 2), ((1, 1), (1, 1)), (2, 1), 4),    # depthwise
    ((2, 3, 11), (5, 3, 4), (3,), ((2, 1),), (2,), 1),                     # 1-d
    ((1, 2, 5, 6, 5), (3, 2, 2, 3, 2), (1, 2, 1), ((1, 0), (0, 1), (1, 1)), (1, 1, 2), 1),
    ((0, 3, 6, 6), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),    # empty batch
    ((2, 32, 10, 10), (6, 32, 10, 10), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # chunked
    ((1, 40, 16, 16), (4, 20, 16, 16), (2, 1), ((1, 0), (0, 1)), (1, 1), 2),  # chunks+groups
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_conv_matches_direct(case, dtype):
    xs, ws, s, p, d, g = case
    x = RNG.standard_normal(xs).astype(dtype)
    w = RNG.standard_normal(ws).astype(dtype)
    out = cpu_conv.conv(x, w, stride=s, padding=p, dilation=d, groups=g)
    assert out.dtype == np.dtype(dtype) and out.flags.c_contiguous
    tol = {np.float16: 2e-2, np.float32: 1e-4, np.float64: 1e-10}[dtype]
    np.testing.assert_allclose(out.astype(np.float64), ref_conv(x, w, s, p, d, g),
                               rtol=tol, atol=tol * 10)


def test_conv_weight_grad_chunks():
    """The weight-gradient branch (big kernel, small output) sums GEMMs over chunks of
    whole channels; the kernel operand arrives as a transposed view as in the graph."""
    assert cpu_conv._channels_per_chunk(32, 196) == 4
    assert cpu_conv._channels_per_chunk(32, 784) == 1
    assert cpu_conv._channels_per_chunk(7, 100) == 7
    assert cpu_conv._channels_per_chunk(1, 5000) == 1
    for dtype, tol in ((np.float32, 1e-4), (np.float16, 2e-2), (np.float64, 1e-10)):
        x = RNG.standard_normal((24, 3, 9, 9)).astype(dtype).transpose(1, 0, 2, 3)
        w = RNG.standard_normal((24, 5, 9, 9)).astype(dtype).transpose(1, 0, 2, 3)
        out = cpu_conv.conv(x, w, stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1),
                            groups=1)
        assert out.dtype == np.dtype(dtype) and out.flags.c_contiguous
        ref = ref_conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
        np.testing.assert_allclose(out.astype(np.float64), ref, rtol=tol, atol=tol * 10)


CT_CASES = [  # x shape, w shape, stride, padding, dilation, groups, output_padding
    ((4, 16, 7, 7), (16, 8, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, (0, 0)),  # CNN
    ((2, 4, 6, 5), (4, 3, 3, 2), (1, 1), ((0, 0), (1, 0)), (2, 3), 2, (0, 0)),    # flat
    ((2, 4, 6, 5), (4, 3, 3, 2), (2, 1), ((1, 1), (0, 1)), (1, 2), 1, (1, 0)),    # strided
    ((2, 3, 8), (3, 2, 3), (1,), ((2, 0),), (2,), 1, (0,)),                        # 1-d
    ((1, 2, 3, 4, 3), (2, 2, 2, 2, 3), (1, 1, 1), ((0, 0),) * 3, (1, 2, 1), 1, (0, 0, 0)),
]


@pytest.mark.parametrize("case", CT_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nonfinite", [False, True])
def test_conv_transpose_matches_scatter(case, dtype, nonfinite):
    xs, ws, s, p, d, g, op = case
    x = RNG.standard_normal(xs).astype(dtype)
    w = RNG.standard_normal(ws).astype(dtype)
    if nonfinite:   # an inf weight must not leak NaNs through the padding's zero columns
        w.reshape(-1)[0] = np.inf
    out = cpu_conv.conv_transpose(x, w, stride=s, padding=p, dilation=d, groups=g,
                                  output_padding=op)
    with np.errstate(invalid="ignore"):
        ref = ref_conv_transpose(x, w, s, p, d, g, op)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out.astype(np.float64), ref, rtol=tol, atol=tol * 10)


# -- scatter_add / index_put ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.int32])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_scatter_add_matches_add_at(dtype, dim):
    x = (RNG.standard_normal((4, 5, 6)) * 10).astype(dtype)
    ishape = [3, 4, 5]
    index = RNG.integers(0, x.shape[dim], size=ishape)        # duplicates along dim
    src = (RNG.standard_normal((4, 5, 6)) * 10).astype(dtype)
    out = cpu._scatter_add(x, index, src, dim)
    ref = x.copy()
    pos = list(np.indices(index.shape, sparse=True))
    pos[dim] = index
    np.add.at(ref, tuple(pos), src[:3, :4, :5])
    same_bits(out, ref)


def test_scatter_add_edge_cases():
    same_bits(cpu._scatter_add(np.full((), 2.0), np.zeros((), np.int64),
                               np.ones(()), 0), np.asarray(3.0))
    x = np.zeros((3, 0), np.float32)
    same_bits(cpu._scatter_add(x, np.zeros((3, 0), np.int64), x, 1), x)
    with pytest.raises(Exception):
        cpu._scatter_add(np.zeros((2, 3)), np.full((2, 3), 3), np.ones((2, 3)), 1)
    with pytest.raises(Exception):
        cpu._scatter_add(np.zeros((2, 3)), np.zeros((2, 4), np.int64), np.ones((2, 4)), 0)
    # a scalar source
    idx = np.array([[0, 0, 1]])
    same_bits(cpu._scatter_add(np.zeros((1, 3)), idx, 1.5, 1), np.array([[3.0, 1.5, 0.0]]))


def _ip_ref(x, v, key):
    out = x.copy()
    np.add.at(out, key, v)
    return out


def _ip(x, v, key):
    arrays = [k for k in key if isinstance(k, np.ndarray)]
    from framework.ops.indexing import TensorSlot
    it = iter(range(len(arrays)))
    fkey = tuple(TensorSlot(next(it)) if isinstance(k, np.ndarray) else k for k in key)
    return cpu._index_put(x, v, *arrays, key=fkey, accumulate=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("keyname", ["rows", "rows_2d", "cols", "middle", "pair", "negative",
                                     "apart", "mask", "int_and_array", "empty"])
def test_index_put_accumulate_matches_add_at(dtype, keyname):
    x = (RNG.standard_normal((6, 5, 4)) * 10).astype(dtype)
    ids = RNG.integers(0, 6, size=9)
    key = {
        "rows": (ids,),
        "rows_2d": (ids.reshape(3, 3),),
        "cols": (slice(None), RNG.integers(0, 5, size=7)),
        "middle": (slice(None), RNG.integers(0, 5, size=(2, 3)), slice(None)),
        "pair": (RNG.integers(0, 6, size=8), RNG.integers(0, 5, size=8)),
        "negative": (RNG.integers(-6, 6, size=10),),
        "apart": (RNG.integers(0, 6, size=4), slice(None), RNG.integers(0, 4, size=4)),
        "mask": (RNG.standard_normal(6) > 0,),
        "int_and_array": (1, RNG.integers(0, 5, size=6)),
        "empty": (np.zeros(0, np.int64),),
    }[keyname]
    target = x[key].shape
    v = (RNG.standard_normal(target) * 10).astype(dtype)
    same_bits(_ip(x, v, key), _ip_ref(x, v, key))
    if len(target) > 1:   # a broadcast value
        vb = (RNG.standard_normal(target[-1:]) * 10).astype(dtype)
        same_bits(_ip(x, vb, key), _ip_ref(x, vb, key))


def test_index_put_out_of_bounds_still_raises():
    with pytest.raises(IndexError):
        _ip(np.zeros((4, 3)), np.ones(3), (np.array([0, 4]),))
    with pytest.raises(IndexError):
        _ip(np.zeros((4, 3)), np.ones(3), (np.array([-5]),))


# -- where ---------------------------------------------------------------------------------
def _where_operands(dtype, shape):
    if np.dtype(dtype).kind == "f":
        a = RNG.standard_normal(shape).astype(dtype)
        a.reshape(-1)[::7] = np.nan
        a.reshape(-1)[1::11] = -0.0
        a.reshape(-1)[2::13] = -np.inf
    elif np.dtype(dtype) == np.bool_:
        a = RNG.standard_normal(shape) > 0
    else:
        a = RNG.integers(-100, 100, size=shape).astype(dtype)
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.int8,
                                   np.uint16, np.bool_])
def test_where_bit_select_matches_np_where(dtype):
    shape = (8, 16, 40)                         # over the fast-path threshold
    cond = RNG.standard_normal(shape) > 0
    a, b = _where_operands(dtype, shape), _where_operands(dtype, shape)
    cases = [(cond, a, b), (cond, a, b[0, :, :1]), (cond[:, :1], a, b), (cond, a[0], b)]
    if np.dtype(dtype).kind == "f":
        cases += [(cond, a, 0.0), (cond, 0.0, b), (cond, a, -0.0), (cond, a, 2.5),
                  (cond, 1.0, -1.0), (cond, np.nan, a)]
    elif np.dtype(dtype).kind in "iu":
        cases += [(cond, a, 0), (cond, 3, a)]
    for c, x, y in cases:
        ref = np.where(c, x, y)
        same_bits(cpu._where(c, x, y), ref)
        out = np.empty(ref.shape, ref.dtype)
        assert cpu.where_into(c, x, y, out) is out
        same_bits(out, ref)


def test_where_into_aliasing_and_small_and_bfloat16():
    cond = RNG.standard_normal(10000) > 0
    a = RNG.standard_normal(10000).astype(np.float32)
    b = RNG.standard_normal(10000).astype(np.float32)
    ref = np.where(cond, a, b)
    cpu.where_into(cond, a, b, a)                # out is an input
    same_bits(a, ref)
    small = cond[:10]
    same_bits(cpu._where(small, ref[:10], 0.0), np.where(small, ref[:10], 0.0))
    bf = fw.bfloat16.np
    x = RNG.standard_normal(10000).astype(bf)
    same_bits(cpu._where(cond, x, np.zeros((), bf)), np.where(cond, x, np.zeros((), bf)))
