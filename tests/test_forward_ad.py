"""Forward-mode AD (``fw.autograd.forward_ad``, PyTorch's ``torch.autograd.forward_ad``):
dual levels, make_dual / unpack_dual, JVP values against finite differences and against
the double-VJP reference for every op record of the OpInfo database, views and in-place
updates, grad mode, nn layers, forward-over-reverse and reverse-over-forward, custom
Functions, ``fw.compile`` and ``fw.func.jvp``."""

import warnings

import numpy as np
import pytest

import framework as fw
import framework.autograd.forward_ad as fwAD
from framework import nn
from framework.autograd.functional import jvp as reference_jvp
from framework.func import _jvp_double_vjp
from framework.ops import jvp_rules, registry
from tests.opinfo import OP_DB, to_fw
from tests.test_ops_opinfo import _flatten, _unflatten

F64 = fw.float64


def _t(a):
    return fw.tensor(np.asarray(a, dtype=np.float64))


def _np(t):
    return t.detach().numpy()


def _rand(*shape, seed=0):
    return _t(np.random.default_rng(seed).standard_normal(shape))


def _fwd(f, *pairs):
    """(output, tangent) of f at duals made of (primal, tangent) pairs."""
    with fwAD.dual_level():
        out = f(*[fwAD.make_dual(p, t) for p, t in pairs])
        return fwAD.unpack_dual(out)


def _fd(f, xs, ts, eps=1e-6):
    """Central finite difference of f along the tangents."""
    plus = f(*[x + eps * t for x, t in zip(xs, ts)])
    minus = f(*[x - eps * t for x, t in zip(xs, ts)])
    return (_np(plus) - _np(minus)) / (2 * eps)


@pytest.fixture(autouse=True)
def _no_level_left_open():
    yield
    while fwAD._current_level >= 0:  # a failing test must not break the others
        fwAD.exit_dual_level()
    assert registry._forward_ad_hook is None


# ---------------------------------------------------------------------------------------
# levels, make_dual, unpack_dual
def test_make_and_unpack_dual_share_memory_and_reuse_the_tangent():
    foo, bar = fw.rand(2), fw.rand(2)
    with fwAD.dual_level() as level:
        assert level == 0
        dual = fwAD.make_dual(foo, bar)
        primal, tangent = fwAD.unpack_dual(dual)
        assert tangent is bar and fwAD.unpack_dual(dual).tangent is bar
        assert fwAD.unpack_dual(foo).tangent is None          # the input stays plain
        assert fwAD.unpack_dual(primal).tangent is None       # so does the unpacked primal
        foo.add_(1)                                            # views: same memory
        np.testing.assert_array_equal(dual.numpy(), foo.numpy())
        np.testing.assert_array_equal(primal.numpy(), foo.numpy())
        assert dual._version == foo._version
    assert fwAD.unpack_dual(dual) == (dual, None)             # outside a level
    assert isinstance(fwAD.unpack_dual(dual), fwAD.UnpackedDualTensor)


def test_level_exit_drops_every_tangent():
    x, v = _rand(3), _rand(3, seed=1)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, v)
        y = dual.sin() * 2
        assert fwAD.unpack_dual(y).tangent is not None
    assert y._fw_grad is None and dual._fw_grad is None and not fwAD._duals
    with fwAD.dual_level():                                   # nothing leaks into the next
        assert fwAD.unpack_dual(y).tangent is None
        assert fwAD.unpack_dual(y * 3).tangent is None


def test_levels_do_not_nest_and_exit_checks_the_level():
    with fwAD.dual_level():
        with pytest.raises(RuntimeError, match="Nested forward mode AD is not supported"):
            fwAD.enter_dual_level()
        with pytest.raises(RuntimeError, match="not the last one"):
            fwAD.exit_dual_level(level=3)
    with pytest.raises(RuntimeError, match="does not exist"):
        fwAD.exit_dual_level()
    assert fwAD.enter_dual_level() == 0
    fwAD.exit_dual_level(level=0)
    with pytest.raises(ValueError, match="boom"):              # an error closes the level
        with fwAD.dual_level():
            raise ValueError("boom")
    assert registry._forward_ad_hook is None

    @fwAD.dual_level()
    def decorated(x):
        return fwAD.unpack_dual(fwAD.make_dual(x, x) * 2).tangent
    np.testing.assert_allclose(_np(decorated(_t([1.0, 2.0]))), [2.0, 4.0])


