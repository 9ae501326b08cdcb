"""``framework.nn``: modules, parameters, ``functional``, ``init`` and ``utils``, with
PyTorch's names, constructor arguments, ``state_dict`` keys and default initialization."""

from __future__ import annotations

from . import functional, init, utils  # noqa: F401
from . import qat  # noqa: F401  (QAT layers for framework.ao.quantization.prepare_qat)
from .modules import *  # noqa: F401,F403
from .modules import Module  # noqa: F401
from .parameter import Buffer, Parameter  # noqa: F401
from .parameter import UninitializedBuffer, UninitializedParameter  # noqa: F401
