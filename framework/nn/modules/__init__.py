"""Every layer class. The core layers are imported directly; the convolution, pooling,
resampling, recurrent and attention layers (maintained alongside) are picked up from their
modules when present."""

from __future__ import annotations

import importlib
import pkgutil

from .activation import (CELU, ELU, GELU, GLU, SELU, Hardshrink, Hardsigmoid,  # noqa: F401
                         Hardswish, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, Mish, PReLU,
                         ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softmin, Softplus, Softshrink,
                         Softsign, Tanh, Tanhshrink, Threshold)
from .container import (ModuleDict, ModuleList, ParameterDict, ParameterList,  # noqa: F401
                        Sequential)
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d  # noqa: F401
from .flatten import Flatten, Unflatten  # noqa: F401
from .linear import Bilinear, Identity, Linear  # noqa: F401
from .loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CTCLoss,  # noqa: F401
                   CrossEntropyLoss, GaussianNLLLoss, HingeEmbeddingLoss, HuberLoss, KLDivLoss,
                   L1Loss, MarginRankingLoss, MSELoss, MultiLabelSoftMarginLoss,
                   MultiMarginLoss, NLLLoss, PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss,
                   TripletMarginLoss)
from .module import Module, RemovableHandle, StateDictError  # noqa: F401
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm,  # noqa: F401
                            InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm,
                            LocalResponseNorm, RMSNorm, SyncBatchNorm)
from .sparse import Embedding, EmbeddingBag  # noqa: F401

_CORE = {"activation", "container", "dropout", "flatten", "linear", "loss", "module",
         "normalization", "sparse"}


def _public_modules(mod):
    names = getattr(mod, "__all__", None)
    if names is not None:
        return names
    return [n for n, v in vars(mod).items()
            if not n.startswith("_") and isinstance(v, type) and issubclass(v, Module)
            and v.__module__ == mod.__name__]


# The other layer files (conv, pooling, rnn, attention, transformer, ...) are discovered,
# so a new file is exported without editing this one.
for _info in pkgutil.iter_modules(__path__):
    if _info.name in _CORE or _info.name.startswith("_"):
        continue
    _mod = importlib.import_module(f"{__name__}.{_info.name}")
    for _n in _public_modules(_mod):
        globals().setdefault(_n, getattr(_mod, _n))

__all__ = sorted(n for n, v in globals().items()
                 if isinstance(v, type) and issubclass(v, Module)) + ["RemovableHandle",
                                                                      "StateDictError"]
