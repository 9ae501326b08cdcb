"""PyTorch semantics that are easy to get wrong: integer division by zero in every rounding
mode, checks on assigning ``.grad``, and inference tensors (``inference_mode``)."""

import numpy as np
import pytest

import framework as fw
from framework.errors import FrameworkError


def _framework_error(info, *fragments):
    assert isinstance(info.value, FrameworkError), type(info.value)
    for f in fragments:
        assert f in str(info.value), f"{f!r} not in {str(info.value)!r}"


# -- integer division by zero -------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda: fw.div(fw.tensor([5, -3]), fw.tensor([0, 0]), rounding_mode="trunc"),
    lambda: fw.div(fw.tensor([5, -3]), fw.tensor([1, 0]), rounding_mode="trunc"),
    lambda: fw.div(fw.tensor([5], dtype=fw.int32), 0, rounding_mode="trunc"),
    lambda: fw.div(7, fw.tensor([0]), rounding_mode="trunc"),
    lambda: fw.tensor([5]).div(0, rounding_mode="trunc"),
    lambda: fw.tensor([5]).div_(0, rounding_mode="trunc"),
    lambda: fw.tensor([5], dtype=fw.uint8).div_(fw.tensor([0], dtype=fw.uint8),
                                                 rounding_mode="trunc"),
])
def test_integer_trunc_division_by_zero_raises(call):
    with pytest.raises(ZeroDivisionError, match="div: integer division by zero") as info:
        call()
    _framework_error(info)


@pytest.mark.parametrize("call,op", [
    (lambda: fw.div(fw.tensor([5]), fw.tensor([0]), rounding_mode="floor"), "floor_divide"),
    (lambda: fw.tensor([5]) // 0, "floor_divide"),
    (lambda: fw.tensor([5]) % 0, "remainder"),
    (lambda: fw.fmod(fw.tensor([5]), 0), "fmod"),
    (lambda: fw.fmod(fw.tensor([5]), fw.tensor([0])), "fmod"),
    (lambda: fw.tensor([5]).fmod_(0), "fmod"),
    (lambda: fw.tensor([5]).remainder_(fw.tensor([0])), "remainder"),
    (lambda: fw.tensor([5]).floor_divide_(0), "floor_divide"),
])
def test_other_integer_divisions_by_zero_are_framework_errors(call, op):
    with pytest.raises(ZeroDivisionError, match=f"{op}: integer division by zero") as info:
        call()
    _framework_error(info)


def test_integer_trunc_division_values():
    a = fw.tensor([7, -7, 7, -7, 0, 6, -6])
    b = fw.tensor([2, 2, -2, -2, 3, 3, -4])
    q = fw.div(a, b, rounding_mode="trunc")
    assert q.dtype is fw.int64
    assert q.tolist() == [3, -3, -3, 3, 0, 2, 1]
    # exact for int64 values that a float64 cannot hold
    big = fw.tensor([2**62 + 1, -(2**62 + 3)])
    assert fw.div(big, 1, rounding_mode="trunc").tolist() == [2**62 + 1, -(2**62 + 3)]
    assert fw.div(big, fw.tensor([2, 2]), rounding_mode="trunc").tolist() == \
        [2**61, -(2**61 + 1)]
    x = fw.tensor([9, -9], dtype=fw.int32)
    x.div_(4, rounding_mode="trunc")
    assert x.dtype is fw.int32 and x.tolist() == [2, -2]
    assert fw.div(fw.tensor([200], dtype=fw.uint8), 7, rounding_mode="trunc").tolist() == [28]


def test_float_trunc_division_by_zero_stays_ieee():
    q = fw.div(fw.tensor([1.0, -1.0, 0.0]), 0, rounding_mode="trunc")
    assert q.tolist()[:2] == [float("inf"), float("-inf")] and np.isnan(q.tolist()[2])
    assert fw.div(fw.tensor([5]), 0.0, rounding_mode="trunc").tolist() == [float("inf")]


# -- assigning .grad ----------------------------------------------------------------------
def test_grad_assignment_shape_mismatch_raises():
    x = fw.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="assigned grad has data of a different size") as info:
        x.grad = fw.ones(4)
    _framework_error(info, "[4]", "[3]")
    assert x.grad is None
    with pytest.raises(RuntimeError, match="different size"):
        x.grad = fw.ones(1, 3)


def test_grad_assignment_dtype_mismatch_raises():
    x = fw.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="assigned grad has data of a different type") as info:
        x.grad = fw.ones(3, dtype=fw.float64)
    _framework_error(info, "float64", "float32")
    with pytest.raises(RuntimeError, match="different type"):
        x.grad = fw.ones(3, dtype=fw.int64)


def test_grad_assignment_device_mismatch_raises():
    x = fw.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError,
                       match="assigned grad has data located on a different device") as info:
        x.grad = fw.ones(3, device="meta")
    _framework_error(info, "meta", "cpu")