def test_make_dual_errors_name_the_argument():
    x = fw.rand(2)
    with pytest.raises(fw.AutogradError, match="make_dual.*enter_dual_level"):
        fwAD.make_dual(x, x)
    with fwAD.dual_level():
        with pytest.raises(fw.ShapeError, match=r"argument 'tangent'.*size \[3\]"):
            fwAD.make_dual(x, fw.rand(3))
        with pytest.raises(fw.DTypeError, match="primal.*'tensor'.*int64"):
            fwAD.make_dual(fw.tensor([1, 2]), x)
        with pytest.raises(fw.DTypeError, match="tangent.*'tangent'.*int64"):
            fwAD.make_dual(x, fw.tensor([1, 2]))
        with pytest.raises(fw.DTypeError, match="complex tangent.*'tangent'"):
            fwAD.make_dual(x, fw.rand(2, dtype=fw.complex64))
        with pytest.raises(TypeError, match="'tangent' must be a Tensor"):
            fwAD.make_dual(x, [1.0, 2.0])
        dual = fwAD.make_dual(x, fw.rand(2))
        with pytest.raises(fw.AutogradError, match="already has a forward gradient"):
            fwAD.make_dual(dual, fw.rand(2))
        with pytest.raises(fw.AutogradError, match="itself a dual"):
            fwAD.make_dual(fw.rand(2), dual)
        with pytest.raises(fw.AutogradError, match="level 2"):
            fwAD.unpack_dual(dual, level=2)
        with pytest.raises(TypeError, match="unpack_dual.*'tensor'"):
            fwAD.unpack_dual([1.0])


def test_a_tangent_with_other_strides_is_copied_into_the_primal_layout():
    x = _rand(2, 3)
    v = _rand(3, 2, seed=1).t()                                # same shape, transposed
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, v)
        t = fwAD.unpack_dual(dual).tangent
        assert t is not v and t.stride() == x.stride()
        np.testing.assert_array_equal(_np(t), _np(v))
        flat = dual.view(6)                                    # a view of the dual ...
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(flat).tangent), _np(v).reshape(6))
        assert fwAD.unpack_dual(flat).tangent._storage is t._storage   # ... and of its tangent


# ---------------------------------------------------------------------------------------
# JVP values: the explicit rules against finite differences and the double VJP
def _lin(x, w):
    return fw.nn.functional.linear(x, w)


