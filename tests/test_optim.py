"""Optimizers against NumPy re-implementations of PyTorch's documented update rules."""

import math

import numpy as np
import pytest

import framework as fw
from framework import optim
from framework.errors import ArgumentError
from framework.optim import optimizer as optimizer_mod
from tests.optim_helpers import (case_id, check_matches_reference, check_minimizes_quadratic,
                                 check_state_dict_resume, check_step_is_capturable,
                                 compiled_and_eager_training)


# -- NumPy references (one step; `s` is the per-parameter state dict) -----------------------
def ref_sgd(p, g, s, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
            maximize=False):
    g = -g if maximize else g
    g = g + weight_decay * p
    if momentum:
        s["buf"] = g.copy() if "buf" not in s else momentum * s["buf"] + (1 - dampening) * g
        g = g + momentum * s["buf"] if nesterov else s["buf"]
    return p - lr * g


def ref_adam(p, g, s, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
             maximize=False, decoupled=False):
    b1, b2 = betas
    t = s["t"] = s.get("t", 0) + 1
    g = -g if maximize else g
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    v = s["v"]
    if amsgrad:
        s["vmax"] = v = np.maximum(s.get("vmax", 0), s["v"])
    m_hat = s["m"] / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_adamw(p, g, s, lr, weight_decay=1e-2, **kw):
    return ref_adam(p, g, s, lr, weight_decay=weight_decay, decoupled=True, **kw)


def ref_rmsprop(p, g, s, lr, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                maximize=False):
    g = -g if maximize else g
    g = g + weight_decay * p
    s["v"] = alpha * s.get("v", 0) + (1 - alpha) * g * g
    v = s["v"]
    if centered:
        s["gavg"] = alpha * s.get("gavg", 0) + (1 - alpha) * g
        v = v - s["gavg"] ** 2
    if momentum > 0:
        s["b"] = momentum * s.get("b", 0) + g / (np.sqrt(v) + eps)
        return p - lr * s["b"]
    return p - lr * g / (np.sqrt(v) + eps)


def ref_adagrad(p, g, s, lr, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                eps=1e-10, maximize=False):
    t = s["t"] = s.get("t", 0) + 1
    g = -g if maximize else g
    g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    s["sum"] = s.get("sum", initial_accumulator_value) + g * g
    return p - clr * g / (np.sqrt(s["sum"]) + eps)


def ref_adadelta(p, g, s, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False):
    g = -g if maximize else g
    g = g + weight_decay * p
    s["v"] = rho * s.get("v", 0) + (1 - rho) * g * g
    dx = np.sqrt(s.get("u", 0) + eps) / np.sqrt(s["v"] + eps) * g
    s["u"] = rho * s.get("u", 0) + (1 - rho) * dx * dx
    return p - lr * dx


def ref_adamax(p, g, s, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False):
    b1, b2 = betas
    t = s["t"] = s.get("t", 0) + 1
    g = -g if maximize else g
    g = g + weight_decay * p
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["u"] = np.maximum(b2 * s.get("u", 0), np.abs(g) + eps)
    return p - lr * s["m"] / ((1 - b1 ** t) * s["u"])


def ref_nadam(p, g, s, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
              decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    t = s["t"] = s.get("t", 0) + 1
    g = -g if maximize else g
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    s["prod"] = s.get("prod", 1.0) * mu
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    m_hat = mu_next * s["m"] / (1 - s["prod"] * mu_next) + (1 - mu) * g / (1 - s["prod"])
    v_hat = s["v"] / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_radam(p, g, s, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
              decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    t = s["t"] = s.get("t", 0) + 1
    g = -g if maximize else g
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    m_hat = s["m"] / (1 - b1 ** t)
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho_t > 5:
        lt = math.sqrt(1 - b2 ** t) / (np.sqrt(s["v"]) + eps)
        rt = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf /
                       ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return p - lr * m_hat * rt * lt
    return p - lr * m_hat


# (optimizer class, reference, kwargs of group 0, overrides of group 1, tolerance)
CASES = [
    (optim.SGD, ref_sgd, dict(lr=0.1), dict(lr=0.05), 1e-12),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9, weight_decay=0.1), dict(dampening=0.5), 1e-12),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True),
     dict(momentum=0.5), 1e-12),
    (optim.Adam, ref_adam, dict(lr=0.01), dict(betas=(0.8, 0.99)), 1e-10),
    (optim.Adam, ref_adam, dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True),
     dict(lr=0.02), 1e-10),
    (optim.AdamW, ref_adamw, dict(lr=0.01), dict(weight_decay=0.3, amsgrad=True), 1e-10),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01), dict(alpha=0.9, weight_decay=0.1), 1e-10),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, centered=True, momentum=0.9),
     dict(centered=False, maximize=True), 1e-10),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.2),
     dict(weight_decay=0.1, eps=1e-6), 1e-10),
    (optim.Adadelta, ref_adadelta, dict(lr=1.0), dict(rho=0.5, weight_decay=0.2), 1e-10),
    (optim.Adamax, ref_adamax, dict(lr=0.01), dict(betas=(0.5, 0.9), weight_decay=0.1), 1e-10),
    (optim.NAdam, ref_nadam, dict(lr=0.01), dict(weight_decay=0.1, momentum_decay=0.01), 1e-6),
    (optim.NAdam, ref_nadam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
     dict(maximize=True), 1e-6),
    (optim.RAdam, ref_radam, dict(lr=0.01), dict(weight_decay=0.1), 1e-10),
    (optim.RAdam, ref_radam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
     dict(betas=(0.5, 0.9)), 1e-10),
]


