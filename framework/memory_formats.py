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


def is_contiguous_as(t, fmt, what: str = "is_contiguous", rank_error: bool = True) -> bool:
    """Whether tensor ``t`` is dense in memory format ``fmt``'s order. A rank that the
    format does not fit is a ShapeError, or False with ``rank_error=False`` (what
    ``Tensor.is_contiguous`` answers, as PyTorch's)."""
    fmt = check(fmt, what)
    if fmt is preserve_format:
        raise ArgumentError(f"{what}: preserve_format is not a layout a tensor can be "
                            "contiguous in; use contiguous_format or channels_last")
    if not rank_error and fmt in _ORDER and t.ndim != len(_ORDER[fmt]):
        return False
    order = tuple(range(t.ndim)) if fmt is contiguous_format else _order(fmt, t.ndim, what)
    return is_dense_in_order(t.shape, t.stride(), order)


def _strides_like(shape, strides, order) -> bool:
    """PyTorch's ``is_channels_last_strides_2d`` / ``_3d``: the strides never decrease from
    the innermost dim of ``order`` outwards (gaps allowed). Ambiguous layouts fall back to
    row-major: a zero channel stride, and an ``N111``-like tensor whose batch stride equals
    its channel stride. Symbolic sizes (a dynamic capture) count as row-major: the layout
    changes no value, and the comparisons would need the sizes."""
    if not all(type(v) is int for v in (*shape, *strides)) or strides[1] == 0:
        return False
    lowest = 0
    for d in reversed(order):
        if shape[d] == 0 or strides[d] < lowest:
            return False
        if d == 0 and lowest == strides[1]:
            return False
        lowest = strides[d] * (shape[d] if shape[d] > 1 else 1)
    return True


def suggest(t) -> memory_format:
    """The channels-last format ``t``'s strides are ordered like, else
    ``contiguous_format``: what ``preserve_format`` keeps (PyTorch's
    ``suggest_memory_format``). A row-major tensor with one channel or 1x1 planes counts as
    row-major; the same shape restrided by ``to(memory_format=fw.channels_last)`` counts as
    channels-last."""
    for fmt, order in _ORDER.items():
        if t.ndim == len(order) and _strides_like(t.shape, t.stride(), order):
            return fmt
    return contiguous_format


def restride(t, fmt, what: str = "to"):
    """``t`` laid out as PyTorch lays out a new tensor in ``fmt``: for a channels-last
    format, ``t`` itself only when :func:`suggest` already reads ``fmt`` from it, so the
    ambiguous shapes (``N1HW``, ``NC11``) get channels-last strides on their size-1 dims
    too (``to(memory_format=)``, ``empty(memory_format=)``, ``*_like``); else as
    :func:`to_format`."""
    fmt = check(fmt, what)
    if fmt in _ORDER and t.ndim == len(_ORDER[fmt]) and suggest(t) is not fmt:
        return clone_as(t, fmt, what)
    return to_format(t, fmt, what)


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
