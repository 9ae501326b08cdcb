"""NumPy kernels for ``conv``, ``conv_transpose`` and ``max_pool`` (see ops/conv_ops.py).

``conv`` is im2col: ``sliding_window_view`` gives every window as a strided view, one copy
lays it out with the longer of the output / kernel extents innermost (so the copy runs
along contiguous rows), and one batched matmul (BLAS) multiplies it with the weight; the
output comes out in NCHW order without a transpose. Depthwise convs multiply-add per tap.
``conv_transpose`` is the reverse (col2im): one batched matmul produces every kernel tap's
contribution, then one add per kernel tap scatters them into the output (for stride 1 on
flattened zero-padded planes, so each add is one contiguous run). The weight gradient
(big kernel, small output) splits its long contraction into channel chunks, one batched
GEMM. ``max_pool`` without padding copies the tap views into one contiguous tap-major
array and runs a pairwise tournament over it; otherwise a windowed argmax.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..ops import conv_ops  # noqa: F401  (registers the ops these kernels serve)
from ..ops.conv_ops import pool_out_len
from .cpu import IMPLS, impl


def _compute_dtype(dt):
    # BLAS has no half/bfloat16 kernels: accumulate in float32, round once at the end.
    return np.float32 if dt.itemsize < 4 else dt


def pad_or_crop(x, pads, value=0):
    """Pad the trailing ``len(pads)`` dims by ``(lo, hi)`` pairs; negative entries crop."""
    nd = len(pads)
    lead = x.ndim - nd
    if any(lo > 0 or hi > 0 for lo, hi in pads):
        grown = np.full(x.shape[:lead] + tuple(
            s_ + max(lo, 0) + max(hi, 0) for s_, (lo, hi) in zip(x.shape[lead:], pads)),
            value, dtype=x.dtype)
        grown[(slice(None),) * lead + tuple(
            slice(max(lo, 0), max(lo, 0) + s_) for s_, (lo, _) in
            zip(x.shape[lead:], pads))] = x
        x = grown
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        key = (slice(None),) * lead + tuple(
            slice(max(-lo, 0), x.shape[lead + i] - max(-hi, 0)) for i, (lo, hi) in
            enumerate(pads))
        x = x[key]
    return x


def windows(x, kernel, stride, dilation):
    """Strided view ``(*lead, *out, *kernel)`` of every window over the trailing dims."""
    nd = len(kernel)
    lead = x.ndim - nd
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    win = sliding_window_view(x, eff, axis=tuple(range(lead, x.ndim)))
    key = (slice(None),) * lead + tuple(slice(None, None, s) for s in stride) + \
        tuple(slice(None, None, d) for d in dilation)
    return win[key]


def _im2col(win, nd, k_major, cd):
    """Copy the window view ``(N, C, *O, *K)`` into a contiguous ``cd`` matrix laid out
    ``(N, C, *K, *O)`` (``k_major``) or ``(N, *O, C, *K)``; the longer of the output and
    kernel extents goes innermost, so the copy runs along contiguous rows."""
    n, c = win.shape[:2]
    if k_major:
        perm = (0, 1) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd))
    else:
        perm = (0,) + tuple(range(2, 2 + nd)) + (1,) + tuple(range(2 + nd, 2 + 2 * nd))
    view = win.transpose(perm)
    cols = np.empty(view.shape, dtype=cd)
    np.copyto(cols, view)
    return cols


@impl("conv")
def conv(x, w, *, stride, padding, dilation, groups):
    """im2col + one batched matmul (BLAS) per (sample, group)."""
    out_dtype = x.dtype
    cd = _compute_dtype(x.dtype)
    nd = len(stride)
    n, c = x.shape[:2]
    cout = w.shape[0]
    kernel = w.shape[2:]
    cg, coutg = c // groups, cout // groups
    if cg == 1 and groups > 1:
        return _conv_by_taps(x, w, stride, padding, dilation, groups, cd, out_dtype)
    win = windows(pad_or_crop(x, padding), kernel, stride, dilation)   # (N, C, *O, *K)
    o = win.shape[2:2 + nd]
    no, nk = int(np.prod(o)), int(np.prod(kernel))
    if no >= nk:   # the usual conv: cols (N, G, cg*K, O); W (G, coutg, cg*K) @ cols
        cols = _im2col(win, nd, True, cd).reshape(n, groups, cg * nk, no)
        wm = w.reshape(groups, coutg, cg * nk).astype(cd, copy=False)
        res = np.matmul(wm, cols)                                 # (N, G, coutg, O)
        return res.reshape((n, cout) + o).astype(out_dtype, copy=False)
    # big kernel, small output (the weight gradient): cols (G, N*O, cg*K) @ W^T, the long
    # contraction split into chunks of whole channels, one batched GEMM, chunks summed
    # (OpenBLAS is 1.5-4x slower on one long thin product)
    per = _channels_per_chunk(cg, nk)
    nb = cg // per
    cols = _im2col(win, nd, False, cd).reshape(n * no, groups, nb, per * nk)
    wm = w.astype(cd, copy=False).reshape(groups, coutg, nb, per * nk)
    res = np.matmul(cols.transpose(1, 2, 0, 3), wm.transpose(0, 2, 3, 1))
    res = res.sum(axis=1) if nb > 1 else res[:, 0]                # (G, N*O, coutg)
    res = res.reshape(groups, n, no, coutg).transpose(1, 0, 3, 2).reshape((n, cout) + o)
    return np.ascontiguousarray(res, dtype=out_dtype)


def _channels_per_chunk(cg, nk, target=1024):
    """How many input channels (of ``nk`` taps each) one GEMM chunk of the weight-gradient
    contraction takes: the largest divisor of ``cg`` keeping the chunk within ``target``
    elements (one channel when a single channel is already longer)."""
    return max((d for d in range(1, cg + 1) if cg % d == 0 and d * nk <= target), default=1)


def _conv_by_taps(x, w, stride, padding, dilation, groups, cd, out_dtype):
    """One input channel per group (depthwise convs, pooling sums, unfold): a multiply-add
    per kernel tap over strided views beats building the im2col matrix."""
    nd = len(stride)
    n = x.shape[0]
    cout, kernel = w.shape[0], w.shape[2:]
    coutg = cout // groups
    xp = pad_or_crop(x, padding)
    o = tuple((xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
              for i in range(nd))
    wr = w.reshape((groups, coutg) + kernel).astype(cd, copy=False)
    acc = np.zeros((n, groups, coutg) + o, dtype=cd)
    tmp = np.empty_like(acc)
    for tap in np.ndindex(*kernel):
        key = (slice(None), slice(None)) + tuple(
            slice(t * d, t * d + (oo - 1) * st + 1, st)
            for t, d, oo, st in zip(tap, dilation, o, stride))
        xs = xp[key][:, :, None]                                  # (N, G, 1, *O)
        wt = wr[(slice(None), slice(None)) + tap].reshape((1, groups, coutg) + (1,) * nd)
        np.multiply(xs, wt, out=tmp, casting="same_kind")
        acc += tmp
    return acc.reshape((n, cout) + o).astype(out_dtype, copy=False)


@impl("conv_transpose")
def conv_transpose(x, w, *, stride, padding, dilation, groups, output_padding):
    """One batched matmul gives every tap's contribution, ``(N, G, coutg*K, S)`` with the
    input's own layout as the right operand (no copy); col2im is one strided add per
    kernel tap."""
    out_dtype = x.dtype
    cd = _compute_dtype(x.dtype)
    n, cin = x.shape[:2]
    sp = x.shape[2:]
    coutg = w.shape[1]
    kernel = w.shape[2:]
    cing = cin // groups
    npos, nk = int(np.prod(sp)), int(np.prod(kernel))
    wm = np.ascontiguousarray(w.reshape(groups, cing, coutg * nk).transpose(0, 2, 1),
                              dtype=cd)                           # (G, coutg*K, cing)
    full_len = tuple((s_ - 1) * st + d * (k - 1) + 1
                     for s_, st, d, k in zip(sp, stride, dilation, kernel))
    if all(st == 1 for st in stride) and np.isfinite(wm).all():
        full = _col2im_flat(x, wm, sp, full_len, kernel, dilation, groups, coutg, cd)
    else:
        xm = x.reshape(n, groups, cing, npos).astype(cd, copy=False)
        cols = np.matmul(wm, xm).reshape((n, groups, coutg, nk) + sp)
        full = _col2im(cols, full_len, kernel, stride, dilation, cd)
    full = full.reshape((n, groups * coutg) + full_len)
    crop = tuple((-lo, -(hi - op)) for (lo, hi), op in zip(padding, output_padding))
    return np.ascontiguousarray(pad_or_crop(full, crop), dtype=out_dtype)


def _col2im(cols, full_len, kernel, stride, dilation, cd):
    """Sum the per-tap contributions ``cols`` ``(N, G, coutg, K, *S)`` into the full
    transposed-conv output: one strided add per kernel tap."""
    n, groups, coutg = cols.shape[:3]
    sp = cols.shape[4:]
    full = np.zeros((n, groups, coutg) + full_len, dtype=cd)
    for t, tap in enumerate(np.ndindex(*kernel)):
        key = (slice(None),) * 3 + tuple(
            slice(k * d, k * d + (s_ - 1) * st + 1, st)
            for k, d, s_, st in zip(tap, dilation, sp, stride))
        full[key] += cols[:, :, :, t]
    return full


def _col2im_flat(x, wm, sp, full_len, kernel, dilation, groups, coutg, cd):
    """Stride-1 col2im on flattened planes: the input is zero-padded to the full output's
    trailing extents, so every tap's contribution is one contiguous shifted add (the
    padding's zero columns add exact zeros where rows wrap; ``wm`` must be finite)."""
    nd = len(sp)
    n, cin = x.shape[:2]
    cing, nk = cin // groups, int(np.prod(kernel))
    psp = sp[:1] + full_len[1:]
    xp = np.zeros((n, cin) + psp, dtype=cd)
    xp[(Ellipsis,) + tuple(slice(0, s_) for s_ in sp)] = x
    npos = int(np.prod(psp))
    cols = np.matmul(wm, xp.reshape(n, groups, cing, npos))      # (N, G, coutg*K, P)
    cols = cols.reshape(n, groups, coutg, nk, npos)
    fstr = tuple(int(np.prod(full_len[i + 1:])) for i in range(nd))
    offs = [sum(t * d * f for t, d, f in zip(tap, dilation, fstr))
            for tap in np.ndindex(*kernel)]
    total = int(np.prod(full_len))
    full = np.zeros((n, groups, coutg, max(total, max(offs) + npos)), dtype=cd)
    for t, off in enumerate(offs):
        full[..., off:off + npos] += cols[:, :, :, t]
    return full[..., :total]


