"""``nn.qat``: quantization-aware-training versions of ``Linear`` and ``Conv1d/2d/3d``
(PyTorch's ``torch.ao.nn.qat``, also ``torch.nn.qat``): the float layer with a weight fake
quantize module from its ``qconfig`` applied to the weight in every forward.
``prepare_qat`` swaps them in with :meth:`from_float`."""

from __future__ import annotations

from .modules import Conv1d, Conv2d, Conv3d, Linear  # noqa: F401

__all__ = ["Linear", "Conv1d", "Conv2d", "Conv3d"]
