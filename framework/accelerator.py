"""``fw.accelerator``: the device-agnostic accelerator API of ``torch.accelerator``.

The one accelerator this framework is built for is "cuda" (a real GPU, or the simulated
device under ``FW_TRITON_INTERPRET=1``), so every function delegates to :mod:`fw.cuda`.
Scripts written as ``device = torch.accelerator.current_accelerator() if
torch.accelerator.is_available() else torch.device("cpu")`` run unchanged.
"""

from __future__ import annotations

from .device import device as _device
from .errors import ArgumentError

__all__ = ["current_accelerator", "current_device_idx", "current_device_index",
           "current_stream", "device_count", "device_index", "is_available",
           "set_device_idx", "set_device_index", "set_stream", "synchronize"]


def _cuda():
    from . import cuda
    return cuda


def device_count() -> int:
    """Number of accelerator devices visible (0 when there is none)."""
    return _cuda().device_count() if is_available() else 0


def is_available() -> bool:
    """True when an accelerator can be used now (drivers present, a device visible)."""
    return _cuda().is_available()


def current_accelerator(check_available: bool = False):
    """The accelerator's device type as an ``fw.device`` ("cuda": the framework is built for
    it). With ``check_available=True``, None when no accelerator is usable right now."""
    if check_available and not is_available():
        return None
    return _device("cuda")


def current_device_index() -> int:
    """Index of the accelerator device in use."""
    return _cuda().current_device()


current_device_idx = current_device_index  # torch's deprecated spelling


def _index(dev) -> int:
    if isinstance(dev, int):
        return dev
    d = _device(dev)
    if d.type != "cuda":
        raise ArgumentError(f"accelerator: expected an accelerator device (cuda), got {dev!r}")
    return d.index if d.index is not None else current_device_index()


def set_device_index(device, /) -> None:
    """Select the accelerator device by index (or "cuda:N" / ``fw.device``). The runtime
    drives one device per process, so only the current device can be selected."""
    idx = _index(device)
    n = device_count()
    if not 0 <= idx < max(n, 1):
        raise ArgumentError(f"accelerator.set_device_index: device index {idx} out of range "
                            f"(device_count() = {n})")
    if idx != current_device_index():
        raise NotImplementedError(f"accelerator.set_device_index: the runtime uses device "
                                  f"{current_device_index()} per process; switching to device "
                                  f"{idx} is not supported")


set_device_idx = set_device_index  # torch's deprecated spelling


class device_index:  # noqa: N801  (named like torch.accelerator.device_index)
    """Context manager selecting the accelerator device; None is a no-op."""

    def __init__(self, device, /):
        self.device = device

    def __enter__(self):
        if self.device is not None:
            set_device_index(self.device)
        return self

    def __exit__(self, *exc):
        return False


def current_stream(device=None, /):
    """The stream the accelerator queues work on."""
    return _cuda().current_stream(device)


def set_stream(stream) -> None:
    """Make ``stream`` current. Only the runtime's one stream is accepted (see
    ``fw.cuda.stream``); another raises NotImplementedError."""
    _cuda().stream(stream)


def synchronize(device=None, /) -> None:
    """Wait for all queued work on the accelerator to finish."""
    _cuda().synchronize(device)
