"""fw.cond / fw.while_loop: eager values and autograd, capture into subgraphs (the IR node,
its printing and verification), fw.grad through cond, and the error cases."""

import numpy as np
import pytest

import framework as fw
from compiler.capture import capture_graph
from compiler.ir import ident, subgraphs
from framework import nn


def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_eager_picks_the_branch(sign):
    x = fw.randn(3, 4).abs() * sign
    out = fw.cond(x.sum() > 0, lambda a: a.exp() * 2, lambda a: a.sin(), (x,))
    xn = _np(x)
    np.testing.assert_allclose(_np(out), np.exp(xn) * 2 if sign > 0 else np.sin(xn),
                               rtol=1e-6)


def test_cond_python_bool_and_nested_operands():
    x, y = fw.randn(2), fw.randn(2)
    out = fw.cond(False, lambda d: d["a"] + d["b"][0], lambda d: d["a"] - d["b"][0],
                  ({"a": x, "b": [y]},))
    np.testing.assert_allclose(_np(out), _np(x) - _np(y))
    pair = fw.cond(fw.tensor([True]), lambda a, b: (a * b, [a]), lambda a, b: (a, [b]),
                   (x, y))
    assert isinstance(pair, tuple) and isinstance(pair[1], list)
    np.testing.assert_allclose(_np(pair[0]), _np(x) * _np(y))


@pytest.mark.parametrize("flag", [True, False])
def test_cond_eager_gradients_follow_the_taken_branch(flag):
    lin = nn.Linear(3, 3)
    x = fw.randn(4, 3, requires_grad=True)
    out = fw.cond(fw.tensor(flag), lambda a: lin(a).tanh(), lambda a: a * a, (x,))
    out.sum().backward()
    xn = _np(x)
    if flag:
        pre = xn @ _np(lin.weight).T + _np(lin.bias)
        np.testing.assert_allclose(_np(x.grad), (1 - np.tanh(pre) ** 2) @ _np(lin.weight),
                                   rtol=1e-5)
        assert lin.weight.grad is not None
    else:  # as torch.cond: what the branches read gets a gradient, zeros if not taken
        np.testing.assert_allclose(_np(x.grad), 2 * xn, rtol=1e-6)
        np.testing.assert_array_equal(_np(lin.weight.grad), np.zeros((3, 3)))
    assert out.grad_fn.name() == "CondBackward0"


def test_cond_without_grad_mode_calls_the_branch():
    calls = []

    def true_fn(a):
        calls.append("t")
        return a + 1

    x = fw.randn(2)
    with fw.no_grad():
        for _ in range(3):
            np.testing.assert_allclose(_np(fw.cond(fw.tensor(True), true_fn, lambda a: a,
                                                   (x,))), _np(x) + 1)
    assert calls.count("t") == 4   # checked once (traced with its sibling), then called


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_grad_through_cond_nested_and_closed_over(sign):
    w = fw.randn(3)

    def f(x, y):
        def true_fn(a, b):
            inner = fw.cond(b.sum() > 0, lambda p: (p * w).sin(), lambda p: p.cos(), (a,))
            return inner * b
        return fw.cond(x.sum() > 0, true_fn, lambda a, b: a * b * 3, (x, y)).sum()

    x = fw.randn(3).abs() * sign
    y = fw.randn(3).abs()
    gx, gy = fw.grad(f, argnums=(0, 1))(x, y)
    xr, yr = x.detach().requires_grad_(), y.detach().requires_grad_()
    f(xr, yr).backward()
    np.testing.assert_allclose(_np(gx), _np(xr.grad), rtol=1e-5)
    np.testing.assert_allclose(_np(gy), _np(yr.grad), rtol=1e-5)
    xn, yn, wn = _np(x), _np(y), _np(w)
    want = np.cos(xn * wn) * wn * yn if sign > 0 else 3 * yn
    np.testing.assert_allclose(_np(gx), want, rtol=1e-5)


def test_second_derivative_through_cond():
    def f(x):
        return fw.cond(x.sum() > 0, lambda a: (a ** 3).sum(), lambda a: a.sin().sum(), (x,))

    for sign in (1.0, -1.0):
        x = fw.randn(3).abs() * sign
        h = fw.grad(lambda t: fw.grad(f)(t).sum())(x)
        xn = _np(x)
        np.testing.assert_allclose(_np(h), 6 * xn if sign > 0 else -np.sin(xn), rtol=1e-5)


def test_while_loop_eager_counts_iterations():
    def cond_fn(i, x):
        return x.sum() < 50

    def body_fn(i, x):
        return i + 1, x * 2

    i, x = fw.while_loop(cond_fn, body_fn, (fw.tensor(0), fw.ones(3)))
    assert i.item() == 5 and _np(x).tolist() == [32.0] * 3
    i, x = fw.while_loop(cond_fn, body_fn, (fw.tensor(0), fw.full((3,), 60.0)))
    assert i.item() == 0 and _np(x).tolist() == [60.0] * 3


