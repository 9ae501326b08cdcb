"""``fw.device``: where a tensor's data lives ("cpu", "cuda[:n]", or "meta" for no data)."""

from __future__ import annotations

from .errors import DeviceError

_KNOWN_TYPES = ("cpu", "cuda", "meta")
_CACHE: dict[tuple[str, int | None], device] = {}


class device:  # noqa: N801  (named like torch.device)
    """A device type plus index; instances are interned, so ``is`` compares them."""

    __slots__ = ("type", "index")

    def __new__(cls, spec="cpu", index: int | None = None):
        if isinstance(spec, device):
            return spec
        if not isinstance(spec, str):
            raise DeviceError(f"device: expected a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if idx:
            if index is not None:
                raise DeviceError(f"device: index given twice in {spec!r} and index={index}")
            if not idx.isdigit():
                raise DeviceError(f"device: bad index in {spec!r}")
            index = int(idx)
        if kind not in _KNOWN_TYPES:
            raise DeviceError(f"device: unknown device type {kind!r}; expected one of "
                              f"{_KNOWN_TYPES}")
        key = (kind, index)
        dev = _CACHE.get(key)
        if dev is None:
            dev = object.__new__(cls)
            object.__setattr__(dev, "type", kind)
            object.__setattr__(dev, "index", index)
            _CACHE[key] = dev
        return dev

    def __setattr__(self, name, value):
        raise AttributeError("device is immutable")

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return self is other

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (str(self),))

    def __enter__(self):
        """``with fw.device("meta"):``: factory calls without ``device=`` place their
        tensors here until the block ends (as ``torch.device`` used as a context)."""
        _DEFAULT_STACK.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _DEFAULT_STACK.pop()


cpu = device("cpu")
meta = device("meta")
_DEFAULT_STACK: list[device] = [cpu]  # bottom: set_default_device; above: with-blocks


def set_default_device(spec) -> None:
    """Where factory calls without ``device=`` place tensors (None: back to the cpu)."""
    _DEFAULT_STACK[0] = cpu if spec is None else device(spec)


def get_default_device() -> device:
    """The device factory calls without ``device=`` use now."""
    return to_device(_DEFAULT_STACK[-1])


def to_device(spec) -> device:
    """The device a tensor placed on ``spec`` (a device, string, index or None -> the default
    device, see :func:`set_default_device`) lives
    on: as in PyTorch, ``"cuda"`` means the current CUDA device (``cuda:0``), while
    ``fw.device("cuda")`` itself has no index; ``"cpu:0"`` is ``cpu``."""
    if spec is None:
        spec = _DEFAULT_STACK[-1]
    if isinstance(spec, int):
        return device("cuda", spec)
    dev = device(spec)
    if dev.type == "cuda" and dev.index is None:
        return device("cuda", 0)  # one GPU per process: the current device is always 0
    if dev.index is not None and dev.type == "cpu":
        return cpu
    return dev
