"""``nn.utils.prune``: PyTorch's pruning utilities (``torch.nn.utils.prune``).

Pruning ``module.<name>`` moves the parameter to ``<name>_orig`` (the same ``Parameter``
object, so an optimizer built earlier keeps training it), registers the buffer
``<name>_mask`` and sets the plain attribute ``<name> = <name>_orig * <name>_mask``, which
a forward pre-hook (the pruning method itself) recomputes before every call. Gradients
reach ``<name>_orig`` masked; ``state_dict`` holds ``<name>_orig`` and ``<name>_mask``;
the pre-hook is ordinary ops, so ``fw.compile`` and ``fw.onnx.export`` see the masked
weight. :func:`remove` makes the pruning permanent.

Pruning a tensor again combines the masks as PyTorch does (a :class:`PruningContainer`):
the new method computes its mask on the entries (unstructured) or channels (structured)
that are still unpruned.

Ties: :class:`L1Unstructured` prunes the ``k`` smallest ``|w|`` and :class:`LnStructured`
keeps the channels with the largest norms; equal values are ordered by their flat index
(``fw.topk`` is stable: among equal magnitudes the lower index is pruned first by L1, and
kept first by Ln). PyTorch leaves this order unspecified.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

from ... import creation as C, ops
from ...autograd import no_grad
from ...errors import ArgumentError, FrameworkError, FwIndexError, FwTypeError
from ...tensor import Tensor
from ..modules.module import Module
from .convert_parameters import parameters_to_vector

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured",
           "L1Unstructured", "RandomStructured", "LnStructured", "CustomFromMask",
           "identity", "random_unstructured", "l1_unstructured", "random_structured",
           "ln_structured", "global_unstructured", "custom_from_mask", "remove", "is_pruned",
           "PruningError"]


class PruningError(FrameworkError, AssertionError):
    """A check PyTorch's pruning makes with ``assert`` (a second hook on one tensor,
    importance scores of the wrong shape, removing an unpruned tensor's method)."""


