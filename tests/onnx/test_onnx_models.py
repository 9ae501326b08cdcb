"""Whole models exported to ONNX and run in onnxruntime against eager: MLP, CNN with
BatchNorm and pooling, LSTM/GRU (bidirectional, 2 layers), transformer encoder/decoder
layers and an embedding + attention language model, each with dynamic dims run at two
sizes (``verify=True`` re-runs at a second size) and at opsets 17, 18 and the newest.
The native node types chosen for composites are asserted per opset."""

from collections import Counter

import numpy as np
import pytest

import framework as fw
from compiler.onnx import supported_opsets
from framework import nn
from framework.nn import functional as F

NEWEST = max(supported_opsets())
OPSETS = (17, 18, NEWEST)


def export_all(model, args, input_names, dynamic_axes, opsets=OPSETS, **kw):
    """Export at each opset with verification; return {opset: Counter of node types}."""
    out = {}
    for op in opsets:
        m = fw.onnx.export(model, args, input_names=input_names, dynamic_axes=dynamic_axes,
                           opset_version=op, verify=True, **kw)
        out[op] = Counter(n.op_type for n in m.graph.node)
        dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
                for i in m.graph.input}
        for name, axes in dynamic_axes.items():
            if name in dims:
                for axis, dim_name in axes.items():
                    assert dims[name][axis] == dim_name, (name, dims[name])
    return out


def _randomize_bn(model):
    """Non-trivial running statistics, so eval-mode BatchNorm is really exercised."""
    g = np.random.default_rng(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(fw.tensor(g.normal(size=m.num_features).astype(np.float32)))
            m.running_var.copy_(fw.tensor(g.uniform(0.5, 2, m.num_features).astype(np.float32)))


def test_mlp_dynamic_batch():
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 32),
                          nn.GELU(), nn.Linear(32, 4))
    model.train()
    types = export_all(model, fw.randn(3, 16), ["x"], {"x": {0: "batch"}, "output": {0: "batch"}})
    assert model.training and all(m.training for m in model.modules()), "mode not restored"
    for op, c in types.items():
        assert c["Gemm"] == 3, (op, c)
        assert c["Gelu"] == (1 if op >= 20 else 0), (op, c)
        assert c["Erf"] == (0 if op >= 20 else 1), (op, c)
        assert "RandomUniform" not in c and "RandomUniformLike" not in c, "dropout exported"


def test_cnn_batchnorm_pooling_dynamic_batch():
    fw.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    _randomize_bn(model)
    types = export_all(model, fw.randn(2, 3, 8, 8), ["images"], {"images": {0: "N"}})
    for op, c in types.items():
        assert c["Conv"] == 2 and c["MaxPool"] == 1, (op, c)
        assert c["BatchNormalization"] == 2, (op, c)
        assert c["AveragePool"] == 1 and c["GlobalAveragePool"] == 1, (op, c)


def test_fully_convolutional_dynamic_batch_height_width():
    """Symbolic spatial sizes (floor expressions) are recomputed from the input's shape."""
    fw.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, stride=2), nn.AvgPool2d(2),
                          nn.Flatten())
    _randomize_bn(model)
    types = export_all(model, fw.randn(2, 3, 16, 12), ["x"], {"x": {0: "n", 2: "h", 3: "w"}})
    for op, c in types.items():
        assert c["AveragePool"] == 1 and c["BatchNormalization"] == 1, (op, c)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_bidirectional_two_layers_dynamic_batch_and_sequence(kind):
    fw.manual_seed(0)
    rnn = getattr(nn, kind)(6, 5, num_layers=2, bidirectional=True, batch_first=True)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            out, h = self.rnn(x)
            return out, (h[0] if isinstance(h, tuple) else h)

    types = export_all(Net(), fw.randn(3, 4, 6), ["x"], {"x": {0: "batch", 1: "seq"}})
    for op, c in types.items():  # one native node per layer and direction
        assert c[kind] == 4 and c["MatMul"] == 0, (op, c)


