"""optim.Adafactor against a NumPy transcription of PyTorch's documented algorithm (with
PyTorch's implementation details: row/col means, eps1 clamps, RMS before weight decay) on
0-d, 1-d, 2-d and 3-d parameters; state layout, state_dict resume, compiled step."""

import numpy as np
import pytest

import framework as fw
from framework import optim
from framework.errors import ArgumentError
from tests.optim_helpers import (check_minimizes_quadratic, check_state_dict_resume,
                                 check_step_is_capturable, compiled_and_eager_training)


def ref_adafactor(p, g, s, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                  weight_decay=0.0, maximize=False):
    """One Adafactor step in NumPy (float64); ``s`` holds the state between calls."""
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = np.finfo(p.dtype).eps
    g = -g if maximize else g
    t = s["step"] = s.get("step", 0) + 1
    one_minus_beta2 = t ** beta2_decay
    rho = min(lr, 1 / np.sqrt(t))
    alpha = max(eps2, np.sqrt(np.mean(p * p))) * rho
    p = p * (1 - lr * weight_decay)
    if g.ndim > 1:
        r = s.get("row", np.zeros(g.shape[:-1] + (1,)))
        c = s.get("col", np.zeros(g.shape[:-2] + (1, g.shape[-1])))
        r = r + one_minus_beta2 * ((g * g).mean(-1, keepdims=True) - r)
        c = c + one_minus_beta2 * ((g * g).mean(-2, keepdims=True) - c)
        s["row"], s["col"] = r, c
        v = (r @ c) / np.maximum(r.mean(-2, keepdims=True), eps1)
    else:
        v = s.get("var", np.zeros_like(g))
        v = v + one_minus_beta2 * (g * g - v)
        s["var"] = v
    u = g / np.sqrt(np.maximum(v, eps1 * eps1))
    denom = max(1.0, np.sqrt(np.mean(u * u)) / d)
    return p - alpha / denom * u


SHAPES = [(3, 4), (5,), (2, 3, 4), ()]
KWARGS = [dict(), dict(lr=0.5, weight_decay=0.1), dict(lr=0.02, maximize=True, d=1.5),
          dict(eps=(1e-3, 1e-2), beta2_decay=-0.5), dict(lr=0.3, eps=(1e-30, 1e-3))]


@pytest.mark.parametrize("kw", KWARGS, ids=lambda kw: "-".join(kw) or "default")
def test_matches_numpy_reference(kw):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s) for s in SHAPES]
    params = [fw.tensor(v, dtype=fw.float64, requires_grad=True) for v in values]
    opt = optim.Adafactor(params, **kw)
    states = [{} for _ in params]
    for step in range(8):
        # a tiny first gradient makes the eps1 clamps bind; a jump on step 4 makes the
        # update clipping (d) bind
        scale = {0: 1e-9, 4: 30.0}.get(step, 1.0)
        grads = [scale * rng.standard_normal(s) for s in SHAPES]
        for p, g in zip(params, grads):
            p.grad = fw.tensor(g, dtype=fw.float64)
        opt.step()
        for i, g in enumerate(grads):
            values[i] = ref_adafactor(values[i], g, states[i], **kw)
            np.testing.assert_allclose(params[i].detach().numpy(), values[i], rtol=1e-10,
                                       atol=1e-12, err_msg=f"shape {SHAPES[i]}, step {step}")


def test_float32_matches_reference_and_state_layout():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((2, 3, 4)).astype(np.float32)
    p = fw.tensor(v, requires_grad=True)
    b = fw.zeros(4, requires_grad=True)
    opt = optim.Adafactor([p, b], lr=0.1)
    state, ref = {}, v.astype(np.float64)
    for _ in range(4):
        g = rng.standard_normal(v.shape).astype(np.float32)
        p.grad, b.grad = fw.tensor(g), fw.ones(4)
        opt.step()
        ref = ref_adafactor(ref, g.astype(np.float64), state, lr=0.1,
                            eps=(float(np.finfo(np.float32).eps), 1e-3))
    np.testing.assert_allclose(p.detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    st = opt.state[p]
    assert set(st) == {"step", "row_var", "col_var"} and float(st["step"]) == 4.0
    assert st["row_var"].shape == (2, 3, 1) and st["col_var"].shape == (2, 1, 4)
    assert st["step"].dtype is fw.float32 and st["row_var"].dtype is fw.float32
    assert set(opt.state[b]) == {"step", "variance"} and opt.state[b]["variance"].shape == (4,)
    sd = opt.state_dict()
    g0 = sd["param_groups"][0]
    assert (g0["lr"], g0["beta2_decay"], g0["eps"], g0["d"], g0["weight_decay"]) == \
        (0.1, -0.8, (None, 1e-3), 1.0, 0.0)
    assert g0["maximize"] is False and g0["foreach"] is None


def test_defaults_and_constructor_errors():
    x = fw.zeros(2, requires_grad=True)
    opt = optim.Adafactor([x])
    assert opt.defaults["lr"] == 1e-2 and opt.defaults["eps"] == (None, 1e-3)
    for kw, msg in [(dict(lr=-1.0), "Learning rate"), (dict(beta2_decay=0.1), "beta2_decay"),
                    (dict(eps=(-1.0, 1e-3)), "epsilon1"), (dict(eps=(None, -1.0)), "epsilon2"),
                    (dict(d=0.5), "Clipping threshold d"), (dict(weight_decay=-1), "weight_decay")]:
        with pytest.raises(ArgumentError, match=msg):
            optim.Adafactor([x], **kw)


def test_state_dict_resume_is_identical():
    check_state_dict_resume(optim.Adafactor, dict(lr=0.05), dict(weight_decay=0.1), steps=3)


def test_minimizes_a_quadratic_and_is_capturable():
    check_minimizes_quadratic(optim.Adafactor, dict(lr=0.5), steps=200, factor=0.1)
    check_step_is_capturable(optim.Adafactor, dict(weight_decay=0.1), steps=2)


def test_compiled_training_step_matches_eager():
    w_eager, _, w_comp, opt_comp = compiled_and_eager_training(
        optim.Adafactor, dict(lr=0.05, weight_decay=0.01), steps=4, mode="always")
    np.testing.assert_allclose(w_comp.detach().numpy(), w_eager.detach().numpy(), rtol=1e-5,
                               atol=1e-7)
    assert float(opt_comp.state[w_comp]["step"]) == 4.0
