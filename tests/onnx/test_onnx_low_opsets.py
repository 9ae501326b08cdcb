"""Export at the older opsets deployment targets cap (12 to 16): every op whose lowering
depends on the opset, plus a fixed sample of the others, through the per-op machinery
(``onnx.checker.check_model(full_check=True)`` and onnxruntime against eager); whole
models at opset 13; the node forms chosen per opset; and the OpsetError refusals."""

from collections import Counter

import numpy as np
import onnx
import pytest

import framework as fw
from compiler.onnx import MIN_OPSET, supported_opsets
from compiler.onnx_lowering.context import LoweringContext, OpsetError
from framework import nn
from tests.onnx.test_onnx_models import _randomize_bn, export_all
from tests.onnx.test_onnx_ops import export_and_verify
from tests.opinfo import OP_DB

# op-database records whose lowering (or a node it emits) changes with the opset
OPSET_DEPENDENT = [
    "layer_norm",                                   # LayerNormalization: 17
    "tril", "triu", "cumprod",                      # Trilu: 14
    "scatter_add", "index_add", "index_put", "put", "scatter_reduce",  # reduction: 16/18
    "softmax", "log_softmax",                       # 2-D coercion before 13
    "sum", "mean", "amax", "prod", "any", "argmax",  # axes input: 13 (ReduceSum) / 18
    "argsort", "topk", "lstm", "gru", "max_pool2d_with_indices",  # Unsqueeze/Squeeze: 13
    "getitem", "setitem", "reshape",                # Unsqueeze, Reshape allowzero: 14
    "fake_quantize_per_channel_affine", "quantize_per_channel",  # axis attribute: 13
    "dequantize_per_channel",
]
# a fixed sample of the rest (lowerings that do not look at the opset)
SAMPLE = ["add", "sin", "where", "matmul", "gather", "cat", "pad", "conv2d", "avg_pool2d",
          "embedding", "cumsum", "einsum", "cross_entropy_rows", "flip", "pow"]


def _record(name):
    infos = [i for i in OP_DB if i.name == name]
    assert infos, f"no op-database record {name!r}"
    return infos[0]


@pytest.mark.parametrize("opset", [12, 13, 16])
@pytest.mark.parametrize("name", OPSET_DEPENDENT + SAMPLE)
def test_op_exports_and_matches_eager_at_old_opset(name, opset):
    info = _record(name)
    dtype = fw.float32 if fw.float32 in info.dtypes else info.dtypes[0]
    ran, breaks, _ = export_and_verify(info, dtype, opset)
    assert ran > 0, breaks


@pytest.mark.parametrize("dtype", [fw.int64, fw.int32, fw.bool, fw.float64, fw.float16])
@pytest.mark.parametrize("name", ["tril", "scatter_add", "scatter_reduce", "index_put"])
def test_rewritten_ops_other_dtypes_at_opset_13(name, dtype):
    info = _record(name)
    if dtype not in info.dtypes:
        pytest.skip(f"{name} has no {dtype.name} samples")
    assert export_and_verify(info, dtype, 13)[0] > 0


# ---------------------------------------------------------------------------------------
# the node forms chosen per opset
def _export(fn, args, opset, **kw):
    m = fw.onnx.export(fn, args, opset_version=opset, verify=True, **kw)
    assert m.opset_import[0].version == opset
    onnx.checker.check_model(m, full_check=True)
    return m


def _types(m):
    return Counter(n.op_type for n in m.graph.node)


def _attrs(m, op_type):
    return [{a.name for a in n.attribute} for n in m.graph.node if n.op_type == op_type]


def test_axes_are_attributes_before_13_and_inputs_from_13():
    x = fw.randn(2, 3, 4)

    def fn(t):
        return t.sum(1).unsqueeze(0) + t.amax(1).unsqueeze(0).squeeze(0).unsqueeze(0)
    old, new = _export(fn, (x,), 12), _export(fn, (x,), 13)
    for op in ("ReduceSum", "Unsqueeze", "Squeeze"):
        assert all("axes" in a for a in _attrs(old, op)), (op, _attrs(old, op))
        assert all("axes" not in a for a in _attrs(new, op)), (op, _attrs(new, op))
    assert all("axes" in a for a in _attrs(new, "ReduceMax"))  # an input only from 18
    assert all("axes" not in a for a in _attrs(_export(fn, (x,), 18), "ReduceMax"))


