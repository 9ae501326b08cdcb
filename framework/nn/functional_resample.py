"""Adaptive pooling, interpolation (``interpolate``/``upsample``), ``unfold``/``fold`` and
the pixel/channel shuffles.

All are compositions of registered ops, so autograd, tracing and export come for free:

- adaptive average pooling and (bi/tri)linear interpolation are one matmul per spatial
  dim with a constant ``(out, in)`` weight matrix built from PyTorch's index formulas;
- nearest interpolation is ``index_select`` with constant source indices;
- adaptive max pooling is ``max_pool`` when the windows are uniform, else a gather of
  every (padded) window followed by an argmax;
- ``unfold`` is a grouped ``conv`` with a one-hot kernel and ``fold`` the matching
  ``conv_transpose`` (its adjoint);
- pixel and channel shuffles are reshapes and permutes.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes, ops as F
from ..errors import ArgumentError, ShapeError
from ..ops import conv_ops
from ..tensor import Tensor
from ._conv_utils import ntuple
from .functional_antialias import antialias_matrix

__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "interpolate",
           "upsample",
           "upsample_nearest", "upsample_bilinear", "unfold", "fold", "pixel_shuffle",
           "pixel_unshuffle", "channel_shuffle"]


def _spatial(input, nd, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected a {nd + 1}-D or {nd + 2}-D input, got shape "
                         f"{list(input.shape)}")
    sizes = tuple(input.shape[input.ndim - nd:])
    if not all(isinstance(n, int) for n in sizes):
        raise NotImplementedError(f"{op}: needs static spatial sizes (only leading dims may "
                                  f"be dynamic), got shape {list(input.shape)}")
    return sizes


def _output_size(output_size, sizes, op):
    nd = len(sizes)
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) != nd:
        raise ArgumentError(f"{op}: output_size must have {nd} entries, got {output_size!r}")
    out = tuple(s if o is None else int(o) for o, s in zip(output_size, sizes))
    if any(o < 1 for o in out):
        raise ArgumentError(f"{op}: output_size must be positive, got {output_size!r}")
    return out


def _along(x, dim, matrix):
    """Apply a constant ``(out, in)`` matrix along ``dim`` of ``x``."""
    m = F.tensor(matrix, dtype=x.dtype, device=x.device)
    return F.matmul(x.movedim(dim, -1), m.t()).movedim(-1, dim)


def _adaptive_bounds(n, o):
    start = np.array([(i * n) // o for i in range(o)])
    end = np.array([-(-((i + 1) * n) // o) for i in range(o)])
    return start, end


# ---------------------------------------------------------------------------------------
# adaptive pooling
def _adaptive_avg(nd, input, output_size):
    op = f"adaptive_avg_pool{nd}d"
    sizes = _spatial(input, nd, op)
    if not input.dtype.is_floating_point:
        raise ArgumentError(f"{op}: expected a floating-point input, got {input.dtype.name}")
    out = _output_size(output_size, sizes, op)
    x = input
    for i, (n, o) in enumerate(zip(sizes, out)):
        if n == o:
            continue
        start, end = _adaptive_bounds(n, o)
        mat = np.zeros((o, n))
        for r in range(o):
            mat[r, start[r]:end[r]] = 1.0 / (end[r] - start[r])
        x = _along(x, x.ndim - nd + i, mat)
    return x


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    """Average over adaptive windows of ``(N, C, L)`` to length ``output_size``."""
    return _adaptive_avg(1, input, output_size)


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average over adaptive windows of ``(N, C, H, W)`` (``None`` keeps a size)."""
    return _adaptive_avg(2, input, output_size)


def adaptive_avg_pool3d(input, output_size) -> Tensor:
    """Average over adaptive windows of ``(N, C, D, H, W)``."""
    return _adaptive_avg(3, input, output_size)


