"""Observers: modules that record running min/max statistics of the tensors passing through
and turn them into quantization parameters (PyTorch's ``torch.ao.quantization.observer``,
same names, defaults, buffers and ``state_dict`` keys: ``eps``, ``min_val``, ``max_val``).

``calculate_qparams()`` computes PyTorch's scale and zero point::

    min_neg = min(min_val, 0); max_pos = max(max_val, 0)        (the range includes 0)
    symmetric: scale = max(-min_neg, max_pos) / ((quant_max - quant_min) / 2)
               zero_point = 0 (qint8), 128 (quint8), (quant_min + quant_max) // 2 (quint8
               with a custom range)
    affine:    scale = (max_pos - min_neg) / (quant_max - quant_min)
               zero_point = clamp(quant_min - round(min_neg / scale), quant_min, quant_max)
    scale = max(scale, eps)
    float_qparams (per channel, embeddings): scale = (max_val - min_val) / (quant_max -
               quant_min) (1 where not above eps), zero_point = -min_val / scale (a float),
               the range not extended to 0

``PlaceholderObserver`` records nothing: it carries a dtype (and ``is_dynamic=True`` for
activations that dynamic quantization quantizes per call) to the converted module.
``is_dynamic`` is accepted by every observer; only ``quantize_dynamic`` gives it meaning.

Before any observation it warns and returns ``([1.0], [0])``. The statistics updates are
written with tensor ops only (no ``.item()``), so a QAT step that runs observers compiles
into one graph: the first-observation cases are ``where`` selections, and the per-channel
buffers (empty until the first call, as in PyTorch) are sized outside the trace.
"""

from __future__ import annotations

import warnings

import numpy as np

from ... import creation as C
from ... import dtypes
from ..._state import tls
from ...errors import ArgumentError
from ...nn.modules.module import Module
from ...ops import maximum, minimum
from ...ops.pointwise import where
from .. import qtypes
from .utils import (QuantizationError, calculate_qmin_qmax, check_min_max_valid,
                    is_per_channel, is_per_tensor, is_symmetric, storage_dtype,
                    validate_qmin_qmax, with_args, with_callable_args)

__all__ = ["ObserverBase", "UniformQuantizationObserverBase", "MinMaxObserver",
           "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver",
           "MovingAveragePerChannelMinMaxObserver", "default_observer",
           "default_weight_observer", "default_per_channel_weight_observer",
           "weight_observer_range_neg_127_to_127",
           "per_channel_weight_observer_range_neg_127_to_127", "PlaceholderObserver",
           "default_placeholder_observer", "default_dynamic_quant_observer",
           "default_float_qparams_observer"]

_EPS = float(np.finfo(np.float32).eps)  # torch.finfo(torch.float32).eps
_INF = float("inf")


def resize_buffer_(module, name, shape, fill, dtype=None) -> None:
    """Replace buffer ``name`` by a tensor of ``shape`` filled with ``fill`` (PyTorch's
    ``resize_`` of an observer buffer). The tensor is made outside any active trace, so a
    compiled step that sizes a buffer on its first call captures the new buffer itself."""
    old = getattr(module, name)
    saved, tls.tracer = tls.tracer, None
    try:
        new = C.full(tuple(shape), fill, dtype=dtype or old.dtype, device=old.device)
    finally:
        tls.tracer = saved
    module.register_buffer(name, new)


class ObserverBase(Module):
    """Base observer: ``forward`` records statistics and returns its input unchanged;
    ``calculate_qparams`` turns them into (scale, zero_point)."""

    def __init__(self, dtype, is_dynamic=False):
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = is_dynamic

    def calculate_qparams(self, **kwargs):
        """(scale, zero_point) from the recorded statistics."""
        raise NotImplementedError(f"{type(self).__name__} must define calculate_qparams")

    with_args = classmethod(with_args)
    with_callable_args = classmethod(with_callable_args)


