"""Dynamic quantization (``quantize_dynamic``, ``ao.nn.quantized.dynamic.Linear``):
the module's arithmetic against NumPy bit for bit (PyTorch's fbgemm kernel and the ONNX
8-bit form), the weight quantization, qconfig_spec forms, per-channel and float16 weights,
state_dict round trips through fw.save / fw.load, a small transformer's accuracy against
float, fw.compile against eager, dynamic observers, and the errors."""

import io
import warnings

import numpy as np
import pytest

import framework as fw
import framework.ao.nn.quantized.dynamic as nnqd
import framework.ao.quantization as Q
from framework import nn
from framework.ao.nn.intrinsic import LinearReLU
from framework.ao.quantization import quantized_decomposed as qd
from tests.opinfo_quant_dynamic import ref_dynamic_quantize

F32 = np.float32


class MLP(nn.Module):
    def __init__(self, sizes=(16, 32, 8)):
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1])
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(sizes[1], sizes[2])

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def _mlp(seed=0, sizes=(16, 32, 8)):
    fw.manual_seed(seed)
    return MLP(sizes).eval()


def _x(*shape, seed=1, scale=1.0):
    return fw.tensor((np.random.default_rng(seed).normal(size=shape) * scale).astype(F32))


def _set_reduce_range(model, value):
    for m in model.modules():
        if isinstance(m, nnqd.Linear):
            m.reduce_range = value


def ref_linear(x, qlin):
    """The module's arithmetic in NumPy, from its stored integers: quantize the input,
    int64 matmul of the shifted integers, then ``float32(acc) * scale * w_scale + bias``."""
    q, s, zp = ref_dynamic_quantize(np.asarray(x, F32), qlin.reduce_range)
    w = qlin.get_quantized_weight().numpy().astype(np.int64)
    wz = qlin.weight_zero_point.numpy().astype(np.int64).reshape(-1, 1)
    acc = (q.astype(np.int64) - int(zp)) @ (w - wz).T
    y = acc.astype(np.int32).astype(F32) * s * qlin.weight_scale.numpy().astype(F32)
    return y if qlin.bias() is None else y + qlin.bias().numpy()


# ---------------------------------------------------------------------------------------
# numerics
@pytest.mark.parametrize("reduce_range", [True, False])
@pytest.mark.parametrize("qconfig", ["per_tensor", "per_channel"])
def test_linear_matches_numpy_bit_for_bit(reduce_range, qconfig):
    qc = {"per_tensor": Q.default_dynamic_qconfig,
          "per_channel": Q.per_channel_dynamic_qconfig}[qconfig]
    model = Q.quantize_dynamic(_mlp(), {nn.Linear: qc})
    _set_reduce_range(model, reduce_range)
    x = _x(3, 5, 16, scale=2.0)
    h = model.fc1(x)
    np.testing.assert_array_equal(h.numpy(), ref_linear(x.numpy(), model.fc1))
    out = model(x)
    np.testing.assert_array_equal(out.numpy(), ref_linear(np.maximum(h.numpy(), 0),
                                                          model.fc2))
    assert out.shape == (3, 5, 8) and out.dtype is fw.float32


def test_weights_are_quantized_like_pytorch_observers():
    """Per tensor: symmetric qint8, scale max|w| / 127.5; per channel: one scale per
    output row; integers nearbyint(w / scale) in [-128, 127], zero points 0."""
    float_model = _mlp()
    w = float_model.fc1.weight.detach().numpy()
    pt = Q.quantize_dynamic(float_model).fc1
    scale = F32(np.abs(w).max()) / F32(127.5)
    assert pt.weight_scale.shape == () and pt.weight_scale.numpy() == scale
    want = np.clip(np.rint(w * (F32(1) / scale)), -128, 127)
    np.testing.assert_array_equal(pt.get_quantized_weight().numpy(), want)
    assert pt.get_quantized_weight().dtype is fw.int8 and pt.qscheme is fw.per_tensor_affine
    np.testing.assert_allclose(pt.weight().numpy(), w, atol=scale / 2 + 1e-7)
    pc = Q.quantize_dynamic(float_model, {nn.Linear: Q.per_channel_dynamic_qconfig}).fc1
    scales = np.abs(w).max(axis=1).astype(F32) / F32(127.5)
    np.testing.assert_array_equal(pc.weight_scale.numpy(), scales)
    assert pc.weight_zero_point.shape == (32,) and not pc.weight_zero_point.numpy().any()
    assert pc.qscheme is fw.per_channel_affine
    extreme = np.abs(pc.get_quantized_weight().numpy().astype(np.int16)).max(axis=1)
    assert set(extreme.tolist()) <= {127, 128}  # max|w| / scale = 127.5, rounded to even


