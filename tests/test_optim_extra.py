"""Rprop, ASGD and LBFGS against NumPy re-implementations of PyTorch's documented rules."""

import copy

import numpy as np
import pytest

import framework as fw
from framework import optim
from framework.errors import ArgumentError, GraphBreak
from framework.optim.lbfgs import _cubic_interpolate, _strong_wolfe
from tests.optim_helpers import (case_id, check_matches_reference, check_minimizes_quadratic,
                                 check_state_dict_resume, check_step_is_capturable,
                                 compiled_and_eager_training)


# -- NumPy references (one step; `s` is the per-parameter state dict) -----------------------
def ref_rprop(p, g, s, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False):
    g = -g if maximize else g
    if "prev" not in s:
        s["prev"], s["step_size"] = np.zeros_like(p), np.full_like(p, lr)
    agreement = g * s["prev"]
    factor = np.where(agreement > 0, etas[1], np.where(agreement < 0, etas[0], 1.0))
    s["step_size"] = np.clip(s["step_size"] * factor, *step_sizes)
    g = np.where(agreement < 0, 0.0, g)
    s["prev"] = g
    return p - np.sign(g) * s["step_size"]


def ref_asgd(p, g, s, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
             maximize=False):
    # eta and mu are float32 tensors in PyTorch's state: round them like it does
    t = s["t"] = s.get("t", 0) + 1
    eta, mu = s.get("eta", float(np.float32(lr))), s.get("mu", 1.0)
    g = -g if maximize else g
    g = g + weight_decay * p
    p = p * (1 - lambd * eta) - eta * g
    s["ax"] = p.copy() if mu == 1 else s["ax"] + (p - s["ax"]) * mu
    s["eta"] = float(np.float32(lr / (1 + lambd * lr * t) ** alpha))
    s["mu"] = float(np.float32(1 / max(1, t - t0)))
    return p


# (optimizer class, reference, kwargs of group 0, overrides of group 1)
CASES = [
    (optim.Rprop, ref_rprop, dict(lr=0.01), dict(lr=0.05)),
    (optim.Rprop, ref_rprop, dict(lr=0.01, etas=(0.3, 1.5), step_sizes=(5e-3, 0.02)),
     dict(maximize=True)),
    (optim.ASGD, ref_asgd, dict(lr=0.05, t0=3), dict(weight_decay=0.1, lambd=0.1)),
    (optim.ASGD, ref_asgd, dict(lr=0.05, alpha=0.5, maximize=True), dict(t0=0)),
]


def _flipping_grad(rng, shape, step):
    """A shared sign pattern that flips now and then: Rprop sees all three cases."""
    return (-1.0 if step % 4 == 3 else 1.0) * (rng.standard_normal(shape) + 0.5)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_matches_reference(case):
    cls, ref, kw0, over1 = case
    opt, params, states = check_matches_reference(cls, ref, kw0, over1, tol=1e-12,
                                                  make_grad=_flipping_grad)
    for p, s in zip(params, states):
        state = opt.state[p]
        assert float(state["step"]) == 12.0
        if cls is optim.ASGD:
            np.testing.assert_allclose(state["ax"].numpy(), s["ax"], rtol=1e-12, atol=1e-12)
            assert float(state["eta"]) == s["eta"] and float(state["mu"]) == s["mu"]
        else:
            np.testing.assert_allclose(state["step_size"].numpy(), s["step_size"], rtol=1e-12)
            np.testing.assert_array_equal(state["prev"].numpy(), s["prev"])


def test_state_keys_follow_pytorch():
    a, b = fw.zeros(3, requires_grad=True), fw.zeros(3, requires_grad=True)
    rprop, asgd = optim.Rprop([a], lr=0.1), optim.ASGD([b])
    a.grad, b.grad = fw.ones(3), fw.ones(3)
    rprop.step()
    asgd.step()
    assert set(rprop.state[a]) == {"step", "prev", "step_size"}
    assert set(asgd.state[b]) == {"step", "eta", "mu", "ax"}
    for key in ("step", "eta", "mu"):
        v = asgd.state[b][key]
        assert v.shape == () and v.dtype is fw.float32
    assert rprop.defaults["etas"] == (0.5, 1.2) and rprop.defaults["step_sizes"] == (1e-6, 50)
    assert {k: asgd.defaults[k] for k in ("lr", "lambd", "alpha", "t0", "weight_decay")} == \
        dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0)
    for opt in (rprop, asgd):
        assert {"foreach", "maximize", "differentiable", "capturable"} <= set(opt.defaults)


