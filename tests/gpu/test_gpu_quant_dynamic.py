"""Dynamic quantization on device "cuda" (its ops run as their decompositions into
primitives: int32 matmul, float64 qparams): a dynamically quantized model, eager and
compiled, gives the CPU's results bit for bit in both activation arithmetics, per-channel
and float16 weights included, and its state moves between devices."""

import numpy as np
import pytest

import framework as fw
import framework.ao.quantization as Q
from framework import nn
from framework.ao.quantization import quantized_decomposed as qd
from tests.test_quantization_dynamic import _mlp, _set_reduce_range, _x


@pytest.mark.parametrize("reduce_range", [True, False])
def test_dynamic_quantize_linear_matches_the_cpu(reduce_range):
    for x in (_x(5, 7, scale=3.0), _x(9, scale=1e-6), fw.zeros(4), _x(3).abs() + 1.0):
        want = qd.dynamic_quantize_linear(x, reduce_range)
        got = qd.dynamic_quantize_linear(x.to("cuda"), reduce_range)
        for g, w in zip(got, want):
            assert g.device.type == "cuda" and g.dtype is w.dtype
            np.testing.assert_array_equal(g.cpu().numpy(), w.numpy())


@pytest.mark.parametrize("reduce_range", [True, False])
@pytest.mark.parametrize("compiled", [False, True])
def test_quantized_model_on_cuda_matches_the_cpu(reduce_range, compiled):
    q = Q.quantize_dynamic(_mlp(), {"fc1": Q.per_channel_dynamic_qconfig,
                                    "fc2": Q.default_dynamic_qconfig})
    _set_reduce_range(q, reduce_range)
    x = _x(2, 3, 16, scale=2.0)
    want = q(x).numpy()
    qc = q.to("cuda")
    assert qc.fc1.get_quantized_weight().device.type == "cuda"
    assert qc.fc1.get_quantized_weight().dtype is fw.int8
    run = fw.compile(qc) if compiled else qc
    got = run(x.to("cuda"))
    assert got.device.type == "cuda"
    np.testing.assert_array_equal(got.cpu().numpy(), want)


def test_float16_weights_and_state_dict_across_devices():
    q = Q.quantize_dynamic(_mlp(), {nn.Linear: Q.float16_dynamic_qconfig})
    x = _x(4, 16)
    want = q(x).numpy()
    qc = Q.quantize_dynamic(_mlp(seed=5), dtype=fw.float16).to("cuda")
    qc.load_state_dict(q.state_dict())
    assert qc.fc1.get_quantized_weight().dtype is fw.float16
    np.testing.assert_allclose(qc(x.to("cuda")).cpu().numpy(), want, rtol=1e-5, atol=1e-6)
    back = Q.quantize_dynamic(_mlp(seed=7))
    back.load_state_dict({k: v.cpu() if isinstance(v, fw.Tensor) else v
                          for k, v in qc.state_dict().items()})
    np.testing.assert_allclose(back(x).numpy(), want, rtol=1e-6, atol=1e-7)


def test_lstm_on_cuda_matches_the_cpu():
    fw.manual_seed(0)
    q = Q.quantize_dynamic(nn.Sequential(nn.LSTM(4, 5, batch_first=True)).eval())
    x = _x(2, 3, 4)
    out, (h, c) = q(x)
    gout, (gh, gc) = q.to("cuda")(x.to("cuda"))
    assert gout.device.type == "cuda"
    np.testing.assert_allclose(gout.cpu().numpy(), out.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gc.cpu().numpy(), c.numpy(), rtol=1e-5, atol=1e-6)