def test_softmax_over_an_inner_dim_before_13_is_transposed_to_the_last():
    x = fw.randn(2, 3, 4)
    old = _types(_export(lambda t: t.softmax(1) + t.log_softmax(0), (x,), 12))
    assert old["Transpose"] == 4 and old["Softmax"] == 1 and old["LogSoftmax"] == 1, old
    assert _types(_export(lambda t: t.softmax(1), (x,), 13))["Transpose"] == 0
    assert _types(_export(lambda t: t.softmax(-1), (x,), 12))["Transpose"] == 0


def test_triangles_without_trilu_before_14():
    x = fw.randn(2, 4, 5)
    for opset, trilu in ((13, 0), (14, 1)):
        t = _types(_export(lambda a: a.triu(1) + a.tril(-1), (x,), opset))
        assert t["Trilu"] == 2 * trilu and (t["Where"] > 0) != bool(trilu), (opset, t)
    # dynamic rows and columns: the mask is built from Range at run time
    t = _types(_export(lambda a: a.tril(), (x,), 13, input_names=["a"],
                       dynamic_axes={"a": {1: "r", 2: "c"}}))
    assert t["Range"] == 2 and t["Trilu"] == 0, t


def test_layer_norm_decomposes_before_17():
    fw.manual_seed(0)
    ln = nn.LayerNorm(6)
    x = fw.randn(2, 3, 6)
    assert _types(_export(ln, (x,), 16))["LayerNormalization"] == 0
    assert _types(_export(ln, (x,), 17))["LayerNormalization"] == 1


def test_shape_slices_before_15():
    x = fw.randn(2, 3, 4)

    def fn(t):
        return t.reshape(t.shape[1], t.shape[0], 4)
    kw = {"input_names": ["t"], "dynamic_axes": {"t": {0: "a", 1: "b"}}}
    old, new = _export(fn, (x,), 14, **kw), _export(fn, (x,), 15, **kw)
    assert _attrs(old, "Shape") and all(not a for a in _attrs(old, "Shape"))
    assert _types(old)["Slice"] >= 2
    assert any("start" in a for a in _attrs(new, "Shape"))


def test_reshape_to_size_zero_before_14():
    x = fw.randn(0, 4)
    kw = {"input_names": ["t"], "dynamic_axes": {"t": {1: "n"}}}
    old = _export(lambda t: t.reshape(t.shape[1], 0) + 1, (x,), 13, **kw)
    assert _types(old)["Reshape"] == 0 and _types(old)["Expand"] == 1
    new = _export(lambda t: t.reshape(t.shape[1], 0) + 1, (x,), 14, **kw)
    assert _attrs(new, "Reshape") == [{"allowzero"}]


