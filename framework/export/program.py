"""``ExportedProgram``: an exported forward as a verified graph plus its state.

``graph`` is the captured IR Graph; ``graph_signature`` says which graph inputs are
parameters, buffers, lifted constants and user inputs, and which outputs are written back
into buffers; ``state_dict`` holds the parameters and persistent buffers (the module's own
tensors, shared as PyTorch does), ``constants`` the non-persistent buffers and captured
tensor constants; ``range_constraints`` maps each dynamic dim's symbol to its range.
``module()`` gives an ``nn.Module`` that runs the graph (see :mod:`.unlifted`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from compiler.ir import ident
from compiler.capture import map_tree

from ..errors import ArgumentError, FwTypeError
from .signature import (ConstantArgument, ExportGraphSignature, InputKind, InputSpec,
                        OutputKind, OutputSpec, TensorArgument)


class ValueRange(NamedTuple):
    """The inclusive range of a dynamic dim (``upper`` may be ``math.inf``)."""

    lower: int
    upper: float

    def __repr__(self) -> str:
        hi = "int_oo" if self.upper == math.inf else self.upper
        return f"VR[{self.lower}, {hi}]"


class InSlot:
    """In a call spec: the ``i``-th tensor input of the graph."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i

    def __repr__(self) -> str:
        return f"InSlot({self.i})"


class OutSlot:
    """In an output spec: the ``i``-th graph output."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i

    def __repr__(self) -> str:
        return f"OutSlot({self.i})"


class StateEntry(NamedTuple):
    """Where an external of the graph lives: its kind, target name and persistence."""

    kind: InputKind
    target: str
    persistent: bool | None = None


class CallSpec(NamedTuple):
    """How ``forward`` is called: positional argument names, keyword names, the
    (args, kwargs) structure with :class:`InSlot` leaves and constant leaves, the output
    structure with :class:`OutSlot` leaves, and a label per tensor input."""

    arg_names: tuple
    kwarg_names: tuple
    in_spec: object
    out_spec: object
    labels: tuple


class ExportedProgram:
    """An exported program (see the module docstring)."""

    def __init__(self, graph, state: dict, tensors: dict, call_spec: CallSpec,
                 range_constraints: dict, example_inputs, device=None):
        # state: graph external name -> StateEntry; tensors: target -> tensor
        self._graph = graph
        self._state = dict(state)
        self._tensors = dict(tensors)
        self._call_spec = call_spec
        self.range_constraints = dict(range_constraints)
        self.example_inputs = example_inputs
        self._device = device
        self.graph_signature = _signature(graph, self._state, call_spec)

    # -- PyTorch's attributes ----------------------------------------------------------
    @property
    def graph(self):
        """The program's IR Graph."""
        return self._graph

    @property
    def graph_module(self):
        """The graph called on lifted state + user inputs (see :mod:`.graph_module`)."""
        from .graph_module import ExportedGraphModule
        return ExportedGraphModule(self)

    @property
    def state_dict(self) -> dict:
        """Parameters and persistent buffers, by their ``state_dict`` keys."""
        return {e.target: self._tensors[e.target] for e in self._state.values()
                if e.kind is InputKind.PARAMETER or
                (e.kind is InputKind.BUFFER and e.persistent)}

    @property
    def constants(self) -> dict:
        """Non-persistent buffers and lifted tensor constants, by name."""
        return {e.target: self._tensors[e.target] for e in self._state.values()
                if e.kind is InputKind.CONSTANT_TENSOR or
                (e.kind is InputKind.BUFFER and not e.persistent)}

    @property
    def call_spec(self) -> CallSpec:
        """The input/output structure of ``forward`` (see :class:`CallSpec`)."""
        return self._call_spec

    def module(self):
        """An ``nn.Module`` whose forward runs this program (its parameters are the
        program's tensors, which require grad as they did when exported)."""
        from .unlifted import make_module
        return make_module(self)

    def __call__(self, *args, **kwargs):
        raise FwTypeError("ExportedProgram is not callable; call ep.module()(...) instead")

    def run_decompositions(self, decomp_table=None) -> ExportedProgram:
        """A new program with composite ops decomposed into primitives: all of them
        (``decomp_table=None``, or :func:`default_decompositions`), or only the ops a
        given table names (by op name or op; values must be None or the op's own
        decomposition)."""
        from compiler.passes import decompose

        from ..ops.registry import OPS
        composites = {name for name, op in OPS.items() if op.decomp is not None}
        if decomp_table is None:
            chosen = composites
        else:
            chosen = set()
            for k, fn in dict(decomp_table).items():
                name = getattr(k, "name", k)
                if name not in OPS:
                    raise ArgumentError(f"run_decompositions: unknown op {k!r}")
                op = OPS[name]
                if fn is not None and fn is not op.decomp:
                    raise NotImplementedError(f"run_decompositions: custom decomposition "
                                              f"functions are not supported ({name!r}); "
                                              "use None or the op's own decomposition")
                if op.decomp is None:
                    raise ArgumentError(f"run_decompositions: op {name!r} has no "
                                        "decomposition (it is a primitive)")
                chosen.add(name)
        g = decompose.run(self._graph, keep=composites - chosen).verify()
        state, tensors = dict(self._state), dict(self._tensors)
        k = sum(1 for e in state.values() if e.kind is InputKind.CONSTANT_TENSOR)
        for v, t in g.constants.items():  # tensors the decompositions created
            if v.name not in state:
                target = _fresh(f"lifted_tensor_{k}", tensors)
                k += 1
                state[v.name] = StateEntry(InputKind.CONSTANT_TENSOR, target)
                tensors[target] = t
        return ExportedProgram(g, state, tensors, self._call_spec, self.range_constraints,
                               self.example_inputs, self._device)

    def __str__(self) -> str:
        graph = "\n".join("    " + line for line in str(self._graph).splitlines())
        sig = "\n".join("    " + line if line else "" for line in
                        str(self.graph_signature).splitlines())
        ranges = ", ".join(f"{s}: {r!r}" for s, r in self.range_constraints.items())
        return (f"ExportedProgram:\n{graph}\nGraph signature:\n{sig}\n"
                f"Range constraints: {{{ranges}}}")

    __repr__ = __str__


