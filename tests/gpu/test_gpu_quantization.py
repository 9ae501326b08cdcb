"""Quantization on device "cuda" (the ops run as their decompositions into primitives):
fake quantization values, NaN handling and the straight-through gradient match the CPU
kernels, and a QAT training step (eager and compiled) plus convert match the CPU run."""

import warnings

import numpy as np
import pytest

import framework as fw
from tests.test_quantization_workflow import data, qat_model, train

pytestmark = pytest.mark.filterwarnings("ignore:Please use quant_min")


def test_fake_quantize_and_its_gradient_match_the_cpu():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(scale=3, size=20), [np.nan, np.inf, -np.inf, 0.375]])
    x = x.astype(np.float32)
    s, z = np.float32([0.25, 0.1]), np.int32([3, -2])
    outs = []
    for dev in ("cpu", "cuda"):
        t = fw.tensor(x, device=dev, requires_grad=True)
        y = fw.fake_quantize_per_tensor_affine(t, 0.25, 3, -8, 7)
        w = t[:20].reshape(2, 10)
        yc = fw.fake_quantize_per_channel_affine(w, fw.tensor(s, device=dev),
                                                 fw.tensor(z, device=dev), 0, -16, 15)
        (y.nan_to_num().sum() + yc.sum()).backward()
        assert y.device.type == dev
        outs.append((y.detach().cpu().numpy(), yc.detach().cpu().numpy(),
                     t.grad.cpu().numpy()))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("compiled", [False, True])
def test_qat_step_and_convert_match_the_cpu(compiled):
    results = []
    for dev in ("cpu", "cuda"):
        model = qat_model().to(dev)
        x, y = data()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            losses, _ = train(model, x.to(dev), y.to(dev), 2, compiled=compiled and dev ==
                              "cuda")
        int8 = fw.ao.quantization.convert(model.eval())
        with fw.no_grad():
            out = int8(x.to(dev))
        assert out.device.type == dev and int8.fc1.qweight.device.type == dev
        results.append((losses, out.cpu().numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-5)
