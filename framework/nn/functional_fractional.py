"""Fractional max pooling (``F.fractional_max_pool2d/3d``; B. Graham, *Fractional
Max-Pooling*, 2015) with PyTorch's pseudo-random pooling sequence.

For each (sample, channel) and spatial dim one number ``u`` in [0, 1) places the ``out``
windows of size ``k`` over ``n`` inputs: window ``i < out - 1`` starts at
``int((i + u) * alpha) - int(u * alpha)`` with ``alpha = (n - k) / (out - 1)``, computed in
the input's dtype as PyTorch does, and the last window starts at ``n - k``. The ``u`` come
from ``_random_samples`` (shape ``(N, C, nd)``: for 2-D the first entry drives the width and
the second the height, for 3-D they follow (T, H, W), as in PyTorch's kernels) or are drawn
with the framework generator (``uniform``), so ``fw.manual_seed`` reproduces them.

The window starts are computed from the samples with tensor ops, so the whole pooling is a
composition: every window is gathered from the flattened plane, the max is ``argmax`` then
``gather`` (the gradient goes to the chosen element, as PyTorch's), and autograd,
``fw.compile`` and ONNX export need nothing new. Spatial sizes must be static.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes, ops as F
from ..errors import ArgumentError, DTypeError, ShapeError
from ..ops.creation_ops import uniform
from ..tensor import Tensor
from ._conv_utils import ntuple

__all__ = ["fractional_max_pool2d", "fractional_max_pool3d",
           "fractional_max_pool2d_with_indices", "fractional_max_pool3d_with_indices"]

_DIM_NAMES = {2: ("height", "width"), 3: ("time", "height", "width")}


def _ratio(output_ratio, nd, op):
    if isinstance(output_ratio, (int, float)) and not isinstance(output_ratio, bool):
        return (float(output_ratio),) * nd
    r = tuple(float(v) for v in output_ratio)
    if len(r) != nd:
        raise ArgumentError(f"{op}: output_ratio must be a number or a tuple of {nd} numbers, "
                            f"got {output_ratio!r}")
    return r


def _check_input(nd, input, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): expected a Tensor input, got {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}(): Expected {nd + 1}D or {nd + 2}D tensor, but got: "
                         f"{list(input.shape)}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{op}(): expected a floating-point input, got {input.dtype.name}")
    sizes = tuple(input.shape[input.ndim - nd:])
    if not all(isinstance(n, int) for n in sizes):
        raise NotImplementedError(f"{op}: needs static spatial sizes (only leading dims may "
                                  f"be dynamic), got shape {list(input.shape)}")
    for i in range(1, input.ndim):
        if input.shape[i] == 0:
            raise ShapeError(f"{op}(): Expected input to have non-zero size for non-batch "
                             f"dimensions, but got {list(input.shape)} with dimension {i} "
                             f"being empty.")
    return sizes


def _output_sizes(nd, sizes, k, output_size, output_ratio, op):
    if output_size is None:
        if output_ratio is None:
            raise ArgumentError(f"{op} requires specifying either an output_size or an "
                                f"output_ratio")
        out = tuple(int(n * r) for n, r in zip(sizes, _ratio(output_ratio, nd, op)))
    else:
        out = ntuple(output_size, nd, "output_size", op)
    if any(o < 0 for o in out):
        raise ArgumentError(f"{op}(): output_size must be non-negative, got {out}")
    for name, n, kk, o in zip(_DIM_NAMES[nd], sizes, k, out):
        # PyTorch's bounds: 2-D allows the windows to reach the end, 3-D keeps one short
        fits = o + kk - 1 <= n if nd == 2 else (kk <= n and o + kk - 1 < n)
        if not fits:
            raise ShapeError(f"{op}(): pool {name} {kk} too large relative to input "
                                f"{name} {n}")
    return out


def _samples(nd, x, samples, op):
    """``(N, C, nd)`` samples in ``x``'s dtype: drawn, or the given ones checked."""
    n_batch, c = x.shape[0], x.shape[1]
    if samples is None:
        return uniform((n_batch, c, nd), dtype=x.dtype, device=x.device)
    if not isinstance(samples, Tensor):
        raise TypeError(f"{op}(): _random_samples must be a Tensor, got "
                        f"{type(samples).__name__}")
    if samples.dtype is not x.dtype:
        raise DTypeError(f"{op}(): Expect _random_samples to have the same dtype as input "
                         f"({x.dtype.name}), got {samples.dtype.name}")
    if samples.ndim != 3:
        raise ShapeError(f"{op}(): Expect _random_samples to have 3 dimensions, got "
                         f"{samples.ndim}")
    if samples.shape[0] < n_batch:
        raise ShapeError(f"{op}(): Expect _random_samples.size(0) no less then input batch "
                         f"size ({n_batch}), got {samples.shape[0]}")
    if samples.shape[1] != c:
        raise ShapeError(f"{op}(): Expect _random_samples.size(1) equals to input channel "
                         f"size ({c}), got {samples.shape[1]}")
    if samples.shape[2] != nd:
        raise ShapeError(f"{op}(): Expect _random_samples.size(2) equals to {nd}; got "
                         f"{samples.shape[2]}.")
    if samples.shape[0] != n_batch:
        samples = samples[:n_batch]
    return samples.detach()


