"""dtypes and PyTorch's type promotion: result_type, promote_types, weak Python scalars,
0-d tensors, int/int true division, set_default_dtype."""

import numpy as np
import pytest

import framework as fw

f16, bf16, f32, f64 = fw.float16, fw.bfloat16, fw.float32, fw.float64
i8, u8, i16, i32, i64, b = fw.int8, fw.uint8, fw.int16, fw.int32, fw.int64, fw.bool


@pytest.mark.parametrize("a,c,want", [
    (i8, u8, i16), (u8, i16, i16), (u8, i64, i64), (i32, i64, i64), (b, u8, u8), (b, i8, i8),
    (f16, bf16, f32), (f16, f32, f32), (bf16, f64, f64), (i64, f16, f16), (b, f32, f32),
    (u8, f16, f16), (i8, i8, i8), (b, b, b),
])
def test_promote_types_table(a, c, want):
    assert fw.promote_types(a, c) is want
    assert fw.promote_types(c, a) is want


def _t(dt, ndim=1):
    return fw.zeros(*([2] * ndim), dtype=dt)


@pytest.mark.parametrize("operands,want", [
    ((_t(i32), 2), i32),                 # int scalar is weak
    ((_t(i32), 2.5), f32),               # float scalar: default float dtype
    ((_t(u8), 1000), u8),
    ((_t(f16), 2.5), f16),
    ((_t(b), 2), i64), ((_t(b), True), b), ((_t(b), 1.5), f32),
    ((_t(i32), _t(i64, 0)), i32),        # a 0-d tensor of the same category is weak too
    ((_t(i32), _t(f64, 0)), f64),        # ...unless it is of a higher category
    ((_t(f16), _t(f64, 0)), f16),
    ((_t(i64, 0), _t(i32, 0)), i64),
    ((_t(i64, 0), 2.5), f32),
    ((_t(f16), _t(bf16)), f32),
    ((_t(i8), _t(u8)), i16),
])
def test_result_type_with_weak_operands(operands, want):
    assert fw.result_type(*operands) is want


@pytest.mark.parametrize("a,c,want", [
    (_t(i32), 2, i32), (_t(i32), 2.5, f32), (_t(f16), 3, f16), (_t(b), 2, i64),
    (_t(u8), _t(i8), i16), (_t(i32), _t(f64, 0), f64), (_t(f16), _t(f32, 0), f16),
    (3, _t(i16), i16), (1.5, _t(i64), f32),
])
def test_binary_ops_follow_result_type(a, c, want):
    assert (a + c).dtype is want
    assert (a * c).dtype is want
    assert fw.maximum(a if isinstance(a, fw.Tensor) else c,
                      c if isinstance(a, fw.Tensor) else a).dtype is want


def test_true_division_of_ints_gives_default_float():
    x = fw.tensor([1, 2, 3])
    assert (x / 2).dtype is f32 and (x / x).dtype is f32 and (7 / x).dtype is f32
    np.testing.assert_allclose((x / 2).numpy(), [0.5, 1.0, 1.5])
    assert (x // 2).dtype is i64 and (x // 2).tolist() == [0, 1, 1]
    assert fw.div(x, 2, rounding_mode="trunc").dtype is i64
    assert fw.tensor([-7]).div(2, rounding_mode="floor").item() == -4
    assert fw.tensor([-7]).div(2, rounding_mode="trunc").item() == -3
    assert (fw.tensor([-7]) % 3).item() == 2  # remainder has the divisor's sign


def test_set_default_dtype_changes_float_inference():
    try:
        fw.set_default_dtype(fw.float64)
        assert fw.get_default_dtype() is f64
        assert fw.tensor([1.5]).dtype is f64 and fw.zeros(2).dtype is f64
        assert fw.arange(0.0, 1.0, 0.5).dtype is f64 and (fw.tensor([1]) / 2).dtype is f64
        assert (fw.tensor([1]) * 2.5).dtype is f64 and fw.randn(2).dtype is f64
        assert fw.tensor([1]).exp().dtype is f64
    finally:
        fw.set_default_dtype(fw.float32)
    assert fw.tensor([1.5]).dtype is f32


def test_unary_float_ops_promote_ints():
    x = fw.tensor([1, 4])
    for fn in (fw.exp, fw.sqrt, fw.log, fw.sin, fw.sigmoid, fw.tanh, fw.erf, fw.rsqrt):
        assert fn(x).dtype is f32
    for fn in (fw.abs, fw.neg, fw.floor, fw.relu, fw.sign):
        assert fn(x).dtype is i64
    assert x.sum().dtype is i64 and fw.tensor([True, True]).sum().item() == 2
    assert fw.tensor([1, 2], dtype=i32).cumsum(0).dtype is i64
    assert fw.tensor([1, 2], dtype=i32).prod().dtype is i64
    assert x.sum(dtype=f64).dtype is f64 and x.mean(dtype=f32).item() == 2.5
    assert fw.tensor([1, 2]).float().softmax(0).dtype is f32
    assert x.softmax(0).dtype is f32


def test_comparisons_and_mixed_dtype_ops():
    a, c = fw.tensor([1, 2], dtype=u8), fw.tensor([1.5, 2.0])
    assert (a < c).dtype is b and (a < c).tolist() == [True, False]
    assert fw.where(a > 1, a, c).dtype is f32
    assert fw.cat([a, c]).dtype is f32
    assert fw.matmul(a.to(i64), fw.tensor([1, 1])).dtype is i64
    assert (a.to(i64) @ c).dtype is f32
    assert fw.tensor([1], dtype=i32).add_(2).dtype is i32


def test_dtype_objects():
    assert fw.float32 is fw.float and fw.float64 is fw.double and fw.int64 is fw.long
    assert fw.float16 is fw.half and fw.int32 is fw.int
    assert repr(fw.float32) == "framework.float32"
    assert fw.float32.is_floating_point and not fw.int64.is_floating_point
    assert fw.bfloat16.itemsize == 2 and fw.dtypes.from_numpy(np.int16) is fw.int16
    assert fw.dtypes.to_dtype("half") is f16 and fw.dtypes.to_dtype(float) is f64
    import pickle
    assert pickle.loads(pickle.dumps(fw.bfloat16)) is fw.bfloat16
    assert fw.is_floating_point(fw.zeros(1)) and not fw.is_floating_point(fw.zeros(1).long())


def test_sign_of_bool_and_where_with_two_scalars():
    m = fw.tensor([True, False])
    s = fw.sign(m)
    assert s.dtype is b and s.tolist() == [True, False]
    w = fw.where(m, 1, 0.5)
    assert w.dtype is f32 and w.tolist() == [1.0, 0.5]
    w = fw.where(m, 2, 0)
    assert w.dtype is i64 and w.tolist() == [2, 0]
    assert fw.where(m, True, False).dtype is b


def test_python_types_as_dtypes_follow_pytorch():
    assert fw.zeros(2, dtype=float).dtype is f64 and fw.zeros(2, dtype=int).dtype is i64
    assert fw.ones(2).to(float).dtype is f64 and fw.ones(2).to(int).dtype is i64
    assert fw.ones(2).to(bool).dtype is b and fw.ones(2).to("cpu", float).dtype is f64


def test_float32_matmul_precision_setting():
    assert fw.get_float32_matmul_precision() == "highest"  # full fp32, PyTorch's default
    fw.set_float32_matmul_precision("high")
    try:
        assert fw.get_float32_matmul_precision() == "high"
    finally:
        fw.set_float32_matmul_precision("highest")
    with pytest.raises(fw.ArgumentError, match="highest"):
        fw.set_float32_matmul_precision("fast")