def _adaptive_max(nd, input, output_size, return_indices):
    op = f"adaptive_max_pool{nd}d"
    sizes = _spatial(input, nd, op)
    out = _output_size(output_size, sizes, op)
    if all(n % o == 0 for n, o in zip(sizes, out)):
        k = tuple(n // o for n, o in zip(sizes, out))
        values, indices = conv_ops.max_pool(input, k, k, 0, 1, False, nd=nd)
        return (values, indices) if return_indices else values
    # Non-uniform windows: pad each window to the largest one by repeating its last
    # element (a duplicate never changes the max), gather all of them, take the argmax.
    axes = []
    for n, o in zip(sizes, out):
        start, end = _adaptive_bounds(n, o)
        width = int((end - start).max())
        axes.append(np.minimum(start[:, None] + np.arange(width)[None, :], end[:, None] - 1))
    grids = np.meshgrid(*[a.reshape(-1) for a in axes], indexing="ij")
    flat = np.ravel_multi_index(tuple(grids), sizes)          # (o0*w0, o1*w1, ...)
    shape = []
    for a in axes:
        shape += [a.shape[0], a.shape[1]]
    flat = flat.reshape(shape)                                 # (o0, w0, o1, w1, ...)
    perm = [2 * i for i in range(nd)] + [2 * i + 1 for i in range(nd)]
    flat = flat.transpose(perm).reshape(out + (-1,))           # (*out, window)
    lead = tuple(input.shape[:input.ndim - nd])
    pos = F.tensor(flat.reshape(-1), dtype=dtypes.int64, device=input.device)
    win = F.index_select(input.reshape(lead + (-1,)), -1, pos).reshape(lead + flat.shape)
    arg = F.argmax(win, -1, keepdim=True)
    values = F.gather(win, -1, arg).squeeze(-1)
    if not return_indices:
        return values
    table = F.tensor(flat, dtype=dtypes.int64, device=input.device).expand(win.shape)
    return values, F.gather(table, -1, arg).squeeze(-1)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max over adaptive windows of ``(N, C, L)``."""
    return _adaptive_max(1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over adaptive windows of ``(N, C, H, W)`` (``None`` keeps a size)."""
    return _adaptive_max(2, input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max over adaptive windows of ``(N, C, D, H, W)`` (``None`` keeps a size; indices are
    flat positions in D*H*W)."""
    return _adaptive_max(3, input, output_size, return_indices)


# ---------------------------------------------------------------------------------------
# interpolation
_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _linear_matrix(n, o, scale, align_corners):
    dst = np.arange(o, dtype=np.float64)
    if align_corners:
        src = dst * ((n - 1) / (o - 1)) if o > 1 else np.zeros(o)
    else:
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = src - i0
    mat = np.zeros((o, n))
    np.add.at(mat, (np.arange(o), i0), 1.0 - lam)
    np.add.at(mat, (np.arange(o), i1), lam)
    return mat


def _cubic_matrix(n, o, scale, align_corners):
    """UpSample.h's bicubic taps along one dim: source index (not clamped below), fraction
    clamped to [0, 1], cubic-convolution weights (A = -0.75) on 4 border-clamped taps."""
    dst = np.arange(o, dtype=np.float64)
    if align_corners:
        src = dst * ((n - 1) / (o - 1)) if o > 1 else np.zeros(o)
    else:
        src = (dst + 0.5) * scale - 0.5
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    t = np.clip(src - i0, 0.0, 1.0)
    a = -0.75
    near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1  # noqa: E731
    far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # noqa: E731
    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    mat = np.zeros((o, n))
    for k, w in enumerate(weights):
        np.add.at(mat, (np.arange(o), np.clip(i0 - 1 + k, 0, n - 1)), w)
    return mat


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False) -> Tensor:
    """Resize the spatial dims of ``(N, C, *spatial)``: modes nearest, nearest-exact,
    linear, bilinear, trilinear, bicubic (4-D), area (PyTorch's index formulas and
    ``align_corners``). ``antialias=True`` (bilinear / bicubic, 4-D) applies PIL-style
    filters widened by the downsampling factor (see ``functional_antialias``)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: expected a Tensor input, got {type(input).__name__}")
    nd = input.ndim - 2
    if nd < 1:
        raise ShapeError(f"interpolate: expected a 3-D, 4-D or 5-D input, got shape "
                         f"{list(input.shape)}")
    if antialias and not (mode in ("bilinear", "bicubic") and nd == 2):
        raise ArgumentError("Anti-alias option is restricted to bilinear and bicubic modes "
                            "and requires a 4-D tensor as input")
    if mode in _LINEAR:
        if _LINEAR[mode] != nd:
            raise ArgumentError(f"interpolate: mode {mode!r} expects a {_LINEAR[mode] + 2}-D "
                                f"input, got {input.ndim}-D")
    elif mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ArgumentError("interpolate: align_corners option can only be set with the "
                                "interpolating modes: linear | bilinear | bicubic | trilinear")
    elif mode == "bicubic":
        if nd != 2:
            raise ArgumentError(f"interpolate: mode 'bicubic' expects a 4-D input, got "
                                f"{input.ndim}-D")
    else:
        raise ArgumentError(f"interpolate: unknown mode {mode!r}")
    repeats = _integer_repeats(input, nd, size, scale_factor, mode, recompute_scale_factor)
    if repeats is not None:
        return _repeat_nearest(input, repeats)
    sizes = _spatial(input, nd, "interpolate")
    if (size is None) == (scale_factor is None):
        raise ArgumentError("interpolate: exactly one of size or scale_factor must be given")
    if size is not None:
        out = ntuple(size, nd, "size", "interpolate")
        scales = [n / o for n, o in zip(sizes, out)]
    else:
        sf = (float(scale_factor),) * nd if isinstance(scale_factor, (int, float)) else \
            tuple(float(s) for s in scale_factor)
        if len(sf) != nd:
            raise ArgumentError(f"interpolate: scale_factor must have {nd} entries")
        out = tuple(int(math.floor(n * s)) for n, s in zip(sizes, sf))
        scales = [n / o if recompute_scale_factor else 1.0 / s
                  for n, o, s in zip(sizes, out, sf)]
    if any(o < 1 for o in out):
        raise ArgumentError(f"interpolate: output size {list(out)} must be positive")
    if mode == "area":
        return _adaptive_avg(nd, input, out)
    if not input.dtype.is_floating_point and (mode in _LINEAR or mode == "bicubic"):
        raise ArgumentError(f"interpolate: mode {mode!r} needs a floating-point input")
    x = input
    for i, (n, o, sc) in enumerate(zip(sizes, out, scales)):
        if antialias:
            if o != n:  # ATen copies a dim whose size is unchanged
                if align_corners:
                    sc = (n - 1) / (o - 1) if o > 1 else 0.0
                x = _along(x, 2 + i, antialias_matrix(n, o, float(sc), mode))
            continue
        if mode in _LINEAR:
            x = _along(x, 2 + i, _linear_matrix(n, o, sc, bool(align_corners)))
            continue
        if mode == "bicubic":
            x = _along(x, 2 + i, _cubic_matrix(n, o, sc, bool(align_corners)))
            continue
        dst = np.arange(o, dtype=np.float64)
        shift = 0.5 if mode == "nearest-exact" else 0.0
        src = np.minimum(np.floor((dst + shift) * sc).astype(np.int64), n - 1)
        if o != n or np.any(src != np.arange(n)):
            x = F.index_select(x, 2 + i, F.tensor(src, dtype=dtypes.int64, device=x.device))
    return x


def _integer_repeats(input, nd, size, scale_factor, mode, recompute_scale_factor):
    """The per-dim factors when nearest(-exact) upsampling of symbolic spatial sizes (an
    export with dynamic height / width) repeats each element a whole number of times:
    ``floor(dst / s)`` and ``floor((dst + 0.5) / s)`` both map ``s * i + r`` to ``i``.
    None when the sizes are static (the index formulas below handle every case)."""
    sizes = tuple(input.shape[input.ndim - nd:])
    if all(isinstance(n, int) for n in sizes) or mode not in ("nearest", "nearest-exact") \
            or size is not None or scale_factor is None or recompute_scale_factor:
        return None
    sf = (scale_factor,) * nd if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
    if len(sf) != nd or not all(float(s).is_integer() and s >= 1 for s in sf):
        return None
    return tuple(int(s) for s in sf)


def _repeat_nearest(x, repeats):
    """Each spatial element repeated ``repeats[i]`` times along spatial dim ``i``: an
    unsqueeze / expand / flatten per dim, which needs no static size."""
    for i, r in enumerate(repeats):
        if r == 1:
            continue
        d = 2 + i
        shape = list(x.shape)
        x = x.unsqueeze(d + 1).expand(*shape[:d + 1], r, *shape[d + 1:]).flatten(d, d + 1)
    return x


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """Nearest-neighbour upsampling."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Bilinear upsampling with ``align_corners=True`` (PyTorch's legacy behaviour)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------------------------------
# unfold / fold (im2col / col2im)
def _onehot_kernel(channels, k, dtype, device):
    nk = int(np.prod(k))
    eye = np.tile(np.eye(nk).reshape((nk, 1) + k), (channels, 1) + (1,) * len(k))
    return F.tensor(eye, dtype=dtype, device=device)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding local blocks of ``(N, C, H, W)`` as columns ``(N, C*kh*kw, L)`` (im2col)."""
    if not isinstance(input, Tensor) or input.ndim not in (3, 4):
        raise ShapeError(f"unfold: expected a 3-D or 4-D input tensor, got "
                         f"{list(getattr(input, 'shape', [])) or input!r}")
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    k = ntuple(kernel_size, 2, "kernel_size", "unfold")
    c = x.shape[1]
    w = _onehot_kernel(c, k, x.dtype, x.device)
    cols = conv_ops.conv(x, w, ntuple(stride, 2, "stride", "unfold"),
                         ntuple(padding, 2, "padding", "unfold"),
                         ntuple(dilation, 2, "dilation", "unfold"), c)
    cols = cols.reshape(x.shape[0], cols.shape[1], -1)
    return cols.squeeze(0) if unbatched else cols


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum columns ``(N, C*kh*kw, L)`` back into ``(N, C, *output_size)`` (col2im)."""
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise ShapeError(f"fold: expected a 2-D or 3-D input tensor, got "
                         f"{list(getattr(input, 'shape', [])) or input!r}")
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    out = ntuple(output_size, 2, "output_size", "fold")
    k = ntuple(kernel_size, 2, "kernel_size", "fold")
    d = ntuple(dilation, 2, "dilation", "fold")
    p = ntuple(padding, 2, "padding", "fold")
    s = ntuple(stride, 2, "stride", "fold")
    nk = k[0] * k[1]
    if x.shape[1] % nk:
        raise ShapeError(f"fold: expected size of input's dimension 1 ({x.shape[1]}) to be "
                         f"divisible by the product of kernel_size ({nk})")
    blocks = tuple(conv_ops.conv_out_len(o, pp, pp, kk, ss, dd)
                   for o, pp, kk, ss, dd in zip(out, p, k, s, d))
    if blocks[0] < 1 or blocks[1] < 1 or x.shape[2] != blocks[0] * blocks[1]:
        raise ShapeError(f"fold: given output_size={out}, kernel_size={k}, dilation={d}, "
                         f"padding={p}, stride={s}, expected size of input's dimension 2 to "
                         f"match the calculated number of sliding blocks "
                         f"{blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got "
                         f"{x.shape[2]}")
    c = x.shape[1] // nk
    w = _onehot_kernel(c, k, x.dtype, x.device)
    op = tuple(o - conv_ops.conv_transpose_out_len(b, pp, pp, kk, ss, dd, 0)
               for o, b, pp, kk, ss, dd in zip(out, blocks, p, k, s, d))
    img = conv_ops.conv_transpose(x.reshape(x.shape[0], x.shape[1], *blocks), w, s, p, op, c,
                                  d)
    return img.squeeze(0) if unbatched else img


# ---------------------------------------------------------------------------------------
# pixel / channel shuffles (pure reshapes and permutes)
def pixel_shuffle(input, upscale_factor) -> Tensor:
    """``(*, C*r*r, H, W) -> (*, C, H*r, W*r)``."""
    r = int(upscale_factor)
    if input.ndim < 3 or r < 1 or input.shape[-3] % (r * r):
        raise ShapeError(f"pixel_shuffle: expected at least 3 dims with channels divisible by "
                         f"upscale_factor**2 = {r * r}, got shape {list(input.shape)}")
    *lead, c, h, w = input.shape
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor) -> Tensor:
    """``(*, C, H*r, W*r) -> (*, C*r*r, H, W)`` (the inverse of :func:`pixel_shuffle`)."""
    r = int(downscale_factor)
    if input.ndim < 3 or r < 1 or input.shape[-1] % r or input.shape[-2] % r:
        raise ShapeError(f"pixel_unshuffle: expected at least 3 dims with height and width "
                         f"divisible by downscale_factor={r}, got shape {list(input.shape)}")
    *lead, c, h, w = input.shape
    n = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input, groups) -> Tensor:
    """Interleave the channels of ``(N, C, *)`` across ``groups``."""
    if input.ndim < 3 or groups < 1 or input.shape[1] % groups:
        raise ShapeError(f"channel_shuffle: expected (N, C, *) with C divisible by groups="
                         f"{groups}, got shape {list(input.shape)}")
    n, c, *rest = input.shape
    x = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)
