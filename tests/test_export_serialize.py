"""fw.export.save / load and compiler/serialize.py: archive layout (JSON + safetensors, no
pickle), bit-identical round trips, every attribute kind, and the errors."""

import copy
import io
import json
import math
import zipfile

import numpy as np
import pytest
import safetensors.numpy
import sympy

import framework as fw
from compiler.ir import Graph, symbol
from compiler.serialize import (GraphFormatError, decode_value, encode_value, graph_from_json,
                                graph_to_json, parse_sym)
from framework import nn
from framework.demo.model import GPT, GPTConfig
from framework.errors import FwTypeError
from framework.export import Dim, export, load, save
from framework.ops.indexing import TensorSlot
from framework.ops.registry import OPS
from framework.serialization import CheckpointError


def _np(t):
    return t.detach().numpy()


def _roundtrip(ep, tmp_path, **kw):
    path = tmp_path / "m.pt2"
    save(ep, path, **kw)
    return load(path), path


def test_round_trip_is_bit_identical(tmp_path):
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3))
    ep = export(model, (fw.randn(4, 8),), dynamic_shapes={"input": {0: Dim("batch", max=64)}})
    ep2, _ = _roundtrip(ep, tmp_path)
    x = fw.randn(9, 8)
    np.testing.assert_array_equal(_np(ep2.module()(x)), _np(ep.module()(x)))
    assert str(ep2.graph_signature) == str(ep.graph_signature)
    assert {s.name: r for s, r in ep2.range_constraints.items()} == {"batch": (0, 64)}
    assert list(ep2.state_dict) == list(ep.state_dict)
    assert all(isinstance(p, nn.Parameter) for p in ep2.state_dict.values())
    assert ep2.example_inputs[0][0].tolist() == ep.example_inputs[0][0].tolist()
    assert ep2.graph.passes[-1] == "load"
    with pytest.raises(fw.ShapeError, match="outside the range"):
        ep2.module()(fw.randn(65, 8))


