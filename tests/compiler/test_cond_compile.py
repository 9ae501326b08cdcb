"""fw.compile through fw.cond / fw.while_loop: one graph for every outcome (no recompile),
compiled == eager for values and training steps, the generated if/else and while, buffer
reuse around control flow, dynamic shapes and passes over subgraphs."""

import numpy as np
import pytest

import framework as fw
from compiler.ir import subgraphs
from framework import nn, optim


def _np(t):
    return t.detach().numpy()


def _compiled(fn, **kw):
    return fw.compile(fn, mode="always", fullgraph=True, **kw)


def test_one_graph_serves_both_outcomes():
    lin = nn.Linear(4, 4)

    def f(x, flag):
        return fw.cond(flag, lambda a: lin(a).relu(), lambda a: a * 2 - 1, (x,))

    cf = _compiled(f)
    x = fw.randn(3, 4)
    with fw.no_grad():
        for v in (True, False, True, False):
            np.testing.assert_allclose(_np(cf(x, fw.tensor(v))), _np(f(x, fw.tensor(v))),
                                       rtol=1e-6)
        st = cf.stats()
        assert st["captures"] == 1 and st["num_recompiles"] == 0 and st["eager_calls"] == 0
        code = cf.code(x, fw.tensor(True))
    assert "if i_flag:" in code and "else:" in code and "def _cond0_true_kernel(" in code


def test_data_dependent_predicate_and_branch_returning_its_operand():
    # the true branch returns its operand (a planned buffer the code reuses afterwards):
    # the subgraph kernel hands back a copy, so the later reuse cannot clobber it
    @fw.compile(dynamic=True, mode="always", fullgraph=True)
    def f(x, w):
        a = x * 2
        c = fw.cond(a.sum() > 0, lambda t: t, lambda t: (t + w).relu(), (a,))
        d = x * 3
        return c + d

    for rows in (3, 5, 6):
        for sign in (1.0, -1.0):
            x, w = fw.randn(rows, 4).abs() * sign, fw.randn(4)
            a = _np(x) * 2
            want = (a if a.sum() > 0 else np.maximum(a + _np(w), 0)) + _np(x) * 3
            np.testing.assert_allclose(_np(f(x, w)), want, rtol=1e-5)
    assert f.stats()["captures"] == 1