class BasePruningMethod:
    """Base class of the pruning methods; an instance is also the forward pre-hook that
    recomputes ``module.<name>`` from ``<name>_orig`` and ``<name>_mask``.

    Subclasses set ``PRUNING_TYPE`` (``"unstructured"``, ``"structured"`` (with a ``dim``
    attribute) or ``"global"``) and implement :meth:`compute_mask`.
    """

    PRUNING_TYPE: str | None = None
    _tensor_name: str | None = None

    def __call__(self, module: Module, inputs) -> None:
        """The forward pre-hook: ``module.<name> = <name>_orig * <name>_mask``."""
        setattr(module, self._tensor_name, self.apply_mask(module))

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """The new mask of ``t`` (a tensor of its shape, 1 where kept), combined with
        ``default_mask`` (the mask so far)."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_mask")

    def apply_mask(self, module: Module) -> Tensor:
        """``<name>_orig * <name>_mask`` (the mask cast to the parameter's dtype)."""
        if self._tensor_name is None:
            raise PruningError(f"Module {module._get_name()} has to be pruned")
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return mask.to(orig.dtype) * orig

    @classmethod
    def apply(cls, module: Module, name: str, *args, importance_scores=None, **kwargs):
        """Prune ``module.<name>`` with ``cls(*args, **kwargs)`` (combined with an earlier
        pruning of the same tensor into a :class:`PruningContainer`); returns the method
        installed as the hook. ``importance_scores`` (default: the tensor itself) decide
        what is pruned."""
        method = _composite_method(cls, module, name, *args, **kwargs)
        orig = getattr(module, name)
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(orig.shape):
                raise PruningError(f"importance_scores should have the same shape as "
                                   f"parameter {name} of {module._get_name()}")
        else:
            importance_scores = orig
        first = not isinstance(method, PruningContainer)
        if first:
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = C.ones_like(orig)
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()
        try:
            with no_grad():
                mask = method.compute_mask(importance_scores.detach(), default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if first:
                orig = getattr(module, name + "_orig")
                module.register_parameter(name, orig)
                del module._parameters[name + "_orig"]
            raise
        return method

    def prune(self, t: Tensor, default_mask: Tensor | None = None,
              importance_scores: Tensor | None = None) -> Tensor:
        """``t`` times its mask (computed from ``importance_scores``, default ``t``)."""
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(t.shape):
                raise PruningError("importance_scores should have the same shape as tensor t")
        else:
            importance_scores = t
        default_mask = default_mask if default_mask is not None else C.ones_like(t)
        with no_grad():
            mask = self.compute_mask(importance_scores.detach(), default_mask=default_mask)
        return t * mask

    def remove(self, module: Module) -> None:
        """Make the pruning permanent: the ``<name>_orig`` parameter object takes the value
        ``orig * mask`` and becomes ``module.<name>`` again; ``<name>_orig`` and
        ``<name>_mask`` are dropped (the caller unregisters the hook)."""
        if self._tensor_name is None:
            raise PruningError(f"Module {module._get_name()} has to be pruned before pruning "
                               "can be removed")
        name = self._tensor_name
        with no_grad():
            weight = self.apply_mask(module)
        if name in module.__dict__:
            delattr(module, name)
        orig = module._parameters[name + "_orig"]
        with no_grad():
            orig.copy_(weight)
        del module._parameters[name + "_orig"]
        del module._buffers[name + "_mask"]
        module._non_persistent_buffers_set.discard(name + "_mask")
        setattr(module, name, orig)

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")
                  and not isinstance(v, Tensor)}
        inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"{type(self).__name__}({inner})"


def _composite_method(cls, module: Module, name: str, *args, **kwargs):
    """``cls(*args, **kwargs)`` named ``name``, merged with the pruning hook already on
    ``module.<name>`` (which is unregistered: the returned method replaces it)."""
    old_method = None
    found = []
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            old_method = hook
            found.append(k)
    if len(found) > 1:
        raise PruningError(f"Avoid adding multiple pruning hooks to the same tensor {name} "
                           f"of module {module._get_name()}. Use a PruningContainer.")
    method = cls(*args, **kwargs)
    method._tensor_name = name
    if old_method is not None:
        if not isinstance(old_method, PruningContainer):
            old_method = PruningContainer(old_method)
        old_method.add_pruning_method(method)
        method = old_method
    for k in found:
        del module._forward_pre_hooks[k]
        module._forward_pre_hooks_with_kwargs.pop(k, None)
    return method


class PruningContainer(BasePruningMethod):
    """A sequence of pruning methods applied one after the other to one tensor (what
    pruning an already pruned tensor builds). Its mask is the previous mask with the last
    method's mask computed on the still-unpruned part of the tensor."""

    def __init__(self, *args):
        self._pruning_methods: tuple = ()
        if len(args) == 1 and not isinstance(args[0], Iterable):
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        else:
            methods = args[0] if len(args) == 1 else args
            for method in methods:
                self.add_pruning_method(method)

    def add_pruning_method(self, method) -> None:
        """Append ``method`` (it must prune the same tensor name as the container)."""
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise FwTypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name is None:
            self._tensor_name = method._tensor_name
        elif method is not None and self._tensor_name != method._tensor_name:
            raise ArgumentError(f"Can only add pruning methods acting on the parameter named "
                                f"'{self._tensor_name}' to PruningContainer {self}. Found "
                                f"'{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def __repr__(self) -> str:
        return f"PruningContainer({', '.join(map(repr, self._pruning_methods))})"

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """``default_mask`` with the last method's mask written over the entries it may
        still prune: where the mask is 1 (unstructured), the channels along the method's
        ``dim`` not yet all zero (structured), or everything (global)."""
        method = self._pruning_methods[-1]
        mask = default_mask.to(t.dtype).clone()
        kind = method.PRUNING_TYPE
        if kind == "unstructured":
            slc = mask == 1
        elif kind == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError('Pruning methods of PRUNING_TYPE "structured" need to '
                                     "have the attribute `dim` defined.")
            n_dims = t.ndim
            dim = method.dim + n_dims if method.dim < 0 else method.dim
            if dim < 0:
                raise FwIndexError(f"Index is out of bounds for tensor with dimensions "
                                   f"{n_dims}")
            keep_channel = mask.sum(dim=[d for d in range(n_dims) if d != dim]) != 0
            slc = [slice(None)] * n_dims
            slc[dim] = keep_channel
            slc = tuple(slc)
        elif kind == "global":
            slc = (slice(None),) * t.ndim
        else:
            raise ArgumentError(f"Unrecognized PRUNING_TYPE {kind}")
        partial_mask = method.compute_mask(t[slc], default_mask=mask[slc])
        mask[slc] = partial_mask.to(mask.dtype)
        return mask


class Identity(BasePruningMethod):
    """Prunes nothing (the mask is all ones): makes a tensor look pruned."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """``default_mask`` unchanged."""
        return default_mask

    @classmethod
    def apply(cls, module: Module, name: str):
        """Install an :class:`Identity` pruning on ``module.<name>``."""
        return super().apply(module, name)


class _Unstructured(BasePruningMethod):
    """Prunes ``amount`` single entries; subclasses choose which (``_chosen``)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """``default_mask`` with ``amount`` more entries of ``t`` zeroed."""
        tensor_size = t.numel()
        nparams_toprune = _compute_nparams_toprune(self.amount, tensor_size)
        _validate_pruning_amount(nparams_toprune, tensor_size)
        mask = default_mask.clone()
        if nparams_toprune != 0:
            mask.view(-1)[self._chosen(t.reshape(-1), nparams_toprune)] = 0
        return mask


class RandomUnstructured(_Unstructured):
    """Prunes ``amount`` randomly chosen entries (drawn from the framework generator)."""

    def _chosen(self, flat: Tensor, k: int) -> Tensor:
        return ops.topk(C.rand_like(flat), k).indices

    @classmethod
    def apply(cls, module: Module, name: str, amount):
        """Install a :class:`RandomUnstructured` pruning on ``module.<name>``."""
        return super().apply(module, name, amount=amount)


class L1Unstructured(_Unstructured):
    """Prunes the ``amount`` entries with the smallest absolute value (ties: the lower
    flat index first)."""

    def _chosen(self, flat: Tensor, k: int) -> Tensor:
        return ops.topk(flat.abs(), k, largest=False).indices

    @classmethod
    def apply(cls, module: Module, name: str, amount, importance_scores=None):
        """Install an :class:`L1Unstructured` pruning on ``module.<name>``."""
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


def _channels_to_prune(t: Tensor, dim: int, amount) -> tuple[int, int]:
    """(number of channels along ``dim``, how many ``amount`` prunes), validated."""
    _validate_structured_pruning(t)
    _validate_pruning_dim(t, dim)
    tensor_size = t.shape[dim]
    nparams_toprune = _compute_nparams_toprune(amount, tensor_size)
    _validate_pruning_amount(nparams_toprune, tensor_size)
    return tensor_size, nparams_toprune


class RandomStructured(BasePruningMethod):
    """Prunes ``amount`` randomly chosen whole channels along ``dim``."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim: int = -1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.dim = dim

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """A mask zero on ``amount`` random channels of ``t`` along ``dim``, times
        ``default_mask``."""
        tensor_size, nparams_toprune = _channels_to_prune(t, self.dim, self.amount)
        if nparams_toprune == 0:
            return default_mask
        prob = C.rand(tensor_size, device=t.device)
        pruned = ops.topk(prob, nparams_toprune, largest=False).indices
        channel_mask = C.ones(tensor_size, dtype=t.dtype, device=t.device)
        channel_mask[pruned] = 0
        return _channel_mask(t, self.dim, channel_mask) * default_mask.to(t.dtype)

    @classmethod
    def apply(cls, module: Module, name: str, amount, dim: int = -1):
        """Install a :class:`RandomStructured` pruning on ``module.<name>``."""
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """Prunes the ``amount`` channels along ``dim`` with the smallest ``n``-norm (``n``
    as ``fw.norm``'s ``p``: an int, float, ``inf``, ``-inf``, ``"fro"``, ``"nuc"``)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim: int = -1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.n = n
        self.dim = dim

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """A mask keeping the channels of largest ``n``-norm along ``dim``, times
        ``default_mask``."""
        tensor_size, nparams_toprune = _channels_to_prune(t, self.dim, self.amount)
        nparams_tokeep = tensor_size - nparams_toprune
        if nparams_toprune == 0:
            return default_mask
        norm = _compute_norm(t, self.n, self.dim)
        kept = ops.topk(norm, nparams_tokeep, largest=True).indices
        channel_mask = C.zeros(tensor_size, dtype=t.dtype, device=t.device)
        channel_mask[kept] = 1
        return _channel_mask(t, self.dim, channel_mask) * default_mask.to(t.dtype)

    @classmethod
    def apply(cls, module: Module, name: str, amount, n, dim, importance_scores=None):
        """Install an :class:`LnStructured` pruning on ``module.<name>``."""
        return super().apply(module, name, amount=amount, n=n, dim=dim,
                             importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prunes with a given mask (times the existing one)."""

    PRUNING_TYPE = "global"

    def __init__(self, mask: Tensor):
        self.mask = mask

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """``default_mask * mask``."""
        if tuple(default_mask.shape) != tuple(self.mask.shape):
            raise PruningError(f"custom_from_mask: the mask has shape {list(self.mask.shape)}, "
                               f"the tensor {list(default_mask.shape)}")
        return default_mask * self.mask.to(dtype=default_mask.dtype,
                                           device=default_mask.device)

    @classmethod
    def apply(cls, module: Module, name: str, mask: Tensor):
        """Install a :class:`CustomFromMask` pruning on ``module.<name>``."""
        return super().apply(module, name, mask=mask)


# -- functional interface ------------------------------------------------------------------
def identity(module: Module, name: str) -> Module:
    """Apply an all-ones mask to ``module.<name>`` (it looks pruned, nothing is zeroed)."""
    Identity.apply(module, name)
    return module


def random_unstructured(module: Module, name: str, amount) -> Module:
    """Prune ``amount`` random entries of ``module.<name>`` (an int: how many; a float in
    [0, 1]: the fraction, ``round(amount * numel)``)."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module: Module, name: str, amount, importance_scores=None) -> Module:
    """Prune the ``amount`` entries of ``module.<name>`` with the smallest absolute value
    (of ``importance_scores`` when given)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module: Module, name: str, amount, dim: int) -> Module:
    """Prune ``amount`` random channels of ``module.<name>`` along ``dim``."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module: Module, name: str, amount, n, dim: int,
                  importance_scores=None) -> Module:
    """Prune the ``amount`` channels of ``module.<name>`` along ``dim`` with the smallest
    ``n``-norm (of ``importance_scores`` when given)."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune the ``(module, name)`` pairs of ``parameters`` together: ``pruning_method``
    (an unstructured method class, e.g. :class:`L1Unstructured`, built with ``kwargs``)
    sees all of them flattened into one vector, so ``amount`` counts across tensors.
    ``importance_scores``: an optional dict ``{(module, name): scores}``."""
    if not isinstance(parameters, Iterable):
        raise FwTypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise FwTypeError("global_unstructured(): importance_scores must be of type dict")
    with no_grad():
        scores = parameters_to_vector(
            [importance_scores.get((module, name), getattr(module, name)).detach()
             for module, name in parameters])
        default_mask = parameters_to_vector(
            [_mask_or_ones(module, name) for module, name in parameters])
        container = PruningContainer()
        container._tensor_name = "temp"
        method = pruning_method(**kwargs)
        method._tensor_name = "temp"
        if method.PRUNING_TYPE != "unstructured":
            raise FwTypeError(f'Only "unstructured" PRUNING_TYPE supported for the '
                              f"`pruning_method`. Found method {pruning_method} of type "
                              f"{method.PRUNING_TYPE}")
        container.add_pruning_method(method)
        final_mask = container.compute_mask(scores, default_mask)
    pointer = 0
    for module, name in parameters:
        param = getattr(module, name)
        num_param = param.numel()
        param_mask = final_mask[pointer:pointer + num_param].reshape(param.shape)
        custom_from_mask(module, name, mask=param_mask)
        pointer += num_param


def _mask_or_ones(module: Module, name: str) -> Tensor:
    """The current mask of ``module.<name>``, or ones when it is not pruned."""
    mask = getattr(module, name + "_mask", None)
    return C.ones_like(getattr(module, name)) if mask is None else mask


def custom_from_mask(module: Module, name: str, mask: Tensor) -> Module:
    """Prune ``module.<name>`` with the given ``mask`` (0 = pruned)."""
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module: Module, name: str) -> Module:
    """Make the pruning of ``module.<name>`` permanent: it becomes a parameter again with
    the pruned value; ``<name>_orig``, ``<name>_mask`` and the hook are removed."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            module._forward_pre_hooks_with_kwargs.pop(k, None)
            return module
    raise ArgumentError(f"Parameter '{name}' of module {module._get_name()} has to be pruned "
                        "before pruning can be removed")


def is_pruned(module: Module) -> bool:
    """Whether ``module`` or one of its submodules has a pruning hook."""
    return any(isinstance(hook, BasePruningMethod)
               for sub in module.modules() for hook in sub._forward_pre_hooks.values())


# -- validation (PyTorch's messages) --------------------------------------------------------
def _validate_pruning_amount_init(amount) -> None:
    if not isinstance(amount, numbers.Real) or isinstance(amount, bool):
        raise FwTypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral)
            and (float(amount) > 1.0 or float(amount) < 0.0)):
        raise ArgumentError(f"amount={amount} should either be a float in the range [0, 1] "
                            "or a non-negative integer")


def _validate_pruning_amount(amount, tensor_size: int) -> None:
    if isinstance(amount, numbers.Integral) and amount > tensor_size:
        raise ArgumentError(f"amount={amount} should be smaller than the number of parameters "
                            f"to prune={tensor_size}")


def _validate_structured_pruning(t: Tensor) -> None:
    if t.ndim <= 1:
        raise ArgumentError(f"Structured pruning can only be applied to multidimensional "
                            f"tensors. Found tensor of shape {list(t.shape)} with {t.ndim} dims")


def _compute_nparams_toprune(amount, tensor_size: int) -> int:
    if isinstance(amount, numbers.Integral):
        return int(amount)
    return round(amount * tensor_size)


def _validate_pruning_dim(t: Tensor, dim: int) -> None:
    if dim >= t.ndim or dim < -t.ndim:
        raise FwIndexError(f"Invalid index {dim} for tensor of size {list(t.shape)}")


def _compute_norm(t: Tensor, n, dim: int) -> Tensor:
    """The ``n``-norm of each channel of ``t`` along ``dim``."""
    dims = list(range(t.ndim))
    del dims[dim]
    return ops.norm(t, p=n, dim=dims)


def _channel_mask(t: Tensor, dim: int, channel_mask: Tensor) -> Tensor:
    """``channel_mask`` (one value per channel along ``dim``) broadcast to ``t``'s shape."""
    shape = [1] * t.ndim
    shape[dim] = t.shape[dim]
    return C.ones_like(t) * channel_mask.reshape(shape)
