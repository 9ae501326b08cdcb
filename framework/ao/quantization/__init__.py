"""``framework.ao.quantization`` (PyTorch's ``torch.ao.quantization``, also
``framework.quantization``): observers, fake quantization, qconfigs and the eager-mode
workflow.

Quantization-aware training to an int8 ONNX model::

    model.qconfig = fw.ao.quantization.get_default_qat_qconfig("x86")
    qat = fw.ao.quantization.prepare_qat(model.train())
    ...train qat...
    int8 = fw.ao.quantization.convert(qat.eval())
    fw.onnx.export(int8, example, "model.onnx")   # QuantizeLinear/DequantizeLinear, int8 weights

Quantized values live in plain integer tensors (there are no quantized tensors); see
``quantized_decomposed`` for the integer quantize / dequantize ops.
"""

from __future__ import annotations

from . import quantized_decomposed  # noqa: F401
from .fake_quantize import *  # noqa: F401,F403
from .fake_quantize import __all__ as _fq_all
from .fuse_modules import *  # noqa: F401,F403
from .fuse_modules import __all__ as _fuse_all
from .observer import *  # noqa: F401,F403
from .observer import __all__ as _obs_all
from .qconfig import *  # noqa: F401,F403
from .qconfig import __all__ as _qconfig_all
from .quantization_mappings import *  # noqa: F401,F403
from .quantization_mappings import __all__ as _mappings_all
from .quantize import *  # noqa: F401,F403
from .quantize import __all__ as _quantize_all
from .stubs import *  # noqa: F401,F403
from .stubs import __all__ as _stubs_all
from .utils import QuantizationError  # noqa: F401
from ..qtypes import (per_channel_affine, per_channel_symmetric, per_tensor_affine,  # noqa: F401
                      per_tensor_symmetric, qint8, qint32, quint8)

__all__ = (_fq_all + _fuse_all + _obs_all + _qconfig_all + _mappings_all + _quantize_all
           + _stubs_all + ["QuantizationError", "quantized_decomposed"])
