"""``nn.utils.stateless.functional_call``: call a module with some of its parameters and
buffers replaced by given tensors, without changing the module."""

from __future__ import annotations

from contextlib import contextmanager

from ...errors import ArgumentError, FwTypeError
from ...tensor import Tensor
from ..modules.module import Module, StateDictError

__all__ = ["functional_call", "stack_module_state"]

_MISSING = object()


def _swap_tensor(module: Module, name: str, tensor):
    """Put ``tensor`` at ``module.<name>`` (a parameter, buffer or plain attribute) and
    return what was there (``_MISSING`` if nothing); ``tensor=_MISSING`` deletes it."""
    for table in (module._parameters, module._buffers):
        if name in table:
            orig = table[name]
            if tensor is _MISSING:
                del table[name]
            else:
                table[name] = tensor
            return orig
    orig = getattr(module, name) if hasattr(module, name) else _MISSING
    if orig is not _MISSING and not isinstance(orig, Tensor):
        raise FwTypeError(f"functional_call: attribute `{name}` of {module._get_name()} is not a "
                          f"Tensor ({type(orig).__name__})")
    if tensor is not _MISSING:
        setattr(module, name, tensor)
    elif hasattr(module, name):
        delattr(module, name)
    return orig


def _owner(module: Module, path: str):
    prefix, _, name = path.rpartition(".")
    return module.get_submodule(prefix) if prefix else module, name


def _untie(module: Module, values: dict) -> dict:
    """Extend ``values`` to every name tied to (sharing a tensor with) a given name."""
    groups: dict = {}
    for name, t in list(module.named_parameters(remove_duplicate=False)) + \
            list(module.named_buffers(remove_duplicate=False)):
        groups.setdefault(id(t), []).append(name)
    out = dict(values)
    for names in groups.values():
        if len(names) < 2:
            continue
        given = [n for n in names if n in values]
        if not given:
            continue
        if len({id(values[n]) for n in given}) > 1:
            raise ArgumentError(f"functional_call got multiple values for keys {given}, which "
                                "are tied. Consider using tie_weights=False")
        for n in names:
            out.setdefault(n, values[given[0]])
    return out


@contextmanager
def _reparametrize(module: Module, values: dict, tie_weights: bool, strict: bool):
    if strict:
        known = {n for n, _ in module.named_parameters(remove_duplicate=False)} | \
            {n for n, _ in module.named_buffers(remove_duplicate=False)}
        unexpected = [k for k in values if k not in known]
        missing = [k for k in known if k not in values]
        msgs = []
        if unexpected:
            msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if msgs:
            raise StateDictError(f"Error(s) in reparametrizing for {module._get_name()}:\n\t"
                                 + "\n\t".join(msgs))
    if tie_weights:
        values = _untie(module, values)
    saved = []
    try:
        for path, t in values.items():
            owner, name = _owner(module, path)
            saved.append((owner, name, _swap_tensor(owner, name, t)))
        yield
    finally:
        for owner, name, orig in reversed(saved):
            _swap_tensor(owner, name, orig)


def functional_call(module: Module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                    tie_weights: bool = True, strict: bool = False):
    """``module(*args, **kwargs)`` with the parameters and buffers named in
    ``parameter_and_buffer_dicts`` (a dict, or a tuple of dicts with distinct keys, keyed
    as ``state_dict``) replaced for the duration of the call; the module is unchanged
    afterwards. Tied tensors given under one name are replaced under every name
    (``tie_weights``); ``strict`` requires exactly the module's parameter and buffer names.
    """
    if isinstance(parameter_and_buffer_dicts, dict):
        values = parameter_and_buffer_dicts
    elif isinstance(parameter_and_buffer_dicts, (list, tuple)) and \
            all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
        values = {}
        for d in parameter_and_buffer_dicts:
            dup = [k for k in d if k in values]
            if dup:
                raise ArgumentError(f"functional_call: {dup} appeared in multiple dictionaries; "
                                    "behavior of functional call is ambiguous")
            values.update(d)
    else:
        raise FwTypeError(f"functional_call: expected parameter_and_buffer_dicts to be a dict, "
                          f"or a list/tuple of dicts, but got "
                          f"{type(parameter_and_buffer_dicts).__name__}")
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    with _reparametrize(module, values, tie_weights, strict):
        return module(*args, **(kwargs or {}))


def stack_module_state(models) -> tuple[dict, dict]:
    """``(params, buffers)`` of M modules of one class, each a dict name -> the M tensors
    stacked along a new dim 0 (``torch.func.stack_module_state``), for ensembling with
    ``vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))``.
    The stacked parameters are new leaves (they require grad where the originals do, and
    an optimizer can update them); buffers never require grad."""
    from ...errors import ArgumentError
    from ...ops import stack
    models = list(models)
    if not models:
        raise ArgumentError("stack_module_state: Expected at least one model, got 0.")
    if any(m.training != models[0].training for m in models):
        raise ArgumentError("stack_module_state: Expected all models to have the same "
                            "training/eval mode.")
    if any(type(m) is not type(models[0]) for m in models):
        raise ArgumentError("stack_module_state: Expected all models to be of the same "
                            "class.")

    def stacked(named, grad: bool) -> dict:
        out = {}
        for name, t in named(models[0]):
            s = stack([dict(named(m))[name].detach() for m in models])
            out[name] = s.requires_grad_(True) if grad and t.requires_grad else s
        return out
    return (stacked(lambda m: m.named_parameters(), True),
            stacked(lambda m: m.named_buffers(), False))
