"""Composites become one native ONNX node where the opset has one (and their
decomposition before), verified in onnxruntime at each opset."""

from collections import Counter

import numpy as np
import pytest

import framework as fw
from compiler.onnx import supported_opsets
from framework import nn
from framework.nn import functional as F

NEWEST = max(supported_opsets())


def _types(fn, args, opset, **kw):
    m = fw.onnx.export(fn, args, opset_version=opset, verify=True, **kw)
    return Counter(n.op_type for n in m.graph.node)


def _seeded(make):
    fw.manual_seed(0)
    return make()


# name -> (model factory, example args, native op type, first opset with it,
#          op types that show the decomposition before that opset)
CASES = {
    "linear-2d": (lambda: nn.Linear(5, 3), lambda: fw.randn(4, 5), "Gemm", 17, ()),
    "linear-3d": (lambda: nn.Linear(5, 3), lambda: fw.randn(2, 4, 5), "MatMul", 17, ()),
    "linear-no-bias": (lambda: nn.Linear(5, 3, bias=False), lambda: fw.randn(4, 5), "Gemm",
                       17, ()),
    "conv1d": (lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1), lambda: fw.randn(2, 2, 9),
               "Conv", 17, ()),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1),
                         lambda: fw.randn(1, 2, 4, 5), "ConvTranspose", 17, ()),
    "max_pool-ceil": (lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
                      lambda: fw.randn(1, 2, 8, 7), "MaxPool", 17, ()),
    "avg_pool": (lambda: nn.AvgPool2d(3, 2, padding=1), lambda: fw.randn(1, 2, 7, 7),
                 "AveragePool", 17, ()),
    "global_avg_pool": (lambda: nn.AdaptiveAvgPool2d(1), lambda: fw.randn(2, 3, 5, 4),
                        "GlobalAveragePool", 17, ()),
    "batch_norm": (lambda: nn.BatchNorm2d(3), lambda: fw.randn(2, 3, 4, 4),
                   "BatchNormalization", 17, ()),
    "batch_norm-no-affine": (lambda: nn.BatchNorm1d(3, affine=False), lambda: fw.randn(4, 3),
                             "BatchNormalization", 17, ()),
    "layer_norm": (lambda: nn.LayerNorm(6), lambda: fw.randn(2, 3, 6),
                   "LayerNormalization", 17, ()),
    "gelu": (lambda: nn.GELU(), lambda: fw.randn(3, 4), "Gelu", 20, ("Erf",)),
    "gelu-tanh": (lambda: nn.GELU("tanh"), lambda: fw.randn(3, 4), "Gelu", 20, ("Tanh",)),
    "rms_norm": (lambda: nn.RMSNorm(6), lambda: fw.randn(2, 3, 6), "RMSNormalization", 23,
                 ("ReduceSum",)),
    "softmax": (lambda: nn.Softmax(-1), lambda: fw.randn(3, 4), "Softmax", 17, ()),
    "log_softmax": (lambda: nn.LogSoftmax(1), lambda: fw.randn(3, 4), "LogSoftmax", 17, ()),
    "embedding": (lambda: nn.Embedding(7, 3), lambda: fw.tensor([[1, 6], [0, 2]]), "Gather",
                  17, ()),
    "lstm": (lambda: nn.LSTM(3, 4), lambda: fw.randn(5, 2, 3), "LSTM", 17, ()),
    "gru": (lambda: nn.GRU(3, 4, bias=False), lambda: fw.randn(5, 2, 3), "GRU", 17, ()),
    "rnn-relu": (lambda: nn.RNN(3, 4, nonlinearity="relu"), lambda: fw.randn(5, 2, 3), "RNN",
                 17, ()),
    "sdpa": (lambda: (lambda q, k, v: F.scaled_dot_product_attention(q, k, v)),
             lambda: (fw.randn(2, 2, 5, 4), fw.randn(2, 2, 6, 4), fw.randn(2, 2, 6, 3)),
             "Attention", 23, ("Softmax",)),
    "sdpa-causal": (lambda: (lambda q, k, v: F.scaled_dot_product_attention(q, k, v,
                                                                             is_causal=True)),
                    lambda: (fw.randn(1, 2, 5, 4), fw.randn(1, 2, 5, 4), fw.randn(1, 2, 5, 4)),
                    "Attention", 23, ("Softmax",)),
}


