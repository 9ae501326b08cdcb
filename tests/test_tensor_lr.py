"""A tensor learning rate (``Adam(lr=fw.tensor(0.01))``, the compiled-optimizer recipe's
way to avoid recompiles): schedulers fill it in place as PyTorch's do, and a compiled
``opt.step()`` reads its current value on every call. Before, a compiled step kept reading
the tensor it was captured with, so a new lr tensor bound to the group was silently
ignored."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework.optim import lr_scheduler


def _model():
    fw.manual_seed(0)
    m = fw.nn.Linear(4, 3)
    m(fw.rand(2, 4)).sum().backward()
    return m


def test_schedulers_fill_a_tensor_lr_in_place():
    m = _model()
    opt = fw.optim.SGD(m.parameters(), lr=fw.tensor(0.3))
    lr = opt.param_groups[0]["lr"]
    sched = lr_scheduler.LinearLR(opt, total_iters=4)
    assert opt.param_groups[0]["lr"] is lr and opt.param_groups[0]["initial_lr"] is not lr
    values = []
    for _ in range(5):
        opt.step()
        sched.step()
        values.append(lr.item())
        assert opt.param_groups[0]["lr"] is lr and sched.get_last_lr()[0] is lr
    np.testing.assert_allclose(values, [0.3 * f for f in (0.5, 2 / 3, 5 / 6, 1.0, 1.0)],
                               rtol=1e-6)
    assert float(sched.base_lrs[0]) == pytest.approx(0.3)    # the clone did not move
    step = lr_scheduler.StepLR(fw.optim.SGD(m.parameters(), lr=fw.tensor(1.0)), 1, 0.5)
    step.optimizer.step()
    step.step()
    assert isinstance(step.optimizer.param_groups[0]["lr"], fw.Tensor)
    assert step.optimizer.param_groups[0]["lr"].item() == 0.5


def test_cyclic_and_plateau_schedulers_with_a_tensor_lr():
    m = _model()
    opt = fw.optim.SGD(m.parameters(), lr=fw.tensor(0.1), momentum=0.9)
    lr = opt.param_groups[0]["lr"]
    sched = lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=2)
    assert opt.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.01)
    opt.step()
    sched.step()
    assert lr.item() == pytest.approx(0.055)
    opt = fw.optim.SGD(m.parameters(), lr=fw.tensor(0.1))
    lr = opt.param_groups[0]["lr"]
    plateau = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    for metric in (1.0, 2.0):
        plateau.step(metric)
    assert opt.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.01)


def _train(compiled, lr_kind, change):
    m = _model()
    opt = fw.optim.Adam(m.parameters(), lr=fw.tensor(0.01) if lr_kind == "tensor" else 0.01)
    sched = lr_scheduler.LinearLR(opt, total_iters=4)
    fn = fw.compile(opt.step, mode="always") if compiled else opt.step
    for i in range(6):
        fn()
        if change == "scheduler":
            sched.step()
        elif change == "rebind":
            new = 0.002 * (i + 2)
            opt.param_groups[0]["lr"] = fw.tensor(new) if lr_kind == "tensor" else new
    return [p.detach().numpy().copy() for p in m.parameters()], fn


@pytest.mark.parametrize("lr_kind", ["tensor", "float"])
@pytest.mark.parametrize("change", ["scheduler", "rebind"])
def test_compiled_step_reads_the_current_lr_without_recompiling(lr_kind, change):
    want, _ = _train(False, lr_kind, change)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, fn = _train(True, lr_kind, change)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    st = fn.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0 and st["cache_hits"] == 4, st


def test_scheduler_inside_a_compiled_function_with_a_tensor_lr_runs_eagerly():
    m = _model()
    opt = fw.optim.Adam(m.parameters(), lr=fw.tensor(0.01))
    sched = lr_scheduler.CyclicLR(opt, base_lr=0.001, max_lr=0.01, step_size_up=2,
                                  cycle_momentum=False)

    @fw.compile
    def fn():
        opt.step()
        sched.step()     # Python arithmetic on floats: would be baked into a graph

    with pytest.warns(UserWarning, match="lr scheduler filling a tensor lr"):
        for _ in range(4):
            fn()
    assert fn.stats()["captures"] == 0
    assert opt.param_groups[0]["lr"].item() == pytest.approx(0.001)  # 4 steps: a full cycle
