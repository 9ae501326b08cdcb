"""Dynamic quantized ``Linear`` (PyTorch's ``torch.ao.nn.quantized.dynamic.Linear``, what
``framework.ao.quantization.quantize_dynamic`` puts in place of ``nn.Linear``).

The weight is quantized once, ahead of time (int8 with a per-tensor or per-output-channel
scale and zero point, or stored as float16 for ``dtype=fw.float16``); the activation is
quantized at every call with qparams computed from the batch itself, so there is nothing
to calibrate. A qint8 forward is, to the bit, PyTorch's x86 (fbgemm) kernel::

    q, s, zp = dynamic_quantize_linear(x, reduce_range)   # uint8, 7-bit range on x86
    acc = matmul_integer(q, W^T, zp, w_zp)                 # exact int32
    y = float32(acc) * s * w_scale + bias                  # in this order, in float32

(``framework.ao.quantization.quantized_decomposed``). ``reduce_range`` (an attribute,
True by default as in PyTorch on x86) may be set to False for 8-bit activations with ONNX
``DynamicQuantizeLinear``'s arithmetic, which exports as the plain onnxruntime pattern.
A float16 forward is ``x @ float32(W16)^T + bias`` in float32. The output has the
input's dtype (float16/bfloat16/float64 input is computed in float32).

State dict: ``weight`` (int8 or float16 ``[out, in]``), ``bias`` (float32),
``weight_scale`` / ``weight_zero_point`` (0-d per tensor, ``[out]`` per channel; qint8
only) and ``_extra_state`` (dtype and qscheme names). PyTorch stores a packed-params
object instead (``_packed_params._packed_params``); there are no quantized tensors here,
so ``weight()`` returns the dequantized float32 weight and ``get_quantized_weight()``
the integers.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..... import creation as C
from ..... import dtypes
from .....errors import DTypeError, ShapeError
from .....nn import functional as F
from .....nn.modules.module import Module
from .....ops.quant_dynamic_ops import dynamic_quantize_linear, matmul_integer
from .....tensor import Tensor
from .... import qtypes
from ....quantization.utils import QuantizationError, is_per_channel

__all__ = ["Linear", "LinearReLU"]

_FP16_MAX = float(np.finfo(np.float16).max)
_DTYPES = {"qint8": qtypes.qint8, "float16": dtypes.float16}
_SCHEMES = {s.name: s for s in (qtypes.per_tensor_affine, qtypes.per_tensor_symmetric,
                                qtypes.per_channel_affine, qtypes.per_channel_symmetric)}
_PUBLIC = {"_weight": "weight", "_bias": "bias"}  # buffer name -> state_dict key


def _check_dtype(dtype):
    if dtype is not qtypes.qint8 and dtype is not dtypes.float16:
        raise DTypeError(f"The only supported dtypes for dynamic quantized linear are qint8 "
                         f"and float16, got {dtype!r}")


class Linear(Module):
    """A linear layer with a quantized weight whose input is quantized per call."""

    _version = 4

    def __init__(self, in_features, out_features, bias_=True, dtype=qtypes.qint8):
        super().__init__()
        _check_dtype(dtype)
        self.in_features, self.out_features = in_features, out_features
        self.reduce_range = True
        self._configure(dtype, qtypes.per_tensor_affine, None)
        self.register_buffer("_bias", C.zeros(out_features) if bias_ else None)

    # -- storage ---------------------------------------------------------------------------
    def _configure(self, dtype, qscheme, device, channels=False):
        """(Re)create the weight buffers for ``dtype`` / ``qscheme`` (zeros, scale 1)."""
        self.dtype, self.qscheme = dtype, qscheme
        shape = (self.out_features, self.in_features)
        if dtype is dtypes.float16:
            self.register_buffer("_weight", C.zeros(shape, dtype=dtypes.float16,
                                                    device=device))
            for name in ("weight_scale", "weight_zero_point"):
                if name in self._buffers:
                    del self._buffers[name]
            return
        qshape = (self.out_features,) if channels else ()
        self.register_buffer("_weight", C.zeros(shape, dtype=dtypes.int8, device=device))
        self.register_buffer("weight_scale", C.ones(qshape, device=device))
        self.register_buffer("weight_zero_point", C.zeros(qshape, dtype=dtypes.int8,
                                                          device=device))

    def set_weight_bias(self, qweight, bias, scale=None, zero_point=None, qscheme=None):
        """Store an already quantized weight (int8 with its ``scale`` / ``zero_point``,
        0-d or per output channel, for a qint8 module; the float16 weight, or a float
        one that is rounded to float16, for a float16 module) and the float bias."""
        dev = qweight.device
        if tuple(qweight.shape) != (self.out_features, self.in_features):
            raise ShapeError(f"DynamicQuantizedLinear: weight of shape {list(qweight.shape)} "
                             f"does not match [{self.out_features}, {self.in_features}]")
        if self.dtype is dtypes.float16:
            self._configure(dtypes.float16, self.qscheme, dev)
            self._weight = _to_fp16(qweight)
        else:
            if qweight.dtype is not dtypes.int8:
                raise DTypeError(f"DynamicQuantizedLinear: a qint8 module stores an int8 "
                                 f"weight, got {qweight.dtype.name}")
            scale = C.tensor(1.0) if scale is None else scale
            zero_point = C.tensor(0) if zero_point is None else zero_point
            channels = scale.ndim == 1 and scale.shape[0] != 1 or (
                qscheme is not None and is_per_channel(qscheme))
            if qscheme is None:
                qscheme = (qtypes.per_channel_affine if channels
                           else qtypes.per_tensor_affine)
            self._configure(qtypes.qint8, qscheme, dev, channels)
            self._weight = qweight.detach().clone()
            shape = (-1,) if channels else ()
            self.weight_scale = scale.detach().to(dev).to(dtypes.float32).reshape(shape).clone()
            self.weight_zero_point = (zero_point.detach().to(dev).to(dtypes.int8)
                                      .reshape(shape).clone())
        self._bias = None if bias is None else bias.detach().to(dev).to(dtypes.float32).clone()

    def _apply(self, fn, grads=True, recurse=True):
        # the stored tensors keep their dtypes (PyTorch's packed parameters are opaque to
        # Module.half() / double()); device moves apply
        def keep_dtype(t):
            out = fn(t)
            return out if out.dtype is t.dtype else out.to(t.dtype)
        return super()._apply(keep_dtype, grads, recurse)

    # -- PyTorch's accessors ---------------------------------------------------------------
    def weight(self):
        """The weight as float32: dequantized (qint8) or widened (float16)."""
        w = self._weight.to(dtypes.float32)
        if self.dtype is dtypes.float16:
            return w
        shape = (-1, 1) if self.weight_scale.ndim == 1 else ()
        return ((w - self.weight_zero_point.to(dtypes.float32).reshape(shape))
                * self.weight_scale.reshape(shape))

    def bias(self):
        """The float32 bias (or None)."""
        return self._bias

    def get_quantized_weight(self):
        """The stored weight: int8 integers, or the float16 values."""
        return self._weight

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x):
        if not isinstance(x, Tensor) or not x.dtype.is_floating_point:
            raise DTypeError(f"DynamicQuantizedLinear: expected a floating-point input, got "
                             f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ShapeError(f"DynamicQuantizedLinear: input of shape {list(x.shape)} does "
                             f"not end in in_features={self.in_features}")
        xf = x if x.dtype is dtypes.float32 else x.to(dtypes.float32)
        if self.dtype is dtypes.float16:
            y = xf.matmul(self._weight.t().to(dtypes.float32))
        else:
            q, s, zp = dynamic_quantize_linear(xf, self.reduce_range)
            acc = matmul_integer(q, self._weight.t(), zp, self.weight_zero_point)
            y = acc.to(dtypes.float32) * s * self.weight_scale
        if self._bias is not None:
            y = y + self._bias
        return y if y.dtype is x.dtype else y.to(x.dtype)

    # -- conversion ------------------------------------------------------------------------
    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """Quantize a float ``nn.Linear`` (or a fused ``LinearReLU``) with its
        ``qconfig.weight`` observer (``default_dynamic_qconfig``'s when it has none)."""
        float_types = _float_types()
        if type(mod) not in float_types:
            raise QuantizationError(f"nn.quantized.dynamic.{cls.__name__}.from_float only "
                                    f"works for one of "
                                    f"{[t.__name__ for t in float_types]}, got "
                                    f"{type(mod).__name__}")
        if not hasattr(mod, "qconfig"):
            raise QuantizationError("Input float module must have qconfig defined")
        layer = mod[0] if type(mod) is float_types[-1] else mod
        return cls._from_weight(layer.weight, layer.bias, mod.qconfig)

    @classmethod
    def _from_weight(cls, weight, bias, qconfig):
        """A module holding ``weight`` ``[out, in]`` quantized with a fresh
        ``qconfig.weight()`` observer (``default_dynamic_qconfig``'s when there is none),
        and ``bias``."""
        if qconfig is None or qconfig.weight is None:
            from ....quantization.qconfig import default_dynamic_qconfig
            qconfig = default_dynamic_qconfig
        observer = qconfig.weight().to(weight.device)
        _check_dtype(observer.dtype)
        w = weight.detach().to(dtypes.float32)
        new = cls(w.shape[1], w.shape[0], bias is not None, dtype=observer.dtype)
        if observer.dtype is dtypes.float16:
            new.set_weight_bias(w, bias)
            return new
        observer(w)
        qscheme = observer.qscheme
        if qscheme is qtypes.per_channel_affine_float_qparams or (
                is_per_channel(qscheme) and observer.ch_axis != 0):
            raise QuantizationError(f"dynamic quantized Linear needs a per-tensor or "
                                    f"per-output-channel (ch_axis=0) weight observer, got "
                                    f"{qscheme!r} with ch_axis={getattr(observer, 'ch_axis', 0)}")
        from ..reference import get_qparam_dict
        from .....ops.quant_ops import quantize_per_channel, quantize_per_tensor
        qp = get_qparam_dict(observer)
        scale, zp = qp["scale"].to(dtypes.float32), qp["zero_point"]
        lo, hi = qp["quant_min"], qp["quant_max"]
        if is_per_channel(qscheme):
            qw = quantize_per_channel(w, scale, zp, 0, lo, hi, dtypes.int8)
        else:
            qw = quantize_per_tensor(w, scale.reshape(()), zp.reshape(()), lo, hi, dtypes.int8)
        # the stored integers' scheme, as PyTorch's quantized weight reports it (a
        # symmetric observer still gives an affine tensor, its zero points 0)
        stored = (qtypes.per_channel_affine if is_per_channel(qscheme)
                  else qtypes.per_tensor_affine)
        new.set_weight_bias(qw, bias, scale, zp, stored)
        return new

    @classmethod
    def from_reference(cls, ref_qlinear):
        """From a reference quantized ``Linear`` (``convert`` of a static workflow): its
        integer weight and qparams, its bias."""
        if ref_qlinear.weight_dtype is not qtypes.qint8:
            raise DTypeError(f"from_reference: expected a qint8 weight, got "
                             f"{ref_qlinear.weight_dtype!r}")
        new = cls(ref_qlinear.in_features, ref_qlinear.out_features,
                  ref_qlinear.bias is not None)
        new.set_weight_bias(ref_qlinear.qweight, ref_qlinear.bias, ref_qlinear.weight_scale,
                            ref_qlinear.weight_zero_point, ref_qlinear.weight_qscheme)
        return new

    # -- state dict ------------------------------------------------------------------------
    def get_extra_state(self):
        """The dtype and qscheme names (strings, so a checkpoint stays pickle-free)."""
        return {"dtype": "qint8" if self.dtype is qtypes.qint8 else "float16",
                "qscheme": self.qscheme.name}

    def set_extra_state(self, state) -> None:
        """Applied by :meth:`_load_from_state_dict` (before the tensors are copied)."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        local = {}
        super()._save_to_state_dict(local, prefix, keep_vars)
        for key, value in local.items():
            name = key[len(prefix):]
            destination[prefix + _PUBLIC.get(name, name)] = value

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing,
                              unexpected, errors):
        inner = {v: k for k, v in _PUBLIC.items()}
        local = {}
        for key, value in state_dict.items():
            name = key[len(prefix):] if key.startswith(prefix) else None
            local[prefix + inner[name] if name in inner else key] = value
        extra = local.get(prefix + "_extra_state")
        if isinstance(extra, dict):
            dtype = _DTYPES.get(extra.get("dtype"))
            qscheme = _SCHEMES.get(extra.get("qscheme"))
            if dtype is None or qscheme is None:
                errors.append(f"{prefix}_extra_state: unknown dtype / qscheme {extra!r}")
                return
            scale = local.get(prefix + "weight_scale")
            channels = scale is not None and len(getattr(scale, "shape", ())) == 1
            self._configure(dtype, qscheme, self._weight.device, channels)
        if (prefix + "_bias") in local and self._bias is None:
            self._bias = C.zeros(self.out_features, device=self._weight.device)
        own_missing, own_unexpected = [], []
        super()._load_from_state_dict(local, prefix, local_metadata, strict, own_missing,
                                      own_unexpected, errors)
        public = {prefix + k: prefix + v for k, v in _PUBLIC.items()}
        missing.extend(public.get(k, k) for k in own_missing)
        unexpected.extend(public.get(k, k) for k in own_unexpected)

    # -- printing --------------------------------------------------------------------------
    def _get_name(self) -> str:
        return "DynamicQuantizedLinear"

    def extra_repr(self) -> str:
        out = (f"in_features={self.in_features}, out_features={self.out_features}, "
               f"dtype={self.dtype}")
        if self.dtype is qtypes.qint8:
            out += f", qscheme={self.qscheme}"
        return out


class LinearReLU(Linear):
    """Dynamic quantized ``Linear`` followed by ReLU (PyTorch's
    ``torch.ao.nn.intrinsic.quantized.dynamic.LinearReLU``), from a fused ``LinearReLU``."""

    def forward(self, x):
        return F.relu(super().forward(x))

    def _get_name(self) -> str:
        return "DynamicQuantizedLinearReLU"


def _float_types():
    """The float modules ``from_float`` takes (the fused ``LinearReLU`` last)."""
    from .....nn import Linear as FloatLinear
    from .....nn.modules.attention import NonDynamicallyQuantizableLinear
    from ...intrinsic import LinearReLU as FusedLinearReLU
    return (FloatLinear, NonDynamicallyQuantizableLinear, FusedLinearReLU)


def _to_fp16(weight):
    """``weight`` as float16, saturated to +-65504 first (with PyTorch's warning)."""
    w = weight.detach()
    if w.dtype is dtypes.float16:
        return w.clone()
    w = w.to(dtypes.float32)
    if w.numel() and bool((w.abs() > _FP16_MAX).any()):
        warnings.warn("FOUND weight out of range ", stacklevel=3)
        w = w.clamp(-_FP16_MAX, _FP16_MAX)
    return w.to(dtypes.float16)
