"""``fw.nn.attention.flex_attention`` against a NumPy reference that calls the score/mask
functions once per score with Python ints (PyTorch's vmapped scalar semantics): causal,
sliding window, prefix LM, document masking, ALiBi, a relative bias table, soft-capping,
GQA, logsumexp and fully masked rows; float64 gradients (a learnable bias table included);
``fw.compile``; equality with causal sdpa; BlockMask values worked out by hand; errors;
ONNX export in onnxruntime."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError, DeviceError, DTypeError, FwTypeError, ShapeError
from framework.nn import functional as F
from framework.nn.attention.flex_attention import (BlockMask, and_masks, create_block_mask,
                                                   create_mask, flex_attention, noop_mask,
                                                   or_masks)

R = np.random.default_rng(7)


def t64(a, grad=False):
    return fw.tensor(a, dtype=fw.float64, requires_grad=grad)


def qkv(B=2, H=2, L=6, S=6, E=4, Hkv=None, Ev=None):
    Hkv = H if Hkv is None else Hkv
    return (R.standard_normal((B, H, L, E)), R.standard_normal((B, Hkv, S, E)),
            R.standard_normal((B, Hkv, S, Ev or E)))


def ref_flex(q, k, v, score=None, mask=None, scale=None):
    """Attention with ``score(s, b, h, i, j)`` / ``mask(b, h, i, j)`` called per score on
    Python numbers; returns (out, lse)."""
    B, H, L, E = q.shape
    groups = H // k.shape[1]
    k, v = np.repeat(k, groups, 1), np.repeat(v, groups, 1)
    s = q @ np.swapaxes(k, -1, -2) * (1 / math.sqrt(E) if scale is None else scale)
    for b, h, i, j in np.ndindex(s.shape):
        if score is not None:
            s[b, h, i, j] = score(s[b, h, i, j], b, h, i, j)
        if mask is not None and not mask(b, h, i, j):
            s[b, h, i, j] = -np.inf
    out, lse = np.zeros(q.shape[:3] + v.shape[-1:]), np.full(q.shape[:3], -np.inf)
    for b, h, i in np.ndindex(q.shape[:3]):
        row = s[b, h, i]
        if np.all(row == -np.inf):
            continue
        p = np.exp(row - row.max())
        lse[b, h, i] = row.max() + np.log(p.sum())
        out[b, h, i] = (p / p.sum()) @ v[b, h]
    return out, lse


def run(q, k, v, **kw):
    out, lse = flex_attention(t64(q), t64(k), t64(v), return_lse=True, **kw)
    return out.numpy(), lse.numpy()


def check(q, k, v, ref_score=None, ref_mask=None, **kw):
    out, lse = run(q, k, v, **kw)
    want_out, want_lse = ref_flex(q, k, v, ref_score, ref_mask, kw.get("scale"))
    np.testing.assert_allclose(out, want_out, atol=1e-12)
    np.testing.assert_allclose(lse, want_lse, atol=1e-12)


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def test_plain_scale_and_causal():
    q, k, v = qkv(S=7, Ev=3)
    check(q, k, v)
    check(q, k, v, scale=0.3)
    q, k, v = qkv()
    bm = create_block_mask(causal, None, None, 6, 6, BLOCK_SIZE=4)
    check(q, k, v, ref_mask=lambda b, h, i, j: i >= j, block_mask=bm)


def test_causal_equals_sdpa_is_causal():
    q, k, v = (fw.randn(2, 3, 10, 8) for _ in range(3))
    bm = create_block_mask(causal, None, None, 10, 10, BLOCK_SIZE=4)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    np.testing.assert_allclose(flex_attention(q, k, v, block_mask=bm).numpy(), want,
                               rtol=1e-5, atol=1e-6)


def test_sliding_window_with_and_masks():
    def window(b, h, q_idx, kv_idx):
        return q_idx - kv_idx <= 2
    q, k, v = qkv(L=9, S=9)
    bm = create_block_mask(and_masks(causal, window), None, None, 9, 9, BLOCK_SIZE=4)
    check(q, k, v, ref_mask=lambda b, h, i, j: 0 <= i - j <= 2, block_mask=bm)


def test_prefix_lm_with_or_masks():
    def prefix(b, h, q_idx, kv_idx):
        return kv_idx < 3
    q, k, v = qkv(L=7, S=7)
    bm = create_block_mask(or_masks(prefix, causal), None, None, 7, 7, BLOCK_SIZE=2)
    check(q, k, v, ref_mask=lambda b, h, i, j: j < 3 or i >= j, block_mask=bm)


def test_document_masking_indexes_a_tensor():
    docs = np.array([[0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 1, 1, 2, 2]])
    doc_id = fw.tensor(docs)

    def document_causal(b, h, q_idx, kv_idx):
        return (doc_id[b, q_idx] == doc_id[b, kv_idx]) & (q_idx >= kv_idx)
    q, k, v = qkv(L=8, S=8)
    bm = create_block_mask(document_causal, 2, None, 8, 8, BLOCK_SIZE=4)
    assert bm.shape == (2, 1, 8, 8)
    check(q, k, v, ref_mask=lambda b, h, i, j: docs[b, i] == docs[b, j] and i >= j,
          block_mask=bm)


def test_block_mask_made_for_b_none_calls_mask_mod_with_the_real_batch_index():
    """As PyTorch's kernel: partial blocks consult mask_mod with the batch being computed."""
    lengths = fw.tensor([5, 3])

    def padding(b, h, q_idx, kv_idx):
        return kv_idx < lengths[b]
    q, k, v = qkv(L=6, S=6)
    bm = create_block_mask(padding, None, None, 6, 6, BLOCK_SIZE=8)
    check(q, k, v, ref_mask=lambda b, h, i, j: j < [5, 3][b], block_mask=bm)


