"""``fw.nn.attention.flex_attention``: attention with a user score function and a block
mask, as ``torch.nn.attention.flex_attention`` (PyTorch >= 2.5 semantics).

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    def rel_bias(score, b, h, q_idx, kv_idx):
        return score + (q_idx - kv_idx)

    block_mask = create_block_mask(causal, None, None, 128, 128)
    out = flex_attention(q, k, v, score_mod=rel_bias, block_mask=block_mask)

PyTorch calls ``score_mod`` / ``mask_mod`` once per score through ``vmap`` over scalar
indices. Here they are called once with broadcast index tensors instead (``b``: (B,1,1,1),
``h``: (1,H,1,1), ``q_idx``: (1,1,L,1), ``kv_idx``: (1,1,1,S), int64), which gives the same
values for the functions people write: elementwise arithmetic, comparisons, ``fw.where``,
``fw.tanh`` and indexing a tensor with the indices (``bias[h]``, ``doc_id[b, q_idx]``,
``table[q_idx - kv_idx + off]``). Python control flow on the indices (``if q_idx > 3``)
cannot work, in either framework.

There is no fused flex kernel: ``flex_attention`` is composed of registered ops (matmul,
where, exp, sum, log, matmul), so autograd, ``fw.compile``, the "cuda" device and ONNX export
work as for any other composite, and it computes the full (B, H, L, S) score matrix. The
block mask therefore skips no work; :meth:`BlockMask.sparsity` reports what a fused kernel
would skip.
"""

from __future__ import annotations

# ruff: noqa: N803  (PyTorch's argument names: B, H, Q_LEN, KV_LEN, BLOCK_SIZE)

import inspect
import math
import numbers

from ... import dtypes, ops as F
from ...device import to_device
from ...errors import ArgumentError, DeviceError, DTypeError, FwTypeError, ShapeError
from ...tensor import Tensor
from ...utils import _pytree

__all__ = ["BlockMask", "flex_attention", "create_block_mask", "create_mask", "or_masks",
           "and_masks", "noop_mask"]

_DEFAULT_SPARSE_BLOCK_SIZE = 128
_NEG_INF = float("-inf")


