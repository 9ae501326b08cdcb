"""Spatial transformers: ``affine_grid`` and ``grid_sample`` (PyTorch's semantics).

Both are compositions of registered ops, so autograd, tracing (``fw.compile``), the cuda
device and ONNX export need no kernels of their own:

- ``affine_grid`` is one batched matmul of a constant base grid (PyTorch's
  ``linspace_from_neg_one`` coordinates) with ``theta``;
- ``grid_sample`` unnormalizes the grid, applies the padding mode (``clip`` /
  ``reflect_coordinates`` of ``GridSampler.h``), computes the integer taps of every output
  point (2**nd for (tri)linear, 1 for nearest, 16 for bicubic) and their weights, then
  reads all taps with ONE ``gather`` over the flattened spatial dims and sums the
  weighted values. Out-of-range taps (``padding_mode='zeros'``) get index 0 and weight 0
  (chosen with ``where`` so that a NaN grid value never leaks into the result).

Gradients: w.r.t. ``input`` through the gather (a scatter-add); w.r.t. ``grid`` through
the weights (the integer tap positions are ``floor``/``round`` outputs, constant for
autograd), which is PyTorch's backward; ``mode='nearest'`` gives the grid a zero gradient.
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import dtypes, ops as F
from ..amp.autocast import autocast_op
from ..errors import ArgumentError, DTypeError, ShapeError
from ..tensor import Tensor

__all__ = ["affine_grid", "grid_sample"]

_CUBIC_A = -0.75


# ---------------------------------------------------------------------------------------
# affine_grid
def _base_coords(steps, align_corners):
    """PyTorch's ``linspace_from_neg_one``: ``steps`` points in [-1, 1] (pixel centers of
    a [-1, 1] image when ``align_corners=False``); a single step is 0."""
    if steps <= 1:
        return np.zeros(max(steps, 0))
    r = np.linspace(-1.0, 1.0, steps)
    return r if align_corners else r * (steps - 1) / steps


def affine_grid(theta, size, align_corners=None) -> Tensor:
    """Sampling grid of the affine maps ``theta``: ``(N, 2, 3)`` with ``size=(N, C, H, W)``
    gives ``(N, H, W, 2)``; ``(N, 3, 4)`` with ``size=(N, C, D, H, W)`` gives
    ``(N, D, H, W, 3)``. The last dim holds normalized ``(x, y[, z])`` coordinates for
    :func:`grid_sample`. ``align_corners=None`` means ``False``."""
    if not isinstance(theta, Tensor):
        raise TypeError(f"affine_grid: expected theta to be a Tensor, got "
                        f"{type(theta).__name__}")
    if not theta.dtype.is_floating_point:
        raise DTypeError(f"affine_grid: expected theta to have floating point type, but got "
                         f"{theta.dtype.name}")
    try:  # N and C may be symbolic (``x.size()`` of a dynamic-batch trace or export)
        size = [s if getattr(s, "free_symbols", None) else int(s) for s in size]
    except TypeError:
        raise ArgumentError(f"affine_grid: size must be a sequence of ints, got {size!r}") \
            from None
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid: only supports 4D and 5D sizes, for 2D and "
                                  f"3D affine transforms, respectively. Got size {size}.")
    if not all(isinstance(s, int) for s in size[2:]):
        raise NotImplementedError(f"affine_grid: needs static spatial sizes (only N and C "
                                  f"may be dynamic), got size {size}")
    if min(s for s in size if isinstance(s, int)) <= 0:
        raise ArgumentError(f"affine_grid: expected non-zero, positive output size. Got "
                            f"{size}")
    nd = len(size) - 2
    if tuple(theta.shape) != (size[0], nd, nd + 1):
        raise ShapeError(f"affine_grid: expected a batch of {nd}D affine matrices of shape "
                         f"Nx{nd}x{nd + 1} for size {size}. Got {list(theta.shape)}.")
    spatial = size[2:]                                   # (D,) H, W
    axes = [_base_coords(n, bool(align_corners)) for n in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")             # each of shape spatial
    # last dim: x (varies along W), y (H), [z (D)], then the homogeneous 1
    cols = [mesh[nd - 1 - k] for k in range(nd)] + [np.ones(tuple(spatial))]
    base = np.stack(cols, axis=-1).reshape(-1, nd + 1)  # (prod(spatial), nd + 1)
    b = F.tensor(base, dtype=theta.dtype, device=theta.device)
    grid = F.matmul(b, theta.transpose(1, 2))            # (N, prod(spatial), nd)
    return grid.reshape(grid.shape[0], *spatial, nd)


# ---------------------------------------------------------------------------------------
# grid_sample
def _unnormalize(coord, size, align_corners):
    """[-1, 1] -> pixel index space (``grid_sampler_unnormalize``)."""
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord, twice_low, twice_high):
    """``reflect_coordinates``: reflect into [twice_low/2, twice_high/2] by its borders."""
    if twice_low == twice_high:
        return coord * 0
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = F.abs(coord - lo)
    extra = F.fmod(c, span)
    flips = F.floor(c / span)
    even = F.fmod(flips, 2) == 0
    return F.where(even, extra + lo, (span + lo) - extra)


def _compute_coordinates(coord, size, padding_mode, align_corners):
    """Apply the padding mode to an unnormalized coordinate (``compute_coordinates``)."""
    if padding_mode == "border":
        return F.clamp(coord, 0, size - 1)
    if padding_mode == "reflection":
        if align_corners:
            coord = _reflect(coord, 0, 2 * (size - 1))
        else:
            coord = _reflect(coord, -1, 2 * size - 1)
        return F.clamp(coord, 0, size - 1)
    return coord


def _cubic_weights(t):
    """The 4 cubic-convolution weights (``A = -0.75``) of taps -1, 0, 1, 2 at fraction t."""
    a = _CUBIC_A

    def near(x):          # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):           # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _taps(coord, size, mode, padding_mode, align_corners, keep_grid_grad):
    """Per spatial dim: list of ``(index_int64, valid, weight_or_None)`` taps."""
    out = []
    if mode == "bicubic":
        x = _unnormalize(coord, size, align_corners)
        x0 = F.floor(x)
        t = x - x0
        for k, w in enumerate(_cubic_weights(t)):
            pos = _compute_coordinates(x0 + (k - 1), size, padding_mode, align_corners)
            out.append((pos, w))
    else:
        x = _compute_coordinates(_unnormalize(coord, size, align_corners), size,
                                 padding_mode, align_corners)
        if mode == "nearest":
            # zero gradient to the grid, like PyTorch (x * 0 is 0 wherever x is in range)
            out.append((F.round(x), x * 0 + 1 if keep_grid_grad else None))
        else:
            x0 = F.floor(x)
            t = x - x0
            out.append((x0, 1 - t))
            out.append((x0 + 1, t))
    taps = []
    for pos, w in out:
        valid = (pos >= 0) & (pos <= size - 1)
        idx = F.where(valid, pos, 0).to(dtypes.int64)
        taps.append((idx, valid, w))
    return taps


_MODES = ("bilinear", "nearest", "bicubic")
_PADDINGS = ("zeros", "border", "reflection")


def _check_grid_sample(input, grid, mode, padding_mode):
    op = "grid_sample"
    if not isinstance(input, Tensor) or not isinstance(grid, Tensor):
        raise TypeError(f"{op}: expected Tensors for input and grid, got "
                        f"{type(input).__name__} and {type(grid).__name__}")
    if mode not in _MODES:
        raise ArgumentError(f"{op}: expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                            f"but got: {mode!r}")
    if padding_mode not in _PADDINGS:
        raise ArgumentError(f"{op}: expected padding_mode to be 'zeros', 'border', or "
                            f"'reflection', but got: {padding_mode!r}")
    if input.ndim not in (4, 5):
        raise ShapeError(f"{op}: expected 4D or 5D input, but got input with shape "
                         f"{list(input.shape)}")
    nd = input.ndim - 2
    if grid.ndim != input.ndim or grid.shape[-1] != nd:
        raise ShapeError(f"{op}: expected grid of shape (N, *out, {nd}) with {input.ndim} "
                         f"dims for input of shape {list(input.shape)}, but got grid with "
                         f"shape {list(grid.shape)}")
    if isinstance(input.shape[0], int) and isinstance(grid.shape[0], int) and \
            input.shape[0] != grid.shape[0]:
        raise ShapeError(f"{op}: expected grid and input to have same batch size, but got "
                         f"input with sizes {list(input.shape)} and grid with sizes "
                         f"{list(grid.shape)}")
    if mode == "bicubic" and nd != 2:
        raise ArgumentError(f"{op}: bicubic interpolation only supports 4D input, got "
                            f"input with shape {list(input.shape)}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{op}: expected a floating-point input, got {input.dtype.name}")
    if grid.dtype != input.dtype:
        raise DTypeError(f"{op}: expected input and grid to have same dtype, but input has "
                         f"{input.dtype.name} and grid has {grid.dtype.name}")
    if input.device != grid.device:
        raise ArgumentError(f"{op}: expected input and grid to be on same device, but input "
                            f"is on {input.device} and grid is on {grid.device}")
    sizes = tuple(input.shape[2:])
    outs = tuple(grid.shape[1:-1])
    if not all(isinstance(n, int) for n in sizes + outs):
        raise NotImplementedError(f"{op}: needs static spatial sizes (only N and C may be "
                                  f"dynamic), got input {list(input.shape)} and grid "
                                  f"{list(grid.shape)}")
    if min(sizes) < 1:
        raise ShapeError(f"{op}: expected input to have non-empty spatial dimensions, got "
                         f"{list(input.shape)}")
    return nd, sizes, outs


@autocast_op("grid_sample")
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros",
                align_corners=None) -> Tensor:
    """Sample ``input`` ``(N, C, H, W)`` at the normalized ``(x, y)`` locations of ``grid``
    ``(N, Ho, Wo, 2)`` -> ``(N, C, Ho, Wo)`` (5-D: ``(N, C, D, H, W)`` with a
    ``(N, Do, Ho, Wo, 3)`` grid of ``(x, y, z)``). ``mode``: ``'bilinear'`` (trilinear for
    5-D), ``'nearest'`` (ties round half to even) or ``'bicubic'`` (4-D only,
    ``A = -0.75``); ``padding_mode``: ``'zeros'``, ``'border'`` or ``'reflection'``;
    ``align_corners=None`` means ``False``. Differentiable w.r.t. input and grid."""
    nd, sizes, outs = _check_grid_sample(input, grid, mode, padding_mode)
    align = bool(align_corners)
    n, c = input.shape[0], input.shape[1]
    npts = int(np.prod(outs))
    g = grid.reshape(n, npts, nd)
    keep = mode == "nearest" and grid.requires_grad
    # per spatial dim in (D,) H, W order; grid's last dim is (x, y[, z]) = reversed
    per_dim = [_taps(g[:, :, nd - 1 - d], sizes[d], mode, padding_mode, align, keep)
               for d in range(nd)]
    strides = [int(np.prod(sizes[d + 1:])) for d in range(nd)]
    indices, valids, weights = [], [], []
    for combo in itertools.product(*per_dim):
        flat, valid, weight = None, None, None
        for (idx, v, w), st in zip(combo, strides):
            term = idx * st if st != 1 else idx
            flat = term if flat is None else flat + term
            valid = v if valid is None else valid & v
            if w is not None:
                weight = w if weight is None else weight * w
        indices.append(flat)
        valids.append(valid)
        weights.append(weight)
    k = len(indices)
    index = F.stack(indices, 1).reshape(n, 1, k * npts)            # (N, 1, K*P)
    x = input.reshape(n, c, -1)
    vals = F.gather(x, 2, index.expand(n, c, k * npts)).reshape(n, c, k, npts)
    valid = F.stack(valids, 1).unsqueeze(1)                         # (N, 1, K, P)
    if weights[0] is None:
        out = F.where(valid, vals, 0).sum(2)
    else:
        weight = F.where(valid, F.stack(weights, 1).unsqueeze(1), 0)
        out = (vals * weight).sum(2)
    return out.reshape(n, c, *outs)