@pytest.mark.parametrize("opset", [17, 18, 20, 23, NEWEST])
@pytest.mark.parametrize("name", list(CASES))
def test_native_op_by_opset(name, opset):
    make, args, native, since, before = CASES[name]
    model = _seeded(make)
    if isinstance(model, nn.Module) and any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)
                                            for m in model.modules()):
        g = np.random.default_rng(0)
        model.running_mean.copy_(fw.tensor(g.normal(size=3).astype(np.float32)))
        model.running_var.copy_(fw.tensor(g.uniform(0.5, 2, 3).astype(np.float32)))
    a = args()
    types = _types(model, a if isinstance(a, tuple) else (a,), opset)
    if opset >= since:
        assert types[native] == 1, (opset, types)
    else:
        assert types[native] == 0 and all(types[b] for b in before), (opset, types)


def test_cross_entropy_is_softmax_cross_entropy_loss():
    logits, target = fw.randn(4, 5), fw.tensor([0, 4, 2, 1])
    types = _types(lambda a, b: F.cross_entropy(a, b), (logits, target), 18)
    assert types["SoftmaxCrossEntropyLoss"] == 1, types


def test_attention_pattern_skipped_when_weights_are_returned():
    """need_weights=True reads the softmax output twice: no Attention node, still correct."""
    mha = _seeded(lambda: nn.MultiheadAttention(8, 2, batch_first=True))
    x = fw.randn(2, 3, 8)
    types = _types(lambda q: mha(q, q, q), (x,), NEWEST)
    assert types["Attention"] == 0 and types["Softmax"] == 1, types


def test_identity_duplicate_and_parameter_outputs():
    lin = _seeded(lambda: nn.Linear(3, 2))
    m = fw.onnx.export(lambda x: (x, lin(x), lin(x), lin.weight), (fw.randn(2, 3),),
                       verify=True)
    assert [o.name for o in m.graph.output] == [f"output_{i}" for i in range(4)]


def test_attention_pattern_skipped_when_batch_dims_broadcast():
    """k/v shared across the batch (matmul broadcasting): Attention would need equal batch
    dims, so the MatMul/Softmax form is kept, and it still matches eager."""
    q, k, v = fw.randn(2, 2, 5, 4), fw.randn(1, 2, 6, 4), fw.randn(1, 2, 6, 3)
    types = _types(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), (q, k, v), NEWEST)
    assert types["Attention"] == 0 and types["Softmax"] == 1, types


@pytest.mark.parametrize("which", ["sdpa-key-mask", "mha-key-padding"])
def test_attention_with_broadcast_masks(which):
    """Masks that broadcast over the query axis are expanded to (..., L, S) before the
    Attention node (onnxruntime reads the mask as full rows). Every row keeps one key:
    a fully masked row is NaN in eager but 0 in onnxruntime's Attention."""
    x = fw.randn(2, 5, 8)
    if which == "sdpa-key-mask":
        def fn(x):
            keep = (x[..., 0] > -0.5) | (fw.arange(x.shape[1]) == 0)
            return F.scaled_dot_product_attention(x, x, x, attn_mask=keep.unsqueeze(1))
    else:
        mha = _seeded(lambda: nn.MultiheadAttention(8, 2, batch_first=True))

        def fn(x):
            pad = (x[..., 0] > 1.0) & (fw.arange(x.shape[1]) != 0)
            return mha(x, x, x, key_padding_mask=pad, need_weights=False)[0]
    m = fw.onnx.export(fn, (x,), input_names=["x"], dynamic_axes={"x": {0: "b", 1: "t"}},
                       opset_version=NEWEST, verify=True)
    assert Counter(n.op_type for n in m.graph.node)["Attention"] == 1
