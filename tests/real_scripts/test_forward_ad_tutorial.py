"""pytorch/tutorials ``intermediate_source/forward_ad_usage.py`` ported to fw.

Dual tensors (``dual_level``, ``make_dual``, ``unpack_dual``; a tangent with another layout
is copied), a Linear whose parameters are replaced by dual tensors (``delattr`` /
``setattr``) and the same through ``functional_call``, a custom ``autograd.Function`` with a
``jvp`` static method checked by ``gradcheck(check_forward_ad=True, ...)``, and the
functional ``jvp`` (with ``functools.partial``, and over a module's parameters). The
tutorial's last part uses functorch (``import functorch as ft``,
``ft.make_functional_with_buffers``), deprecated in favour of ``torch.func``: it is ported
to ``framework.func`` with ``functional_call``, the migration torch.func documents.
Every tangent is also checked against its closed form.
"""

import functools

import numpy as np
import pytest

import framework as fw
import framework.autograd.forward_ad as fwAD
import framework.func as ft
import framework.nn as nn
from framework.func import functional_call

from ._checks import np_of


def fn(x, y):
    return x ** 2 + y ** 2


def test_basic_usage():
    fw.manual_seed(0)
    primal = fw.randn(10, 10)
    tangent = fw.randn(10, 10)

    with fwAD.dual_level():
        dual_input = fwAD.make_dual(primal, tangent)
        assert fwAD.unpack_dual(dual_input).tangent is tangent

        # To demonstrate the case where the copy of the tangent happens,
        # we pass in a tangent with a layout different from that of the primal
        dual_input_alt = fwAD.make_dual(primal, tangent.T)
        assert fwAD.unpack_dual(dual_input_alt).tangent is not tangent

        # Tensors that do not have an associated tangent are automatically
        # considered to have a zero-filled tangent of the same shape.
        plain_tensor = fw.randn(10, 10)
        dual_output = fn(dual_input, plain_tensor)

        # Unpacking the dual returns a namedtuple with ``primal`` and ``tangent``
        # as attributes
        jvp = fwAD.unpack_dual(dual_output).tangent
        alt = fwAD.unpack_dual(fn(dual_input_alt, plain_tensor)).tangent

    assert fwAD.unpack_dual(dual_output).tangent is None
    np.testing.assert_allclose(np_of(jvp), 2 * np_of(primal) * np_of(tangent), rtol=1e-6)
    np.testing.assert_allclose(np_of(alt), 2 * np_of(primal) * np_of(tangent).T, rtol=1e-6)
    np.testing.assert_allclose(np_of(dual_output), np_of(primal) ** 2 + np_of(plain_tensor) ** 2,
                               rtol=1e-6)


def _linear_jvp(input, tangents):
    return np_of(input) @ np_of(tangents["weight"]).T + np_of(tangents["bias"])


def test_usage_with_modules_and_functional_call():
    fw.manual_seed(1)
    model = nn.Linear(5, 5)
    input = fw.randn(16, 5)

    params = {name: p for name, p in model.named_parameters()}
    tangents = {name: fw.rand_like(p) for name, p in params.items()}

    with fwAD.dual_level():
        for name, p in params.items():
            delattr(model, name)
            setattr(model, name, fwAD.make_dual(p, tangents[name]))

        out = model(input)
        jvp = fwAD.unpack_dual(out).tangent
    np.testing.assert_allclose(np_of(jvp), _linear_jvp(input, tangents), rtol=1e-5, atol=1e-6)

    # We need a fresh module because the functional call requires the
    # the model to have parameters registered.
    model = nn.Linear(5, 5)

    dual_params = {}
    with fwAD.dual_level():
        for name, p in params.items():
            # Using the same ``tangents`` from the above section
            dual_params[name] = fwAD.make_dual(p, tangents[name])
        out = functional_call(model, dual_params, input)
        jvp2 = fwAD.unpack_dual(out).tangent

    # Check our results
    assert fw.allclose(jvp, jvp2)
    assert isinstance(model.weight, nn.Parameter)    # functional_call put them back


class Fn(fw.autograd.Function):
    @staticmethod
    def forward(ctx, foo):
        result = fw.exp(foo)
        # Tensors stored in ctx can be used in the subsequent forward grad
        # computation.
        ctx.result = result
        return result

    @staticmethod
    def jvp(ctx, gI):
        gO = gI * ctx.result
        # If the tensor stored in ctx will not also be used in the backward pass,
        # one can manually free it using ``del``
        del ctx.result
        return gO


class WrongJvp(Fn):
    @staticmethod
    def jvp(ctx, gI):
        return gI * ctx.result * 1.01