@pytest.mark.parametrize("dtype", [fw.float32, fw.float64])
@pytest.mark.parametrize("case", CASES[1::2], ids=[case_id(c) for c in CASES[1::2]])
def test_state_dict_resume_is_identical(case, dtype):
    cls, _, kw0, over1 = case
    opt, ps, opt2, ps2 = check_state_dict_resume(cls, kw0, over1, steps=4, dtype=dtype)
    for key, value in opt2.state[ps2[0]].items():
        assert value.dtype is opt.state[ps[0]][key].dtype, key


def test_constructor_errors():
    x = fw.zeros(2, requires_grad=True)
    with pytest.raises(ArgumentError, match="Invalid learning rate"):
        optim.Rprop([x], lr=-1)
    with pytest.raises(ArgumentError, match="Invalid eta values: 0.5, 0.9"):
        optim.Rprop([x], etas=(0.5, 0.9))
    with pytest.raises(ArgumentError, match="Invalid eta values: 1.0, 1.2"):
        optim.Rprop([x], etas=(1.0, 1.2))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.ASGD([x], lr=-0.1)
    with pytest.raises(ArgumentError, match="Invalid weight_decay value: -1"):
        optim.ASGD([x], weight_decay=-1)
    for cls in (optim.Rprop, optim.ASGD):
        with pytest.raises(NotImplementedError, match="differentiable"):
            cls([x], differentiable=True)
    with pytest.raises(ArgumentError, match="Invalid learning rate"):
        optim.LBFGS([x], lr=-1)
    with pytest.raises(ArgumentError, match="strong_wolfe"):
        optim.LBFGS([x], line_search_fn="armijo")
    with pytest.raises(ArgumentError, match="parameter groups"):
        optim.LBFGS([{"params": [x]}, {"params": [fw.zeros(1, requires_grad=True)]}])
    assert optim.LBFGS([x]).defaults["max_eval"] == 25
    assert optim.LBFGS([x], max_iter=7).defaults["max_eval"] == 8


@pytest.mark.parametrize("cls,kw", [(optim.Rprop, dict(lr=0.1)),
                                    (optim.ASGD, dict(lr=0.1, t0=10))])
def test_minimizes_a_quadratic_with_backward(cls, kw):
    check_minimizes_quadratic(cls, kw, steps=60, factor=0.01)


@pytest.mark.parametrize("cls,kw", [(optim.Rprop, dict(maximize=True)),
                                    (optim.ASGD, dict(weight_decay=0.1, t0=1))])
def test_step_is_capturable(cls, kw):
    """The whole update is tensor ops and in-place writes: no graph breaks."""
    check_step_is_capturable(cls, kw, steps=3)


@pytest.mark.parametrize("cls,kw", [(optim.Rprop, dict(lr=0.01)),
                                    (optim.ASGD, dict(lr=0.05, t0=2, weight_decay=0.1))])
def test_compiled_training_step_matches_eager(cls, kw):
    """opt.step() captured by fw.compile (with a scheduled lr) follows eager exactly."""
    w_eager, opt_eager, w_comp, opt_comp = compiled_and_eager_training(cls, kw, steps=5,
                                                                       mode="always")
    np.testing.assert_allclose(w_comp.detach().numpy(), w_eager.detach().numpy(), rtol=1e-6,
                               atol=1e-7)
    for key, value in opt_eager.state[w_eager].items():
        np.testing.assert_allclose(opt_comp.state[w_comp][key].numpy(), value.numpy(),
                                   rtol=1e-6, atol=1e-7, err_msg=key)
    assert float(opt_comp.state[w_comp]["step"]) == 5.0


# -- LBFGS --------------------------------------------------------------------------------
def _rosenbrock_np(x):
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    g = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2),
                  200 * (x[1] - x[0] ** 2)])
    return f, g


_RNG = np.random.default_rng(3)
_X, _Y = _RNG.standard_normal((10, 3)), _RNG.standard_normal((10, 2))


def _linreg_np(v):
    w, b = v[:6].reshape(3, 2), v[6:]
    r = _X @ w + b - _Y
    return (r ** 2).mean(), np.concatenate([(2 * _X.T @ r / r.size).ravel(),
                                            2 * r.sum(0) / r.size])


def _rosenbrock_fw(params):
    (x,) = params
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _linreg_fw(params):
    w, b = params
    return ((fw.tensor(_X) @ w + b - fw.tensor(_Y)) ** 2).mean()


