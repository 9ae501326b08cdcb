"""scaled_dot_product_attention and MultiheadAttention against NumPy formulas: masks
(bool/float, key padding, causal), batch_first, kdim/vdim, bias_kv, zero attention,
weights averaging, gradients in float64."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError, ShapeError
from framework.nn import functional_attention as FA

R = np.random.default_rng(3)


def t64(a, grad=False):
    return fw.tensor(a, dtype=fw.float64, requires_grad=grad)


def np_softmax(x):
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)


def ref_sdpa(q, k, v, bias=None, scale=None):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if bias is not None:
        s = s + bias
    return np_softmax(s) @ v


def test_sdpa_plain_scale_and_grad():
    q, k, v = (R.standard_normal((2, 3, 4, 5)), R.standard_normal((2, 3, 6, 5)),
               R.standard_normal((2, 3, 6, 7)))
    out = FA.scaled_dot_product_attention(t64(q), t64(k), t64(v))
    np.testing.assert_allclose(out.numpy(), ref_sdpa(q, k, v), atol=1e-12)
    out = FA.scaled_dot_product_attention(t64(q), t64(k), t64(v), scale=0.3)
    np.testing.assert_allclose(out.numpy(), ref_sdpa(q, k, v, scale=0.3), atol=1e-12)
    qs, ks, vs = (t64(R.standard_normal((1, 3, 2)), True), t64(R.standard_normal((1, 4, 2)), True),
                  t64(R.standard_normal((1, 4, 3)), True))
    mask = t64(R.standard_normal((3, 4)))
    assert fw.autograd.gradcheck(
        lambda a, b, c: FA.scaled_dot_product_attention(a, b, c, attn_mask=mask), (qs, ks, vs))


def test_sdpa_masks():
    q, k, v = (R.standard_normal((2, 4, 3)), R.standard_normal((2, 5, 3)),
               R.standard_normal((2, 5, 3)))
    allowed = R.random((4, 5)) > 0.4
    allowed[:, 0] = True
    bias = np.where(allowed, 0.0, -np.inf)
    out = FA.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=fw.tensor(allowed))
    np.testing.assert_allclose(out.numpy(), ref_sdpa(q, k, v, bias), atol=1e-12)
    fmask = R.standard_normal((2, 4, 5))
    out = FA.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=t64(fmask))
    np.testing.assert_allclose(out.numpy(), ref_sdpa(q, k, v, fmask), atol=1e-12)
    # causal: top-left aligned lower triangle (L=4, S=5)
    causal = np.where(np.tril(np.ones((4, 5), bool)), 0.0, -np.inf)
    out = FA.scaled_dot_product_attention(t64(q), t64(k), t64(v), is_causal=True)
    np.testing.assert_allclose(out.numpy(), ref_sdpa(q, k, v, causal), atol=1e-12)
    with pytest.raises(ArgumentError, match="is_causal"):
        FA.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=t64(fmask),
                                        is_causal=True)
    with pytest.raises(ShapeError):
        FA.scaled_dot_product_attention(t64(q), t64(k[..., :2]), t64(v))


def test_sdpa_dropout_and_gqa():
    q = fw.randn(2, 4, 3, 8)
    k, v = fw.randn(2, 2, 5, 8), fw.randn(2, 2, 5, 8)
    out = FA.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    ref = ref_sdpa(q.numpy(), np.repeat(k.numpy(), 2, 1), np.repeat(v.numpy(), 2, 1))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)
    fw.manual_seed(0)
    d1 = FA.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    fw.manual_seed(0)
    d2 = FA.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    np.testing.assert_array_equal(d1.numpy(), d2.numpy())
    assert not np.allclose(d1.numpy(), FA.scaled_dot_product_attention(q, q, q).numpy())
    ones = fw.ones(1, 1, 200, 1)
    # with v == 1 every output is sum(kept weights)/(1-p): its mean stays ~1
    m = FA.scaled_dot_product_attention(fw.zeros(1, 1, 200, 4), fw.zeros(1, 1, 200, 4), ones,
                                        dropout_p=0.3).numpy().mean()
    assert abs(m - 1.0) < 0.05


def ref_mha(q, k, v, w_q, w_k, w_v, b_in, w_o, b_o, heads, bias=None):
    """Sequence-first (L, N, E) reference; bias: (N, H, L, S) additive or None."""
    e = w_q.shape[0]
    hd = e // heads
    bq, bk, bv = (np.zeros(e),) * 3 if b_in is None else np.split(b_in, 3)
    qp, kp, vp = q @ w_q.T + bq, k @ w_k.T + bk, v @ w_v.T + bv

    def split(x):  # (L, N, E) -> (N, H, L, hd)
        return x.reshape(x.shape[0], x.shape[1], heads, hd).transpose(1, 2, 0, 3)

    s = split(qp) @ split(kp).transpose(0, 1, 3, 2) / math.sqrt(hd)
    if bias is not None:
        s = s + bias
    w = np_softmax(s)
    o = (w @ split(vp)).transpose(2, 0, 1, 3).reshape(q.shape[0], q.shape[1], e)
    return o @ w_o.T + b_o, w


def _params(m):
    e = m.embed_dim
    w = m.in_proj_weight.detach().numpy()
    return (w[:e], w[e:2 * e], w[2 * e:], m.in_proj_bias.detach().numpy(),
            m.out_proj.weight.detach().numpy(), m.out_proj.bias.detach().numpy())


def test_mha_matches_reference_with_masks():
    m = nn.MultiheadAttention(8, 2).double()
    with fw.no_grad():
        m.in_proj_bias.copy_(fw.randn(24, dtype=fw.float64))
        m.out_proj.bias.copy_(fw.randn(8, dtype=fw.float64))
    q, k = R.standard_normal((4, 3, 8)), R.standard_normal((5, 3, 8))
    kpm = np.zeros((3, 5), bool)
    kpm[0, 3:] = True
    kpm[2, 0] = True
    am = R.random((4, 5)) > 0.7
    am[:, 1] = False
    bias = np.where(kpm[:, None, None, :] | am[None, None], -np.inf, 0.0)
    out, w = m(t64(q), t64(k), t64(k), key_padding_mask=fw.tensor(kpm),
               attn_mask=fw.tensor(am))
    ro, rw = ref_mha(q, k, k, *_params(m), heads=2, bias=bias)
    np.testing.assert_allclose(out.detach().numpy(), ro, atol=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), rw.mean(1), atol=1e-12)
    # float masks (3-D per-head attn_mask + float key padding), per-head weights
    fam = R.standard_normal((3 * 2, 4, 5))
    fkpm = R.standard_normal((3, 5))
    bias = fam.reshape(3, 2, 4, 5) + fkpm[:, None, None, :]
    out, w = m(t64(q), t64(k), t64(k), key_padding_mask=t64(fkpm), attn_mask=t64(fam),
               average_attn_weights=False)
    ro, rw = ref_mha(q, k, k, *_params(m), heads=2, bias=bias)
    np.testing.assert_allclose(out.detach().numpy(), ro, atol=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), rw, atol=1e-12)
    out2, none = m(t64(q), t64(k), t64(k), need_weights=False)
    assert none is None
    np.testing.assert_allclose(out2.detach().numpy(), ref_mha(q, k, k, *_params(m), 2)[0],
                               atol=1e-12)


def test_mha_batch_first_unbatched_and_grad():
    m = nn.MultiheadAttention(6, 3, batch_first=True).double()
    x = R.standard_normal((2, 4, 6))
    out, w = m(t64(x), t64(x), t64(x))
    ro, rw = ref_mha(x.transpose(1, 0, 2), *(x.transpose(1, 0, 2),) * 2, *_params(m), heads=3)
    np.testing.assert_allclose(out.detach().numpy(), ro.transpose(1, 0, 2), atol=1e-12)
    assert w.shape == (2, 4, 4)
    m.batch_first = False
    out1, w1 = m(t64(x[0]), t64(x[0]), t64(x[0]))
    assert out1.shape == (4, 6) and w1.shape == (4, 4)
    np.testing.assert_allclose(out1.detach().numpy(), ro[:, 0], atol=1e-12)
    xs = t64(R.standard_normal((3, 2, 6)), True)
    assert fw.autograd.gradcheck(lambda a: m(a, a, a)[0], (xs,))


def test_mha_kdim_vdim_bias_kv_zero_attn():
    m = nn.MultiheadAttention(4, 2, kdim=3, vdim=5, add_bias_kv=True, add_zero_attn=True)
    m = m.double()
    assert list(m.state_dict()) == ["q_proj_weight", "k_proj_weight", "v_proj_weight",
                                    "in_proj_bias", "bias_k", "bias_v", "out_proj.weight",
                                    "out_proj.bias"]
    q, k, v = R.standard_normal((2, 1, 4)), R.standard_normal((3, 1, 3)), R.standard_normal(
        (3, 1, 5))
    out, w = m(t64(q), t64(k), t64(v))
    e = 4
    bq, bk, bv = np.split(m.in_proj_bias.detach().numpy(), 3)
    qp = q @ m.q_proj_weight.detach().numpy().T + bq
    kp = np.concatenate([k @ m.k_proj_weight.detach().numpy().T + bk,
                         m.bias_k.detach().numpy()], 0)
    vp = np.concatenate([v @ m.v_proj_weight.detach().numpy().T + bv,
                         m.bias_v.detach().numpy()], 0)
    kp = np.concatenate([kp, np.zeros((1, 1, e))], 0)  # zero attention slot (after split: same)
    vp = np.concatenate([vp, np.zeros((1, 1, e))], 0)
    eye = np.eye(e)
    ro, rw = ref_mha(qp, kp, vp, eye, eye, eye, None, m.out_proj.weight.detach().numpy(),
                     m.out_proj.bias.detach().numpy(), 2)
    np.testing.assert_allclose(out.detach().numpy(), ro, atol=1e-12)
    assert w.shape == (1, 2, 5)


def test_mha_init_and_errors():
    fw.manual_seed(0)
    m = nn.MultiheadAttention(16, 4)
    bound = math.sqrt(6 / (16 + 48))
    w = m.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not m.in_proj_bias.detach().numpy().any()
    assert not m.out_proj.bias.detach().numpy().any()
    with pytest.raises(ArgumentError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    x = fw.randn(4, 2, 16)
    with pytest.raises(ShapeError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=fw.zeros(4, 2, dtype=fw.bool))
    with pytest.raises(ShapeError, match="2D attn_mask"):
        m(x, x, x, attn_mask=fw.zeros(3, 4))
    with pytest.raises(ArgumentError, match="is_causal"):
        m(x, x, x, is_causal=True)


def test_sdpa_output_has_the_fused_kernels_layout():
    # PyTorch's sdpa returns (B, H, L, E) laid out as (B, L, H, E): transpose(1, 2).view works
    import framework.nn.functional as F
    q, k, v = (fw.randn(2, 3, 5, 4) for _ in range(3))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert y.transpose(1, 2).is_contiguous()
    assert y.transpose(1, 2).view(2, 5, 12).shape == (2, 5, 12)
    ref = fw.softmax(q @ k.transpose(-1, -2) / 2 + fw.full((5, 5), float("-inf")).triu(1),
                     -1) @ v
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
