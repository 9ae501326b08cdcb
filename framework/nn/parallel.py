"""``fw.nn.parallel``: PyTorch's single-process data parallelism, on the one GPU this
framework drives per process.

``data_parallel(module, inputs, device_ids)`` and ``DataParallel(module)`` follow
``torch.nn.parallel``: without an accelerator they just call the module; with one device
they move the inputs to it and call the module (which must live there, as PyTorch checks).
Replicating a module over several GPUs is refused with ``NotImplementedError``.
``DistributedDataParallel`` needs a process group, which this framework cannot create, so
constructing one raises what PyTorch raises before ``init_process_group``.
"""

from __future__ import annotations

import itertools

from .. import accelerator
from ..device import device as _device
from ..errors import DeviceError, DistributedError
from ..tensor import Tensor
from .modules import Module

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]


def _device_index(d) -> int:
    if isinstance(d, int):
        return d
    dev = _device(d)
    return dev.index if dev.index is not None else accelerator.current_device_index()


def _device_ids(device_ids, where: str) -> list:
    """Indices of the devices to use: all visible accelerators when None; refused when more
    than one distinct device is named."""
    if device_ids is None:
        device_ids = range(accelerator.device_count())
    ids = [_device_index(d) for d in device_ids]
    if len(set(ids)) > 1:
        raise NotImplementedError(
            f"{where}: replicating a module over devices {ids} is not supported (this "
            "framework drives one GPU per process); pass device_ids=[0]")
    return ids


def _check_module_device(module, dev, where: str) -> None:
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.device != dev:
            raise DeviceError(f"{where}: module must have its parameters and buffers on "
                              f"device {dev} (device_ids[0]) but found one of them on device: "
                              f"{t.device}")


def _to(obj, dev):
    """Tensors inside nested tuples/lists/dicts moved to ``dev`` (differentiably)."""
    if isinstance(obj, Tensor):
        return obj.to(dev)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_to(o, dev) for o in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, dev) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, dev) for k, v in obj.items()}
    return obj


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0,
                  module_kwargs=None):
    """``torch.nn.parallel.data_parallel``: evaluate ``module(*inputs)`` on ``device_ids``.

    With one device the inputs are moved there and the module (already on that device) is
    called; ``output_device`` and ``dim`` only matter when splitting over several devices,
    which is refused."""
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    module_kwargs = module_kwargs or {}
    if not accelerator.is_available():
        raise DeviceError("nn.parallel.data_parallel: device type could not be determined "
                          "(no accelerator is available)")
    ids = _device_ids(device_ids, "nn.parallel.data_parallel")
    if not ids:
        raise DeviceError("nn.parallel.data_parallel: no available devices were found")
    dev = _device("cuda", ids[0])
    _check_module_device(module, dev, "nn.parallel.data_parallel")
    return module(*_to(inputs, dev), **_to(module_kwargs, dev))


class DataParallel(Module):
    """``torch.nn.DataParallel``: wraps ``module`` (as ``self.module``, so state_dict keys
    start with ``module.``) and runs it on ``device_ids[0]``; without an accelerator the
    wrapper simply calls the module."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        self.module = module
        self.dim = dim
        if not accelerator.is_available():
            self.device_ids, self.output_device = [], None
            return
        self.device_ids = _device_ids(device_ids, "nn.DataParallel")
        self.output_device = _device_index(output_device if output_device is not None
                                           else self.device_ids[0])

    def forward(self, *inputs, **kwargs):
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        dev = _device("cuda", self.device_ids[0])
        _check_module_device(self.module, dev, "nn.DataParallel")
        return self.module(*_to(inputs, dev), **_to(kwargs, dev))


class DistributedDataParallel(Module):
    """``torch.nn.parallel.DistributedDataParallel``: needs an initialized process group,
    which this framework has no runtime for, so construction raises as PyTorch does
    before ``init_process_group``."""

    def __init__(self, module, *args, **kwargs):
        super().__init__()
        from ..distributed import _NOT_INITIALIZED
        raise DistributedError(f"nn.parallel.DistributedDataParallel: {_NOT_INITIALIZED}")
