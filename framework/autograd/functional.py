"""``fw.autograd.functional``: Jacobians, Hessians and vector products of Python functions,
as ``torch.autograd.functional``, built on the eager :func:`fw.autograd.grad`.

Return structures follow PyTorch: a tensor where the inputs (or outputs) were a tensor, a
tuple where they were a tuple; ``jacobian`` of tuple outputs w.r.t. tuple inputs is a
tuple (per output) of tuples (per input). ``jvp`` and ``hvp`` use the double-backward
trick (backward of the backward w.r.t. its cotangent). Results are detached unless
``create_graph=True``.

``vectorize=True`` computes the same result with the same loop (one backward per output
element; there is no batched backward). ``strategy="forward-mode"`` (which, as in
PyTorch, needs ``vectorize=True``) builds the Jacobian column by column from JVPs made
with the double-backward trick: right results, reverse-mode cost.
"""

from __future__ import annotations

from .._state import tls
from ..errors import ArgumentError, AutogradError, FwTypeError
from ..tensor import Tensor
from .grad_mode import enable_grad, set_grad_enabled

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


# -- helpers (PyTorch's own, by name) ------------------------------------------------------
def _as_tuple(inp, arg_name: str, fn_name: str):
    is_tuple = isinstance(inp, tuple)
    if not is_tuple:
        inp = (inp,)
    for i, el in enumerate(inp):
        if not isinstance(el, Tensor):
            if is_tuple:
                raise FwTypeError(f"The {arg_name} given to {fn_name} must be either a Tensor "
                                  f"or a tuple of Tensors but the value at index {i} has type "
                                  f"{type(el).__name__}.")
            raise FwTypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a "
                              f"tuple of Tensors but the given {arg_name} has type "
                              f"{type(el).__name__}.")
    return is_tuple, inp


def _tuple_postprocess(res, to_unpack):
    if isinstance(to_unpack, tuple):
        if not to_unpack[1]:
            res = tuple(el[0] for el in res)
        if not to_unpack[0]:
            res = res[0]
    elif not to_unpack:
        res = res[0]
    return res


def _grad_preprocess(inputs, create_graph: bool, need_graph: bool):
    """Fresh tensors to differentiate with respect to: a differentiable alias of an input
    that requires grad (create_graph), else a detached copy of its identity."""
    res = []
    for inp in inputs:
        if create_graph and inp.requires_grad:
            res.append(inp.view_as(inp))
        else:
            d = inp.detach()
            if need_graph and d.dtype.is_floating_point:
                d.requires_grad_(True)
            res.append(d)
    return tuple(res)


def _grad_postprocess(inputs, create_graph: bool):
    if isinstance(inputs[0], Tensor):
        return inputs if create_graph else tuple(i.detach() for i in inputs)
    return tuple(_grad_postprocess(i, create_graph) for i in inputs)


def _validate_v(v, other, is_other_tuple: bool) -> None:
    if len(other) != len(v):
        if is_other_tuple:
            raise ArgumentError(f"v is a tuple of invalid length: should be {len(other)} but "
                                f"got {len(v)}.")
        raise ArgumentError("The given v should contain a single Tensor.")
    for idx, (el_v, el_other) in enumerate(zip(v, other)):
        if tuple(el_v.shape) != tuple(el_other.shape):
            prepend = f"Entry {idx} in " if is_other_tuple else ""
            raise ArgumentError(f"{prepend}v has invalid size: should be "
                                f"{tuple(el_other.shape)} but got {tuple(el_v.shape)}.")


_STRICT_MSGS = {
    "outputs": "The output of the user-provided function is independent of input {i}. This "
               "is not allowed in strict mode.",
    "hessian": "The hessian of the user-provided function with respect to input {i} is "
               "independent of the input. This is not allowed in strict mode. You should "
               "ensure that your function is thrice differentiable and that the hessian "
               "depends on the inputs.",
    "jacobian": "While computing the hessian, found that the jacobian of the user-provided "
                "function with respect to input {i} is independent of the input. This is not "
                "allowed in strict mode. You should ensure that your function is twice "
                "differentiable and that the jacobian depends on the inputs (this would be "
                "violated by a linear function for example).",
    "grad_inputs": "The gradient with respect to input {i} is independent of the inputs of "
                   "the user-provided function. This is not allowed in strict mode.",
}


