"""``QConfig`` (how to observe a module's activations and weights) and PyTorch's default
configurations (``torch.ao.quantization.qconfig``): static, QAT and dynamic ones."""

from __future__ import annotations

from collections import namedtuple

from ...nn.modules.module import Module
from .fake_quantize import (FakeQuantize, FusedMovingAvgObsFakeQuantize, default_fake_quant,
                            default_fused_act_fake_quant, default_fused_per_channel_wt_fake_quant,
                            default_fused_wt_fake_quant, default_per_channel_weight_fake_quant,
                            default_weight_fake_quant)
from ... import dtypes
from .observer import (MovingAverageMinMaxObserver, PlaceholderObserver,
                       default_dynamic_quant_observer, default_float_qparams_observer,
                       default_observer, default_per_channel_weight_observer,
                       default_placeholder_observer, default_weight_observer)
from .utils import QuantizationError

__all__ = ["QConfig", "default_qconfig", "default_per_channel_qconfig",
           "default_qat_qconfig", "default_qat_qconfig_v2", "get_default_qat_qconfig",
           "default_dynamic_qconfig", "per_channel_dynamic_qconfig", "float16_dynamic_qconfig",
           "float16_static_qconfig", "float_qparams_weight_only_qconfig"]


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    """Observer (or fake quantize) *constructors* for a module's output activation and
    weight: classes or ``X.with_args(...)`` factories, never instances, so each module
    gets its own."""

    __slots__ = ()

    def __new__(cls, activation, weight):
        if isinstance(activation, Module) or isinstance(weight, Module):
            raise QuantizationError("QConfig received observer instance, please pass "
                                    "observer class instead. Use MyObserver.with_args(x=1) "
                                    "to override arguments to constructor if needed")
        return super().__new__(cls, activation, weight)


default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
default_per_channel_qconfig = QConfig(activation=default_observer,
                                      weight=default_per_channel_weight_observer)
# dynamic quantization (quantize_dynamic): activations quantized per call, weights ahead
default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                  weight=default_weight_observer)
per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                      weight=default_per_channel_weight_observer)
float16_dynamic_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=dtypes.float16, is_dynamic=True),
    weight=PlaceholderObserver.with_args(dtype=dtypes.float16))
float16_static_qconfig = QConfig(activation=PlaceholderObserver.with_args(dtype=dtypes.float16),
                                 weight=PlaceholderObserver.with_args(dtype=dtypes.float16))
float_qparams_weight_only_qconfig = QConfig(activation=default_placeholder_observer,
                                            weight=default_float_qparams_observer)
default_qat_qconfig = QConfig(activation=default_fake_quant, weight=default_weight_fake_quant)
default_qat_qconfig_v2 = QConfig(activation=default_fused_act_fake_quant,
                                 weight=default_fused_wt_fake_quant)

_BACKENDS = ["fbgemm", "x86", "qnnpack", "onednn"]


def get_default_qat_qconfig(backend: str = "x86", version: int = 1) -> QConfig:
    """PyTorch's default QAT qconfig for ``backend`` (``"x86"``, ``"fbgemm"``, ``"qnnpack"``,
    ``"onednn"``). Version 1 (the default) uses the fused observer + fake quantize modules,
    version 0 ``FakeQuantize``. x86/fbgemm reduce the activation range to 7 bits and
    quantize weights per channel; qnnpack keeps 8-bit activations and per-tensor weights."""
    if backend not in _BACKENDS:
        raise QuantizationError(f"backend: {backend} not supported. backend must be one of "
                                f"{_BACKENDS}")
    if version not in (0, 1):
        raise QuantizationError(f"Version number: {version} in get_default_qat_qconfig is "
                                "not supported. Version number must be 0 or 1")
    act_cls, per_channel_wt, per_tensor_wt = (
        (FakeQuantize, default_per_channel_weight_fake_quant, default_weight_fake_quant)
        if version == 0 else
        (FusedMovingAvgObsFakeQuantize, default_fused_per_channel_wt_fake_quant,
         default_fused_wt_fake_quant))
    act_kwargs = {"observer": MovingAverageMinMaxObserver, "quant_min": 0, "quant_max": 255}
    if backend in ("x86", "fbgemm"):
        act_kwargs["reduce_range"] = True
    elif backend == "qnnpack":
        act_kwargs["reduce_range"] = False
    weight = per_tensor_wt if backend == "qnnpack" else per_channel_wt
    return QConfig(activation=act_cls.with_args(**act_kwargs), weight=weight)