CASES = {
    "add-broadcast": (lambda a, b: a + b, [(3, 1), (1, 4)]),
    "sub-scalar": (lambda a, b: 2.0 - a * b, [(2, 3), (3,)]),
    "mul-div": (lambda a, b: a * b / (b * b + 1), [(2, 3), (2, 3)]),
    "pow": (lambda a, b: (a * a + 1) ** b + a ** 3 + 2.0 ** a, [(4,), (4,)]),
    "unary": (lambda a: a.exp() + (a * a + 1).log() + a.tanh() + a.sigmoid() + a.relu()
              - a.neg().sin() * a.cos() + (a * a + 1).sqrt().reciprocal(), [(5,)]),
    "special": (lambda a: a.erf() + fw.special.expit(a) + fw.lgamma(a.abs() + 1), [(4,)]),
    "matmul-linear": (lambda x, w: (x @ w.t()) + _lin(x, w), [(2, 3), (4, 3)]),
    "matmul-1d": (lambda a, b: (a @ b) * (b @ b), [(3,), (3,)]),
    "sum-mean": (lambda a: a.sum(1) + a.mean(0).sum() + a.sum(), [(3, 4)]),
    "movement": (lambda a: a.reshape(4, 3).permute(1, 0).reshape(12)[2:9:2] + a.view(12)[:4]
                 + a.t().expand(2, 4, 3)[1].reshape(-1)[1:5] + a.unsqueeze(0)[0, 1], [(3, 4)]),
    "cat-stack-pad": (lambda a, b: fw.cat([a, b * 2], 0).sum(1)
                      + fw.nn.functional.pad(a, (1, 1)).sum() + fw.stack([a, b]).sum(),
                      [(2, 3), (2, 3)]),
    "softmax": (lambda a: a.softmax(-1) * 3 + a.log_softmax(0), [(3, 4)]),
    "layer_norm": (lambda x, w, b: fw.nn.functional.layer_norm(x, (4,), w, b),
                   [(3, 4), (4,), (4,)]),
    "gelu": (lambda a: fw.nn.functional.gelu(a) + fw.nn.functional.gelu(a, "tanh"), [(6,)]),
    "where": (lambda a, b: fw.where(a > 0, a, b * 2) + fw.where(b > 0, 1.0, a), [(3, 4),
                                                                             (3, 4)]),
    "max-min-clamp": (lambda a, b: fw.maximum(a, b) + fw.minimum(a, 0.3) + a.clamp(-0.5, 0.5)
                      + a.amax(1, keepdim=True) + a.amin(0), [(3, 4), (3, 4)]),
    "conv": (lambda x, w: fw.nn.functional.conv2d(x, w, padding=1), [(1, 2, 5, 5), (3, 2, 3, 3)]),
    "einsum": (lambda a, b: fw.einsum("ij,jk->ik", a, b), [(2, 3), (3, 4)]),
    "index": (lambda a, b: a[[0, 2]] + a.gather(1, fw.tensor([[0], [1], [0]])).sum()
              + a.index_put((fw.tensor([1]),), b[0]).sum(0)
              + fw.zeros(3, 4, dtype=F64).scatter_add(0, fw.tensor([[0, 1, 2, 0]]), b[:1])[0],
              [(3, 4), (3, 4)]),
    "cumsum-flip-tril": (lambda a: a.cumsum(1).flip(0).tril() + a.triu(1), [(3, 3)]),
    "generic-det-inv": (lambda a: fw.linalg.det(a) * fw.linalg.inv(a) + a.prod(0), [(3, 3)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_jvp_matches_finite_differences_and_double_vjp(name):
    f, shapes = CASES[name]
    xs = [_rand(*s, seed=i) for i, s in enumerate(shapes)]
    for x in xs:  # away from the kinks of relu, abs, maximum, where
        x.add_(fw.where(x.abs() < 0.2, 0.3, 0.0).to(F64) * x.sign())
    ts = [_rand(*s, seed=10 + i) for i, s in enumerate(shapes)]
    out, tangent = _fwd(f, *zip(xs, ts))
    np.testing.assert_allclose(_np(out), _np(f(*xs)), rtol=1e-12)
    np.testing.assert_allclose(_np(tangent), _fd(f, xs, ts), rtol=1e-6, atol=1e-7)
    _, ref = _jvp_double_vjp(f, tuple(xs), tuple(ts))
    np.testing.assert_allclose(_np(tangent), _np(ref), rtol=1e-10, atol=1e-12)
    assert tangent.dtype is out.dtype and tangent.shape == out.shape


def test_non_differentiable_outputs_and_random_ops_get_no_tangent():
    with fwAD.dual_level():
        d = fwAD.make_dual(_rand(3, 4), _rand(3, 4, seed=1))
        for out in (d.argmax(1), d > 0, d.isnan(), d.long(), fw.rand_like(d),
                    fw.randn(3, dtype=F64), fw.zeros_like(d)):
            assert fwAD.unpack_dual(out).tangent is None
        values, indices = d.max(1)
        assert fwAD.unpack_dual(values).tangent is not None
        assert fwAD.unpack_dual(indices).tangent is None
        floor = fwAD.unpack_dual(d.floor()).tangent          # differentiable, slope 0
        np.testing.assert_array_equal(_np(floor), np.zeros((3, 4)))
        dropped = nn.functional.dropout(d, 0.5, training=True)
        mask = (_np(fwAD.unpack_dual(dropped).primal) != 0)
        np.testing.assert_allclose(_np(fwAD.unpack_dual(dropped).tangent),
                                   _np(fwAD.unpack_dual(d).tangent) * mask * 2)


def test_complex_tangents():
    z0 = fw.tensor([1 + 2j, -0.5 + 0.3j])
    t0 = fw.tensor([0.3 - 1j, 1 + 0.5j])
    _, t = _fwd(lambda z: (z * z).exp() / (z + 3), (z0, t0))
    z, v = z0.numpy().astype(np.complex128), t0.numpy().astype(np.complex128)
    expected = (2 * z * np.exp(z * z) * (z + 3) - np.exp(z * z)) / (z + 3) ** 2 * v
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-5)
    _, t = _fwd(lambda z: z.abs(), (z0, t0))                   # not holomorphic: generic
    np.testing.assert_allclose(t.numpy(), (np.conj(z) * v).real / np.abs(z), rtol=1e-5)


# ---------------------------------------------------------------------------------------
# every op record: forward AD == the double-VJP JVP (float64); finite differences too
def _record_cases():
    out = []
    for info in OP_DB:
        if info.differentiable:
            out.append(info)
    return out


def _check_record(info):
    checked = 0
    for s in info.samples(F64):
        if not s.grad:
            continue
        args, kwargs = to_fw(s.args), to_fw(s.kwargs)
        flat = _flatten(args)
        n_list = [len(a) if isinstance(a, list) else None for a in args]
        pos = [i for i, a in enumerate(flat) if isinstance(a, fw.Tensor) and
               a.dtype.is_floating_point]
        if not pos:
            continue
        rng = np.random.default_rng(checked)
        tans = [_t(rng.standard_normal(flat[i].shape)) for i in pos]

        def call(*xs, _flat=flat, _pos=pos, _n=n_list, _kw=kwargs):
            fl = list(_flat)
            for i, x in zip(_pos, xs):
                fl[i] = x
            if info.inplace:  # in-place on a copy, so the sample stays untouched
                fl[0] = fl[0] * 1.0
            res = info.fn(*_unflatten(fl, _n), **_kw)
            res = res if isinstance(res, (tuple, list)) else (res,)
            return [r for r in res if isinstance(r, fw.Tensor) and r.dtype.is_floating_point]

        prim = [flat[i] for i in pos]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fwAD.dual_level():
                outs = call(*[fwAD.make_dual(p, t) for p, t in zip(prim, tans)])
                got = [fwAD.unpack_dual(o).tangent for o in outs]
            _, ref = reference_jvp(lambda *xs: tuple(call(*xs)), tuple(prim), tuple(tans))
            plus = call(*[p + 1e-6 * t for p, t in zip(prim, tans)])
            minus = call(*[p - 1e-6 * t for p, t in zip(prim, tans)])
        for g, r, o, a, b in zip(got, ref, outs, plus, minus):
            want = _np(r)
            if g is None:  # an output that does not depend on the inputs (a constant)
                assert not np.any(want), f"{info.name} {s}: no tangent"
                continue
            assert g.shape == o.shape and g.dtype is o.dtype, f"{info.name} {s}"
            np.testing.assert_allclose(_np(g), want, rtol=1e-7, atol=1e-9,
                                       err_msg=f"{info.name} {s} vs double VJP")
            with np.errstate(invalid="ignore"):  # inf - inf where the value is infinite
                fd = (_np(a) - _np(b)) / 2e-6
            np.testing.assert_allclose(_np(g), fd, rtol=1e-4, atol=1e-5,
                                       err_msg=f"{info.name} {s} vs finite differences")
        checked += 1


@pytest.mark.parametrize("info", _record_cases(), ids=lambda i: i.name)
def test_every_op_record_matches_double_vjp(info):
    _check_record(info)


def test_generic_rule_alone_covers_every_record(monkeypatch):
    """With the explicit table emptied, every op goes through the double-VJP rule."""
    monkeypatch.setattr(jvp_rules, "JVP_RULES", {})
    monkeypatch.setattr(jvp_rules, "install_unary_rules", lambda: None)
    for info in _record_cases():
        _check_record(info)


def test_explicit_rules_are_used_for_the_hot_ops(monkeypatch):
    calls = []
    monkeypatch.setattr(fwAD, "_generic_jvp", lambda op, *a: calls.append(op.name))
    x, w = _rand(2, 3), _rand(4, 3, seed=1)
    ln = nn.LayerNorm(4).double()
    _fwd(lambda x, w: ln(fw.nn.functional.gelu(x @ w.t() + 1).softmax(-1)).reshape(-1)
         .sum(), (x, x), (w, w))
    assert calls == []


# ---------------------------------------------------------------------------------------
# views and in-place updates (PyTorch's semantics)
def test_in_place_updates_move_the_tangent():
    foo, bar = _rand(2), fw.ones(2, dtype=F64)
    orig = _np(foo).copy()
    with fwAD.dual_level():
        dual = fwAD.make_dual(foo, bar)
        dual *= 2                                               # tangent updated in place
        assert fwAD.unpack_dual(foo).tangent is None
        np.testing.assert_array_equal(_np(bar), [2.0, 2.0])
        np.testing.assert_array_equal(_np(foo), orig * 2)
        primal, tangent = fwAD.unpack_dual(dual)
        primal *= 2                                             # the primal only
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(dual).tangent), [2.0, 2.0])
        tangent *= 2                                            # the tangent only
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(dual).tangent), [4.0, 4.0])
        np.testing.assert_array_equal(_np(dual), orig * 4)
        dual.copy_(fw.ones(2, dtype=F64))                       # a plain value: zero tangent
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(dual).tangent), [0.0, 0.0])