def _train(compiled: bool, flags):
    fw.manual_seed(0)
    body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4))
    res = nn.Linear(4, 4)
    opt = optim.AdamW(list(body.parameters()) + list(res.parameters()), lr=1e-2)

    def step(x, y, flag):
        h = body(x)
        h = fw.cond(flag, lambda a: a + res(a).relu(), lambda a: a * 0.5, (h,))
        loss = ((h - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fn = _compiled(step) if compiled else step
    x, y = fw.randn(6, 4), fw.randn(6, 4)
    losses = [fn(x, y, fw.tensor(f)).item() for f in flags]
    params = [_np(p) for p in list(body.parameters()) + list(res.parameters())]
    grads = [_np(p.grad) for p in res.parameters()]
    return losses, params, grads, fn


def test_training_step_with_cond_matches_eager():
    flags = (True, False, True, True, False)
    le, pe, ge, _ = _train(False, flags)
    lc, pc, gc, fn = _train(True, flags)
    np.testing.assert_allclose(lc, le, rtol=1e-5)
    for a, b in zip(pc + gc, pe + ge):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    st = fn.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0
    # forward and backward each have one cond node; the backward's is a cond of VJPs
    g = fn.graph(fw.randn(6, 4), fw.randn(6, 4), fw.tensor(True))
    conds = [n for n in g.nodes if n.op.name == "cond"]
    assert len(conds) == 2 and len(conds[1].outputs) == 3   # d(h), d(res.weight), d(res.bias)


@pytest.mark.parametrize("flag", [True, False])
def test_compiled_forward_with_backward_outside(flag):
    lin = nn.Linear(3, 3)

    def f(x, p):
        h = x * 2
        return fw.cond(p, lambda a: lin(a) + h, lambda a: a * h, (x,)).square().sum()

    cf = _compiled(f)
    x = fw.randn(2, 3, requires_grad=True)
    cf(x, fw.tensor(flag)).backward()
    x2 = x.detach().requires_grad_()
    wgrad = None if lin.weight.grad is None else _np(lin.weight.grad)
    lin.zero_grad()
    f(x2, fw.tensor(flag)).backward()
    np.testing.assert_allclose(_np(x.grad), _np(x2.grad), rtol=1e-5)
    if flag:
        np.testing.assert_allclose(wgrad, _np(lin.weight.grad), rtol=1e-5)
    assert cf.stats()["eager_reason"] is None


def test_fw_grad_inside_compile():
    w = fw.randn(3)

    def f(x):
        return fw.cond(x.sum() > 0, lambda a: (a * w).sin().sum(), lambda a: (a ** 2).sum(),
                       (x,))

    cg = _compiled(fw.grad(f))
    for sign in (1.0, -1.0):
        x = fw.randn(3).abs() * sign
        xn, wn = _np(x), _np(w)
        want = np.cos(xn * wn) * wn if sign > 0 else 2 * xn
        np.testing.assert_allclose(_np(cg(x)), want, rtol=1e-5)
    assert cg.stats()["captures"] == 1


def test_while_loop_compiled_counts_iterations():
    w = fw.randn(3)

    def f(n, x):
        return fw.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a * 2 + w),
                             (fw.zeros((), dtype=fw.int64), x))

    cf = _compiled(f)
    for n in (0, 1, 4):
        x = fw.randn(3)
        i, a = cf(fw.tensor(n), x)
        want = _np(x)
        for _ in range(n):
            want = want * 2 + _np(w)
        assert i.item() == n
        np.testing.assert_allclose(_np(a), want, rtol=1e-5)
    assert cf.stats()["captures"] == 1
    code = cf.code(fw.tensor(2), fw.randn(3))
    assert "while _while_loop0_cond(" in code and "_own_copies(" in code


def test_zero_trip_loop_returns_fresh_memory():
    @fw.compile(mode="always", fullgraph=True)
    def f(x):
        y = x + 1
        out = fw.while_loop(lambda a: a.sum() < 0, lambda a: a * 2, (y,))[0]
        return out, y * 0

    x = fw.ones(3)
    out, _ = f(x)
    np.testing.assert_allclose(_np(out), [2.0, 2.0, 2.0])


def test_nested_cond_compiled():
    def f(x, y):
        def inner(a, b):
            return fw.cond(b.sum() > 0, lambda p, q: p * q, lambda p, q: p - q, (a, b))
        return fw.cond(x.sum() > 0, inner, lambda a, b: a + b, (x, y))

    cf = _compiled(f)
    for sx, sy in ((1, 1), (1, -1), (-1, 1)):
        x, y = fw.randn(3).abs() * sx, fw.randn(3).abs() * sy
        np.testing.assert_allclose(_np(cf(x, y)), _np(f(x, y)), rtol=1e-6)
    assert cf.stats()["captures"] == 1


def test_passes_optimize_subgraphs():
    def f(x):
        return fw.cond(x.sum() > 0, lambda a: (a * 1 + 0).exp(), lambda a: a.exp() - a.exp(),
                       (x,))

    cf = _compiled(f)
    g = cf.graph(fw.randn(4))
    node = next(n for n in g.nodes if n.op.name == "cond")
    subs = dict(subgraphs(node))
    assert [n.op.name for n in subs["true_graph"].nodes] == ["exp"]        # simplify
    assert [n.op.name for n in subs["false_graph"].nodes] == ["exp", "sub"]  # cse
    assert any(p.startswith("dce") for p in subs["true_graph"].passes)


def test_graph_break_inside_a_branch_falls_back_to_eager():
    def f(x):
        return fw.cond(x.sum() > 0, lambda a: a * a.max().item(), lambda a: a, (x,))

    with pytest.warns(UserWarning, match="graph break"):
        out = fw.compile(f)(fw.ones(3))
    np.testing.assert_allclose(_np(out), [1.0, 1.0, 1.0])
