"""Every user mistake raises a framework error of the right built-in family whose message
names the op and the shapes / dtypes / index / dim at fault (never a raw NumPy error)."""

import numpy as np
import pytest

import framework as fw
from framework.errors import (ArgumentError, AutogradError, DeviceError, DTypeError,
                              FrameworkError, FwIndexError, ShapeError)


def _raises(exc, *fragments):
    """Context manager: ``exc`` is raised and its message contains every fragment."""
    class _Ctx:
        def __enter__(self):
            self._cm = pytest.raises(exc)
            self.info = self._cm.__enter__()
            return self.info

        def __exit__(self, *a):
            handled = self._cm.__exit__(*a)
            assert isinstance(self.info.value, FrameworkError), type(self.info.value)
            msg = str(self.info.value)
            for f in fragments:
                assert f in msg, f"{f!r} not in {msg!r}"
            return handled
    return _Ctx()


# -- autograd -------------------------------------------------------------------------------
def test_backward_through_freed_graph():
    x = fw.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with _raises(AutogradError, "second time", "retain_graph=True"):
        y.backward()
    assert issubclass(AutogradError, RuntimeError)


def test_saved_tensor_modified_in_place():
    x = fw.ones(2, requires_grad=True)
    y = x.exp()
    y.add_(1)
    with _raises(AutogradError, "modified by an inplace operation", "exp", "version"):
        y.sum().backward()
    a = x * 1
    b = a * a
    a.mul_(2)
    with _raises(AutogradError, "modified by an inplace operation", "mul"):
        b.sum().backward()


def test_in_place_on_leaf_requiring_grad():
    x = fw.ones(2, requires_grad=True)
    with _raises(AutogradError, "leaf Variable that requires grad", "add_"):
        x.add_(1)
    with _raises(AutogradError, "leaf", "__setitem__"):
        x[0] = 3.0


def test_backward_on_non_scalar_without_gradient():
    x = fw.ones(2, 3, requires_grad=True)
    with _raises(AutogradError, "only for scalar outputs", "(2, 3)"):
        (x * 2).backward()
    with _raises(AutogradError, "gradient shape", "(3,)", "(2, 3)"):
        (x * 2).backward(fw.ones(3))


def test_backward_without_grad():
    with _raises(AutogradError, "does not require grad"):
        fw.ones(2).sum().backward()
    with _raises(AutogradError, "numpy()", "detach"):
        fw.ones(2, requires_grad=True).numpy()


# -- shapes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,fragments", [
    (lambda: fw.ones(2, 3) + fw.ones(4), ("add", "[2, 3]", "[4]", "broadcast")),
    (lambda: fw.ones(2, 3) * fw.ones(3, 2), ("mul", "[2, 3]", "[3, 2]")),
    (lambda: fw.where(fw.ones(2) > 0, fw.ones(3), 0.0), ("where", "[2]", "[3]")),
    (lambda: fw.ones(2, 3) @ fw.ones(4, 5), ("matmul", "[2, 3]", "[4, 5]")),
    (lambda: fw.ones(3) @ fw.ones(()), ("matmul",)),
    (lambda: fw.ones(2, 3).reshape(5), ("reshape", "[5]", "6")),
    (lambda: fw.ones(2, 3).reshape(-1, -1), ("reshape", "one dimension")),
    (lambda: fw.cat([fw.ones(2, 3), fw.ones(2, 4)]), ("cat", "[2, 3]", "[2, 4]")),
    (lambda: fw.stack([fw.ones(2), fw.ones(3)]), ("stack", "[2]", "[3]")),
    (lambda: fw.ones(2, 3).expand(4, 3), ("expand", "[4, 3]", "[2, 3]")),
    (lambda: fw.ones(2, 3).T.view(6), ("view", "[3, 2]", ".reshape")),
    (lambda: fw.ones(2, 3).permute(1, 0, 2), ("permute", "[2, 3]")),
    (lambda: fw.bmm(fw.ones(2, 3, 4), fw.ones(3, 4, 5)), ("bmm", "2", "3")),
    (lambda: fw.ones(2).t().mm(fw.ones(2)), ("mm",)),
    (lambda: fw.ones(2, 3).split([1, 1], 1), ("split", "[1, 1]", "3")),
    (lambda: fw.ones(2).tril(), ("tril", "2 dimensions")),
    (lambda: fw.ones(2, 3).gather(0, fw.zeros(2, 4, dtype=fw.int64)), ("gather", "[2, 4]")),
    (lambda: fw.ones(3).__setitem__(slice(None), fw.ones(4)), ("[4]", "[3]")),
    (lambda: fw.ones(2, 2).add_(fw.ones(3, 2, 2)), ("add_", "[2, 2]")),
    (lambda: fw.einsum("ij,jk->ik", fw.ones(2, 3), fw.ones(4, 2)), ("einsum",)),
    (lambda: fw.pad(fw.ones(2, 3), (1, 2, 3)), ("pad", "even")),
])
def test_shape_errors(fn, fragments):
    with _raises(ShapeError, *fragments):
        fn()
    assert issubclass(ShapeError, ValueError)


