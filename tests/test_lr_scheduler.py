"""LR schedulers against their closed forms / PyTorch's documented values."""

import math
import warnings
from bisect import bisect_right

import numpy as np
import pytest

import framework as fw
from framework import optim
from framework.errors import ArgumentError
from framework.optim import lr_scheduler as S

BASES = (0.1, 0.05)


def _opt(cls=optim.SGD, **kw):
    a, b = fw.zeros(2, requires_grad=True), fw.zeros(2, requires_grad=True)
    return cls([{"params": [a]}, {"params": [b], "lr": BASES[1]}], lr=BASES[0], **kw)


def _trajectory(make_sched, epochs, opt=None):
    """lrs of both groups at epoch 0 (after construction) and after each step."""
    opt = opt or _opt()
    sched = make_sched(opt)
    lrs = [list(sched.get_last_lr())]
    for _ in range(epochs):
        opt.step()
        sched.step()
        lrs.append(list(sched.get_last_lr()))
        assert lrs[-1] == [g["lr"] for g in opt.param_groups]
    return np.array(lrs), sched, opt


def _expect(fn, epochs):
    return np.array([[fn(base, e) for base in BASES] for e in range(epochs + 1)])


CLOSED_FORMS = [
    ("LambdaLR", lambda o: S.LambdaLR(o, lambda e: 0.95 ** e + e % 3),
     lambda b, e: b * (0.95 ** e + e % 3)),
    ("MultiplicativeLR", lambda o: S.MultiplicativeLR(o, lambda e: 0.9 + 0.01 * e),
     lambda b, e: b * math.prod(0.9 + 0.01 * i for i in range(1, e + 1))),
    ("StepLR", lambda o: S.StepLR(o, step_size=7, gamma=0.5),
     lambda b, e: b * 0.5 ** (e // 7)),
    ("MultiStepLR", lambda o: S.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3),
     lambda b, e: b * 0.3 ** bisect_right([5, 12, 12, 30], e)),
    ("ConstantLR", lambda o: S.ConstantLR(o, factor=0.25, total_iters=6),
     lambda b, e: b * (0.25 if e < 6 else 1.0)),
    ("LinearLR", lambda o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=10),
     lambda b, e: b * (0.2 + 0.7 * min(e, 10) / 10)),
    ("ExponentialLR", lambda o: S.ExponentialLR(o, gamma=0.93),
     lambda b, e: b * 0.93 ** e),
    ("PolynomialLR", lambda o: S.PolynomialLR(o, total_iters=15, power=2.0),
     lambda b, e: b * (1 - min(e, 15) / 15) ** 2),
    ("CosineAnnealingLR", lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
     lambda b, e: 0.001 + (b - 0.001) * (1 + math.cos(math.pi * e / 10)) / 2),
]


@pytest.mark.parametrize("name,make,closed", CLOSED_FORMS, ids=[c[0] for c in CLOSED_FORMS])
def test_recursive_form_matches_closed_form(name, make, closed):
    epochs = 45
    lrs, sched, _ = _trajectory(make, epochs)
    np.testing.assert_allclose(lrs, _expect(closed, epochs), rtol=1e-9, atol=1e-12)
    assert sched.last_epoch == epochs


@pytest.mark.parametrize("name,make,closed", CLOSED_FORMS[2:], ids=[c[0] for c in CLOSED_FORMS[2:]])
def test_step_with_epoch_uses_closed_form(name, make, closed):
    opt = _opt()
    sched = make(opt)
    opt.step()
    for epoch in (3, 17, 8, 40):
        with pytest.warns(UserWarning, match="epoch parameter"):
            sched.step(epoch)
        np.testing.assert_allclose(sched.get_last_lr(), [closed(b, epoch) for b in BASES],
                                   rtol=1e-9)


def test_initial_lr_and_last_epoch_semantics():
    opt = _opt()
    sched = S.StepLR(opt, step_size=2, gamma=0.1)
    assert sched.last_epoch == 0 and sched.base_lrs == list(BASES)
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASES)
    for _ in range(3):
        opt.step()
        sched.step()
    # resuming from last_epoch requires initial_lr in the groups
    fresh = _opt()
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(fresh, step_size=2, last_epoch=3)
    resumed = S.ExponentialLR(opt, gamma=0.5, last_epoch=3)
    assert resumed.last_epoch == 4
    # the constructor step of a resumed ExponentialLR leaves the lr alone
    np.testing.assert_allclose(resumed.get_last_lr(), [b * 0.1 for b in BASES])


def test_warns_when_scheduler_steps_before_optimizer():
    opt = _opt()
    sched = S.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    opt2 = _opt()
    sched2 = S.StepLR(opt2, step_size=2)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def _sgdr(base, e, t0, mult, eta_min=0.0):
    t_i, t_cur = t0, e
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= mult
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