@pytest.mark.parametrize("reduce", ["sum", "prod", "amax", "amin", "mean"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_with_repeated_indices_before_16(reduce, include_self):
    """Many updates to one position (one Loop round each), along dim 1."""
    g = np.random.default_rng(0)
    x = fw.tensor(g.normal(size=(3, 5)).astype(np.float32))
    index = fw.tensor(np.array([[0, 0, 0, 0, 4, 2], [4, 4, 1, 0, 0, 3], [2, 2, 2, 2, 2, 2]]))
    src = fw.tensor(g.normal(size=(3, 6)).astype(np.float32))

    def fn(a, s):
        return a.scatter_reduce(1, index, s, reduce, include_self=include_self)
    m = _export(fn, (x, src), 13)
    assert _types(m)["Loop"] >= 1 and all("reduction" not in a
                                          for a in _attrs(m, "ScatterElements"))
    native = _export(fn, (x, src), 18)
    assert any("reduction" in a for a in _attrs(native, "ScatterElements"))


def test_scatter_add_and_accumulating_index_put_use_the_native_reduction_from_16():
    x = fw.zeros(6)
    idx = fw.tensor([1, 1, 4, 1])

    def fn(a):
        return a.index_put((idx,), fw.ones(4), accumulate=True) + \
            fw.zeros(6).scatter_add(0, idx, fw.ones(4))
    old, new = _export(fn, (x,), 15), _export(fn, (x,), 16)
    assert _types(old)["Loop"] == 2 and _types(new)["Loop"] == 0
    assert sum("reduction" in a for a in _attrs(new, "ScatterElements")) == 2


@pytest.mark.parametrize("dtype", [fw.int8, fw.uint8, fw.int16, fw.bool])
def test_scatter_add_on_narrow_dtypes_before_16_computes_widened(dtype):
    x = fw.zeros(5, dtype=dtype)
    idx, src = fw.tensor([1, 1, 3, 1]), fw.ones(4, dtype=dtype)
    m = _export(lambda a: a.scatter_add(0, idx, src), (x,), 13)
    assert _types(m)["Loop"] == 1


# ---------------------------------------------------------------------------------------
# whole models at opset 13 (and 12), run in onnxruntime against eager, dynamic dims at two
# sizes
def test_mlp_at_opset_13():
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(),
                          nn.Linear(32, 4), nn.LogSoftmax(-1))
    types = export_all(model, fw.randn(3, 16), ["x"], {"x": {0: "batch"}}, opsets=(12, 13))
    for op, c in types.items():
        assert c["Gemm"] == 3 and c["LogSoftmax"] == 1, (op, c)


def test_cnn_batchnorm_pooling_at_opset_13():
    fw.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    _randomize_bn(model)
    types = export_all(model, fw.randn(2, 3, 8, 8), ["images"], {"images": {0: "N"}},
                       opsets=(12, 13))
    for op, c in types.items():
        assert c["Conv"] == 2 and c["BatchNormalization"] == 2, (op, c)
        assert c["AveragePool"] == 1 and c["GlobalAveragePool"] == 1, (op, c)


def test_transformer_encoder_layer_at_opset_13():
    fw.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
    types = export_all(layer, fw.randn(2, 5, 16), ["src"], {"src": {0: "batch", 1: "seq"}},
                       opsets=(12, 13, 17))
    for op, c in types.items():
        assert c["LayerNormalization"] == (2 if op >= 17 else 0), (op, c)
        assert c["Softmax"] == 1, (op, c)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_at_opset_13(kind):
    fw.manual_seed(0)
    rnn = getattr(nn, kind)(6, 5, num_layers=2, bidirectional=True, batch_first=True)
    types = export_all(lambda x: rnn(x)[0], fw.randn(3, 4, 6), ["x"],
                       {"x": {0: "batch", 1: "seq"}}, opsets=(12, 13))
    for op, c in types.items():
        assert c[kind] == 4, (op, c)


# ---------------------------------------------------------------------------------------
# refusals and arguments
def test_supported_opsets_start_at_12():
    assert MIN_OPSET == 12 and supported_opsets().start == 12
    with pytest.raises(fw.ArgumentError, match=r"opset_version must be an int in \[12, "):
        fw.onnx.export(lambda t: t + 1, fw.randn(2), opset_version=11)


def test_integer_bitwise_ops_need_opset_18():
    x = fw.tensor(np.array([1, 6, 3], np.int64))
    with pytest.raises(OpsetError, match=r"'bitwise_or'.*needs opset >= 18.*opset 16"):
        fw.onnx.export(lambda a: a | 5, x, opset_version=16)


def test_bfloat16_needs_opset_13():
    x = fw.randn(3).to(fw.bfloat16)
    with pytest.raises(OpsetError, match=r"bfloat16.*needs opset >= 13.*opset 12"):
        fw.onnx.export(lambda a: a * 2, x, opset_version=12)
    _export(lambda a: a * 2, (x,), 13)


def test_axes_computed_at_run_time_cannot_be_an_attribute():
    ctx = LoweringContext(12)
    with pytest.raises(OpsetError, match=r"Squeeze with axes computed at run time needs "
                                         r"opset >= 13"):
        ctx.emit("Squeeze", ["x", "axes_from_a_node"])
    ctx = LoweringContext(13)
    ctx.emit("Squeeze", ["x", "axes_from_a_node"])  # valid as it is from 13
    assert list(ctx.nodes[0].input) == ["x", "axes_from_a_node"]