def test_custom_function_with_jvp_and_gradcheck():
    fw.manual_seed(2)
    fn = Fn.apply

    primal = fw.randn(10, 10, dtype=fw.double, requires_grad=True)
    tangent = fw.randn(10, 10)      # float32 for a float64 primal, as in the tutorial

    with fwAD.dual_level():
        dual_input = fwAD.make_dual(primal, tangent)
        dual_output = fn(dual_input)
        jvp = fwAD.unpack_dual(dual_output).tangent
    assert jvp.dtype is fw.float64
    np.testing.assert_allclose(np_of(jvp), np_of(tangent).astype(np.float64) * np.exp(np_of(primal)),
                               rtol=1e-12)

    # check_forward_ad=True checks the jvp against finite differences
    assert fw.autograd.gradcheck(Fn.apply, (primal,), check_forward_ad=True,
                                 check_backward_ad=False, check_undefined_grad=False,
                                 check_batched_grad=False)
    with pytest.raises(fw.AutogradError, match="forward AD"):
        fw.autograd.gradcheck(WrongJvp.apply, (primal,), check_forward_ad=True,
                              check_backward_ad=False, check_undefined_grad=False,
                              check_batched_grad=False)


def test_functional_api():
    fw.manual_seed(3)
    primal0 = fw.randn(10, 10)
    tangent0 = fw.randn(10, 10)
    primal1 = fw.randn(10, 10)
    tangent1 = fw.randn(10, 10)

    # Here is a basic example to compute the JVP of the above function.
    primal_out, tangent_out = ft.jvp(fn, (primal0, primal1), (tangent0, tangent1))
    np.testing.assert_allclose(np_of(primal_out), np_of(fn(primal0, primal1)), rtol=1e-6)
    np.testing.assert_allclose(
        np_of(tangent_out), 2 * np_of(primal0) * np_of(tangent0) + 2 * np_of(primal1) * np_of(tangent1),
        rtol=1e-5, atol=1e-6)

    # then we'll need to create a new function that captures inputs without tangents:
    primal = fw.randn(10, 10)
    tangent = fw.randn(10, 10)
    y = fw.randn(10, 10)

    new_fn = functools.partial(fn, y=y)
    primal_out, tangent_out = ft.jvp(new_fn, (primal,), (tangent,))
    np.testing.assert_allclose(np_of(tangent_out), 2 * np_of(primal) * np_of(tangent), rtol=1e-6)


def test_functional_api_with_modules():
    fw.manual_seed(4)
    model = nn.Linear(5, 5)
    input = fw.randn(16, 5)
    tangents = tuple([fw.rand_like(p) for p in model.parameters()])

    # ft.make_functional_with_buffers(model) (functorch, deprecated): torch.func's form
    params = tuple(p.detach() for p in model.parameters())
    buffers = {k: b for k, b in model.named_buffers()}
    names = [k for k, _ in model.named_parameters()]

    def func(params, buffers, input):
        return functional_call(model, ({**dict(zip(names, params)), **buffers}), (input,))

    # Because ``jvp`` requires every input to be associated with a tangent, we need to
    # create a new function that, when given the parameters, produces the output
    def func_params_only(params):
        return func(params, buffers, input)

    model_output, jvp_out = ft.jvp(func_params_only, (params,), (tangents,))
    np.testing.assert_allclose(np_of(model_output), np_of(model(input)), rtol=1e-6)
    np.testing.assert_allclose(np_of(jvp_out),
                               _linear_jvp(input, dict(zip(names, tangents))),
                               rtol=1e-5, atol=1e-6)
    # the tangent is linear in the direction: doubling it doubles the JVP
    _, jvp_2 = ft.jvp(func_params_only, (params,), (tuple(2 * t for t in tangents),))
    np.testing.assert_allclose(np_of(jvp_2), 2 * np_of(jvp_out), rtol=1e-5, atol=1e-6)


def test_compiled_functional_jvp_matches_eager():
    compiled = fw.compile(lambda p, t, y: ft.jvp(functools.partial(fn, y=y), (p,), (t,)))
    for s in range(3):
        fw.manual_seed(10 + s)
        p, t, y = fw.randn(6), fw.randn(6), fw.randn(6)
        out, tan = compiled(p, t, y)
        np.testing.assert_allclose(np_of(out), np_of(fn(p, y)), rtol=1e-6)
        np.testing.assert_allclose(np_of(tan), 2 * np_of(p) * np_of(t), rtol=1e-6)
    st = compiled.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0, st["recompiles"]
    assert not st["graph_breaks"], st["graph_breaks"]
