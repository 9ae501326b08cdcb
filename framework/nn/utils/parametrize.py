"""``nn.utils.parametrize``: express a parameter or buffer as a function of other tensors.

As in PyTorch, registering a parametrization on ``module.weight`` moves the tensor to
``module.parametrizations.weight.original`` (or ``original0``, ``original1``, ... when the
parametrization's ``right_inverse`` returns several tensors) and swaps the module's class
for a dynamically created subclass, ``Parametrized<Class>``, whose ``weight`` property runs
the parametrizations on every access. Because the value is recomputed from ordinary ops,
autograd, ``fw.compile`` and ONNX export see the parametrization like any other code.
"""

from __future__ import annotations

import copyreg
from contextlib import contextmanager
from copy import deepcopy

from ...autograd import no_grad
from ...errors import ArgumentError, FrameworkError, ShapeError
from ...tensor import Tensor
from ..modules.container import ModuleDict, ModuleList
from ..modules.module import Module
from ..parameter import Parameter

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized",
           "remove_parametrizations", "type_before_parametrizations", "ParametrizationError"]


class ParametrizationError(FrameworkError, RuntimeError):
    """A parametrization cannot do what was asked (assigning without ``right_inverse``,
    caching while tracing, serializing a parametrized module with pickle)."""


_cache_enabled = 0
_cache: dict = {}


@contextmanager
def cached():
    """Compute each parametrized tensor once inside the block and reuse it (useful when a
    parametrized weight is read several times in one forward, e.g. an RNN's recurrent
    kernel). The cached values are dropped when the outermost block exits."""
    global _cache, _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache = {}


def _register_parameter_or_buffer(module: Module, name: str, x: Tensor) -> None:
    if isinstance(x, Parameter):
        module.register_parameter(name, x)
    else:
        module.register_buffer(name, x)


def _maybe_set(dest: Tensor, src: Tensor) -> None:
    """PyTorch's ``dest.set_(src)``: ``dest`` keeps its identity (so optimizers holding it
    keep working) but now holds ``src``'s data."""
    if dest is not src:
        dest.data = src.detach()


