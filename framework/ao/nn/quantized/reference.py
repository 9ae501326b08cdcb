"""Reference quantized modules (PyTorch's ``torch.ao.nn.quantized.reference``), what
``framework.ao.quantization.convert`` produces.

A reference ``Linear``/``ConvNd`` stores its weight as integers (``qweight``, int8 for
qint8) with ``weight_scale``/``weight_zero_point`` buffers, per tensor or per output
channel; its forward dequantizes the weight and runs the float op. (PyTorch's reference
modules keep a float weight; keeping the integers makes the ONNX export carry int8
initializers behind ``DequantizeLinear``, a quarter of the float size.)
``QuantizeDequantize`` is a frozen activation quantizer: quantize then dequantize with
fixed qparams (``QuantizeLinear -> DequantizeLinear`` in ONNX).
"""

from __future__ import annotations

from .... import creation as C
from .... import dtypes
from ....nn import functional as F
from ....nn.modules import conv as _conv
from ....nn.modules.module import Module
from ....errors import ArgumentError
from ....nn.parameter import Parameter
from ....tensor import Tensor
from ....ops.quant_ops import (dequantize_per_channel, dequantize_per_tensor,
                               fake_quantize_per_channel_affine,
                               fake_quantize_per_tensor_affine, quantize_per_channel,
                               quantize_per_tensor)
from ... import qtypes
from ...quantization.utils import (QuantizationError, dtype_range, is_per_channel,
                                  storage_dtype)

__all__ = ["QuantizeDequantize", "DeQuantize", "Linear", "Conv1d", "Conv2d", "Conv3d",
           "LinearReLU", "ConvReLU1d", "ConvReLU2d", "ConvReLU3d", "get_qparam_dict",
           "float_layer"]


def float_layer(mod):
    """The layer holding the float weight: ``mod`` itself, or the first module of a fused
    float module (``ao.nn.intrinsic``)."""
    return mod[0] if hasattr(mod, "_LAYER") else mod


def get_qparam_dict(observer_or_fake_quant):
    """The qparams of a calibrated observer / fake quantize module as a dict (PyTorch's
    ``get_qparam_dict``): qscheme, dtype, scale, zero_point, axis, quant_min, quant_max."""
    obs = observer_or_fake_quant
    scale, zero_point = obs.calculate_qparams()
    out = {"qscheme": obs.qscheme, "dtype": obs.dtype, "scale": scale,
           "zero_point": zero_point, "quant_min": obs.quant_min, "quant_max": obs.quant_max}
    if is_per_channel(obs.qscheme):
        out["axis"] = obs.ch_axis
    return out


class QuantizeDequantize(Module):
    """Quantize then dequantize with fixed ``scale``/``zero_point`` buffers."""

    def __init__(self, scale, zero_point, quant_min, quant_max, dtype=qtypes.quint8,
                 qscheme=qtypes.per_tensor_affine, ch_axis=-1):
        super().__init__()
        # kept as ONNX wants them (0-d per tensor, the zero point in the storage dtype), so
        # the export uses these buffers as QuantizeLinear's initializers directly
        shape = (-1,) if is_per_channel(qscheme) else ()
        self.register_buffer("scale", scale.detach().to(dtypes.float32).reshape(shape).clone())
        self.register_buffer("zero_point", zero_point.detach().to(storage_dtype(dtype))
                             .reshape(shape).clone())
        self.quant_min, self.quant_max = quant_min, quant_max
        self.dtype, self.qscheme, self.ch_axis = dtype, qscheme, ch_axis

    @classmethod
    def from_observer(cls, observer):
        """Freeze a calibrated observer or fake quantize module."""
        if getattr(observer, "is_dynamic", False):
            raise QuantizationError(f"{type(observer).__name__} has is_dynamic=True: a "
                                    "dynamically quantized activation has no fixed qparams "
                                    "to convert; use framework.ao.quantization."
                                    "quantize_dynamic (dynamic qconfigs) instead of "
                                    "prepare / convert")
        qp = get_qparam_dict(observer)
        return cls(qp["scale"], qp["zero_point"], qp["quant_min"], qp["quant_max"],
                   qp["dtype"], qp["qscheme"], qp.get("axis", -1))

    @classmethod
    def from_float(cls, mod):
        """A prepared ``QuantStub``: freeze the observer of its input."""
        obs = getattr(mod, "activation_post_process", None)
        if obs is None:
            raise ArgumentError(f"{type(mod).__name__} has no activation_post_process: run "
                                "prepare / prepare_qat (with a qconfig) before convert")
        return cls.from_observer(obs)

    def forward(self, x):
        if is_per_channel(self.qscheme):
            return fake_quantize_per_channel_affine(x, self.scale, self.zero_point,
                                                    self.ch_axis, self.quant_min,
                                                    self.quant_max)
        return fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.quant_min,
                                               self.quant_max)

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, zero_point={self.zero_point}, dtype={self.dtype}, "
                f"quant_min={self.quant_min}, quant_max={self.quant_max}, "
                f"qscheme={self.qscheme}")