def test_views_share_the_tangent_and_plain_tensors_become_dual():
    with fwAD.dual_level():
        dual = fwAD.make_dual(fw.rand(2), fw.ones(2))
        view = dual.narrow(0, 0, 1)
        view *= 2
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(dual).tangent), [2.0, 1.0])
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(view).tangent), [2.0])
        baz = fw.rand(2)
        baz += dual
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(baz).tangent), [2.0, 1.0])
        baz = fw.rand(2)
        baz[0] = dual[0]                                        # unused values: tangent 0
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(baz).tangent), [2.0, 0.0])
        baz = fw.rand(2)
        detached = baz.detach()                                 # not a differentiable view
        detached += dual
        assert fwAD.unpack_dual(baz).tangent is None
        baz = fw.rand(3)
        part = baz[1:]                                          # a view of a plain base
        part += dual
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(baz).tangent), [0.0, 2.0, 1.0])
        baz = fw.rand(3)
        old = baz[1:]                                           # taken before baz is dual
        baz += fw.cat([dual, dual[:1]])
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(old).tangent), [1.0, 2.0])
        old.mul_(10)
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(baz).tangent), [2.0, 10.0, 20.0])


def test_an_in_place_update_of_a_result_leaves_the_input_tangent_alone():
    x, v = _rand(3), _rand(3, seed=1)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, v)
        y = dual + 1                                            # tangent == v's values
        y.mul_(3)
        np.testing.assert_array_equal(_np(fwAD.unpack_dual(dual).tangent), _np(v))
        np.testing.assert_allclose(_np(fwAD.unpack_dual(y).tangent), 3 * _np(v))


