"""Memory formats: ``fw.channels_last`` and friends give real strided layouts; values,
gradients, training and ``fw.compile`` do not depend on the layout."""

import io

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError, ShapeError

NHWC = (60, 1, 15, 3)          # strides of a (2, 3, 4, 5) tensor laid out channels-last
ROW_MAJOR = (60, 20, 5, 1)


def _cl(shape=(2, 3, 4, 5)):
    return fw.randn(*shape).to(memory_format=fw.channels_last)


def test_to_channels_last_lays_out_channels_innermost_with_the_same_values():
    x = fw.randn(2, 3, 4, 5)
    y = x.to(memory_format=fw.channels_last)
    assert y.shape == (2, 3, 4, 5) and y.stride() == NHWC
    assert y.is_contiguous(memory_format=fw.channels_last) and not y.is_contiguous()
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    # the memory really is NHWC: its permuted view is row-major
    assert y.permute(0, 2, 3, 1).is_contiguous()
    assert y.to(memory_format=fw.channels_last) is y
    assert y.contiguous().stride() == ROW_MAJOR
    assert y.contiguous(memory_format=fw.contiguous_format).stride() == ROW_MAJOR


def test_channels_last_3d():
    x = fw.randn(2, 3, 2, 4, 5)
    y = x.contiguous(memory_format=fw.channels_last_3d)
    assert y.stride() == (120, 1, 60, 15, 3)
    assert y.is_contiguous(memory_format=fw.channels_last_3d)
    np.testing.assert_array_equal(y.numpy(), x.numpy())


def test_preserve_format_keeps_channels_last_through_clone_like_and_casts():
    y = _cl()
    assert y.clone().stride() == NHWC
    assert y.clone(memory_format=fw.contiguous_format).stride() == ROW_MAJOR
    for make in (fw.empty_like, fw.zeros_like, fw.ones_like, fw.rand_like, fw.randn_like):
        assert make(y).stride() == NHWC, make.__name__
        assert make(y, memory_format=fw.contiguous_format).stride() == ROW_MAJOR
    assert fw.full_like(y, 2.0).stride() == NHWC
    assert y.double().stride() == NHWC and y.to(fw.float16).stride() == NHWC
    assert y.to(fw.float64, copy=True).stride() == NHWC
    assert (y + 1).stride() == NHWC               # NumPy keeps the operands' order
    assert fw.empty(2, 3, 4, 5, memory_format=fw.channels_last).stride() == NHWC
    assert fw.zeros_like(fw.randn(2, 3, 4, 5)).stride() == ROW_MAJOR


def test_ambiguous_layouts_count_as_row_major():
    # one channel, or 1x1 planes: dense in both orders, as in PyTorch
    for shape in ((2, 1, 4, 5), (2, 3, 1, 1)):
        y = fw.randn(*shape).to(memory_format=fw.channels_last)
        assert y.is_contiguous() and y.is_contiguous(memory_format=fw.channels_last)
        assert fw.zeros_like(y).is_contiguous()


def test_bad_memory_format_arguments_are_clear_errors():
    with pytest.raises(ShapeError, match="rank 4 tensor to use channels_last"):
        fw.randn(2, 3).contiguous(memory_format=fw.channels_last)
    with pytest.raises(ShapeError, match="rank 5 tensor to use channels_last_3d"):
        fw.randn(2, 3, 4, 5).to(memory_format=fw.channels_last_3d)
    with pytest.raises(ArgumentError, match="memory_format must be"):
        fw.randn(2, 3, 4, 5).to(memory_format="channels_last")
    with pytest.raises(ArgumentError, match="preserve_format"):
        fw.randn(2, 3, 4, 5).is_contiguous(memory_format=fw.preserve_format)
    assert repr(fw.channels_last) == "framework.channels_last"
    assert isinstance(fw.channels_last, fw.memory_format)


def test_conversion_is_differentiable():
    x = fw.randn(2, 3, 4, 5, requires_grad=True)
    w = fw.randn(2, 3, 4, 5)
    (x.to(memory_format=fw.channels_last) * w).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), w.numpy())


def _model():
    fw.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))


def _train(model, x, y, steps=4, compiled=False):
    opt = fw.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    fn = fw.compile(step) if compiled else step
    return [fn(x, y).item() for _ in range(steps)], fn


def test_module_to_channels_last_trains_like_the_row_major_model():
    fw.manual_seed(1)
    x, y = fw.randn(4, 3, 8, 8), fw.randint(0, 5, (4,))
    ref = _model()
    losses_ref, _ = _train(ref, x, y)
    m = _model()
    weight = m[0].weight
    assert m.to(memory_format=fw.channels_last) is m
    assert m[0].weight is weight                    # the Parameter object stays
    assert weight.stride() == (27, 1, 9, 3) and m[5].weight.is_contiguous()  # 4-D only
    losses, _ = _train(m, x.to(memory_format=fw.channels_last), y)
    np.testing.assert_allclose(losses, losses_ref, rtol=1e-5)
    assert losses[-1] < losses[0]
    for (n, a), b in zip(m.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=n)
    assert m[0].weight.is_contiguous(memory_format=fw.channels_last)  # updated in place


def test_compiled_step_on_channels_last_matches_eager():
    fw.manual_seed(2)
    x, y = fw.randn(4, 3, 8, 8).to(memory_format=fw.channels_last), fw.randint(0, 5, (4,))
    eager, _ = _train(_model().to(memory_format=fw.channels_last), x, y)
    m = _model().to(memory_format=fw.channels_last)
    compiled, fn = _train(m, x, y, compiled=True)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)
    st = fn.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0 and not st["graph_breaks"], st


def test_to_memory_format_inside_a_compiled_function():
    def f(x):
        return x.to(memory_format=fw.channels_last).relu() * 2

    x = fw.randn(2, 3, 4, 5)
    np.testing.assert_allclose(fw.compile(f)(x).numpy(), f(x).numpy())


def test_channels_last_state_dict_round_trips():
    m = _model().to(memory_format=fw.channels_last)
    buf = io.BytesIO()
    fw.save(m.state_dict(), buf)
    buf.seek(0)
    fresh = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    fresh.load_state_dict(fw.load(buf))
    x = fw.randn(2, 3, 8, 8)
    m.eval(), fresh.eval()
    np.testing.assert_allclose(fresh(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-6)


def test_layout_checks_do_not_break_a_dynamic_capture():
    # .to() on a 4-D tensor reads its layout (preserve_format); with symbolic sizes that
    # must not fail the capture (it fell back to static shapes, recompiling per size)
    def f(x):
        return (x.to(fw.float64) * 2).sum((2, 3))

    cf = fw.compile(f, mode="always")
    for n in (4, 5, 6, 7):                       # static, then dynamic for every size
        x = fw.randn(2, 3, n, n + 10)
        np.testing.assert_allclose(cf(x).numpy(), f(x).numpy())
    assert cf.stats()["captures"] == 2, cf.stats()
