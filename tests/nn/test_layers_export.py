"""Convolution, pooling, recurrent and attention layers export to ONNX (a dynamic batch
dim) and onnxruntime agrees with eager at a batch size other than the traced one."""

import numpy as np
import pytest

import framework as fw
from framework import nn

ort = pytest.importorskip("onnxruntime")


def _check(model, x, other_batch):
    proto = fw.onnx.export(model, x, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    sess = ort.InferenceSession(proto.SerializeToString())
    shape = (other_batch,) + tuple(x.shape[1:])
    x2 = fw.randn(*shape)
    got = sess.run(None, {"x": x2.numpy()})[0]
    with fw.no_grad():
        out = model(x2)
    want = (out[0] if isinstance(out, tuple) else out).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_cnn_exports():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding="same", padding_mode="reflect"), nn.ReLU(),
        nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
        nn.Conv2d(4, 4, 3, padding=1, groups=4),
        nn.AvgPool2d(2, ceil_mode=True, padding=1, count_include_pad=False),
        nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1),
        nn.Upsample(scale_factor=2, mode="bilinear"), nn.AdaptiveAvgPool2d((3, 2)),
        nn.Flatten())
    _check(model.eval(), fw.randn(2, 3, 9, 8), 3)


def test_recurrent_and_attention_export():
    _check(nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True).eval(),
           fw.randn(2, 5, 3), 4)
    _check(nn.LSTM(3, 4, batch_first=True).eval(), fw.randn(2, 5, 3), 1)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    _check(nn.TransformerEncoder(layer, 1).eval(), fw.randn(2, 5, 8), 3)


def test_recurrent_layers_become_native_onnx_ops():
    for cls, op_type in ((nn.LSTM, "LSTM"), (nn.GRU, "GRU"), (nn.RNN, "RNN")):
        model = cls(3, 4, num_layers=2, bidirectional=True).eval()
        proto = fw.onnx.export(model, fw.randn(5, 2, 3), verify=True)
        ops = [n.op_type for n in proto.graph.node]
        assert ops.count(op_type) == 4, ops  # one node per layer and direction
