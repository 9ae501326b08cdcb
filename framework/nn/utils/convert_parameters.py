"""Flatten parameters into one vector and back."""

from __future__ import annotations

from ... import ops
from ...autograd import no_grad
from ...errors import DeviceError, ShapeError
from ...tensor import Tensor


def _check_same_device(param, device):
    if device is not None and param.device is not device:
        raise DeviceError(f"Found two parameters on different devices, {device} and "
                          f"{param.device}; this is currently not supported")
    return param.device


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable)."""
    if isinstance(parameters, Tensor):
        raise TypeError("expected an iterable of Tensors, got a Tensor")
    device = None
    vec = []
    for p in parameters:
        device = _check_same_device(p, device)
        vec.append(p.reshape(-1))
    return ops.cat(vec)


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (in order)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, but got: {type(vec).__name__}")
    if vec.ndim != 1:
        raise ShapeError(f"vector_to_parameters: vec must be 1-D, got shape {list(vec.shape)}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if total != vec.shape[0]:
        raise ShapeError(f"vector_to_parameters: vec has {vec.shape[0]} elements but the "
                         f"parameters hold {total}")
    pointer = 0
    device = None
    with no_grad():
        for p in params:
            device = _check_same_device(p, device)
            n = p.numel()
            p.copy_(vec[pointer:pointer + n].reshape(p.shape))
            pointer += n