def _ref_kwargs(cls, kw):
    kw = dict(kw)
    if cls is optim.AdamW:
        kw.pop("decoupled_weight_decay", None)
    return kw


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_matches_reference(case):
    cls, ref, kw0, over1, tol = case
    check_matches_reference(cls, ref, kw0, over1, tol=tol,
                            ref_kwargs=lambda kw: _ref_kwargs(cls, kw))


@pytest.mark.parametrize("case", CASES[::2], ids=[case_id(c) for c in CASES[::2]])
def test_state_dict_resume_is_identical(case):
    cls, _, kw0, over1, _ = case
    check_state_dict_resume(cls, kw0, over1, steps=3)


def test_state_dict_format_follows_pytorch():
    a = fw.zeros(2, requires_grad=True)
    b = fw.zeros(3, requires_grad=True)
    c = fw.zeros(1, requires_grad=True)
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1)
    for p in (a, b, c):
        p.grad = fw.ones_like(p)
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["lr"] == 0.1
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    step = sd["state"][0]["step"]
    assert isinstance(step, fw.Tensor) and step.shape == () and step.dtype is fw.float32
    assert float(step) == 1.0
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


def test_step_counter_is_updated_in_place():
    p = fw.zeros(2, requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    p.grad = fw.ones(2)
    opt.step()
    step = opt.state[p]["step"]
    opt.step()
    assert opt.state[p]["step"] is step and float(step) == 2.0


def test_load_state_dict_errors_and_casts():
    a = fw.zeros(2, requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    a.grad = fw.ones(2)
    opt.step()
    sd = opt.state_dict()
    two = optim.SGD([{"params": [fw.zeros(2, requires_grad=True)]},
                     {"params": [fw.zeros(2, requires_grad=True)]}], lr=0.1)
    with pytest.raises(ArgumentError, match="parameter groups"):
        two.load_state_dict(sd)
    bigger = optim.SGD([fw.zeros(2, requires_grad=True), fw.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ArgumentError, match="doesn't match the size"):
        bigger.load_state_dict(sd)
    with pytest.raises(ArgumentError, match="'state'"):
        bigger.load_state_dict({"foo": 1})
    p64 = fw.zeros(2, dtype=fw.float64, requires_grad=True)
    opt64 = optim.SGD([p64], lr=0.3, momentum=0.9)
    opt64.load_state_dict(sd)
    buf = opt64.state[p64]["momentum_buffer"]
    assert buf.dtype is fw.float64
    assert buf is not opt.state[a]["momentum_buffer"]  # copied, not aliased
    assert opt64.param_groups[0]["lr"] == 0.1 and opt64.param_groups[0]["params"][0] is p64


def test_constructor_errors():
    with pytest.raises(ArgumentError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(fw.zeros(2, requires_grad=True), lr=0.1)
    with pytest.raises(ArgumentError, match="Invalid learning rate"):
        optim.Adam([fw.zeros(2, requires_grad=True)], lr=-1)
    with pytest.raises(ArgumentError, match="beta parameter at index 1"):
        optim.Adam([fw.zeros(2, requires_grad=True)], betas=(0.9, 1.0))
    with pytest.raises(ArgumentError, match="Nesterov"):
        optim.SGD([fw.zeros(2, requires_grad=True)], lr=0.1, nesterov=True)
    x = fw.zeros(2, requires_grad=True)
    with pytest.raises(ArgumentError, match="non-leaf"):
        optim.SGD([x * 2], lr=0.1)
    with pytest.raises(ArgumentError, match="more than one parameter group"):
        optim.SGD([{"params": [x]}, {"params": [x]}], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD({x}, lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([x, 3.0], lr=0.1)
    with pytest.raises(ArgumentError, match="`fused` and `foreach` cannot be `True`"):
        optim.Adam([x], fused=True, foreach=True)
    with pytest.raises(NotImplementedError, match="differentiable"):
        optim.RMSprop([x], differentiable=True)


def test_add_param_group_and_defaults():
    a, b = fw.zeros(2, requires_grad=True), fw.zeros(2, requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.5)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["momentum"] == 0.5 and opt.param_groups[1]["lr"] == 0.01
    a.grad, b.grad = fw.ones(2), fw.ones(2)
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), [-0.1, -0.1])
    np.testing.assert_allclose(b.detach().numpy(), [-0.01, -0.01])


def test_named_parameters_are_accepted():
    a = fw.zeros(2, requires_grad=True)
    opt = optim.SGD([("w", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w"]


def test_zero_grad():
    a = fw.zeros(2, requires_grad=True)
    opt = optim.SGD([a], lr=0.1)
    a.grad = fw.ones(2)
    opt.zero_grad(set_to_none=False)
    g = a.grad
    assert g is not None and g.numpy().tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert a.grad is None


def test_zero_grad_keeps_grad_object_and_detaches_in_place():
    a = fw.ones(2, requires_grad=True)
    opt = optim.SGD([a], lr=0.1)
    (a * a).sum().backward(create_graph=True)
    g = a.grad
    assert g.grad_fn is not None
    opt.zero_grad(set_to_none=False)
    assert a.grad is g and g.grad_fn is None and not g.requires_grad
    assert g.numpy().tolist() == [0.0, 0.0]


def test_params_without_grad_are_skipped_and_closure_returns_loss():
    a, b = fw.ones(2, requires_grad=True), fw.ones(2, requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (a * a).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == 2.0
    assert b not in opt.state and float(opt.state[a]["step"]) == 1.0
    assert b.numpy(force=True).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("cls,kw", [(optim.SGD, dict(lr=0.1, momentum=0.9)),
                                    (optim.Adam, dict(lr=0.1)), (optim.AdamW, dict(lr=0.1)),
                                    (optim.RMSprop, dict(lr=0.01)), (optim.Adagrad, dict(lr=0.5)),
                                    (optim.Adadelta, dict(lr=50.0)), (optim.Adamax, dict(lr=0.1)),
                                    (optim.NAdam, dict(lr=0.1)), (optim.RAdam, dict(lr=0.1))])
def test_minimizes_a_quadratic_with_backward(cls, kw):
    check_minimizes_quadratic(cls, kw, steps=200, factor=0.1)


@pytest.mark.parametrize("cls,kw", [(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                    (optim.Adam, dict(amsgrad=True)), (optim.AdamW, {}),
                                    (optim.RMSprop, dict(centered=True, momentum=0.5)),
                                    (optim.Adagrad, dict(lr_decay=0.1)), (optim.Adadelta, {}),
                                    (optim.Adamax, {}), (optim.NAdam, {}), (optim.RAdam, {})])
def test_step_is_capturable(cls, kw):
    """The whole update is tensor ops and in-place writes: no graph breaks."""
    check_step_is_capturable(cls, kw, steps=2)


def test_hyper_hook_sees_every_hyper_parameter_read():
    w = fw.ones(2, requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    seen = []

    def hook(group, key, value):
        seen.append(key)
        return 0.0 if key == "lr" else value

    optimizer_mod._hyper_hook = hook
    try:
        w.grad = fw.ones(2)
        opt.step()
    finally:
        optimizer_mod._hyper_hook = None
    assert {"lr", "betas", "eps", "weight_decay"} <= set(seen)
    assert w.detach().numpy().tolist() == [1.0, 1.0]  # lr hooked to 0


def test_repr_lists_groups():
    opt = optim.SGD([fw.zeros(1, requires_grad=True)], lr=0.1)
    text = repr(opt)
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "lr: 0.1" in text


def test_step_hooks():
    w = fw.ones(1, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    calls = []
    h = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    w.grad = fw.ones(1)
    opt.step()
    h.remove()
    opt.step()
    assert calls == ["pre", "post", "post"]


def test_float16_params_keep_dtype():
    w = fw.ones(3, dtype=fw.float16, requires_grad=True)
    opt = optim.Adam([w], lr=0.01)
    w.grad = fw.ones(3, dtype=fw.float16)
    opt.step()
    assert w.dtype is fw.float16 and opt.state[w]["exp_avg"].dtype is fw.float16
    np.testing.assert_allclose(w.detach().numpy().astype(np.float64), 0.99, rtol=1e-3)


@pytest.mark.parametrize("cls,kw", [(optim.SGD, dict(lr=0.1, momentum=0.9)),
                                    (optim.Adam, dict(lr=0.01, amsgrad=True)),
                                    (optim.RAdam, dict(lr=0.01))])
def test_compiled_training_step_matches_eager(cls, kw):
    """opt.step() captured by fw.compile (with a scheduled lr) follows eager exactly."""
    w_eager, _, w_comp, opt_comp = compiled_and_eager_training(cls, kw, steps=4)
    np.testing.assert_allclose(w_comp.detach().numpy(), w_eager.detach().numpy(), rtol=1e-6)
    assert float(opt_comp.state[w_comp].get("step", fw.tensor(4.0))) == 4.0