def test_grad_mode_does_not_turn_forward_ad_off_and_detach_does():
    x, v = _rand(3), _rand(3, seed=1)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, v)
        with fw.no_grad():
            p, t = fwAD.unpack_dual(dual * 3)
        assert not p.requires_grad and not t.requires_grad
        np.testing.assert_allclose(_np(t), 3 * _np(v))
        with fw.inference_mode():
            np.testing.assert_allclose(_np(fwAD.unpack_dual(dual * 3).tangent), 3 * _np(v))
        assert fwAD.unpack_dual(dual.detach() * 2).tangent is None
        assert fwAD.unpack_dual(dual.data * 2).tangent is None
        copy = dual.clone()
        copy.detach_()
        assert fwAD.unpack_dual(copy * 2).tangent is None


# ---------------------------------------------------------------------------------------
# nn layers, higher order, custom Functions
@pytest.mark.parametrize("name", ["linear", "conv2d", "layer_norm", "mha", "mlp", "lstm"])
def test_nn_layers(name):
    fw.manual_seed(0)
    layers = {"linear": (nn.Linear(4, 3), (2, 4)), "conv2d": (nn.Conv2d(2, 3, 3, padding=1),
                                                              (1, 2, 5, 5)),
              "layer_norm": (nn.LayerNorm(4), (2, 4)),
              "mha": (nn.MultiheadAttention(4, 2, batch_first=True), (2, 3, 4)),
              "mlp": (nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(0.0),
                                    nn.Linear(8, 2), nn.LogSoftmax(-1)), (3, 4)),
              "lstm": (nn.LSTM(4, 3, batch_first=True), (2, 3, 4))}
    layer, shape = layers[name]
    layer = layer.double()

    def f(x):
        if name == "mha":
            return layer(x, x, x)[0]
        return layer(x)[0] if name == "lstm" else layer(x)
    x, v = _rand(*shape), _rand(*shape, seed=1)
    _, t = _fwd(f, (x, v))
    np.testing.assert_allclose(_np(t), _np(reference_jvp(f, x, v)[1]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(t), _fd(f, [x], [v]), rtol=1e-6, atol=1e-8)


def _scalar_fn(x):
    a = _t([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.5]])
    return ((x.sin() * x).sum() + x @ a @ x + x.exp().prod() + fw.softmax(x, 0)[0]
            + fw.linalg.det(fw.outer(x, x) + fw.eye(3, dtype=F64)))


