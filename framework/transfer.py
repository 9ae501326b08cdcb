"""Moving tensors between devices: the differentiable ``to_device`` op.

Its implementation is looked up by the *target* device's backend, which knows how to
take a buffer from any other device (the CPU backend receives device buffers, the CUDA
backend host arrays).
"""

from __future__ import annotations

from .backends import get_backend
from .device import to_device
from .ops.registry import TRANSFER, apply, register
from .tensor import Tensor


def _transfer_meta(x, *, device):
    return x.shape, x.dtype


def _transfer_vjp(g, args, out, device):
    return (transfer(g, args[0].device),)


TO_DEVICE = register("to_device", TRANSFER, _transfer_meta, vjp=_transfer_vjp,
                     complex_ok=True)  # complex to "cuda" is refused by apply


def transfer(x: Tensor, device) -> Tensor:
    """``x`` copied to ``device`` (differentiable)."""
    dev = to_device(device)
    if dev is x.device:
        return x
    if dev.type != "meta":
        get_backend(dev)  # loads the backend and installs its kernels (or says what's missing)
    return apply(TO_DEVICE, x, device=dev)