def test_grad_assignment_of_a_non_tensor_raises_type_error():
    x = fw.ones(3, requires_grad=True)
    for bad in (np.ones(3, dtype=np.float32), [1.0, 1.0, 1.0], 1.0):
        with pytest.raises(TypeError, match="assigned grad expected to be a Tensor or None") \
                as info:
            x.grad = bad
        _framework_error(info, type(bad).__name__)
    with pytest.raises(RuntimeError, match="can't assign Variable as its own grad"):
        x.grad = x


def test_grad_assignment_that_fits_and_none_work():
    x = fw.ones(3, requires_grad=True)
    g = fw.tensor([1.0, 2.0, 3.0])
    x.grad = g
    assert x.grad is g
    x.grad = None
    assert x.grad is None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    (x * 2).sum().backward()
    assert x.grad.tolist() == [4.0, 4.0, 4.0]
    p = fw.nn.Parameter(fw.ones(2, 2))
    p.grad = fw.zeros(2, 2)
    opt = fw.optim.SGD([p], lr=0.5)
    p.grad = fw.ones(2, 2)
    opt.step()
    assert p.tolist() == [[0.5, 0.5], [0.5, 0.5]]
    opt.zero_grad()
    assert p.grad is None


def test_grad_follows_module_dtype_conversion():
    lin = fw.nn.Linear(2, 2)
    lin(fw.ones(1, 2)).sum().backward()
    lin.double()
    assert lin.weight.dtype is fw.float64 and lin.weight.grad.dtype is fw.float64


# -- inference tensors --------------------------------------------------------------------
_SAVED_MSG = ("Inference tensors cannot be saved for backward. To work around you can make a "
              "clone to get a normal tensor and use it in autograd.")
_INPLACE_MSG = ("Inplace update to inference tensor outside InferenceMode is not allowed.You "
                "can make a clone to get a normal tensor before doing inplace update.")
_REQUIRES_GRAD_MSG = ("Setting requires_grad=True on inference tensor outside InferenceMode is "
                      "not allowed.")


def _inference_ones(*shape):
    with fw.inference_mode():
        return fw.ones(*shape)


def test_tensors_made_in_inference_mode_are_inference_tensors():
    x = fw.ones(3)
    with fw.inference_mode():
        a = fw.ones(3)
        b = x * 2
        c = fw.tensor([1.0, 2.0])
        assert a.is_inference() and b.is_inference() and c.is_inference()
        assert not x.is_inference()
        assert not x.view(3).is_inference()  # a view of a normal tensor stays normal
        assert a.view(3).is_inference()
        with fw.inference_mode(False):
            assert not fw.ones(1).is_inference()
    assert not x.is_inference() and not fw.ones(3).is_inference()
    with fw.no_grad():
        assert not fw.ones(3).is_inference()
        assert not (x * 2).is_inference()

    @fw.inference_mode()
    def make():
        return fw.zeros(2)
    assert make().is_inference()
    assert fw.is_inference(make()) and not fw.is_inference(x)  # torch.is_inference
    with pytest.raises(TypeError, match="is_inference"):
        fw.is_inference([1.0])


def test_inference_tensor_saved_for_backward_raises():
    a = _inference_ones(3)
    w = fw.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward") \
            as info:
        (a * w).sum()
    _framework_error(info, _SAVED_MSG, "mul")
    with pytest.raises(RuntimeError, match="cannot be saved for backward"):
        w * a
    with pytest.raises(RuntimeError, match="cannot be saved for backward"):
        fw.matmul(a, w)
    with pytest.raises(RuntimeError, match="cannot be saved for backward"):
        w / a


def test_inference_tensor_not_saved_for_backward_works():
    """As in PyTorch, only saving an inference tensor is an error: add's backward does not
    read its inputs, so ``a + w`` records history and differentiates."""
    a = _inference_ones(3)
    w = fw.ones(3, requires_grad=True)
    y = (a + w).sum()
    y.backward()
    assert w.grad.tolist() == [1.0, 1.0, 1.0]
    # a normal clone works everywhere
    (a.clone() * w).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]


def test_inference_tensor_without_grad_gives_normal_tensors():
    a = _inference_ones(3)
    b = a + 1
    assert b.tolist() == [2.0, 2.0, 2.0] and not b.is_inference()
    assert not (a * a).is_inference()
    assert not a.clone().is_inference()
    assert a.clone().requires_grad_().requires_grad
    v = a[1:]
    assert v.is_inference() and a.reshape(3, 1).is_inference() and a.detach().is_inference()
    with fw.no_grad():
        assert not (a * 2).is_inference()
    w = fw.ones(3, requires_grad=True)
    with fw.no_grad():
        assert (a * w).tolist() == [1.0, 1.0, 1.0]


def test_requires_grad_on_inference_tensor_outside_mode_raises():
    a = _inference_ones(3)
    with pytest.raises(RuntimeError, match="Setting requires_grad=True on inference tensor") \
            as info:
        a.requires_grad_()
    _framework_error(info, _REQUIRES_GRAD_MSG)
    assert not a.requires_grad
    a.requires_grad_(False)  # turning it off is fine
    with pytest.raises(RuntimeError, match="on inference tensor outside InferenceMode"):
        fw.nn.Parameter(a)
    with fw.inference_mode():
        b = fw.ones(2)
        b.requires_grad_()  # inside the mode it is allowed
        assert b.requires_grad


