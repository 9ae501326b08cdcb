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


def test_command_line_reports_a_bad_dtype_as_an_error_line(tmp_path):
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    src = tmp_path / "models.py"
    src.write_text("from framework import nn\n\ndef make():\n    return nn.Linear(6, 4)\n")
    r = subprocess.run([sys.executable, "-m", "framework.onnx", f"{src}:make", "--shape",
                        "1,6", "--dtype", "float99", "-o", str(tmp_path / "m.onnx")],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root))
    assert r.returncode == 1
    assert r.stderr.startswith("error: unknown dtype name 'float99'"), r.stderr