def test_quantized_model_is_close_to_float_and_bias_is_float():
    float_model = _mlp()
    x = _x(64, 16)
    want = float_model(x).detach().numpy()
    for qc in (Q.default_dynamic_qconfig, Q.per_channel_dynamic_qconfig):
        got = Q.quantize_dynamic(float_model, {nn.Linear: qc})(x).numpy()
        assert np.abs(got - want).max() < 0.03 * np.abs(want).max()
    q = Q.quantize_dynamic(float_model)
    np.testing.assert_array_equal(q.fc1.bias().numpy(), float_model.fc1.bias.detach().numpy())


def test_other_float_inputs_compute_in_float32_and_keep_their_dtype():
    lin = Q.quantize_dynamic(_mlp()).fc1
    x = _x(4, 16)
    for dt in (fw.float64, fw.float16, fw.bfloat16):
        y = lin(x.to(dt))
        assert y.dtype is dt
        np.testing.assert_array_equal(y.numpy(), lin(x.to(dt).to(fw.float32)).to(dt).numpy())


def test_ops_directly():
    x = _x(3, 4)
    q, s, zp = qd.dynamic_quantize_linear(x, reduce_range=True)
    assert (q.dtype, s.dtype, zp.dtype, s.shape, zp.shape) == (fw.uint8, fw.float32,
                                                               fw.uint8, (), ())
    assert int(q.numpy().max()) <= 128  # 7 bits (one past 127 only at a rounding edge)
    w = fw.tensor(np.array([[1, -2], [3, 4], [-5, 6], [7, 8]], np.int8))
    out = qd.matmul_integer(q, w, zp, 1)
    want = (q.numpy().astype(np.int64) - int(zp)) @ (w.numpy().astype(np.int64) - 1)
    np.testing.assert_array_equal(out.numpy(), want)
    assert out.dtype is fw.int32
    np.testing.assert_array_equal(qd.matmul_integer(q, w).numpy(),
                                  q.numpy().astype(np.int64) @ w.numpy().astype(np.int64))


# ---------------------------------------------------------------------------------------
# qconfig_spec forms and the swap
def test_default_spec_swaps_every_linear_and_keeps_hooks_and_eval_mode():
    model = _mlp().train()
    calls = []
    model.fc2.register_forward_hook(lambda m, i, o: calls.append(type(m).__name__))
    q = Q.quantize_dynamic(model)
    assert type(q.fc1) is nnqd.Linear and type(q.fc2) is nnqd.Linear
    assert type(model.fc1) is nn.Linear  # a copy unless inplace
    assert not q.training and not hasattr(q.fc1, "qconfig")
    q(_x(2, 16))
    assert calls == ["Linear"]
    assert "DynamicQuantizedLinear(in_features=16, out_features=32, dtype=framework.qint8, " \
           "qscheme=framework.per_tensor_affine)" in repr(q)
    same = Q.quantize_dynamic(model, inplace=True)
    assert same is model and type(model.fc1) is nnqd.Linear


def test_spec_as_set_of_types_or_names_and_dict_of_names():
    q = Q.quantize_dynamic(_mlp(), {"fc2"})
    assert type(q.fc1) is nn.Linear and type(q.fc2) is nnqd.Linear
    q = Q.quantize_dynamic(_mlp(), {nn.Linear}, dtype=fw.float16)
    assert q.fc1.dtype is fw.float16 and q.fc2.dtype is fw.float16
    q = Q.quantize_dynamic(_mlp(), {"fc1": Q.per_channel_dynamic_qconfig,
                                    "fc2": Q.float16_dynamic_qconfig})
    assert q.fc1.qscheme is fw.per_channel_affine and q.fc2.dtype is fw.float16
    seq = nn.Sequential(_mlp(), nn.Linear(8, 4))
    q = Q.quantize_dynamic(seq, {"": Q.default_dynamic_qconfig, "0.fc2": None})
    assert [type(m) for m in (q[0].fc1, q[0].fc2, q[1])] == [nnqd.Linear, nn.Linear,
                                                             nnqd.Linear]