def test_hessian_vector_products_both_ways():
    x0, v = _rand(3), _rand(3, seed=1)
    exact = _np(fw.func.hessian(_scalar_fn)(x0)) @ _np(v)
    x = x0.clone().requires_grad_()
    with fwAD.dual_level():                                     # reverse over forward
        jv = fwAD.unpack_dual(_scalar_fn(fwAD.make_dual(x, v))).tangent
    assert jv.requires_grad
    (hv,) = fw.autograd.grad(jv, x)
    np.testing.assert_allclose(_np(hv), exact, rtol=1e-9)
    with fwAD.dual_level():                                     # forward over reverse
        dual = fwAD.make_dual(x, v)
        (g,) = fw.autograd.grad(_scalar_fn(dual), dual, create_graph=True)
        hv = fwAD.unpack_dual(g).tangent
    np.testing.assert_allclose(_np(hv), exact, rtol=1e-9)


def test_tangents_that_require_grad_are_differentiable():
    x, v = _rand(3), _rand(3, seed=1).requires_grad_()
    with fwAD.dual_level():
        t = fwAD.unpack_dual((fwAD.make_dual(x, v) * x).sin()).tangent
    (gv,) = fw.autograd.grad(t.sum(), v)                      # d/dv of J v is J^T 1
    np.testing.assert_allclose(_np(gv), np.cos(_np(x) ** 2) * _np(x), rtol=1e-12)