# -- dtypes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,fragments", [
    (lambda: fw.ones(2) & fw.ones(2), ("bitwise_and", "float32")),
    (lambda: ~fw.ones(2), ("bitwise_not", "float32")),
    (lambda: fw.where(fw.ones(2), fw.ones(2), 0.0), ("where", "bool", "float32")),
    (lambda: fw.ones(2, dtype=fw.int64).mean(), ("mean", "int64")),
    (lambda: fw.ones(2, dtype=fw.int64).add_(1.5), ("add_", "float32", "int64")),
    (lambda: -fw.ones(2, dtype=fw.bool), ("neg", "bool")),
    (lambda: fw.ones(2, dtype=fw.bool) - fw.ones(2, dtype=fw.bool), ("sub", "bool")),
    (lambda: fw.ones(2).masked_fill(fw.ones(2), 0.0), ("masked_fill", "bool")),
    (lambda: fw.set_default_dtype(fw.int64), ("set_default_dtype", "int64")),
    (lambda: fw.ones(2).to(dtype="float7"), ("float7",)),
    (lambda: fw.from_numpy(np.zeros(2, np.uint32)), ("uint32",)),
    (lambda: fw.nn.functional.embedding(fw.ones(2), fw.ones(3, 2)), ("embedding", "float32")),
])
def test_dtype_errors(fn, fragments):
    with _raises(DTypeError, *fragments):
        fn()
    assert issubclass(DTypeError, TypeError)


# -- indices --------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,fragments", [
    (lambda: fw.ones(3)[5], ("index 5", "dimension 0", "size 3")),
    (lambda: fw.ones(2, 3)[:, -4], ("index -4", "dimension 1", "size 3")),
    (lambda: fw.ones(3)[fw.tensor([0, 3])], ("index 3", "size 3")),
    (lambda: fw.ones(3)[fw.tensor([0.5])], ("float32",)),
    (lambda: fw.ones(3)[0, 0], ("too many indices", "[3]")),
    (lambda: fw.ones(3)[..., ..., 0], ("ellipsis",)),
    (lambda: fw.ones(3)[::-1], ("step",)),
    (lambda: fw.ones(3)["a"], ("str",)),
    (lambda: fw.ones(3).__setitem__(7, 1.0), ("index 7", "size 3")),
    (lambda: fw.ones(2, 3).select(0, 2), ("select", "index 2", "size 2")),
    (lambda: fw.ones(2, 3).gather(1, fw.ones(2, 3)), ("gather", "float32")),
])
def test_index_errors(fn, fragments):
    with _raises(FwIndexError, *fragments):
        fn()
    assert issubclass(FwIndexError, IndexError)


# -- dims and arguments ---------------------------------------------------------------------
@pytest.mark.parametrize("fn,fragments", [
    (lambda: fw.ones(2, 3).sum(dim=2), ("sum", "[-2, 1]", "2")),
    (lambda: fw.ones(2, 3).softmax(-3), ("softmax", "[-2, 1]", "-3")),
    (lambda: fw.ones(2, 3).transpose(0, 5), ("transpose", "5")),
    (lambda: fw.ones(2, 3).sum(dim=(0, 0)), ("sum", "multiple times")),
    (lambda: fw.ones(2, 3).cumsum(3), ("cumsum", "3")),
    (lambda: fw.ones(2, 3).unsqueeze(4), ("unsqueeze", "4")),
    (lambda: fw.ones(2, 3).item(), ("item", "6 elements")),
    (lambda: bool(fw.ones(2)), ("ambiguous",)),
    (lambda: fw.tensor([[1, 2], [3]]), ("tensor",)),
    (lambda: fw.ones(2, dtype=fw.int64) ** -1, ("pow", "negative")),
    (lambda: fw.ones(2).div(1, rounding_mode="round"), ("div", "rounding_mode")),
    (lambda: fw.ones(2).clamp(), ("clamp",)),
    (lambda: fw.zeros(-1), ("negative dimension", "-1")),
    (lambda: fw.arange(0, 5, 0), ("arange", "step")),
    (lambda: fw.pad(fw.ones(2), (1, 1), mode="mirror"), ("pad", "mirror")),
    (lambda: fw.ones(2).norm(p="nuc"), ("norm", "nuc")),
])
def test_argument_errors(fn, fragments):
    with _raises(ArgumentError, *fragments):
        fn()


def test_device_errors():
    with _raises(DeviceError, "tpu"):
        fw.ones(2, device="tpu")
    with _raises(DeviceError, "cpu", "meta"):
        fw.ones(2) + fw.ones(2, device="meta")