def _lowest(dt):
    if dt.kind == "f" or dt.name == "bfloat16":
        return -np.inf
    return np.iinfo(dt).min


@impl("max_pool")
def max_pool(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """Windowed argmax over a -inf padded input; indices are flat positions per plane."""
    nd = len(kernel_size)
    lead = x.shape[:x.ndim - nd]
    sp = x.shape[x.ndim - nd:]
    out = tuple(pool_out_len(s_, k, st, p, d, ceil_mode)
                for s_, k, st, p, d in zip(sp, kernel_size, stride, padding, dilation))
    # pad the end far enough for the last (ceil_mode) window
    pads = tuple((p, max((o - 1) * st + d * (k - 1) + 1 - s_ - p, 0))
                 for o, st, d, k, s_, p in zip(out, stride, dilation, kernel_size, sp, padding))
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        res = _max_pool_taps(x, kernel_size, stride, dilation, out)
        if res is not None:
            return res
    low = _lowest(x.dtype)
    win = windows(pad_or_crop(x, pads, low), kernel_size, stride, dilation)
    win = win[(Ellipsis,) + tuple(slice(0, o) for o in out) + (slice(None),) * nd]
    nk = int(np.prod(kernel_size))
    flat = win.reshape(lead + out + (nk,))
    arg = np.argmax(flat, axis=-1)[..., None]
    values = np.take_along_axis(flat, arg, -1)[..., 0]
    pos = np.arange(int(np.prod(sp)), dtype=np.int64).reshape(sp)
    pos_win = windows(pad_or_crop(pos, pads, -1), kernel_size, stride, dilation)
    pos_win = pos_win[tuple(slice(0, o) for o in out)].reshape(out + (nk,))
    indices = np.take_along_axis(np.broadcast_to(pos_win, flat.shape), arg, -1)[..., 0]
    return np.ascontiguousarray(values), np.ascontiguousarray(indices)


def _pair_max(a, b, ldt):
    """Merge two (max, first-argmax offset) partial results whose taps in ``a`` all precede
    those in ``b``: ``b`` wins only if strictly greater, so ties keep the first tap. Offsets
    are Python ints (one tap) or ``ldt`` arrays; unsigned wrap-around keeps the arithmetic
    select ``ia + gt * (ib - ia)`` exact."""
    (va, ia), (vb, ib) = a, b
    gt = np.greater(vb, va)
    v = np.maximum(va, vb)
    if isinstance(ia, int) and isinstance(ib, int):
        idx = gt.astype(ldt)
        idx *= ldt(ib - ia)
        idx += ldt(ia)
    else:
        diff = np.subtract(ib, ia, dtype=ldt)
        diff *= gt
        idx = np.add(diff, ia, dtype=ldt)
    return v, idx


def _offset_dtype(n):
    for dt in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dt).max:
            return dt
    return np.uint64


