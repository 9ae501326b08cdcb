"""``scaled_dot_product_attention`` and ``multi_head_attention_forward``, written with
public ops (matmul, softmax, where), so they differentiate, trace and export as-is.

Mask conventions follow PyTorch exactly, and they differ between the two:

- ``scaled_dot_product_attention``: a bool ``attn_mask`` is True where attention IS
  allowed; a float mask is added to the scores;
- ``multi_head_attention_forward``: bool ``attn_mask`` / ``key_padding_mask`` are True
  where attention is NOT allowed; float masks are added.

A row whose every key is masked gives NaN (softmax of all ``-inf``), as in PyTorch's math
implementation.

On "cuda", ``scaled_dot_product_attention`` runs the fused ``flash_attention`` op (the
Triton kernels of ``triton_kernels.attention``: the L x S scores are never stored) when
the call allows it (no ``attn_mask``, ``dropout_p == 0``, fp16/bf16/fp32, head dims up to
128, 3-D or 4-D inputs, GQA through ``enable_gqa``), else the math path below;
``fw.nn.attention.sdpa_kernel`` restricts the choice. The CPU always runs the math path;
there, ``is_causal=True`` adds a cached constant (L, S) bias (under ``fw.compile`` the same
bias is recorded from creation ops, which the compiler folds into a constant).

``multi_head_attention_forward`` with ``need_weights=False`` (what the Transformer layers
pass) computes its attention through ``scaled_dot_product_attention``, as PyTorch does:
with ``is_causal=True``, an ``attn_mask`` (required, as in PyTorch) and no
``key_padding_mask`` the mask is trusted to be the causal one and dropped, so on "cuda" the
fused kernel runs; otherwise both masks are merged into one additive float mask.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from .. import dtypes, ops as F
from .._state import tls
from ..amp.autocast import autocast_args, autocast_op
from ..errors import ArgumentError, DTypeError, ShapeError
from ..ops import attention_ops
from ..ops.creation_ops import uniform
from ..tensor import Tensor
from .attention import SDPBackend, math_sdp_enabled, select_backend

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]

_NEG_INF = float("-inf")
# eager CPU causal biases by (L, S, dtype): a few shapes recur in training, none is large
_CAUSAL_CACHE: OrderedDict = OrderedDict()
_CAUSAL_CACHE_ENTRIES = 8
_CAUSAL_CACHE_MAX_NUMEL = 1 << 22


def _dropout(x, p, training=True):
    if not training or p == 0.0:
        return x
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout probability has to be between 0 and 1, but got {p}")
    if p == 1.0:
        return x * 0.0
    keep = uniform(x.shape, dtype=x.dtype, device=x.device) >= p
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


def _mask_to_bias(mask, dtype, allowed_when_true, name):
    """A bool mask -> 0 / -inf additive bias; a float mask is used as it is."""
    if mask.dtype is dtypes.bool_:
        blocked = mask.logical_not() if allowed_when_true else mask
        # a broadcast zero (not a full-size creation, so symbolic mask shapes trace)
        zeros = F.zeros((1,) * mask.ndim, dtype=dtype, device=mask.device).expand(mask.shape)
        return F.masked_fill(zeros, blocked, _NEG_INF)
    if not mask.dtype.is_floating_point:
        raise DTypeError(f"{name}: expected a bool or floating-point mask, got "
                         f"{mask.dtype.name}")
    return mask.to(dtype) if mask.dtype is not dtype else mask


@autocast_op("scaled_dot_product_attention")
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False) -> Tensor:
    """``softmax(q @ k^T * scale + mask) @ v`` over ``(..., L, E)`` / ``(..., S, E)`` /
    ``(..., S, Ev)``; ``is_causal`` masks keys after each query (top-left aligned)."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"scaled_dot_product_attention: {name} must be a Tensor")
        if t.ndim < 2:
            raise ShapeError(f"scaled_dot_product_attention: {name} must have at least 2 "
                             f"dims, got shape {list(t.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: query {list(query.shape)}, key "
                         f"{list(key.shape)} and value {list(value.shape)} do not fit (need "
                         f"query[-1] == key[-1] and key[-2] == value[-2])")
    if not (query.dtype is key.dtype is value.dtype):
        raise DTypeError(f"scaled_dot_product_attention: query, key and value must share a "
                         f"dtype, got {query.dtype.name}, {key.dtype.name}, "
                         f"{value.dtype.name}")
    if is_causal and attn_mask is not None:
        raise ArgumentError("scaled_dot_product_attention: explicit attn_mask should not be "
                            "set when is_causal=True")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk:
            raise ShapeError(f"scaled_dot_product_attention: {hq} query heads are not a "
                             f"multiple of {hk} key/value heads")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    if query.device.type == "cuda" or not math_sdp_enabled():
        backend = select_backend(query, key, value, attn_mask, dropout_p, enable_gqa)
        if backend is SDPBackend.FLASH_ATTENTION:
            return _flash(query, key, value, is_causal, scale)
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key, value = _repeat_heads(key, groups), _repeat_heads(value, groups)
    length, src = query.shape[-2], key.shape[-2]
    scores = F.matmul(query, key.transpose(-2, -1)) * scale
    if is_causal:
        scores = scores + _causal_bias(length, src, scores.dtype, query.device)
    elif attn_mask is not None:
        scores = scores + _mask_to_bias(attn_mask, scores.dtype, True,
                                        "scaled_dot_product_attention")
    weights = _dropout(F.softmax(scores, -1), dropout_p)
    out = F.matmul(weights, value)
    if out.ndim == 4:
        # PyTorch's fused kernels (CPU and CUDA flash / efficient) return (B, H, L, Ev) with
        # a (B, L, H, Ev) memory layout, so the usual ``y.transpose(1, 2).view(B, L, H * Ev)``
        # after sdpa needs no .contiguous(); give the same layout
        out = out.transpose(1, 2).contiguous().transpose(1, 2)
    return out


