"""``fused=True`` for Adam, AdamW, SGD and Adagrad on the CPU: the same update as the
default path (float32/float64 to the last bit, float16/bfloat16 computed in float32),
identical state_dicts, a compiled training step, and PyTorch's constructor errors."""

import copy

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.errors import ArgumentError, DTypeError
from framework.optim import _fused

CASES = {
    "adam": (optim.Adam, dict(lr=0.01)),
    "adam_amsgrad_l2_max": (optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1,
                                             maximize=True)),
    "adam_decoupled": (optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05,
                                        decoupled_weight_decay=True)),
    "adamw": (optim.AdamW, dict(lr=0.01)),
    "adamw_amsgrad_max": (optim.AdamW, dict(lr=0.01, amsgrad=True, maximize=True)),
    "sgd": (optim.SGD, dict(lr=0.1)),
    "sgd_momentum_dampening_wd": (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3,
                                                  weight_decay=0.01)),
    "sgd_nesterov_max": (optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, maximize=True,
                                         weight_decay=0.02)),
    "adagrad": (optim.Adagrad, dict(lr=0.1)),
    "adagrad_all": (optim.Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1,
                                        initial_accumulator_value=0.3, eps=1e-6,
                                        maximize=True)),
}
FUSED_FN = {optim.Adam: "_adam_cpu", optim.AdamW: "_adam_cpu", optim.SGD: "_sgd_cpu",
            optim.Adagrad: "_adagrad_cpu"}


def _params(dtype, device="cpu"):
    """A matrix, a transposed (non-contiguous) view and a 0-d parameter."""
    rng = np.random.default_rng(0)
    mat = fw.tensor(rng.standard_normal((5, 3)), dtype=dtype, device=device)
    view = fw.tensor(rng.standard_normal((4, 3)), dtype=dtype, device=device).t()
    scalar = fw.tensor(rng.standard_normal(()), dtype=dtype, device=device)
    return [p.requires_grad_() for p in (mat, view, scalar)]


def _grads(step, params):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(p.shape) for p in params]


def run(cls, kwargs, fused, dtype=fw.float32, steps=4, device="cpu"):
    """``steps`` updates with fixed gradients; returns (params, optimizer)."""
    params = _params(dtype, device)
    opt = cls(params, fused=fused, **kwargs)
    for i in range(steps):
        for p, g in zip(params, _grads(i, params)):
            p.grad = fw.tensor(g, dtype=dtype, device=device)
        opt.step()
    return params, opt


def as_np(t):
    return t.detach().cpu().float().numpy() if t.dtype is not fw.float64 else \
        t.detach().cpu().numpy()


def assert_same(pa, oa, pb, ob, **tol):
    for a, b in zip(pa, pb):
        np.testing.assert_allclose(as_np(a), as_np(b), **tol)
    for a, b in zip(pa, pb):
        sa, sb = oa.state[a], ob.state[b]
        assert list(sa) == list(sb)
        for k in sa:
            assert sa[k].dtype is sb[k].dtype and sa[k].shape == sb[k].shape, k
            np.testing.assert_allclose(as_np(sa[k]), as_np(sb[k]), err_msg=k, **tol)


