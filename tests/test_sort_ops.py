"""sort / argsort / topk: the ``argsort`` op's order (NaN, ties, -0.0, ints, bool, uint8),
errors, autograd, capture by ``fw.compile`` without a graph break, and ONNX export."""

import math

import numpy as np
import pytest

import framework as fw
from framework.ops.registry import OPS

NAN, INF = math.nan, math.inf


def _np(t):
    return t.detach().numpy()


# -- order ---------------------------------------------------------------------------------
def test_nan_is_larger_than_inf():
    x = fw.tensor([1.0, NAN, 3.0])
    v, i = fw.sort(x, descending=True)
    np.testing.assert_array_equal(_np(v), [NAN, 3.0, 1.0])
    assert i.tolist() == [1, 2, 0]
    v, i = fw.sort(x)
    np.testing.assert_array_equal(_np(v), [1.0, 3.0, NAN])
    assert i.tolist() == [0, 2, 1]
    x = fw.tensor([NAN, INF, -INF, NAN, 0.0])
    assert fw.argsort(x).tolist() == [2, 4, 1, 0, 3]
    assert fw.argsort(x, descending=True).tolist() == [0, 3, 1, 4, 2]
    assert fw.topk(x, 2).indices.tolist() == [0, 3]
    assert fw.topk(x, 2, largest=False).indices.tolist() == [2, 4]


@pytest.mark.parametrize("dtype", [fw.float16, fw.bfloat16, fw.float64])
def test_nan_order_in_every_float_dtype(dtype):
    x = fw.tensor([1.0, NAN, -2.0, INF], dtype=dtype)
    assert fw.argsort(x).tolist() == [2, 0, 3, 1]
    assert fw.argsort(x, descending=True).tolist() == [1, 3, 0, 2]


@pytest.mark.parametrize("stable", [False, True])
def test_descending_keeps_equal_elements_in_original_order(stable):
    x = fw.tensor([[2, 1, 2, 1, 2, 3]])
    assert fw.argsort(x, descending=True, stable=stable).tolist() == [[5, 0, 2, 4, 1, 3]]
    assert fw.argsort(x, stable=stable).tolist() == [[1, 3, 0, 2, 4, 5]]
    # along dim 0 as well
    y = fw.tensor([[1.0, 0.0], [1.0, 0.0], [0.5, 0.0]])
    assert fw.argsort(y, dim=0, descending=True).tolist() == [[0, 0], [1, 1], [2, 2]]


def test_signed_zeros_are_equal():
    x = fw.tensor([0.0, -0.0, 0.0, -0.0])
    for desc in (False, True):
        v, i = fw.sort(x, descending=desc)
        assert i.tolist() == [0, 1, 2, 3]
        assert np.signbit(_np(v)).tolist() == [False, True, False, True]


def test_bool_and_unsigned_dtypes():
    b = fw.tensor([True, False, True, False, True])
    v, i = fw.sort(b, descending=True)
    assert v.tolist() == [True, True, True, False, False] and i.tolist() == [0, 2, 4, 1, 3]
    assert fw.argsort(b).tolist() == [1, 3, 0, 2, 4]
    u = fw.tensor([1, 255, 0, 128, 255], dtype=fw.uint8)
    v, i = fw.sort(u, descending=True)
    assert v.dtype is fw.uint8
    assert v.tolist() == [255, 255, 128, 1, 0] and i.tolist() == [1, 4, 3, 0, 2]
    assert fw.sort(u).values.tolist() == [0, 1, 128, 255, 255]
    assert fw.topk(u, 2, largest=False).values.tolist() == [0, 1]


def test_int64_extremes_descending():
    lo, hi = -2 ** 63, 2 ** 63 - 1
    x = fw.tensor([0, lo, hi, -1, lo])
    assert fw.sort(x, descending=True).values.tolist() == [hi, 0, -1, lo, lo]
    assert fw.argsort(x, descending=True).tolist() == [2, 0, 3, 1, 4]


