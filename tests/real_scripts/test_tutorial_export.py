"""pytorch/tutorials ``intermediate_source/torch_export_tutorial.py`` on fw.

Changes beyond ``torch`` -> ``fw``: the free functions are wrapped in modules (modern
``torch.export.export`` takes only an ``nn.Module``, as fw does) and the program is run
through ``ep.module()`` (a modern ExportedProgram is not callable). Custom ops via
``torch.library``, ``torch.ops.aten`` schemas, ``torch._logging`` and ``unflatten`` are not
ported (fw has no equivalents). GAP: ``if x.shape[0] <= 16`` with ``Dim(max=16)`` is not
decided from the Dim's range (ConstraintViolationError); the port keeps that dim static.
"""

import inspect

import numpy as np
import pytest

import framework as torch
from framework.errors import GraphBreak, ShapeError
from framework.export import ConstraintViolationError, Dim, export


def as_module(fn):
    """A module whose forward is ``fn`` (with ``fn``'s argument names)."""
    def forward(self, *args):
        return fn(*args)
    P = inspect.Parameter
    forward.__signature__ = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD)] + list(inspect.signature(fn).parameters.values()))
    return type(fn.__name__, (torch.nn.Module,), {"forward": forward})()


class MyModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(100, 10)

    def forward(self, x, y):
        return torch.nn.functional.relu(self.lin(x + y), inplace=True)


def test_basic_export_graph_signature_and_graph_module():
    torch.manual_seed(0)
    mod = MyModule()
    exported_mod = export(mod, (torch.randn(8, 100), torch.randn(8, 100)))
    x, y = torch.randn(8, 100), torch.randn(8, 100)
    ref = mod(x, y).detach().numpy()
    np.testing.assert_allclose(exported_mod.module()(x, y).detach().numpy(), ref, rtol=1e-6)
    assert "relu" in str(exported_mod)
    kinds = [s.kind.name for s in exported_mod.graph_signature.input_specs]
    assert kinds == ["PARAMETER", "PARAMETER", "USER_INPUT", "USER_INPUT"]
    gm = exported_mod.graph_module
    assert "relu" in gm.print_readable(print_output=False)
    (out,) = gm(mod.lin.weight, mod.lin.bias, x, y)  # lifted params first, as PyTorch
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-6)
    with pytest.raises(TypeError):
        exported_mod(x, y)


def bad1(x):
    if x.sum() > 0:
        return torch.sin(x)
    return torch.cos(x)


def bad4(x):
    try:
        x = x + 1
        raise RuntimeError("bad")
    except RuntimeError:
        x = x + 2
    return x


def test_graph_breaks_and_cond():
    with pytest.raises(GraphBreak, match="bool"):
        export(as_module(bad1), (torch.randn(3, 3),))
    ep4 = export(as_module(bad4), (torch.randn(3, 3),))  # non-strict export runs Python
    np.testing.assert_allclose(ep4.module()(torch.ones(3, 3)).numpy(), np.full((3, 3), 4.0))

    def bad1_fixed(x):
        def true_fn(x):
            return torch.sin(x)

        def false_fn(x):
            return torch.cos(x)
        return torch.cond(x.sum() > 0, true_fn, false_fn, [x])
    ep = export(as_module(bad1_fixed), (torch.randn(3, 3),))
    np.testing.assert_allclose(ep.module()(torch.ones(3, 3)).numpy(), np.sin(np.ones((3, 3))),
                               rtol=1e-6)
    np.testing.assert_allclose(ep.module()(-torch.ones(3, 3)).numpy(),
                               np.cos(-np.ones((3, 3))), rtol=1e-6)


