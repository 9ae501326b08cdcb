"""fw.export: capture, signature, dynamic shapes and their checks, module(), decompositions,
ONNX export of an ExportedProgram, fw.compile of its module, and bad inputs."""

import copy
import os

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.demo.model import GPT, GPTConfig
from framework.errors import FwTypeError
from framework.export import (ConstraintViolationError, Dim, InputKind, OutputKind, dims,
                              export)


def _mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3))


def _cnn():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 3))


def _np(t):
    return t.detach().numpy()


def test_mlp_module_matches_eager_outputs_and_grads():
    model = _mlp()
    ref = copy.deepcopy(model)
    x = fw.randn(4, 8)
    ep = export(model, (x,), dynamic_shapes={"input": {0: Dim("batch", min=1, max=1024)}})
    m = ep.module()
    x2 = fw.randn(6, 8)
    out = m(x2)
    expected = ref(x2)
    np.testing.assert_array_equal(_np(out), _np(expected))
    out.square().sum().backward()
    expected.square().sum().backward()
    got = dict(m.named_parameters())
    assert set(got) == set(dict(ref.named_parameters()))
    for name, p in ref.named_parameters():
        assert got[name].requires_grad
        np.testing.assert_allclose(got[name].grad.numpy(), p.grad.numpy(), rtol=1e-6,
                                   atol=1e-7)


def test_print_shows_graph_signature_and_ranges():
    model = _mlp()
    ep = export(model, (fw.randn(4, 8),),
                dynamic_shapes={"input": {0: Dim("batch", min=1, max=1024)}})
    text = str(ep)
    assert text.startswith("ExportedProgram:")
    assert "def graph(input):" in text and "# input: f32[batch, 8]" in text
    assert "PARAMETER target='0.weight'" in text and "input: USER_INPUT" in text
    assert "USER_OUTPUT" in text
    assert "Range constraints: {batch: VR[1, 1024]}" in text
    sig = ep.graph_signature
    assert sig.parameters == list(model.state_dict())
    assert sig.user_inputs == ["input"] and sig.buffers == []
    assert [s.kind for s in sig.output_specs] == [OutputKind.USER_OUTPUT]
    assert list(ep.state_dict) == list(model.state_dict())
    assert ep.state_dict["0.weight"] is model[0].weight  # shared, as in PyTorch
    (batch,) = ep.range_constraints
    assert batch.name == "batch" and ep.range_constraints[batch] == (1, 1024)
    args, kwargs = ep.example_inputs
    assert args[0].shape == (4, 8) and kwargs == {}


def test_cnn_batchnorm_eval_has_no_mutations():
    model = _cnn().eval()
    x = fw.randn(2, 3, 5, 5)
    ep = export(model, (x,))
    kinds = {s.target: s.kind for s in ep.graph_signature.input_specs}
    assert kinds["1.running_mean"] is InputKind.BUFFER
    assert kinds["1.weight"] is InputKind.PARAMETER
    assert ep.graph_signature.buffers_to_mutate == {}
    with fw.no_grad():
        np.testing.assert_array_equal(_np(ep.module()(x)), _np(model(x)))


def test_cnn_batchnorm_train_mutates_buffers_like_eager():
    model = _cnn().train()
    ref = copy.deepcopy(model)
    before = model[1].running_mean.numpy().copy()
    x = fw.randn(4, 3, 5, 5)
    ep = export(model, (x,), dynamic_shapes={"input": {0: Dim("batch", min=2, max=64)}})
    # exporting runs on data-less stand-ins: the model's buffers are untouched
    np.testing.assert_array_equal(model[1].running_mean.numpy(), before)
    assert int(model[1].num_batches_tracked.item()) == 0
    assert model.training and model[1].training
    muts = ep.graph_signature.buffers_to_mutate
    assert sorted(muts.values()) == ["1.num_batches_tracked", "1.running_mean",
                                     "1.running_var"]
    out_kinds = [s.kind for s in ep.graph_signature.output_specs]
    assert out_kinds == [OutputKind.BUFFER_MUTATION] * 3 + [OutputKind.USER_OUTPUT]
    m = ep.module()
    x2 = fw.randn(6, 3, 5, 5)
    np.testing.assert_allclose(_np(m(x2)), _np(ref(x2)), rtol=1e-5, atol=1e-6)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(m, "1").get_buffer(name).numpy(),
                                   getattr(ref[1], name).numpy(), rtol=1e-6, atol=1e-7)
    assert int(m.get_buffer("1.num_batches_tracked").item()) == 1