class _Cube(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_forward(x)
        ctx.save_for_backward(x)
        return fw.tensor(x.detach().numpy() ** 3)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t * 3 * x * x


class _NoJvp(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2


def test_custom_functions():
    x, v = _t([1.0, 2.0]), _t([1.0, -1.0])
    out, t = _fwd(_Cube.apply, (x, v))
    np.testing.assert_allclose(_np(out), [1.0, 8.0])
    np.testing.assert_allclose(_np(t), [3.0, -12.0])
    with fwAD.dual_level():
        with pytest.raises(NotImplementedError, match="_NoJvp.*jvp"):
            _NoJvp.apply(fwAD.make_dual(x, v))
        np.testing.assert_allclose(_np(_NoJvp.apply(x)), [2.0, 4.0])   # no dual input: fine
    np.testing.assert_allclose(_np(fw.func.jvp(_Cube.apply, (x,), (v,))[1]), [3.0, -12.0])
    with pytest.raises(NotImplementedError, match="_NoJvp"):
        fw.func.jvp(_NoJvp.apply, (x,), (v,))


def test_casts_carry_the_tangent_in_the_new_dtype():
    x, v = _rand(3), _rand(3, seed=1)
    with fwAD.dual_level():
        d = fwAD.make_dual(x, v)
        t = fwAD.unpack_dual(d.float()).tangent
        assert t.dtype is fw.float32
        np.testing.assert_allclose(t.numpy(), _np(v).astype(np.float32))
        t = fwAD.unpack_dual(d.float() * fw.ones(3, dtype=F64)).tangent   # promotion
        assert t.dtype is F64
        t = fwAD.unpack_dual(d.to(fw.complex128) * 1j).tangent
        np.testing.assert_allclose(t.numpy(), 1j * _np(v))


# ---------------------------------------------------------------------------------------
# fw.compile and fw.func.jvp
def _dual_inside(x, v):
    with fwAD.dual_level():
        d = fwAD.make_dual(x, v)
        y = (d.sin() * d.exp()).sum(0) + fw.softmax(d, -1).sum(0)
        y = fw.linalg.det(d[:2, :2]) * y                        # a generic rule
        return fwAD.unpack_dual(y)


def test_compile_captures_a_dual_level_inside_the_function():
    x, v = _rand(3, 4), _rand(3, 4, seed=1)
    want = _dual_inside(x, v)
    cf = fw.compile(_dual_inside, fullgraph=True, mode="always")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):                                      # capture, then cached code
            got = cf(x, v)
            np.testing.assert_allclose(_np(got[0]), _np(want[0]), rtol=1e-12)
            np.testing.assert_allclose(_np(got[1]), _np(want[1]), rtol=1e-12)
    assert any(n.op.name == "cos" for n in cf.graph(x, v).nodes)   # the tangent's ops
    x2 = _rand(3, 4, seed=2)
    np.testing.assert_allclose(_np(cf(x2, v)[1]), _np(_dual_inside(x2, v)[1]), rtol=1e-12)


def test_compile_runs_dual_inputs_eagerly_with_a_graph_break_warning():
    cf = fw.compile(lambda d: d.sin() * 2)
    x, v = _rand(3), _rand(3, seed=1)
    with fwAD.dual_level():
        with pytest.warns(UserWarning, match="dual tensors.*running eagerly"):
            out = cf(fwAD.make_dual(x, v))
        np.testing.assert_allclose(_np(fwAD.unpack_dual(out).tangent),
                                   2 * np.cos(_np(x)) * _np(v))
        with pytest.raises(fw.GraphBreak, match="dual tensors"):
            fw.compile(lambda d: d * 2, fullgraph=True)(fwAD.make_dual(x, v))


def test_func_jvp_uses_forward_ad_and_agrees_with_the_double_vjp():
    def f(a, b):
        return (a.exp() * b, (a @ b).tanh())
    a, b, ta, tb = _rand(3), _rand(3, seed=1), _rand(3, seed=2), _rand(3, seed=3)
    out, tans = fw.func.jvp(f, (a, b), (ta, tb))
    ref_out, ref = _jvp_double_vjp(f, (a, b), (ta, tb))
    for o, r in zip(out, ref_out):
        np.testing.assert_allclose(_np(o), _np(r), rtol=1e-12)
        assert fwAD.unpack_dual(o).tangent is None
    for t, r in zip(tans, ref):
        np.testing.assert_allclose(_np(t), _np(r), rtol=1e-12)
    _, zero = fw.func.jvp(lambda a: a.detach() * 2, (a,), (ta,))  # no dependence: zeros
    np.testing.assert_array_equal(_np(zero), np.zeros(3))
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        fw.func.jvp(f, (a, b), (_rand(2), tb))


def test_nested_jvp_gives_second_derivatives():
    x, v = _rand(3), _rand(3, seed=1)

    def first(t):
        return fw.func.jvp(lambda y: (y.sin() * y).sum(), (t,), (v,))[1]
    _, second = fw.func.jvp(first, (x,), (v,))                 # inner: the double VJP
    exact = _np(v) @ _np(fw.func.hessian(lambda y: (y.sin() * y).sum())(x)) @ _np(v)
    np.testing.assert_allclose(second.item(), exact, rtol=1e-10)


def test_make_dual_casts_a_tangent_of_another_float_dtype_to_the_primal_dtype():
    """As PyTorch accepts it (the forward-AD tutorial pairs a float64 primal with a
    float32 tangent): the tangent is carried in the primal's dtype."""
    x = _rand(3)
    t32 = fw.tensor([1.0, 2.0, 3.0])
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t32)
        t = fwAD.unpack_dual(d).tangent
        assert t.dtype is F64 and t is not t32
        np.testing.assert_array_equal(_np(t), [1.0, 2.0, 3.0])
        out = fwAD.unpack_dual(d.exp()).tangent
    np.testing.assert_allclose(_np(out), np.exp(_np(x)) * [1.0, 2.0, 3.0], rtol=1e-12)


