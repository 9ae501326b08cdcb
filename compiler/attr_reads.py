"""The plain Python attributes of modules that a capture reads (``self.flag``,
``self.eps``, ``self.training``): the graph bakes their values, so a cached graph must
check that they still hold them (an ``if self.flag:`` in ``forward`` took one branch).

While a capture runs, :class:`AttributeReads` routes every attribute lookup on an
``nn.Module`` through a recorder (``Module.__getattribute__``, installed for the capture
only) that notes instance attributes holding a bool, int, float, str or None. Captures
nest (a ``fw.cond`` branch, ``fw.grad`` inside ``fw.compile``): a read is noted by every
open recorder.
"""

from __future__ import annotations

from framework.nn.modules.module import Module

from .capture import _Value

_PLAIN = (bool, int, float, str, type(None))
_ACTIVE: list = []  # the open recorders' read tables, innermost last
_getattribute = object.__getattribute__


def _recording_getattribute(obj, name):
    value = _getattribute(obj, name)
    if type(value) in _PLAIN and name != "training":  # train/eval: the guards' fingerprint
        d = _getattribute(obj, "__dict__")
        if name in d:
            key = (id(d), name)
            for reads in _ACTIVE:
                if key not in reads:
                    reads[key] = (d, name, value)
    return value


class AttributeReads:
    """``with AttributeReads() as reads:`` records the module attributes read inside;
    :meth:`bindings` gives them as guard bindings (``compiler.capture.binding_holds``)."""

    def __init__(self):
        self.reads: dict = {}

    def __enter__(self) -> AttributeReads:
        if not _ACTIVE:
            Module.__getattribute__ = _recording_getattribute
        _ACTIVE.append(self.reads)
        return self

    def __exit__(self, *exc) -> bool:
        _ACTIVE.remove(self.reads)
        if not _ACTIVE:
            del Module.__getattribute__
        return False

    def bindings(self) -> list:
        """((``"attr"``, dict, name), value) for each attribute read."""
        return [(("attr", d, name), _Value(value)) for d, name, value in self.reads.values()]
