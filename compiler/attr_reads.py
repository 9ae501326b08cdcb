"""The plain Python attributes that a capture reads (``self.flag``, ``self.eps``,
``self.cfg.temperature``): the graph bakes their values, so a cached graph must check that
they still hold them (an ``if self.flag:`` in ``forward`` took one branch).

While a capture runs, :class:`AttributeReads` routes attribute lookups through a recorder
that notes instance attributes holding a bool, int, float, str or None, or a tensor
(checked by identity: a module's cached mask rebound between calls misses the entry).
It is installed as ``__getattribute__`` of ``nn.Module`` and of the classes of plain
objects the function reaches: those :func:`compiler.capture.reachable` finds through
closures, globals and arguments, and those a recorded lookup returns (a config object
held by a module), for the capture only. Classes with a ``__getattribute__`` of their
own, the framework's own classes (but for lr schedulers, whose ``last_epoch`` and
``get_last_lr()`` a step may read) and containers (optimizers) are left alone. Captures nest
(a ``fw.cond`` branch, ``fw.grad`` inside ``fw.compile``): a read is noted by every open
recorder.
"""

from __future__ import annotations

import types

from framework.nn.modules.module import Module
from framework.optim.lr_scheduler import LRScheduler
from framework.tensor import Tensor

from .capture import _TensorMeta, _Value

_PLAIN = (bool, int, float, str, type(None))
_ACTIVE: list = []  # the open recorders' read tables, innermost last
_PATCHED: list = []  # classes given the recorder (Module first), while any recorder is open
_getattribute = object.__getattribute__
_SKIP_MODULES = ("framework", "compiler", "triton_kernels", "builtins")


def _recording_getattribute(obj, name):
    value = _getattribute(obj, name)
    kind = type(value)
    if kind in _PLAIN:
        if name != "training":  # a module's train/eval mode: in the guards' fingerprint
            _note(obj, name, value)
    elif isinstance(value, Tensor):
        # a plain tensor attribute (a cached mask): the graph reads that very tensor, so
        # rebinding the attribute must miss the entry. Data-less tensors are the trace's
        # own values (set earlier in this trace), not something the graph reads.
        if value._data is not None:
            _note(obj, name, _Same(value))
    elif kind is list and _is_lr_scheduler(obj):
        # get_last_lr(): the list step() rebinds, read by identity (its floats are baked)
        _note(obj, name, _SameList(value))
    elif kind not in _PATCHED and not isinstance(value, Module):
        _patch(kind)  # a plain object read from an attribute: record its reads too
    return value


def _is_lr_scheduler(obj) -> bool:
    return isinstance(obj, LRScheduler)  # an lr scheduler: its reads are guarded too


class _Same:
    """A tensor attribute read: the binding holds while the attribute is that tensor."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj


class _SameList:
    """A list attribute read (an lr scheduler's ``_last_lr``): guarded by identity."""

    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items


def _note(obj, name, value):
    try:
        d = _getattribute(obj, "__dict__")
    except AttributeError:  # __slots__: no dict to guard
        return
    if name in d:
        key = (id(d), name)
        for reads in _ACTIVE:
            if key not in reads:
                reads[key] = (d, name, value)


def _patch(cls) -> None:
    """Give ``cls`` the recorder, when that is safe (see the module docstring)."""
    if cls in _PATCHED or not _ACTIVE:
        return
    if (cls.__module__ or "").startswith(_SKIP_MODULES) and not issubclass(cls, LRScheduler) \
            or hasattr(cls, "param_groups") \
            or issubclass(cls, (type, types.ModuleType, types.FunctionType,
                                types.MethodType, types.BuiltinFunctionType)):
        return
    if any("__getattribute__" in vars(c) for c in cls.__mro__[:-1]):
        return
    try:
        cls.__getattribute__ = _recording_getattribute
    except TypeError:  # a built-in or extension type
        return
    _PATCHED.append(cls)


class AttributeReads:
    """``with AttributeReads(objects):`` records the attributes read inside (of modules,
    of ``objects`` and of plain objects reached through them); :meth:`bindings` gives them
    as guard bindings (``compiler.capture.binding_holds``)."""

    def __init__(self, objects=()):
        self.reads: dict = {}
        self.objects = list(objects)

    def __enter__(self) -> AttributeReads:
        if not _ACTIVE:
            Module.__getattribute__ = _recording_getattribute
            _PATCHED.append(Module)
        _ACTIVE.append(self.reads)
        for obj in self.objects:
            if not isinstance(obj, (Module, Tensor)):
                _patch(type(obj))
        return self

    def __exit__(self, *exc) -> bool:
        _ACTIVE.remove(self.reads)
        if not _ACTIVE:
            for cls in _PATCHED:
                del cls.__getattribute__
            _PATCHED.clear()
        return False

    def bindings(self) -> list:
        """((``"attr"``, dict, name), value) for each attribute read (a tensor as
        itself: checked by identity)."""
        return [(("attr", d, name), value.obj if type(value) is _Same else
                 value.items if type(value) is _SameList else
                 value if type(value) is _TensorMeta else _Value(value))
                for d, name, value in self.reads.values()]
