"""ONNX export of dynamically quantized models, run in onnxruntime against eager:
8-bit activations (``reduce_range=False``) export as onnxruntime's own pattern
(DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul -> Mul -> Add) with int8 weight
initializers; PyTorch's default 7-bit x86 arithmetic exports as its exact decomposition
feeding MatMulInteger; float16 weights as half-precision initializers. Integer results
agree with eager bit for bit, dynamic batch sizes included."""

import re
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import framework as fw
import framework.ao.nn.quantized.dynamic as nnqd
import framework.ao.quantization as Q
from framework import nn
from framework.ao.quantization import quantized_decomposed as qd
from tests.test_quantization_dynamic import _mlp, _set_reduce_range, _x


def _has_vnni() -> bool:
    """onnxruntime's u8s8 kernels on x86 CPUs without VNNI may saturate int16 pair sums
    when activations use all 8 bits (the reason PyTorch's x86 default is 7 bits)."""
    try:
        with open("https://fd-gally.netlify.app/hf/proc/cpuinfo") as f:
            return bool(re.search(r"\b(avx512_vnni|avx_vnni)\b", f.read()))
    except OSError:
        return False


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _ops(model):
    return Counter(n.op_type for n in model.graph.node)


def _int8_initializers(model):
    return {i.name: tuple(i.dims) for i in model.graph.initializer
            if i.data_type == onnx.TensorProto.INT8}


def test_eight_bit_activations_export_as_onnxruntimes_pattern():
    q = Q.quantize_dynamic(_mlp(), {nn.Linear: Q.per_channel_dynamic_qconfig})
    _set_reduce_range(q, False)
    x = _x(5, 16, scale=2.0)
    model = fw.onnx.export(q, (x,), dynamic_axes={"x": {0: "batch"}})
    ops = _ops(model)
    assert ops["DynamicQuantizeLinear"] == 2 and ops["MatMulInteger"] == 2, ops
    assert "MatMul" not in ops and "DequantizeLinear" not in ops, ops
    first = [n.op_type for n in model.graph.node][:7]
    assert first == ["DynamicQuantizeLinear", "Transpose", "MatMulInteger", "Cast", "Mul",
                     "Mul", "Add"], first
    assert set(_int8_initializers(model).values()) >= {(32, 16), (8, 32)}
    sess = _session(model)
    for n in (5, 9):
        xn = _x(n, 16, seed=n, scale=2.0)
        got = sess.run(None, {"x": xn.numpy()})[0]
        want = q(xn).numpy()
        if _has_vnni():
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, atol=0.05 * np.abs(want).max())


def test_default_seven_bit_model_exports_its_exact_arithmetic():
    q = Q.quantize_dynamic(_mlp())
    x = _x(3, 4, 16, scale=3.0)
    model = fw.onnx.export(q, (x,), dynamic_axes={"x": {0: "batch"}})
    ops = _ops(model)
    assert ops["MatMulInteger"] == 2 and "DynamicQuantizeLinear" not in ops, ops
    assert {"ReduceMin", "ReduceMax", "Round"} <= set(ops), ops
    sess = _session(model)
    for n in (3, 1):
        xn = _x(n, 4, 16, seed=n, scale=3.0)
        np.testing.assert_array_equal(sess.run(None, {"x": xn.numpy()})[0], q(xn).numpy())


def _weight_bytes(model):
    return sum(onnx.numpy_helper.to_array(i).nbytes for i in model.graph.initializer)


def test_weights_are_int8_initializers_a_quarter_of_the_float_size():
    float_model = _mlp(sizes=(64, 128, 32))
    x = _x(2, 64)
    f_bytes = _weight_bytes(fw.onnx.export(float_model, (x,)))
    q_bytes = _weight_bytes(fw.onnx.export(Q.quantize_dynamic(float_model), (x,)))
    h_bytes = _weight_bytes(fw.onnx.export(Q.quantize_dynamic(float_model, dtype=fw.float16),
                                           (x,)))
    assert q_bytes < 0.3 * f_bytes and h_bytes < 0.55 * f_bytes, (f_bytes, q_bytes, h_bytes)


def test_float16_weights_export_and_match_eager():
    q = Q.quantize_dynamic(_mlp(), dtype=fw.float16)
    x = _x(4, 16)
    model = fw.onnx.export(q, (x,))
    halves = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    assert {tuple(i.dims) for i in halves} == {(32, 16), (8, 32)}
    np.testing.assert_allclose(_session(model).run(None, {"x": x.numpy()})[0], q(x).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_dynamic_quantize_linear_node_matches_eager_on_many_inputs():
    """The 8-bit op is onnxruntime's DynamicQuantizeLinear, values, scale and zero point."""
    x0 = _x(64)
    model = fw.onnx.export(lambda t: qd.dynamic_quantize_linear(t, reduce_range=False), (x0,),
                           dynamic_axes={"t": {0: "n"}})
    assert [n.op_type for n in model.graph.node] == ["DynamicQuantizeLinear"]
    sess = _session(model)
    rng = np.random.default_rng(3)
    for i in range(200):
        x = (rng.normal(size=int(rng.integers(1, 40))) * 10.0 ** rng.uniform(-4, 3)
             + rng.normal() * (i % 3)).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})
        want = qd.dynamic_quantize_linear(fw.tensor(x), reduce_range=False)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w.numpy())


def test_transformer_exports_and_matches_eager():
    fw.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0,
                                       batch_first=True)
    q = Q.quantize_dynamic(nn.Sequential(nn.TransformerEncoder(layer, num_layers=1),
                                         nn.Linear(16, 4)).eval())
    assert type(q[1]) is nnqd.Linear
    x = _x(2, 5, 16)
    model = fw.onnx.export(q, (x,))
    assert _ops(model)["MatMulInteger"] == 3
    sess = _session(model)
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, q(x).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("reduce_range", [True, False])
def test_compiled_model_exports_the_same(reduce_range):
    q = Q.quantize_dynamic(_mlp())
    _set_reduce_range(q, reduce_range)
    x = _x(3, 16)
    compiled = fw.compile(q)
    compiled(x)
    model = fw.onnx.export(compiled, (x,))
    np.testing.assert_array_equal(_session(model).run(None, {"x": x.numpy()})[0],
                                  q(x).numpy())


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_recurrent_layers_export_unrolled_and_match_eager(mode):
    fw.manual_seed(0)
    q = Q.quantize_dynamic(nn.Sequential(getattr(nn, mode)(4, 6, bidirectional=True)).eval())
    assert type(q[0]) is getattr(nnqd, mode)
    x = _x(3, 2, 4)

    def run(t):
        return q(t)[0]
    model = fw.onnx.export(run, (x,))
    assert _ops(model)["MatMulInteger"] == 2 + 2 * 3  # input linears + one per step
    sess = _session(model)
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, run(x).numpy(), rtol=1e-4, atol=1e-5)