class UniformQuantizationObserverBase(ObserverBase):
    """Common base of the min/max observers: qscheme, reduced/custom ranges, ``eps``."""

    _version = 3

    def __init__(self, dtype=qtypes.quint8, qscheme=qtypes.per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=_EPS, is_dynamic=False, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(kwargs)}")
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        if not (is_per_tensor(qscheme) or is_per_channel(qscheme)):
            raise QuantizationError(f"Default Observer only works for per_tensor_affine, "
                                    f"per_tensor_symmetric, per_channel_affine, "
                                    f"per_channel_symmetric and per_channel_float_qparams "
                                    f"quantization scheme, got {qscheme!r}")
        storage_dtype(dtype)  # raises a DTypeError for anything but the quantized dtypes
        self.qscheme = qscheme
        if reduce_range:
            warnings.warn("Please use quant_min and quant_max to specify the range for "
                          "observers. reduce_range will be deprecated in a future release "
                          "of PyTorch.", stacklevel=2)
        self.reduce_range = reduce_range
        device = (factory_kwargs or {}).get("device")
        self.register_buffer("eps", C.tensor([eps], dtype=dtypes.float32, device=device))
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        if self.has_customized_qrange:
            validate_qmin_qmax(quant_min, quant_max)
        self.quant_min, self.quant_max = calculate_qmin_qmax(
            quant_min, quant_max, self.has_customized_qrange, dtype, reduce_range)
        if is_symmetric(qscheme) and reduce_range and dtype is qtypes.quint8:
            raise NotImplementedError("Cannot reduce range for symmetric quantization for "
                                      "quint8")

    def _calculate_qparams(self, min_val, max_val):
        """PyTorch's formulas (module docstring) with tensor ops; a per-tensor result has
        shape [1], a per-channel one [C]."""
        qmin, qmax = self.quant_min, self.quant_max
        if self.qscheme is qtypes.per_channel_affine_float_qparams:
            # the range is not extended to 0; float zero point -min / scale (embeddings)
            scale = (max_val - min_val) / float(qmax - qmin)
            scale = where(scale > self.eps, scale, 1.0)
            return scale.reshape(-1), (-1 * min_val / scale).reshape(-1)
        min_neg = min_val.clamp(max=0.0)
        max_pos = max_val.clamp(min=0.0)
        if is_symmetric(self.qscheme):
            max_pos = maximum(-min_neg, max_pos)
            scale = maximum(max_pos / (float(qmax - qmin) / 2), self.eps)
            zp = 0
            if self.dtype in (qtypes.quint8, dtypes.uint8):
                zp = (qmin + qmax) // 2 if self.has_customized_qrange else 128
            zero_point = C.full(scale.shape, zp, dtype=dtypes.int64, device=scale.device)
        else:
            scale = maximum((max_pos - min_neg) / float(qmax - qmin), self.eps)
            zero_point = (qmin - (min_neg / scale).round().to(dtypes.int32)).clamp(qmin, qmax)
        return scale.reshape(-1), zero_point.reshape(-1)

    def _default_qparams(self):
        dev = self.eps.device
        return (C.tensor([1.0], dtype=dtypes.float32, device=dev),
                C.tensor([0], dtype=dtypes.int64, device=dev))

    def calculate_qparams(self):
        """(scale, zero_point) from ``min_val``/``max_val``; ``([1.0], [0])`` with a warning
        before the first observation."""
        if not check_min_max_valid(self.min_val, self.max_val):
            return self._default_qparams()
        return self._calculate_qparams(self.min_val, self.max_val)

    def _traced_qparams(self, min_val, max_val):
        """:meth:`calculate_qparams` for given statistics with tensor ops only (no warning,
        no check): the defaults where nothing was observed yet."""
        if min_val.numel() == 0:
            return self._default_qparams()
        scale, zp = self._calculate_qparams(min_val, max_val)
        seen = ((min_val != _INF) | (max_val != -_INF)).reshape(-1)
        return where(seen, scale, 1.0), where(seen, zp, 0)

    def observe(self, x):
        """The updated (min_val, max_val) after seeing ``x``, without storing them."""
        raise NotImplementedError

    def forward(self, x_orig):
        """Record the statistics of ``x_orig``; return it unchanged."""
        if x_orig.numel() == 0:
            return x_orig
        min_val, max_val = self.observe(x_orig)
        self.min_val.copy_(min_val)
        self.max_val.copy_(max_val)
        return x_orig

    def reset_min_max_vals(self):
        """Forget the statistics."""
        raise NotImplementedError(f"{type(self).__name__} cannot reset min/max values")


