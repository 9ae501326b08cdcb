"""ONNX export of quantization: the QDQ form (QuantizeLinear -> DequantizeLinear, a Clip
for reduced ranges, per-channel ``axis``) or the exact decomposition, chosen per case;
converted QAT / PTQ models exported with int8 weight initializers and typed qparams, run
in onnxruntime against eager (same results), at a quarter of the float model's size."""

import io
import warnings
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import framework as fw
import framework.ao.quantization as Q
from framework import nn
from framework.ao.nn.quantized import reference as nnqr
from tests.test_quantization_workflow import MLP, cnn, data, qat_model, train

pytestmark = pytest.mark.filterwarnings("ignore:Please use quant_min")

FQT = fw.fake_quantize_per_tensor_affine
FQC = fw.fake_quantize_per_channel_affine


def _ops(model):
    return Counter(n.op_type for n in model.graph.node)


def _run(model, *xs):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), xs)}
    return sess.run(None, feeds)[0]


def _init_types(model):
    return {i.name: (onnx.helper.tensor_dtype_to_np_dtype(i.data_type), tuple(i.dims))
            for i in model.graph.initializer}


@pytest.mark.parametrize("fn,want,absent", [
    (lambda x: FQT(x, 0.05, 3, -128, 127), {"QuantizeLinear", "DequantizeLinear"}, "Clip"),
    (lambda x: FQT(x, 0.05, 3, 0, 255), {"QuantizeLinear", "DequantizeLinear"}, "Clip"),
    (lambda x: FQT(x, 0.05, 3, 0, 127), {"QuantizeLinear", "Clip", "DequantizeLinear"}, None),
    (lambda x: FQT(x, 0.05, -3, -8, 7), {"QuantizeLinear", "Clip"}, None),
    (lambda x: FQT(x.half(), 0.05, 3, 0, 255), {"QuantizeLinear", "Cast"}, None),
    (lambda x: FQT(x, 0.05, 300, 0, 1000), {"Round", "Mul"}, "QuantizeLinear"),
    (lambda x: FQT(x.double(), 0.05, 3, -128, 127), {"Round"}, "QuantizeLinear"),
    (lambda x: FQC(x, fw.tensor([0.1, 0.02, 0.3]), fw.tensor([0, 5, -5]), 1, -128, 127),
     {"QuantizeLinear", "DequantizeLinear"}, "Round"),
    (lambda x: FQC(x, fw.tensor([0.1, 0.02, 0.3]), fw.tensor([0.5, 1.0, 2.5]), 1, 0, 255),
     {"Round"}, "QuantizeLinear"),
])
def test_fake_quantize_exports_qdq_or_the_exact_decomposition(fn, want, absent):
    x = fw.tensor(np.random.default_rng(0).normal(scale=2, size=(4, 3)).astype(np.float32))
    model = fw.onnx.export(fn, (x,), verify=True, rtol=0, atol=1e-6)
    ops = _ops(model)
    assert want <= set(ops), ops
    assert absent is None or absent not in ops, ops
    if "QuantizeLinear" in ops:  # Python qparams became typed constants
        q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
        types = _init_types(model)
        scale_dt, scale_shape = types[q.input[1]]
        assert scale_dt == np.float32 and scale_shape in ((), (3,))
        assert types[q.input[2]][0] in (np.int8, np.uint8)


def test_per_channel_qdq_uses_the_axis_attribute_and_ties_agree_with_eager():
    x = fw.tensor([[0.125, 0.375, -0.625, 9.0], [0.25, 0.75, 1.25, -9.0]])
    s, z = fw.tensor([0.25, 0.5]), fw.tensor([0, 1], dtype=fw.int32)
    model = fw.onnx.export(lambda t: FQC(t, s, z, 0, -8, 7), (x,))
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    assert onnx.helper.get_attribute_value(q.attribute[0]) == 0
    np.testing.assert_array_equal(_run(model, x), FQC(x, s, z, 0, -8, 7).numpy())


def test_quantize_and_dequantize_ops_export_to_one_node_each():
    from framework.ao.quantization import quantized_decomposed as qd
    x = fw.randn(3, 5)
    s, z = fw.tensor([0.01, 0.02, 0.03]), fw.tensor([0, 3, -3], dtype=fw.int32)

    def fn(t):
        q = qd.quantize_per_channel(t, s, z, 0, -128, 127, fw.int8)
        return qd.dequantize_per_tensor(q, 0.5, 1, -128, 127, fw.int8)
    model = fw.onnx.export(fn, (x,), verify=True)
    assert _ops(model)["QuantizeLinear"] == 1 and _ops(model)["DequantizeLinear"] == 1