def _causal_bias(length, src, dtype, device):
    """The (L, S) additive causal bias: 0 where key ``j <= i`` for query ``i``, -inf after.

    Eagerly on the CPU it is built once per (L, S, dtype) and reused (the scores' add does
    not save it for backward, and it never requires grad). Under a trace, with symbolic
    sizes, in inference mode (an inference tensor could not be reused under autograd) or on
    other devices it is recorded from creation ops; with static sizes ``fw.compile`` folds
    those into a constant of the graph."""
    cacheable = (tls.tracer is None and not tls.inference_mode and device.type == "cpu"
                 and isinstance(length, int) and isinstance(src, int)
                 and length * src <= _CAUSAL_CACHE_MAX_NUMEL)
    if cacheable:
        key = (length, src, dtype)
        hit = _CAUSAL_CACHE.get(key)
        if hit is not None:
            _CAUSAL_CACHE.move_to_end(key)
            return hit
    allowed = F.ones((length, src), dtype=dtypes.bool_, device=device).tril()
    bias = _mask_to_bias(allowed, dtype, True, "scaled_dot_product_attention")
    if cacheable:
        _CAUSAL_CACHE[key] = bias
        if len(_CAUSAL_CACHE) > _CAUSAL_CACHE_ENTRIES:
            _CAUSAL_CACHE.popitem(last=False)
    return bias


def _flash(query, key, value, is_causal, scale):
    """The fused op on (B, H, L, E) views (a 3-D call gets a batch of one)."""
    if query.ndim == 3:
        query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        out, _ = attention_ops.flash_attention(query, key, value, is_causal, scale)
        return out.squeeze(0)
    out, _ = attention_ops.flash_attention(query, key, value, is_causal, scale)
    return out


def _repeat_heads(x, n):
    shape = tuple(x.shape)
    x = x.unsqueeze(-3).expand(shape[:-2] + (n,) + shape[-2:])
    return x.reshape(shape[:-3] + (shape[-3] * n,) + shape[-2:])


def _linear(x, w, b):
    if tls.autocast is not None:
        x, w, b = autocast_args("linear", x, w, b)
    out = F.matmul(x, w.t())
    return out if b is None else out + b


def _in_projection(query, key, value, e, in_proj_weight, in_proj_bias, separate, qw, kw, vw):
    if not separate:
        if in_proj_weight is None:
            raise ArgumentError("multi_head_attention_forward: in_proj_weight is None but "
                                "use_separate_proj_weight is False")
        ws = (in_proj_weight[:e], in_proj_weight[e:2 * e], in_proj_weight[2 * e:])
    else:
        if qw is None or kw is None or vw is None:
            raise ArgumentError("multi_head_attention_forward: use_separate_proj_weight needs "
                                "q_proj_weight, k_proj_weight and v_proj_weight")
        ws = (qw, kw, vw)
    bs = (None, None, None) if in_proj_bias is None else \
        (in_proj_bias[:e], in_proj_bias[e:2 * e], in_proj_bias[2 * e:])
    return tuple(_linear(x, w, b) for x, w, b in zip((query, key, value), ws, bs))