class DeQuantize(Module):
    """A converted ``DeQuantStub``: values are already float, so it passes them through."""

    @classmethod
    def from_float(cls, mod):
        """The ``DeQuantStub`` replacement."""
        return cls()

    def forward(self, x):
        return x


_DEFAULT_QPARAMS = {"qscheme": qtypes.per_tensor_symmetric, "dtype": qtypes.qint8,
                    "scale": 1.0, "zero_point": 0}


class _WeightQuantized(Module):
    """Integer weight storage: ``qweight`` + ``weight_scale``/``weight_zero_point``."""

    _IS_REFERENCE = True  # convert builds it from a weight observer's qparams

    def _init_weight(self, shape, weight_qparams, device):
        qp = dict(_DEFAULT_QPARAMS if weight_qparams is None else weight_qparams)
        self.weight_qscheme = qp["qscheme"]
        self.weight_dtype = qp["dtype"]
        self.weight_axis = int(qp.get("axis", 0))
        lo, hi = dtype_range(self.weight_dtype)
        self.weight_quant_min = int(qp.get("quant_min", lo))
        self.weight_quant_max = int(qp.get("quant_max", hi))
        scale, zp = qp["scale"], qp["zero_point"]
        scale = scale if isinstance(scale, Tensor) else C.tensor([float(scale)])
        zp = zp if isinstance(zp, Tensor) else C.tensor([int(zp)])
        device = device if device is not None else scale.device
        # in the forms QuantizeLinear takes (see QuantizeDequantize)
        qshape = (-1,) if is_per_channel(self.weight_qscheme) else ()
        self.register_buffer("weight_scale",
                             scale.detach().to(device).to(dtypes.float32).reshape(qshape))
        self.register_buffer("weight_zero_point", zp.detach().to(device)
                             .to(storage_dtype(self.weight_dtype)).reshape(qshape).clone())
        self.register_buffer("qweight", C.zeros(shape, dtype=storage_dtype(self.weight_dtype),
                                                device=device))

    def _qargs(self, axis=None):
        args = (self.weight_scale, self.weight_zero_point)
        if is_per_channel(self.weight_qscheme):
            args += (self.weight_axis if axis is None else axis,)
        return args + (self.weight_quant_min, self.weight_quant_max,
                       storage_dtype(self.weight_dtype))

    def _dequantize(self, q, axis=None):
        dq = (dequantize_per_channel if is_per_channel(self.weight_qscheme)
              else dequantize_per_tensor)
        return dq(q, *self._qargs(axis))

    def _quantize_weight(self, weight) -> None:
        q = quantize_per_channel if is_per_channel(self.weight_qscheme) else quantize_per_tensor
        self.qweight = q(weight.detach(), *self._qargs())

    def get_quantized_weight(self):
        """The integer weight."""
        return self.qweight

    def get_weight(self):
        """The dequantized (float32) weight."""
        return self._dequantize(self.qweight)

    @property
    def weight(self):
        """The dequantized weight (:meth:`get_weight`)."""
        return self.get_weight()

    def _weight_repr(self) -> str:
        return f", weight_qscheme={self.weight_qscheme}, weight_dtype={self.weight_dtype}"


