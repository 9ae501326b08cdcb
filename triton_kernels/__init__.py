"""Hand-written Triton kernels and their launchers (no torch, no framework imports).

Each op has ``<op>_kernels.py`` (only ``@triton.jit`` code) and ``<op>.py`` (checks,
allocation through an ``empty(shape, dtype)`` callable or an ``out=`` buffer, grid, launch,
and ``aot_specs(dtype)`` describing what it compiles on a GPU). Buffers follow the protocol
in :mod:`triton_kernels.buffers`; run on the CPU with ``TRITON_INTERPRET=1`` set before import.
"""

from . import attention, copy, cross_entropy, embedding, layer_norm, matmul, optim, softmax, sort
from .buffers import HostBuffer, host_empty, interpreter_enabled

__all__ = [
    "OPS",
    "HostBuffer",
    "host_empty",
    "interpreter_enabled",
    "all_aot_specs",
    "attention",
    "copy",
    "cross_entropy",
    "embedding",
    "layer_norm",
    "matmul",
    "optim",
    "softmax",
    "sort",
]

OPS = {
    "matmul": matmul,
    "softmax": softmax,
    "layer_norm": layer_norm,
    "cross_entropy": cross_entropy,
    "embedding": embedding,
    "copy": copy,
    "sort": sort,
    "optim": optim,
    "attention": attention,
}


def all_aot_specs(dtype="bfloat16") -> list:
    """Every kernel configuration the launchers use on a GPU for ``dtype`` data (AOT gate input)."""
    return [spec for mod in OPS.values() for spec in mod.aot_specs(dtype)]
