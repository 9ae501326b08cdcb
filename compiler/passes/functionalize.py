"""Functionalization of in-place updates.

While tracing, :class:`Functionalizer` keeps, for every tensor, the Value that currently
holds its contents. An in-place write rebinds the written tensor to the new Value; a write
through a view (``x[0].add_(1)``, ``w.t().mul_(2)``, ``p.detach().zero_()``) is turned into
a functional update of its base (an inverse reshape/permute, or an ``index_put`` of a
slice), and every other view of that storage is re-derived from the new base the next time
it is read. Writes that reach a tensor from outside the trace (a parameter, an input, an
optimizer buffer) are recorded as graph mutations, written back after each call.

``run(graph)`` is the pass over a finished graph: it drops write-backs that write a value
onto itself and keeps only the last write per target.
"""

from __future__ import annotations

from framework.ops.registry import OPS

from ..ir import Graph


class _Info:
    __slots__ = ("value", "gen", "src", "external")

    def __init__(self, value, gen, src, external=None):
        self.value, self.gen, self.src, self.external = value, gen, src, external


class Functionalizer:
    """Tensor -> current Value bookkeeping for a tracer (see the module docstring)."""

    def __init__(self, tracer):
        self.tracer = tracer
        self.graph = tracer.graph
        self.info: dict[int, _Info] = {}
        self.gens: dict[int, int] = {}       # id(storage) -> generation
        self.mutated: dict = {}              # external Value -> latest Value
        self.keep: list = []

    def _gen(self, t) -> int:
        return self.gens.get(id(t._storage), 0)

    def define(self, t, value, src) -> None:
        """``t`` now holds ``value``; ``src`` = (base tensor, view op, attrs) for views."""
        self.info[id(t)] = _Info(value, self._gen(t), src)
        self.keep.append(t._storage)

    def define_external(self, t, value) -> None:
        """``t`` is an external tensor read through ``value``."""
        self.info[id(t)] = _Info(value, self._gen(t), None, value)
        self.keep.append(t._storage)

    def current(self, t):
        """The Value holding ``t``'s contents now, or None for an unseen tensor."""
        inf = self.info.get(id(t))
        if inf is None:
            return None
        if inf.src is not None and inf.gen != self._gen(t):
            base, op, attrs = inf.src
            bv = self.current(base)
            if bv is None:
                bv = self.tracer.value_of(base)
            inf.value = bv if op is None else self.graph.add_node(op, (bv,), attrs).outputs[0]
            inf.gen = self._gen(t)
        return inf.value

    def write(self, t, value) -> None:
        """In-place write of ``value`` into tensor ``t``."""
        inf = self.info.get(id(t))
        if inf is None:
            self.tracer.value_of(t)  # registers t as an external
            inf = self.info[id(t)]
        if inf.src is not None:
            base, op, attrs = inf.src
            bv = self.current(base)
            self.write(base, self._unview(bv, op, attrs, value))
        else:
            self.gens[id(t._storage)] = self._gen(t) + 1
            if inf.external is not None:
                self.mutated[inf.external] = value
        inf.value, inf.gen = value, self._gen(t)

    def _unview(self, base, op, attrs, value):
        """The new base after writing ``value`` into the view ``op(base, **attrs)``."""
        g = self.graph
        if op is None or op.name == "detach":
            return value
        if op.name == "reshape":
            return g.add_node(op, (value,), {"shape": base.shape}).outputs[0]
        if op.name == "permute":
            dims = attrs["dims"]
            inv = [0] * len(dims)
            for i, d in enumerate(dims):
                inv[d] = i
            return g.add_node(op, (value,), {"dims": tuple(inv)}).outputs[0]
        if op.name == "slice":
            key = tuple(slice(a, b, c) for a, b, c in zip(attrs["starts"], attrs["stops"],
                                                         attrs["steps"]))
            return g.add_node(OPS["index_put"], (base, value),
                              {"key": key, "accumulate": False}).outputs[0]
        raise NotImplementedError(f"functionalize: an in-place write through a {op.name!r} view "
                                  "is not supported; clone() the view first")

    def mutations(self):
        """(external Value, final Value) for every external written during the trace."""
        return [(t, v) for t, v in self.mutated.items() if v is not t]


def run(graph: Graph) -> Graph:
    """Drop no-op write-backs and keep the last write per target (a new Graph)."""
    from . import clone_graph
    g, vmap = clone_graph(graph)
    last = {}
    for t, v in graph.mutations:
        last[t] = v
    g.mutations = [(vmap[t], vmap[v]) for t, v in last.items() if v is not t]
    g.passes.append("functionalize")
    return g