class Linear(_WeightQuantized):
    """``y = x dequantize(qweight)^T + bias``."""

    def __init__(self, in_features, out_features, bias_=True, device=None, dtype=None,
                 weight_qparams=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_weight((out_features, in_features), weight_qparams, device)
        self.bias = (Parameter(C.zeros(out_features, device=device, dtype=dtype)) if bias_
                     else None)

    @classmethod
    def from_float(cls, float_linear, weight_qparams):
        """Quantize ``float_linear``'s weight with ``weight_qparams``
        (:func:`get_qparam_dict` of a weight observer)."""
        float_linear = float_layer(float_linear)
        w = float_linear.weight
        ref = cls(float_linear.in_features, float_linear.out_features,
                  float_linear.bias is not None, device=w.device, dtype=w.dtype,
                  weight_qparams=weight_qparams)
        ref._quantize_weight(w)
        if float_linear.bias is not None:
            ref.bias = Parameter(float_linear.bias.detach().clone())
        return ref

    def forward(self, x):
        # the transposed integers are dequantized, so that in ONNX DequantizeLinear feeds
        # MatMul directly (onnxruntime fuses that pattern into an int8 matmul)
        w_t = self._dequantize(self.qweight.t(), 1 - self.weight_axis)
        out = x.matmul(w_t if w_t.dtype is x.dtype else w_t.to(x.dtype))
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}" + self._weight_repr())


_CONV_ATTRS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
               "groups", "padding_mode", "output_padding", "transposed")


class _ConvNd(_WeightQuantized):
    _FLOAT_CONV = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None, weight_qparams=None):
        super().__init__()
        shape_ref = self._FLOAT_CONV(in_channels, out_channels, kernel_size, stride, padding,
                                     dilation, groups, bias, padding_mode, device="meta",
                                     dtype=dtype)
        for name in _CONV_ATTRS:
            setattr(self, name, getattr(shape_ref, name))
        self._nd = shape_ref._nd
        self._init_weight(tuple(shape_ref.weight.shape), weight_qparams, device)
        self.bias = (Parameter(C.zeros(out_channels, device=device, dtype=dtype)) if bias
                     else None)

    @classmethod
    def from_float(cls, float_conv, weight_qparams):
        """Quantize ``float_conv``'s weight with ``weight_qparams``."""
        float_conv = float_layer(float_conv)
        w = float_conv.weight
        ref = cls(float_conv.in_channels, float_conv.out_channels, float_conv.kernel_size,
                  float_conv.stride, float_conv.padding, float_conv.dilation,
                  float_conv.groups, float_conv.bias is not None, float_conv.padding_mode,
                  device=w.device, dtype=w.dtype, weight_qparams=weight_qparams)
        ref._quantize_weight(w)
        if float_conv.bias is not None:
            ref.bias = Parameter(float_conv.bias.detach().clone())
        return ref

    def forward(self, x):
        w = self.get_weight()
        w = w if w.dtype is x.dtype else w.to(x.dtype)
        return self._FLOAT_CONV._conv_forward(self, x, w, self.bias)

    def extra_repr(self) -> str:
        return _conv._ConvNd.extra_repr(self) + self._weight_repr()


class Conv1d(_ConvNd):
    """Reference ``Conv1d``."""

    _FLOAT_CONV = _conv.Conv1d


class Conv2d(_ConvNd):
    """Reference ``Conv2d``."""

    _FLOAT_CONV = _conv.Conv2d


class Conv3d(_ConvNd):
    """Reference ``Conv3d``."""

    _FLOAT_CONV = _conv.Conv3d


class LinearReLU(Linear):
    """Reference ``Linear`` followed by ReLU (a fused ``LinearReLU``)."""

    def forward(self, x):
        return F.relu(super().forward(x))


class ConvReLU1d(Conv1d):
    """Reference ``Conv1d`` followed by ReLU."""

    def forward(self, x):
        return F.relu(super().forward(x))


class ConvReLU2d(Conv2d):
    """Reference ``Conv2d`` followed by ReLU."""

    def forward(self, x):
        return F.relu(super().forward(x))


class ConvReLU3d(Conv3d):
    """Reference ``Conv3d`` followed by ReLU."""

    def forward(self, x):
        return F.relu(super().forward(x))