def default_decompositions() -> dict:
    """{op name: decomposition} for every composite op (``run_decompositions``'s table)."""
    from ..ops.registry import OPS
    return {name: op.decomp for name, op in OPS.items() if op.decomp is not None}


def _fresh(name, taken) -> str:
    base, n = name, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _signature(graph, state, spec: CallSpec) -> ExportGraphSignature:
    order = {InputKind.PARAMETER: 0, InputKind.BUFFER: 1, InputKind.CONSTANT_TENSOR: 2}
    ins = []
    for v in graph.constants:
        e = state[v.name]
        ins.append(InputSpec(e.kind, TensorArgument(ident(v.name)), e.target,
                             e.persistent if e.kind is InputKind.BUFFER else None))
    ins.sort(key=lambda s: order[s.kind])
    ins += [InputSpec(InputKind.USER_INPUT, TensorArgument(ident(v.name)), None)
            for v in graph.inputs]
    outs = []
    user_label = {id(v): spec.labels[i] for i, v in enumerate(graph.inputs)}
    for t, v in graph.mutations:
        if t.kind == "input":
            outs.append(OutputSpec(OutputKind.USER_INPUT_MUTATION, TensorArgument(ident(v.name)),
                                   user_label[id(t)]))
        else:
            outs.append(OutputSpec(OutputKind.BUFFER_MUTATION, TensorArgument(ident(v.name)),
                                   state[t.name].target))

    def leaf(x):
        if isinstance(x, OutSlot):
            arg = TensorArgument(ident(graph.outputs[x.i].name))
        else:
            arg = ConstantArgument("", x)
        outs.append(OutputSpec(OutputKind.USER_OUTPUT, arg, None))
        return x
    map_tree(spec.out_spec, leaf)
    return ExportGraphSignature(ins, outs)