def test_gpt_block_with_dynamic_batch_and_sequence():
    gpt = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    ids = fw.randint(0, 20, (2, 8))
    batch, seq = Dim("batch", min=1, max=32), Dim("seq", min=2, max=16)
    ep = export(gpt, (ids,), dynamic_shapes={"idx": {0: batch, 1: seq}})
    assert {s.name: tuple(r) for s, r in ep.range_constraints.items()} == \
        {"batch": (1, 32), "seq": (2, 16)}
    assert "f32[batch, seq, 20]" in str(ep.graph)
    m = ep.module()
    for shape in ((1, 5), (3, 11), (2, 16)):
        x = fw.randint(0, 20, shape)
        with fw.no_grad():
            np.testing.assert_allclose(_np(m(x)), _np(gpt(x)), rtol=1e-5, atol=1e-6)
    with pytest.raises(fw.ShapeError, match="seq"):
        m(fw.randint(0, 20, (2, 17)))


# ---------------------------------------------------------------------------------------
# dynamic shapes
class _ReshapeToConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, x):
        return self.lin(x).reshape(4, 4)


class _Add(nn.Module):
    def forward(self, x, y):
        return x + y


def test_example_outside_the_dim_range_raises():
    with pytest.raises(ConstraintViolationError, match=r"size 4 at dim 0.*Dim\('b', max=3\)"):
        export(nn.Linear(8, 4), (fw.randn(4, 8),), dynamic_shapes={"input": {0: Dim("b", max=3)}})
    with pytest.raises(ConstraintViolationError, match="equal sizes"):
        d = Dim("n")
        export(_Add(), (fw.randn(4, 8), fw.randn(5, 8)), dynamic_shapes={"x": {0: d}, "y": {0: d}})


def test_specialized_dim_raises_naming_the_dim():
    x = fw.randn(4, 8)
    with pytest.raises(ConstraintViolationError, match=r"Dim\('b'\) \(x dim 0\).*specializes"):
        export(_ReshapeToConstant(), (x,), dynamic_shapes={"x": {0: Dim("b")}})
    with pytest.raises(ConstraintViolationError, match="dynamic dim 's0'"):
        export(_ReshapeToConstant(), (x,), dynamic_shapes={"x": [Dim.DYNAMIC, None]})
    assert issubclass(ConstraintViolationError, fw.ArgumentError)
    # Dim.AUTO lets the program decide: here it stays static
    ep = export(_ReshapeToConstant(), (x,), dynamic_shapes={"x": {0: Dim.AUTO}})
    assert ep.range_constraints == {} and ep.graph.inputs[0].shape == (4, 8)


def test_dims_the_program_ties_together_must_share_one_dim():
    x, y = fw.randn(4, 8), fw.randn(4, 8)
    with pytest.raises(ConstraintViolationError, match=r"Dim\('a'\).*Dim\('b'\).*equal"):
        export(_Add(), (x, y), dynamic_shapes={"x": {0: Dim("a")}, "y": {0: Dim("b")}})
    a = Dim("a", max=100)
    ep = export(_Add(), (x, y), dynamic_shapes=({0: a}, {0: a}))   # tuple form
    assert [s.name for s in ep.range_constraints] == ["a"]
    out = ep.module()(fw.ones(9, 8), fw.ones(9, 8))
    assert out.shape == (9, 8)
    with pytest.raises(fw.ShapeError, match="must be equal"):
        ep.module()(fw.ones(9, 8), fw.ones(7, 8))


def test_dynamic_shapes_forms_and_validation():
    lin = nn.Linear(8, 4)
    x = fw.randn(4, 8)
    b, = dims("b", min=2, max=10)
    for spec in ({"input": [b, None]}, [{0: b}], ({0: b},), {"input": (b, Dim.STATIC)}):
        ep = export(lin, (x,), dynamic_shapes=spec)
        assert ep.graph.inputs[0].shape[0].name == "b"
    with pytest.raises(fw.ArgumentError, match="not arguments of forward"):
        export(lin, (x,), dynamic_shapes={"x": {0: b}})
    with pytest.raises(fw.ArgumentError, match="2 dims"):
        export(lin, (x,), dynamic_shapes={"input": {2: b}})
    with pytest.raises(fw.ArgumentError, match="3 entries"):
        export(lin, (x,), dynamic_shapes={"input": [b, None, None]})
    with pytest.raises(fw.ArgumentError, match="inconsistent"):
        Dim("bad", min=5, max=3)
    with pytest.raises(fw.ArgumentError, match="identifier"):
        Dim("not a name")
    # a dynamic dim whose example size is 1 is traced at a general size
    ep = export(lin, (fw.randn(1, 8),), dynamic_shapes={"input": {0: Dim("n", min=1)}})
    assert ep.module()(fw.randn(5, 8)).shape == (5, 4)


