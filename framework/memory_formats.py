"""Memory formats (``torch.memory_format``): the order in which a dense tensor's elements lie
in memory, independent of its logical (N, C, H, W) shape.

``channels_last`` keeps the channel dim innermost (NHWC in memory, strides
``(HWC, 1, WC, C)``), ``channels_last_3d`` the same for 5-D (NDHWC). The tensors are real
strided views: ``x.to(memory_format=fw.channels_last)`` is a copy in that order, viewed back
as (N, C, H, W), and ops read it through its strides (values never depend on the format).
``preserve_format`` (the default of ``clone``, ``*_like`` and ``to``) keeps a channels-last
input channels-last; every other input gets the row-major layout.

Ops that make new tensors (conv, pooling, matmul) return row-major results here, where
PyTorch's CPU kernels may return channels-last ones: the values are equal, the strides may
differ.
"""

from __future__ import annotations

from .errors import ArgumentError, ShapeError


class memory_format:  # noqa: N801  (named like torch.memory_format)
    """A memory format (singletons: compare with ``is`` or ``==``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"framework.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")
_FORMATS = {f.name: f for f in (contiguous_format, channels_last, channels_last_3d,
                                preserve_format)}
# memory order of the logical dims, outermost first, for the channels-last formats
_ORDER = {channels_last: (0, 2, 3, 1), channels_last_3d: (0, 2, 3, 4, 1)}


def _by_name(name: str) -> memory_format:
    return _FORMATS[name]


def check(fmt, what: str) -> memory_format:
    """``fmt`` itself when it is a memory format (None means ``preserve_format``), else an
    ArgumentError naming ``what``."""
    if fmt is None:
        return preserve_format
    if not isinstance(fmt, memory_format):
        raise ArgumentError(f"{what}: memory_format must be a framework.memory_format such as "
                            f"framework.channels_last, got {fmt!r}")
    return fmt


def _order(fmt: memory_format, ndim: int, what: str) -> tuple:
    order = _ORDER[fmt]
    if ndim != len(order):
        raise ShapeError(f"{what}: required rank {len(order)} tensor to use {fmt.name} "
                            f"format, got a {ndim}-D tensor")
    return order


def is_dense_in_order(shape, strides, order) -> bool:
    """True when ``strides`` lay ``shape`` out densely with the dims of ``order`` from
    outermost to innermost (dims of size 1 may have any stride, as in PyTorch)."""
    expected = 1
    for d in reversed(order):
        if shape[d] != 1 and strides[d] != expected:
            return False
        expected *= shape[d]
    return True


def is_contiguous_as(t, fmt, what: str = "is_contiguous") -> bool:
    """Whether tensor ``t`` is dense in memory format ``fmt``'s order."""
    fmt = check(fmt, what)
    if fmt is preserve_format:
        raise ArgumentError(f"{what}: preserve_format is not a layout a tensor can be "
                            "contiguous in; use contiguous_format or channels_last")
    order = tuple(range(t.ndim)) if fmt is contiguous_format else _order(fmt, t.ndim, what)
    return is_dense_in_order(t.shape, t.stride(), order)


def suggest(t) -> memory_format:
    """The channels-last format ``t`` is laid out in, else ``contiguous_format``: what
    ``preserve_format`` keeps. A tensor dense in both orders (one channel, or 1x1 planes)
    counts as row-major."""
    for fmt, order in _ORDER.items():
        if t.ndim == len(order) and is_dense_in_order(t.shape, t.stride(), order) and \
                not is_dense_in_order(t.shape, t.stride(), tuple(range(t.ndim))):
            return fmt
    return contiguous_format


def to_format(t, fmt, what: str = "contiguous"):
    """``t`` itself when it is already dense in ``fmt`` (``preserve_format``: in the format
    :func:`suggest` reads from it), else a copy in that order (see :func:`clone_as`)."""
    fmt = check(fmt, what)
    if fmt is preserve_format:
        fmt = suggest(t)
    if is_contiguous_as(t, fmt, what):
        return t
    return clone_as(t, fmt, what)


def clone_as(t, fmt, what: str = "clone"):
    """A copy of ``t`` in memory format ``fmt`` (``preserve_format``: as :func:`suggest`),
    made of the registry's ops (a row-major clone of ``t`` permuted into memory order, viewed
    back), so autograd and ``fw.compile`` record it."""
    from .ops.movement import CLONE, permute
    from .ops.registry import apply
    fmt = check(fmt, what)
    if fmt is preserve_format:
        fmt = suggest(t)
    if fmt is contiguous_format:
        return apply(CLONE, t)
    order = _order(fmt, t.ndim, what)
    inverse = tuple(order.index(d) for d in range(t.ndim))
    return permute(apply(CLONE, permute(t, order)), inverse)
