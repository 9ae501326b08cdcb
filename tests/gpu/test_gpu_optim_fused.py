"""``fused=True`` optimizers on device "cuda" (one Triton kernel per parameter, see
triton_kernels/optim.py): the same results as the default rule on the CPU, half-precision
parameters, fallbacks, the host's step counter, and a compiled training step."""

import numpy as np
import pytest

import framework as fw
import triton_kernels.optim as tk
from framework import optim
from tests.test_optim_fused import CASES, OPTS, as_np, check_same_training, run, train

LAUNCHERS = {optim.Adam: "adam_step", optim.AdamW: "adam_step", optim.SGD: "sgd_step",
             optim.Adagrad: "adagrad_step"}


@pytest.fixture
def launches(monkeypatch):
    """Count the fused kernel launches (per launcher name)."""
    counts = {}
    for name in set(LAUNCHERS.values()):
        real = getattr(tk, name)

        def spy(*args, _name=name, _real=real, **kwargs):
            counts[_name] = counts.get(_name, 0) + 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(tk, name, spy)
    return counts


def _same_as_cpu(pg, og, pc, oc, **tol):
    for a, b in zip(pg, pc):
        assert a.device.type == "cuda"
        np.testing.assert_allclose(as_np(a), as_np(b), **tol)
        sa, sb = og.state[a], oc.state[b]
        assert list(sa) == list(sb)
        for k in sa:
            assert sa[k].device.type == "cuda" and sa[k].dtype is sb[k].dtype, k
            np.testing.assert_allclose(as_np(sa[k]), as_np(sb[k]), err_msg=k, **tol)


@pytest.mark.parametrize("case", ["adam_amsgrad_l2_max", "adam_decoupled", "adamw",
                                  "sgd", "sgd_momentum_dampening_wd", "sgd_nesterov_max",
                                  "adagrad_all"])
def test_fused_kernels_match_default_rule(case, launches):
    """Two contiguous parameters take the kernel; the transposed view falls back."""
    cls, kwargs = CASES[case]
    pc, oc = run(cls, kwargs, fused=False, steps=3)
    pg, og = run(cls, kwargs, fused=True, steps=3, device="cuda")
    assert launches == {LAUNCHERS[cls]: 3 * 2}
    _same_as_cpu(pg, og, pc, oc, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [fw.bfloat16, fw.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("case", ["adam_amsgrad_l2_max", "sgd_nesterov_max", "adagrad_all"])
def test_half_precision_params(case, dtype, launches):
    """fp32 math, rounded on store: close to the CPU's fused path (which does the same)."""
    cls, kwargs = CASES[case]
    kwargs = {**kwargs, "lr": 0.05}
    pc, oc = run(cls, kwargs, fused=True, dtype=dtype, steps=3)
    pg, og = run(cls, kwargs, fused=True, dtype=dtype, steps=3, device="cuda")
    assert launches[LAUNCHERS[cls]] == 3 * 2
    # the interpreter truncates fp32 -> bf16 instead of rounding: a few ulps apart
    tol = 4 * 2.0 ** (-7 if dtype is fw.bfloat16 else -10)
    _same_as_cpu(pg, og, pc, oc, rtol=tol, atol=tol / 8)


def test_float64_falls_back_to_the_default_rule(launches):
    cls, kwargs = CASES["adam_amsgrad_l2_max"]
    pc, oc = run(cls, kwargs, fused=False, dtype=fw.float64, steps=2)
    pg, og = run(cls, kwargs, fused=True, dtype=fw.float64, steps=2, device="cuda")
    assert not launches
    _same_as_cpu(pg, og, pc, oc, rtol=1e-12, atol=1e-14)


def test_step_counter_written_elsewhere_is_reread():
    """The host remembers the step it wrote; an outside write (fill_, load_state_dict)
    invalidates that, so bias corrections use the counter's real value."""
    results = []
    for device in ("cpu", "cuda"):
        p = fw.tensor([1.0, -2.0, 0.5], device=device, requires_grad=True)
        e = fw.zeros(0, device=device, requires_grad=True)
        opt = optim.Adam([p, e], lr=0.1, fused=device == "cuda")
        for i in range(3):
            p.grad = fw.tensor([0.3, -0.1 * i, 1.0], device=device)
            e.grad = fw.zeros(0, device=device)
            if i == 1:
                opt.state[p]["step"].fill_(10.0)
            if i == 2:
                opt.load_state_dict(opt.state_dict())
            opt.step()
        assert float(opt.state[e]["step"]) == 3  # an empty parameter still counts steps
        results.append((as_np(p), float(opt.state[p]["step"])))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-6)
    assert results[0][1] == results[1][1] == 12


@pytest.mark.parametrize("name", ["adamw_amsgrad", "sgd_nesterov"])
def test_compiled_training_step_matches_eager(name, launches):
    """Captured steps run the default rule inside the graph; eager fused steps before
    (warm-up) and after them continue from the counters the graph wrote."""
    l1, p1, o1, _ = train(OPTS[name], False, steps=3, eager_after=1, device="cuda")
    eager_launches = dict(launches)
    l2, p2, o2, fn = train(OPTS[name], True, steps=3, eager_after=1, device="cuda")
    assert fn.stats()["cache_hits"] >= 1 and fn.stats()["eager_reason"] is None
    assert sum(launches.values()) < 2 * sum(eager_launches.values())  # graph steps: no launcher
    check_same_training((l1, p1, o1), (l2, p2, o2))


def test_launcher_checks_buffers():
    from framework.backends.cuda import empty
    p, g = empty((4, 3), np.float32), empty((4, 3), np.float32)
    with pytest.raises(ValueError, match="contiguous"):
        tk.sgd_step(p, g.view((4, 3), (1, 4), 0), None, lr=0.1)
    with pytest.raises(ValueError, match="shape"):
        tk.sgd_step(p, empty((12,), np.float32), None, lr=0.1)
    with pytest.raises(TypeError, match="dtype"):
        tk.sgd_step(p, empty((4, 3), np.int32), None, lr=0.1)
