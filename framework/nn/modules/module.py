"""``nn.Module``: the base class of every layer, with PyTorch's registration semantics
(parameters, buffers, sub-modules), hooks, train/eval, ``to``/``to_empty``, ``compile`` and
``repr``. The state dict and its hooks are in :mod:`._module_state`."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ... import dtypes
from ...autograd import no_grad, zero_grads_
from ...errors import ArgumentError, FrameworkError
from ...tensor import Tensor
from ..parameter import Buffer, Parameter
from ._hooks import RemovableHandle, call_module
from ._hooks import register_module_forward_hook, register_module_forward_pre_hook  # noqa: F401
from ._module_state import ModuleStateMixin, StateDictError  # noqa: F401


class ModuleAttributeError(FrameworkError, AttributeError):
    """A dotted path (``get_submodule``, ``set_submodule``, ``get_parameter``...) names no
    sub-module, or something that is not one."""


_STATE_HOOK_TABLES = ("_state_dict_pre_hooks", "_state_dict_hooks",
                      "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def _addindent(s: str, num_spaces: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    first = lines.pop(0)
    return first + "\n" + "\n".join(" " * num_spaces + line for line in lines)


def _replace_param(module, p, new, grad) -> None:
    """Give parameter ``p`` of ``module`` the converted data ``new`` (and gradient ``grad``):
    by ``p.data = new`` (default), by ``swap_tensors`` or by registering a new Parameter,
    as the ``fw.__future__`` conversion flags ask."""
    from ... import __future__ as future
    if future.get_overwrite_module_params_on_conversion():
        new_p = Parameter(new, p.requires_grad)
        new_p.grad = grad
        name = next(k for k, v in module._parameters.items() if v is p)
        module._parameters[name] = new_p
    elif future.get_swap_module_params_on_conversion():
        from ...utils.swap import swap_tensors
        new_p = Parameter(new, p.requires_grad)
        new_p.grad = grad
        swap_tensors(p, new_p)
    else:
        p.data = new
        p.grad = grad


def _type_name(value) -> str:
    return type(value).__name__


def _is_buffer_value(value) -> bool:
    """A dense Tensor or a sparse one (PyTorch's sparse tensors are Tensors, so
    ``register_buffer("mask", dense.to_sparse())`` is valid there)."""
    return isinstance(value, Tensor) or getattr(value, "_fw_sparse", False)


class Module(ModuleStateMixin):
    """Base class for all neural-network modules; subclasses define ``forward``."""

    training: bool
    _version = 1
    call_super_init = False
    _compiled_call_impl = None  # set by Module.compile()

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments "
                            f"{args} {kwargs}")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_hooks_with_kwargs"] = {}
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_pre_hooks_with_kwargs"] = {}
        d["_backward_hooks"] = OrderedDict()
        d["_backward_pre_hooks"] = OrderedDict()
        for name in _STATE_HOOK_TABLES:
            d[name] = OrderedDict()

    def forward(self, *args, **kwargs):
        """Define the computation; called through ``module(...)``."""
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    # -- registration ----------------------------------------------------------------------
    def _check_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call")

    @staticmethod
    def _check_name(name, kind, existing):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {_type_name(name)}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if existing:
            raise KeyError(f"attribute '{name}' already exists")

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a buffer (state that is not a parameter, e.g. BatchNorm's running mean).
        Non-persistent buffers are left out of ``state_dict``."""
        self._check_init("buffers")
        self._check_name(name, "buffer", hasattr(self, name) and name not in self._buffers)
        if tensor is not None and not _is_buffer_value(tensor):
            raise TypeError(f"cannot assign '{_type_name(tensor)}' object to buffer '{name}' "
                            "(Tensor or None required)")
        if isinstance(tensor, Buffer):
            tensor = tensor.detach()
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def register_parameter(self, name: str, param) -> None:
        """Add a parameter (a ``Parameter`` or None) under ``name``."""
        self._check_init("parameters")
        self._check_name(name, "parameter",
                         hasattr(self, name) and name not in self._parameters)
        if param is None:
            self._parameters[name] = None
            return
        if not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_type_name(param)}' object to parameter '{name}' "
                            "(nn.Parameter or None required)")
        if param.grad_fn is not None:
            raise ArgumentError(f"Cannot assign non-leaf Tensor to parameter '{name}'. Model "
                                "parameters must be created explicitly; to express it as a "
                                "function of another Tensor, compute the value in forward()")
        self._parameters[name] = param

    def add_module(self, name: str, module) -> None:
        """Add a child module under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_type_name(module)} is not a Module subclass")
        self._check_name(name, "module", hasattr(self, name) and name not in self._modules)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The sub-module at dotted path ``target`` ("" is this module)."""
        mod = self
        if target == "":
            return mod
        for item in target.split("."):
            if item not in mod._modules:
                if hasattr(mod, item):
                    raise ModuleAttributeError(f"`{item}` is not an nn.Module")
                raise ModuleAttributeError(f"{mod._get_name()} has no attribute `{item}`")
            mod = mod._modules[item]
            if mod is None:
                raise ModuleAttributeError(f"`{item}` is not an nn.Module")
        return mod

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Put ``module`` at dotted path ``target`` (``"net.0"`` replaces ``net[0]``); the
        parent must exist, and so must the last name when ``strict``. Replacing an attribute
        that is not a module raises, as in PyTorch."""
        if target == "":
            raise ArgumentError("Cannot set the submodule without a target name!")
        if not isinstance(module, Module):
            raise ArgumentError(f"`module` is not an nn.Module, found {type(module)}")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if hasattr(parent, name):
            if not isinstance(getattr(parent, name), Module):
                raise ModuleAttributeError(f"`{name}` is not an nn.Module")
        elif strict:
            raise ModuleAttributeError(f"{parent._get_name()} has no attribute `{name}`")
        setattr(parent, name, module)

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target``."""
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise ModuleAttributeError(f"{mod._get_name()} has no parameter `{name}`")
        return mod._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target``."""
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._buffers:
            raise ModuleAttributeError(f"{mod._get_name()} has no buffer `{name}`")
        return mod._buffers[name]

    # -- attribute protocol ----------------------------------------------------------------
    def __getattr__(self, name: str):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_parameters")

        def remove_from(*tables):
            for t in tables:
                if name in t:
                    if t is d["_buffers"]:
                        d["_non_persistent_buffers_set"].discard(name)
                    del t[name]
            d.pop(name, None)

        if isinstance(value, Parameter):
            self._check_init("parameters")
            remove_from(d["_buffers"], d["_modules"])
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_type_name(value)}' as parameter '{name}' "
                                "(nn.Parameter or None expected)")
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self._check_init("module")
            remove_from(d["_parameters"], d["_buffers"])
            d["_modules"][name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{_type_name(value)}' as child module "
                                f"'{name}' (nn.Module or None expected)")
            d["_modules"][name] = None
        elif isinstance(value, Buffer):
            self._check_init("buffers")
            remove_from(d["_parameters"], d["_modules"])
            self.register_buffer(name, value, value.persistent)
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not _is_buffer_value(value):
                raise TypeError(f"cannot assign '{_type_name(value)}' as buffer '{name}' "
                                "(Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        if name in d["_parameters"]:
            del d["_parameters"][name]
        elif name in d["_buffers"]:
            del d["_buffers"][name]
            d["_non_persistent_buffers_set"].discard(name)
        elif name in d["_modules"]:
            del d["_modules"][name]
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = list(super().__dir__()) + list(self._parameters) + list(self._modules) + \
            list(self._buffers)
        return sorted(k for k in set(keys) if not k[0].isdigit())

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_compiled_call_impl", None)  # copies run eager until compiled again
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        for name in _STATE_HOOK_TABLES:  # states saved before these tables existed
            self.__dict__.setdefault(name, OrderedDict())

    # -- iteration -------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True):
        """Yield ``(dotted_name, module)`` for this module and every descendant."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        """Yield this module and every descendant (each once)."""
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """Yield ``(name, module)`` for the immediate children."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        """Yield the immediate child modules."""
        for _, m in self.named_children():
            yield m

    def _named_members(self, table, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        """Yield ``(dotted_name, parameter)`` (shared parameters once)."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        """Yield every parameter (shared parameters once)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        """Yield ``(dotted_name, buffer)``."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        """Yield every buffer."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- modes and bulk updates ------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all descendants."""
        if not isinstance(mode, bool):
            raise ArgumentError("training mode is expected to be boolean")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset parameter gradients (to None by default, else zero them in place)."""
        zero_grads_(self.parameters(), set_to_none)

    def apply(self, fn) -> Module:
        """Call ``fn`` on every descendant (children first) and on this module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply(self, fn, grads: bool = True, recurse: bool = True) -> Module:
        """Replace every parameter's and buffer's data by ``fn(data)`` (in place: the
        Parameter objects stay the same, so optimizers keep working); the descendants'
        too unless ``recurse`` is False."""
        if recurse:
            for m in self.children():
                m._apply(fn, grads)
        for p in self._parameters.values():
            if p is None:
                continue
            with no_grad():
                new = fn(p.detach())
                grad = fn(p.grad.detach()) if grads and p.grad is not None else p.grad
            if new is not p.detach():
                _replace_param(self, p, new, grad)
            elif grad is not p.grad:
                p.grad = grad
        for name, b in self._buffers.items():
            if b is not None:
                with no_grad():
                    self._buffers[name] = fn(b)
        return self

    def to(self, *args, **kwargs) -> Module:
        """Move and/or cast parameters and buffers: ``to(dtype)``, ``to("cuda")``,
        ``to(device, dtype)``, ``to(tensor)``. Only floating-point tensors change dtype."""
        from ...tensor_methods import _parse_to
        dtype, device = _parse_to(args, dict(kwargs))
        fmt = kwargs.get("memory_format")
        if dtype is not None and not dtype.is_floating_point:
            raise ArgumentError(f"nn.Module.to only accepts floating point dtypes, but got "
                                f"desired dtype={dtype!r}")

        def convert(t):
            out = t
            if device is not None and out.device is not device:
                out = out.to(device)
            if dtype is not None and out.dtype.is_floating_point and out.dtype is not dtype:
                out = out.to(dtype)
            if fmt is not None and out.ndim in (4, 5):  # conv weights, as PyTorch does
                out = out.contiguous(memory_format=fmt)
            return out
        return self._apply(convert)

    def to_empty(self, *, device, recurse: bool = True) -> Module:
        """Give every parameter and buffer new, uninitialized storage on ``device`` (same
        shapes, dtypes and ``requires_grad``; the Parameter objects stay): how a module
        built on the ``meta`` device gets real memory before its weights are loaded."""
        from ...device import cpu, to_device
        dev = to_device(device)

        def empty(t):
            if dev is cpu:
                return Tensor._wrap(np.empty(tuple(t.shape), dtype=t.dtype.np), t.dtype, cpu)
            from ...creation import empty as fw_empty
            return fw_empty(tuple(t.shape), dtype=t.dtype, device=dev)
        return self._apply(empty, recurse=recurse)

    def _cast_all(self, dtype):
        return self._apply(lambda t: t.to(dtype) if t.dtype.is_floating_point else t)

    def float(self) -> Module:
        """Cast floating-point parameters and buffers to float32."""
        return self._cast_all(dtypes.float32)

    def double(self) -> Module:
        """Cast floating-point parameters and buffers to float64."""
        return self._cast_all(dtypes.float64)

    def half(self) -> Module:
        """Cast floating-point parameters and buffers to float16."""
        return self._cast_all(dtypes.float16)

    def bfloat16(self) -> Module:
        """Cast floating-point parameters and buffers to bfloat16."""
        return self._cast_all(dtypes.bfloat16)

    def cpu(self) -> Module:
        """Move everything to the CPU."""
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        """Move everything to a CUDA device."""
        return self.to("cuda" if device is None else
                       (f"cuda:{device}" if isinstance(device, int) else device))

    def type(self, dst_type) -> Module:
        """Cast all parameters and buffers to ``dst_type``."""
        return self._apply(lambda t: t.to(dst_type))

    # -- calling ---------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args)`` (or ``hook(module, args, kwargs)`` with ``with_kwargs``)
        runs before ``forward``; returning a value replaces the arguments."""
        handle = RemovableHandle(self._forward_pre_hooks, self._forward_pre_hooks_with_kwargs)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook, *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """``hook(module, args, output)`` runs after ``forward``; returning a value replaces
        the output."""
        handle = RemovableHandle(self._forward_hooks, self._forward_hooks_with_kwargs)
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` runs when the gradients with respect to
        the module's positional tensor inputs are computed; returning a tuple replaces
        ``grad_input``."""
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output)`` runs when the gradients with respect to the
        module's outputs arrive; returning a tuple replaces ``grad_output``."""
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_backward_hook(self, hook):
        """The legacy (non-full) backward hook is not supported."""
        raise NotImplementedError("Module.register_backward_hook (the deprecated partial hook) "
                                  "is not supported; use register_full_backward_hook")

    def __call__(self, *args, **kwargs):
        compiled = self._compiled_call_impl
        if compiled is not None:
            return compiled(*args, **kwargs)
        return call_module(self, args, kwargs)

    def _call_impl(self, *args, **kwargs):
        """``module(...)`` without the compiled path: hooks and ``forward``."""
        return call_module(self, args, kwargs)

    def compile(self, *args, **kwargs) -> None:
        """Compile this module's call in place with ``fw.compile(*args, **kwargs)`` (same
        options): later ``module(...)`` calls run the compiled forward, hooks included,
        and recompile when parameters, buffers or train/eval mode change."""
        from ...compile_api import compile as fw_compile
        self.__dict__["_compiled_call_impl"] = fw_compile(self._call_impl, *args, **kwargs)

    # -- repr ------------------------------------------------------------------------------
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """Extra text shown inside this module's ``repr`` (override in subclasses)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _addindent(repr(module), 2)
                       for key, module in self._modules.items()]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def share_memory(self) -> Module:
        """Move parameters, their gradients and buffers to shared memory
        (``Tensor.share_memory_()``), so processes given this module share its weights."""
        from ...tensor_sharing import share_module
        share_module(self)
        return self

