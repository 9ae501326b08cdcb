"""Checks shared by the optimizer tests (tests/test_optim.py, tests/test_optim_extra.py):
an optimizer against a NumPy reference rule, state_dict resume, a quadratic it must
minimize, a capturable step and a compiled training step."""

import copy
import warnings

import numpy as np

import framework as fw
from framework import optim
from framework._state import tls
from framework.errors import GraphBreak


def case_id(case) -> str:
    """A test id for a ``(cls, reference, kwargs of group 0, ...)`` case: the class name
    and the group-0 keyword names other than ``lr``."""
    return case[0].__name__ + "-" + "-".join(k for k in case[2] if k != "lr")


def check_matches_reference(cls, ref, kw0, over1, *, tol, steps=12, make_grad=None,
                            ref_kwargs=None):
    """Run ``cls`` on three float64 parameters in two groups (group 1 with ``over1``) for
    ``steps`` steps of random gradients, and after each step compare every parameter with
    ``ref(value, grad, state, **kwargs)`` to ``tol``. ``make_grad(rng, shape, step)`` draws
    a gradient (default: standard normal); ``ref_kwargs(kwargs)`` adapts a group's kwargs
    for the reference. Returns (optimizer, parameters, reference states)."""
    rng = np.random.default_rng(1)
    shapes = [(3, 4), (5,), (2, 2)]
    values = [rng.standard_normal(s) for s in shapes]
    params = [fw.tensor(v, dtype=fw.float64, requires_grad=True) for v in values]
    opt = cls([{"params": params[:2]}, {"params": params[2:], **over1}], **kw0)
    kws = [kw0] * 2 + [{**kw0, **over1}]
    states = [{} for _ in params]
    for step in range(steps):
        grads = [make_grad(rng, s, step) if make_grad else rng.standard_normal(s)
                 for s in shapes]
        for p, g in zip(params, grads):
            p.grad = fw.tensor(g, dtype=fw.float64)
        opt.step()
        for i, g in enumerate(grads):
            kw = ref_kwargs(kws[i]) if ref_kwargs else kws[i]
            values[i] = ref(values[i], g, states[i], **kw)
            np.testing.assert_allclose(params[i].detach().numpy(), values[i], rtol=tol,
                                       atol=tol, err_msg=f"param {i} after step {step + 1}")
    return opt, params, states


def check_state_dict_resume(cls, kw0, over1, steps, dtype=None):
    """Two parameters in two groups (group 1 with ``over1``): ``2 * steps`` steps in one
    run must equal ``steps`` steps, a deep-copied ``state_dict()`` loaded into a fresh
    optimizer, and ``steps`` more. ``dtype``: the parameters' (default: inferred from the
    float64 arrays). Returns (first optimizer, its params, resumed optimizer, its params)."""
    rng = np.random.default_rng(2)
    init = [rng.standard_normal((3,)), rng.standard_normal((2, 2))]
    grads = [[rng.standard_normal(v.shape) for v in init] for _ in range(2 * steps)]

    def make(values):
        ps = [fw.tensor(v, dtype=dtype, requires_grad=True) for v in values]
        return ps, cls([{"params": ps[:1]}, {"params": ps[1:], **over1}], **kw0)

    def run(ps, opt, grad_steps):
        for gs in grad_steps:
            for p, g in zip(ps, gs):
                p.grad = fw.tensor(g, dtype=p.dtype)
            opt.step()

    ps, opt = make(init)
    run(ps, opt, grads[:steps])
    saved = copy.deepcopy(opt.state_dict())  # state_dict() references live state, as in torch
    mid = [p.detach().numpy().copy() for p in ps]
    run(ps, opt, grads[steps:])
    ps2, opt2 = make(mid)
    opt2.load_state_dict(saved)
    run(ps2, opt2, grads[steps:])
    for a, b in zip(ps, ps2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    return opt, ps, opt2, ps2


def check_minimizes_quadratic(cls, kw, steps, factor):
    """``steps`` steps of ``cls(**kw)`` on ``sum((w - target)^2)`` with ``backward`` must
    bring the loss below ``factor`` times the first; ``w`` stays a float32 leaf."""
    target = fw.tensor([1.0, -2.0, 3.0])
    w = fw.zeros(3, requires_grad=True)
    opt = cls([w], **kw)
    first = None
    for _ in range(steps):
        opt.zero_grad()
        loss = ((w - target) ** 2).sum()
        loss.backward()
        opt.step()
        first = float(loss) if first is None else first
    assert float(((w - target) ** 2).sum()) < factor * first
    assert w.dtype is fw.float32 and w.requires_grad and w.is_leaf


class StrictTracer:
    """Records mutations; any graph break (.item(), .numpy(), bool(t)) fails the test."""

    def __init__(self):
        self.mutated = []

    def record(self, op, args, attrs, outs):
        pass

    def mutate(self, target, value):
        self.mutated.append(target)

    def alias(self, src, dst):
        pass

    def graph_break(self, what):
        raise GraphBreak(f"optimizer step broke the graph: {what}")


def check_step_is_capturable(cls, kw, steps):
    """``steps`` steps of ``cls(**kw)`` under a :class:`StrictTracer`: the whole update is
    tensor ops and in-place writes (no graph breaks) and writes the parameter."""
    w = fw.ones(3, requires_grad=True)
    opt = cls([w], **kw)
    for _ in range(steps):
        w.grad = fw.full((3,), 0.5)
        tracer = StrictTracer()
        tls.tracer = tracer
        try:
            opt.step()
        finally:
            tls.tracer = None
        assert any(t is w for t in tracer.mutated)


def compiled_and_eager_training(cls, kw, steps, **compile_kw):
    """The same least-squares training step (with an ExponentialLR schedule) run ``steps``
    times eagerly and through ``fw.compile(..., **compile_kw)``; a graph break (which warns
    and falls back to eager) fails. Returns (eager weight, eager optimizer, compiled
    weight, compiled optimizer)."""
    fw.manual_seed(0)
    w_eager = fw.randn(4, 2).requires_grad_()
    w_comp = w_eager.detach().clone().requires_grad_()
    x, y = fw.randn(8, 4), fw.randn(8, 2)
    opt_eager, opt_comp = cls([w_eager], **kw), cls([w_comp], **kw)
    scheds = [optim.lr_scheduler.ExponentialLR(o, 0.8) for o in (opt_eager, opt_comp)]

    def step(w, opt):
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    # the optimizer must be a direct closure variable for fw.compile to find its state
    compiled = fw.compile(lambda: step(w_comp, opt_comp), **compile_kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a graph break would warn and fall back to eager
        for _ in range(steps):
            step(w_eager, opt_eager)
            compiled()
            for s in scheds:
                s.step()
    return w_eager, opt_eager, w_comp, opt_comp
