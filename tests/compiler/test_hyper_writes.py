"""``param_group['lr'] = lr`` inside a compiled training step (build-nanogpt's loop): the
assignment is replayed from the call's scalar on every call, and the step uses it."""

import warnings

import numpy as np

import framework as fw
from framework import nn, optim


def _setup():
    fw.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = optim.AdamW(m.parameters(), lr=1.0, weight_decay=0.1)
    return m, opt


def _run(compiled, lrs):
    m, opt = _setup()

    def step(x, y, lr):
        opt.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    fw.manual_seed(1)
    x, y = fw.randn(5, 4), fw.randn(5, 2)
    seen = []
    for lr in lrs:
        fn(x, y, lr)
        seen.append(opt.param_groups[0]["lr"])
    return [p.detach().numpy().copy() for p in m.parameters()], seen, fn


def test_lr_assigned_inside_the_step_is_used_and_replayed():
    lrs = [1e-2, 5e-2, 2e-2, 1e-3, 3e-2]
    p1, seen1, _ = _run(False, lrs)
    p2, seen2, fn = _run(True, lrs)
    st = fn.stats()
    assert st["eager_reason"] is None and st["captures"] == 1 and st["num_recompiles"] == 0
    assert seen2 == seen1 == lrs and all(type(v) is float for v in seen2)
    for a, b in zip(p1, p2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lr_derived_from_a_plain_dict_read_runs_eagerly_and_decays_per_call():
    """``g['lr']`` read straight from the dict is a plain number, not a runtime scalar:
    the function falls back to eager (correct on every call) instead of baking it."""
    m, opt = _setup()

    def step(x):
        opt.zero_grad()
        m(x).sum().backward()
        for g in opt.param_groups:
            g["lr"] = g["lr"] * 0.5  # an in-function decay: read at call start, then set
        opt.step()

    fn = fw.compile(step, mode="always")
    x = fw.randn(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(4):
            fn(x)
    assert opt.param_groups[0]["lr"] == 1.0 / 16
    assert "were changed inside" in fn.stats()["eager_reason"]


def test_a_constant_assignment_still_runs_eagerly():
    m, opt = _setup()

    def step(x):
        opt.zero_grad()
        m(x).sum().backward()
        opt.param_groups[0]["lr"] = 0.25
        opt.step()

    fn = fw.compile(step, mode="always")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            fn(fw.randn(3, 4))
    assert "were changed inside" in fn.stats()["eager_reason"]
    assert opt.param_groups[0]["lr"] == 0.25
