"""``checkpoint`` inside ``fw.compile``: the remat pass (compiler/passes/remat.py) gives the
backward recomputed copies of each region's inner activations, so a checkpointed step
plans less memory and still computes the un-checkpointed step's numbers."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.ops.registry import RANDOM
from framework.utils.checkpoint import checkpoint


def _blocks(depth, width, dropout=0.0, device="cpu"):
    fw.manual_seed(0)
    layers = []
    for _ in range(depth):
        extra = [nn.Dropout(dropout)] if dropout else []
        layers.append(nn.Sequential(nn.Linear(width, width), nn.Tanh(), *extra,
                                    nn.Linear(width, width), nn.Tanh()))
    return nn.ModuleList(layers).to(device)


def _train(compiled, use_ckpt, *, depth=4, width=16, batch=8, dropout=0.0, steps=3,
           nested=False, device="cpu"):
    blocks = _blocks(depth, width, dropout, device)
    opt = optim.SGD(blocks.parameters(), lr=0.05)
    fw.manual_seed(1)
    x = fw.randn(batch, width, device=device)

    def run_block(b, h):
        if nested:  # a checkpoint inside a checkpoint joins the outer region
            return checkpoint(lambda t: b[2:](checkpoint(b[:2], t, use_reentrant=False)),
                              h, use_reentrant=False)
        return checkpoint(b, h, use_reentrant=False)

    def step():
        opt.zero_grad()
        h = x
        for b in blocks:
            h = run_block(b, h) if use_ckpt else b(h)
        loss = (h * h).mean()
        loss.backward()
        opt.step()
        return loss

    fn = fw.compile(step, mode="always", fullgraph=True) if compiled else step
    fw.manual_seed(2)
    losses = [float(fn()) for _ in range(steps)]
    params = [p.detach().cpu().numpy().copy() for p in blocks.parameters()]
    return losses, params, fn


def _planned_bytes(fn):
    plan = fn._entry_for((), {}).plan
    return sum(math.prod(s) * np.dtype(d.np).itemsize for s, d in plan.slots)


def _ops(fn, name):
    return sum(n.op.name == name for n in fn.graph().nodes)


def _assert_same_training(a, b, rtol=1e-5):
    np.testing.assert_allclose(a[0], b[0], rtol=rtol)
    for u, v in zip(a[1], b[1]):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=1e-6)


def test_compiled_checkpoint_recomputes_inner_activations_and_plans_less_memory():
    plain = _train(True, False, depth=6, width=64, batch=128)
    ckpt = _train(True, True, depth=6, width=64, batch=128)
    eager = _train(False, False, depth=6, width=64, batch=128)
    _assert_same_training(ckpt, eager)
    _assert_same_training(plain, eager)
    assert any(p.startswith("remat (+") for p in ckpt[2].graph().passes)
    assert "remat (+0)" in plain[2].graph().passes
    # each block recomputes its first matmul and tanh; its returned tanh is not recomputed
    assert _ops(ckpt[2], "matmul") > _ops(plain[2], "matmul")
    assert _ops(ckpt[2], "tanh") == _ops(plain[2], "tanh") + 6
    assert _planned_bytes(ckpt[2]) < 0.75 * _planned_bytes(plain[2]), (
        _planned_bytes(ckpt[2]), _planned_bytes(plain[2]))


def test_nested_checkpoint_is_one_region():
    _assert_same_training(_train(True, True, nested=True), _train(False, False))


def test_random_draws_inside_a_region_are_kept_not_drawn_again():
    # the recomputation must reuse the forward's dropout mask: a second draw would give
    # a gradient that disagrees with the forward (and with the un-checkpointed step)
    plain = _train(True, False, dropout=0.5)
    ckpt = _train(True, True, dropout=0.5)
    _assert_same_training(ckpt, plain)
    draws = [sum(n.op.group == RANDOM for n in r[2].graph().nodes) for r in (plain, ckpt)]
    assert draws[0] == draws[1] > 0
    assert any(p.startswith("remat (+") for p in ckpt[2].graph().passes)


@pytest.mark.parametrize("use_ckpt", [False, True])
def test_forward_only_compile_is_unchanged(use_ckpt):
    blocks = _blocks(2, 8)
    x = fw.randn(3, 8)

    def forward(t):
        for b in blocks:
            t = checkpoint(b, t, use_reentrant=False) if use_ckpt else b(t)
        return t

    with fw.no_grad():
        out = fw.compile(forward, mode="always")(x)
        np.testing.assert_allclose(out.numpy(), forward(x).numpy(), rtol=1e-6)