def _check_mha_inputs(query, key, value, key_padding_mask, attn_mask, num_heads):
    batched = query.ndim == 3
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ShapeError(f"multi_head_attention_forward: expected 2-D (unbatched) or 3-D "
                         f"query/key/value of equal rank, got {list(query.shape)}, "
                         f"{list(key.shape)}, {list(value.shape)}")
    if key.shape[:-1] != value.shape[:-1]:
        raise ShapeError(f"multi_head_attention_forward: key shape {list(key.shape)} does not "
                         f"match value shape {list(value.shape)}")
    if key_padding_mask is not None:
        want = (query.shape[1], key.shape[0]) if batched else (key.shape[0],)
        if tuple(key_padding_mask.shape) != want:
            raise ShapeError(f"multi_head_attention_forward: key_padding_mask should have "
                             f"shape {list(want)}, got {list(key_padding_mask.shape)}")
    if attn_mask is not None:
        length, src = query.shape[0], key.shape[0]
        n = query.shape[1] if batched else 1
        if attn_mask.ndim == 2 and tuple(attn_mask.shape) != (length, src):
            raise ShapeError(f"multi_head_attention_forward: the shape of the 2D attn_mask is "
                             f"{list(attn_mask.shape)}, but should be {[length, src]}")
        if attn_mask.ndim == 3 and tuple(attn_mask.shape) != (n * num_heads, length, src):
            raise ShapeError(f"multi_head_attention_forward: the shape of the 3D attn_mask is "
                             f"{list(attn_mask.shape)}, but should be "
                             f"{[n * num_heads, length, src]}")
        if attn_mask.ndim not in (2, 3):
            raise ShapeError(f"multi_head_attention_forward: attn_mask must be 2-D or 3-D, "
                             f"got {attn_mask.ndim}-D")
    return batched


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """PyTorch's multi-head attention on sequence-first ``(L, N, E)`` inputs (or unbatched
    ``(L, E)``). Returns ``(attn_output, attn_weights or None)``.

    ``need_weights=False`` computes the attention through
    :func:`scaled_dot_product_attention` (the fused kernel on "cuda" when the call allows
    it). ``is_causal`` is PyTorch's hint that ``attn_mask`` (which must be given) is the
    causal mask: with ``need_weights=False`` and no ``key_padding_mask`` the mask is not
    read and sdpa's ``is_causal`` path runs instead; otherwise the mask is used."""
    if static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: static_k/static_v are not "
                                  "implemented")
    batched = _check_mha_inputs(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    length, bsz, e = query.shape
    if e != embed_dim_to_check:
        raise ShapeError(f"multi_head_attention_forward: was expecting embedding dimension of "
                         f"{embed_dim_to_check}, but got {e}")
    if e % num_heads:
        raise ArgumentError(f"multi_head_attention_forward: embed_dim {e} not divisible by "
                            f"num_heads {num_heads}")
    if is_causal and attn_mask is None:
        raise ArgumentError("multi_head_attention_forward: need attn_mask if specifying the "
                            "is_causal hint")
    # As PyTorch, the hint replaces the mask only where it needs no merging and no weights
    # are returned. bias_k / add_zero_attn append key columns that the padded mask shows to
    # every query but sdpa's causal triangle would hide, so those keep the mask (PyTorch
    # drops it there too, and its result then differs from its need_weights=True one).
    causal_hint = (is_causal and key_padding_mask is None and not need_weights
                   and bias_k is None and bias_v is None and not add_zero_attn)
    if causal_hint:
        attn_mask = None
    head = e // num_heads
    q, k, v = _in_projection(query, key, value, e, in_proj_weight, in_proj_bias,
                             use_separate_proj_weight, q_proj_weight, k_proj_weight,
                             v_proj_weight)
    dt = q.dtype
    if attn_mask is not None:
        attn_mask = _mask_to_bias(attn_mask, dt, False, "multi_head_attention_forward")
        if attn_mask.ndim == 2:
            attn_mask = attn_mask.unsqueeze(0)
    if key_padding_mask is not None:
        key_padding_mask = _mask_to_bias(key_padding_mask, dt, False,
                                         "multi_head_attention_forward")
    if bias_k is not None or bias_v is not None:
        if bias_k is None or bias_v is None:
            raise ArgumentError("multi_head_attention_forward: bias_k and bias_v must both be "
                                "given or both be None")
        k = F.cat([k, bias_k.expand(1, bsz, e)], 0)
        v = F.cat([v, bias_v.expand(1, bsz, e)], 0)
        attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
    # (L, N, E) -> (N, H, L, head)
    q = q.reshape(length, bsz, num_heads, head).permute(1, 2, 0, 3)
    k = k.reshape(k.shape[0], bsz, num_heads, head).permute(1, 2, 0, 3)
    v = v.reshape(v.shape[0], bsz, num_heads, head).permute(1, 2, 0, 3)
    if add_zero_attn:
        zero = F.zeros((1, num_heads, 1, head), dtype=dt, device=k.device)
        zero = zero.expand(bsz, num_heads, 1, head)
        k = F.cat([k, zero], 2)
        v = F.cat([v, zero], 2)
        attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
    src = k.shape[2]
    bias = None
    if attn_mask is not None:
        bias = attn_mask.reshape(-1, num_heads, length, src) if attn_mask.shape[0] > 1 else \
            attn_mask.reshape(1, 1, length, src)
    if key_padding_mask is not None:
        kpm = key_padding_mask.reshape(bsz, 1, 1, src)
        bias = kpm if bias is None else bias + kpm
    p = dropout_p if training else 0.0
    if not need_weights:
        out = scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p,
                                           is_causal=causal_hint)
        out = _linear(out.permute(2, 0, 1, 3).reshape(length, bsz, e), out_proj_weight,
                      out_proj_bias)
        return (out if batched else out.squeeze(1)), None
    scores = F.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(head))
    if bias is not None:
        scores = scores + bias
    weights = _dropout(F.softmax(scores, -1), p)
    out = F.matmul(weights, v)                                   # (N, H, L, head)
    out = out.permute(2, 0, 1, 3).reshape(length, bsz, e)
    out = _linear(out, out_proj_weight, out_proj_bias)
    if average_attn_weights:
        weights = weights.mean(1)
    if not batched:
        return out.squeeze(1), weights.squeeze(0)
    return out, weights
