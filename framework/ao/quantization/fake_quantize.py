"""Fake quantization modules for quantization-aware training (PyTorch's
``torch.ao.quantization.fake_quantize``: ``FakeQuantize``, ``FusedMovingAvgObsFakeQuantize``,
the ``default_*_fake_quant`` factories and the ``enable_/disable_`` helpers).

``FakeQuantize`` observes its input (``activation_post_process``, an observer), keeps the
resulting ``scale``/``zero_point`` in buffers and returns
``fake_quantize_per_{tensor,channel}_affine`` of the input. The ``fake_quant_enabled`` and
``observer_enabled`` flags are uint8 buffers as in PyTorch; the forward reads them with
``where`` instead of ``if``, so toggling them (or loading a state dict) needs no
recompilation and a compiled QAT step stays one graph.
"""

from __future__ import annotations

from ... import creation as C
from ... import dtypes
from ...nn.modules.module import Module
from ...ops.pointwise import where
from ...ops.quant_ops import (fake_quantize_per_channel_affine,
                              fake_quantize_per_tensor_affine)
from .. import qtypes
from .fused_qparams import choose_qparams
from .observer import (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                       resize_buffer_)
from .utils import QuantizationError, dtype_range, is_per_channel, is_per_tensor, with_args

__all__ = ["FakeQuantizeBase", "FakeQuantize", "FusedMovingAvgObsFakeQuantize",
           "default_fake_quant", "default_weight_fake_quant",
           "default_per_channel_weight_fake_quant", "default_fused_act_fake_quant",
           "default_fused_wt_fake_quant", "default_fused_per_channel_wt_fake_quant",
           "disable_fake_quant", "disable_observer", "enable_fake_quant", "enable_observer"]


class FakeQuantizeBase(Module):
    """Base of the fake quantization modules: the two uint8 flag buffers and their
    switches."""

    def __init__(self):
        super().__init__()
        self.register_buffer("fake_quant_enabled", C.tensor([1], dtype=dtypes.uint8))
        self.register_buffer("observer_enabled", C.tensor([1], dtype=dtypes.uint8))

    def calculate_qparams(self, **kwargs):
        """(scale, zero_point) from the observer's statistics."""
        raise NotImplementedError(f"{type(self).__name__} must define calculate_qparams")

    def enable_fake_quant(self, enabled: bool = True) -> None:
        """Turn fake quantization on (or off with ``enabled=False``)."""
        self.fake_quant_enabled.fill_(1 if enabled else 0)

    def disable_fake_quant(self) -> None:
        """Pass inputs through unchanged (statistics may still be collected)."""
        self.enable_fake_quant(False)

    def enable_observer(self, enabled: bool = True) -> None:
        """Turn statistics collection on (or off with ``enabled=False``)."""
        self.observer_enabled.fill_(1 if enabled else 0)

    def disable_observer(self) -> None:
        """Freeze the statistics and quantization parameters."""
        self.enable_observer(False)

    @classmethod
    def with_args(cls, **kwargs):
        """A factory building ``cls(**kwargs)`` afresh on each call."""
        return with_args(cls, **kwargs)


def _flag(buffer):
    return (buffer != 0).reshape(())


