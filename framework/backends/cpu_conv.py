"""NumPy kernels for ``conv``, ``conv_transpose`` and ``max_pool`` (see ops/conv_ops.py).

``conv`` is im2col: ``sliding_window_view`` gives every window as a strided view, one
reshape copies it into a ``(groups, N*out, C/groups*K)`` matrix, and one batched matmul
(BLAS) multiplies it with the weight. ``conv_transpose`` is the reverse (col2im): one
batched matmul produces every kernel tap's contribution, then a loop over the kernel taps
(``prod(kernel)`` strided adds) scatters them into the output.
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
        widths = [(0, 0)] * lead + [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
        x = np.pad(x, widths, constant_values=value)
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


@impl("conv")
def conv(x, w, *, stride, padding, dilation, groups):
    """im2col + one batched matmul over the groups."""
    out_dtype = x.dtype
    cd = _compute_dtype(x.dtype)
    nd = len(stride)
    n, c = x.shape[:2]
    cout = w.shape[0]
    kernel = w.shape[2:]
    cg, coutg = c // groups, cout // groups
    if cg == 1:
        return _conv_by_taps(x, w, stride, padding, dilation, groups, cd, out_dtype)
    win = windows(pad_or_crop(x, padding), kernel, stride, dilation)   # (N, C, *O, *K)
    o = win.shape[2:2 + nd]
    win = win.reshape(n, groups, cg, *o, *kernel)
    # -> (G, N, *O, cg, *K): the im2col matrix (this reshape is the one copy)
    perm = (1, 0) + tuple(range(3, 3 + nd)) + (2,) + tuple(range(3 + nd, 3 + 2 * nd))
    cols = win.transpose(perm).reshape(groups, n * int(np.prod(o)), cg * int(np.prod(kernel)))
    wm = w.reshape(groups, coutg, cg * int(np.prod(kernel))).transpose(0, 2, 1)
    res = np.matmul(cols.astype(cd, copy=False), wm.astype(cd, copy=False))  # (G, N*O, coutg)
    res = res.reshape(groups, n, *o, coutg)
    res = res.transpose((1, 0, nd + 2) + tuple(range(2, 2 + nd))).reshape(n, cout, *o)
    return np.ascontiguousarray(res, dtype=out_dtype)


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
    for tap in np.ndindex(*kernel):
        key = (slice(None), slice(None)) + tuple(
            slice(t * d, t * d + (oo - 1) * st + 1, st)
            for t, d, oo, st in zip(tap, dilation, o, stride))
        xs = xp[key].astype(cd, copy=False)[:, :, None]         # (N, G, 1, *O)
        acc += xs * wr[(slice(None), slice(None)) + tap].reshape((1, groups, coutg) +
                                                                  (1,) * nd)
    return np.ascontiguousarray(acc.reshape((n, cout) + o), dtype=out_dtype)


@impl("conv_transpose")
def conv_transpose(x, w, *, stride, padding, dilation, groups, output_padding):
    """One batched matmul for every tap, then col2im (one strided add per kernel tap)."""
    out_dtype = x.dtype
    cd = _compute_dtype(x.dtype)
    nd = len(stride)
    n, cin = x.shape[:2]
    sp = x.shape[2:]
    coutg = w.shape[1]
    kernel = w.shape[2:]
    cing = cin // groups
    npos, nk = int(np.prod(sp)), int(np.prod(kernel))
    xm = x.reshape(n, groups, cing, npos).transpose(1, 0, 3, 2).reshape(groups, n * npos, cing)
    wm = w.reshape(groups, cing, coutg * nk)
    cols = np.matmul(xm.astype(cd, copy=False), wm.astype(cd, copy=False))
    cols = cols.reshape(groups, n, *sp, coutg, *kernel)
    # -> (N, G, coutg, *K, *S)
    perm = (1, 0, 2 + nd) + tuple(range(3 + nd, 3 + 2 * nd)) + tuple(range(2, 2 + nd))
    cols = cols.transpose(perm)
    full_len = tuple((s_ - 1) * st + d * (k - 1) + 1
                     for s_, st, d, k in zip(sp, stride, dilation, kernel))
    full = np.zeros((n, groups, coutg) + full_len, dtype=cd)
    for tap in np.ndindex(*kernel):
        key = (slice(None),) * 3 + tuple(
            slice(t * d, t * d + (s_ - 1) * st + 1, st)
            for t, d, s_, st in zip(tap, dilation, sp, stride))
        full[key] += cols[(slice(None),) * 3 + tap]
    full = full.reshape((n, groups * coutg) + full_len)
    crop = tuple((-lo, -(hi - op)) for (lo, hi), op in zip(padding, output_padding))
    return np.ascontiguousarray(pad_or_crop(full, crop), dtype=out_dtype)


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


def install() -> None:
    """Attach these kernels to their ops (also done by ``framework.backends.cpu.install``)."""
    from ..ops.registry import OPS
    for name in ("conv", "conv_transpose", "max_pool"):
        OPS[name].impls["cpu"] = IMPLS[name]
