"""Activation checkpointing (``framework.utils.checkpoint``, as ``torch.utils.checkpoint``):
gradients equal to the plain computation (inputs, closed-over parameters, dropout with the
RNG restored), the function re-run in backward, fewer activations held, the use_reentrant
rules, checkpoint_sequential and a compiled training step."""

import gc
from collections import OrderedDict
import tracemalloc
import warnings
import weakref

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.errors import AutogradError
from framework.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential


def ck(fn, *args, **kwargs):
    return checkpoint(fn, *args, use_reentrant=False, **kwargs)


def _mlp(depth=3, width=6, dropout=0.0, seed=0):
    fw.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Tanh()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _grads(tensors):
    return [None if t.grad is None else t.grad.numpy().copy() for t in tensors]


def _assert_same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert (u is None) == (v is None)
        if u is not None:
            np.testing.assert_array_equal(u, v)


def _run(model, x, use_ckpt, seed=1, **kw):
    """Gradients of the inputs and parameters, and the next draw of the RNG stream."""
    fw.manual_seed(seed)
    model.zero_grad()
    x.grad = None
    y = checkpoint(model, x, use_reentrant=False, **kw) if use_ckpt else model(x)
    (y * y).sum().backward()
    return _grads([x, *model.parameters()]), fw.rand(5).numpy()


def test_gradients_equal_plain_for_inputs_and_closed_over_parameters():
    model = _mlp()
    x = fw.randn(4, 6, requires_grad=True)
    plain, _ = _run(model, x, False)
    ckpt, _ = _run(model, x, True)
    _assert_same(plain, ckpt)
    y = ck(model, x)
    assert y.grad_fn.name() == "CheckpointBackward"
    # one node stands for the region: its edges are the input and the six parameters
    assert len(y.grad_fn.next_functions) == 7


def test_the_function_runs_again_in_backward_and_intermediates_are_not_kept():
    calls, inner = [], []
    w = fw.randn(3, 3, requires_grad=True)

    def f(x):
        calls.append(1)
        h = (x @ w).tanh()
        inner.append(weakref.ref(h))
        return h.sum(1)

    x = fw.randn(2, 3, requires_grad=True)
    y = ck(f, x)
    assert len(calls) == 1
    gc.collect()
    assert inner[0]() is None  # the forward's activation was not saved
    y.sum().backward()
    assert len(calls) == 2
    expected = (1 - (x @ w).tanh() ** 2).detach()
    np.testing.assert_allclose(w.grad.numpy(), (x.detach().T @ expected).numpy(), rtol=1e-6)


def test_dropout_masks_are_reproduced_and_the_rng_stream_is_left_alone():
    model = _mlp(dropout=0.5)
    x = fw.randn(8, 6, requires_grad=True)
    plain, next_plain = _run(model, x, False)
    ckpt, next_ckpt = _run(model, x, True)
    _assert_same(plain, ckpt)
    np.testing.assert_array_equal(next_plain, next_ckpt)  # recompute forked the stream
    loose, _ = _run(model, x, True, preserve_rng_state=False)
    assert any(not np.array_equal(u, v) for u, v in zip(plain, loose))


def test_kwargs_and_non_tensor_arguments():
    w = fw.randn(3, requires_grad=True)

    def f(x, scale, *, mode, bias=None):
        out = x * w * scale
        if mode == "shift":
            out = out + bias
        return out.sum()

    x = fw.randn(3, requires_grad=True)
    b = fw.randn(3, requires_grad=True)
    f(x, 2.0, mode="shift", bias=b).backward()
    plain = _grads([x, w, b])
    for t in (x, w, b):
        t.grad = None
    ck(f, x, 2.0, mode="shift", bias=b).backward()
    _assert_same(plain, _grads([x, w, b]))


@pytest.mark.parametrize("reentrant", [False, True])
def test_inputs_without_requires_grad_still_give_parameter_gradients(reentrant):
    model = _mlp()
    x = fw.randn(4, 6)  # a data batch: no grad
    model(x).sum().backward()
    plain = _grads(model.parameters())
    model.zero_grad()
    out = checkpoint(model, x, use_reentrant=reentrant)
    assert out.requires_grad
    out.sum().backward()
    _assert_same(plain, _grads(model.parameters()))


def test_tuple_and_nested_outputs_with_an_unused_output():
    w = fw.randn(4, requires_grad=True)

    def f(x):
        return (x * w).sin(), OrderedDict(b=(x + w).exp(), idx=x.argmax()), 7

    x = fw.randn(4, requires_grad=True)
    a, _, _ = f(x)
    a.sum().backward()
    plain = _grads([x, w])
    x.grad = w.grad = None
    a, rest, seven = ck(f, x)
    assert seven == 7 and isinstance(rest, OrderedDict)
    assert rest["idx"].dtype == fw.int64 and not rest["idx"].requires_grad
    assert rest["b"].grad_fn is a.grad_fn  # one node for the region
    a.sum().backward()  # rest["b"] unused
    _assert_same(plain, _grads([x, w]))


