"""Observers of the dispatch path: several at once in the one slot :func:`registry.apply`
checks.

An observer has ``op_begin(op, args, attrs) -> event`` (called once the meta rule accepted
the call) and ``op_end(event)`` (called after the outputs exist). ``fw.profiler.profile``
and ``fw.utils.flop_counter.FlopCounterMode`` are observers, and both may be open at once:
:func:`add` puts a second one behind a small chain object, so ``apply`` still pays one
global ``is None`` check when none is open.
"""

from __future__ import annotations

from ..errors import ArgumentError
from . import registry

_hooks: list = []  # the open observers, first opened first


class _Chain:
    """Several observers in one slot: begins in opening order, ends in reverse."""

    __slots__ = ("hooks",)

    def __init__(self, hooks):
        self.hooks = hooks

    def op_begin(self, op, args, attrs):
        """Every observer's event, in a tuple."""
        return tuple(h.op_begin(op, args, attrs) for h in self.hooks)

    def op_end(self, events) -> None:
        """Close each observer's event, the last opened first."""
        for h, ev in zip(reversed(self.hooks), reversed(events)):
            h.op_end(ev)


def _install() -> None:
    n = len(_hooks)
    registry._profile_hook = None if n == 0 else _hooks[0] if n == 1 else _Chain(tuple(_hooks))


def add(hook) -> None:
    """Start calling ``hook.op_begin`` / ``hook.op_end`` for every dispatched op."""
    if any(h is hook for h in _hooks):
        raise ArgumentError(f"{type(hook).__name__}: this observer is already open")
    _hooks.append(hook)
    _install()


def remove(hook) -> None:
    """Stop calling ``hook`` (no-op when it is not open), whatever the order of closing."""
    _hooks[:] = [h for h in _hooks if h is not hook]
    _install()


def active() -> tuple:
    """The open observers."""
    return tuple(_hooks)