class ParametrizationList(ModuleList):
    """The parametrizations registered on one tensor, applied in order, and the tensor(s)
    they start from (``original``, or ``original0``, ``original1``, ...).

    It is the type of ``module.parametrizations[name]``; users do not build it themselves.
    """

    def __init__(self, modules, original: Tensor, unsafe: bool = False):
        modules = list(modules)
        if not modules:
            raise ArgumentError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = tuple(original.shape), original.dtype
        with no_grad():
            new = original
            for module in reversed(modules):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
                # without right_inverse (or when it raises NotImplementedError) it is
                # taken to be the identity
        if not isinstance(new, (Tensor, list, tuple)):
            raise ArgumentError("register_parametrization: 'right_inverse' must return a "
                                "Tensor or a Sequence of tensors (list, tuple...). Got "
                                f"{type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if new.dtype is not original.dtype:
                raise ArgumentError("register_parametrization: when `right_inverse` outputs "
                                    "one tensor, it may not change the dtype.\n"
                                    f"original.dtype: {original.dtype}\n"
                                    f"right_inverse(original).dtype: {new.dtype}")
            _maybe_set(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, originali in enumerate(new):
                if not isinstance(originali, Tensor):
                    raise ArgumentError("register_parametrization: 'right_inverse' must "
                                        "return a Tensor or a Sequence of tensors (list, "
                                        f"tuple...). Got element {i} of the sequence with "
                                        f"type {type(originali).__name__}.")
                # a parameter that required grad yields new parameters: the user adds them
                # to the optimizer after registering (as PyTorch documents)
                if isinstance(original, Parameter):
                    originali = Parameter(originali.detach(), original.requires_grad)
                else:
                    originali = originali.detach()
                    if original.requires_grad:
                        originali.requires_grad_(True)
                _register_parameter_or_buffer(self, f"original{i}", originali)
        if not self.unsafe:
            z = self()
            if not isinstance(z, Tensor):
                raise ArgumentError("register_parametrization: a parametrization must return a "
                                    f"tensor. Got {type(z).__name__}.")
            if z.dtype is not original_dtype:
                raise ArgumentError("register_parametrization: registering a parametrization "
                                    "may not change the dtype of the tensor, unless `unsafe` "
                                    f"flag is enabled.\nunparametrized dtype: {original_dtype}"
                                    f"\nparametrized dtype: {z.dtype}")
            if tuple(z.shape) != original_shape:
                raise ShapeError("register_parametrization: registering a parametrization may "
                                 "not change the shape of the tensor, unless `unsafe` flag is "
                                 f"enabled.\nunparametrized shape: {list(original_shape)}\n"
                                 f"parametrized shape: {list(z.shape)}")

    def right_inverse(self, value) -> None:
        """Assign ``value`` to the parametrized tensor: run every ``right_inverse`` in
        reverse order of registration and write the result into the original(s)."""
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise ParametrizationError(
                        f"parametrization {type(module).__name__} does not implement "
                        "right_inverse; assigning to a parametrized tensor needs every "
                        "parametrization to implement it.")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ArgumentError(f"right_inverse: `right_inverse` should return a tensor. "
                                        f"Got {type(value).__name__}")
                if value.dtype is not self.original.dtype:
                    raise ArgumentError(f"right_inverse: the tensor returned by `right_inverse` "
                                        f"has dtype {value.dtype} while `original` has dtype "
                                        f"{self.original.dtype}")
                _maybe_set(self.original, value)
                return
            if not isinstance(value, (list, tuple)):
                raise ArgumentError("right_inverse: 'right_inverse' must return a sequence of "
                                    f"tensors. Got {type(value).__name__}.")
            if len(value) != self.ntensors:
                raise ArgumentError("right_inverse: 'right_inverse' must return a sequence of "
                                    f"tensors of length {self.ntensors}. Got a sequence of "
                                    f"length {len(value)}.")
            for i, t in enumerate(value):
                original_i = getattr(self, f"original{i}")
                if not isinstance(t, Tensor):
                    raise ArgumentError(f"right_inverse: `right_inverse` must return a sequence "
                                        f"of tensors. Got element {i} of type "
                                        f"{type(t).__name__}")
                if original_i.dtype is not t.dtype:
                    raise ArgumentError(f"right_inverse: tensor {i} returned by "
                                        f"`right_inverse` has dtype {t.dtype} while "
                                        f"`original{i}` has dtype {original_i.dtype}")
                _maybe_set(original_i, t)

    def forward(self):
        """The parametrized tensor: the first parametrization takes the original(s), each
        later one takes the previous result."""
        mods = list(self)
        if self.is_tensor:
            x = mods[0](self.original)
        else:
            x = mods[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for m in mods[1:]:
            x = m(x)
        return x


def _inject_new_class(module: Module) -> None:
    """Swap ``module``'s class for ``Parametrized<Class>``, a fresh subclass that will carry
    the properties (one class per module, as PyTorch, so properties never leak to other
    instances)."""
    cls = module.__class__

    def default_deepcopy(self, memo):
        obj = memo.get(id(self))
        if obj is not None:
            return obj
        replica = self.__new__(self.__class__)
        memo[id(self)] = replica
        replica.__dict__ = deepcopy(self.__dict__, memo)
        for slot in copyreg._slotnames(self.__class__):
            if hasattr(self, slot):
                setattr(replica, slot, deepcopy(getattr(self, slot), memo))
        return replica

    def getstate(self):
        raise ParametrizationError("Serialization of parametrized modules is only supported "
                                   "through state_dict().")

    dct = {"__getstate__": getstate}
    # pickling is refused, but deepcopy (which prefers __deepcopy__) keeps working
    if not hasattr(cls, "__deepcopy__"):
        dct["__deepcopy__"] = default_deepcopy
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), dct)


def _inject_property(module: Module, tensor_name: str) -> None:
    """Add the ``tensor_name`` property (get: run the parametrizations; set: right_inverse)
    to the module's own parametrized class."""

    def get_parametrized(self) -> Tensor:
        parametrization = self.parametrizations[tensor_name]
        if not _cache_enabled:
            return parametrization()
        key = (id(self), tensor_name)
        t = _cache.get(key)
        if t is None:
            t = _cache[key] = parametrization()
        return t

    def set_original(self, value) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def register_parametrization(module: Module, tensor_name: str, parametrization: Module,
                             *, unsafe: bool = False) -> Module:
    """Parametrize ``module.<tensor_name>`` by ``parametrization`` (a Module).

    Reading ``module.weight`` then returns ``parametrization(original)``; the original
    parameter or buffer lives at ``module.parametrizations.weight.original`` (also its
    ``state_dict`` key). Several parametrizations on one tensor are applied in order of
    registration. If ``parametrization`` has ``right_inverse(X)``, it initializes the
    original from the current value and makes ``module.weight = X`` assignable; returning a
    tuple from it gives ``original0``, ``original1``, ... and ``forward`` then takes that
    many tensors. ``unsafe=True`` skips the checks that the parametrization keeps the shape
    and dtype.
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            y = getattr(module, tensor_name)
            x = parametrization(y)
            _check_same(x, y, tensor_name, f"parametrization(module.{tensor_name})")
            if hasattr(parametrization, "right_inverse"):
                try:
                    z = parametrization.right_inverse(x)
                except NotImplementedError:
                    pass
                else:
                    _check_same(z, y, tensor_name, "parametrization.right_inverse(...)")
        plist = module.parametrizations[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        if original is None:
            raise ArgumentError(f"register_parametrization: module.{tensor_name} is None; there "
                                "is no tensor to parametrize")
        # built first so that a failing check leaves the module untouched
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = plist
    else:
        raise ArgumentError(f"register_parametrization: module '{module._get_name()}' does not "
                            f"have a parameter, a buffer, or a parametrized element with name "
                            f"'{tensor_name}'")
    return module


def _check_same(x, y, tensor_name: str, what: str) -> None:
    if not isinstance(x, Tensor):
        raise ArgumentError(f"register_parametrization: {what} must return a tensor. Got "
                            f"{type(x).__name__}.")
    if x.dtype is not y.dtype:
        raise ArgumentError(f"register_parametrization: registering a parametrization may not "
                            f"change the dtype of the tensor, unless the `unsafe` flag is "
                            f"enabled.\nmodule.{tensor_name}.dtype: {y.dtype}\n"
                            f"{what}.dtype: {x.dtype}")
    if tuple(x.shape) != tuple(y.shape):
        raise ShapeError(f"register_parametrization: registering a parametrization may not "
                         f"change the shape of the tensor, unless the `unsafe` flag is "
                         f"enabled.\nmodule.{tensor_name}.shape: {list(y.shape)}\n"
                         f"{what}.shape: {list(x.shape)}")


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """True if ``module`` has any parametrization, or one on ``tensor_name`` when given."""
    parametrizations = getattr(module, "parametrizations", None)
    if parametrizations is None or not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Remove every parametrization on ``module.<tensor_name>``.

    With ``leave_parametrized`` the tensor keeps its current (parametrized) value, written
    into the original parameter object when there is one original (so optimizers holding it
    stay valid); otherwise it goes back to ``original``. The module gets its class back once
    nothing on it is parametrized.
    """
    if not is_parametrized(module, tensor_name):
        raise ArgumentError(f"remove_parametrizations: module {module._get_name()} does not "
                            f"have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                t = getattr(module, tensor_name)
                _maybe_set(original, t)
    else:
        if not leave_parametrized:
            raise ArgumentError("remove_parametrizations: cannot leave unparametrized "
                                "(`leave_parametrized=False`) a tensor that is parametrized in "
                                "terms of a sequence of tensors.")
        t = getattr(module, tensor_name)
        # several originals: a new parameter, which the user adds to the optimizer
        original = Parameter(t.detach(), True) if t.requires_grad else t.detach()
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


def type_before_parametrizations(module: Module) -> type:
    """The module's class before any parametrization was registered on it."""
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)