class FakeQuantize(FakeQuantizeBase):
    """``(clamp(round(x / scale) + zero_point, quant_min, quant_max) - zero_point) * scale``
    with ``scale``/``zero_point`` computed by the observer ``observer(**observer_kwargs)``
    (a ``MovingAverageMinMaxObserver`` by default)."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=None, quant_max=None,
                 is_dynamic=False, **observer_kwargs):
        super().__init__()
        if quant_min is not None and quant_max is not None:
            if quant_min > quant_max:
                raise QuantizationError(f"quant_min ({quant_min}) must be less than or equal "
                                        f"to quant_max ({quant_max})")
            dtype = observer_kwargs.get("dtype", qtypes.quint8)
            keywords = getattr(getattr(observer, "p", None), "keywords", {})
            dtype = keywords.get("dtype", dtype)
            lo, hi = dtype_range(dtype)
            if quant_min < lo:
                raise QuantizationError(f"quant_min ({quant_min}) out of bound for {dtype!r}")
            if quant_max > hi:
                raise QuantizationError(f"quant_max ({quant_max}) out of bound for {dtype!r}")
            observer_kwargs.update({"quant_min": quant_min, "quant_max": quant_max})
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        obs = self.activation_post_process
        self.quant_min, self.quant_max = obs.quant_min, obs.quant_max
        self.is_dynamic = obs.is_dynamic
        self.register_buffer("scale", C.tensor([1.0], dtype=dtypes.float32))
        self.register_buffer("zero_point", C.tensor([0], dtype=dtypes.int32))
        self.dtype = obs.dtype
        self.qscheme = obs.qscheme
        self.ch_axis = getattr(obs, "ch_axis", -1)
        if not (is_per_channel(self.qscheme) or is_per_tensor(self.qscheme)):
            raise QuantizationError(f"Only per channel and per tensor quantization are "
                                    f"supported in fake quantize, got qscheme: "
                                    f"{self.qscheme!r}")
        self.is_per_channel = is_per_channel(self.qscheme)

    def calculate_qparams(self):
        """The observer's (scale, zero_point)."""
        return self.activation_post_process.calculate_qparams()

    def _store_qparams(self, scale, zero_point, when=None):
        """Copy new qparams into the buffers (only where the 0-d bool tensor ``when``
        holds), resizing them first for a new channel count."""
        if tuple(self.scale.shape) != tuple(scale.shape):
            resize_buffer_(self, "scale", scale.shape, 1.0)
            resize_buffer_(self, "zero_point", zero_point.shape, 0)
        zero_point = zero_point.to(self.zero_point.dtype)
        if when is not None:
            scale = where(when, scale, self.scale)
            zero_point = where(when, zero_point, self.zero_point)
        self.scale.copy_(scale)
        self.zero_point.copy_(zero_point)

    def _observe(self, x):
        """Update statistics and qparams if the observer is enabled."""
        obs = self.activation_post_process
        if not hasattr(obs, "observe"):  # a user observer: PyTorch's data-dependent branch
            if bool(self.observer_enabled[0] == 1):
                obs(x.detach())
                scale, zero_point = self.calculate_qparams()
                self._store_qparams(scale.to(self.scale.device),
                                    zero_point.to(self.zero_point.device))
            return
        if x.numel() == 0:
            return
        on = _flag(self.observer_enabled)
        min_val, max_val = obs.observe(x.detach())
        min_val = where(on, min_val, obs.min_val)
        max_val = where(on, max_val, obs.max_val)
        obs.min_val.copy_(min_val)
        obs.max_val.copy_(max_val)
        scale, zero_point = obs._traced_qparams(min_val, max_val)
        self._store_qparams(scale, zero_point, on)

    def _fake_quant(self, x):
        if self.is_per_channel:
            return fake_quantize_per_channel_affine(x, self.scale, self.zero_point,
                                                    self.ch_axis, self.quant_min,
                                                    self.quant_max)
        return fake_quantize_per_tensor_affine(x, self.scale, self.zero_point,
                                               self.quant_min, self.quant_max)

    def forward(self, x):
        """Observe ``x`` (if enabled) and return it fake-quantized (if enabled)."""
        self._observe(x)
        return where(_flag(self.fake_quant_enabled), self._fake_quant(x), x)

    def extra_repr(self) -> str:
        return (f"fake_quant_enabled={self.fake_quant_enabled}, "
                f"observer_enabled={self.observer_enabled}, quant_min={self.quant_min}, "
                f"quant_max={self.quant_max}, dtype={self.dtype}, qscheme={self.qscheme}, "
                f"ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # scale/zero_point of any size load into the initial one-element buffers
        for name in ("scale", "zero_point"):
            value = state_dict.get(prefix + name)
            if value is not None and tuple(value.shape) != tuple(getattr(self, name).shape):
                resize_buffer_(self, name, tuple(value.shape), 0)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class FusedMovingAvgObsFakeQuantize(FakeQuantize):
    """PyTorch's fused observer + fake quantization (``fused_moving_avg_obs_fake_quant``):
    moving-average min/max statistics, and qparams chosen by fbgemm's
    ``ChooseQuantizationParams`` (:func:`~.fused_qparams.choose_qparams`) each time fake
    quantization runs."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                 **observer_kwargs):
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        if not isinstance(self.activation_post_process,
                          (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver)):
            raise QuantizationError("Fused observer+fake_quant module only works with "
                                    "MovingAverageMinMaxObserver")
        self.register_buffer("fake_quant_enabled", C.tensor([1], dtype=dtypes.int64))
        self.register_buffer("observer_enabled", C.tensor([1], dtype=dtypes.int64))
        self.is_symmetric_quant = self.qscheme in (qtypes.per_tensor_symmetric,
                                                   qtypes.per_channel_symmetric)

    def forward(self, x):
        """Update the moving averages (observer on), then choose qparams and
        fake-quantize (fake quant on)."""
        obs = self.activation_post_process
        if x.numel() == 0:
            return x
        obs_on, fq_on = _flag(self.observer_enabled), _flag(self.fake_quant_enabled)
        lo, hi = obs._current(x.detach())
        c = obs.averaging_constant
        # the fused kernel starts a running value wherever it is still infinite
        new_min = where(obs.min_val.isinf(), lo, obs.min_val + c * (lo - obs.min_val))
        new_max = where(obs.max_val.isinf(), hi, obs.max_val + c * (hi - obs.max_val))
        obs.min_val.copy_(where(obs_on, new_min, obs.min_val))
        obs.max_val.copy_(where(obs_on, new_max, obs.max_val))
        scale, zero_point = choose_qparams(obs.min_val.reshape(-1), obs.max_val.reshape(-1),
                                           self.quant_min, self.quant_max,
                                           self.is_symmetric_quant)
        self._store_qparams(scale, zero_point, fq_on)
        return where(fq_on, self._fake_quant(x), x)

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f", reduce_range={self.activation_post_process.reduce_range}")


def disable_fake_quant(mod):
    """``model.apply(disable_fake_quant)``: turn fake quantization off."""
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_fake_quant()


def enable_fake_quant(mod):
    """``model.apply(enable_fake_quant)``: turn fake quantization on."""
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_fake_quant()


def disable_observer(mod):
    """``model.apply(disable_observer)``: freeze statistics and qparams."""
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_observer()


def enable_observer(mod):
    """``model.apply(enable_observer)``: collect statistics again."""
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_observer()


default_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=qtypes.quint8,
    qscheme=qtypes.per_tensor_affine, reduce_range=True)
default_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=qtypes.qint8,
    qscheme=qtypes.per_tensor_symmetric, reduce_range=False)
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=qtypes.qint8, qscheme=qtypes.per_channel_symmetric, reduce_range=False, ch_axis=0)
default_fused_act_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=qtypes.quint8)
default_fused_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=qtypes.qint8,
    qscheme=qtypes.per_tensor_symmetric)
default_fused_per_channel_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=qtypes.qint8, qscheme=qtypes.per_channel_symmetric)