def test_static_shapes_then_dims_and_ranges():
    exported_mod2 = export(MyModule(), (torch.randn(8, 100), torch.randn(8, 100)))
    with pytest.raises(ShapeError, match="size 8"):
        exported_mod2.module()(torch.randn(10, 100), torch.randn(10, 100))

    def dynamic_shapes_example1(x):
        x = x[:, 2:]
        return torch.relu(x)
    inp1 = torch.randn(10, 10, 2)
    inp1_dim0 = Dim("inp1_dim0")
    inp1_dim1 = Dim("inp1_dim1", min=4, max=18)
    ep = export(as_module(dynamic_shapes_example1), (inp1,),
                dynamic_shapes={"x": {0: inp1_dim0, 1: inp1_dim1}})
    x = torch.randn(5, 5, 2)
    np.testing.assert_allclose(ep.module()(x).numpy(), np.maximum(x.numpy()[:, 2:], 0))
    for shape, msg in (((8, 1, 2), "outside the range"), ((8, 20, 2), "outside the range"),
                       ((8, 8, 3), "size 2 at dim 2")):
        with pytest.raises(ShapeError, match=msg):
            ep.module()(torch.randn(*shape))
    with pytest.raises(ConstraintViolationError, match="inp1_dim1_bad"):
        export(as_module(dynamic_shapes_example1), (inp1,), dynamic_shapes={
            "x": {0: inp1_dim0, 1: Dim("inp1_dim1_bad", min=11, max=18)}})

    def dynamic_shapes_example2(x, y):
        return x @ y
    inner_dim = Dim("inner_dim")
    ep2 = export(as_module(dynamic_shapes_example2), (torch.randn(4, 8), torch.randn(8, 2)),
                 dynamic_shapes={"x": {0: Dim("inp2_dim0"), 1: inner_dim},
                                 "y": {0: inner_dim, 1: Dim("inp3_dim1")}})
    a, b = torch.randn(2, 16), torch.randn(16, 4)
    np.testing.assert_allclose(ep2.module()(a, b).numpy(), a.numpy() @ b.numpy(), rtol=1e-5)
    with pytest.raises(ShapeError, match="inner_dim"):
        ep2.module()(torch.randn(4, 8), torch.randn(4, 2))


def dynamic_shapes_example3(x, y):
    if x.shape[0] <= 16:
        return x @ y[:, :16]
    return y


def test_constraint_violation_and_suggested_fixes():
    inp4, inp5 = torch.randn(8, 16), torch.randn(16, 32)
    m = as_module(dynamic_shapes_example3)
    with pytest.raises(ConstraintViolationError, match="inp4_dim0"):
        export(m, (inp4, inp5), dynamic_shapes={
            "x": {i: Dim(f"inp4_dim{i}") for i in range(inp4.dim())},
            "y": {i: Dim(f"inp5_dim{i}") for i in range(inp5.dim())}})
    inp4_dim1 = Dim("shared_dim")
    # GAP: PyTorch accepts Dim('inp4_dim0', max=16) here (the range decides the `if`)
    fixed = {"x": {1: inp4_dim1}, "y": {0: inp4_dim1, 1: Dim("inp5_dim1", min=17)}}
    ep = export(m, (inp4, inp5), dynamic_shapes=fixed)
    a, b = torch.randn(8, 32), torch.randn(32, 64)
    np.testing.assert_allclose(ep.module()(a, b).numpy(), a.numpy() @ b.numpy()[:, :16],
                               rtol=1e-5, atol=1e-5)
    assert ep.range_constraints[[s for s in ep.range_constraints if str(s) == "inp5_dim1"][0]
                                ].lower == 17


class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 4)

    def forward(self, x):
        return self.linear(x)


def test_decompositions_and_save_load(tmp_path):
    ep = export(M(), (torch.randn(2, 3),))
    core_ir_ep = ep.run_decompositions()
    x = torch.randn(2, 3)
    np.testing.assert_allclose(core_ir_ep.module()(x).detach().numpy(),
                               ep.module()(x).detach().numpy(), rtol=1e-6)
    torch.export.save(ep, tmp_path / "m.pt2")
    ep2 = torch.export.load(tmp_path / "m.pt2")
    np.testing.assert_allclose(ep2.module()(x).detach().numpy(),
                               ep.module()(x).detach().numpy(), rtol=1e-6)
    onnx_program = torch.onnx.export(ep, (x,), dynamo=True)
    (y,) = onnx_program(x)
    np.testing.assert_allclose(y.numpy(), ep.module()(x).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    assert onnx_program.exported_program is ep