@pytest.mark.parametrize("mult", [1, 2])
def test_cosine_annealing_warm_restarts(mult):
    lrs, sched, _ = _trajectory(
        lambda o: S.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=mult, eta_min=0.002), 60)
    np.testing.assert_allclose(lrs, _expect(lambda b, e: _sgdr(b, e, 5, mult, 0.002), 60),
                               rtol=1e-9)
    sched.step(7.5)  # fractional epochs jump straight to the closed form
    np.testing.assert_allclose(sched.get_last_lr(), [_sgdr(b, 7.5, 5, mult, 0.002) for b in BASES],
                               rtol=1e-9)
    with pytest.raises(ArgumentError, match="positive integer T_0"):
        S.CosineAnnealingWarmRestarts(_opt(), T_0=0)


def _one_cycle(step, total, max_lr, pct, div, final_div, strategy, three_phase):
    initial = max_lr / div
    low = initial / final_div
    anneal = ((lambda a, b, t: b + (a - b) / 2 * (1 + math.cos(math.pi * t))) if strategy == "cos"
              else (lambda a, b, t: a + (b - a) * t))
    up_end = pct * total - 1
    if three_phase:
        phases = [(up_end, initial, max_lr), (2 * pct * total - 2, max_lr, initial),
                  (total - 1, initial, low)]
    else:
        phases = [(up_end, initial, max_lr), (total - 1, max_lr, low)]
    start = 0.0
    for i, (end, a, b) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            return anneal(a, b, (step - start) / (end - start))
        start = end


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle(strategy, three_phase):
    total = 40
    lrs, _, opt = _trajectory(lambda o: S.OneCycleLR(
        o, max_lr=[1.0, 0.5], total_steps=total, pct_start=0.25, anneal_strategy=strategy,
        three_phase=three_phase, base_momentum=0.8, max_momentum=0.9), total - 1,
        opt=_opt(momentum=0.9))
    expect = np.array([[_one_cycle(s, total, m, 0.25, 25.0, 1e4, strategy, three_phase)
                        for m in (1.0, 0.5)] for s in range(total)])
    np.testing.assert_allclose(lrs, expect, rtol=1e-9)
    assert lrs[0, 0] == pytest.approx(1.0 / 25) and lrs[-1, 0] == pytest.approx(1.0 / 25 / 1e4)
    assert lrs[9, 0] == pytest.approx(1.0)  # the peak at pct_start * total - 1
    # momentum runs inversely: base_momentum at the lr peak
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9)
    short = S.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    opt.step()
    short.step()
    short.step()  # last_epoch == total_steps is still allowed, as in PyTorch
    with pytest.raises(ArgumentError, match="Tried to step 3 times"):
        short.step()


def test_one_cycle_cycles_adam_beta1():
    opt = _opt(optim.Adam)
    sched = S.OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=0.5)
    assert opt.param_groups[0]["betas"] == (0.95, 0.999)
    for _ in range(4):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.85)
    with pytest.raises(ArgumentError, match="either total_steps"):
        S.OneCycleLR(opt, max_lr=0.1)


def _clr(e, base, top, step, mode, gamma=1.0):
    cycle = math.floor(1 + e / (2 * step))
    x = abs(e / step - 2 * cycle + 1)
    amp = (top - base) * max(0.0, 1 - x)
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma ** e}
    return base + amp * scale[mode]


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr(mode):
    lrs, _, opt = _trajectory(lambda o: S.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.1,
                                                   step_size_up=4, mode=mode, gamma=0.97), 30,
                              opt=_opt(momentum=0.9))
    expect = np.array([[_clr(e, b, 0.1, 4, mode, 0.97) for b in (0.01, 0.02)]
                       for e in range(31)])
    np.testing.assert_allclose(lrs, expect, rtol=1e-9, atol=1e-12)
    # at e = 30 (step 6 of cycle 4, going down), momentum = max - (max - base) * scale_factor
    frac = 0.5 * (1.0 if mode == "triangular" else
                  (1 / 8 if mode == "triangular2" else 0.97 ** 30))
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9 - 0.1 * frac)


def test_cyclic_lr_needs_momentum():
    opt = optim.Adagrad([fw.zeros(1, requires_grad=True)])
    with pytest.raises(ArgumentError, match="momentum or beta1"):
        S.CyclicLR(opt, 0.01, 0.1)
    sched = S.CyclicLR(opt, 0.01, 0.1, step_size_up=2, step_size_down=6, cycle_momentum=False)
    for _ in range(4):
        opt.step()
        sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(0.1 - 0.09 * 2 / 6)


