"""The eager-mode quantization workflow: prepare_qat swaps and observer hooks, a QAT loop
that trains (eagerly and under fw.compile, step for step equal), convert to reference
modules with int8 weights, post-training prepare/calibrate/convert. The cuda device:
tests/gpu/test_gpu_quantization.py; ONNX export: tests/onnx/test_onnx_quant.py."""

import warnings

import numpy as np
import pytest

import framework as fw
import framework.ao.quantization as Q
from framework import nn
from framework.ao.nn import intrinsic as nni
from framework.ao.nn.intrinsic import qat as nniqat
from framework.ao.nn.quantized import reference as nnqr

pytestmark = pytest.mark.filterwarnings("ignore:Please use quant_min")


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = Q.QuantStub()
        self.fc1 = nn.Linear(8, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(16, 3)
        self.dequant = Q.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.fc2(self.relu(self.fc1(self.quant(x)))))


def cnn():
    return nn.Sequential(Q.QuantStub(), nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2), nn.Flatten(), nn.Linear(36, 3),
                         Q.DeQuantStub())


def qat_model(make=MLP, backend="x86", version=1, seed=0):
    fw.manual_seed(seed)
    m = make()
    m.qconfig = Q.get_default_qat_qconfig(backend, version)
    return Q.prepare_qat(m)


def data(shape=(32, 8), seed=1):
    fw.manual_seed(seed)
    return fw.randn(*shape), fw.randint(0, 3, (shape[0],))


def train(model, x, y, steps, compiled=False, lr=0.2):
    opt = fw.optim.SGD(model.parameters(), lr=lr)

    def step(x, y):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    fn = fw.compile(step, mode="always") if compiled else step
    losses = [float(fn(x, y)) for _ in range(steps)]
    return losses, fn


# ---------------------------------------------------------------------------------------
def test_prepare_qat_swaps_layers_and_adds_output_fake_quant():
    float_model = MLP()
    float_model.qconfig = Q.get_default_qat_qconfig("x86")
    qat = Q.prepare_qat(float_model)
    assert type(qat.fc1) is nn.qat.Linear and type(float_model.fc1) is nn.Linear
    assert isinstance(qat.fc1.weight_fake_quant, Q.FusedMovingAvgObsFakeQuantize)
    assert qat.fc1.weight_fake_quant.qscheme is fw.per_channel_symmetric
    for name in ("quant", "fc1", "fc2"):
        assert isinstance(getattr(qat, name).activation_post_process, Q.FakeQuantizeBase)
    assert not hasattr(qat.relu, "activation_post_process")   # not in PyTorch's list
    assert not hasattr(qat.dequant, "activation_post_process")
    x = fw.randn(4, 8)
    out = qat(x)  # the output passes through fc2's fake quant: on its grid
    fq = qat.fc2.activation_post_process
    np.testing.assert_allclose(out.detach().numpy(), fw.fake_quantize_per_tensor_affine(
        out.detach(), fq.scale, fq.zero_point, fq.quant_min, fq.quant_max).numpy())
    assert "fc1.weight_fake_quant.activation_post_process.min_val" in qat.state_dict()


def test_qconfig_propagation_and_opt_out():
    m = MLP()
    m.qconfig = Q.get_default_qat_qconfig("qnnpack", version=0)
    m.fc2.qconfig = None
    qat = Q.prepare_qat(m)
    assert type(qat.fc1) is nn.qat.Linear and type(qat.fc2) is nn.Linear
    assert not hasattr(qat.fc2, "activation_post_process")
    assert isinstance(qat.fc1.weight_fake_quant, Q.FakeQuantize)
    with pytest.raises(AssertionError, match="training mode"):
        Q.prepare_qat(m.eval())


def test_qat_linear_and_conv_from_float_share_parameters():
    qc = Q.get_default_qat_qconfig("x86")
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    conv.qconfig = qc
    qconv = nn.qat.Conv2d.from_float(conv)
    assert qconv.weight is conv.weight and qconv.bias is None and qconv.padding == (1, 1)
    x = fw.randn(1, 2, 5, 5)
    w = qconv.weight_fake_quant(conv.weight)
    np.testing.assert_allclose(qconv(x).detach().numpy(),
                               nn.functional.conv2d(x, w, None, 1, 1).detach().numpy(),
                               atol=1e-6)
    assert type(qconv.to_float()) is nn.Conv2d
    with pytest.raises(fw.ArgumentError, match="qconfig"):
        nn.qat.Linear.from_float(nn.Linear(2, 2))