# ---------------------------------------------------------------------------------------
# mask_mod / score_mod helpers
def _mod_arity(fn, what: str) -> int:
    """4 for a mask_mod, 5 for a score_mod: PyTorch's rule (positional parameters without a
    default)."""
    if not callable(fn):
        raise FwTypeError(f"{what}: expected a callable, got {type(fn).__name__}")
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError) as e:
        raise FwTypeError(f"{what}: cannot read the signature of {fn!r}: {e}") from None
    n = sum(1 for p in params if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    if n not in (4, 5):
        raise ArgumentError(f"{what}: {_name(fn)} takes {n} arguments without defaults; a "
                            f"mask_mod takes (b, h, q_idx, kv_idx) and a score_mod takes "
                            f"(score, b, h, q_idx, kv_idx)")
    return n


def _name(fn) -> str:
    return getattr(fn, "__name__", repr(fn))


def _indices(B, H, L, S, device):
    """The broadcast int64 index tensors b (B,1,1,1), h (1,H,1,1), q_idx (1,1,L,1) and
    kv_idx (1,1,1,S) that stand for PyTorch's vmapped scalars."""
    def ar(n, shape):
        return F.arange(n, dtype=dtypes.int64, device=device).reshape(shape)
    return (ar(B, (B, 1, 1, 1)), ar(H, (1, H, 1, 1)), ar(L, (1, 1, L, 1)),
            ar(S, (1, 1, 1, S)))


def _broadcast_result(out, shape, what, fn):
    """``fn``'s result as a tensor of ``shape`` (a Python bool/number becomes a 0-d one)."""
    if not isinstance(out, Tensor):
        raise FwTypeError(f"{what}: {_name(fn)} must return a Tensor, got "
                          f"{type(out).__name__}")
    if tuple(out.shape) == tuple(shape):
        return out
    try:
        return out.expand(shape)
    except (ValueError, RuntimeError) as e:
        raise ShapeError(f"{what}: {_name(fn)} returned shape {list(out.shape)}, which does "
                         f"not broadcast to the scores' {list(shape)} (index tensors are "
                         f"b (B,1,1,1), h (1,H,1,1), q_idx (1,1,L,1), kv_idx (1,1,1,S)): "
                         f"{e}") from None


def _apply_mask_mod(mask_mod, b, h, q_idx, kv_idx, shape, what):
    out = _broadcast_result(mask_mod(b, h, q_idx, kv_idx), shape, what, mask_mod)
    if out.dtype is not dtypes.bool_:
        raise DTypeError(f"{what}: mask_mod {_name(mask_mod)} must return a bool tensor "
                         f"(True where attention is allowed), got {out.dtype.name}")
    return out


def noop_mask(batch, head, token_q, token_kv):
    """A mask_mod that masks nothing (a 0-d True)."""
    return batch.new_ones((), dtype=dtypes.bool_)


def _check_mods(mods, what):
    for m in mods:
        if not callable(m):
            raise FwTypeError(f"{what}: every argument must be a callable mask_mod, got "
                              f"{type(m).__name__}")


def or_masks(*mask_mods):
    """A mask_mod that allows a score when any of ``mask_mods`` does (False for none)."""
    _check_mods(mask_mods, "or_masks")

    def or_mask(b, h, q_idx, kv_idx):
        result = b.new_zeros((), dtype=dtypes.bool_)
        for mod in mask_mods:
            result = result | mod(b, h, q_idx, kv_idx)
        return result
    return or_mask


def and_masks(*mask_mods):
    """A mask_mod that allows a score when all of ``mask_mods`` do (True for none)."""
    _check_mods(mask_mods, "and_masks")

    def and_mask(b, h, q_idx, kv_idx):
        result = b.new_ones((), dtype=dtypes.bool_)
        for mod in mask_mods:
            result = result & mod(b, h, q_idx, kv_idx)
        return result
    return and_mask


def _positive_int(x, name, what):
    if isinstance(x, bool) or not isinstance(x, int) or x <= 0:
        raise ArgumentError(f"{what}: {name} must be a positive int, got {x!r}")
    return x


def _batch_heads(B, H, what):
    B = 1 if B is None else _positive_int(B, "B", what)
    H = 1 if H is None else _positive_int(H, "H", what)
    return B, H


def create_mask(mod_fn, B, H, Q_LEN, KV_LEN, device="cpu"):
    """The dense (B, H, Q_LEN, KV_LEN) bool mask of a mask_mod (True where attention is
    allowed), or of a score_mod (True where it does not return -inf for a zero score).
    ``B`` / ``H`` None mean 1 (broadcast over batch / heads)."""
    arity = _mod_arity(mod_fn, "create_mask")
    B, H = _batch_heads(B, H, "create_mask")
    Q_LEN = _positive_int(Q_LEN, "Q_LEN", "create_mask")
    KV_LEN = _positive_int(KV_LEN, "KV_LEN", "create_mask")
    device = to_device(device)
    b, h, q_idx, kv_idx = _indices(B, H, Q_LEN, KV_LEN, device)
    shape = (B, H, Q_LEN, KV_LEN)
    if arity == 4:
        return _apply_mask_mod(mod_fn, b, h, q_idx, kv_idx, shape, "create_mask")
    zeros = F.zeros((1, 1, 1, 1), dtype=dtypes.float32, device=device).expand(shape)
    out = _broadcast_result(mod_fn(zeros, b, h, q_idx, kv_idx), shape, "create_mask", mod_fn)
    return (out == _NEG_INF).logical_not()


# ---------------------------------------------------------------------------------------
# BlockMask
def _cdiv(a, b):
    return -(-a // b)


def _block_grids(mask, bq, bk):
    """(partial, full) bool (B, H, ceil(L/bq), ceil(S/bk)) grids of a dense bool mask: a
    block is full when every one of its bq x bk entries is allowed, partial when some are.
    The last row/column of blocks is padded with masked entries, so it is never full."""
    B, H, L, S = mask.shape
    nq, nk = _cdiv(L, bq), _cdiv(S, bk)
    counts = mask.to(dtypes.int32)
    if nq * bq != L or nk * bk != S:
        counts = F.pad(counts, (0, nk * bk - S, 0, nq * bq - L))
    counts = counts.reshape(B, H, nq, bq, nk, bk).sum((3, 5))
    full = counts == bq * bk
    return (counts > 0) & full.logical_not(), full


def _ordered(grid):
    """PyTorch's (num_blocks, indices) of a bool block grid: per row, how many blocks are
    set, and the set column indices first (ascending), then the others (int32)."""
    as_int = grid.to(dtypes.int32)
    order = F.argsort(as_int, dim=-1, descending=True, stable=True)
    return as_int.sum(-1).to(dtypes.int32), order.to(dtypes.int32)


def _from_ordered(num_blocks, indices, ncols):
    """The bool block grid of PyTorch's (num_blocks, indices) pair."""
    cols = F.arange(ncols, dtype=dtypes.int64, device=indices.device)
    slot = F.arange(indices.shape[-1], dtype=dtypes.int64, device=indices.device)
    valid = slot < num_blocks.to(dtypes.int64).unsqueeze(-1)            # (..., rows, J)
    hits = (indices.to(dtypes.int64).unsqueeze(-1) == cols) & valid.unsqueeze(-1)
    return hits.any(-2)                                                # (..., rows, ncols)


def _block_list(grid_name, transposed, part, doc):
    """A read-only BlockMask attribute with PyTorch's (num_blocks, indices) of a grid."""
    def get(self):
        grid = getattr(self, grid_name)
        return _ordered(grid.transpose(-2, -1) if transposed else grid)[part]
    return property(get, doc=f"int32: {doc} (PyTorch's BlockMask layout).")


def _expand_blocks(grid, bq, bk, L, S):
    """A (B, H, nq, nk) block grid as a (B, H, L, S) element mask (rows/columns of blocks
    past L / S are dropped)."""
    nq, nk = _cdiv(L, bq), _cdiv(S, bk)
    grid = grid[:, :, :nq, :nk]
    bq, bk = (L if nq == 1 else bq), (S if nk == 1 else bk)   # one block: no padding rows
    B, H = grid.shape[0], grid.shape[1]
    out = grid.reshape(B, H, nq, 1, nk, 1).expand(B, H, nq, bq, nk, bk)
    out = out.reshape(B, H, nq * bq, nk * bk)
    return out if (nq * bq, nk * bk) == (L, S) else out[:, :, :L, :S]


class BlockMask:
    """Which (Q_BLOCK_SIZE x KV_BLOCK_SIZE) blocks of the attention matrix have any allowed
    score, as ``torch.nn.attention.flex_attention.BlockMask``.

    Built by :func:`create_block_mask` (or :meth:`from_kv_blocks`). A block is *full* when
    every score in it is allowed (``mask_mod`` is not consulted there), *partial* when some
    are (``mask_mod`` decides per score, called by :func:`flex_attention` with the real
    batch and head indices), and skipped otherwise. PyTorch's index tensors
    (``kv_num_blocks``, ``kv_indices``, ``full_kv_*``, ``q_*``, ``full_q_*``, int32) are
    derived on access."""

    def __init__(self, seq_lengths, partial_blocks, full_blocks, BLOCK_SIZE, mask_mod):
        self.seq_lengths = (int(seq_lengths[0]), int(seq_lengths[1]))
        self.BLOCK_SIZE = (int(BLOCK_SIZE[0]), int(BLOCK_SIZE[1]))
        self.mask_mod = noop_mask if mask_mod is None else mask_mod
        self._partial = partial_blocks   # bool (B, H, nq, nk)
        self._full = full_blocks         # bool (B, H, nq, nk)
        nq, nk = (_cdiv(s, b) for s, b in zip(self.seq_lengths, self.BLOCK_SIZE))
        for name, g in (("partial", partial_blocks), ("full", full_blocks)):
            if not isinstance(g, Tensor) or g.ndim != 4 or g.dtype is not dtypes.bool_ \
                    or g.shape[2] < nq or g.shape[3] < nk:
                raise ShapeError(f"BlockMask: the {name} block grid must be a bool (B, H, "
                                 f">={nq}, >={nk}) tensor for seq_lengths "
                                 f"{self.seq_lengths} and BLOCK_SIZE {self.BLOCK_SIZE}, got "
                                 f"{_describe(g)}")

    @classmethod
    def from_kv_blocks(cls, kv_num_blocks, kv_indices, full_kv_num_blocks=None,
                       full_kv_indices=None, BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE,
                       mask_mod=None, seq_lengths=None):
        """A BlockMask from PyTorch's per-row block lists: ``kv_num_blocks`` (B, H, nq) and
        ``kv_indices`` (B, H, nq, nk) for the partial blocks, optionally the same pair for
        the full ones; ``seq_lengths`` defaults to (nq * Q_BLOCK_SIZE, nk * KV_BLOCK_SIZE)."""
        if not isinstance(kv_indices, Tensor) or kv_indices.ndim != 4 or \
                not isinstance(kv_num_blocks, Tensor) or \
                tuple(kv_num_blocks.shape) != tuple(kv_indices.shape[:3]):
            raise ShapeError(f"BlockMask.from_kv_blocks: expected kv_num_blocks (B, H, nq) and "
                             f"kv_indices (B, H, nq, nk), got {_describe(kv_num_blocks)} and "
                             f"{_describe(kv_indices)}")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise ArgumentError("BlockMask.from_kv_blocks: full_kv_num_blocks and "
                                "full_kv_indices must be both given or both omitted")
        bq, bk = _block_size(BLOCK_SIZE, "BlockMask.from_kv_blocks")
        ncols = kv_indices.shape[-1]
        partial = _from_ordered(kv_num_blocks, kv_indices, ncols)
        if full_kv_indices is None:
            full = partial & partial.logical_not()
        else:
            if tuple(full_kv_indices.shape) != tuple(kv_indices.shape):
                raise ShapeError(f"BlockMask.from_kv_blocks: full_kv_indices "
                                 f"{list(full_kv_indices.shape)} must have kv_indices' shape "
                                 f"{list(kv_indices.shape)}")
            full = _from_ordered(full_kv_num_blocks, full_kv_indices, ncols)
        if seq_lengths is None:
            seq_lengths = (kv_indices.shape[-2] * bq, ncols * bk)
        return cls(seq_lengths, partial, full, (bq, bk), mask_mod)

    @property
    def shape(self):
        """(B, H, Q_LEN, KV_LEN); B / H are 1 when the mask broadcasts over them."""
        return tuple(self._partial.shape[:2]) + self.seq_lengths

    @property
    def device(self):
        """The device of the block grids."""
        return self._partial.device

    kv_num_blocks = _block_list("_partial", False, 0, "partial blocks in each query-block row")
    kv_indices = _block_list("_partial", False, 1, "their key-block indices, in order")
    full_kv_num_blocks = _block_list("_full", False, 0, "full blocks in each query-block row")
    full_kv_indices = _block_list("_full", False, 1, "their key-block indices, in order")
    q_num_blocks = _block_list("_partial", True, 0, "partial blocks in each key-block column")
    q_indices = _block_list("_partial", True, 1, "their query-block indices, in order")
    full_q_num_blocks = _block_list("_full", True, 0, "full blocks in each key-block column")
    full_q_indices = _block_list("_full", True, 1, "their query-block indices, in order")

    def numel(self) -> int:
        """B * H * Q_LEN * KV_LEN (not accounting for sparsity)."""
        return math.prod(self.shape)

    def to_dense(self) -> Tensor:
        """The block-level mask: an int32 (B, H, ceil(Q_LEN/Q_BLOCK_SIZE),
        ceil(KV_LEN/KV_BLOCK_SIZE)) tensor, 1 where a block is computed (partial or full)."""
        return (self._partial | self._full).to(dtypes.int32)

    def sparsity(self) -> float:
        """The percentage of blocks that are skipped (not computed) by a block-sparse
        kernel."""
        computed = (self._partial | self._full).to(dtypes.int64).sum().item()
        return 100.0 * (1.0 - computed / self._partial.numel())

    def to(self, device) -> BlockMask:
        """A BlockMask with its tensors on ``device`` (this one is left as it is)."""
        return BlockMask(self.seq_lengths, self._partial.to(device), self._full.to(device),
                         self.BLOCK_SIZE, self.mask_mod)

    def __repr__(self) -> str:
        grid = tuple(self._partial.shape)
        rows, cols = grid[:-1], grid[:2] + (grid[3], grid[2])
        lines = [f"kv_num_blocks={rows}", f"kv_indices={grid}", f"full_kv_num_blocks={rows}",
                 f"full_kv_indices={grid}", f"q_num_blocks={cols[:-1]}", f"q_indices={cols}",
                 f"full_q_num_blocks={cols[:-1]}", f"full_q_indices={cols}",
                 f"BLOCK_SIZE={self.BLOCK_SIZE}", f"shape={self.shape}",
                 f"sparsity={self.sparsity():.2f}%", f"mask_mod={_name(self.mask_mod)}"]
        return "BlockMask(\n" + "".join(f"    {s},\n" for s in lines[:-1]) + \
            f"    {lines[-1]}\n)"

    def _element_mask(self, b, h, q_idx, kv_idx, shape):
        """The (B, H, L, S) bool mask flex_attention applies: full blocks, plus the scores
        of partial blocks that ``mask_mod`` allows."""
        L, S = shape[2], shape[3]
        bq, bk = self.BLOCK_SIZE
        full = _expand_blocks(self._full, bq, bk, L, S)
        partial = _expand_blocks(self._partial, bq, bk, L, S)
        inside = _apply_mask_mod(self.mask_mod, b, h, q_idx, kv_idx, shape, "flex_attention")
        return (full | (partial & inside)).expand(shape)


def _flatten_block_mask(bm):
    """(children, context) of a BlockMask: its two block grids, and what else defines it
    (``fw.compile`` keys on the context, so a fresh mask each call reuses the graph)."""
    return [bm._partial, bm._full], (bm.seq_lengths, bm.BLOCK_SIZE, bm.mask_mod)


def _unflatten_block_mask(children, context):
    bm = BlockMask.__new__(BlockMask)  # no checks: a capture's grids may have symbolic sizes
    bm._partial, bm._full = children
    bm.seq_lengths, bm.BLOCK_SIZE, bm.mask_mod = context
    return bm


_pytree.register_pytree_node(BlockMask, _flatten_block_mask, _unflatten_block_mask,
                             serialized_type_name="framework.nn.attention.flex_attention."
                                                  "BlockMask")


def _describe(x):
    if isinstance(x, Tensor):
        return f"{x.dtype.name} {list(x.shape)}"
    return type(x).__name__


def _block_size(BLOCK_SIZE, what):
    if isinstance(BLOCK_SIZE, (tuple, list)) and len(BLOCK_SIZE) == 2:
        bq, bk = BLOCK_SIZE
    else:
        bq = bk = BLOCK_SIZE
    return _positive_int(bq, "BLOCK_SIZE", what), _positive_int(bk, "BLOCK_SIZE", what)


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device="cpu",
                      BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE, _compile=False) -> BlockMask:
    """The :class:`BlockMask` of ``mask_mod(b, h, q_idx, kv_idx) -> bool tensor`` (True where
    attention is allowed), evaluated once on broadcast index tensors. ``B`` / ``H`` None mean
    the mask is the same for every batch entry / head. ``BLOCK_SIZE`` is an int or a
    (Q_BLOCK_SIZE, KV_BLOCK_SIZE) pair; lengths that are not multiples of it end in a
    partial block. ``_compile`` is accepted for PyTorch compatibility and changes nothing
    (``fw.compile(create_block_mask)`` or creating the mask inside a compiled function
    captures it)."""
    if _mod_arity(mask_mod, "create_block_mask") != 4:
        raise ArgumentError(f"create_block_mask: requires a mask_mod (b, h, q_idx, kv_idx), "
                            f"got the score_mod {_name(mask_mod)}")
    bq, bk = _block_size(BLOCK_SIZE, "create_block_mask")
    mask = create_mask(mask_mod, B, H, Q_LEN, KV_LEN, device)
    partial, full = _block_grids(mask, bq, bk)
    return BlockMask((Q_LEN, KV_LEN), partial, full, (bq, bk), mask_mod)


# ---------------------------------------------------------------------------------------
# flex_attention
def _check_inputs(query, key, value, block_mask, scale, enable_gqa, kernel_options):
    what = "flex_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise FwTypeError(f"{what}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ShapeError(f"{what}: {name} must be 4-D (B, H, L, E), got shape "
                             f"{list(t.shape)}")
    if not (query.dtype is key.dtype is value.dtype):
        raise DTypeError(f"{what}: query, key and value must share a dtype, got "
                         f"{query.dtype.name}, {key.dtype.name}, {value.dtype.name}")
    if not query.dtype.is_floating_point:
        raise DTypeError(f"{what}: expected floating-point query/key/value, got "
                         f"{query.dtype.name}")
    if not (query.device == key.device == value.device):
        raise DeviceError(f"{what}: query, key and value must be on one device, got "
                          f"{query.device}, {key.device}, {value.device}")
    q, k, v = (list(t.shape) for t in (query, key, value))
    if q[3] != k[3]:
        raise ShapeError(f"{what}: query {q} and key {k} must have the same embedding "
                         f"dimension E (last dim)")
    if k[:3] != v[:3]:
        raise ShapeError(f"{what}: key {k} and value {v} must agree in (B, Hkv, S)")
    if q[0] != k[0]:
        raise ShapeError(f"{what}: query {q} and key/value {k} must have the same batch size")
    if not enable_gqa and q[1] != k[1]:
        raise ShapeError(f"{what}: query has {q[1]} heads and key/value {k[1]}; they must be "
                         f"equal (or set enable_gqa=True for grouped-query attention)")
    if enable_gqa and q[1] % k[1]:
        raise ShapeError(f"{what}: enable_gqa needs the query heads ({q[1]}) to be a multiple "
                         f"of the key/value heads ({k[1]})")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, numbers.Real)):
        raise FwTypeError(f"{what}: scale must be a float or None, got {type(scale).__name__}")
    if kernel_options is not None and not isinstance(kernel_options, dict):
        raise FwTypeError(f"{what}: kernel_options must be a dict or None, got "
                          f"{type(kernel_options).__name__}")
    if block_mask is None:
        return
    if not isinstance(block_mask, BlockMask):
        raise FwTypeError(f"{what}: block_mask must be a BlockMask (see create_block_mask), "
                          f"got {type(block_mask).__name__}")
    mb, mh, ml, ms = block_mask.shape
    if (ml, ms) != (q[2], k[2]):
        raise ShapeError(f"{what}: block_mask was created for block_mask.shape="
                         f"{block_mask.shape} but got q_len={q[2]} and kv_len={k[2]}; create "
                         f"a block mask for these lengths")
    if mb not in (1, q[0]) or mh not in (1, q[1]):
        raise ShapeError(f"{what}: block_mask of shape {block_mask.shape} does not fit query "
                         f"{q}: its B and H must be 1 or the query's")
    if block_mask.device != query.device:
        raise DeviceError(f"{what}: q/k/v are on {query.device} but block_mask is on "
                          f"{block_mask.device}; move it with block_mask.to(device)")


