"""Neural-network composites kept as one node: ``gelu``, ``layer_norm``, ``embedding`` and
``cross_entropy_rows`` (per-row cross-entropy from logits and class indices).

Each has a decomposition into primitives (the eager fallback and what the compiler can
ask for), its own VJP rule written with public ops, and a NumPy kernel in
``framework/backends/cpu_nn.py``. Keeping them whole lets the compiler fuse them into one
row kernel and ONNX emit ``Gelu`` / ``LayerNormalization`` / ``Gather`` natively.
"""

from __future__ import annotations

import math

from ..dtypes import FLOAT, INT
from ..errors import ArgumentError, DTypeError, ShapeError
from ..tensor import Tensor
from .composite import log_softmax, softmax
from .creation_ops import arange, full
from .indexing import gather, index_put_key, index_select
from .pointwise import where
from .reduce import mean as _mean, sum as _sum
from .registry import COMPOSITE, apply, register

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# -- gelu -------------------------------------------------------------------------------
def _gelu_meta(x, *, approximate):
    return x.shape, x.dtype


def _gelu_decomp(x, *, approximate):
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * _SQRT_2_OVER_PI
        return x * 0.5 * (inner.tanh() + 1.0)
    return x * 0.5 * ((x * (1.0 / _SQRT2)).erf() + 1.0)