_NEG_ZERO = {2: np.int16(-2 ** 15), 4: np.int32(-2 ** 31), 8: np.int64(-2 ** 63)}


def _max_pool_taps(x, kernel, stride, dilation, out):
    """Max pooling whose windows need no padding, without the window matrix: the
    ``prod(kernel)`` tap views are copied once into a contiguous tap-major array (ufuncs on
    strided views are ~10x slower), then a pairwise tournament (``np.maximum`` for the
    value, a strict ``>`` for which tap, so the first maximal tap wins as in PyTorch)
    carries each winner's flat offset in the window. None (use the general path) when a
    window holds a NaN, for more than 255 taps and for dtypes other than float16/32/64 and
    ints."""
    nk = int(np.prod(kernel))
    if nk > 255 or x.dtype.kind not in "fiu":
        return None
    nd = len(kernel)
    lead = x.shape[:x.ndim - nd]
    sp = x.shape[x.ndim - nd:]
    plane = tuple(int(np.prod(sp[i + 1:])) for i in range(nd))      # flat strides
    taps = list(np.ndindex(*kernel))
    offsets = [sum(t * d * p for t, d, p in zip(tap, dilation, plane)) for tap in taps]
    ldt = _offset_dtype(max(offsets))
    tm = np.empty((nk,) + lead + out, dtype=x.dtype)
    for i, tap in enumerate(taps):
        np.copyto(tm[i], x[(Ellipsis,) + tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, dilation, out, stride))])
    parts = [(tm[i], off) for i, off in enumerate(offsets)]
    if nk == 1:
        parts = [(tm[0], np.zeros(tm[0].shape, dtype=ldt))]
    while len(parts) > 1:
        parts = [_pair_max(parts[i], parts[i + 1], ldt) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    vals, local = parts[0]
    if vals.dtype.kind == "f" and np.isnan(vals).any():
        return None
    origin = np.zeros(out, dtype=np.int64)     # flat position of each window's corner
    for i in range(nd):
        origin += (np.arange(out[i], dtype=np.int64) * (stride[i] * plane[i])).reshape(
            (-1,) + (1,) * (nd - 1 - i))
    indices = np.add(local, origin, dtype=np.int64)
    if x.dtype.kind == "f" and (x.view(_NEG_ZERO[x.dtype.itemsize]) ==
                                _NEG_ZERO[x.dtype.itemsize]).any():
        # np.maximum may return either of two equal zeros: read the values back at the
        # index, so the first maximal element's bits win
        nplane, size = int(np.prod(lead)), int(np.prod(sp))
        flat = indices.reshape(nplane, int(np.prod(out))) + \
            (np.arange(nplane, dtype=np.int64) * size)[:, None]
        vals = np.take(x.reshape(-1), flat).reshape(indices.shape)
    return np.ascontiguousarray(vals), indices


def install() -> None:
    """Attach these kernels to their ops (also done by ``framework.backends.cpu.install``)."""
    from ..ops.registry import OPS
    for name in ("conv", "conv_transpose", "max_pool"):
        OPS[name].impls["cpu"] = IMPLS[name]