def _starts(u, n, o, k):
    """Window starts ``(N, C, o)`` (int64) along one dim from the samples ``u`` ``(N, C)``."""
    last = F.full(tuple(u.shape) + (min(o, 1),), n - k, dtype=dtypes.int64, device=u.device)
    if o <= 1:
        return last
    np_dt = u.dtype.np
    alpha = float(np_dt.type(n - k) / np_dt.type(o - 1))  # rounded to the dtype, as PyTorch
    u = u.unsqueeze(-1)
    i = F.arange(o - 1, dtype=u.dtype, device=u.device)
    head = (F.trunc((i + u) * alpha).to(dtypes.int64) -
            F.trunc(u * alpha).to(dtypes.int64))
    return F.cat([head, last], -1)


def _fractional(nd, input, kernel_size, output_size, output_ratio, return_indices,
                _random_samples):
    op = f"fractional_max_pool{nd}d"
    sizes = _check_input(nd, input, op)
    k = ntuple(kernel_size, nd, "kernel_size", op)
    if any(kk <= 0 for kk in k):
        raise ArgumentError(f"{op}(): kernel size should be greater than zero, but got "
                            f"{'x'.join(str(kk) for kk in k)}")
    out = _output_sizes(nd, sizes, k, output_size, output_ratio, op)
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    u = _samples(nd, x, _random_samples, op)
    lead = tuple(x.shape[:2])
    # flat position of every window element: (N, C, *out, *k), then one gather per plane
    strides = [int(np.prod(sizes[j + 1:])) for j in range(nd)]
    flat = None
    for j in range(nd):
        col = (1 - j) if nd == 2 else j  # 2-D samples are (W, H); 3-D ones (T, H, W)
        start = _starts(u[:, :, col], sizes[j], out[j], k[j])            # (N, C, o_j)
        pos = start.unsqueeze(-1) + F.arange(k[j], device=x.device)      # (N, C, o_j, k_j)
        shape = [1] * (2 * nd)
        shape[j], shape[nd + j] = out[j], k[j]
        term = pos.reshape(lead + tuple(shape)) * strides[j]
        flat = term if flat is None else flat + term
    window = int(np.prod(k))
    flat = flat.reshape(lead + out + (window,))
    planes = x.reshape(lead + (int(np.prod(sizes)),))
    picks = flat.reshape(lead + (int(np.prod(out)) * window,))
    win = F.gather(planes, -1, picks).reshape(lead + out + (window,))
    arg = F.argmax(win, -1, keepdim=True)
    values = F.gather(win, -1, arg).squeeze(-1)
    indices = F.gather(flat, -1, arg).squeeze(-1)
    if unbatched:
        values, indices = values.squeeze(0), indices.squeeze(0)
    return (values, indices) if return_indices else values


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """2-D fractional max pooling over ``(N, C, H, W)`` or ``(C, H, W)``: ``kernel_size``
    windows at pseudo-random steps giving ``output_size`` (or ``int(size * output_ratio)``)
    outputs per dim; indices are flat positions in H*W (for ``max_unpool2d``).
    ``_random_samples`` ``(N, C, 2)`` fixes the steps (entry 0 for W, 1 for H)."""
    return _fractional(2, input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """3-D fractional max pooling over ``(N, C, T, H, W)`` or ``(C, T, H, W)``; indices are
    flat positions in T*H*W. ``_random_samples`` ``(N, C, 3)`` fixes the steps (T, H, W)."""
    return _fractional(3, input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples)


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None,
                                       output_ratio=None, return_indices=False,
                                       _random_samples=None):
    """``fractional_max_pool2d`` returning ``(values, indices)``."""
    return _fractional(2, input, kernel_size, output_size, output_ratio, True,
                       _random_samples)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None,
                                       output_ratio=None, return_indices=False,
                                       _random_samples=None):
    """``fractional_max_pool3d`` returning ``(values, indices)``."""
    return _fractional(3, input, kernel_size, output_size, output_ratio, True,
                       _random_samples)
