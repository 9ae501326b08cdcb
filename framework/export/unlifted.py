"""``ExportedProgram.module()``: an ``nn.Module`` that runs the exported graph.

The module holds the program's parameters and buffers under their ``state_dict`` keys
(nested plain submodules, so ``state_dict()`` reads like the original model's), and the
lifted constants as non-persistent buffers; ``.to(device)`` moves them all. ``forward``
checks its arguments against the exported ones (structure, constants, dtypes, ranks,
static sizes, dynamic sizes within their ranges), runs the graph through the op dispatch
(:mod:`.interpreter`), writes buffer and input mutations back, and returns the outputs in
``forward``'s structure. Its signature is the exported ``forward``'s.
"""

from __future__ import annotations

import inspect

from compiler.capture import map_tree

from ..autograd import no_grad
from ..errors import ArgumentError
from ..nn.modules.module import Module
from ..nn.parameter import Parameter
from ..tensor import Tensor
from .interpreter import bind_inputs, run_graph, substitute
from .program import InSlot, OutSlot
from .signature import InputKind

WHO = "ExportedProgram.module()"


class _Holder(Module):
    """A plain container for the submodule levels of dotted state names (it has no
    forward of its own)."""


class ExportedModule(Module):
    """The module returned by :meth:`ExportedProgram.module` (see the module docstring)."""

    def __init__(self, program):
        super().__init__()
        self.__dict__["_program"] = program
        for spec in program.graph_signature.input_specs:
            if spec.kind is InputKind.USER_INPUT:
                continue
            t = program._tensors[spec.target]
            owner, leaf = _owner(self, _attr_path(spec.kind, spec.target))
            if spec.kind is InputKind.PARAMETER:
                if not isinstance(t, Parameter):
                    t = Parameter(t, requires_grad=t.requires_grad)
                owner.register_parameter(leaf, t)
            else:
                owner.register_buffer(leaf, t, persistent=bool(spec.persistent))
        g = program.graph
        by_name = {v.name: v for v in g.constants}
        self.__dict__["_externals"] = [
            (by_name[name], tuple(_attr_path(e.kind, e.target)))
            for name, e in program._state.items()
            if name in by_name]

    def forward(self, *args, **kwargs):  # replaced per program (see make_module)
        return self._run(args, kwargs)

    def _run(self, args, kwargs):
        prog = self._program
        spec = prog.call_spec
        g = prog.graph
        tensors = flatten_call(spec, args, kwargs)
        ranges = {s: (r.lower, r.upper) for s, r in prog.range_constraints.items()}
        env = bind_inputs(g.inputs, tensors, spec.labels, ranges, WHO)
        consts = {v: _resolve(self, path) for v, path in self._externals}
        device_map = None
        run_dev = next((t.device for t in tensors), None) or \
            next((t.device for t in consts.values()), None)
        if prog._device is not None and run_dev is not None and run_dev != prog._device:
            device_map = (prog._device, run_dev)
        outs, writes = run_graph(g, tensors, consts, env, device_map)
        if writes:
            where = dict(consts)
            where.update(zip(g.inputs, tensors))
            with no_grad():
                for target, new in writes:
                    where[target].copy_(new)

        def leaf(x):
            if isinstance(x, OutSlot):
                return outs[x.i]
            return substitute(x, _sympy_env(env))
        return map_tree(spec.out_spec, leaf)

    def extra_repr(self) -> str:
        n = len(self._program.graph.nodes)
        return f"graph of {n} nodes; inputs {list(self._program.call_spec.labels)}"


def make_module(program) -> ExportedModule:
    """A fresh :class:`ExportedModule` for ``program``, whose ``forward`` has the exported
    ``forward``'s signature (so ONNX export and tools that read it see the argument
    names)."""
    spec = program.call_spec
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    params += [P(n, P.POSITIONAL_OR_KEYWORD) for n in spec.arg_names]
    params += [P(n, P.KEYWORD_ONLY) for n in spec.kwarg_names]

    def forward(self, *args, **kwargs):
        return self._run(args, kwargs)

    forward.__signature__ = inspect.Signature(params)
    forward.__doc__ = "Run the exported program (see ExportedModule)."
    cls = type("ExportedModule", (ExportedModule,), {"forward": forward,
                                                     "__module__": __name__})
    return cls(program)


def _attr_path(kind, target) -> list:
    """Where a state tensor lives in the module: its dotted ``state_dict`` key, or one
    top-level name for a lifted constant."""
    if kind is InputKind.CONSTANT_TENSOR:
        return [target.replace(".", "_")]
    return target.split(".")


def _owner(root, path):
    m = root
    for part in path[:-1]:
        sub = m._modules.get(part)
        if sub is None:
            sub = _Holder()
            m.add_module(part, sub)
        m = sub
    return m, path[-1]


def _resolve(root, path):
    m = root
    for part in path[:-1]:
        m = m._modules[part]
    leaf = path[-1]
    t = m._parameters.get(leaf)
    return t if t is not None else m._buffers[leaf]


def _sympy_env(env):
    import sympy
    return {s: sympy.Integer(n) if isinstance(n, int) else n for s, n in env.items()}


# ---------------------------------------------------------------------------------------
def flatten_call(spec, args, kwargs) -> list:
    """The tensor inputs of a call in graph order, checking the call against the
    exported structure (argument count, keyword names, containers, constants)."""
    n = len(spec.arg_names)
    if len(args) != n:
        raise ArgumentError(f"{WHO}: expected {n} positional argument(s) "
                            f"({', '.join(spec.arg_names)}), got {len(args)}")
    if set(kwargs) != set(spec.kwarg_names):
        raise ArgumentError(f"{WHO}: expected keyword argument(s) {list(spec.kwarg_names)}, "
                            f"got {sorted(kwargs)}")
    exp_args, exp_kwargs = spec.in_spec
    out: dict = {}
    for i, (e, a) in enumerate(zip(exp_args, args)):
        _walk(e, a, spec.arg_names[i], out)
    for k, e in exp_kwargs.items():
        _walk(e, kwargs[k], k, out)
    return [out[i] for i in range(len(out))]


def _walk(expected, value, label, out):
    if isinstance(expected, InSlot):
        out[expected.i] = value
        return
    if isinstance(expected, (tuple, list)):
        if not isinstance(value, (tuple, list)) or len(value) != len(expected):
            raise ArgumentError(f"{WHO}: argument {label} must be a sequence of "
                                f"{len(expected)} items like the exported one, got "
                                f"{_describe(value)}")
        for i, (e, v) in enumerate(zip(expected, value)):
            _walk(e, v, f"{label}[{i}]", out)
        return
    if isinstance(expected, dict):
        if not isinstance(value, dict) or set(value) != set(expected):
            raise ArgumentError(f"{WHO}: argument {label} must be a dict with keys "
                                f"{list(expected)}, got {_describe(value)}")
        for k, e in expected.items():
            _walk(e, value[k], f"{label}[{k!r}]", out)
        return
    if isinstance(value, Tensor) or type(value) is not type(expected) or value != expected:
        raise ArgumentError(f"{WHO}: argument {label} was exported as the constant "
                            f"{expected!r} (non-tensor inputs are specialized), got "
                            f"{_describe(value)}")


def _describe(v) -> str:
    if isinstance(v, Tensor):
        return f"a {v.dtype.name} tensor of shape {list(v.shape)}"
    if isinstance(v, (tuple, list, dict)):
        return f"a {type(v).__name__} of {len(v)} items"
    return repr(v)
