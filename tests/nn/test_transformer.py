"""Transformer encoder/decoder layers and stacks against a NumPy re-implementation of the
PyTorch block structure (post-norm and pre-norm), plus state_dict names."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError

R = np.random.default_rng(4)


def t64(a):
    return fw.tensor(a, dtype=fw.float64)


def P(p):
    return None if p is None else p.detach().numpy()


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_mha(m, q, k, v, bias=None):
    """Sequence-first MHA with the module's weights."""
    e, h = m.embed_dim, m.num_heads
    w, b = P(m.in_proj_weight), P(m.in_proj_bias)
    qp, kp, vp = q @ w[:e].T + b[:e], k @ w[e:2 * e].T + b[e:2 * e], v @ w[2 * e:].T + b[2 * e:]

    def split(x):
        return x.reshape(x.shape[0], x.shape[1], h, e // h).transpose(1, 2, 0, 3)

    s = split(qp) @ split(kp).transpose(0, 1, 3, 2) / math.sqrt(e // h)
    if bias is not None:
        s = s + bias
    o = (np_softmax(s) @ split(vp)).transpose(2, 0, 1, 3).reshape(q.shape[0], q.shape[1], e)
    return o @ P(m.out_proj.weight).T + P(m.out_proj.bias)


def np_ln(x, m):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + m.eps) * P(m.weight) + P(m.bias)


def np_gelu(x):
    from math import erf
    return 0.5 * x * (1 + np.vectorize(erf)(x / math.sqrt(2)))


def np_ff(layer, x, act):
    h = act(x @ P(layer.linear1.weight).T + P(layer.linear1.bias))
    return h @ P(layer.linear2.weight).T + P(layer.linear2.bias)


def np_encoder_layer(layer, x, act, bias=None):
    if layer.norm_first:
        y = np_ln(x, layer.norm1)
        x = x + np_mha(layer.self_attn, y, y, y, bias)
        return x + np_ff(layer, np_ln(x, layer.norm2), act)
    x = np_ln(x + np_mha(layer.self_attn, x, x, x, bias), layer.norm1)
    return np_ln(x + np_ff(layer, x, act), layer.norm2)


def np_decoder_layer(layer, x, mem, act, tbias=None):
    if layer.norm_first:
        y = np_ln(x, layer.norm1)
        x = x + np_mha(layer.self_attn, y, y, y, tbias)
        y = np_ln(x, layer.norm2)
        x = x + np_mha(layer.multihead_attn, y, mem, mem)
        return x + np_ff(layer, np_ln(x, layer.norm3), act)
    x = np_ln(x + np_mha(layer.self_attn, x, x, x, tbias), layer.norm1)
    x = np_ln(x + np_mha(layer.multihead_attn, x, mem, mem), layer.norm2)
    return np_ln(x + np_ff(layer, x, act), layer.norm3)


def _perturb_norms(module):
    with fw.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.copy_(t64(R.standard_normal(p.shape) * 0.3 + (1.0 if "weight" in name else 0)))


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_encoder_layer_matches_reference(norm_first, activation):
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=activation,
                                       norm_first=norm_first).double()
    _perturb_norms(layer)
    x = R.standard_normal((5, 3, 8))
    causal = np.triu(np.full((5, 5), -np.inf), 1)
    out = layer(t64(x), src_mask=t64(causal), is_causal=True)
    act = (lambda v: np.maximum(v, 0)) if activation == "relu" else np_gelu
    np.testing.assert_allclose(out.detach().numpy(), np_encoder_layer(layer, x, act, causal),
                               atol=1e-10)


def test_encoder_stack_batch_first_padding_and_norm():
    layer = nn.TransformerEncoderLayer(8, 4, 12, dropout=0.0, batch_first=True)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8)).double()
    _perturb_norms(enc)
    assert enc.layers[0] is not enc.layers[1]
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
    keys = list(enc.state_dict())
    assert keys[:4] == ["layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_bias",
                        "layers.0.self_attn.out_proj.weight", "layers.0.self_attn.out_proj.bias"]
    assert "layers.1.norm2.bias" in keys and keys[-2:] == ["norm.weight", "norm.bias"]
    x = R.standard_normal((2, 4, 8))
    kpm = np.array([[False, False, True, True], [False, False, False, False]])
    out = enc(t64(x), src_key_padding_mask=fw.tensor(kpm))
    bias = np.where(kpm, -np.inf, 0.0)[:, None, None, :]
    ref = x.transpose(1, 0, 2)
    for lyr in enc.layers:
        ref = np_encoder_layer(lyr, ref, lambda v: np.maximum(v, 0), bias)
    ref = np_ln(ref, enc.norm).transpose(1, 0, 2)
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_matches_reference(norm_first):
    layer = nn.TransformerDecoderLayer(6, 2, 10, dropout=0.0, norm_first=norm_first)
    dec = nn.TransformerDecoder(layer, 2).double()
    _perturb_norms(dec)
    tgt, mem = R.standard_normal((4, 2, 6)), R.standard_normal((5, 2, 6))
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=fw.float64)
    np.testing.assert_array_equal(mask.numpy(), np.triu(np.full((4, 4), -np.inf), 1))
    out = dec(t64(tgt), t64(mem), tgt_mask=mask, tgt_is_causal=True)
    ref = tgt
    for lyr in dec.layers:
        ref = np_decoder_layer(lyr, ref, mem, lambda v: np.maximum(v, 0), mask.numpy())
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-10)
    assert "layers.0.multihead_attn.in_proj_weight" in dec.state_dict()
    assert "layers.1.norm3.weight" in dec.state_dict()


def test_transformer_full_dropout_and_training():
    fw.manual_seed(0)
    model = nn.Transformer(8, 2, 1, 1, 16, dropout=0.5, batch_first=True)
    src, tgt = fw.randn(2, 5, 8), fw.randn(2, 3, 8)
    model.train()
    a, b = model(src, tgt), model(src, tgt)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    model.eval()
    c, d = model(src, tgt), model(src, tgt)
    np.testing.assert_array_equal(c.detach().numpy(), d.detach().numpy())
    model.train()
    model(src, tgt).pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert "encoder.norm.weight" in model.state_dict()
    act = nn.TransformerEncoderLayer(8, 2, 16, activation=nn.GELU())
    assert isinstance(act.activation, nn.GELU)
    with pytest.raises(ArgumentError, match="activation"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