class _ExpWithJvp(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.result = x.exp()
        return ctx.result

    @staticmethod
    def jvp(ctx, g):
        return g * ctx.result * _ExpWithJvp.scale

    @staticmethod
    def backward(ctx, g):
        return g * ctx.result * _ExpWithJvp.back_scale + _ExpWithJvp.shift


def test_gradcheck_forward_ad_and_undefined_grad_options():
    x = _rand(4).requires_grad_()
    _ExpWithJvp.scale, _ExpWithJvp.back_scale, _ExpWithJvp.shift = 1.0, 1.0, 0.0
    assert fw.autograd.gradcheck(_ExpWithJvp.apply, (x,), check_forward_ad=True)
    _ExpWithJvp.scale = 1.01                      # a wrong jvp
    with pytest.raises(fw.AutogradError, match="forward AD"):
        fw.autograd.gradcheck(_ExpWithJvp.apply, (x,), check_forward_ad=True,
                              check_backward_ad=False)
    assert not fw.autograd.gradcheck(_ExpWithJvp.apply, (x,), check_forward_ad=True,
                                     raise_exception=False)
    assert fw.autograd.gradcheck(_ExpWithJvp.apply, (x,))   # backward only: still fine
    _ExpWithJvp.scale, _ExpWithJvp.back_scale = 1.0, 0.99   # a wrong backward
    with pytest.raises(fw.AutogradError, match="Jacobian mismatch"):
        fw.autograd.gradcheck(_ExpWithJvp.apply, (x,))
    assert fw.autograd.gradcheck(_ExpWithJvp.apply, (x,), check_forward_ad=True,
                                 check_backward_ad=False)
    _ExpWithJvp.back_scale, _ExpWithJvp.shift = 1.0, 1e-3   # nonzero for a zero cotangent
    with pytest.raises(fw.AutogradError, match="check_undefined_grad"):
        fw.autograd.gradcheck(_ExpWithJvp.apply, (x,), atol=1e-2)
    assert fw.autograd.gradcheck(_ExpWithJvp.apply, (x,), atol=1e-2,
                                 check_undefined_grad=False)
    with pytest.raises(NotImplementedError, match="check_batched_grad"):
        fw.autograd.gradcheck(_ExpWithJvp.apply, (x,), check_batched_grad=True)
    with pytest.raises(fw.AutogradError, match="at least one"):
        fw.autograd.gradcheck(_ExpWithJvp.apply, (x,), check_backward_ad=False)
