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


def test_a_numpy_array_is_refused_by_the_functions():
    with pytest.raises(TypeError, match="unsupported operand type ndarray"):
        fw.mul(fw.ones(2), np.array([1.0, 2.0]))


def test_operators_with_a_numpy_array_compute_in_numpy_and_return_a_tensor():
    """PyTorch's operators give NotImplemented for an ndarray: NumPy's reflected operator
    computes (NumPy's result dtype) and ``__array_wrap__`` makes the result a tensor. Stable
    Diffusion's DDIM schedule does ``(1 - alphas_prev) / (1 - alphas)`` this way."""
    t = fw.tensor([0.5, 0.25])
    a = np.array([1.0, 2.0])
    for got, want in ((t * a, [0.5, 0.5]), (t + a, [1.5, 2.25]), (t - a, [-0.5, -1.75]),
                      (t / a, [0.5, 0.125]), (a / t, [2.0, 8.0]), (t ** a, [0.5, 0.0625]),
                      ((1 - a) / (1 - t), [0.0, -4.0 / 3.0])):
        assert isinstance(got, fw.Tensor) and got.dtype == fw.float64
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    assert (t * a.astype(np.float32)).dtype == fw.float32
    with pytest.raises(TypeError):
        a - t  # as in PyTorch: ndarray first defers to the tensor, which refuses


def test_numpy_ufuncs_on_a_tensor_return_a_tensor():
    t = fw.tensor([[4.0, 9.0], [16.0, 25.0]])
    got = np.sqrt(t)
    assert isinstance(got, fw.Tensor) and got.dtype == fw.float32
    np.testing.assert_array_equal(got.numpy(), [[2.0, 3.0], [4.0, 5.0]])
    assert np.sqrt(t.t()).numpy().tolist() == [[2.0, 4.0], [3.0, 5.0]]  # a transposed view
    scalar = np.log(fw.tensor(1.0))
    assert isinstance(scalar, fw.Tensor) and scalar.shape == () and scalar.item() == 0.0
    flags = np.greater(t, 8.0)  # PyTorch hands a bool result back as uint8
    assert flags.dtype == fw.uint8 and flags.tolist() == [[0, 1], [1, 1]]


def test_full_infers_its_dtype_from_the_number_a_scalar_holds():
    """``torch.full(size, fill)`` with a NumPy scalar or a 0-d tensor: the dtype is that of
    the Python number it holds (int64 / bool / the default float), as for a Python number.
    Stable Diffusion's DDIM sampler fills with ``alphas[index]`` (a 0-d tensor)."""
    cases = [(np.int64(3), fw.int64, 3), (np.bool_(True), fw.bool, True),
             (np.float32(1.5), fw.float32, 1.5), (fw.tensor(3), fw.int64, 3),
             (fw.tensor(True), fw.bool, True),
             (fw.tensor(2.5, dtype=fw.float64), fw.float32, 2.5)]
    for fill, dt, want in cases:
        got = fw.full((2, 1), fill)
        assert got.dtype == dt and got.tolist() == [[want], [want]], (fill, got)
    assert fw.full((2,), fw.tensor(3), dtype=fw.float16).dtype == fw.float16
