"""``torch.nn.modules.utils``: the argument-normalising helpers custom layers import
(``_pair(3) == (3, 3)``)."""

from __future__ import annotations

import collections.abc
from itertools import repeat


def _ntuple(n: int, name: str = "parse"):
    """A function turning a scalar into an ``n``-tuple of it (an iterable passes through as
    a tuple)."""
    def parse(x):
        if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
            return tuple(x)
        return tuple(repeat(x, n))
    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t, n: int) -> tuple:
    """Reverse ``t`` and repeat each element ``n`` times (``F.pad`` order from conv padding:
    ``(1, 2) -> (2, 2, 1, 1)`` for n=2)."""
    return tuple(x for x in reversed(t) for _ in range(n))
