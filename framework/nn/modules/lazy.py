"""Lazy layers: ``LazyLinear``, ``LazyConv{1,2,3}d``, ``LazyConvTranspose{1,2,3}d``,
``LazyBatchNorm{1,2,3}d`` and ``LazyInstanceNorm{1,2,3}d``.

As in PyTorch, a lazy layer holds :class:`UninitializedParameter` /
:class:`UninitializedBuffer` placeholders and infers ``in_features`` / ``in_channels`` /
``num_features`` from its first input; a forward pre-hook then materializes the
placeholders in place (the parameter objects keep their identity), runs the regular
initialization and turns the module into its ``cls_to_become`` (``LazyLinear`` becomes a
``Linear``). Loading a ``state_dict`` into a lazy layer materializes the placeholders with
the checkpoint's shapes.
"""

from __future__ import annotations

import itertools

from ...creation import empty
from ...errors import ArgumentError, FrameworkError, ShapeError
from ..parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from .conv import (Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d,
                   ConvTranspose3d)
from .linear import Linear
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d,
                            InstanceNorm2d, InstanceNorm3d, _BatchNorm, _InstanceNorm,
                            _NormBase)

__all__ = ["LazyModuleMixin", "LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d",
           "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d",
           "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d",
           "LazyInstanceNorm2d", "LazyInstanceNorm3d", "LazyModuleError"]


class LazyModuleError(FrameworkError, RuntimeError):
    """A lazy module's first forward left some placeholder uninitialized."""


class LazyModuleMixin:
    """Mixin for modules whose parameters are inferred from the first input.

    Subclasses implement ``initialize_parameters(*args, **kwargs)`` (called with the first
    forward's arguments) and set ``cls_to_become``. Move/cast the module before the first
    forward (placeholders follow ``.to(...)``); build the optimizer after it, as PyTorch
    recommends.
    """

    cls_to_become = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters,
                                                               with_kwargs=True)

    def has_uninitialized_params(self) -> bool:
        """True while some parameter or buffer of this module is still a placeholder."""
        return any(is_lazy(t) for t in itertools.chain(self._parameters.values(),
                                                       self._buffers.values()))

    def initialize_parameters(self, *args, **kwargs) -> None:
        """Materialize the placeholders from the first forward's arguments."""
        raise NotImplementedError(f"initialize_parameters is not implemented for "
                                  f"{type(self).__name__}")

    def _infer_parameters(self, module, args, kwargs=None):
        """Forward pre-hook: initialize, drop the hook, become ``cls_to_become``."""
        module.initialize_parameters(*args, **(kwargs or {}))
        if module.has_uninitialized_params():
            raise LazyModuleError(f"module {self._get_name()} has not been fully initialized")
        module._initialize_hook.remove()
        delattr(module, "_initialize_hook")
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # placeholders are saved as themselves (they have no data to detach)
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars or is_lazy(p) else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars or is_lazy(b) else b.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing,
                              unexpected, errors):
        """Materialize each placeholder with the shape of its checkpoint entry, then load
        as usual (a placeholder saved from another uninitialized module stays lazy)."""
        skipped = []
        for table in (self._parameters, self._buffers):
            for name, t in table.items():
                key = prefix + name
                if t is None or key not in state_dict or not is_lazy(t):
                    continue
                value = state_dict[key]
                if is_lazy(value):
                    skipped.append((table, name, t))
                else:
                    t.materialize(tuple(value.shape))
        if skipped:  # nothing to copy: hide both sides from the regular loader
            keys = {prefix + name for _, name, _ in skipped}
            state_dict = {k: v for k, v in state_dict.items() if k not in keys}
            for table, name, _ in skipped:
                table[name] = None
        try:
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing,
                                          unexpected, errors)
        finally:
            for table, name, t in skipped:
                table[name] = t

    def _apply(self, fn, grads: bool = True, recurse: bool = True):
        """``.to(...)``/``.double()``... before the first forward: placeholders take the new
        device and dtype, everything else is converted as usual."""
        held = [(table, name, t) for table in (self._parameters, self._buffers)
                for name, t in table.items() if is_lazy(t)]
        for table, name, _ in held:
            table[name] = None
        try:
            super()._apply(fn, grads, recurse)
        finally:
            for table, name, t in held:
                table[name] = t
        for _, _, t in held:
            t.data = fn(empty(0, dtype=t.dtype, device=t.device))
        return self


class LazyLinear(LazyModuleMixin, Linear):
    """A :class:`Linear` whose ``in_features`` is the last dim of its first input."""

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        # built without a bias so that no tensor is made only to be replaced
        super().__init__(0, 0, False)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """PyTorch's Linear init, once the shapes are known."""
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        """``in_features = input.shape[-1]``; materialize and initialize."""
        if self.has_uninitialized_params():
            if input.ndim == 0:
                raise ShapeError(f"{type(self).__name__}: expected an input with at least one "
                                 "dim, got a 0-d tensor")
            self.in_features = input.shape[-1]
            self.weight.materialize((self.out_features, self.in_features))
            if self.bias is not None:
                self.bias.materialize((self.out_features,))
            self.reset_parameters()