@pytest.mark.parametrize("make,shape", [(MLP, (32, 8)), (cnn, (16, 1, 7, 7))])
def test_qat_trains_and_compiled_steps_equal_eager(make, shape):
    x, y = data(shape)
    eager = qat_model(make)
    losses, _ = train(eager, x, y, 8)
    assert losses[-1] < losses[0] - 0.05, losses
    compiled = qat_model(make)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a graph break would warn
        closses, fn = train(compiled, x, y, 8, compiled=True)
    assert fn.stats()["captures"] == 1 and fn.stats()["eager_calls"] == 0
    np.testing.assert_allclose(closses, losses, rtol=1e-6)
    want = eager.state_dict()
    for k, v in compiled.state_dict().items():
        np.testing.assert_allclose(v.numpy().astype(np.float64),
                                   want[k].numpy().astype(np.float64), rtol=1e-5,
                                   atol=1e-6, err_msg=k)


def test_toggling_observers_needs_no_recompile():
    x, y = data()
    model = qat_model(version=0)
    _, fn = train(model, x, y, 2, compiled=True)
    model.apply(Q.disable_observer)
    scale = model.fc1.activation_post_process.scale.numpy().copy()
    fn(x, y)
    np.testing.assert_array_equal(model.fc1.activation_post_process.scale.numpy(), scale)
    assert fn.stats()["captures"] == 1


def test_qat_state_dict_loads_into_a_freshly_prepared_model():
    x, y = data()
    trained = qat_model()
    train(trained, x, y, 2)
    fresh = qat_model(seed=5)       # empty per-channel statistics, other weights
    fresh.load_state_dict(trained.state_dict())
    np.testing.assert_array_equal(fresh.fc1.weight_fake_quant.scale.numpy(),
                                  trained.fc1.weight_fake_quant.scale.numpy())
    with fw.no_grad():
        np.testing.assert_array_equal(fresh.eval()(x).numpy(), trained.eval()(x).numpy())


def test_convert_gives_reference_modules_with_int8_weights():
    x, y = data()
    qat = qat_model()
    train(qat, x, y, 3)
    qat.eval()
    int8 = Q.convert(qat)
    assert isinstance(int8.quant, nnqr.QuantizeDequantize)
    assert isinstance(int8.fc1, nnqr.Linear) and isinstance(int8.dequant, nnqr.DeQuantize)
    assert int8.fc1.qweight.dtype is fw.int8 and int8.fc1.weight_scale.shape == (16,)
    assert "qconfig" not in vars(int8.fc1)
    # the weight: a fresh per-channel observer of the trained weight, quantized
    w = qat.fc1.weight.detach().numpy()
    absmax = np.maximum(np.abs(w).max(1), 0).astype(np.float32)
    scale = np.maximum(absmax / np.float32(127.5), np.finfo(np.float32).eps)
    np.testing.assert_array_equal(int8.fc1.weight_scale.numpy(), scale)
    np.testing.assert_array_equal(int8.fc1.qweight.numpy(),
                                  np.clip(np.rint(w * (1 / scale)[:, None]), -128, 127))
    np.testing.assert_array_equal(int8.fc1.weight.numpy(),
                                  int8.fc1.qweight.numpy() * scale[:, None])
    # forward: quantize-dequantize the input, float linear, quantize-dequantize the output
    q = int8.quant
    h = fw.fake_quantize_per_tensor_affine(x, q.scale, q.zero_point, 0, 127)
    h = nn.functional.linear(h, int8.fc1.weight, int8.fc1.bias)
    a = int8.fc1.activation_post_process
    h = fw.fake_quantize_per_tensor_affine(h, a.scale, a.zero_point, 0, 127)
    with fw.no_grad():
        np.testing.assert_array_equal(int8.fc1(int8.quant(x)).numpy(), h.detach().numpy())
        # close to the QAT model (same grids; weights re-observed)
        assert np.abs(int8(x).numpy() - qat(x).numpy()).max() < 0.1


