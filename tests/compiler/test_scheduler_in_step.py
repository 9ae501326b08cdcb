"""``lr_scheduler.step()`` inside a compiled training step (the annotated transformer's
``run_epoch`` loop): a scheduler is Python state the graph cannot replay, so the function
runs eagerly, and the capture that found out must leave the scheduler as it was.

Two silent-wrong bugs this guards: a StepLR between milestones does not change the lr on
the captured call, so the graph was kept and the scheduler never stepped again (lr stuck);
a LambdaLR's capture moved ``last_epoch`` and the eager rerun stepped it again (one step
ahead for the rest of training)."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.optim import lr_scheduler


def _noam(step):
    return 0.1 * min(max(step, 1) ** -0.5, max(step, 1) * 4 ** -1.5)


SCHEDULERS = {
    "step": lambda opt: lr_scheduler.StepLR(opt, step_size=3, gamma=0.1),
    "lambda": lambda opt: lr_scheduler.LambdaLR(opt, lr_lambda=_noam),
    "sequential": lambda opt: lr_scheduler.SequentialLR(
        opt, [lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2),
              lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)], milestones=[3]),
}


def _run(kind, compiled, steps=7):
    fw.manual_seed(0)
    m = nn.Linear(3, 2)
    opt = optim.Adam(m.parameters(), lr=0.1)
    sch = SCHEDULERS[kind](opt)

    def step(x):
        loss = m(x).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sch.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    x = fw.ones(4, 3)
    lrs, losses = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(steps):
            losses.append(float(fn(x)))
            lrs.append(opt.param_groups[0]["lr"])
    return losses, lrs, sch, m, fn, [str(w.message) for w in caught]


@pytest.mark.parametrize("kind", sorted(SCHEDULERS))
def test_scheduler_stepped_inside_compiled_step_matches_eager(kind):
    l1, lr1, s1, m1, _, _ = _run(kind, False)
    l2, lr2, s2, m2, fn, warned = _run(kind, True)
    assert lr2 == lr1 and len(set(lr1)) > 2, (lr1, lr2)
    assert s2.last_epoch == s1.last_epoch == 7 and s2.get_last_lr() == s1.get_last_lr()
    np.testing.assert_allclose(l2, l1, rtol=1e-6)
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-6)
    st = fn.stats()
    assert st["eager_reason"] is not None and st["captures"] == 0, st
    assert any("running eagerly" in w for w in warned), warned


def test_step_lr_break_names_the_scheduler():
    *_, fn, warned = _run("step", True, steps=2)
    reason = fn.stats()["eager_reason"]
    assert "StepLR.last_epoch" in reason and "lr_scheduler.step() outside" in reason, reason


def test_scheduler_outside_the_compiled_step_still_compiles():
    fw.manual_seed(0)
    m = nn.Linear(3, 2)
    opt = optim.SGD(m.parameters(), lr=0.1)
    sch = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    def step(x):
        loss = m(x).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fn = fw.compile(step, mode="always")
    for _ in range(5):
        fn(fw.ones(4, 3))
        sch.step()
    st = fn.stats()
    assert st["eager_reason"] is None and st["captures"] == 1 and st["num_recompiles"] == 0, st
    assert sch.last_epoch == 5 and opt.param_groups[0]["lr"] == pytest.approx(0.025)


class _Trainer:
    """A training loop object holding its scheduler next to the model and optimizer."""

    def __init__(self):
        fw.manual_seed(0)
        self.model = nn.Linear(3, 2)
        self.opt = optim.SGD(self.model.parameters(), lr=0.1)
        self.scheduler = lr_scheduler.StepLR(self.opt, step_size=2, gamma=0.5)

    def step(self, x):
        loss = self.model(x).pow(2).sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss


def test_a_reachable_scheduler_stepped_outside_does_not_recompile_every_step():
    """The scheduler rebinds ``_last_lr`` on every step(); reaching it (``self.scheduler``)
    used to guard that list's identity, so every step recompiled."""
    eager, trainer = _Trainer(), _Trainer()
    fn = fw.compile(trainer.step, mode="always")
    for _ in range(6):
        want, got = eager.step(fw.ones(4, 3)), fn(fw.ones(4, 3))
        eager.scheduler.step()
        trainer.scheduler.step()
        np.testing.assert_allclose(float(got), float(want), rtol=1e-6)
    st = fn.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0, st
    assert trainer.opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)


def test_scheduler_values_read_inside_the_step_are_guarded():
    """``get_last_lr()`` and ``last_epoch`` read inside the compiled function are baked into
    the graph: a step() outside must miss the entry (recompile), not reuse stale values."""
    def run(compiled):
        trainer = _Trainer()
        sch = trainer.scheduler

        def step(x):
            return trainer.step(x) * sch.get_last_lr()[0] * (sch.last_epoch + 1)

        fn = fw.compile(step, mode="always") if compiled else step
        out = []
        for _ in range(5):
            out.append(float(fn(fw.ones(4, 3))))
            sch.step()
        return out, fn

    want, _ = run(False)
    got, fn = run(True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert fn.stats()["eager_reason"] is None
