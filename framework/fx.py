"""``fw.fx``: PyTorch's ``torch.fx`` names, which fw does not have.

fw captures programs with its own tracer into :class:`compiler.ir.Graph` (printed as
readable Python), not into ``torch.fx`` GraphModules. The names a PyTorch script reaches
for raise :class:`NotImplementedError` saying where the equivalent lives, instead of an
``AttributeError`` on ``fw.fx``.
"""

from __future__ import annotations

__all__ = ["symbolic_trace", "GraphModule", "Graph", "Tracer"]

_WHERE = ("fw has no torch.fx; capture a graph with fw.export.export(model, args) "
          "(ExportedProgram: .graph, .graph_module, .module()) or look at what fw.compile "
          "captured with compiled.graph(*args) / compiled.code(*args)")


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