def _assert_same_up_to_rounding_edges(got, want, step):
    """Equal, except that an activation on the edge between two quantization steps may
    round the other way when onnxruntime sums products in another order (on this machine's
    CPU the examples below agree exactly; other CPUs' kernels may differ)."""
    close = np.isclose(got, want, rtol=0, atol=1e-6)
    assert close.mean() >= 0.9, (got, want)
    assert np.abs(got - want).max() <= 2 * step + 1e-6


def _check_converted(int8, x):
    with fw.no_grad():
        eager = int8(x).numpy()
        small = int8(x[:3]).numpy()
    model = fw.onnx.export(int8, (x,), input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    onnx.checker.check_model(model, full_check=True)
    last = [m for m in int8.modules() if isinstance(m, nnqr.QuantizeDequantize)][-1]
    _assert_same_up_to_rounding_edges(_run(model, x), eager, float(last.scale))
    _assert_same_up_to_rounding_edges(_run(model, x[:3]), small, float(last.scale))
    types = _init_types(model)
    qweights = {k: v for k, v in types.items() if k.endswith("qweight")}
    assert qweights and all(dt == np.int8 for dt, _ in qweights.values())
    assert not any(dt == np.float32 and len(shape) >= 2 for dt, shape in types.values())
    used = {i for n in model.graph.node for i in n.input}
    assert set(types) <= used, set(types) - used   # no stale float copies left behind
    return model


def test_converted_qat_mlp_runs_in_onnxruntime_like_eager():
    x, y = data()
    qat = qat_model()
    train(qat, x, y, 3)
    int8 = Q.convert(qat.eval())
    model = _check_converted(int8, x)
    ops = _ops(model)
    assert ops["QuantizeLinear"] == 3 and ops["DequantizeLinear"] == 5  # acts 3, weights 2


def test_converted_qat_cnn_per_channel_weights():
    x, y = data((8, 1, 7, 7))
    qat = qat_model(cnn)
    train(qat, x, y, 2)
    model = _check_converted(Q.convert(qat.eval()), x)
    dq_axes = [onnx.helper.get_attribute_value(a) for n in model.graph.node
               if n.op_type == "DequantizeLinear" for a in n.attribute if a.name == "axis"]
    # the three weights, per output channel: the linear one is dequantized transposed
    # ([in, out], axis 1) so DequantizeLinear feeds MatMul directly
    assert dq_axes == [0, 0, 1]


def test_post_training_qnnpack_model_is_plain_qdq():
    fw.manual_seed(0)
    m = MLP().eval()
    m.qconfig = Q.QConfig(activation=Q.MinMaxObserver.with_args(dtype=fw.quint8),
                          weight=Q.default_weight_observer)
    int8 = Q.quantize(m, lambda mod, xs: [mod(t) for t in xs], [[fw.randn(16, 8)]])
    model = _check_converted(int8, fw.randn(6, 8))
    assert "Clip" not in _ops(model)   # full uint8 activations: nothing between Q and DQ


def test_int8_model_is_about_a_quarter_of_the_float_size():
    fw.manual_seed(0)
    m = nn.Sequential(Q.QuantStub(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128),
                      Q.DeQuantStub())
    x = fw.randn(4, 128)
    float_bytes = fw.onnx.export(m, (x,)).ByteSize()
    m.qconfig = Q.get_default_qat_qconfig("x86")
    qat = Q.prepare_qat(m)
    qat(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        int8_model = fw.onnx.export(Q.convert(qat.eval()), (x,))
    buf = io.BytesIO()
    onnx.save(int8_model, buf)
    assert len(buf.getvalue()) < 0.3 * float_bytes, (len(buf.getvalue()), float_bytes)


def test_fused_converted_model_runs_on_int8_kernels_in_onnxruntime(tmp_path):
    from tests.test_quantization_workflow import convbn_net
    m = Q.fuse_modules(convbn_net().eval(), [["1", "2", "3"], ["5", "6"]]).train()
    m.qconfig = Q.get_default_qat_qconfig("x86")
    qat = Q.prepare_qat(m)
    x = fw.randn(8, 2, 5, 5)
    qat(x)
    int8 = Q.convert(qat.eval())
    model = _check_converted(int8, x)
    path, opt = tmp_path / "m.onnx", tmp_path / "m_opt.onnx"
    onnx.save(model, str(path))
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(opt)
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    ops = _ops(onnx.load(str(opt)))
    # the convolution and both linear layers became integer kernels
    assert ops["QLinearConv"] == 1 and ops["QGemm"] + ops["QLinearMatMul"] == 2, ops
    assert not {"Conv", "MatMul", "Gemm"} & set(ops), ops
