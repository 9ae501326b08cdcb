"""Module attributes a forward hook sets (pruning's and legacy weight_norm's ``weight``):
a capture must not leave its data-less traced tensors behind, and compiled calls set them
as eager calls do."""

import warnings

import numpy as np

import framework as fw
from framework import nn
from framework.nn.utils import prune


def _models():
    fw.manual_seed(0)
    pruned = nn.Linear(3, 2)
    prune.l1_unstructured(pruned, "weight", amount=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        normed = nn.utils.weight_norm(nn.Linear(2, 2))
    return pruned, normed


def _train(compiled, steps=3):
    pruned, normed = _models()
    opt = fw.optim.SGD(list(pruned.parameters()) + list(normed.parameters()), lr=0.1)
    x = fw.randn(4, 3)

    def step():
        opt.zero_grad()
        loss = normed(pruned(x)).square().sum()
        loss.backward()
        opt.step()
        return loss
    fn = fw.compile(step, mode="always") if compiled else step
    for _ in range(steps):
        fn()
    return pruned.weight, normed.weight


def test_compiled_steps_set_hook_attributes_as_eager_steps_do():
    eager, compiled = _train(False), _train(True)
    for e, c in zip(eager, compiled):
        assert c._data is not None
        np.testing.assert_allclose(c.detach().numpy(), e.detach().numpy(), rtol=1e-6)


def test_export_and_transforms_leave_no_traced_attribute_behind():
    pruned, _ = _models()
    before = pruned.weight
    fw.onnx.export(pruned, (fw.randn(2, 3),))
    assert pruned.weight is before and pruned.weight._data is not None
    fw.grad(lambda t: pruned(t).sum())(fw.randn(2, 3))
    assert pruned.weight._data is not None


class _CastingCache(nn.Module):
    """litgpt's KVCache: ``self.k = self.k.to(v.dtype)`` rebinds a registered buffer
    inside forward, then writes into it in place."""

    def __init__(self):
        super().__init__()
        self.register_buffer("k", fw.zeros(2, 3, dtype=fw.bfloat16), persistent=False)

    def forward(self, pos, v):
        if self.k.dtype != v.dtype:
            self.k = self.k.to(v.dtype)
        return self.k.index_copy_(0, pos, v)


def _cache_run(compiled):
    fw.manual_seed(0)
    lin, cache = nn.Linear(3, 3), _CastingCache()

    def step(pos, x):
        return cache(pos, lin(x)).sum(0)
    fn = fw.compile(step, mode="always") if compiled else step
    with fw.no_grad():
        outs = [fn(fw.tensor([i % 2]), fw.ones(1, 3) * (i + 1)).numpy() for i in range(3)]
    return outs, cache, fn


def test_buffer_rebound_inside_the_function_is_set_after_each_call():
    (eager, e_cache, _), (comp, c_cache, fn) = _cache_run(False), _cache_run(True)
    assert c_cache.k._data is not None and c_cache.k.dtype == fw.float32
    assert "k" in c_cache._buffers and "k" not in vars(c_cache)
    np.testing.assert_allclose(c_cache.k.numpy(), e_cache.k.numpy(), rtol=1e-6)
    for e, c in zip(eager, comp):
        np.testing.assert_allclose(c, e, rtol=1e-6)
    assert fn.stats()["captures"] == 2  # the bfloat16 buffer, then the float32 one