def ref_lbfgs_step(x, fg, st, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                   tolerance_change=1e-9, history_size=100):
    """One LBFGS.step (no line search) on the flat vector ``x``; ``st`` persists."""
    max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
    st.setdefault("n_iter", 0)
    st.setdefault("func_evals", 0)
    loss, g = fg(x)
    evals = 1
    st["func_evals"] += 1
    if np.abs(g).max() <= tolerance_grad:
        return x
    n = 0
    while n < max_iter:
        n += 1
        st["n_iter"] += 1
        if st["n_iter"] == 1:
            d, st["S"], st["Y"], st["ro"], st["H"] = -g, [], [], [], 1.0
        else:
            y, s = g - st["prev_g"], st["d"] * st["t"]
            ys = y @ s
            if ys > 1e-10:
                if len(st["S"]) == history_size:
                    for key in ("S", "Y", "ro"):
                        st[key].pop(0)
                st["S"].append(s)
                st["Y"].append(y)
                st["ro"].append(1 / ys)
                st["H"] = ys / (y @ y)
            q, al = -g, {}
            for i in reversed(range(len(st["S"]))):
                al[i] = (st["S"][i] @ q) * st["ro"][i]
                q = q - al[i] * st["Y"][i]
            d = q * st["H"]
            for i in range(len(st["S"])):
                d = d + (al[i] - (st["Y"][i] @ d) * st["ro"][i]) * st["S"][i]
        st["d"], st["prev_g"], prev_loss = d, g.copy(), loss
        st["t"] = min(1.0, 1.0 / np.abs(g).sum()) * lr if st["n_iter"] == 1 else lr
        if g @ d > -tolerance_change:
            break
        x = x + st["t"] * d
        opt_cond = False
        if n != max_iter:
            loss, g = fg(x)
            opt_cond = np.abs(g).max() <= tolerance_grad
            evals += 1
            st["func_evals"] += 1
        if n == max_iter or evals >= max_eval or opt_cond:
            break
        if np.abs(st["d"] * st["t"]).max() <= tolerance_change:
            break
        if abs(loss - prev_loss) < tolerance_change:
            break
    return x


def _lbfgs_problem(name, **kw):
    if name == "rosenbrock":
        params = [fw.tensor([-1.5, 2.0], dtype=fw.float64, requires_grad=True)]
        loss_fn, fg = _rosenbrock_fw, _rosenbrock_np
    else:
        params = [fw.tensor(np.arange(6.0).reshape(3, 2) / 10, requires_grad=True),
                  fw.tensor([0.5, -0.5], dtype=fw.float64, requires_grad=True)]
        loss_fn, fg = _linreg_fw, _linreg_np
    opt = optim.LBFGS(params, **kw)

    def closure():
        opt.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    return params, opt, closure, fg


def _flat(params):
    return np.concatenate([p.detach().numpy().ravel() for p in params])


@pytest.mark.parametrize("name,kw", [
    ("rosenbrock", dict(max_iter=4)),
    ("rosenbrock", dict(lr=0.5, max_iter=3, history_size=2)),
    ("linreg", dict(max_iter=3, max_eval=3)),
    ("linreg", dict(lr=0.8, max_iter=5, history_size=3)),
])
def test_lbfgs_matches_reference_without_line_search(name, kw):
    params, opt, closure, fg = _lbfgs_problem(name, **kw)
    x, st = _flat(params), {}
    for call in range(4):
        loss = opt.step(closure)
        x = ref_lbfgs_step(x, fg, st, **kw)
        np.testing.assert_allclose(_flat(params), x, rtol=1e-9, atol=1e-12,
                                   err_msg=f"after step() call {call + 1}")
        state = opt.state[params[0]]
        assert (state["n_iter"], state["func_evals"]) == (st["n_iter"], st["func_evals"])
        assert isinstance(loss, fw.Tensor)
    assert len(state["old_dirs"]) == len(st["Y"]) and float(state["H_diag"]) == \
        pytest.approx(st["H"], rel=1e-9)


@pytest.mark.parametrize("line_search_fn,lr", [(None, 1.0), ("strong_wolfe", 1.0)])
def test_lbfgs_minimizes_rosenbrock(line_search_fn, lr):
    params, opt, closure, _ = _lbfgs_problem("rosenbrock", lr=lr, max_iter=100,
                                             line_search_fn=line_search_fn)
    for _ in range(5):
        opt.step(closure)
    np.testing.assert_allclose(params[0].detach().numpy(), [1.0, 1.0], atol=1e-4)
    state = opt.state[params[0]]
    assert set(state) >= {"d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
                          "prev_loss", "n_iter", "func_evals"}
    if line_search_fn:  # the line search needs far fewer iterations
        assert state["n_iter"] < 60