def test_fused_linear_relu_becomes_dynamic_linear_relu():
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    fused = Q.fuse_modules(model, [["0", "1"]])
    assert type(Q.quantize_dynamic(fused)[0]) is LinearReLU  # not in the default spec
    q = Q.quantize_dynamic(fused, {nn.Linear, LinearReLU})
    assert type(q[0]) is nnqd.LinearReLU and type(q[2]) is nnqd.Linear
    x = _x(4, 6)
    np.testing.assert_array_equal(q[0](x).numpy(), np.maximum(ref_linear(x.numpy(), q[0]), 0))


def test_transformer_accuracy_against_float_and_attention_out_proj_stays_float():
    fw.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0,
                                       batch_first=True)
    model = nn.Sequential(nn.TransformerEncoder(layer, num_layers=2), nn.Linear(32, 10)).eval()
    q = Q.quantize_dynamic(model)
    enc = q[0].layers[0]
    assert type(enc.linear1) is nnqd.Linear and type(enc.linear2) is nnqd.Linear
    assert type(enc.self_attn.out_proj) is nn.modules.attention.NonDynamicallyQuantizableLinear
    x = _x(4, 12, 32)
    want, got = model(x).detach().numpy(), q(x).numpy()
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert rel < 0.03, rel
    assert np.mean(got.argmax(-1) == want.argmax(-1)) > 0.9


# ---------------------------------------------------------------------------------------
# float16 weights
def test_float16_weights_are_stored_in_half_precision():
    float_model = _mlp()
    q = Q.quantize_dynamic(float_model, dtype=fw.float16)
    w16 = q.fc1.get_quantized_weight()
    assert w16.dtype is fw.float16 and "weight_scale" not in dict(q.fc1.named_buffers())
    np.testing.assert_array_equal(w16.numpy(),
                                  float_model.fc1.weight.detach().numpy().astype(np.float16))
    x = _x(5, 16)
    want = x.numpy() @ w16.numpy().astype(F32).T + q.fc1.bias().numpy()
    np.testing.assert_allclose(q.fc1(x).numpy(), want, rtol=1e-6, atol=1e-6)
    q.half()  # Module.half() / double() leave the stored tensors alone, as in PyTorch
    assert q.fc1.get_quantized_weight().dtype is fw.float16 and q.fc1.bias().dtype is fw.float32


def test_float16_weights_saturate_with_pytorchs_warning():
    lin = nn.Linear(2, 2)
    with fw.no_grad():
        lin.weight.copy_(fw.tensor([[1e6, -1e6], [1.0, 2.0]]))
    lin.qconfig = Q.float16_dynamic_qconfig
    with pytest.warns(UserWarning, match="FOUND weight out of range"):
        q = nnqd.Linear.from_float(lin)
    np.testing.assert_array_equal(q.get_quantized_weight().numpy(),
                                  np.array([[65504, -65504], [1, 2]], np.float16))


# ---------------------------------------------------------------------------------------
# state dict
def _roundtrip(sd):
    buf = io.BytesIO()
    fw.save(sd, buf)
    buf.seek(0)
    return fw.load(buf)


@pytest.mark.parametrize("spec", [None, "per_channel", "float16"])
def test_state_dict_round_trip_through_save_and_load(spec):
    spec = {None: None, "per_channel": {nn.Linear: Q.per_channel_dynamic_qconfig},
            "float16": {nn.Linear: Q.float16_dynamic_qconfig}}[spec]
    q = Q.quantize_dynamic(_mlp(), spec)
    sd = q.state_dict()
    keys = {"fc1.weight", "fc1.bias", "fc1._extra_state"}
    assert keys <= set(sd) and not any("_packed_params" in k for k in sd)
    assert ("fc1.weight_scale" in sd) is (q.fc1.dtype is fw.qint8)
    # a freshly built (per-tensor qint8) model takes any of them
    fresh = MLP()
    fresh.fc1, fresh.fc2 = nnqd.Linear(16, 32), nnqd.Linear(32, 8)
    fresh.load_state_dict(_roundtrip(sd))
    assert fresh.fc1.dtype is q.fc1.dtype and fresh.fc1.qscheme is q.fc1.qscheme
    x = _x(3, 16)
    np.testing.assert_array_equal(fresh(x).numpy(), q(x).numpy())


