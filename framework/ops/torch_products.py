"""Products, grids, statistics and integration from PyTorch's top level, as composites of
the registered ops (matmul, reshape, expand, cat, sum, cumsum...): autograd, ``fw.compile``
and ONNX export come from the parts.

meshgrid, kron, tensordot, inner, vdot, addmm, addmv, addr, addbmm, baddbmm, chain_matmul,
block_diag, cartesian_prod, combinations, dist, cov, corrcoef, vander, trapezoid/trapz,
cumulative_trapezoid, and the ``torch.*`` spellings of the ``fw.linalg`` factorizations
(det, logdet, slogdet, inverse, pinverse, svd, qr, cholesky, matrix_power).
"""

from __future__ import annotations

import itertools
import math
from collections import namedtuple
from numbers import Number

from .. import dtypes
from .._state import tls
from ..amp.autocast import autocast_op
from ..dtypes import FLOAT
from ..errors import ArgumentError, DeviceError, DTypeError, FwTypeError, ShapeError
from ..tensor import Tensor
from .creation_ops import full
from .linalg import matmul
from .math_extra import diagonal, diff
from .movement import cat, expand, flip, narrow, pad, permute, reshape, select, stack
from .pointwise import cast, promote, unary, where
from .reduce import cumprod, cumsum, mean, norm
from .reduce import sum as _sum
from .shapes import broadcast_shapes, normalize_dim

__all__ = ["meshgrid", "kron", "tensordot", "inner", "vdot", "addmm", "addmv", "addr",
           "addbmm", "baddbmm", "chain_matmul", "block_diag", "cartesian_prod", "combinations",
           "dist", "cov", "corrcoef", "vander", "trapezoid", "trapz", "cumulative_trapezoid",
           "det", "logdet", "slogdet", "inverse", "pinverse", "svd", "qr", "cholesky",
           "matrix_power"]
METHODS = """kron inner vdot addmm addmv addr addbmm baddbmm dist cov corrcoef det logdet
slogdet inverse pinverse svd qr cholesky matrix_power"""
INPLACE_METHODS = "addmm addmv addr addbmm baddbmm"

SVDResult = namedtuple("svd", ["U", "S", "V"])


def _tensor(x, op, name="input"):
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{op}(): argument '{name}' must be a Tensor, not {type(x).__name__}")
    return x


def _tensor_list(tensors, op):
    """``f(a, b, c)`` or ``f([a, b, c])`` -> a list of tensors."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    out = list(tensors)
    for i, t in enumerate(out):
        _tensor(t, op, f"tensors[{i}]")
    return out


def _size_prod(sizes):
    n = 1
    for s in sizes:
        n = n * s
    return n


# ---------------------------------------------------------------------------------------
# grids
def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 0-D/1-D tensors of one dtype: ``indexing='ij'`` (the default,
    as PyTorch's current behaviour) gives shape ``(len(t0), len(t1), ...)``; ``'xy'``
    swaps the first two dims (NumPy's default). The grids are expanded views."""
    ts = _tensor_list(tensors, "meshgrid")
    if not ts:
        raise ArgumentError("meshgrid(): expects a non-empty list of tensors")
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise ArgumentError(f"meshgrid(): indexing must be one of 'xy' or 'ij', got "
                            f"{indexing!r}")
    for i, t in enumerate(ts):
        if t.ndim > 1:
            raise ShapeError(f"meshgrid(): expected 0D or 1D tensors, but tensor {i} has "
                             f"shape {list(t.shape)}")
        if t.dtype is not ts[0].dtype:
            raise DTypeError(f"meshgrid(): expects all tensors to have the same dtype, got "
                             f"{ts[0].dtype.name} (tensor 0) and {t.dtype.name} (tensor {i})")
        if t.device != ts[0].device:
            raise DeviceError(f"meshgrid(): expects all tensors to be on the same device, "
                              f"got {ts[0].device} (tensor 0) and {t.device} (tensor {i})")
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    n = len(ts)
    shape = tuple(t.numel() for t in ts)
    grids = [expand(reshape(t, (1,) * i + (-1,) + (1,) * (n - i - 1)), shape)
             for i, t in enumerate(ts)]
    if swap:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def cartesian_prod(*tensors):
    """Cartesian product of 1-D tensors: a ``(N, len(tensors))`` tensor of all tuples in
    lexicographic order (one tensor is returned as is)."""
    ts = _tensor_list(tensors, "cartesian_prod")
    for i, t in enumerate(ts):
        if t.ndim != 1:
            raise ShapeError(f"cartesian_prod(): expects 1D tensors, but tensor {i} has "
                             f"shape {list(t.shape)}")
    if len(ts) == 1:
        return ts[0]
    return stack([reshape(g, -1) for g in meshgrid(ts, indexing="ij")], 1)