def test_data_dependent_control_flow_raises_graph_break_with_location():
    class Branchy(nn.Module):
        def forward(self, x):
            if x.sum().item() > 0:
                return x * 2
            return x

    with pytest.raises(fw.GraphBreak) as info:
        export(Branchy(), (fw.ones(3),))
    assert "Tensor.item()" in str(info.value) and f"{__file__}:" in str(info.value)

    class ShapeBranch(nn.Module):
        def forward(self, x):
            return x * 2 if x.shape[0] > 3 else x

    with pytest.raises(ConstraintViolationError, match=r"Dim\('n'\)"):
        export(ShapeBranch(), (fw.ones(5, 2),), dynamic_shapes={"x": {0: Dim("n")}})


def test_export_takes_a_module_and_a_tuple():
    with pytest.raises(FwTypeError, match="nn.Module"):
        export(lambda t: t * 2, (fw.ones(2),))
    with pytest.raises(FwTypeError, match="tuple"):
        export(nn.ReLU(), fw.ones(2))
    with pytest.raises(NotImplementedError, match="preserve_module_call_signature"):
        export(nn.ReLU(), (fw.ones(2),), preserve_module_call_signature=("x",))
    with pytest.raises(FwTypeError, match="not callable"):
        export(nn.ReLU(), (fw.ones(2),))(fw.ones(2))


def test_module_rejects_bad_inputs():
    lin = nn.Linear(8, 4)
    m = export(lin, (fw.randn(4, 8),),
               dynamic_shapes={"input": {0: Dim("b", min=2, max=16)}}).module()
    assert m(fw.randn(16, 8)).shape == (16, 4)
    cases = [((fw.randn(4, 8), fw.randn(4, 8)), fw.ArgumentError, "1 positional"),
             ((fw.randn(4, 8, dtype=fw.float64),), fw.DTypeError, "float32"),
             ((fw.randn(4, 8, 1),), fw.ShapeError, "2 dims"),
             ((fw.randn(4, 9),), fw.ShapeError, "size 8 at dim 1"),
             ((fw.randn(17, 8),), fw.ShapeError, r"range of dim 'b' \(\[2, 16\]\)"),
             ((fw.randn(1, 8),), fw.ShapeError, "outside the range"),
             ((3.0,), FwTypeError, "must be a Tensor")]
    for args, err, msg in cases:
        with pytest.raises(err, match=msg):
            m(*args)

    class Scaled(nn.Module):
        def forward(self, x, k):
            return x * k

    sm = export(Scaled(), (fw.ones(2), 3)).module()
    assert sm(fw.ones(2), 3).tolist() == [3.0, 3.0]
    with pytest.raises(fw.ArgumentError, match="exported as the constant 3"):
        sm(fw.ones(2), 4)


def test_input_mutation_is_written_back():
    class AddOne(nn.Module):
        def forward(self, x):
            x.add_(1)
            return x * 2

    ep = export(AddOne(), (fw.zeros(3),))
    assert ep.graph_signature.user_inputs_to_mutate == {ep.graph_signature.output_specs[0]
                                                        .arg.name: "x"}
    t = fw.zeros(3)
    assert ep.module()(t).tolist() == [2.0, 2.0, 2.0]
    assert t.tolist() == [1.0, 1.0, 1.0]


def test_keyword_tensor_inputs_and_the_module_signature():
    import inspect

    class KW(nn.Module):
        def forward(self, x, *, y, scale=2.0):
            return x * y * scale

    n = Dim("n")
    ep = export(KW(), (fw.ones(3, 2),), {"y": fw.ones(3, 2), "scale": 3.0},
                dynamic_shapes={"x": {0: n}, "y": {0: n}})
    m = ep.module()
    assert str(inspect.signature(m.forward)) == "(x, *, y, scale)"
    assert m(fw.ones(5, 2), y=fw.full((5, 2), 2.0), scale=3.0).tolist() == [[6.0, 6.0]] * 5
    with pytest.raises(fw.ArgumentError, match="1 positional"):
        m(fw.ones(5, 2), fw.ones(5, 2))
    with pytest.raises(fw.ArgumentError, match="keyword"):
        m(fw.ones(5, 2), y=fw.ones(5, 2))