def test_load_state_dict_reports_missing_and_unexpected_public_keys():
    q = Q.quantize_dynamic(_mlp())
    sd = q.state_dict()
    del sd["fc1.bias"]
    sd["fc1.extra"] = fw.zeros(1)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "fc1\.bias"'):
        q.load_state_dict(sd)
    res = q.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc1.bias"] and res.unexpected_keys == ["fc1.extra"]


# ---------------------------------------------------------------------------------------
# compile
@pytest.mark.parametrize("reduce_range", [True, False])
def test_compiled_equals_eager_over_batch_sizes(reduce_range):
    q = Q.quantize_dynamic(_mlp(), {nn.Linear: Q.per_channel_dynamic_qconfig})
    _set_reduce_range(q, reduce_range)
    compiled = fw.compile(q)
    for n in (4, 7, 4):
        x = _x(n, 16, seed=n)
        np.testing.assert_array_equal(compiled(x).numpy(), q(x).numpy())


def test_compiled_float16_model_equals_eager():
    q = Q.quantize_dynamic(_mlp(), dtype=fw.float16)
    x = _x(6, 16)
    np.testing.assert_allclose(fw.compile(q)(x).numpy(), q(x).numpy(), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------
# observers and qconfigs
def test_dynamic_qconfigs_follow_pytorch():
    act = Q.default_dynamic_qconfig.activation()
    assert isinstance(act, Q.PlaceholderObserver) and act.is_dynamic
    assert (act.dtype, act.quant_min, act.quant_max) == (fw.quint8, 0, 255)
    wt = Q.default_dynamic_qconfig.weight()
    assert (wt.dtype, wt.qscheme) == (fw.qint8, fw.per_tensor_symmetric)
    assert Q.per_channel_dynamic_qconfig.weight().qscheme is fw.per_channel_symmetric
    assert Q.float16_dynamic_qconfig.weight().dtype is fw.float16
    assert Q.float16_dynamic_qconfig.activation().is_dynamic
    x = _x(3)
    assert act(x) is x
    with pytest.raises(Q.QuantizationError, match="PlaceholderObserver"):
        act.calculate_qparams()


def test_is_dynamic_observers_are_accepted():
    obs = Q.MinMaxObserver(dtype=fw.quint8, is_dynamic=True)
    obs(_x(5))
    assert obs.is_dynamic and obs.calculate_qparams()[0].numel() == 1


def test_float_qparams_observer_gives_per_row_scale_and_float_zero_point():
    w = _x(4, 6, scale=3.0)
    obs = Q.default_float_qparams_observer()
    obs(w)
    scale, zp = obs.calculate_qparams()
    lo, hi = w.numpy().min(1), w.numpy().max(1)
    want = (hi - lo) / F32(255)
    np.testing.assert_allclose(scale.numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(zp.numpy(), -lo / want, rtol=1e-5)
    assert zp.dtype.is_floating_point
    q = fw.fake_quantize_per_channel_affine(w, scale, zp, 0, 0, 255)
    assert np.abs(q.numpy() - w.numpy()).max() <= scale.numpy().max() / 2 + 1e-6


def test_from_reference_takes_a_converted_static_layer():
    lin = nn.Linear(6, 4)
    lin.qconfig = Q.default_qconfig
    prepared = Q.prepare(nn.Sequential(lin).eval())
    prepared(_x(8, 6))
    ref = Q.convert(prepared)[0]
    dyn = nnqd.Linear.from_reference(ref)
    np.testing.assert_array_equal(dyn.get_quantized_weight().numpy(), ref.qweight.numpy())
    x = _x(3, 6)
    np.testing.assert_array_equal(dyn(x).numpy(), ref_linear(x.numpy(), dyn))


# ---------------------------------------------------------------------------------------
# errors
def test_errors():
    with pytest.raises(Q.QuantizationError, match="Don't know how to quantize"):
        Q.quantize_dynamic(_mlp(), dtype=fw.qint32)
    with pytest.raises(Q.QuantizationError, match="Unknown dtype"):
        Q.quantize_dynamic(_mlp(), {nn.Linear}, dtype=fw.qint32)
    with pytest.raises(NotImplementedError, match="Embedding"):
        Q.quantize_dynamic(_mlp(), dtype=fw.quint8)
    with pytest.raises(Q.QuantizationError, match="qconfig_spec must be"):
        Q.quantize_dynamic(_mlp(), [nn.Linear])
    q = Q.quantize_dynamic(_mlp())
    with pytest.raises(fw.errors.DTypeError, match="floating-point input"):
        q(fw.ones(2, 16, dtype=fw.int64))
    with pytest.raises(fw.errors.ShapeError, match="in_features=16"):
        q(_x(2, 15))
    with pytest.raises(fw.errors.DTypeError, match="qint8 and float16"):
        nnqd.Linear(3, 2, dtype=fw.quint8)
    with pytest.raises(Q.QuantizationError, match="must have qconfig"):
        nnqd.Linear.from_float(nn.Linear(3, 2))
    with pytest.raises(Q.QuantizationError, match="only works for"):
        nnqd.Linear.from_float(nn.Conv1d(1, 1, 1))
    lin = nn.Linear(3, 2)
    lin.qconfig = Q.float_qparams_weight_only_qconfig  # quint8: embedding quantization
    with pytest.raises(fw.errors.DTypeError, match="qint8 and float16"):
        nnqd.Linear.from_float(lin)
    lin.qconfig = Q.QConfig(activation=Q.default_dynamic_quant_observer,
                            weight=Q.PerChannelMinMaxObserver.with_args(
                                ch_axis=1, dtype=fw.qint8, qscheme=fw.per_channel_symmetric))
    with pytest.raises(Q.QuantizationError, match="per-output-channel"):
        nnqd.Linear.from_float(lin)


def test_op_errors():
    with pytest.raises(fw.errors.DTypeError, match="float32"):
        qd.dynamic_quantize_linear(_x(3).double())
    with pytest.raises(fw.errors.FwTypeError, match="reduce_range must be a bool"):
        qd.dynamic_quantize_linear(_x(3), 1)
    with pytest.raises(fw.errors.ArgumentError, match="NaN or infinite"):
        qd.dynamic_quantize_linear(fw.tensor([1.0, float("nan")]))
    a = fw.zeros(2, 3, dtype=fw.uint8)
    with pytest.raises(fw.errors.DTypeError, match="int8 or uint8"):
        qd.matmul_integer(a, fw.zeros(3, 2, dtype=fw.int32))
    with pytest.raises(fw.errors.DTypeError, match="a_zero_point must have a's dtype"):
        qd.matmul_integer(a, fw.zeros(3, 2, dtype=fw.int8), fw.tensor(1, dtype=fw.int8))
    with pytest.raises(fw.errors.ShapeError, match="last dimension"):
        qd.matmul_integer(a, fw.zeros(4, 2, dtype=fw.int8))
    with pytest.raises(fw.errors.ShapeError, match="one per column"):
        qd.matmul_integer(a, fw.zeros(3, 2, dtype=fw.int8), 0,
                          fw.zeros(3, dtype=fw.int8))


def test_static_convert_refuses_a_dynamic_activation_observer():
    model = nn.Sequential(nn.Linear(4, 3)).eval()
    model.qconfig = Q.QConfig(activation=Q.MinMaxObserver.with_args(is_dynamic=True),
                              weight=Q.default_weight_observer)
    prepared = Q.prepare(model)
    prepared(_x(5, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Q.QuantizationError, match="quantize_dynamic"):
            Q.convert(prepared)


# ---------------------------------------------------------------------------------------
# recurrent layers
def _unrolled(q, x, mode):
    """The layer's arithmetic with its own dynamic linears: the input linear over the whole
    sequence, the hidden linear per step, PyTorch's gate formulas (time-major input)."""
    dirs = 2 if q.bidirectional else 1
    out, finals = x, []
    for layer in range(q.num_layers):
        ys_dirs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            gi, hh = getattr(q, "ih" + sfx)(out), getattr(q, "hh" + sfx)
            h = c = fw.zeros(x.shape[1], q.hidden_size)
            ys = {}
            for t in (reversed(range(x.shape[0])) if d else range(x.shape[0])):
                if mode == "LSTM":
                    i, f, g, o = (hh(h) + gi[t]).chunk(4, -1)
                    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                    h = o.sigmoid() * c.tanh()
                else:
                    (ir, iz, inn), (hr, hz, hn) = gi[t].chunk(3, -1), hh(h).chunk(3, -1)
                    r, z = (hr + ir).sigmoid(), (hz + iz).sigmoid()
                    new = (inn + hn * r).tanh()
                    h = (h - new) * z + new
                ys[t] = h
            ys_dirs.append(fw.stack([ys[t] for t in range(x.shape[0])]))
            finals.append((h, c))
        out = fw.cat(ys_dirs, -1) if dirs == 2 else ys_dirs[0]
    return out, finals


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_lstm_and_gru_match_their_unrolled_arithmetic(mode):
    fw.manual_seed(0)
    float_rnn = getattr(nn, mode)(6, 8, num_layers=2, batch_first=True, bidirectional=True)
    q = Q.quantize_dynamic(nn.Sequential(float_rnn).eval())[0]
    assert type(q) is getattr(nnqd, mode) and q.ih_l1_reverse.in_features == 16
    x = _x(3, 5, 6, scale=2.0)  # batch_first
    out, hn = q(x)
    want, finals = _unrolled(q, x.transpose(0, 1), mode)
    np.testing.assert_array_equal(out.numpy(), want.transpose(0, 1).numpy())
    h_n = hn[0] if mode == "LSTM" else hn
    np.testing.assert_array_equal(h_n.numpy(), fw.stack([f[0] for f in finals]).numpy())
    ref_out, ref_h = float_rnn(x)
    assert np.abs(out.numpy() - ref_out.detach().numpy()).max() < 0.03
    unbatched, _ = q(x[0])  # qparams come from the whole input: compare with a batch of 1
    np.testing.assert_array_equal(unbatched.numpy(), q(x[:1])[0][0].numpy())


@pytest.mark.parametrize("mode", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cells_are_swapped_and_close_to_float(mode):
    fw.manual_seed(0)
    cell = getattr(nn, mode)(5, 7)
    q = Q.quantize_dynamic(nn.Sequential(cell))[0]
    assert type(q) is getattr(nnqd, mode)
    x, h = _x(4, 5), _x(4, 7, seed=2)
    hx = (h, h) if mode == "LSTMCell" else h
    got, want = q(x, hx), cell(x, hx)
    got, want = (got[0], want[0]) if mode == "LSTMCell" else (got, want)
    assert np.abs(got.numpy() - want.detach().numpy()).max() < 0.03
    single = q(x[1], (h[1], h[1]) if mode == "LSTMCell" else h[1])
    batch1 = q(x[1:2], (h[1:2], h[1:2]) if mode == "LSTMCell" else h[1:2])
    single, batch1 = (single[0], batch1[0]) if mode == "LSTMCell" else (single, batch1)
    np.testing.assert_array_equal(single.numpy(), batch1[0].numpy())


def test_lstm_compiles_saves_and_refuses_what_it_lacks():
    fw.manual_seed(0)
    q = Q.quantize_dynamic(nn.Sequential(nn.LSTM(4, 6, num_layers=2)).eval(),
                           {nn.LSTM: Q.per_channel_dynamic_qconfig})
    x = _x(5, 2, 4)
    out, (h, c) = q(x)
    cout, (ch, cc) = fw.compile(q)(x)  # the float gate math may round differently
    np.testing.assert_allclose(cout.numpy(), out.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cc.numpy(), c.numpy(), rtol=1e-5, atol=1e-6)
    fresh = Q.quantize_dynamic(nn.Sequential(nn.LSTM(4, 6, num_layers=2)).eval())
    fresh.load_state_dict(_roundtrip(q.state_dict()))
    np.testing.assert_array_equal(fresh(x)[0].numpy(), out.numpy())
    assert fresh[0].ih_l1.qscheme is fw.per_channel_affine
    with pytest.raises(NotImplementedError, match="proj_size"):
        Q.quantize_dynamic(nn.Sequential(nn.LSTM(4, 6, proj_size=3)))
    packed = nn.utils.rnn.pack_padded_sequence(x, [5, 3])
    with pytest.raises(NotImplementedError, match="PackedSequence"):
        q(packed)
    with pytest.raises(fw.errors.ShapeError, match="input_size=4"):
        q(_x(5, 2, 3))
    with pytest.raises(fw.errors.ShapeError, match="hidden state"):
        q[0](x, (fw.zeros(1, 2, 6), fw.zeros(1, 2, 6)))
