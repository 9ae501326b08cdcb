"""pytorch/tutorials ``beginner_source/onnx/``: ``export_simple_model_to_onnx_tutorial.py``
and ``export_control_flow_model_to_onnx_tutorial.py`` on fw (``intro_onnx.py`` is prose;
``onnx_registry_tutorial.py`` extends onnxscript's registry, which fw does not use).

Changes beyond ``torch`` -> ``fw``: the model with a Python ``if x.sum():`` is refused by
``fw.onnx.export(..., dynamo=True)`` (GraphBreak) where PyTorch falls back to JIT tracing
and bakes one branch in; ``onnx_program.model`` is an ``onnx.ModelProto`` (PyTorch: an
``onnx_ir.Model``).
"""

import numpy as np
import onnx
import onnxruntime
import pytest

import framework as torch
import framework.nn as nn
import framework.nn.functional as F
from framework.errors import GraphBreak
from framework.onnx import ONNXProgram


class ImageClassifierModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def test_export_simple_model_save_and_run_in_onnxruntime(tmp_path):
    torch.manual_seed(0)
    torch_model = ImageClassifierModel()
    example_inputs = (torch.randn(1, 1, 32, 32),)
    onnx_program = torch.onnx.export(torch_model, example_inputs, dynamo=True)
    assert isinstance(onnx_program, ONNXProgram)
    onnx_program.optimize()
    path = str(tmp_path / "image_classifier_model.onnx")
    onnx_program.save(path)
    onnx_model = onnx.load(path)
    onnx.checker.check_model(onnx_model)

    onnx_inputs = [tensor.numpy(force=True) for tensor in example_inputs]
    ort_session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    onnxruntime_input = {input_arg.name: input_value for input_arg, input_value in
                         zip(ort_session.get_inputs(), onnx_inputs)}
    onnxruntime_outputs = ort_session.run(None, onnxruntime_input)[0]
    torch_outputs = torch_model(*example_inputs)
    assert len(torch_outputs) == len(onnxruntime_outputs)
    for torch_output, onnxruntime_output in zip(torch_outputs, onnxruntime_outputs):
        torch.testing.assert_close(torch_output, torch.tensor(onnxruntime_output))
    (direct,) = onnx_program(*example_inputs)  # ONNXProgram.__call__ runs onnxruntime
    np.testing.assert_allclose(direct.numpy(), torch_outputs.detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    assert onnx_program.model_proto is onnx_program.model
    assert onnx_program.model_proto.graph.input[0].name == "x"


def test_onnx_program_save_options_and_optimize_drops_dead_nodes(tmp_path):
    model = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    prog = torch.onnx.export(model, (x,), dynamo=True)
    prog.save(tmp_path / "noweights.onnx", include_initializers=False)
    m = onnx.load(str(tmp_path / "noweights.onnx"))
    assert not m.graph.initializer and len(m.graph.input) == 3
    dead = onnx.helper.make_node("Relu", ["x"], ["unused"])
    prog.model_proto.graph.node.append(dead)
    prog.optimize()
    assert all(n.output[0] != "unused" for n in prog.model_proto.graph.node)
    np.testing.assert_allclose(prog(x)[0].numpy(), model(x).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    assert torch.onnx.export(model, (x,)).__class__ is onnx.ModelProto  # dynamo=False


class ForwardWithControlFlowTest(torch.nn.Module):
    def forward(self, x):
        if x.sum():
            return x * 2
        return -x


class ModelWithControlFlowTest(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(3, 2),
            torch.nn.Linear(2, 1),
            ForwardWithControlFlowTest(),
        )

    def forward(self, x):
        out = self.mlp(x)
        return out


def test_export_control_flow_model_with_cond():
    torch.manual_seed(0)
    model = ModelWithControlFlowTest()
    x = torch.randn(3)
    model(x)
    with pytest.raises(GraphBreak, match="bool"):
        torch.export.export(model, (x,), strict=False)
    with pytest.raises(GraphBreak, match="bool"):  # PyTorch: traces one branch silently
        torch.onnx.export(model, (x,), dynamo=True)

    def new_forward(x):
        def identity2(x):
            return x * 2

        def neg(x):
            return -x

        return torch.cond(x.sum() > 0, identity2, neg, (x,))

    for name, mod in model.named_modules():
        if isinstance(mod, ForwardWithControlFlowTest):
            mod.forward = new_forward
    assert "cond" in str(torch.export.export(model, (x,), strict=False))
    onnx_program = torch.onnx.export(model, (x,), dynamo=True)
    assert any(n.op_type == "If" for n in onnx_program.model.graph.node)
    onnx_program.optimize()
    branch_signs = set()
    for scale in (1.0, -1.0, 10.0, -10.0):
        xx = x * scale
        with torch.no_grad():
            ref = model(xx)
        (got,) = onnx_program(xx)
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
        branch_signs.add(bool(model.mlp[1](model.mlp[0](xx)).sum() > 0))
    assert branch_signs == {True, False}  # both branches were checked
