"""``ExportedProgram.graph_module``: the exported graph as a callable with lifted inputs.

PyTorch's ``ep.graph_module`` is a ``torch.fx.GraphModule`` whose inputs are the lifted
parameters, buffers and constants followed by the user inputs (the order of
``ep.graph_signature.input_specs``), and whose outputs are the mutated buffers' new values
followed by the user outputs. fw has no torch.fx; this object has the same calling
convention and prints the IR graph (fw's readable form, not FX's ``torch.ops.aten`` code).
"""

from __future__ import annotations

from compiler.ir import ident

from ..errors import ArgumentError
from .interpreter import bind_inputs, run_graph
from .signature import InputKind

WHO = "ExportedProgram.graph_module"


class ExportedGraphModule:
    """The graph of an :class:`ExportedProgram` called on lifted state + user inputs."""

    def __init__(self, program):
        self._program = program
        g = program.graph
        by_arg = {ident(v.name): v for v in g.constants}
        self._lifted = [by_arg[s.arg.name] for s in program.graph_signature.input_specs
                        if s.kind is not InputKind.USER_INPUT]

    @property
    def graph(self):
        """The IR Graph (PyTorch: an fx.Graph)."""
        return self._program.graph

    @property
    def code(self) -> str:
        """The graph as readable Python (fw's IR printer)."""
        return str(self._program.graph)

    def print_readable(self, print_output: bool = True) -> str:
        """Print (unless ``print_output=False``) and return the readable graph."""
        if print_output:
            print(self.code)
        return self.code

    def __call__(self, *args):
        prog = self._program
        g = prog.graph
        n_lift, n_user = len(self._lifted), len(g.inputs)
        if len(args) != n_lift + n_user:
            raise ArgumentError(f"{WHO}: expected {n_lift} lifted parameters/buffers/"
                                f"constants then {n_user} user inputs "
                                f"({n_lift + n_user} tensors), got {len(args)}")
        consts = dict(zip(self._lifted, args[:n_lift]))
        user = list(args[n_lift:])
        ranges = {s: (r.lower, r.upper) for s, r in prog.range_constraints.items()}
        env = bind_inputs(g.inputs, user, prog.call_spec.labels, ranges, WHO)
        bind_inputs(self._lifted, args[:n_lift], [v.name for v in self._lifted], {}, WHO)
        outs, writes = run_graph(g, user, consts, env)
        return tuple(new for _, new in writes) + tuple(outs)

    def __str__(self) -> str:
        return self.code

    __repr__ = __str__