def test_zero_d_and_empty():
    v, i = fw.sort(fw.tensor(2.5))
    assert v.shape == () and i.shape == () and i.item() == 0 and v.item() == 2.5
    v, i = fw.topk(fw.tensor(2.5), 1)
    assert v.item() == 2.5 and i.item() == 0
    v, i = fw.sort(fw.zeros(3, 0), dim=1, descending=True)
    assert v.shape == (3, 0) and i.shape == (3, 0) and i.dtype is fw.int64


# -- API -------------------------------------------------------------------------------------
def test_one_registered_op_and_methods_share_the_functions():
    assert OPS["argsort"].num_outputs == 1 and OPS["argsort"].vjp is None
    assert fw.Tensor.sort is fw.sort.__wrapped__ and fw.Tensor.argsort is fw.argsort
    assert fw.Tensor.topk is fw.topk.__wrapped__  # fw.topk adds out= (framework/out_arg.py)
    x = fw.tensor([[3.0, 1.0, 2.0]])
    assert x.sort(descending=True).indices.tolist() == [[0, 2, 1]]
    assert x.argsort(dim=1).tolist() == [[1, 2, 0]]
    r = x.topk(2, dim=-1, largest=True, sorted=True)
    assert r.values.tolist() == [[3.0, 2.0]] and r.indices.tolist() == [[0, 2]]


def test_meta_tensors_have_shapes_without_data():
    x = fw.randn(4, 7).to("meta")
    v, i = fw.sort(x, dim=0)
    assert v.shape == (4, 7) and i.dtype is fw.int64 and i.device.type == "meta"
    v, i = x.topk(3)
    assert v.shape == (4, 3) and i.shape == (4, 3)


def test_errors_name_the_op_and_argument():
    x = fw.randn(2, 3)
    with pytest.raises(fw.FwIndexError, match=r"topk: k=4 .*dimension 1 of size 3"):
        fw.topk(x, 4)
    with pytest.raises(fw.FwIndexError, match=r"topk: k=-1"):
        fw.topk(x, -1)
    with pytest.raises(fw.FwIndexError, match=r"topk: k=3 .*dimension 0 of size 2"):
        x.topk(3, dim=0)
    with pytest.raises(fw.ArgumentError, match=r"sort: dimension out of range"):
        fw.sort(x, dim=2)
    with pytest.raises(fw.ArgumentError, match=r"argsort: dimension out of range"):
        x.argsort(dim=-3)
    with pytest.raises(fw.ArgumentError, match=r"topk: dimension out of range"):
        fw.topk(x, 1, dim=5)
    with pytest.raises(TypeError, match=r"topk: k must be an int"):
        fw.topk(x, 1.5)
    with pytest.raises(TypeError, match=r"sort: descending must be a bool"):
        fw.sort(x, descending="yes")


def test_values_are_differentiable_indices_are_not():
    x = fw.tensor([[3.0, 1.0, 2.0, 5.0]], requires_grad=True)
    v, i = x.sort(descending=True)
    assert v.requires_grad and not i.requires_grad
    (v * fw.tensor([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    assert x.grad.tolist() == [[2.0, 4.0, 3.0, 1.0]]
    x.grad = None
    x.topk(2).values.sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0, 0.0, 1.0]]
    assert fw.autograd.gradcheck(lambda t: t.sort(0).values,
                                 (fw.randn(4, 3, dtype=fw.float64, requires_grad=True),))


# -- fw.compile ------------------------------------------------------------------------------
def test_compile_captures_topk_without_graph_break(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    fn = fw.compile(lambda x: x.topk(3).values * 2, fullgraph=True, mode="always")
    x = fw.randn(5, 8)
    np.testing.assert_array_equal(_np(fn(x)), _np(x.topk(3).values * 2))
    assert "_impl_argsort" in fn.code(x)
    assert not fn.stats()["graph_breaks"]


def test_compile_sort_with_nan_and_dynamic_dim(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def f(x):
        v, i = fw.sort(x, dim=1, descending=True)
        return v + 1, i

    fn = fw.compile(f, fullgraph=True, mode="always")
    for n in (6, 9):
        a = np.random.default_rng(n).standard_normal((3, n)).astype(np.float32)
        a[0, 2] = a[1, 0] = np.nan
        x = fw.tensor(a)
        fw.mark_dynamic(x, 1)
        got, want = fn(x), f(x)
        np.testing.assert_array_equal(_np(got[0]), _np(want[0]))
        np.testing.assert_array_equal(_np(got[1]), _np(want[1]))


def test_compile_backward_through_sort(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def step(x):
        loss = (x.sort(descending=True).values * fw.arange(4.0)).sum()
        loss.backward()
        return loss

    fn = fw.compile(step, fullgraph=True, mode="always")
    a = fw.tensor([[0.5, -1.0, 2.0, 1.5]], requires_grad=True)
    b = fw.tensor([[0.5, -1.0, 2.0, 1.5]], requires_grad=True)
    np.testing.assert_allclose(fn(a).item(), step(b).item())
    assert a.grad.tolist() == b.grad.tolist() == [[2.0, 3.0, 0.0, 1.0]]


# -- ONNX ----------------------------------------------------------------------------------
def _run_onnx(model, *arrays):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString())
    return sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), arrays)})


