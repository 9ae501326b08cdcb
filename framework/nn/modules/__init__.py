"""Every layer class. The core layers are imported directly; the convolution, pooling,
resampling, recurrent and attention layers (maintained alongside) are picked up from their
modules when present."""

from __future__ import annotations

import importlib
import importlib.util

from .activation import (CELU, ELU, GELU, GLU, SELU, Hardshrink, Hardsigmoid,  # noqa: F401
                         Hardswish, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, Mish, PReLU,
                         ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softmin, Softplus, Softshrink,
                         Softsign, Tanh, Tanhshrink, Threshold)
from .container import (ModuleDict, ModuleList, ParameterDict, ParameterList,  # noqa: F401
                        Sequential)
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d  # noqa: F401
from .flatten import Flatten, Unflatten  # noqa: F401
from .linear import Bilinear, Identity, Linear  # noqa: F401
from .loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss,  # noqa: F401
                   CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss, MSELoss,
                   NLLLoss, SmoothL1Loss, SoftMarginLoss, TripletMarginLoss)
from .module import Module, RemovableHandle, StateDictError  # noqa: F401
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm,  # noqa: F401
                            InstanceNorm1d, InstanceNorm2d, LayerNorm, LocalResponseNorm,
                            RMSNorm)
from .sparse import Embedding  # noqa: F401

_OPTIONAL = ("conv", "pooling", "upsampling", "fold", "padding", "rnn", "attention",
             "transformer", "pixelshuffle", "channelshuffle")


def _public_modules(mod):
    names = getattr(mod, "__all__", None)
    if names is not None:
        return names
    return [n for n, v in vars(mod).items()
            if not n.startswith("_") and isinstance(v, type) and issubclass(v, Module)
            and v.__module__ == mod.__name__]


for _name in _OPTIONAL:
    _full = f"{__name__}.{_name}"
    if importlib.util.find_spec(_full) is not None:
        _mod = importlib.import_module(_full)
        for _n in _public_modules(_mod):
            globals().setdefault(_n, getattr(_mod, _n))

__all__ = sorted(n for n, v in globals().items()
                 if isinstance(v, type) and issubclass(v, Module)) + ["RemovableHandle",
                                                                      "StateDictError"]