def test_transformer_encoder_layer_dynamic_batch_and_sequence():
    fw.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.1, batch_first=True)
    types = export_all(layer, fw.randn(2, 5, 16), ["src"], {"src": {0: "batch", 1: "seq"}})
    for op, c in types.items():
        assert c["LayerNormalization"] == 2, (op, c)
        if op >= 23:
            assert c["Attention"] == 1 and c["Softmax"] == 0, (op, c)
        else:
            assert c["Softmax"] == 1, (op, c)


def test_transformer_decoder_layer_dynamic_batch_and_sequences():
    fw.manual_seed(0)
    layer = nn.TransformerDecoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True,
                                       norm_first=True)
    args = (fw.randn(2, 5, 16), fw.randn(2, 7, 16))
    types = export_all(layer, args, ["tgt", "memory"],
                       {"tgt": {0: "batch", 1: "tgt_len"}, "memory": {0: "batch", 1: "mem_len"}})
    for op, c in types.items():
        assert c["LayerNormalization"] == 3, (op, c)
        attention = c["Attention"] if op >= 23 else c["Softmax"]
        assert attention == 2, (op, c)


class TinyLM(nn.Module):
    """Token + position embeddings, one causal self-attention block, a vocabulary head."""

    def __init__(self, vocab=20, d=16, heads=2, max_len=32):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        self.heads = heads

    def forward(self, tokens):
        b, t = tokens.shape
        x = self.tok(tokens) + self.pos(fw.arange(t))
        q, k, v = self.qkv(self.norm(x)).chunk(3, -1)
        split = lambda z: z.reshape(b, t, self.heads, -1).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, -1))
        return self.head(x)


def test_embedding_attention_lm_dynamic_batch_and_sequence():
    fw.manual_seed(0)
    tokens = fw.tensor(np.random.default_rng(0).integers(0, 20, (2, 6)))
    types = export_all(TinyLM(), tokens, ["tokens"], {"tokens": {0: "batch", 1: "seq"}})
    for op, c in types.items():
        assert c["Gather"] >= 2 and c["LayerNormalization"] == 1, (op, c)
        assert (c["Attention"] if op >= 23 else c["Softmax"]) == 1, (op, c)


@pytest.mark.parametrize("dtype", [fw.float16, fw.bfloat16])
def test_half_precision_mlp_with_layer_norm(dtype):
    """Half types run through float32 kernels op by op (casts), as NumPy rounds them."""
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 4))
    model.to(dtype)
    export_all(model, fw.randn(3, 8).to(dtype), ["x"], {"x": {0: "batch"}}, opsets=(18, NEWEST))


class MeanPoolClassifier(nn.Module):
    """Embeddings averaged over a dynamic sequence (sizes used as numbers while tracing)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, tokens):
        x = self.emb(tokens)
        pooled = x.mean(1) + x.sum(1) / tokens.shape[1] - x.var(1) * (tokens.shape[1] - 1)
        return self.head(pooled * 0.5)


def test_mean_pooling_over_dynamic_sequence():
    fw.manual_seed(0)
    tokens = fw.tensor(np.random.default_rng(0).integers(0, 30, (2, 7)))
    types = export_all(MeanPoolClassifier(), tokens, ["tokens"],
                       {"tokens": {0: "batch", 1: "seq"}})
    for op, c in types.items():
        assert c["Shape"] >= 1 and c["Gemm"] == 1, (op, c)  # the length read at run time


class _HeadsToChannels(nn.Module):
    """Attention-style ``reshape(b, heads, -1, h * w)`` then ``reshape(b, -1, h, w)`` into a
    conv (lucidrains' LinearAttention): the inferred -1 must be a plain int, not sympy's 8."""

    def __init__(self):
        super().__init__()
        self.qkv, self.out = nn.Conv2d(8, 24, 1), nn.Conv2d(8, 8, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q = self.qkv(x).chunk(3, dim=1)[0].reshape(b, 2, -1, h * w).softmax(dim=-2)
        return self.out(q.reshape(b, -1, h, w))


def test_reshape_with_inferred_dim_next_to_a_dynamic_batch():
    fw.manual_seed(0)
    types = export_all(_HeadsToChannels(), fw.randn(2, 8, 4, 4), ["x"], {"x": {0: "n"}},
                       opsets=(NEWEST,))
    assert types[NEWEST]["Conv"] == 2