def test_integer_creation_with_requires_grad_is_refused():
    for make in (lambda: fw.ones(2, dtype=fw.int64, requires_grad=True),
                 lambda: fw.full((2,), 3, requires_grad=True),
                 lambda: fw.arange(3, requires_grad=True),
                 lambda: fw.eye(2, dtype=fw.int32, requires_grad=True)):
        with pytest.raises(AutogradError, match="floating point"):
            make()
    assert fw.zeros(2, requires_grad=True).requires_grad


@pytest.mark.parametrize("call", [
    lambda: fw.gather(fw.tensor([1.0, 2.0]), 0, fw.tensor([-1])),
    lambda: fw.gather(fw.ones(2, 2), 1, fw.tensor([[2]])),
    lambda: fw.zeros(3).scatter(0, fw.tensor([-1]), fw.tensor([5.0])),
    lambda: fw.zeros(3).scatter_add(0, fw.tensor([3]), fw.tensor([5.0])),
])
def test_gather_scatter_indices_out_of_range(call):
    """NumPy would wrap -1 to the last element (a silent wrong value) or raise its own error."""
    with pytest.raises(FwIndexError, match=r"(gather|scatter|scatter_add): index -?\d+ is out "
                                           r"of bounds for dimension \d with size \d"):
        call()


def test_boolean_mask_of_the_wrong_shape():
    x = fw.arange(24).reshape(2, 3, 4)
    with pytest.raises(FwIndexError, match=r"shape of the mask \[3\] at index 0 does not match "
                                           r"the shape of the indexed tensor \[2, 3, 4\]"):
        x[fw.tensor([True, False, True])]
    with pytest.raises(FwIndexError, match=r"mask \[3, 3\] at index 1 .* at index 2"):
        x[:, fw.ones(3, 3, dtype=fw.bool)]
    with pytest.raises(FwIndexError, match=r"mask \[1\]"):
        x[fw.tensor([True])] = 0
    assert x[:, fw.tensor([True, False, True])].shape == (2, 2, 4)


def test_random_floats_with_an_integer_dtype_and_int64_overflow_are_refused():
    for make in (lambda: fw.randn(2, dtype=fw.int64), lambda: fw.rand(2, dtype=fw.int32),
                 lambda: fw.rand_like(fw.ones(2, dtype=fw.int64)),
                 lambda: fw.randn_like(fw.ones(2, dtype=fw.bool))):
        with pytest.raises(DTypeError, match="floating point dtype"):
            make()
    with pytest.raises(ArgumentError, match="int64 range"):
        fw.tensor([2**63])
    with pytest.raises(ArgumentError, match="int64 range"):
        fw.tensor([-2**63 - 1])
    assert fw.tensor([2**63 - 1, -2**63]).tolist() == [2**63 - 1, -2**63]


@pytest.mark.parametrize("call", [lambda: fw.tensor([1]) // 0,
                                  lambda: fw.tensor([1, 2]) % fw.tensor([1, 0]),
                                  lambda: 5 // fw.tensor([0, 1]),
                                  lambda: fw.fmod(fw.tensor([3], dtype=fw.int32), 0)])
def test_integer_division_by_zero_raises(call):
    with pytest.raises(ZeroDivisionError, match="integer division by zero"):
        call()


def test_float_division_by_zero_stays_ieee():
    assert (fw.tensor([1.0]) // 0).tolist() == [float("inf")]
    assert np.isnan((fw.tensor([7.0]) % 0).item())


def test_python_integers_that_overflow_the_requested_dtype_raise():
    with pytest.raises(ArgumentError, match="300 cannot be converted to type uint8"):
        fw.tensor([1, 300], dtype=fw.uint8)
    with pytest.raises(ArgumentError, match="-1 cannot be converted to type uint8"):
        fw.tensor(-1, dtype=fw.uint8)
    with pytest.raises(ArgumentError, match="full: value 128 cannot be converted to type int8"):
        fw.full((2,), 128, dtype=fw.int8)
    with pytest.raises(ArgumentError, match="without overflow"):
        fw.zeros(2, dtype=fw.uint8).fill_(256)
    assert fw.tensor([255, 0], dtype=fw.uint8).tolist() == [255, 0]
    assert fw.tensor([1.7], dtype=fw.int64).tolist() == [1]  # floats truncate, as PyTorch


def test_shape_and_dtype_errors_are_runtime_errors_as_in_pytorch():
    with pytest.raises(RuntimeError, match="shape"):
        fw.ones(2, 3) @ fw.ones(2, 3)
    with pytest.raises(ValueError):                      # still a ValueError
        fw.ones(2, 3) + fw.ones(4)
    with pytest.raises(RuntimeError):
        fw.ones(2, 3) + fw.ones(4)
    assert issubclass(fw.DTypeError, TypeError) and issubclass(fw.DTypeError, RuntimeError)