def test_onnx_topk_and_sort_verify():
    pytest.importorskip("onnxruntime")
    x = fw.randn(4, 6)
    m = fw.onnx.export(lambda t: t.topk(2, dim=-1), (x,), verify=True)
    assert "TopK" in [n.op_type for n in m.graph.node]
    fw.onnx.export(lambda t: fw.sort(t, dim=0, descending=True), (x,), verify=True)
    fw.onnx.export(lambda t: t.argsort(dim=1), (x,), verify=True)


def test_onnx_matches_eager_on_nan_ties_and_zeros():
    a = np.array([[1.0, NAN, 3.0, -INF, INF, 3.0, -0.0, 0.0, NAN]], np.float32)
    for desc in (False, True):
        def f(t, _d=desc):
            return fw.sort(t, descending=_d)
        m = fw.onnx.export(f, (fw.tensor(a),), verify=True)
        _, idx = _run_onnx(m, a)
        np.testing.assert_array_equal(idx, _np(f(fw.tensor(a))[1]))


@pytest.mark.parametrize("dtype", [fw.bool, fw.uint8, fw.int64, fw.float16])
def test_onnx_narrow_dtypes(dtype):
    pytest.importorskip("onnxruntime")
    x = fw.tensor([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 1]]).to(dtype)
    fw.onnx.export(lambda t: fw.sort(t, descending=True), (x,), verify=True)
    fw.onnx.export(lambda t: fw.argsort(t, dim=0), (x,), verify=True)


def test_onnx_dynamic_sorted_dim_takes_k_from_shape():
    m = fw.onnx.export(lambda t: t.sort(dim=1, descending=True), (fw.randn(3, 5),),
                       dynamic_axes={"t": {1: "n"}}, verify=True)
    assert [n.op_type for n in m.graph.node][:2] == ["Shape", "TopK"]
    a = np.random.default_rng(0).standard_normal((3, 11)).astype(np.float32)
    v, i = _run_onnx(m, a)
    want = fw.sort(fw.tensor(a), dim=1, descending=True)
    np.testing.assert_array_equal(i, _np(want[1]))
    np.testing.assert_array_equal(v, _np(want[0]))


def test_values_indices_results_print_as_pytorch_return_types():
    x = fw.tensor([[1.0, 5.0], [3.0, 2.0]])
    r = fw.max(x, 1)
    assert repr(r) == ("framework.return_types.max(\nvalues=tensor([5., 3.]),\n"
                       "indices=tensor([1, 0]))")
    assert type(r).__name__ == "max" and isinstance(r, tuple) and len(r) == 2
    names = {type(f(x)).__name__ for f in (lambda t: t.sort(1), lambda t: t.topk(1),
                                            lambda t: t.median(1), lambda t: t.mode(1),
                                            lambda t: t.kthvalue(1, 1), lambda t: t.cummax(1),
                                            lambda t: t.min(1))}
    assert names == {"sort", "topk", "median", "mode", "kthvalue", "cummax", "min"}
    assert type(fw.max(x, 0)) is type(r)  # one type per op