def test_autograd_grad_and_backward_inputs():
    model = _mlp()
    x = fw.randn(4, 6, requires_grad=True)
    params = list(model.parameters())
    plain = fw.autograd.grad(model(x).sum(), [x, params[0]])
    got = fw.autograd.grad(ck(model, x).sum(), [x, params[0]])
    for u, v in zip(plain, got):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert all(p.grad is None for p in params) and x.grad is None
    ck(model, x).sum().backward(inputs=[params[2]])
    np.testing.assert_array_equal(params[2].grad.numpy(),
                                  fw.autograd.grad(model(x).sum(), params[2])[0].numpy())
    assert x.grad is None and params[0].grad is None


def test_tensors_from_the_enclosing_graph_get_their_gradient_once():
    a = fw.tensor([1.0, 2.0, 3.0], dtype=fw.float64, requires_grad=True)
    z = fw.tensor([0.5, -0.5, 2.0], dtype=fw.float64, requires_grad=True)
    h = a * a  # closed over by the checkpointed function, recorded outside it
    (ck(lambda t: t * h, z).sum() + h.sum()).backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * a.detach().numpy() * (z.detach().numpy() + 1))
    np.testing.assert_allclose(z.grad.numpy(), h.detach().numpy())


def test_create_graph_and_nested_checkpoints():
    x = fw.tensor([0.3, -1.2, 2.0], dtype=fw.float64, requires_grad=True)

    def f(t):
        return (t.sin() * t).sum()

    g1, = fw.autograd.grad(f(x), x, create_graph=True)
    g2, = fw.autograd.grad(ck(f, x), x, create_graph=True)
    np.testing.assert_array_equal(g1.detach().numpy(), g2.detach().numpy())
    np.testing.assert_allclose(fw.autograd.grad(g2.sum(), x)[0].numpy(),
                               fw.autograd.grad(g1.sum(), x)[0].numpy(), rtol=1e-12)
    calls = []

    def inner(t):
        calls.append("inner")
        return t.exp()

    def outer(t):
        return ck(inner, t * 2).sum() * 3

    ck(outer, x).backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.exp(2 * x.detach().numpy()))
    assert len(calls) == 3  # forward, the outer recompute, the inner recompute


def test_retain_graph_recomputes_each_time_and_a_freed_graph_raises():
    calls = []
    x = fw.randn(3, requires_grad=True)

    def f(t):
        calls.append(1)
        return t.exp().sum()

    y = ck(f, x)
    y.backward(retain_graph=True)
    y.backward()
    assert len(calls) == 3
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.exp().detach().numpy(), rtol=1e-6)
    with pytest.raises(AutogradError, match="second time"):
        y.backward()


def test_an_input_modified_in_place_after_forward_is_an_error():
    x = fw.randn(3)
    w = fw.randn(3, requires_grad=True)
    y = ck(lambda t: (t * w).sum(), x)
    x.add_(1.0)
    with pytest.raises(AutogradError, match="modified by an inplace operation"):
        y.backward()


def test_a_recomputation_that_differs_is_reported():
    state = {"n": 3}
    x = fw.randn(5, requires_grad=True)

    def f(t):
        return t[:state["n"]].exp()

    y = ck(f, x, debug=True)
    state["n"] = 2
    with pytest.raises(CheckpointError, match="ops recorded by the recomputation"):
        y.sum().backward()
    with pytest.raises(ValueError, match="determinism_check"):
        ck(f, x, determinism_check="strict")


def test_autocast_is_restored_for_the_recomputation():
    model = _mlp()
    x = fw.randn(4, 6, requires_grad=True)
    grads = []
    for use_ckpt in (False, True):
        model.zero_grad()
        x.grad = None
        with fw.autocast("cpu", dtype=fw.bfloat16):
            y = ck(model, x) if use_ckpt else model(x)
        assert y.dtype == fw.bfloat16
        y.float().sum().backward()  # backward (and the recompute) outside the region
        grads.append(_grads([x, *model.parameters()]))
    _assert_same(*grads)


def test_context_fn_wraps_the_forward_and_the_recomputation():
    log = []

    class Ctx:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            log.append(self.name)

        def __exit__(self, *exc):
            return False

    x = fw.randn(3, requires_grad=True)
    y = ck(lambda t: t.exp().sum(), x, context_fn=lambda: (Ctx("fwd"), Ctx("recompute")))
    assert log == ["fwd"]
    y.backward()
    assert log == ["fwd", "recompute"]


