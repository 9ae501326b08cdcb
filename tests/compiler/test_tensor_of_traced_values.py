"""``fw.tensor([R])`` with a traced 0-d tensor ``R`` inside fw.compile (actor_critic.py's
``F.smooth_l1_loss(value, torch.tensor([R]))``) is captured, not a graph break; and reflect
padding of a symbolic dim is a ShapeError (not a raw sympy error), so compile specializes."""

import numpy as np
import pytest

import framework as fw
from framework.errors import ShapeError


def _f(returns, values):
    out = []
    for R, v in zip(returns, values):
        out.append(fw.nn.functional.smooth_l1_loss(v, fw.tensor([R])))
    return fw.stack(out).sum() + fw.tensor(returns).sum() + fw.tensor([returns[0], 2.0]).sum()


def test_tensor_of_traced_tensors_is_captured_and_tracks_new_values():
    cf = fw.compile(_f, mode="always", fullgraph=True)
    for seed in range(3):
        fw.manual_seed(seed)
        r, v = fw.randn(4), fw.randn(4, 1)
        np.testing.assert_allclose(cf(r, v).item(), _f(r, v).item(), rtol=1e-6)
    assert cf.stats()["captures"] == 1 and not cf.stats()["graph_breaks"]


def test_tensor_of_a_traced_tensor_is_a_detached_copy_with_eager_dtypes():
    def g(x, y):
        a = fw.tensor(x)                      # a copy: writing to it leaves x alone
        a.add_(1)
        b = fw.tensor([x[0], 1])              # floats and ints: the default float dtype
        c = fw.tensor([y[0], y[1]])           # int64 elements stay int64
        d = fw.tensor(x, dtype=fw.float64)
        return a, b, c, d

    cf = fw.compile(g, mode="always", fullgraph=True)
    x = fw.tensor([1.5, 2.5], requires_grad=True)
    y = fw.tensor([3, 4])
    got, want = cf(x, y), g(x, y)
    for gt, wt in zip(got, want):
        assert gt.dtype is wt.dtype and not gt.requires_grad
        np.testing.assert_array_equal(gt.numpy(), wt.numpy())
    np.testing.assert_array_equal(x.detach().numpy(), [1.5, 2.5])


def test_reflect_pad_of_a_dynamic_dim_is_a_shape_error_and_compile_specializes():
    m = fw.nn.Sequential(fw.nn.ReflectionPad2d(2), fw.nn.Conv2d(3, 2, 5))
    cf = fw.compile(lambda x: m(x), mode="always")
    with fw.no_grad():
        for s in (8, 10, 12):
            x = fw.randn(1, 3, s, s)
            np.testing.assert_allclose(cf(x).numpy(), m(x).numpy(), rtol=1e-5, atol=1e-6)
    st = cf.stats()
    assert st["eager_reason"] is None and st["eager_calls"] == 0, st
    with pytest.raises(ShapeError, match="reflect padding needs a static size"):
        fw.onnx.export(m, fw.randn(1, 3, 8, 8), None, dynamic_axes={"x": {2: "h"}})