def test_inplace_on_inference_tensor_outside_mode_raises():
    a = _inference_ones(3)
    for update in (lambda: a.add_(1), lambda: a.mul_(2), lambda: a.zero_(),
                   lambda: a.fill_(3.0), lambda: a.copy_(fw.zeros(3)),
                   lambda: a[0:2].add_(1), lambda: a.__setitem__(0, 5.0),
                   lambda: a.__iadd__(1)):
        with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside "
                                               "InferenceMode is not allowed") as info:
            update()
        _framework_error(info, _INPLACE_MSG)
    assert a.tolist() == [1.0, 1.0, 1.0]
    with fw.no_grad():
        with pytest.raises(RuntimeError, match="Inplace update to inference tensor"):
            a.add_(1)
    with fw.inference_mode():
        a.add_(1)  # inside the mode it is allowed
        x = fw.ones(2)
        x.mul_(3)
    assert a.tolist() == [2.0, 2.0, 2.0] and x.tolist() == [3.0, 3.0]
    # updating a normal tensor in place inside inference mode is allowed too
    n = fw.ones(2)
    with fw.inference_mode():
        n.add_(1)
    assert n.tolist() == [2.0, 2.0] and not n.is_inference()


def test_model_evaluated_in_inference_mode():
    model = fw.nn.Sequential(fw.nn.Linear(4, 3), fw.nn.ReLU(), fw.nn.Linear(3, 2))
    x = fw.randn(5, 4)
    with fw.inference_mode():
        y = model(x)
    assert y.is_inference() and not y.requires_grad
    assert not model[0].weight.is_inference()
    # the parameters still train after an inference pass
    loss = model(x).sum()
    loss.backward()
    assert model[0].weight.grad is not None
    # using the inference output as a constant in a graph that saves it raises
    w = fw.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="cannot be saved for backward"):
        (y * w).sum()
    (y.clone() * w).sum().backward()


def test_inference_flag_is_per_thread_and_survives_exceptions():
    import sys
    import threading

    tensor_module = sys.modules["framework.tensor"]
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def other_thread():
        inside.wait()
        seen["other"] = fw.ones(2).is_inference()
        done.set()

    th = threading.Thread(target=other_thread)
    th.start()
    with fw.inference_mode():
        inside.set()
        done.wait()
        seen["here"] = fw.ones(2).is_inference()
    th.join()
    assert seen == {"other": False, "here": True}
    with pytest.raises(KeyError):
        with fw.inference_mode():
            raise KeyError("x")
    assert not fw.is_inference_mode_enabled() and not fw.ones(1).is_inference()
    assert tensor_module._inference_blocks == 0


def test_backward_gradient_of_another_dtype_is_cast_to_the_output_dtype():
    """The leaf's .grad keeps the leaf's dtype (PyTorch's engine casts the given gradient)."""
    x = fw.ones(3, requires_grad=True)
    x.backward(fw.ones(3, dtype=fw.float64))
    assert x.grad.dtype is fw.float32
    y = fw.ones(3, requires_grad=True)
    (y * 2).backward(fw.full((3,), 2.0, dtype=fw.float64))
    assert y.grad.dtype is fw.float32 and y.grad.tolist() == [4.0, 4.0, 4.0]


# -- 0-d tensors in gather / scatter (one element along dim 0, as in PyTorch) ----------------
def test_zero_dim_gather_scatter_and_the_gather_gradient():
    x = fw.tensor(3.0, requires_grad=True)
    (x.gather(0, fw.tensor(0)) * 2).backward()
    assert float(x.grad) == 2.0
    assert float(fw.zeros(()).scatter_add(0, fw.tensor(0), fw.tensor(5.0))) == 5.0
    assert float(fw.ones(()).scatter(0, fw.tensor(0), 7.0)) == 7.0
    with pytest.raises(fw.FwIndexError):
        fw.zeros(()).scatter(0, fw.tensor(1), 7.0)


def test_softmax_over_an_empty_dim_and_attention_over_no_keys():
    """softmax/log_softmax over a dim of size 0 give an empty result, as PyTorch (the CPU
    kernel used to fail with NumPy's "zero-size array" error), so the math attention path
    over zero keys gives zeros, as the fused cuda kernel does."""
    assert fw.softmax(fw.zeros(2, 0), -1).shape == (2, 0)
    assert fw.log_softmax(fw.zeros(0, 3, 0), 2).shape == (0, 3, 0)
    q = fw.randn(1, 2, 3, 4, requires_grad=True)
    out = fw.nn.functional.scaled_dot_product_attention(q, fw.randn(1, 2, 0, 4),
                                                        fw.randn(1, 2, 0, 5))
    assert out.shape == (1, 2, 3, 5) and out.abs().sum().item() == 0.0
    out.sum().backward()
    assert q.grad.abs().sum().item() == 0.0