def test_alibi_score_mod_indexes_slopes_by_head():
    slopes_np = np.array([0.5, 0.25, 0.125])
    slopes = t64(slopes_np)

    def alibi(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * (kv_idx - q_idx)
    q, k, v = qkv(H=3)
    check(q, k, v, ref_score=lambda s, b, h, i, j: s + slopes_np[h] * (j - i), score_mod=alibi)


def test_relative_bias_table_and_soft_cap():
    table_np = R.standard_normal(11)
    table = t64(table_np)

    def rel(score, b, h, q_idx, kv_idx):
        return score + table[q_idx - kv_idx + 5]

    def soft_cap(score, b, h, q_idx, kv_idx):
        return 2.0 * fw.tanh(score / 2.0)
    q, k, v = qkv()
    check(q, k, v, ref_score=lambda s, b, h, i, j: s + table_np[i - j + 5], score_mod=rel)
    check(q, k, v, ref_score=lambda s, b, h, i, j: 2.0 * np.tanh(s / 2.0), score_mod=soft_cap)


def test_where_in_score_mod_and_score_mod_masking():
    def mod(score, b, h, q_idx, kv_idx):
        return fw.where(q_idx >= kv_idx, score * (h + 1), float("-inf"))
    q, k, v = qkv()
    check(q, k, v, ref_score=lambda s, b, h, i, j: s * (h + 1) if i >= j else -np.inf,
          score_mod=mod)


def test_gqa_uses_query_head_index():
    q, k, v = qkv(H=4, Hkv=2)

    def head_bias(score, b, h, q_idx, kv_idx):
        return score + h * 0.5
    check(q, k, v, ref_score=lambda s, b, h, i, j: s + h * 0.5, score_mod=head_bias,
          enable_gqa=True)
    with pytest.raises(ShapeError, match="enable_gqa"):
        flex_attention(t64(q), t64(k), t64(v))
    with pytest.raises(ShapeError, match="multiple"):
        flex_attention(t64(q[:, :3]), t64(k), t64(v), enable_gqa=True)


def test_fully_masked_row_gives_zero_output_and_minus_inf_lse():
    def strict(b, h, q_idx, kv_idx):
        return q_idx > kv_idx             # row 0 sees nothing
    q, k, v = qkv(L=5, S=5)
    bm = create_block_mask(strict, None, None, 5, 5, BLOCK_SIZE=2)
    out, lse = run(q, k, v, block_mask=bm)
    assert np.all(out[:, :, 0] == 0) and np.all(lse[:, :, 0] == -np.inf)
    check(q, k, v, ref_mask=lambda b, h, i, j: i > j, block_mask=bm)
    qt = t64(q, True)
    flex_attention(qt, t64(k), t64(v), block_mask=bm).sum().backward()
    assert np.all(np.isfinite(qt.grad.numpy())) and np.all(qt.grad.numpy()[:, :, 0] == 0)


def test_low_precision_inputs_keep_dtype_and_float32_lse():
    q, k, v = (fw.randn(1, 2, 4, 8).to(fw.bfloat16) for _ in range(3))
    out, lse = flex_attention(q, k, v, return_lse=True)
    assert out.dtype is fw.bfloat16 and lse.dtype is fw.float32 and lse.shape == (1, 2, 4)
    want, want_lse = ref_flex(*(t.float().numpy().astype(np.float64) for t in (q, k, v)))
    np.testing.assert_allclose(out.float().numpy(), want, atol=2e-2)
    np.testing.assert_allclose(lse.numpy(), want_lse, atol=2e-2)


def test_gradcheck_q_k_v_and_learnable_bias_table():
    bm = create_block_mask(causal, None, None, 5, 5, BLOCK_SIZE=2)
    table = t64(R.standard_normal(9), True)
    args = [t64(a, True) for a in qkv(B=1, L=5, S=5, E=3)]

    def f(q, k, v, tab):
        out, lse = flex_attention(q, k, v, block_mask=bm, return_lse=True,
                                  score_mod=lambda s, b, h, i, j: s + tab[i - j + 4])
        return out, lse
    assert fw.autograd.gradcheck(f, (*args, table))
    # the table's gradient is the sum of the scores' gradients along each diagonal
    out = f(*args, table)[0]
    out.backward(fw.ones_like(out))
    assert table.grad is not None and np.all(table.grad.numpy()[:4] == 0)  # i - j < 0 masked


class _TableBias:
    """A score_mod object holding a relative-position bias table."""

    def __init__(self, n):
        self.table = fw.tensor(R.standard_normal(n).astype(np.float32))

    def __call__(self, score, b, h, q_idx, kv_idx):
        return score + self.table[q_idx - kv_idx + 5]


def test_compiled_flex_attention_matches_eager_without_recompiling():
    mod = _TableBias(11)
    bm = create_block_mask(causal, None, None, 6, 6, BLOCK_SIZE=4)
    compiled = fw.compile(flex_attention)
    for _ in range(3):
        q, k, v = (fw.randn(2, 2, 6, 4) for _ in range(3))
        want = flex_attention(q, k, v, score_mod=mod, block_mask=bm)
        got = compiled(q, k, v, score_mod=mod, block_mask=bm)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    st = compiled.stats()
    assert st["captures"] == 1 and st["cache_hits"] == 2 and st["graph_breaks"] == [], st
    # the table is read at run time, not baked into the compiled code
    mod.table.mul_(3.0)
    np.testing.assert_allclose(compiled(q, k, v, score_mod=mod, block_mask=bm).numpy(),
                               flex_attention(q, k, v, score_mod=mod, block_mask=bm).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert compiled.stats()["captures"] == 1


def test_block_mask_created_inside_a_compiled_function():
    def attend(q, k, v, doc):
        def same_doc(b, h, q_idx, kv_idx):
            return (doc[q_idx] == doc[kv_idx]) & (q_idx >= kv_idx)
        bm = create_block_mask(same_doc, None, None, q.shape[2], k.shape[2], BLOCK_SIZE=4)
        return flex_attention(q, k, v, block_mask=bm)
    compiled = fw.compile(attend, fullgraph=True)
    doc = fw.tensor([0, 0, 0, 1, 1, 1, 1, 2])
    for _ in range(2):
        q, k, v = (fw.randn(1, 2, 8, 4) for _ in range(3))
        np.testing.assert_allclose(compiled(q, k, v, doc).numpy(),
                                   attend(q, k, v, doc).numpy(), rtol=1e-5, atol=1e-6)
    assert compiled.stats()["captures"] == 1


def test_block_mask_by_hand_block_size_4_causal():
    bm = create_block_mask(causal, None, None, 8, 8, BLOCK_SIZE=4)
    assert bm.shape == (1, 1, 8, 8) and bm.BLOCK_SIZE == (4, 4) and bm.mask_mod is causal
    dense = bm.to_dense()
    assert dense.dtype is fw.int32
    np.testing.assert_array_equal(dense.numpy(), [[[[1, 0], [1, 1]]]])
    assert bm.sparsity() == pytest.approx(25.0)
    # diagonal blocks are partial, the one below is full
    np.testing.assert_array_equal(bm.kv_num_blocks.numpy(), [[[1, 1]]])
    np.testing.assert_array_equal(bm.kv_indices.numpy(), [[[[0, 1], [1, 0]]]])
    np.testing.assert_array_equal(bm.full_kv_num_blocks.numpy(), [[[0, 1]]])
    np.testing.assert_array_equal(bm.full_kv_indices.numpy()[..., :1], [[[[0], [0]]]])
    np.testing.assert_array_equal(bm.full_q_num_blocks.numpy(), [[[1, 0]]])
    assert bm.numel() == 64
    text = repr(bm)
    assert "sparsity=25.00%" in text and "mask_mod=causal" in text and "shape=(1, 1, 8, 8)" in text


def test_block_mask_partial_blocks_and_batch_heads():
    # L = 10 with blocks of 4: 3 block rows, the last covering rows 8..9 only
    bm = create_block_mask(causal, 2, 3, 10, 10, BLOCK_SIZE=4)
    assert bm.shape == (2, 3, 10, 10)
    np.testing.assert_array_equal(bm.to_dense().numpy()[1, 2],
                                  [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    assert bm.sparsity() == pytest.approx(100 * 3 / 9)
    # blocks of the padded last block row (rows 8..9 of 4) are never full, as in PyTorch
    np.testing.assert_array_equal(bm.full_kv_num_blocks.numpy()[0, 0], [0, 1, 0])
    np.testing.assert_array_equal(bm.kv_num_blocks.numpy()[0, 0], [1, 1, 3])
    # (Q_BLOCK_SIZE, KV_BLOCK_SIZE) pair; a band that skips the top-right corner
    bm = create_block_mask(lambda b, h, i, j: (j - i <= 1) & (i - j <= 1), None, None, 6, 8,
                           BLOCK_SIZE=(3, 2))
    np.testing.assert_array_equal(bm.to_dense().numpy()[0, 0], [[1, 1, 0, 0], [0, 1, 1, 1]])
    assert bm.sparsity() == pytest.approx(100 * 3 / 8)


def test_create_mask_dense_and_from_score_mod():
    m = create_mask(causal, None, 2, 3, 4)
    assert m.shape == (1, 2, 3, 4) and m.dtype is fw.bool
    np.testing.assert_array_equal(m.numpy()[0, 1], np.tril(np.ones((3, 4), bool)))
    m = create_mask(lambda s, b, h, i, j: fw.where(i == j, float("-inf"), s), 1, 1, 3, 3)
    np.testing.assert_array_equal(m.numpy()[0, 0], ~np.eye(3, dtype=bool))
    full = create_mask(noop_mask, 2, 1, 2, 2)
    assert full.shape == (2, 1, 2, 2) and bool(full.all())
    assert not bool(create_mask(or_masks(), 1, 1, 2, 2).any())
    assert bool(create_mask(and_masks(), 1, 1, 2, 2).all())


def test_noop_block_mask_and_default_block_size():
    q, k, v = qkv(L=5, S=7)
    bm = create_block_mask(noop_mask, None, None, 5, 7)
    assert bm.BLOCK_SIZE == (128, 128) and bm.sparsity() == 0.0
    np.testing.assert_array_equal(bm.to_dense().numpy(), [[[[1]]]])
    check(q, k, v, block_mask=bm)


def test_from_kv_blocks_round_trip_and_to():
    bm = create_block_mask(causal, None, None, 8, 8, BLOCK_SIZE=4)
    again = BlockMask.from_kv_blocks(bm.kv_num_blocks, bm.kv_indices, bm.full_kv_num_blocks,
                                     bm.full_kv_indices, BLOCK_SIZE=4, mask_mod=causal)
    np.testing.assert_array_equal(again.to_dense().numpy(), bm.to_dense().numpy())
    assert again.shape == bm.shape
    q, k, v = qkv(L=8, S=8)
    np.testing.assert_allclose(run(q, k, v, block_mask=again)[0],
                               run(q, k, v, block_mask=bm)[0], atol=1e-15)
    moved = bm.to("cpu")
    assert moved is not bm and moved.shape == bm.shape and moved.mask_mod is causal


def test_errors_name_the_argument():
    q, k, v = (t64(a) for a in qkv())
    bm = create_block_mask(causal, None, None, 6, 6)
    with pytest.raises(ShapeError, match="query must be 4-D"):
        flex_attention(q[0], k, v)
    with pytest.raises(DTypeError, match="share a dtype"):
        flex_attention(q.float(), k, v)
    with pytest.raises(DTypeError, match="floating-point"):
        flex_attention(*(t.long() for t in (q, k, v)))
    with pytest.raises(ShapeError, match="embedding"):
        flex_attention(q, k[..., :3], v)
    with pytest.raises(ShapeError, match="key .* and value"):
        flex_attention(q, k, v[:, :, :5])
    with pytest.raises(ShapeError, match="batch"):
        flex_attention(q, k[:1], v[:1])
    with pytest.raises(FwTypeError, match="block_mask must be a BlockMask"):
        flex_attention(q, k, v, block_mask=fw.ones(6, 6, dtype=fw.bool))
    with pytest.raises(ShapeError, match="q_len=5"):
        flex_attention(q[:, :, :5], k, v, block_mask=bm)
    with pytest.raises(ShapeError, match="B and H"):
        flex_attention(q, k, v, block_mask=create_block_mask(causal, 3, None, 6, 6))
    with pytest.raises(ArgumentError, match="score_mod must take"):
        flex_attention(q, k, v, score_mod=causal)
    with pytest.raises(ArgumentError, match="takes 2 arguments"):
        flex_attention(q, k, v, score_mod=lambda s, b: s)
    with pytest.raises(ShapeError, match="does not broadcast"):
        flex_attention(q, k, v, score_mod=lambda s, b, h, i, j: s[..., :2])
    with pytest.raises(DTypeError, match="bool"):
        create_block_mask(lambda b, h, i, j: i - j, None, None, 4, 4)
    with pytest.raises(ArgumentError, match="requires a mask_mod"):
        create_block_mask(lambda s, b, h, i, j: s, None, None, 4, 4)
    with pytest.raises(ArgumentError, match="BLOCK_SIZE"):
        create_block_mask(causal, None, None, 4, 4, BLOCK_SIZE=0)
    with pytest.raises(ArgumentError, match="Q_LEN"):
        create_block_mask(causal, None, None, 0, 4)
    with pytest.raises(FwTypeError, match="kernel_options"):
        flex_attention(q, k, v, kernel_options=3)
    with pytest.raises(FwTypeError, match="callable"):
        and_masks(causal, 3)
    meta_bm = BlockMask((6, 6), fw.ones(1, 1, 1, 1, dtype=fw.bool, device="meta"),
                        fw.ones(1, 1, 1, 1, dtype=fw.bool, device="meta"), (128, 128), None)
    with pytest.raises(DeviceError, match="block_mask.to"):
        flex_attention(q, k, v, block_mask=meta_bm)


def test_kernel_options_are_accepted():
    q, k, v = qkv()
    np.testing.assert_allclose(run(q, k, v, kernel_options={"BLOCK_M": 64})[0],
                               run(q, k, v)[0], atol=0)


class _FlexBlock(nn.Module):
    def __init__(self, length):
        super().__init__()
        self.block_mask = create_block_mask(causal, None, None, length, length, BLOCK_SIZE=4)
        self.rel = nn.Parameter(fw.randn(2 * length - 1) * 0.1)
        self.length = length

    def forward(self, q, k, v):
        def bias(score, b, h, q_idx, kv_idx):
            return score + self.rel[q_idx - kv_idx + self.length - 1]
        return flex_attention(q, k, v, score_mod=bias, block_mask=self.block_mask)


def test_onnx_export_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _FlexBlock(6)
    q, k, v = (fw.randn(2, 2, 6, 4) for _ in range(3))
    path = str(tmp_path / "flex.onnx")
    fw.onnx.export(model, (q, k, v), path, input_names=["q", "k", "v"])
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    q2, k2, v2 = (fw.randn(2, 2, 6, 4) for _ in range(3))
    got = sess.run(None, {"q": q2.numpy(), "k": k2.numpy(), "v": v2.numpy()})[0]
    with fw.no_grad():
        want = model(q2, k2, v2).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