class MinMaxObserver(UniformQuantizationObserverBase):
    """Running minimum and maximum of everything observed (per tensor)."""

    def __init__(self, dtype=qtypes.quint8, qscheme=qtypes.per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=_EPS, is_dynamic=False, **kwargs):
        if not is_per_tensor(qscheme):
            raise NotImplementedError(f"{type(self).__name__}'s qscheme only supports "
                                      f"per_tensor_symmetric and per_tensor_affine, got "
                                      f"{qscheme!r}")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs,
                         eps, is_dynamic, **kwargs)
        device = (factory_kwargs or {}).get("device")
        self.register_buffer("min_val", C.tensor(_INF, device=device))
        self.register_buffer("max_val", C.tensor(-_INF, device=device))

    def _current(self, x):
        x = x.detach().to(self.min_val.dtype)
        return x.amin(), x.amax()

    def observe(self, x):
        lo, hi = self._current(x)
        return minimum(lo, self.min_val), maximum(hi, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def reset_min_max_vals(self):
        """Back to the unobserved ``(inf, -inf)``."""
        self.min_val.fill_(_INF)
        self.max_val.fill_(-_INF)


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Moving averages ``m + averaging_constant * (current - m)`` of the minimum and maximum
    (the first observation is taken as is)."""

    def __init__(self, averaging_constant=0.01, dtype=qtypes.quint8,
                 qscheme=qtypes.per_tensor_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=_EPS, is_dynamic=False, **kwargs):
        if not is_per_tensor(qscheme):
            raise NotImplementedError(f"MovingAverageMinMaxObserver's qscheme only supports "
                                      f"per_tensor_symmetric and per_tensor_affine, but got: "
                                      f"{qscheme!r}")
        self.averaging_constant = averaging_constant
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps,
                         is_dynamic=is_dynamic, **kwargs)

    def observe(self, x):
        return _moving_average(self, x)


def _moving_average(obs, x):
    """The moving-average observers' new (min, max): the batch's own on the first
    observation, else ``old + averaging_constant * (batch - old)``."""
    lo, hi = obs._current(x)
    c = obs.averaging_constant
    first = (obs.min_val == _INF) & (obs.max_val == -_INF)
    return (where(first, lo, obs.min_val + c * (lo - obs.min_val)),
            where(first, hi, obs.max_val + c * (hi - obs.max_val)))


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """Running minimum and maximum per slice along ``ch_axis`` (``min_val``/``max_val`` are
    empty until the first observation, as in PyTorch)."""

    def __init__(self, ch_axis=0, dtype=qtypes.quint8, qscheme=qtypes.per_channel_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=_EPS, is_dynamic=False, **kwargs):
        if not is_per_channel(qscheme):
            raise NotImplementedError(f"{type(self).__name__}'s qscheme only supports "
                                      f"per_channel_symmetric and per_channel_affine, got "
                                      f"{qscheme!r}")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs,
                         eps, is_dynamic, **kwargs)
        self.ch_axis = ch_axis
        device = (factory_kwargs or {}).get("device")
        self.register_buffer("min_val", C.zeros(0, device=device))
        self.register_buffer("max_val", C.zeros(0, device=device))

    def _current(self, x):
        if x.ndim == 0 or not -x.ndim <= self.ch_axis < x.ndim:
            raise ArgumentError(f"{type(self).__name__}: ch_axis {self.ch_axis} is out of "
                                f"range for an input of shape {list(x.shape)}")
        y = x.detach().to(self.min_val.dtype).movedim(self.ch_axis, 0)
        y = y.reshape(y.shape[0], -1)
        n = y.shape[0]
        if self.min_val.numel() != n:  # empty until the first call (or a new channel count)
            resize_buffer_(self, "min_val", (n,), _INF)
            resize_buffer_(self, "max_val", (n,), -_INF)
        return y.amin(1), y.amax(1)

    def observe(self, x):
        lo, hi = self._current(x)
        return minimum(lo, self.min_val), maximum(hi, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def reset_min_max_vals(self):
        """Back to empty statistics."""
        resize_buffer_(self, "min_val", (0,), 0.0)
        resize_buffer_(self, "max_val", (0,), 0.0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # buffers of any channel count load into empty (or differently sized) ones
        for name in ("min_val", "max_val"):
            value = state_dict.get(prefix + name)
            if value is not None and tuple(value.shape) != tuple(getattr(self, name).shape):
                resize_buffer_(self, name, tuple(value.shape), 0.0)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Per-channel moving averages of the minimum and maximum."""

    def __init__(self, averaging_constant=0.01, ch_axis=0, dtype=qtypes.quint8,
                 qscheme=qtypes.per_channel_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=_EPS, is_dynamic=False, **kwargs):
        super().__init__(ch_axis=ch_axis, dtype=dtype, qscheme=qscheme,
                         reduce_range=reduce_range, quant_min=quant_min, quant_max=quant_max,
                         eps=eps, is_dynamic=is_dynamic, **kwargs)
        self.averaging_constant = averaging_constant

    def observe(self, x):
        return _moving_average(self, x)


class PlaceholderObserver(ObserverBase):
    """An observer that records nothing: it carries a configuration (``dtype``, and
    ``is_dynamic=True`` for activations quantized per call by dynamic quantization, or a
    float dtype such as ``fw.float16`` for weights kept in half precision) to the module
    that ``convert`` / ``quantize_dynamic`` builds."""

    def __init__(self, dtype=dtypes.float32, custom_op_name="", compute_dtype=None,
                 quant_min=None, quant_max=None, qscheme=None, eps=None, is_dynamic=False):
        if compute_dtype:  # PyTorch's deprecated spelling of is_dynamic
            warnings.warn("Please use `is_dynamic` instead of `compute_dtype`. "
                          "`compute_dtype` will be deprecated in a future release of PyTorch.",
                          stacklevel=2)
            is_dynamic = True
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.qscheme = qtypes.per_tensor_affine if qscheme is None else qscheme
        self.quant_min, self.quant_max = quant_min, quant_max
        self.eps = _EPS if eps is None else eps
        self.custom_op = custom_op_name

    def forward(self, x):
        """Return ``x`` unchanged."""
        return x

    def calculate_qparams(self):
        """Not defined: a placeholder has no statistics."""
        raise QuantizationError("calculate_qparams should not be called for "
                                "PlaceholderObserver")

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, is_dynamic={self.is_dynamic}"


default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_placeholder_observer = PlaceholderObserver
# dynamic quantization: activations quantized per call to quint8 (the range and arithmetic
# are the dynamic module's; x86 reduces it to 7 bits)
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype=qtypes.quint8, quant_min=0, quant_max=255, is_dynamic=True)
# weight-only embedding quantization: per-row scale and float zero point
default_float_qparams_observer = PerChannelMinMaxObserver.with_args(
    dtype=qtypes.quint8, qscheme=qtypes.per_channel_affine_float_qparams, ch_axis=0)
default_weight_observer = MinMaxObserver.with_args(dtype=qtypes.qint8,
                                                   qscheme=qtypes.per_tensor_symmetric)
weight_observer_range_neg_127_to_127 = MinMaxObserver.with_args(
    dtype=qtypes.qint8, qscheme=qtypes.per_tensor_symmetric, quant_min=-127, quant_max=127,
    eps=2 ** -12)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype=qtypes.qint8, qscheme=qtypes.per_channel_symmetric)
per_channel_weight_observer_range_neg_127_to_127 = PerChannelMinMaxObserver.with_args(
    dtype=qtypes.qint8, qscheme=qtypes.per_channel_symmetric, quant_min=-127, quant_max=127,
    eps=2 ** -12)
