"""Regressions from acceptance testing of fw.onnx.export on realistic code."""

import framework as fw
from framework import nn


def test_function_export_puts_the_modules_it_calls_in_eval_mode():
    fw.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)  # dropout 0.1
    mask = fw.zeros(2, 5, dtype=fw.bool)
    mask[1, 3:] = True
    proto = fw.onnx.export(lambda x, m: layer(x, src_key_padding_mask=m),
                           (fw.randn(2, 5, 16), mask), verify=True)
    assert not any(n.op_type.startswith("Random") or n.op_type == "Dropout"
                   for n in proto.graph.node)
    assert layer.training and layer.dropout.training   # modes restored afterwards