def test_post_training_static_quantization():
    fw.manual_seed(0)
    model = MLP().eval()
    model.qconfig = Q.default_qconfig

    def calibrate(m, batches):
        for b in batches:
            m(b)
    batches = [fw.randn(16, 8) for _ in range(3)]
    int8 = Q.quantize(model, calibrate, [batches])
    prepared = Q.prepare(model)
    assert isinstance(prepared.fc1.activation_post_process, Q.MinMaxObserver)
    calibrate(prepared, batches)
    obs = prepared.fc1.activation_post_process
    np.testing.assert_array_equal(int8.fc1.activation_post_process.scale.numpy(),
                                  obs.calculate_qparams()[0].numpy().reshape(()))
    assert int8.fc1.weight_qscheme is fw.per_tensor_symmetric
    x = fw.randn(5, 8)
    with fw.no_grad():
        assert np.abs(int8(x).numpy() - model(x).numpy()).max() < 0.05


def test_reference_module_state_dict_round_trip():
    qat = qat_model(cnn)
    qat(fw.randn(2, 1, 7, 7))
    int8 = Q.convert(qat.eval())
    ref = int8[1]
    qp = {"qscheme": ref.weight_qscheme, "dtype": ref.weight_dtype, "axis": 0,
          "scale": fw.ones(4), "zero_point": fw.zeros(4, dtype=fw.int64)}
    fresh = nnqr.Conv2d(1, 4, 3, padding=1, weight_qparams=qp)
    fresh.load_state_dict({k: v for k, v in ref.state_dict().items()
                           if not k.startswith("activation_post_process")})
    x = fw.randn(1, 1, 5, 5)
    np.testing.assert_array_equal(fresh(x).detach().numpy(), ref.forward(x).detach().numpy())


# ---------------------------------------------------------------------------------------
# fusion
def convbn_net():
    fw.manual_seed(0)
    m = nn.Sequential(Q.QuantStub(), nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                      nn.Flatten(), nn.Linear(4 * 3 * 3, 6), nn.ReLU(), nn.Linear(6, 3),
                      Q.DeQuantStub())
    bn = m[2]
    bn.running_mean.copy_(fw.randn(4) * 0.1)
    bn.running_var.copy_(fw.rand(4) + 0.5)
    return m


def test_fuse_modules_folds_batchnorm_and_keeps_relu_with_its_layer():
    m = convbn_net().eval()
    fused = Q.fuse_modules(m, [["1", "2", "3"], ["5", "6"]])
    assert type(fused[1]) is nni.ConvReLU2d and type(fused[5]) is nni.LinearReLU
    assert all(type(fused[i]) is nn.Identity for i in (2, 3, 6))
    assert type(m[1]) is nn.Conv2d            # not in place by default
    x = fw.randn(2, 2, 5, 5)
    with fw.no_grad():
        np.testing.assert_allclose(fused(x).numpy(), m(x).numpy(), atol=1e-5)
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        Q.fuse_modules(convbn_net().train(), ["1", "2"])
    with pytest.raises(NotImplementedError, match="QAT fusion of Conv2d"):
        Q.fuse_modules_qat(convbn_net().train(), ["1", "2"])
    with pytest.raises(NotImplementedError, match="did not find fuser method"):
        Q.fuse_modules(m, ["3", "4"])


def test_fused_modules_are_observed_after_the_relu_and_converted_whole():
    m = Q.fuse_modules(convbn_net().eval(), [["1", "2", "3"], ["5", "6"]]).train()
    m.qconfig = Q.get_default_qat_qconfig("x86")
    qat = Q.prepare_qat(m)
    assert type(qat[1]) is nniqat.ConvReLU2d and type(qat[5]) is nniqat.LinearReLU
    assert not hasattr(qat[6], "activation_post_process")
    x, y = data((8, 2, 5, 5))
    losses, _ = train(qat, x, y, 4)
    assert losses[-1] < losses[0]
    fq = qat[1].activation_post_process
    assert float(fq.activation_post_process.min_val) >= 0   # observed after the ReLU
    int8 = Q.convert(qat.eval())
    assert type(int8[1]) is nnqr.ConvReLU2d and type(int8[5]) is nnqr.LinearReLU
    with fw.no_grad():
        assert float(int8[5](int8[4](int8[1](int8[0](x)))).min()) >= 0
