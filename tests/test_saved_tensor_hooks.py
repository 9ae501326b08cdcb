"""Saved-tensor hooks (fw.autograd.graph.saved_tensors_hooks, save_on_cpu,
disable_saved_tensors_hooks) and Tensor.register_post_accumulate_grad_hook."""

import gc
import weakref

import numpy as np
import pytest

import framework as fw
from framework.autograd.graph import (disable_saved_tensors_hooks, save_on_cpu,
                                      saved_tensors_hooks)


class Recorder:
    """Hooks that pack to a NumPy copy (so the node keeps no tensor) and count calls."""

    def __init__(self, scale=1.0):
        self.packed, self.unpacked, self.scale = [], 0, scale

    def pack(self, t):
        self.packed.append(tuple(t.shape))
        return (t.detach().numpy().copy(), t.dtype)

    def unpack(self, p):
        self.unpacked += 1
        arr, dtype = p
        return fw.tensor(arr * self.scale, dtype=dtype)

    def hooks(self):
        return saved_tensors_hooks(self.pack, self.unpack)


def _leaves():
    x = fw.tensor([0.3, -1.2, 2.0], dtype=fw.float64, requires_grad=True)
    w = fw.tensor([1.5, 0.5, -1.0], dtype=fw.float64, requires_grad=True)
    return x, w


def test_pack_at_forward_unpack_at_backward():
    x, w = _leaves()
    rec = Recorder()
    with rec.hooks():
        y = (x * w).exp().sum()            # mul saves x and w; exp saves its output
    assert rec.packed == [(3,), (3,), (3,)] and rec.unpacked == 0
    y.backward()
    assert rec.unpacked == 3
    xv, wv = x.detach().numpy(), w.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), wv * np.exp(xv * wv))
    np.testing.assert_allclose(w.grad.numpy(), xv * np.exp(xv * wv))


def test_unpacked_values_are_the_ones_backward_uses():
    x, w = _leaves()
    rec = Recorder(scale=2.0)              # unpack returns twice the saved value
    with rec.hooks():
        y = (x * w).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * w.detach().numpy())


def test_no_hooks_outside_the_block_and_innermost_wins():
    x, w = _leaves()
    outer, inner = Recorder(), Recorder()
    with outer.hooks():
        with inner.hooks():
            a = x * w
        b = a.exp()                        # exp saves its output
    c = b.sin()
    assert len(inner.packed) == 2 and len(outer.packed) == 1
    c.sum().backward()
    assert inner.unpacked == 2 and outer.unpacked == 1


def test_packed_object_replaces_the_reference():
    x, w = _leaves()
    rec = Recorder()
    with rec.hooks():
        h = (x * w).exp()
        y = (h * h).sum()
    data = weakref.ref(h._data)
    del h
    gc.collect()
    assert data() is None                  # the graph keeps only the NumPy copies
    y.backward()
    xv, wv = x.detach().numpy(), w.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 2 * wv * np.exp(2 * xv * wv))


def test_without_hooks_the_graph_keeps_the_tensor():  # the contrast to the test above
    x, w = _leaves()
    h = (x * w).exp()
    y = (h * h).sum()
    data = weakref.ref(h._data)
    del h
    gc.collect()
    assert data() is not None
    del y


def test_inplace_modification_of_a_saved_tensor_is_still_caught():
    x, w = _leaves()
    with Recorder().hooks():
        a = x * 1.0
        y = (a * w).sum()
    a.add_(1.0)
    with pytest.raises(fw.AutogradError, match="modified by an inplace operation"):
        y.backward()


def test_inplace_op_on_its_own_result_still_differentiates():
    x, _ = _leaves()
    rec = Recorder()
    with rec.hooks():
        y = x * 2.0
        y.sin_()                            # SinBackward needs the old y: a snapshot
        loss = y.sum()
    loss.backward()
    xv = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(2 * xv))


def test_retain_graph_unpacks_each_time_and_double_backward_works():
    x, _ = _leaves()
    rec = Recorder()
    with rec.hooks():
        y = (x * x * x).sum()
    (g,) = fw.autograd.grad(y, x, create_graph=True)
    (g2,) = fw.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(g2.numpy(), 6 * x.detach().numpy())
    assert rec.unpacked >= 4


def test_custom_function_saved_tensors_are_packed():
    class Cube(fw.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t ** 3

        @staticmethod
        def backward(ctx, g):
            (t,) = ctx.saved_tensors
            return 3 * t * t * g

    x, _ = _leaves()
    rec = Recorder()
    with rec.hooks():
        y = Cube.apply(x).sum()
    assert rec.packed == [(3,)]
    y.backward()
    assert rec.unpacked == 1
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.detach().numpy() ** 2)


def test_unpack_must_return_a_tensor():
    x, w = _leaves()
    with saved_tensors_hooks(lambda t: t, lambda p: "not a tensor"):
        y = (x * w).sum()
    with pytest.raises(TypeError, match="unpack_hook expected to be a Tensor"):
        y.backward()


def test_disable_saved_tensors_hooks():
    with disable_saved_tensors_hooks("hooks are off in this region"):
        with pytest.raises(RuntimeError, match="hooks are off in this region"):
            with saved_tensors_hooks(lambda t: t, lambda t: t):
                pass
    with saved_tensors_hooks(lambda t: t, lambda t: t):  # allowed again
        pass

    @disable_saved_tensors_hooks("not here")
    def f():
        with saved_tensors_hooks(lambda t: t, lambda t: t):
            pass

    with pytest.raises(fw.AutogradError, match="not here"):
        f()


def test_save_on_cpu_on_the_cpu():
    x, w = _leaves()
    with save_on_cpu():
        y = (x.sin() * w).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(x.detach().numpy()) * w.detach().numpy())


def test_engine_is_back_on_the_fast_path_after_the_block():
    import framework.autograd as ag
    with saved_tensors_hooks(lambda t: t, lambda t: t):
        assert ag._extras is not None
    assert ag._extras is None


def test_post_accumulate_grad_hook():
    x, w = _leaves()
    seen = []
    handle = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    pre = x.register_hook(lambda g: g * 10)      # pre-hooks still run before accumulation
    (x * w).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 10 * w.detach().numpy())
    (x * w).sum().backward()                     # sees the accumulated gradient
    np.testing.assert_allclose(seen[1], 20 * w.detach().numpy())
    fw.autograd.grad((x * w).sum(), x)           # no accumulation: no call
    assert len(seen) == 2
    handle.remove()
    pre.remove()
    (x * w).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        fw.ones(2).register_post_accumulate_grad_hook(lambda t: None)


def test_graph_node_and_gradient_edge():
    from framework.autograd.graph import Node, get_gradient_edge
    x, w = _leaves()
    y = x * w
    assert isinstance(y.grad_fn, Node) and get_gradient_edge(y) == (y.grad_fn, 0)
    assert get_gradient_edge(x) == (x, 0)
    with pytest.raises(RuntimeError, match="does not require grad"):
        get_gradient_edge(fw.ones(2))


def test_training_step_under_save_on_cpu_matches_plain():
    from framework import nn
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 3))
    x, y = fw.randn(4, 5), fw.randint(0, 3, (4,))

    def grads(ctx):
        model.zero_grad()
        with ctx:
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return [p.grad.numpy().copy() for p in model.parameters()]

    plain = grads(saved_tensors_hooks(lambda t: t, lambda t: t))
    for a, b in zip(plain, grads(save_on_cpu())):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