def test_lifted_constants_and_non_persistent_buffers():
    class WithConstants(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", fw.full((3,), 2.0), persistent=False)
            self.table = fw.arange(5.0)   # a plain tensor attribute

        def forward(self, x, idx):
            return x * self.scale + self.table[idx]

    model = WithConstants()
    ep = export(model, (fw.ones(3), fw.tensor([0, 2, 4])))
    assert set(ep.constants) == {"scale", "lifted_tensor_0"} and ep.state_dict == {}
    kinds = {s.target: (s.kind, s.persistent) for s in ep.graph_signature.input_specs}
    assert kinds["scale"] == (InputKind.BUFFER, False)
    assert kinds["lifted_tensor_0"] == (InputKind.CONSTANT_TENSOR, None)
    assert ep.module()(fw.ones(3), fw.tensor([1, 1, 3])).tolist() == [3.0, 3.0, 5.0]


# ---------------------------------------------------------------------------------------
# decompositions, ONNX, fw.compile
def test_run_decompositions_keeps_values_and_removes_composites():
    model = _mlp()
    x = fw.randn(5, 8)
    ep = export(model, (x,), dynamic_shapes={"input": {0: Dim("batch")}})
    composites = [n.op.name for n in ep.graph.nodes if n.op.decomp is not None]
    assert "layer_norm" in composites and "gelu" in composites
    dep = ep.run_decompositions()
    assert [n.op.name for n in dep.graph.nodes if n.op.decomp is not None] == []
    assert dep.range_constraints == ep.range_constraints
    x2 = fw.randn(7, 8)
    with fw.no_grad():
        np.testing.assert_allclose(_np(dep.module()(x2)), _np(model(x2)), rtol=1e-5,
                                   atol=1e-6)
    only_gelu = ep.run_decompositions({"gelu": None})
    ops = {n.op.name for n in only_gelu.graph.nodes}
    assert "gelu" not in ops and "layer_norm" in ops
    assert "gelu" in fw.export.default_decompositions()
    with pytest.raises(fw.ArgumentError, match="primitive"):
        ep.run_decompositions({"add": None})


def test_onnx_export_of_exported_program(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _mlp().eval()
    ep = export(model, (fw.randn(4, 8),),
                dynamic_shapes={"input": {0: Dim("batch", min=1, max=1024)}})
    path = os.path.join(tmp_path, "ep.onnx")
    fw.onnx.export(ep, (fw.randn(4, 8),), path, verify=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.name == "input" and inp.shape == ["batch", 8]
    for n in (3, 11):
        x = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
        (y,) = sess.run(None, {"input": x})
        with fw.no_grad():
            np.testing.assert_allclose(y, _np(model(fw.tensor(x))), rtol=1e-4, atol=1e-5)


def test_compile_of_the_exported_module():
    model = _mlp()
    ep = export(model, (fw.randn(4, 8),), dynamic_shapes={"input": {0: Dim("batch")}})
    m = ep.module()
    fast = fw.compile(m, fullgraph=True)
    for n in (4, 6):
        x = fw.randn(n, 8)
        np.testing.assert_allclose(_np(fast(x)), _np(m(x)), rtol=1e-5, atol=1e-6)
    assert fast.stats()["eager_reason"] is None


def test_auto_dims_stay_dynamic_where_the_program_allows():
    """Dim.AUTO on a whole input: the batch dim stays dynamic even though the linear
    layer fixes the feature dim; two batch dims the program ties become one symbol."""
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU()).eval()
    ep = fw.export.export(m, (fw.randn(3, 4),), dynamic_shapes=(Dim.AUTO,))
    assert not isinstance(ep.graph.inputs[0].shape[0], int) and ep.graph.inputs[0].shape[1] == 4

    class Mul(nn.Module):
        def forward(self, a, b):
            return (a * b).sum(-1)
    ep = fw.export.export(Mul(), (fw.randn(2, 3), fw.randn(2, 3)),
                          dynamic_shapes=(Dim.AUTO, Dim.AUTO))
    sa, sb = ep.graph.inputs[0].shape, ep.graph.inputs[1].shape
    assert sa == sb and not any(isinstance(s, int) for s in sa)
    a, b = fw.randn(5, 7), fw.randn(5, 7)
    np.testing.assert_allclose(ep.module()(a, b).numpy(), (a * b).sum(-1).numpy(), rtol=1e-6)
