"""``fw.fx``: PyTorch's ``torch.fx`` names, which fw does not have (``wrap`` aside).

fw captures programs with its own tracer into :class:`compiler.ir.Graph` (printed as
readable Python), not into ``torch.fx`` GraphModules. The names a PyTorch script reaches
for raise :class:`NotImplementedError` saying where the equivalent lives, instead of an
``AttributeError`` on ``fw.fx``.
"""

from __future__ import annotations

__all__ = ["symbolic_trace", "GraphModule", "Graph", "Tracer", "wrap"]

import inspect

from .errors import FwTypeError

_WHERE = ("fw has no torch.fx; capture a graph with fw.export.export(model, args) "
          "(ExportedProgram: .graph, .graph_module, .module()) or look at what fw.compile "
          "captured with compiled.graph(*args) / compiled.code(*args)")


# (the globals of the module that called wrap, the function name) -> True, as torch.fx keeps it
_wrapped_fns = {}


def wrap(fn_or_name):
    """``torch.fx.wrap``: declare a module-level function a leaf for symbolic tracing.

    Called at the top level of a module (as in PyTorch, anywhere else raises
    NotImplementedError) with a function or its name; returns its argument. fw's tracers
    (``fw.compile``, ``fw.export``) trace through Python calls and have no leaf functions,
    so the registration only records the name (``fw.fx._wrapped_fns``).
    """
    if not callable(fn_or_name) and not isinstance(fn_or_name, str):
        raise FwTypeError("fx.wrap: unsupported type for global function! Must be either a "
                          "callable or string name")
    if callable(fn_or_name):
        if not hasattr(fn_or_name, "__code__"):
            raise FwTypeError("fx.wrap: expected a Python function (with __code__), got "
                              f"{type(fn_or_name).__name__}")
        fn_name = fn_or_name.__code__.co_name
    else:
        fn_name = fn_or_name
    caller = inspect.currentframe().f_back
    try:
        if caller.f_code.co_name != "<module>":
            raise NotImplementedError("wrap must be called at the top level of a module")
        _wrapped_fns[(id(caller.f_globals), fn_name)] = True
    finally:
        del caller
    return fn_or_name


def symbolic_trace(root, concrete_args=None):
    """``torch.fx.symbolic_trace``: not available (see the module docstring)."""
    raise NotImplementedError(f"fw.fx.symbolic_trace: {_WHERE}")


class _Missing:
    """A torch.fx class that fw does not provide: constructing it raises."""

    _name = "?"

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"fw.fx.{self._name}: {_WHERE}")


class GraphModule(_Missing):
    """``torch.fx.GraphModule``: not available."""

    _name = "GraphModule"


class Graph(_Missing):
    """``torch.fx.Graph``: not available."""

    _name = "Graph"


class Tracer(_Missing):
    """``torch.fx.Tracer``: not available."""

    _name = "Tracer"