def test_sequential_lr_documented_values():
    opt = optim.SGD([fw.zeros(1, requires_grad=True)], lr=0.05)
    s1 = S.ConstantLR(opt, factor=0.1, total_iters=20)
    s2 = S.ExponentialLR(opt, gamma=0.9)
    sched = S.SequentialLR(opt, schedulers=[s1, s2], milestones=[20])
    lrs = [sched.get_last_lr()[0]]
    for _ in range(25):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    expect = [0.005] * 20 + [0.05 * 0.9 ** k for k in range(6)]
    np.testing.assert_allclose(lrs, expect, rtol=1e-9)
    with pytest.raises(ArgumentError, match="one more"):
        S.SequentialLR(opt, schedulers=[s1, s2], milestones=[])


def test_chained_scheduler_multiplies_effects():
    lrs, _, _ = _trajectory(lambda o: S.ChainedScheduler(
        [S.ConstantLR(o, factor=0.1, total_iters=5), S.ExponentialLR(o, gamma=0.9)]), 12)
    np.testing.assert_allclose(lrs, _expect(lambda b, e: b * 0.9 ** e * (0.1 if e < 5 else 1),
                                            12), rtol=1e-9)


def test_composites_reject_reduce_on_plateau_and_foreign_optimizers():
    opt = _opt()
    with pytest.raises(ArgumentError, match="ReduceLROnPlateau"):
        S.ChainedScheduler([S.ReduceLROnPlateau(opt)])
    other = S.StepLR(_opt(), 3)
    with pytest.raises(ArgumentError, match="same optimizer"):
        S.SequentialLR(opt, [S.StepLR(opt, 3), other], milestones=[2])
    with pytest.raises(TypeError, match="not an Optimizer"):
        S.StepLR(object(), 3)


def test_reduce_lr_on_plateau():
    opt = optim.SGD([fw.zeros(1, requires_grad=True)], lr=1.0)
    sched = S.ReduceLROnPlateau(opt, patience=2, factor=0.5)
    got = []
    for metric in [10, 9, 9, 9, 9, 8, 8, 8, 8, 8]:
        sched.step(fw.tensor(float(metric)))
        got.append(sched.get_last_lr()[0])
    assert got == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_reduce_lr_on_plateau_cooldown_min_lr_and_max_mode():
    opt = optim.SGD([fw.zeros(1, requires_grad=True)], lr=1.0)
    sched = S.ReduceLROnPlateau(opt, mode="max", patience=0, factor=0.1, cooldown=2,
                                min_lr=0.005, threshold=0.5, threshold_mode="abs")
    got = []
    for metric in [1.0, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6]:
        sched.step(metric)
        got.append(round(sched.get_last_lr()[0], 10))
    # 1.2 is not better by the abs threshold 0.5: reduce; then 2 cooldown epochs; then reduce
    # again (clamped at min_lr), cooldown, and no further change at the floor
    assert got == [1.0, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.005]
    with pytest.raises(ArgumentError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ArgumentError, match="mode"):
        S.ReduceLROnPlateau(opt, mode="median")


STATEFUL = [
    lambda o: S.StepLR(o, step_size=3, gamma=0.5),
    lambda o: S.MultiStepLR(o, milestones=[2, 6], gamma=0.5),
    lambda o: S.CosineAnnealingLR(o, T_max=7),
    lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=30),
    lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3),
    lambda o: S.SequentialLR(o, [S.LinearLR(o, total_iters=3), S.ExponentialLR(o, 0.9)], [4]),
    lambda o: S.ChainedScheduler([S.StepLR(o, 2), S.ExponentialLR(o, 0.9)]),
    lambda o: S.LambdaLR(o, lambda e: 1 / (1 + e)),
]


@pytest.mark.parametrize("make", STATEFUL)
def test_state_dict_round_trip_resumes_schedule(make):
    opt = _opt(momentum=0.9)
    sched = make(opt)
    for _ in range(5):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert "optimizer" not in state
    opt_state = opt.state_dict()
    expected = []
    for _ in range(8):
        opt.step()
        sched.step()
        expected.append(sched.get_last_lr())
    opt2 = _opt(momentum=0.9)
    sched2 = make(opt2)  # build both first, then load both (PyTorch's resume order)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(state)
    got = []
    for _ in range(8):
        opt2.step()
        sched2.step()
        got.append(sched2.get_last_lr())
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_reduce_on_plateau_state_dict():
    opt = optim.SGD([fw.zeros(1, requires_grad=True)], lr=1.0)
    sched = S.ReduceLROnPlateau(opt, patience=1)
    for m in [3, 2, 2]:
        sched.step(m)
    state = sched.state_dict()
    sched2 = S.ReduceLROnPlateau(optim.SGD([fw.zeros(1, requires_grad=True)], lr=1.0),
                                 patience=1)
    sched2.load_state_dict(state)
    assert sched2.best == 2 and sched2.num_bad_epochs == 1 and sched2.last_epoch == 3
