"""The graph signature of an exported program (PyTorch's ``ExportGraphSignature``).

Input specs, in order: parameters, buffers, lifted tensor constants, then the user's
tensor inputs; each says what the graph value is (``arg``: its name in the printed graph)
and, for state, where it lives (``target``: its ``state_dict`` key, or the constant's
name in ``ExportedProgram.constants``). Output specs: buffer (and user input) mutations
first -- the new value a call writes back into ``target`` -- then the user's outputs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class InputKind(enum.Enum):
    """What a graph input is."""

    USER_INPUT = enum.auto()
    PARAMETER = enum.auto()
    BUFFER = enum.auto()
    CONSTANT_TENSOR = enum.auto()


class OutputKind(enum.Enum):
    """What a graph output is."""

    USER_OUTPUT = enum.auto()
    BUFFER_MUTATION = enum.auto()
    USER_INPUT_MUTATION = enum.auto()


@dataclass
class TensorArgument:
    """A tensor value of the graph, by its name there."""

    name: str


@dataclass
class ConstantArgument:
    """A non-tensor value (a returned Python number, string, None)."""

    name: str
    value: object


@dataclass
class InputSpec:
    """One graph input."""

    kind: InputKind
    arg: TensorArgument
    target: str | None
    persistent: bool | None = None


@dataclass
class OutputSpec:
    """One graph output."""

    kind: OutputKind
    arg: TensorArgument | ConstantArgument
    target: str | None


@dataclass
class ExportGraphSignature:
    """Input and output specs (see the module docstring)."""

    input_specs: list = field(default_factory=list)
    output_specs: list = field(default_factory=list)

    @property
    def user_inputs(self) -> list:
        """Names of the user's tensor inputs."""
        return [s.arg.name for s in self.input_specs if s.kind is InputKind.USER_INPUT]

    @property
    def parameters(self) -> list:
        """``state_dict`` keys of the parameters the graph reads."""
        return [s.target for s in self.input_specs if s.kind is InputKind.PARAMETER]

    @property
    def buffers(self) -> list:
        """Names of the buffers the graph reads (persistent or not)."""
        return [s.target for s in self.input_specs if s.kind is InputKind.BUFFER]

    @property
    def non_persistent_buffers(self) -> list:
        """Names of the buffers that live in ``constants`` (not in ``state_dict``)."""
        return [s.target for s in self.input_specs
                if s.kind is InputKind.BUFFER and not s.persistent]

    @property
    def lifted_tensor_constants(self) -> list:
        """Names of the captured tensor constants."""
        return [s.target for s in self.input_specs if s.kind is InputKind.CONSTANT_TENSOR]

    @property
    def user_outputs(self) -> list:
        """Names (or constant values) of the user's outputs."""
        return [s.arg.name if isinstance(s.arg, TensorArgument) else s.arg.value
                for s in self.output_specs if s.kind is OutputKind.USER_OUTPUT]

    @property
    def inputs_to_parameters(self) -> dict:
        """Graph input name -> parameter name."""
        return {s.arg.name: s.target for s in self.input_specs
                if s.kind is InputKind.PARAMETER}

    @property
    def inputs_to_buffers(self) -> dict:
        """Graph input name -> buffer name."""
        return {s.arg.name: s.target for s in self.input_specs if s.kind is InputKind.BUFFER}

    @property
    def buffers_to_mutate(self) -> dict:
        """Graph output name -> the buffer it is written into."""
        return {s.arg.name: s.target for s in self.output_specs
                if s.kind is OutputKind.BUFFER_MUTATION}

    @property
    def user_inputs_to_mutate(self) -> dict:
        """Graph output name -> the user input it is written into."""
        return {s.arg.name: s.target for s in self.output_specs
                if s.kind is OutputKind.USER_INPUT_MUTATION}

    def __str__(self) -> str:
        lines = ["# inputs"]
        for s in self.input_specs:
            tail = f" target={s.target!r}" if s.target is not None else ""
            if s.kind is InputKind.BUFFER:
                tail += f" persistent={s.persistent}"
            lines.append(f"{s.arg.name}: {s.kind.name}{tail}")
        lines += ["", "# outputs"]
        for s in self.output_specs:
            name = s.arg.name if isinstance(s.arg, TensorArgument) else repr(s.arg.value)
            tail = f" target={s.target!r}" if s.target is not None else ""
            lines.append(f"{name}: {s.kind.name}{tail}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The specs as JSON data."""
        from compiler.serialize import encode_value
        ins = [{"kind": s.kind.name, "arg": s.arg.name, "target": s.target,
                "persistent": s.persistent} for s in self.input_specs]
        outs = []
        for s in self.output_specs:
            d = {"kind": s.kind.name, "target": s.target, "arg": s.arg.name}
            if isinstance(s.arg, ConstantArgument):
                d["value"] = encode_value(s.arg.value)
            outs.append(d)
        return {"inputs": ins, "outputs": outs}

    @classmethod
    def from_json(cls, data: dict, symbols: dict) -> ExportGraphSignature:
        """The inverse of :meth:`to_json`."""
        from compiler.serialize import decode_value
        ins = [InputSpec(InputKind[d["kind"]], TensorArgument(d["arg"]), d["target"],
                         d["persistent"]) for d in data["inputs"]]
        outs = []
        for d in data["outputs"]:
            arg = (ConstantArgument(d["arg"], decode_value(d["value"], symbols))
                   if "value" in d else TensorArgument(d["arg"]))
            outs.append(OutputSpec(OutputKind[d["kind"]], arg, d["target"]))
        return cls(ins, outs)