def _gelu_vjp(g, args, out, approximate):
    x = args[0]
    if approximate == "tanh":
        x2 = x * x
        t = ((x + x2 * x * 0.044715) * _SQRT_2_OVER_PI).tanh()
        d_inner = (x2 * (3 * 0.044715) + 1.0) * _SQRT_2_OVER_PI
        return (g * ((t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * d_inner),)
    cdf = ((x * (1.0 / _SQRT2)).erf() + 1.0) * 0.5
    pdf = (x * x * -0.5).exp() * _INV_SQRT_2PI
    return (g * (cdf + x * pdf),)


GELU = register("gelu", COMPOSITE, _gelu_meta, vjp=_gelu_vjp, decomp=_gelu_decomp)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: ``x * Phi(x)`` (``approximate='tanh'``: the tanh form)."""
    if approximate not in ("none", "tanh"):
        raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"gelu: expected a floating-point input, got {input.dtype.name}")
    return apply(GELU, input, approximate=approximate)


# -- layer_norm -------------------------------------------------------------------------
def _ln_dims(x, ndim):
    return tuple(range(x.ndim - ndim, x.ndim))


def _layer_norm_meta(x, weight, bias, *, normalized_ndim, eps):
    norm_shape = tuple(x.shape[x.ndim - normalized_ndim:])
    for name, p in (("weight", weight), ("bias", bias)):
        if tuple(p.shape) != norm_shape:
            raise ShapeError(f"layer_norm: {name} of shape {list(p.shape)} does not match "
                             f"normalized_shape {list(norm_shape)}")
        if p.dtype is not x.dtype:
            raise DTypeError(f"layer_norm: {name} dtype {p.dtype.name} differs from the input "
                             f"dtype {x.dtype.name}")
    return x.shape, x.dtype


def _normalize(x, dims, eps):
    mu = _mean(x, dims, keepdim=True)
    xc = x - mu
    rstd = (_mean(xc * xc, dims, keepdim=True) + eps).rsqrt()
    return xc * rstd, rstd


def _layer_norm_decomp(x, weight, bias, *, normalized_ndim, eps):
    xhat, _ = _normalize(x, _ln_dims(x, normalized_ndim), eps)
    return xhat * weight + bias


def _layer_norm_vjp(g, args, out, normalized_ndim, eps):
    x, weight, bias = args
    dims = _ln_dims(x, normalized_ndim)
    xhat, rstd = _normalize(x, dims, eps)
    gxhat = g * weight
    gx = (gxhat - _mean(gxhat, dims, keepdim=True)
          - xhat * _mean(gxhat * xhat, dims, keepdim=True)) * rstd
    batch = tuple(range(x.ndim - normalized_ndim))
    gw = _sum(g * xhat, batch) if batch else g * xhat
    gb = _sum(g, batch) if batch else g
    return gx, gw, gb


LAYER_NORM = register("layer_norm", COMPOSITE, _layer_norm_meta, vjp=_layer_norm_vjp,
                      decomp=_layer_norm_decomp)


def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None,
               eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` dims, then scale and shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(normalized_shape)
    n = len(shape)
    if n == 0 or tuple(input.shape[input.ndim - n:]) != shape or input.ndim < n:
        raise ShapeError(f"layer_norm: input of shape {list(input.shape)} does not end with "
                         f"normalized_shape {list(shape)}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"layer_norm: expected a floating-point input, got {input.dtype.name}")
    if weight is None:
        weight = full(shape, 1.0, dtype=input.dtype, device=input.device)
    if bias is None:
        bias = full(shape, 0.0, dtype=input.dtype, device=input.device)
    return apply(LAYER_NORM, input, weight, bias, normalized_ndim=n, eps=float(eps))


# -- embedding --------------------------------------------------------------------------
def _embedding_meta(weight, indices, *, padding_idx, scale_grad_by_freq=False):
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {list(weight.shape)}")
    if indices.dtype.category != INT:
        raise DTypeError(f"embedding: indices must be an integer tensor, got "
                         f"{indices.dtype.name}")
    return tuple(indices.shape) + (weight.shape[1],), weight.dtype


def _embedding_decomp(weight, indices, *, padding_idx, scale_grad_by_freq=False):
    rows = index_select(weight, 0, indices.reshape(-1))
    return rows.reshape(tuple(indices.shape) + (weight.shape[1],))


def _embedding_vjp(g, args, out, padding_idx, scale_grad_by_freq=False):
    weight, indices = args
    flat_idx = indices.reshape(-1)
    flat_g = g.reshape((-1, weight.shape[1]))
    if padding_idx is not None:
        flat_g = where((flat_idx == padding_idx).unsqueeze(-1), 0.0, flat_g)
    if scale_grad_by_freq:  # divide by how often each row occurs in this batch
        ones = full(flat_idx.shape, 1.0, dtype=weight.dtype, device=weight.device)
        counts = index_put_key(full((weight.shape[0],), 0.0, dtype=weight.dtype,
                                    device=weight.device), (flat_idx,), ones, accumulate=True)
        flat_g = flat_g / gather(counts, 0, flat_idx).unsqueeze(-1)
    zeros = full(weight.shape, 0.0, dtype=weight.dtype, device=weight.device)
    return index_put_key(zeros, (flat_idx,), flat_g, accumulate=True), None


EMBEDDING = register("embedding", COMPOSITE, _embedding_meta, vjp=_embedding_vjp,
                     decomp=_embedding_decomp, differentiable_args=(0,))


def embedding(indices: Tensor, weight: Tensor, padding_idx: int | None = None,
              scale_grad_by_freq: bool = False) -> Tensor:
    """Rows of ``weight`` picked by integer ``indices``; no gradient flows to row
    ``padding_idx``; ``scale_grad_by_freq`` divides each row's gradient by its count in
    ``indices``."""
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return apply(EMBEDDING, weight, indices, padding_idx=padding_idx,
                 scale_grad_by_freq=bool(scale_grad_by_freq))


# -- cross-entropy over rows ------------------------------------------------------------
def _ce_meta(logits, target, *, ignore_index):
    if logits.ndim != 2 or target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ShapeError(f"cross_entropy: expected logits (N, C) and target (N,), got "
                         f"{list(logits.shape)} and {list(target.shape)}")
    if target.dtype.category != INT:
        raise DTypeError(f"cross_entropy: target must hold class indices (int64), got "
                         f"{target.dtype.name}")
    return (logits.shape[0],), logits.dtype


def _safe_target(target, ignore_index):
    return where(target == ignore_index, 0, target)


def _ce_decomp(logits, target, *, ignore_index):
    logp = log_softmax(logits, 1)
    picked = gather(logp, 1, _safe_target(target, ignore_index).unsqueeze(1)).squeeze(1)
    return where(target == ignore_index, 0.0, -picked)


def _ce_vjp(g, args, out, ignore_index):
    logits, target = args
    p = softmax(logits, 1)
    safe = _safe_target(target, ignore_index)
    classes = arange(logits.shape[1], device=logits.device)
    onehot = (safe.unsqueeze(1) == classes).to(logits.dtype)
    gl = where((target == ignore_index).unsqueeze(1), 0.0, (p - onehot) * g.unsqueeze(1))
    return gl, None


CROSS_ENTROPY = register("cross_entropy", COMPOSITE, _ce_meta, vjp=_ce_vjp, decomp=_ce_decomp,
                         differentiable_args=(0,))


def cross_entropy_rows(logits: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
    """Per-row ``-log_softmax(logits)[i, target[i]]`` (0 where ``target == ignore_index``)."""
    if logits.dtype.category != FLOAT:
        raise DTypeError(f"cross_entropy: expected floating-point logits, got "
                         f"{logits.dtype.name}")
    return apply(CROSS_ENTROPY, logits, target, ignore_index=int(ignore_index))


__all__ = ["gelu", "layer_norm", "embedding", "cross_entropy_rows"]