def combinations(input, r=2, with_replacement=False):
    """The length-``r`` combinations of the elements of 1-D ``input`` (as
    ``itertools.combinations``, or ``combinations_with_replacement``): ``(N, r)``; ``r=0``
    gives an empty 1-D tensor. The index pattern depends only on the length, so this is
    a gather captured whole by ``fw.compile``."""
    _tensor(input, "combinations")
    if input.ndim != 1:
        raise ShapeError(f"combinations(): expects a 1D vector, but got shape "
                         f"{list(input.shape)}")
    if isinstance(r, bool) or not isinstance(r, int):
        raise FwTypeError(f"combinations(): r must be an int, got {type(r).__name__}")
    if r < 0:
        raise ArgumentError(f"combinations(): expects a non-negative r, but got {r}")
    if r == 0:
        return narrow(input, 0, 0, 0)
    gen = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    import numpy as np
    idx = np.array(list(gen(range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    from ..creation import tensor
    return input[tensor(idx, device=input.device)]


# ---------------------------------------------------------------------------------------
# products
def kron(input, other):
    """Kronecker product: dims aligned from the right, result size ``a_i * b_i`` per dim."""
    _tensor(input, "kron")
    _tensor(other, "kron", "other")
    nd = max(input.ndim, other.ndim)
    sa = (1,) * (nd - input.ndim) + tuple(input.shape)
    sb = (1,) * (nd - other.ndim) + tuple(other.shape)
    a = reshape(input, tuple(itertools.chain.from_iterable((s, 1) for s in sa)))
    b = reshape(other, tuple(itertools.chain.from_iterable((1, s) for s in sb)))
    return reshape(a * b, tuple(x * y for x, y in zip(sa, sb)))


def _dims_list(d, ndim, op):
    d = [d] if isinstance(d, int) else list(d)
    return [normalize_dim(int(v), ndim, op) for v in d]


def tensordot(a, b, dims=2, out=None):
    """Sum of products over the last ``dims`` dims of ``a`` and the first ``dims`` of
    ``b`` (an int), or over the listed dims ``([dims of a], [dims of b])``."""
    op = "tensordot"
    _tensor(a, op, "a")
    _tensor(b, op, "b")
    if out is not None:
        raise ArgumentError("tensordot(): out= is not supported")
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int) and not isinstance(dims, bool):
        if dims < 0:
            raise ArgumentError(f"tensordot(): expects dims >= 0, but got dims={dims}")
        if dims > a.ndim or dims > b.ndim:
            raise ShapeError(f"tensordot(): expects dims <= the number of dims of both "
                             f"tensors, but got dims={dims} for shapes {list(a.shape)} and "
                             f"{list(b.shape)}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    elif isinstance(dims, (list, tuple)) and len(dims) == 2:
        da, db = _dims_list(dims[0], a.ndim, op), _dims_list(dims[1], b.ndim, op)
        if len(da) != len(db):
            raise ArgumentError(f"tensordot(): both dimension lists should have the same "
                                f"length, got {dims[0]} and {dims[1]}")
    else:
        raise ArgumentError(f"tensordot(): dims must be an int or a pair of dim lists, got "
                            f"{dims!r}")
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot(): contracted dimensions need to match, but a has "
                             f"size {a.shape[i]} in dim {i} and b has size {b.shape[j]} in "
                             f"dim {j} (shapes {list(a.shape)} and {list(b.shape)})")
    fa = [i for i in range(a.ndim) if i not in da]
    fb = [j for j in range(b.ndim) if j not in db]
    k = _size_prod(a.shape[i] for i in da)
    a2 = reshape(permute(a, fa + da), (_size_prod(a.shape[i] for i in fa), k))
    b2 = reshape(permute(b, db + fb), (k, _size_prod(b.shape[j] for j in fb)))
    return reshape(matmul(a2, b2), tuple(a.shape[i] for i in fa) +
                   tuple(b.shape[j] for j in fb))


def inner(input, other):
    """Inner product over the last dim (``input * other`` when either is 0-D): shape
    ``input.shape[:-1] + other.shape[:-1]``."""
    _tensor(input, "inner")
    _tensor(other, "inner", "other")
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise ShapeError(f"inner(): the last dimension must match on both inputs, but got "
                         f"shapes {list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, ([-1], [-1]))


def vdot(input, other):
    """Dot product of two 1-D tensors of one dtype (real tensors: ``dot``)."""
    _tensor(input, "vdot")
    _tensor(other, "vdot", "other")
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError(f"vdot(): 1D tensors expected, but got {input.ndim}D and "
                         f"{other.ndim}D tensors")
    if input.shape[0] != other.shape[0]:
        raise ShapeError(f"vdot(): inconsistent tensor size, expected tensors of the same "
                         f"numel, got {input.shape[0]} and {other.shape[0]}")
    if input.dtype is not other.dtype:
        raise DTypeError(f"vdot(): expected both vectors to have the same dtype, but got "
                         f"{input.dtype.name} and {other.dtype.name}")
    return matmul(input.conj(), other)  # the first argument conjugated


def _matrix(x, ndim, op, name):
    _tensor(x, op, name)
    if x.ndim != ndim:
        what = {1: "a vector", 2: "a matrix", 3: "a 3D tensor"}[ndim]
        raise ShapeError(f"{op}(): {name} must be {what}, got a {x.ndim}D tensor (shape "
                         f"{list(x.shape)})")
    return x


def _fused_add(input, prod, beta, alpha, op):
    """``beta * input + alpha * prod``; ``beta == 0`` ignores ``input`` (NaN and inf in it
    do not propagate), as PyTorch. ``input`` must broadcast to ``prod``'s shape."""
    _tensor(input, op)
    for name, v in (("beta", beta), ("alpha", alpha)):
        if isinstance(v, bool) or not isinstance(v, Number):
            raise FwTypeError(f"{op}(): {name} must be a number, got {type(v).__name__}")
        if prod.dtype.category != FLOAT and isinstance(v, float) and not v.is_integer():
            raise ArgumentError(f"{op}(): for integral input tensors, argument {name} must "
                                f"not be a floating point number (got {v})")
    if broadcast_shapes(input.shape, prod.shape, op) != tuple(prod.shape):
        raise ShapeError(f"{op}(): input of shape {list(input.shape)} cannot be broadcast to "
                         f"the product's shape {list(prod.shape)}")
    out = prod if alpha == 1 else prod * alpha
    if beta == 0:
        return cast(out, dtypes.result_type(input.dtype, out.dtype))
    return (input if beta == 1 else input * beta) + out


@autocast_op("addmm")
def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)`` (input broadcast to ``(n, p)``)."""
    return _fused_add(input, matmul(_matrix(mat1, 2, "addmm", "mat1"),
                                    _matrix(mat2, 2, "addmm", "mat2")), beta, alpha, "addmm")


@autocast_op("addmv")
def addmv(input, mat, vec, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat @ vec)``."""
    return _fused_add(input, matmul(_matrix(mat, 2, "addmv", "mat"),
                                    _matrix(vec, 1, "addmv", "vec")), beta, alpha, "addmv")


@autocast_op("addr")
def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """``beta * input + alpha * outer(vec1, vec2)``."""
    v1, v2 = _matrix(vec1, 1, "addr", "vec1"), _matrix(vec2, 1, "addr", "vec2")
    return _fused_add(input, reshape(v1, (-1, 1)) * reshape(v2, (1, -1)), beta, alpha, "addr")


def _batches(b1, b2, op):
    _matrix(b1, 3, op, "batch1")
    _matrix(b2, 3, op, "batch2")
    if b1.shape[0] != b2.shape[0]:
        raise ShapeError(f"{op}(): batch1 and batch2 must have the same number of batches, "
                         f"got {b1.shape[0]} and {b2.shape[0]}")
    return matmul(b1, b2)


@autocast_op("addbmm")
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * sum_b(batch1[b] @ batch2[b])``."""
    return _fused_add(input, _sum(_batches(batch1, batch2, "addbmm"), 0), beta, alpha,
                      "addbmm")


@autocast_op("baddbmm")
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * bmm(batch1, batch2)`` (input broadcast to ``(b, n, p)``)."""
    return _fused_add(input, _batches(batch1, batch2, "baddbmm"), beta, alpha, "baddbmm")


def chain_matmul(*matrices):
    """Product of 2-D matrices in the cheapest order (``fw.linalg.multi_dot``; PyTorch
    deprecates this name in its favour)."""
    ms = _tensor_list(matrices, "chain_matmul")
    if not ms:
        raise ArgumentError("chain_matmul(): expected one or more matrices")
    for i, m in enumerate(ms):
        _matrix(m, 2, "chain_matmul", f"matrices[{i}]")
    if len(ms) == 1:
        return ms[0].clone()
    from ..linalg import multi_dot
    return multi_dot(ms)


def block_diag(*tensors):
    """A block-diagonal matrix from 0-D, 1-D (a row) and 2-D tensors, dtypes promoted."""
    ts = _tensor_list(tensors, "block_diag")
    if not ts:
        return full((1, 0), 0.0)
    mats = []
    for i, t in enumerate(ts):
        if t.ndim > 2:
            raise ShapeError(f"block_diag(): input tensors must have 2 or fewer dimensions, "
                             f"but input {i} has {t.ndim} dimensions")
        mats.append(reshape(t, (1, -1)) if t.ndim < 2 else t)
    dt = dtypes.result_type(*[t.dtype for t in ts])
    width = sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        rows.append(pad(cast(m, dt), (left, width - left - m.shape[1], 0, 0)))
        left += m.shape[1]
    return cat(rows, 0)


# ---------------------------------------------------------------------------------------
# statistics
def dist(input, other, p=2):
    """The ``p``-norm of ``input - other`` (broadcast), over all elements."""
    _tensor(input, "dist")
    _tensor(other, "dist", "other")
    a, b, dt = promote(input, other, "dist")
    if dt.category != FLOAT:
        raise DTypeError(f"dist(): expected floating-point inputs, got {input.dtype.name} "
                         f"and {other.dtype.name}")
    if isinstance(p, bool) or not isinstance(p, Number):
        raise FwTypeError(f"dist(): p must be a number, got {type(p).__name__}")
    broadcast_shapes(a.shape, b.shape, "dist")
    return norm(a - b, p)


def _weights(w, name, num_obs, want_int, op):
    _tensor(w, op, name)
    if w.ndim > 1:
        raise ShapeError(f"{op}(): expected {name} to have one or fewer dimensions but got "
                         f"{name} with {w.ndim} dimensions")
    is_int = w.dtype.category == dtypes.INT
    if want_int != is_int:
        kind = "integral" if want_int else "floating point"
        raise DTypeError(f"{op}(): expected {name} to have {kind} dtype but got {name} with "
                         f"{w.dtype.name} dtype")
    if w.numel() != num_obs:
        raise ShapeError(f"{op}(): expected {name} to have the same numel as there are "
                         f"observations in the input but got {w.numel()} != {num_obs}")
    if tls.tracer is None and w._data is not None and w.numel() and bool((w < 0).any()):
        raise ArgumentError(f"{op}(): {name} cannot be negative")
    return reshape(w, -1)


def cov(input, *, correction=1, fweights=None, aweights=None):
    """Covariance of the variables in the rows of ``input`` (observations in columns; a
    1-D input is one variable), with frequency and/or importance weights and
    ``correction`` (1: Bessel's). One variable gives a 0-D result; non-positive degrees
    of freedom give inf/NaN (PyTorch warns)."""
    op = "cov"
    _tensor(input, op)
    if input.ndim > 2:
        raise ShapeError(f"{op}(): expected input to have two or fewer dimensions but got "
                         f"an input with {input.ndim} dimensions")
    x = reshape(input, (1, -1)) if input.ndim < 2 else input
    if x.dtype.category != FLOAT:
        x = cast(x, dtypes.get_default_dtype())
    num_obs = x.shape[1]
    fw_ = None if fweights is None else _weights(fweights, "fweights", num_obs, True, op)
    aw = None if aweights is None else _weights(aweights, "aweights", num_obs, False, op)
    w = aw if fw_ is None else fw_ if aw is None else fw_ * aw
    if w is None:
        w_sum = num_obs
        avg = mean(x, 1)
    else:
        w_sum = _sum(w)
        avg = _sum(x * w, 1) / w_sum
    if correction == 0:
        nf = w_sum
    elif w is None or aw is None:
        nf = w_sum - correction
    else:
        nf = w_sum - correction * _sum(w * aw) / w_sum
    if isinstance(nf, Tensor):
        nf = where(nf <= 0, 0.0, cast(nf, avg.dtype))
    else:
        nf = float(max(nf, 0))
    xm = x - reshape(avg, (-1, 1))
    c = matmul(xm if w is None else xm * w, xm.mT) / nf
    return reshape(c, ()) if c.shape[0] == 1 else c


def corrcoef(input):
    """Pearson correlation coefficients of the rows of ``input`` (``cov`` normalized by
    the standard deviations, clipped to [-1, 1])."""
    c = cov(_tensor(input, "corrcoef"))
    if c.ndim == 0:
        return c / c
    std = unary("sqrt", diagonal(c))
    c = c / reshape(std, (-1, 1)) / reshape(std, (1, -1))
    return c.clamp(-1.0, 1.0)


def vander(x, N=None, increasing=False):  # noqa: N803  (PyTorch's name)
    """Vandermonde matrix of 1-D ``x``: columns ``x**(N-1), ..., x**0`` (``increasing``:
    ``x**0`` first); ``N`` defaults to ``len(x)``. Ints and bools give int64."""
    _tensor(x, "vander", "x")
    if x.ndim != 1:
        raise ShapeError(f"vander(): x must be a one-dimensional tensor, got shape "
                         f"{list(x.shape)}")
    n = x.shape[0] if N is None else N
    if isinstance(n, bool) or not isinstance(n, int):
        raise FwTypeError(f"vander(): N must be an int, got {type(n).__name__}")
    if n < 0:
        raise ArgumentError(f"vander(): N must be non-negative, got {n}")
    dt = dtypes.promote_types(x.dtype, dtypes.int64)
    xx = cast(x, dt)
    rows = x.shape[0]
    ones = full((rows, min(n, 1)), 1, dtype=dt, device=x.device)
    if n <= 1:
        out = ones
    else:
        out = cat([ones, cumprod(expand(reshape(xx, (-1, 1)), (rows, n - 1)), 1)], 1)
    return out if increasing else flip(out, (1,))


# ---------------------------------------------------------------------------------------
# integration
def _trapezoid_args(y, x, dx, dim, op):
    _tensor(y, op, "y")
    if y.ndim == 0:
        raise ShapeError(f"{op}(): y must have at least one dimension")
    d = normalize_dim(dim, y.ndim, op)
    if x is not None and dx is not None:
        raise ArgumentError(f"{op}(): give either x or dx, not both")
    if y.dtype.category != FLOAT:
        y = cast(y, dtypes.get_default_dtype())
    if isinstance(x, Number) and not isinstance(x, bool):
        x, dx = None, x
    if x is None:
        spacing = 1.0 if dx is None else dx
        if isinstance(spacing, bool) or not isinstance(spacing, Number):
            raise FwTypeError(f"{op}(): dx must be a number, got {type(spacing).__name__}")
        return y, d, float(spacing)
    _tensor(x, op, "x")
    n = y.shape[d]
    if x.ndim == 1:
        if x.shape[0] != n:
            raise ShapeError(f"{op}(): there must be one x value for each sample point: x "
                             f"has {x.shape[0]} values, y has {n} along dim {d}")
        steps = reshape(diff(x), (1,) * d + (max(n - 1, 0),) + (1,) * (y.ndim - d - 1))
    elif x.ndim == y.ndim:
        steps = diff(x, dim=d)
    else:
        raise ShapeError(f"{op}(): x must be 1-D or have y's number of dimensions, got x "
                         f"{list(x.shape)} and y {list(y.shape)}")
    return y, d, steps


def _pair_sums(y, d):
    n = y.shape[d]
    return narrow(y, d, 1, n - 1) + narrow(y, d, 0, n - 1)


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """Trapezoidal rule along ``dim``: sample points ``x`` (1-D, or broadcasting with
    ``y``), or a constant spacing ``dx`` (default 1). Always floating."""
    y, d, spacing = _trapezoid_args(y, x, dx, dim, "trapezoid")
    n = y.shape[d]
    if n == 0:
        return _sum(y, d)
    if isinstance(spacing, float):
        ends = select(y, d, 0) + select(y, d, n - 1)
        return (_sum(y, d) - ends * 0.5) * spacing
    return _sum(spacing * _pair_sums(y, d), d) / 2


def trapz(y, x=None, *, dx=None, dim=-1):
    """Alias of :func:`trapezoid`."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """Running trapezoidal integral along ``dim``: one value fewer than ``y`` there."""
    y, d, spacing = _trapezoid_args(y, x, dx, dim, "cumulative_trapezoid")
    if y.shape[d] == 0:
        return y
    return cumsum(_pair_sums(y, d) * (spacing / 2 if isinstance(spacing, float)
                                      else spacing * 0.5), d)


# ---------------------------------------------------------------------------------------
# torch.* spellings of fw.linalg
def det(input):
    """Determinant (``fw.linalg.det``)."""
    from .linalg_ops import det as _det
    return _det(input)


def slogdet(input):
    """``(sign, logabsdet)`` of the determinant (``fw.linalg.slogdet``)."""
    from .linalg_ops import slogdet as _slogdet
    return _slogdet(input)


def logdet(input):
    """``log(det(input))``: NaN for a negative determinant, -inf for a singular matrix."""
    sign, logabs = slogdet(input)
    return where(sign < 0, math.nan, logabs)


def inverse(input):
    """Matrix inverse (``fw.linalg.inv``)."""
    from .linalg_ops import inv
    return inv(input)


def pinverse(input, rcond=1e-15):
    """Pseudo-inverse with singular values below ``rcond * largest`` treated as zero
    (``fw.linalg.pinv(input, rtol=rcond)``)."""
    from ..linalg import pinv
    return pinv(input, rtol=rcond)


def svd(input, some=True, compute_uv=True):
    """``(U, S, V)`` with ``input = U diag(S) V^T`` -- ``V``, not ``fw.linalg.svd``'s
    ``Vh``. ``some=True``: reduced factors; ``compute_uv=False``: ``U`` and ``V`` are
    zero-filled ``(*, m, m)`` and ``(*, n, n)`` matrices (as PyTorch)."""
    from .linalg_ops import svd as _svd
    from .linalg_ops import svdvals
    if not compute_uv:
        S = svdvals(input)  # noqa: N806
        batch, (m, n) = tuple(input.shape[:-2]), tuple(input.shape[-2:])
        U, V = (full(batch + (k, k), 0.0, dtype=S.dtype, device=S.device)  # noqa: N806
                for k in (m, n))
        return SVDResult(U, S, V)
    U, S, Vh = _svd(input, full_matrices=not some)  # noqa: N806
    return SVDResult(U, S, Vh.mT)


def qr(input, some=True):
    """``(Q, R)``: reduced (``some=True``) or complete QR decomposition."""
    from .linalg_ops import qr as _qr
    return _qr(input, "reduced" if some else "complete")


def cholesky(input, upper=False):
    """Cholesky factor, lower (or upper with ``upper=True``) (``fw.linalg.cholesky``)."""
    from .linalg_ops import cholesky as _cholesky
    return _cholesky(input, upper=upper)


def matrix_power(input, n):
    """``input`` to the integer power ``n`` (``fw.linalg.matrix_power``)."""
    from ..linalg import matrix_power as _matrix_power
    return _matrix_power(input, n)