def test_capture_records_one_cond_node_with_subgraphs():
    lin = nn.Linear(4, 4)

    def f(x, flag):
        h = x * 2
        return fw.cond(flag, lambda a: lin(a) + h, lambda a: a - h, (x,))

    g = capture_graph(f, (fw.randn(2, 4), fw.tensor(True))).verify()
    conds = [n for n in g.nodes if n.op.name == "cond"]
    assert len(conds) == 1
    node = conds[0]
    subs = dict(subgraphs(node))
    assert set(subs) == {"true_graph", "false_graph"}
    # operands, then what the branches read from outside: the parameters and h
    names = [x.name for x in node.inputs[1:]]
    assert names[0] == "x" and {"lin.weight", "lin.bias", "mul"} <= set(names)
    for sub in subs.values():
        assert [v.name for v in sub.inputs] == [ident(n) for n in names]
    text = str(g)
    assert "cond(flag, x" in text and "true_graph=true_graph" in text
    assert "        def true_graph(x, " in text and "        def false_graph(x, " in text
    assert "            matmul = matmul(x, permute)  # f32[2, 4]" in text


def test_verify_checks_the_subgraphs():
    from compiler.ir import VerifyError
    g = capture_graph(lambda x: fw.cond(x.sum() > 0, lambda a: a + 1, lambda a: a * 2, (x,)),
                      (fw.randn(3),))
    node = next(n for n in g.nodes if n.op.name == "cond")
    sub = node.attrs["false_graph"]
    sub.nodes[0].outputs[0].producer = None   # break the subgraph
    with pytest.raises(VerifyError, match="subgraph false_graph"):
        g.verify()


def test_while_loop_capture():
    def f(n, x):
        return fw.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a * 2),
                             (fw.zeros((), dtype=fw.int64), x))

    g = capture_graph(f, (fw.tensor(3), fw.randn(2))).verify()
    node = next(n for n in g.nodes if n.op.name == "while_loop")
    assert set(dict(subgraphs(node))) == {"cond_graph", "body_graph"}
    assert "def body_graph(" in str(g)


# -- errors ----------------------------------------------------------------------------
X = fw.randn(4, 3)


@pytest.mark.parametrize("call, err, match", [
    (lambda: fw.cond(fw.tensor([True, False]), lambda a: a, lambda a: a, (X,)),
     fw.ShapeError, "pred must have exactly one element"),
    (lambda: fw.cond(fw.tensor(1.0), lambda a: a, lambda a: a, (X,)),
     fw.DTypeError, "pred must be a bool tensor, got float32"),
    (lambda: fw.cond("yes", lambda a: a, lambda a: a, (X,)), fw.FrameworkError, "pred"),
    (lambda: fw.cond(fw.tensor(True), lambda a: a, lambda a: a.sum(), (X,)),
     fw.ShapeError, r"output 0 has shape \[4, 3\] in true_fn but \[\] in false_fn"),
    (lambda: fw.cond(fw.tensor(True), lambda a: a, lambda a: a.int(), (X,)),
     fw.DTypeError, "output 0 has dtype float32 in true_fn but int32"),
    (lambda: fw.cond(fw.tensor(True), lambda a: (a, a), lambda a: a, (X,)),
     fw.ArgumentError, "same structure"),
    (lambda: fw.cond(fw.tensor(True), lambda a: a.add_(1), lambda a: a, (X,)),
     fw.ArgumentError, "true_fn modifies operand 0 in place"),
    (lambda: fw.cond(fw.tensor(True), lambda a: a, lambda a: a, X),
     fw.FrameworkError, "operands must be a tuple or list"),
    (lambda: fw.cond(fw.tensor(True), lambda a: 3, lambda a: 3, (X,)),
     fw.FrameworkError, "must return tensors"),
    (lambda: fw.while_loop(lambda a: a.sum(), lambda a: a, (X,)),
     fw.ArgumentError, "cond_fn must return one one-element bool tensor"),
    (lambda: fw.while_loop(lambda a: a.sum() > 0, lambda a: a.sum(), (X,)),
     fw.ShapeError, "outputs of body_fn 0 is f32"),
    (lambda: fw.while_loop(lambda a: a.sum() > 0, lambda a: a, X),
     fw.FrameworkError, "carried_inputs must be"),
])
def test_errors_eager_and_captured(call, err, match):
    with pytest.raises(err, match=match):
        call()
    with pytest.raises(err, match=match):
        capture_graph(lambda t: call(), (fw.randn(1),))


def test_mutating_an_outside_tensor_is_refused():
    buf = fw.zeros(3)

    def f(x):
        return fw.cond(x.sum() > 0, lambda a: buf.add_(a), lambda a: a, (x,))

    with pytest.raises(fw.ArgumentError, match="modifies the outside tensor"):
        capture_graph(f, (fw.randn(3),))


def test_backward_through_a_captured_while_loop_is_not_implemented():
    def f(x):
        return fw.while_loop(lambda a: a.sum() < 10, lambda a: a * 2, (x,))[0].sum()

    with pytest.raises(NotImplementedError, match="while_loop: backward"):
        fw.grad(f)(fw.ones(2))


def test_backward_inside_a_branch_is_refused():
    lin = nn.Linear(2, 2)

    def f(x):
        def true_fn(a):
            lin(a).sum().backward()
            return a * 2
        return fw.cond(x.sum() > 0, true_fn, lambda a: a, (x,))

    with pytest.raises(fw.ArgumentError, match="backward\\(\\) inside a control-flow"):
        capture_graph(f, (fw.ones(2),))
    assert lin.weight.grad is None