@pytest.mark.parametrize("dtype", [fw.float32, fw.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_matches_default(case, dtype, monkeypatch):
    cls, kwargs = CASES[case]
    calls = []
    name = FUSED_FN[cls]
    real = getattr(_fused, name)
    monkeypatch.setattr(_fused, name, lambda *a, **k: (calls.append(1), real(*a, **k)))
    pu, ou = run(cls, kwargs, fused=False, dtype=dtype)
    assert not calls
    pf, of = run(cls, kwargs, fused=True, dtype=dtype)
    assert len(calls) == 4 * len(pf)  # every parameter, every step took the fused path
    assert_same(pf, of, pu, ou, rtol=1e-6, atol=1e-12)
    assert pf[1].grad is not None and not pf[1].is_contiguous()


@pytest.mark.parametrize("dtype", [fw.bfloat16, fw.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("case", ["adam_amsgrad_l2_max", "adamw", "sgd_nesterov_max",
                                  "adagrad_all"])
def test_half_precision_params(case, dtype):
    """Half parameters are computed in float32 and rounded once per step: they track a
    float32 run from the same values and agree with the default path to a few ulps."""
    cls, kwargs = CASES[case]
    kwargs = {**kwargs, "lr": 0.05}
    pf, of = run(cls, kwargs, fused=True, dtype=dtype, steps=3)
    pu, _ = run(cls, kwargs, fused=False, dtype=dtype, steps=3)
    params = [fw.tensor(as_np(p), requires_grad=True) for p in _params(dtype)]
    ref = cls(params, **kwargs)
    for i in range(3):
        for p, g in zip(params, _grads(i, params)):
            p.grad = fw.tensor(g, dtype=dtype).float()
        ref.step()
    for a, b, r in zip(pf, pu, params):
        assert a.dtype is dtype
        np.testing.assert_allclose(as_np(a), as_np(r), rtol=2e-2, atol=1e-2)
        np.testing.assert_allclose(as_np(a), as_np(b), rtol=2e-2, atol=1e-2)
    for a, r in zip(pf, params):
        for k, v in of.state[a].items():
            assert v.dtype is (fw.float32 if k == "step" else dtype)
            np.testing.assert_allclose(as_np(v), as_np(ref.state[r][k]), rtol=2e-2, atol=2e-3,
                                       err_msg=k)


@pytest.mark.parametrize("case", ["adam_amsgrad_l2_max", "sgd_momentum_dampening_wd",
                                  "adagrad_all"])
def test_state_dict_round_trip(case):
    cls, kwargs = CASES[case]
    pf, of = run(cls, kwargs, fused=True, steps=2)
    pu, ou = run(cls, kwargs, fused=False, steps=2)
    sf, su = copy.deepcopy(of.state_dict()), copy.deepcopy(ou.state_dict())
    assert sf["state"].keys() == su["state"].keys()
    for i in sf["state"]:
        assert list(sf["state"][i]) == list(su["state"][i])
        for k in sf["state"][i]:
            np.testing.assert_array_equal(as_np(sf["state"][i][k]), as_np(su["state"][i][k]))
    strip = [{k: v for k, v in g.items() if k != "fused"} for g in sf["param_groups"]]
    assert strip == [{k: v for k, v in g.items() if k != "fused"} for g in su["param_groups"]]
    # a fresh optimizer (fused or not) resumes from either state dict
    for p, g in zip(pu, _grads(7, pu)):
        p.grad = fw.tensor(g, dtype=fw.float32)
    ou.step()
    for state, fused in ((sf, True), (su, True), (sf, False)):
        params = [fw.tensor(as_np(p), requires_grad=True) for p in pf]
        opt = cls(params, fused=fused, **kwargs)
        opt.load_state_dict(state)
        for p, g in zip(params, _grads(7, params)):
            p.grad = fw.tensor(g, dtype=fw.float32)
        opt.step()
        for a, b in zip(params, pu):
            np.testing.assert_allclose(as_np(a), as_np(b), rtol=1e-6, atol=1e-12)


def test_params_without_grad_and_added_groups():
    a, b = fw.ones(3, requires_grad=True), fw.ones(2, requires_grad=True)
    opt = optim.Adagrad([a], lr=0.1, fused=True)
    opt.add_param_group({"params": [b], "lr": 0.5})
    b.grad = fw.ones(2)
    opt.step()
    np.testing.assert_array_equal(a.detach().numpy(), np.ones(3))  # no grad: untouched
    assert float(opt.state[a]["step"]) == 0 and float(opt.state[b]["step"]) == 1
    np.testing.assert_allclose(b.detach().numpy(), 1 - 0.5 / (1 + 1e-10), rtol=1e-6)
    sgd = optim.SGD([a], lr=0.1, fused=True)
    a.grad = fw.ones(3)
    sgd.step()
    assert not sgd.state[a]  # no momentum: no state, as in the default path


def train(make_opt, compiled, steps=4, eager_after=0, device="cpu"):
    """A small classifier trained ``steps`` times by ``step`` (compiled or not), then
    ``eager_after`` times eagerly; returns (losses, parameters, optimizer, function)."""
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).to(device)
    opt = make_opt(model.parameters())

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    fw.manual_seed(1)
    data = [(fw.randn(4, 6).to(device), fw.randint(0, 3, (4,)).to(device))
            for _ in range(steps + eager_after)]
    losses = [float(fn(x, y)) for x, y in data[:steps]]
    losses += [float(step(x, y)) for x, y in data[steps:]]
    return losses, [as_np(p) for p in model.parameters()], opt, fn


def check_same_training(first, second):
    """Two :func:`train` results (losses, parameters, optimizer) agree to float32
    rounding: losses, parameters and every optimizer state tensor."""
    (l1, p1, o1), (l2, p2, o2) = first, second
    np.testing.assert_allclose(l1, l2, rtol=1e-5, atol=1e-6)
    for a, b in zip(p1, p2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(o1.state.values(), o2.state.values()):
        for k in a:
            np.testing.assert_allclose(as_np(a[k]), as_np(b[k]), rtol=1e-5, atol=1e-6)


OPTS = {
    "adamw_amsgrad": lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True, fused=True),
    "sgd_nesterov": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, fused=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, weight_decay=0.01, fused=True),
}


@pytest.mark.parametrize("name", sorted(OPTS))
def test_compiled_training_step_matches_eager(name):
    """A captured step runs the default rule in the graph (tensors have no data while
    tracing); the results match eager fused steps, also when eager steps follow."""
    l1, p1, o1, _ = train(OPTS[name], False, eager_after=2)
    l2, p2, o2, fn = train(OPTS[name], True, eager_after=2)
    st = fn.stats()
    assert st["eager_reason"] is None and st["cache_hits"] >= 2, st
    check_same_training((l1, p1, o1), (l2, p2, o2))


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW, optim.SGD, optim.Adagrad],
                         ids=lambda c: c.__name__)
def test_constructor_errors(cls):
    x = fw.zeros(2, requires_grad=True)
    with pytest.raises(ArgumentError, match="`fused` and `foreach` cannot be `True` together"):
        cls([x], lr=0.1, fused=True, foreach=True)
    with pytest.raises(ArgumentError, match="`fused` does not support `differentiable`"):
        cls([x], lr=0.1, fused=True, differentiable=True)
    with pytest.raises(DTypeError, match=r"fused=True\) requires floating point parameters, "
                                         r"got int64 \(parameter 1 of group 0"):
        cls([x, fw.zeros(2, dtype=fw.int64)], lr=0.1, fused=True)
    with pytest.raises(TypeError):  # DTypeError is a TypeError
        cls([fw.zeros(2, dtype=fw.int32)], lr=0.1, fused=True)
    cls([x], lr=0.1, fused=True, foreach=False)  # explicit foreach=False is fine
    cls([fw.zeros(2, dtype=fw.int32)], lr=0.1, fused=False)  # only checked when fused