def test_round_trip_of_a_training_mode_batchnorm(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    ep = export(model.train(), (fw.randn(2, 3, 6, 6),),
                dynamic_shapes={"input": {0: Dim("n", min=2)}})
    ep2, _ = _roundtrip(ep, tmp_path)
    assert ep2.graph_signature.buffers_to_mutate == ep.graph_signature.buffers_to_mutate
    m1, m2 = copy.deepcopy(ep.module()), ep2.module()
    x = fw.randn(5, 3, 6, 6)
    np.testing.assert_array_equal(_np(m2(x)), _np(m1(x)))
    np.testing.assert_array_equal(m2.get_buffer("1.running_var").numpy(),
                                  m1.get_buffer("1.running_var").numpy())


def test_round_trip_of_a_gpt_with_dynamic_batch_and_sequence():
    gpt = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    ep = export(gpt, (fw.randint(0, 20, (2, 8)),),
                dynamic_shapes={"idx": {0: Dim("b", max=8), 1: Dim("t", min=2, max=16)}})
    buf = io.BytesIO()
    save(ep, buf)
    buf.seek(0)
    ep2 = load(buf)
    ids = fw.randint(0, 20, (3, 13))
    np.testing.assert_array_equal(_np(ep2.module()(ids)), _np(ep.module()(ids)))
    dep = ep2.run_decompositions()
    np.testing.assert_allclose(_np(dep.module()(ids)), _np(ep.module()(ids)), rtol=1e-5,
                               atol=1e-6)


def test_archive_holds_json_and_safetensors_only(tmp_path):
    ep = export(nn.Linear(4, 2), (fw.randn(3, 4),))
    _, path = _roundtrip(ep, tmp_path, extra_files={"notes.txt": "hello"})
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["fw_export/extra/notes.txt", "fw_export/program.json",
                                        "fw_export/version", "fw_export/weights.safetensors"]
        program = json.loads(z.read("fw_export/program.json"))
        weights = z.read("fw_export/weights.safetensors")
    for blob in (weights, json.dumps(program).encode()):
        assert b"pickle" not in blob and not blob.startswith(b"\x80")
    arrays = safetensors.numpy.load(weights)
    np.testing.assert_array_equal(arrays["tensors.weight"], ep.state_dict["weight"].detach()
                                  .numpy())
    assert [n["op"] for n in program["graph"]["nodes"]] == ["permute", "matmul", "add"]
    assert program["graph"]["nodes"][0]["attrs"] == {"dims": [1, 0]}
    extra = {"notes.txt": ""}
    load(path, extra_files=extra)
    assert extra == {"notes.txt": "hello"}


def test_attribute_values_round_trip():
    n = symbol("n")
    syms = {"n": n}
    values = [None, True, 3, -2.5, math.inf, -math.inf, "mean", (1, (2, 3)), [1, 2],
              {"a": 1}, slice(None, n, 2), Ellipsis, fw.float16, fw.device("cpu"),
              2 * n + 1, n / (n - 1), sympy.floor(n / 2), np.float32(0.5), TensorSlot(1)]
    for v in values:
        data = json.loads(json.dumps(encode_value(v), allow_nan=False))
        back = decode_value(data, syms)
        assert back == v and type(back) is type(v), (v, back)
    nan = decode_value(json.loads(json.dumps(encode_value(math.nan))), syms)
    assert math.isnan(nan)


def test_unsupported_attributes_raise_naming_op_and_attribute():
    g = Graph()
    x = g.add_input("x", (3,), fw.float32)
    node = g.add_node(OPS["mul"], (x, 2.0), {})
    g.outputs = [node.outputs[0]]
    graph_to_json(g)  # fine so far
    node.attrs["generator"] = object()
    with pytest.raises(NotImplementedError, match=r"op 'mul', attribute 'generator' holds a "
                                                  r"object"):
        graph_to_json(g)
    sub = Graph()
    sub.add_constant("w", fw.ones(2), "const")
    node.attrs["generator"] = sub
    with pytest.raises(NotImplementedError, match="subgraph with constants"):
        graph_to_json(g)


def test_control_flow_programs_round_trip(tmp_path):
    """fw.cond's branches (subgraphs in the node's attributes) are stored as nested graphs."""
    class Gate(fw.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = fw.nn.Linear(3, 3)

        def forward(self, x, flag):
            return fw.cond(flag.sum() > 0, lambda t: self.lin(t).relu(), lambda t: t * 2.0,
                           (x,))
    m = Gate().eval()
    x = fw.randn(2, 3)
    ep = fw.export.export(m, (x, fw.ones(1)))
    path = tmp_path / "cond.pt2"
    fw.export.save(ep, str(path))
    back = fw.export.load(str(path)).module()
    for flag in (fw.ones(1), -fw.ones(1)):
        np.testing.assert_array_equal(back(x, flag).detach().numpy(),
                                      m(x, flag).detach().numpy())


def test_symbolic_expressions_are_parsed_safely():
    syms = {"n": symbol("n")}
    assert parse_sym("2*n + 1", syms) == 2 * syms["n"] + 1
    for bad in ("__import__('os').system('true')", "n.func", "lambda: 1", "m + 1", "open"):
        with pytest.raises(GraphFormatError):
            parse_sym(bad, syms)


def test_loading_checks_the_file_and_the_graph(tmp_path):
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not an exported program"):
        load(bad)
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("other.txt", "x")
    with pytest.raises(CheckpointError, match="program.json"):
        load(bad)
    ep = export(nn.Linear(4, 2), (fw.randn(3, 4),))
    data = graph_to_json(ep.graph)
    tensors = {v.name: t for v, t in ep.graph.constants.items()}
    g = graph_from_json(data, tensors)
    assert str(g).split("\n", 1)[1] == str(ep.graph).split("\n", 1)[1]
    broken = json.loads(json.dumps(data))
    broken["nodes"][0]["op"] = "no_such_op"
    with pytest.raises(GraphFormatError, match="no_such_op"):
        graph_from_json(broken, tensors)
    broken = json.loads(json.dumps(data))
    broken["nodes"][1]["outputs"][0]["shape"] = [3, 7]
    with pytest.raises(Exception, match="meta rule"):
        graph_from_json(broken, tensors)
    with pytest.raises(GraphFormatError, match="expects float32"):
        graph_from_json(data, {**tensors, "weight": fw.zeros(2, 4, dtype=fw.float64)})
    with pytest.raises(FwTypeError, match="ExportedProgram"):
        save(nn.Linear(2, 2), tmp_path / "x.pt2")