def test_lbfgs_float32_linear_regression_with_line_search():
    w = fw.zeros(3, 2, requires_grad=True)
    b = fw.zeros(2, requires_grad=True)
    x, y = fw.tensor(_X, dtype=fw.float32), fw.tensor(_Y, dtype=fw.float32)
    opt = optim.LBFGS([w, b], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    a = np.concatenate([_X, np.ones((10, 1))], 1)
    solution = np.linalg.lstsq(a, _Y, rcond=None)[0]
    # float32 losses stop telling steps apart near the minimum: a looser tolerance
    np.testing.assert_allclose(w.detach().numpy(), solution[:3], atol=1e-3)
    np.testing.assert_allclose(b.detach().numpy(), solution[3], atol=1e-3)
    assert w.dtype is fw.float32


def test_lbfgs_stops_at_an_optimum_and_counts_evaluations():
    w = fw.ones(2, requires_grad=True)
    opt = optim.LBFGS([w])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure)) == 0.0
    assert len(calls) == 1 and opt.state[w]["n_iter"] == 0 and opt.state[w]["func_evals"] == 1
    with pytest.raises(ArgumentError, match="closure"):
        opt.step(None)


def test_lbfgs_state_dict_resume_is_identical():
    kw = dict(max_iter=3, history_size=4, line_search_fn="strong_wolfe")
    params, opt, closure, _ = _lbfgs_problem("linreg", **kw)
    opt.step(closure)
    opt.step(closure)
    saved = copy.deepcopy(opt.state_dict())
    mid = [p.detach().numpy().copy() for p in params]
    opt.step(closure)
    opt.step(closure)
    params2, opt2, closure2, _ = _lbfgs_problem("linreg", **kw)
    with fw.no_grad():
        for p, v in zip(params2, mid):
            p.copy_(fw.tensor(v))
    opt2.load_state_dict(saved)
    opt2.step(closure2)
    opt2.step(closure2)
    np.testing.assert_array_equal(_flat(params2), _flat(params))
    assert opt2.state[params2[0]]["n_iter"] == opt.state[params[0]]["n_iter"]


def test_cubic_interpolate_and_strong_wolfe():
    # x^3 - 3x has its local minimum at 1: the cubic through (0, f, f') and (2, f, f')
    assert _cubic_interpolate(0.0, 0.0, -3.0, 2.0, 2.0, 9.0) == pytest.approx(1.0)
    assert _cubic_interpolate(2.0, 2.0, 9.0, 0.0, 0.0, -3.0) == pytest.approx(1.0)
    assert _cubic_interpolate(0.0, 0.0, -3.0, 2.0, 2.0, 9.0, bounds=(1.5, 3)) == 1.5
    # no real minimizer (d2^2 < 0): the middle of the bounds
    assert _cubic_interpolate(0.0, 0.0, 2.0, 1.0, 1.0, 2.0) == 0.5

    # a 1-D quartic along d = 1 from x = 0: the accepted step meets the strong Wolfe rules
    def f_and_g(v):
        return float(v ** 4 - 3 * v), fw.tensor([4 * v ** 3 - 3], dtype=fw.float64)

    x0 = [fw.tensor([0.0], dtype=fw.float64)]
    d = fw.tensor([1.0], dtype=fw.float64)
    f0, g0 = f_and_g(0.0)
    gtd = float(g0 @ d)
    for t0 in (1e-3, 1.0, 5.0):
        f, g, t, evals = _strong_wolfe(lambda x, t, d: f_and_g(float(x[0][0]) + t), x0, t0, d,
                                       f0, g0, gtd)
        assert f <= f0 + 1e-4 * t * gtd and abs(float(g @ d)) <= 0.9 * abs(gtd)
        assert f == pytest.approx(f_and_g(t)[0]) and 1 <= evals <= 25


def test_lbfgs_breaks_fw_compile_graph_and_runs_eagerly():
    w = fw.zeros(3, requires_grad=True)
    target = fw.tensor([1.0, 2.0, 3.0])
    opt = optim.LBFGS([w])

    def closure():
        opt.zero_grad()
        loss = ((w - target) ** 2).sum()
        loss.backward()
        return loss

    with pytest.warns(UserWarning, match="graph break: LBFGS.step"):
        fw.compile(lambda: opt.step(closure))()
    np.testing.assert_allclose(w.detach().numpy(), [1.0, 2.0, 3.0], atol=1e-5)
    with pytest.raises(GraphBreak, match="LBFGS.step"):
        fw.compile(lambda: opt.step(closure), fullgraph=True)()