def test_use_reentrant_must_be_passed_explicitly():
    x = fw.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed"):
        checkpoint(fw.exp, x)
    with pytest.warns(UserWarning, match="use_reentrant"):
        checkpoint_sequential([fw.exp], 1, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint(fw.exp, x, use_reentrant=True)
        checkpoint(fw.exp, x, use_reentrant=False)
    # PyTorch's rules for the reentrant variant (the default when the flag is missing)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(lambda t, scale: t * scale, x, use_reentrant=True, scale=2.0)
    with pytest.raises(ValueError, match="context_fn"):
        checkpoint(fw.exp, x, use_reentrant=True, debug=True)
    with pytest.raises(ValueError, match="Unexpected keyword arguments"):
        with pytest.warns(UserWarning):
            checkpoint(lambda t, scale: t * scale, x, scale=2.0)


def test_decorator_form_and_no_grad():
    calls = []

    @checkpoint(use_reentrant=False)
    def f(t):
        calls.append(1)
        return t.exp().sum()

    x = fw.randn(3, requires_grad=True)
    f(x).backward()
    assert f.__name__ == "f" and len(calls) == 2
    with fw.no_grad():
        y = ck(f, x)
    assert y.grad_fn is None and len(calls) == 3


def test_checkpoint_sequential_segments():
    model = _mlp(depth=3)  # 6 modules
    x = fw.randn(4, 6, requires_grad=True)
    model(x).sum().backward()
    plain = _grads([x, *model.parameters()])
    for segments in (1, 2, 3, 6):
        model.zero_grad()
        x.grad = None
        out = checkpoint_sequential(model, segments, x, use_reentrant=False)
        nodes, node = 0, out.grad_fn
        while node is not None:  # count CheckpointBackward nodes down the chain
            nodes += node.name() == "CheckpointBackward"
            edges = [e for e, _ in node.next_functions
                     if e is not None and not isinstance(e, fw.autograd.AccumulateGrad)]
            node = edges[0] if edges else None
        assert nodes == segments - 1  # the last segment is not checkpointed
        out.sum().backward()
        _assert_same(plain, _grads([x, *model.parameters()]))
    out = checkpoint_sequential(list(model.children()), 2, x, use_reentrant=False,
                                preserve_rng_state=False)
    assert out.shape == (4, 6)
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(model, 7, x, use_reentrant=False)
    with pytest.raises(ValueError, match="Unexpected keyword arguments"):
        checkpoint_sequential(model, 2, x, use_reentrant=False, debug=True)


def _traced(fn):
    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        return tracemalloc.get_traced_memory(), out
    finally:
        tracemalloc.stop()


def test_fewer_activations_are_held_and_the_peak_drops():
    depth, batch, width = 8, 128, 128  # one activation: 64 KiB
    fw.manual_seed(0)
    layers = [nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width),
                            nn.ReLU()) for _ in range(depth)]
    for p in (p for layer in layers for p in layer.parameters()):
        p.requires_grad_(False)  # weight gradients would dominate the peak
    x = fw.randn(batch, width, requires_grad=True)

    def step(use_ckpt, backward):
        h = x
        for layer in layers:
            h = ck(layer, h) if use_ckpt else layer(h)
        loss = h.sum()
        if backward:
            loss.backward()
        return loss

    (held_plain, _), loss_plain = _traced(lambda: step(False, False))
    (held_ckpt, _), loss_ckpt = _traced(lambda: step(True, False))
    # held by the graph after forward: at least four activations per block (the linear
    # and relu outputs), against the block's input only
    assert held_ckpt < 0.5 * held_plain, (held_ckpt, held_plain)
    del loss_plain, loss_ckpt
    (_, peak_plain), _ = _traced(lambda: step(False, True))
    (_, peak_ckpt), _ = _traced(lambda: step(True, True))
    assert peak_ckpt < 0.6 * peak_plain, (peak_ckpt, peak_plain)  # about 0.35 here


def test_compiled_training_step_equals_eager():
    def train(compiled, use_ckpt, steps=3):
        model = _mlp(depth=3)
        head = nn.Linear(6, 2)
        blocks = [model[i:i + 2] for i in range(0, 6, 2)]
        params = list(model.parameters()) + list(head.parameters())
        opt = optim.SGD(params, lr=0.1)

        def step(x, y):
            h = x
            for b in blocks:
                h = ck(b, h) if use_ckpt else b(h)
            loss = ((head(h) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        fn = fw.compile(step, fullgraph=True) if compiled else step
        fw.manual_seed(1)
        x, y = fw.randn(4, 6), fw.randn(4, 2)
        losses = [float(fn(x, y)) for _ in range(steps)]
        return losses, [p.detach().numpy().copy() for p in params]

    plain = train(False, False)
    eager = train(False, True)
    compiled = train(True, True)
    assert plain[0] == eager[0]
    _assert_same(plain[1], eager[1])
    np.testing.assert_allclose(compiled[0], plain[0], rtol=1e-5)
    for u, v in zip(compiled[1], plain[1]):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_import_paths():
    import framework.utils.checkpoint as mod
    assert fw.utils.checkpoint is mod and mod.checkpoint is checkpoint
