"""NumPy scalars as operands: PyTorch takes ``np.float32(2.0)`` / ``np.int64(3)`` as the
Python number they hold (a weak scalar), on either side of an operator. Schedules and configs
computed with NumPy hand these to ``clip_grad_norm_(params, max_norm)``, ``x * lr`` ..."""

import numpy as np
import pytest

import framework as fw


@pytest.mark.parametrize("scalar", [np.float32(2.0), np.float16(2.0), np.int64(2), np.int32(2),
                                    np.uint8(2), np.float64(2.0)])
def test_numpy_scalar_on_either_side_keeps_the_tensor_dtype(scalar):
    x = fw.tensor([1.0, 3.0])
    for got in (x * scalar, scalar * x, x + scalar, scalar - x, x / scalar, scalar / x):
        assert isinstance(got, fw.Tensor) and got.dtype == fw.float32
    np.testing.assert_allclose((scalar / x).numpy(), [2.0, 2.0 / 3.0], rtol=1e-6)
    np.testing.assert_array_equal((x * scalar).numpy(), [2.0, 6.0])


def test_numpy_scalars_promote_like_python_numbers():
    i = fw.tensor([1, 2], dtype=fw.int32)
    assert (i + np.int64(3)).dtype == fw.int32  # an int scalar does not widen an int tensor
    assert (i * np.float32(0.5)).dtype == fw.float32  # a float scalar: the default dtype
    assert (fw.ones(2, dtype=fw.float16) * np.float64(3)).dtype == fw.float16
    assert (fw.ones(2) > np.float32(0.5)).all()
    assert (fw.ones(2) * np.bool_(False)).sum().item() == 0


def test_clip_grad_norm_with_a_numpy_max_norm():
    p = fw.nn.Parameter(fw.tensor([3.0, 4.0]))
    p.grad = fw.tensor([3.0, 4.0])
    total = fw.nn.utils.clip_grad_norm_([p], np.float32(1.0))
    assert total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert fw.clamp(fw.tensor([2.0]), max=np.float32(0.5)).item() == 0.5


def test_a_numpy_array_is_still_refused():
    with pytest.raises(TypeError, match="unsupported operand type ndarray"):
        fw.ones(2) * np.array([1.0, 2.0])
