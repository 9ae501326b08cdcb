"""Module hooks: handles, and ``Module.__call__``'s hook protocol (forward pre/post hooks
and full backward hooks).

Backward hooks put identity autograd functions around the module: one on the inputs (its
backward sees ``grad_input``) and one on the outputs (its backward sees ``grad_output``).
"""

from __future__ import annotations

import itertools

from ...autograd import Function, is_grad_enabled
from ...errors import ArgumentError
from ...tensor import Tensor


class RemovableHandle:
    """Returned by ``register_*_hook``; ``remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: dict, extra: dict | None = None):
        self.hooks_dict = hooks
        self.extra = extra
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        """Unregister the hook (idempotent)."""
        self.hooks_dict.pop(self.id, None)
        if self.extra is not None:
            self.extra.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _Identity(Function):
    """Identity on its tensor arguments; backward hands the gradients to a callback (the
    first, non-tensor argument), which may replace them."""

    @staticmethod
    def forward(ctx, callback, *tensors):
        ctx.callback = callback
        return tuple(t.view_as(t) for t in tensors)

    @staticmethod
    def backward(ctx, *grads):
        return (None,) + tuple(ctx.callback(grads))


# torch.nn.modules.module.register_module_forward_(pre_)hook: hooks on every module's call,
# run before the module's own (fw.utils.module_tracker and FlopCounterMode use them)
_global_forward_pre_hooks: dict = {}
_global_forward_hooks: dict = {}


def register_module_forward_pre_hook(hook) -> RemovableHandle:
    """``hook(module, args)`` runs before every module's ``forward`` (before the module's
    own pre-hooks); returning a value replaces the arguments."""
    handle = RemovableHandle(_global_forward_pre_hooks)
    _global_forward_pre_hooks[handle.id] = hook
    return handle


def register_module_forward_hook(hook, *, with_kwargs: bool = False,
                                 always_call: bool = False) -> RemovableHandle:
    """``hook(module, args, output)`` runs after every module's ``forward`` (before the
    module's own forward hooks); returning a value replaces the output."""
    if with_kwargs or always_call:
        raise NotImplementedError("register_module_forward_hook: with_kwargs and always_call "
                                  "are not supported")
    handle = RemovableHandle(_global_forward_hooks)
    _global_forward_hooks[handle.id] = hook
    return handle


def _run_forward_pre_hooks(module, args, kwargs):
    for hook in list(_global_forward_pre_hooks.values()):
        res = hook(module, args)
        if res is not None:
            args = res if isinstance(res, tuple) else (res,)
    for hid, hook in list(module._forward_pre_hooks.items()):
        if hid in module._forward_pre_hooks_with_kwargs:
            res = hook(module, args, kwargs)
            if res is not None:
                if not (isinstance(res, tuple) and len(res) == 2):
                    raise ArgumentError("forward pre-hook with kwargs must return None or a "
                                        f"tuple of (new_args, new_kwargs), got {res!r}")
                args, kwargs = res
        else:
            res = hook(module, args)
            if res is not None:
                args = res if isinstance(res, tuple) else (res,)
    return args, kwargs


def _run_forward_hooks(module, args, kwargs, out):
    for hook in list(_global_forward_hooks.values()):
        res = hook(module, args, out)
        if res is not None:
            out = res
    for hid, hook in list(module._forward_hooks.items()):
        if hid in module._forward_hooks_with_kwargs:
            res = hook(module, args, kwargs, out)
        else:
            res = hook(module, args, out)
        if res is not None:
            out = res
    return out


def _wrap_inputs(module, args, state):
    """Route the positional tensors that require grad through ``_Identity``."""
    pos = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    state["n_inputs"] = len([a for a in args if isinstance(a, Tensor)])
    state["has_inputs"] = bool(pos)
    if not pos:
        return args

    def on_grad_input(grads):
        grads = tuple(grads)
        for hook in list(module._backward_hooks.values()):
            res = hook(module, grads, state["grad_output"])
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grads):
                    raise ArgumentError(f"backward hook returned {len(res)} gradients; "
                                        f"expected {len(grads)}")
                grads = res
        state["called"] = True
        return grads

    wrapped = _Identity.apply(on_grad_input, *[args[i] for i in pos])
    new = list(args)
    for i, w in zip(pos, wrapped):
        new[i] = w
    return tuple(new)


def _wrap_outputs(module, out, state):
    single = isinstance(out, Tensor)
    outs = (out,) if single else out
    if not isinstance(outs, tuple):
        return out
    pos = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
    if not pos:
        return out

    def on_grad_output(grads):
        grads = tuple(grads)
        for hook in list(module._backward_pre_hooks.values()):
            res = hook(module, grads)
            if res is not None:
                grads = tuple(res) if isinstance(res, (tuple, list)) else (res,)
        state["grad_output"] = grads
        if not state["has_inputs"]:  # no input needs grad: hooks fire now with grad_input of Nones
            for hook in list(module._backward_hooks.values()):
                hook(module, (None,) * max(state["n_inputs"], 1), grads)
        return grads

    wrapped = _Identity.apply(on_grad_output, *[outs[i] for i in pos])
    new = list(outs)
    for i, w in zip(pos, wrapped):
        new[i] = w
    return new[0] if single else tuple(new)


def call_module(module, args, kwargs):
    """``module(*args, **kwargs)``: pre-hooks, forward, forward hooks, backward hooks."""
    if module._forward_pre_hooks or _global_forward_pre_hooks:
        args, kwargs = _run_forward_pre_hooks(module, args, kwargs)
    backward = (module._backward_hooks or module._backward_pre_hooks) and is_grad_enabled()
    if backward:
        state = {"grad_output": None}
        args = _wrap_inputs(module, args, state)
    out = module.forward(*args, **kwargs)
    if module._forward_hooks or _global_forward_hooks:
        out = _run_forward_hooks(module, args, kwargs, out)
    if backward:
        out = _wrap_outputs(module, out, state)
    return out