def _check_requires_grad(inputs, input_type: str, strict: bool) -> None:
    if not strict:
        return
    for i, inp in enumerate(inputs):
        if inp is None:
            raise AutogradError(_STRICT_MSGS.get(input_type, _STRICT_MSGS["outputs"])
                                .format(i=i))
        if not inp.requires_grad:
            if input_type in _STRICT_MSGS and input_type != "outputs":
                raise AutogradError(_STRICT_MSGS[input_type].format(i=i))
            raise AutogradError(f"Output {i} of the user-provided function does not require "
                                "gradients. The outputs must be computed in a differentiable "
                                "manner from the input when running in strict mode.")


def _autograd_grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """``fw.autograd.grad`` over the outputs that require grad (None where unused)."""
    from . import grad
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    new_outputs, new_grads = [], []
    for out, g in zip(outputs, grad_outputs):
        if out is not None and out.requires_grad:
            new_outputs.append(out)
            new_grads.append(g)
    if not new_outputs:
        return (None,) * len(inputs)
    return grad(new_outputs, list(inputs), new_grads, retain_graph=retain_graph,
                create_graph=create_graph, allow_unused=True)


_FILL_MSGS = {
    "back": "The output of the user-provided function is independent of input {i}. This is "
            "not allowed in strict mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
                  "grad_outputs when using the double backward trick to compute forward mode "
                  "gradients. This is not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. "
                   "This is not allowed in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry "
                         "{i} in the grad_jacobian. This is not allowed in strict mode as it "
                         "prevents from using the double backward trick to replace forward "
                         "mode AD.",
}


def _fill_in_zeros(grads, refs, strict: bool, create_graph: bool, stage: str):
    from ..creation import zeros_like
    res = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise AutogradError(_FILL_MSGS[stage].format(i=i))
            g = zeros_like(refs[i])
        res.append(g)
    return tuple(res)


def _zeros_requiring_grad(refs):
    from ..creation import zeros_like
    return tuple(zeros_like(r).requires_grad_(True) for r in refs)


def _single_element_v(inputs, what: str) -> None:
    if len(inputs) != 1 or inputs[0].numel() != 1:
        raise AutogradError(f"The vector v can only be None if the {what} a single Tensor with "
                            "a single element.")


def _prepare_v(v, like, like_is_tuple, create_graph, name, what):
    """``v`` as a checked tuple matching ``like`` (None only for one single-element
    tensor, ``what`` naming it in the error)."""
    if v is None:
        _single_element_v(like, what)
        return None
    _, v = _as_tuple(v, "v", name)
    v = _grad_preprocess(v, create_graph=create_graph, need_graph=False)
    _validate_v(v, like, like_is_tuple)
    return v


def _call(func, inputs, create_graph, strict, name):
    """``func`` on fresh differentiable views of ``inputs``: (inputs were a tuple,
    inputs, outputs were a tuple, outputs)."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", name)
    inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
    outputs = func(*inputs)
    is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function",
                                          name)
    _check_requires_grad(outputs, "outputs", strict)
    return is_inputs_tuple, inputs, is_outputs_tuple, outputs


# -- the public functions ------------------------------------------------------------------
def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), v^T J)``: the vector-Jacobian product at ``inputs``. ``v`` may be
    None only for a single-element output."""
    with enable_grad():
        is_inputs_tuple, inputs, is_outputs_tuple, outputs = _call(func, inputs, create_graph,
                                                                   strict, "vjp")
        v = _prepare_v(v, outputs, is_outputs_tuple, create_graph, "vjp",
                       "user-provided function returns")
    with set_grad_enabled(True if create_graph else tls.grad_enabled):
        grad_res = _autograd_grad(outputs, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(grad_res, inputs, strict, create_graph, "back")
    return (_tuple_postprocess(_grad_postprocess(outputs, create_graph), is_outputs_tuple),
            _tuple_postprocess(_grad_postprocess(res, create_graph), is_inputs_tuple))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), J v)``: the Jacobian-vector product at ``inputs``, by the double
    backward trick. ``v`` may be None only for a single-element input."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
        v = _prepare_v(v, inputs, is_inputs_tuple, create_graph, "jvp",
                       "input to the user-provided function is")
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function",
                                              "jvp")
        _check_requires_grad(outputs, "outputs", strict)
        # the backward is linear in grad_outputs: its value does not matter (zeros)
        grad_outputs = _zeros_requiring_grad(outputs)
        grad_inputs = _autograd_grad(outputs, inputs, grad_outputs, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict)
    with set_grad_enabled(True if create_graph else tls.grad_enabled):
        grad_res = _autograd_grad(grad_inputs, grad_outputs, v, create_graph=create_graph)
        res = _fill_in_zeros(grad_res, outputs, strict, create_graph, "back_trick")
    return (_tuple_postprocess(_grad_postprocess(outputs, create_graph), is_outputs_tuple),
            _tuple_postprocess(_grad_postprocess(res, create_graph), is_outputs_tuple))