class _LazyConvXdMixin(LazyModuleMixin):
    """Shared shape inference of the lazy convolutions."""

    def reset_parameters(self) -> None:
        """PyTorch's conv init, once the shapes are known."""
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def _lazy_init(self, out_channels, bias, device, dtype) -> None:
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def _get_in_channels(self, input) -> int:
        unbatched = self._nd + 1
        if input.ndim not in (unbatched, unbatched + 1):
            raise ShapeError(f"{type(self).__name__}: Expected {unbatched}D (unbatched) or "
                             f"{unbatched + 1}D (batched) input, but got input of size: "
                             f"{list(input.shape)}")
        return input.shape[1] if input.ndim == unbatched + 1 else input.shape[0]

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        """``in_channels`` from the input's channel dim; materialize and initialize."""
        if self.has_uninitialized_params():
            self.in_channels = self._get_in_channels(input)
            if self.in_channels % self.groups != 0:
                raise ArgumentError(f"{type(self).__name__}: in_channels ({self.in_channels}) "
                                    f"must be divisible by groups ({self.groups})")
            if self.transposed:
                shape = (self.in_channels, self.out_channels // self.groups)
            else:
                shape = (self.out_channels, self.in_channels // self.groups)
            self.weight.materialize(shape + tuple(self.kernel_size))
            if self.bias is not None:
                self.bias.materialize((self.out_channels,))
            self.reset_parameters()


class _LazyConv(_LazyConvXdMixin):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        # built with zero channels and no bias, so no tensor is made only to be replaced
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False,
                         padding_mode, device=device, dtype=dtype)
        self._lazy_init(out_channels, bias, device, dtype)


class _LazyConvTranspose(_LazyConvXdMixin):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__(0, 0, kernel_size, stride, padding, output_padding, groups, False,
                         dilation, padding_mode, device=device, dtype=dtype)
        self._lazy_init(out_channels, bias, device, dtype)


class LazyConv1d(_LazyConv, Conv1d):
    """A :class:`Conv1d` whose ``in_channels`` comes from the first input."""

    cls_to_become = Conv1d


class LazyConv2d(_LazyConv, Conv2d):
    """A :class:`Conv2d` whose ``in_channels`` comes from the first input."""

    cls_to_become = Conv2d


class LazyConv3d(_LazyConv, Conv3d):
    """A :class:`Conv3d` whose ``in_channels`` comes from the first input."""

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTranspose, ConvTranspose1d):
    """A :class:`ConvTranspose1d` whose ``in_channels`` comes from the first input."""

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTranspose, ConvTranspose2d):
    """A :class:`ConvTranspose2d` whose ``in_channels`` comes from the first input."""

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTranspose, ConvTranspose3d):
    """A :class:`ConvTranspose3d` whose ``in_channels`` comes from the first input."""

    cls_to_become = ConvTranspose3d


class _LazyNormBase(LazyModuleMixin, _NormBase):
    """Shared shape inference of the lazy batch/instance norms."""

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None):
        # affine and running stats off here, so no tensor is made only to be replaced
        super().__init__(0, eps, momentum, False, False, device=device, dtype=dtype)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            from ... import dtypes
            from ...creation import tensor
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            self.num_batches_tracked = tensor(0, dtype=dtypes.int64, device=device)

    def reset_parameters(self) -> None:
        """Running stats and affine init, once ``num_features`` is known."""
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def _channel_dim(self, input) -> int:
        return 1

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        """``num_features`` from the input's channel dim; materialize and initialize."""
        if self.has_uninitialized_params():
            d = self._channel_dim(input)
            if input.ndim <= d:
                raise ShapeError(f"{type(self).__name__}: expected an input with a channel dim, "
                                 f"got shape {list(input.shape)}")
            self.num_features = input.shape[d]
            if self.affine:
                self.weight.materialize((self.num_features,))
                self.bias.materialize((self.num_features,))
            if self.track_running_stats:
                self.running_mean.materialize((self.num_features,))
                self.running_var.materialize((self.num_features,))
            self.reset_parameters()


class LazyBatchNorm1d(_LazyNormBase, _BatchNorm):
    """A :class:`BatchNorm1d` whose ``num_features`` comes from the first input."""

    cls_to_become = BatchNorm1d
    _dims = BatchNorm1d._dims


class LazyBatchNorm2d(_LazyNormBase, _BatchNorm):
    """A :class:`BatchNorm2d` whose ``num_features`` comes from the first input."""

    cls_to_become = BatchNorm2d
    _dims = BatchNorm2d._dims


class LazyBatchNorm3d(_LazyNormBase, _BatchNorm):
    """A :class:`BatchNorm3d` whose ``num_features`` comes from the first input."""

    cls_to_become = BatchNorm3d
    _dims = BatchNorm3d._dims


class _LazyInstanceNorm(_LazyNormBase, _InstanceNorm):
    def __init__(self, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 device=None, dtype=None):
        super().__init__(eps, momentum, affine, track_running_stats, device, dtype)

    def _channel_dim(self, input) -> int:
        # (C, ...) unbatched or (N, C, ...) batched
        return 0 if input.ndim == self._no_batch_dim else 1


class LazyInstanceNorm1d(_LazyInstanceNorm):
    """An :class:`InstanceNorm1d` whose ``num_features`` comes from the first input."""

    cls_to_become = InstanceNorm1d
    _no_batch_dim = InstanceNorm1d._no_batch_dim


class LazyInstanceNorm2d(_LazyInstanceNorm):
    """An :class:`InstanceNorm2d` whose ``num_features`` comes from the first input."""

    cls_to_become = InstanceNorm2d
    _no_batch_dim = InstanceNorm2d._no_batch_dim


class LazyInstanceNorm3d(_LazyInstanceNorm):
    """An :class:`InstanceNorm3d` whose ``num_features`` comes from the first input."""

    cls_to_become = InstanceNorm3d
    _no_batch_dim = InstanceNorm3d._no_batch_dim
