"""``Module``'s state dict: ``state_dict`` / ``load_state_dict``, their four hook kinds and
``get_extra_state`` / ``set_extra_state``, with PyTorch 2.x's names, arguments and order.

``state_dict`` runs, for each module, its pre-hooks ``hook(module, prefix, keep_vars)``,
saves its own entries, recurses into the children, then runs its post-hooks
``hook(module, state_dict, prefix, local_metadata)``. ``load_state_dict`` copies the dict
(hooks may edit the copy), then for each module runs its pre-hooks ``hook(module,
state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)``,
loads its own entries, recurses into the children (each gets the entries under its
prefix) and runs its post-hooks ``hook(module, incompatible_keys)``, which may edit the
missing/unexpected lists in place before ``strict`` looks at them.

With no hook registered and no extra state, both cost what they did without this machinery:
one dict lookup per module per hook kind.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from ...autograd import no_grad
from ...errors import FrameworkError
from ...tensor import Tensor
from ..parameter import Parameter
from ._hooks import RemovableHandle

_EXTRA_STATE_KEY_SUFFIX = "_extra_state"


class StateDictError(FrameworkError, RuntimeError):
    """``load_state_dict`` found missing, unexpected or mis-shaped keys (strict mode), or a
    state-dict hook broke its contract."""


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class _WithoutModule:
    """A load pre-hook registered through the private API: called without the module."""

    def __init__(self, hook):
        self.hook = hook

    def __call__(self, module, *args):
        return self.hook(*args)


class _MayReplace:
    """A state-dict post-hook registered through the private ``_register_state_dict_hook``:
    a returned dict replaces the state dict (the public API requires ``None``)."""

    def __init__(self, hook):
        self.hook = hook

    def __call__(self, *args):
        return self.hook(*args)


def _register(table, hook) -> RemovableHandle:
    handle = RemovableHandle(table)
    table[handle.id] = hook
    return handle


class ModuleStateMixin:
    """The state-dict half of :class:`Module` (mixed into it; not used on its own)."""

    # -- hook registration -----------------------------------------------------------------
    def register_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, prefix, keep_vars)`` runs before ``state_dict()`` saves this
        module's entries (and its children's)."""
        return _register(self._state_dict_pre_hooks, hook)

    def register_state_dict_post_hook(self, hook) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata)`` runs once ``state_dict()``
        has saved this module and its children; it may edit ``state_dict`` in place and
        must return None."""
        return _register(self._state_dict_hooks, hook)

    def _register_state_dict_hook(self, hook) -> RemovableHandle:
        """The private, older form of :meth:`register_state_dict_post_hook`: a dict the hook
        returns replaces the state dict."""
        return _register(self._state_dict_hooks, _MayReplace(hook))

    def register_load_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` runs before this module loads its entries; it may
        rename, add or drop keys of ``state_dict`` (a copy of the caller's dict)."""
        return _register(self._load_state_dict_pre_hooks, hook)

    def _register_load_state_dict_pre_hook(self, hook, with_module: bool = False
                                           ) -> RemovableHandle:
        """The private form of :meth:`register_load_state_dict_pre_hook`: the hook is called
        without the module unless ``with_module``."""
        return _register(self._load_state_dict_pre_hooks,
                         hook if with_module else _WithoutModule(hook))

    def register_load_state_dict_post_hook(self, hook) -> RemovableHandle:
        """``hook(module, incompatible_keys)`` runs once this module and its children are
        loaded; it may edit ``incompatible_keys.missing_keys`` / ``.unexpected_keys`` in
        place (before ``strict`` checks them) and must return None."""
        return _register(self._load_state_dict_post_hooks, hook)

    # -- extra state -----------------------------------------------------------------------
    def get_extra_state(self):
        """Override to save non-tensor state: the returned value (anything ``fw.save``
        accepts) is stored under ``<prefix>_extra_state`` and handed to
        :meth:`set_extra_state` by ``load_state_dict``."""
        raise StateDictError("Reached Module.get_extra_state(), which is only called when a "
                             "subclass overrides it")

    def set_extra_state(self, state) -> None:
        """Override (with :meth:`get_extra_state`) to restore the saved extra state."""
        raise StateDictError("Reached Module.set_extra_state(), which is only called when a "
                             "subclass overrides it")

    # -- saving ----------------------------------------------------------------------------
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        if type(self).get_extra_state is not ModuleStateMixin.get_extra_state:
            destination[prefix + _EXTRA_STATE_KEY_SUFFIX] = self.get_extra_state()

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict of every parameter and persistent buffer (and extra state), keyed
        by dotted name (``"0.weight"``, ``"bn.running_mean"``), detached unless
        ``keep_vars``; entries are added to ``destination`` when given, under ``prefix``."""
        if args:  # legacy positional (destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = {"version": self._version}
        metadata = getattr(destination, "_metadata", None)
        if metadata is not None:
            metadata[prefix[:-1]] = local_metadata
        if self._state_dict_pre_hooks:
            for hook in list(self._state_dict_pre_hooks.values()):
                hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        if self._state_dict_hooks:
            for hook in list(self._state_dict_hooks.values()):
                res = hook(self, destination, prefix, local_metadata)
                if res is None:
                    continue
                if not isinstance(hook, _MayReplace):
                    raise StateDictError("state_dict post-hook must return None (edit the "
                                         "state dict in place)")
                destination = res
        return destination

    # -- loading ---------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing,
                              unexpected, errors):
        """Copy this module's own entries; record missing/unexpected keys and mismatches
        (PyTorch always records them; ``strict`` only decides whether they raise).

        PyTorch's signature, which overrides and callers such as BEiT/ConvNeXt's
        ``load_state_dict(model, state_dict, prefix)`` use; ``load_state_dict(assign=True)``
        arrives as ``local_metadata["assign_to_params_buffers"]``, as in PyTorch."""
        assign = bool(local_metadata.get("assign_to_params_buffers", False))
        local = [(n, p) for n, p in self._parameters.items() if p is not None]
        local += [(n, b) for n, b in self._buffers.items()
                  if b is not None and n not in self._non_persistent_buffers_set]
        for name, target in local:
            key = prefix + name
            if key not in state_dict:
                missing.append(key)
                continue
            value = state_dict[key]
            if getattr(target, "_fw_sparse", False) and getattr(value, "_fw_sparse", False):
                value = value if assign else value.clone().to(target.device, target.dtype)
            else:
                value = _as_tensor_value(value, key)
            if tuple(value.shape) != tuple(target.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{_size(value.shape)} from checkpoint, the shape in current "
                              f"model is {_size(target.shape)}.")
                continue
            if assign or getattr(value, "_fw_sparse", False):
                # (a sparse buffer takes the checkpoint's pattern: PyTorch's sparse copy_)
                self._assign(name, target, value)
                continue
            try:
                with no_grad():
                    target.copy_(value)
            except FrameworkError as e:
                errors.append(f'While copying the parameter named "{key}", whose dimensions '
                              f"in the model are {_size(target.shape)} and whose dimensions "
                              f"in the checkpoint are {_size(value.shape)}, an exception "
                              f"occurred : {e}.")
        extra_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if type(self).set_extra_state is not ModuleStateMixin.set_extra_state:
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            else:
                missing.append(extra_key)
        elif extra_key in state_dict:
            unexpected.append(extra_key)
        local_names = {n for n, _ in local}
        for key in state_dict:
            if key.startswith(prefix) and key != extra_key:
                parts = key[len(prefix):].split(".", 1)
                if (len(parts) > 1 and parts[0] not in self._modules) or \
                        (len(parts) == 1 and parts[0] not in local_names):
                    unexpected.append(key)

    def _assign(self, name, target, value):
        """``assign=True``: the module takes the checkpoint tensor itself (its dtype too); a
        parameter keeps the ``requires_grad`` of the one it replaces."""
        if name in self._parameters:
            if isinstance(value, Parameter):
                value.requires_grad_(target.requires_grad)
            else:
                value = Parameter(value, requires_grad=target.requires_grad)
            self._parameters[name] = value
        else:
            self._buffers[name] = value

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values from ``state_dict`` (tensors or NumPy arrays) into this module's
        parameters and buffers. Shape mismatches raise a ``StateDictError`` naming the
        keys, and so do missing/unexpected keys with ``strict``; returns
        ``(missing_keys, unexpected_keys)``. ``assign=True`` makes the module hold the given
        tensors instead of copying into its own (parameters keep their ``requires_grad``)."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got "
                            f"{type(state_dict).__name__}.")
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)  # hooks may edit it
        if metadata is not None:
            state_dict._metadata = metadata
        missing, unexpected, errors = [], [], []
        _load_tree(self, state_dict, "", metadata, (missing, unexpected, errors), assign)
        unexpected[:] = dict.fromkeys(unexpected)
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected)))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing)))
        if errors:
            raise StateDictError("Error(s) in loading state_dict for {}:\n\t{}".format(
                self._get_name(), "\n\t".join(errors)))
        return _IncompatibleKeys(missing, unexpected)


def _load_tree(module, local, prefix, metadata, lists, assign):
    """Load ``module`` from ``local`` (the entries under ``prefix``), then its children,
    running its load hooks around that (PyTorch's ``load_state_dict.load``)."""
    missing, unexpected, errors = lists
    local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
    if assign:
        local_metadata = {**local_metadata, "assign_to_params_buffers": True}
    if module._load_state_dict_pre_hooks:
        for hook in list(module._load_state_dict_pre_hooks.values()):
            # PyTorch hands strict=True to every module: keys are always recorded
            hook(module, local, prefix, local_metadata, True, missing, unexpected, errors)
    module._load_from_state_dict(local, prefix, local_metadata, True, missing, unexpected,
                                 errors)
    for name, child in module._modules.items():
        if child is not None:
            sub = prefix + name + "."
            _load_tree(child, {k: v for k, v in local.items() if k.startswith(sub)}, sub,
                       metadata, lists, assign)
    if module._load_state_dict_post_hooks:
        keys = _IncompatibleKeys(missing, unexpected)
        for hook in list(module._load_state_dict_post_hooks.values()):
            if hook(module, keys) is not None:
                raise StateDictError("load_state_dict post-hook must return None (edit "
                                     "incompatible_keys.missing_keys / .unexpected_keys in "
                                     "place)")


def _size(shape) -> str:
    return f"fw.Size({list(shape)})"


def _as_tensor_value(value, key) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic, int, float, bool, list)):
        from ...creation import tensor
        return tensor(np.asarray(value))
    raise TypeError(f"load_state_dict: value for key {key!r} must be a Tensor or a NumPy "
                    f"array, got {type(value).__name__}")