def _check_strategy(strategy, vectorize, create_graph, strict, name="strategy"):
    if strategy not in ("forward-mode", "reverse-mode"):
        raise ArgumentError(f'Expected {name} to be either "forward-mode" or "reverse-mode", '
                            f"got {strategy!r}. Hint: If your function has more outputs than "
                            'inputs, "forward-mode" tends to be more performant. Otherwise, '
                            'prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(
                "fw.autograd.functional.jacobian: `create_graph=True` and "
                '`strategy="forward-mode"` are not supported together (yet). Please either '
                'set `create_graph=False` or `strategy="reverse-mode"`.')
        if strict:
            raise AutogradError(
                'fw.autograd.functional.jacobian: `strict=True` and `strategy="forward-mode"` '
                "are not supported together (yet). Please either set `strict=False` or "
                '`strategy="reverse-mode"`.')
        if not vectorize:
            raise NotImplementedError(
                "Computing Jacobian using forward-AD or forward-over-reverse Hessian is only "
                "implemented for `vectorize=True`.")


def _jacobian_forward(func, inputs):
    """The Jacobian column by column: one JVP (double-backward trick) per input element."""
    from .. import ops as F
    from ..creation import zeros_like
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    inputs = tuple(i.detach() for i in inputs)
    cols = None  # [output][input] -> list of J[:, k] columns
    is_outputs_tuple, outputs = False, None
    for j, inp in enumerate(inputs):
        for k in range(inp.numel()):
            v = [zeros_like(i) for i in inputs]
            flat = v[j].reshape(-1).clone()
            flat[k] = 1.0
            v[j] = flat.reshape(inp.shape)
            outs, tangent = jvp(func, inputs, tuple(v))
            if outputs is None:
                is_outputs_tuple = isinstance(outs, tuple)
                outputs = outs if is_outputs_tuple else (outs,)
                cols = [[[] for _ in inputs] for _ in outputs]
            tangent = tangent if is_outputs_tuple else (tangent,)
            for o, t in enumerate(tangent):
                cols[o][j].append(t)
    res = tuple(tuple(F.stack(cols[o][j], dim=-1).reshape(tuple(outputs[o].shape) +
                                                          tuple(inputs[j].shape))
                      if cols[o][j] else
                      F.zeros(tuple(outputs[o].shape) + tuple(inputs[j].shape),
                              dtype=outputs[o].dtype, device=outputs[o].device)
                      for j in range(len(inputs)))
                for o in range(len(outputs)))
    return _tuple_postprocess(res, (is_outputs_tuple, is_inputs_tuple))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: shape ``out.shape + in.shape`` per
    (output, input) pair, nested as the outputs and inputs were (tensor or tuple)."""
    _check_strategy(strategy, vectorize, create_graph, strict)
    if strategy == "forward-mode":
        return _jacobian_forward(func, inputs)
    from .. import ops as F
    from ..creation import zeros_like
    with enable_grad():
        is_inputs_tuple, inputs, is_outputs_tuple, outputs = _call(func, inputs, create_graph,
                                                                   strict, "jacobian")
        if vectorize and strict:
            raise AutogradError("fw.autograd.functional.jacobian: `strict=True` and "
                                "`vectorized=True` are not supported together. Please either "
                                "set `strict=False` or `vectorize=False`.")
        jac = []
        for i, out in enumerate(outputs):
            jac_i = [[] for _ in inputs]
            flat = out.reshape(-1)
            for j in range(out.numel()):
                vj = _autograd_grad((flat[j],), inputs, retain_graph=True,
                                    create_graph=create_graph)
                for el_idx, (jac_el, vj_el, inp_el) in enumerate(zip(jac_i, vj, inputs)):
                    if vj_el is not None:
                        if strict and create_graph and not vj_el.requires_grad:
                            raise AutogradError(
                                f"The jacobian of the user-provided function is not twice "
                                f"differentiable with respect to input {i}. This is not "
                                "allowed in strict mode when create_graph=True.")
                        jac_el.append(vj_el)
                    else:
                        if strict:
                            raise AutogradError(
                                f"Output {i} of the user-provided function is independent of "
                                f"input {el_idx}. This is not allowed in strict mode.")
                        jac_el.append(zeros_like(inp_el))
            jac.append(tuple(
                (F.stack(jac_el, dim=0) if jac_el else
                 F.zeros((0,) + tuple(inputs[k].shape), dtype=inputs[k].dtype,
                         device=inputs[k].device))
                .reshape(tuple(out.shape) + tuple(inputs[k].shape))
                for k, jac_el in enumerate(jac_i)))
        jac = _grad_postprocess(tuple(jac), create_graph)
        return _tuple_postprocess(jac, (is_outputs_tuple, is_inputs_tuple))


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar ``func`` at ``inputs`` (a tensor for a tensor input; a tuple
    of tuples ``H[i][j]`` of shape ``in_i.shape + in_j.shape`` for tuple inputs)."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise ArgumentError('Expected strategy to be either "forward-mode" or "reverse-mode", '
                            f"got {outer_jacobian_strategy!r}.")

    def ensure_single_output_function(*inp):
        out = func(*inp)
        is_out_tuple, t_out = _as_tuple(out, "outputs of the user-provided function",
                                        "hessian")
        _check_requires_grad(t_out, "outputs", strict)
        if is_out_tuple or not isinstance(out, Tensor):
            raise AutogradError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise AutogradError("The Tensor returned by the function given to hessian should "
                                "contain a single element")
        return out.squeeze()

    def jac_func(*inp):
        if outer_jacobian_strategy == "forward-mode":
            inp = tuple(t.requires_grad_(True) for t in inp)
        jac = jacobian(ensure_single_output_function, inp, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        return jac

    res = jacobian(jac_func, inputs, create_graph=create_graph, strict=strict,
                   vectorize=vectorize, strategy=outer_jacobian_strategy)
    return _tuple_postprocess(res, (is_inputs_tuple, is_inputs_tuple))


def _scalar_output_and_jac(func, inputs, v, create_graph, strict, name):
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", name)
    inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
    v = _prepare_v(v, inputs, is_inputs_tuple, create_graph, name,
                   "input to the user-provided function is")
    outputs = func(*inputs)
    is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function",
                                          name)
    _check_requires_grad(outputs, "outputs", strict)
    if is_outputs_tuple:
        raise AutogradError(f"The function given to {name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise AutogradError(f"The Tensor returned by the function given to {name} should "
                            "contain a single element")
    jac = _autograd_grad(outputs, inputs, create_graph=True)
    _check_requires_grad(jac, "jacobian", strict)
    return is_inputs_tuple, inputs, v, outputs, jac


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), v^T H)`` for a scalar ``func``."""
    with enable_grad():
        is_inputs_tuple, inputs, v, outputs, jac = _scalar_output_and_jac(
            func, inputs, v, create_graph, strict, "vhp")
    with set_grad_enabled(True if create_graph else tls.grad_enabled):
        grad_res = _autograd_grad(jac, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(grad_res, inputs, strict, create_graph, "double_back")
    return (_grad_postprocess(outputs, create_graph)[0],
            _tuple_postprocess(_grad_postprocess(res, create_graph), is_inputs_tuple))


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), H v)`` for a scalar ``func``, by the double-backward trick."""
    with enable_grad():
        is_inputs_tuple, inputs, v, outputs, jac = _scalar_output_and_jac(
            func, inputs, v, create_graph, strict, "hvp")
        grad_jac = _zeros_requiring_grad(inputs)
        double_back = _autograd_grad(jac, inputs, grad_jac, create_graph=True)
        _check_requires_grad(jac, "hessian", strict)
    with set_grad_enabled(True if create_graph else tls.grad_enabled):
        grad_res = _autograd_grad(double_back, grad_jac, v, create_graph=create_graph)
        res = _fill_in_zeros(grad_res, inputs, strict, create_graph, "double_back_trick")
    return (_grad_postprocess(outputs, create_graph)[0],
            _tuple_postprocess(_grad_postprocess(res, create_graph), is_inputs_tuple))