def _repeat_heads(x, groups):
    """(B, Hkv, S, E) -> (B, Hkv * groups, S, E), each head repeated ``groups`` times in a
    row (query head h reads key/value head h // groups)."""
    B, H, S, E = x.shape
    return x.unsqueeze(2).expand(B, H, groups, S, E).reshape(B, H * groups, S, E)


def _softmax_lse(scores):
    """Softmax over the last dim and its natural-log logsumexp; rows whose every score is
    -inf give zero probabilities and an lse of -inf (PyTorch's flex_attention)."""
    dead = (scores == _NEG_INF).all(-1, keepdim=True)
    # the row max only stabilises exp(); softmax and lse do not depend on it
    top = F.where(dead, 0.0, scores.detach().amax(-1, keepdim=True))
    e = (scores - top).exp()
    total = F.where(dead, 1.0, e.sum(-1, keepdim=True))
    lse = F.where(dead, _NEG_INF, top + total.log())
    return e / total, lse.squeeze(-1)


def flex_attention(query, key, value, score_mod=None, block_mask=None, scale=None,
                   enable_gqa=False, return_lse=False, kernel_options=None):
    """Scaled dot product attention with a score function and a block mask.

    ``query`` (B, Hq, L, E), ``key`` (B, Hkv, S, E), ``value`` (B, Hkv, S, Ev) ->
    (B, Hq, L, Ev). The scores ``q @ k^T * scale`` (scale defaults to 1/sqrt(E); computed in
    float32 for float16/bfloat16 inputs) go through ``score_mod(score, b, h, q_idx,
    kv_idx)``; scores outside ``block_mask`` become -inf; softmax over S (a row with no
    allowed score gives zeros) multiplies ``value``. ``enable_gqa`` lets Hq be a multiple of
    Hkv. ``return_lse`` also returns the (B, Hq, L) natural-log logsumexp of the scores
    (-inf for a fully masked row). ``kernel_options`` tune PyTorch's fused kernels; there is
    none here, so they are accepted and have no effect."""
    _check_inputs(query, key, value, block_mask, scale, enable_gqa, kernel_options)
    if score_mod is not None and _mod_arity(score_mod, "flex_attention") != 5:
        raise ArgumentError(f"flex_attention: score_mod must take (score, b, h, q_idx, "
                            f"kv_idx), got the mask_mod {_name(score_mod)} (pass masks as "
                            f"block_mask=create_block_mask(...))")
    B, Hq, L, E = query.shape
    Hkv, S = key.shape[1], key.shape[2]
    if Hq != Hkv:
        key, value = _repeat_heads(key, Hq // Hkv), _repeat_heads(value, Hq // Hkv)
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    work = dtypes.float32 if query.dtype in (dtypes.float16, dtypes.bfloat16) else query.dtype
    scores = F.matmul(query, key.transpose(-2, -1))
    if scores.dtype is not work:
        scores = scores.to(work)
    scores = scores * scale
    shape = (B, Hq, L, S)
    if score_mod is not None or block_mask is not None:
        b, h, q_idx, kv_idx = _indices(B, Hq, L, S, query.device)
    if score_mod is not None:
        scores = _broadcast_result(score_mod(scores, b, h, q_idx, kv_idx), shape,
                                   "flex_attention", score_mod)
        if not scores.dtype.is_floating_point:
            raise DTypeError(f"flex_attention: score_mod {_name(score_mod)} must return "
                             f"floating-point scores, got {scores.dtype.name}")
        if scores.dtype is not work:
            scores = scores.to(work)
    if block_mask is not None:
        allowed = block_mask._element_mask(b, h, q_idx, kv_idx, shape)
        scores = F.where(allowed, scores, _NEG_INF)
    probs, lse = _softmax_lse(scores)
    out = F.matmul(probs.to(value.dtype), value)
    return (out, lse) if return_lse else out
