"""fw.jit: trace (through fw.export), save/load, and the decorators model code uses."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import FwTypeError


def _model():
    fw.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2)).eval()


def test_trace_runs_on_other_batch_sizes_and_round_trips(tmp_path):
    m = _model()
    traced = fw.jit.trace(m, fw.randn(3, 4))
    x = fw.randn(7, 4)  # another batch size: the batch dim stayed dynamic
    np.testing.assert_allclose(traced(x).detach().numpy(), m(x).detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    assert "linear" in traced.code or "matmul" in traced.code
    path = tmp_path / "m.pt"
    fw.jit.save(traced, str(path))
    loaded = fw.jit.load(str(path))
    np.testing.assert_array_equal(loaded(x).detach().numpy(), traced(x).detach().numpy())
    with pytest.raises(fw.ShapeError):
        traced(fw.randn(7, 5))  # the feature dim is fixed by the program


def test_trace_a_function_and_check_trace():
    def f(a, b):
        return (a * b).sum(-1)
    traced = fw.jit.trace(f, (fw.randn(2, 3), fw.randn(2, 3)),
                          check_inputs=[(fw.randn(5, 3), fw.randn(5, 3))])
    a, b = fw.randn(4, 3), fw.randn(4, 3)
    np.testing.assert_allclose(traced(a, b).numpy(), f(a, b).numpy(), rtol=1e-6)
    with pytest.raises(FwTypeError, match="example_inputs"):
        fw.jit.trace(f)
    with pytest.raises(FwTypeError, match="fw.jit.trace"):
        fw.jit.save(_model(), "unused.pt")


def test_script_and_decorators_leave_code_eager():
    @fw.jit.script
    def fused(x):
        return x * 2

    class M(nn.Module):
        limit: fw.jit.Final[int]

        @fw.jit.ignore
        def helper(self, x):
            return x + 1

        @fw.jit.unused
        def other(self, x):
            return x

        def forward(self, x):
            if not fw.jit.is_scripting():
                x = self.helper(x)
            return fw.jit.wait(fw.jit.fork(fused, x))

    out = fw.jit.script(M())(fw.ones(2))
    assert out.tolist() == [4.0, 4.0]
    assert fw.jit.annotate(list, [1]) == [1] and fw.jit.is_tracing() is False
    seen = []
    fw.compile(lambda x: seen.append(fw.jit.is_tracing()) or x * 1, mode="always")(fw.ones(1))
    assert seen == [True]


def test_load_of_a_plain_checkpoint_is_a_runtime_error(tmp_path):
    """PyTorch's jit.load raises RuntimeError for a torch.save file; clip.load catches that
    to fall back to torch.load of a state dict."""
    path = tmp_path / "sd.pt"
    fw.save({"w": fw.ones(2)}, str(path))
    with open(path, "rb") as f:
        with pytest.raises(RuntimeError, match="jit.load: .*not an exported program archive"):
            fw.jit.load(f, map_location="cpu")
        f.seek(0)
        assert fw.load(f)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(fw.jit.JitLoadError):  # also the framework's CheckpointError
        fw.jit.load(str(path))
