"""The compiler's IR: Graph / Node / Value, symbolic shapes, the verifier and the printer.

A Graph is a functional program: ``inputs`` (call arguments and runtime scalars), external
tensors it reads (``constants``: parameters, buffers, optimizer state, captured tensors),
``nodes`` in topological order (each one registry op applied to Values or Python scalars
with the exact attrs ``apply`` got), ``outputs``, and ``mutations``: (target, new value)
pairs the runtime writes back after a call (functionalized in-place updates). Leaf
gradients assigned by ``backward()`` are ``grad_writes`` (leaf Value, new Value or None).
Shapes are tuples of ints or sympy expressions over ``symbols``.
"""

from __future__ import annotations

import itertools

import sympy

from framework.tensor import meta_tensor

KINDS = frozenset({"input", "param", "buffer", "const", "scalar_input", "node"})
_ids = itertools.count()


class Value:
    """One SSA value: a tensor (or a runtime Python scalar for kind "scalar_input")."""

    __slots__ = ("name", "shape", "dtype", "producer", "kind", "index", "id", "device")

    def __init__(self, name, shape, dtype, kind="node", producer=None, index=0, device=None):
        if kind not in KINDS:
            raise ValueError(f"Value: unknown kind {kind!r}")
        self.name = name
        self.shape = tuple(shape)
        self.dtype = dtype
        self.kind = kind
        self.producer = producer
        self.index = index
        self.device = device
        self.id = next(_ids)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def __repr__(self) -> str:
        return f"%{self.name}: {type_str(self)}"


class Node:
    """One op application: ``outputs = op(*inputs, **attrs)``."""

    __slots__ = ("op", "inputs", "attrs", "outputs", "no_grad", "region", "region_out")

    def __init__(self, op, inputs, attrs, outputs=()):
        self.op = op
        self.inputs = tuple(inputs)
        self.attrs = dict(attrs)
        self.outputs = tuple(outputs)
        # recorded under no_grad in a trace that graph autodiff differentiates (fw.grad):
        # autodiff replays it under no_grad too, so the gradient stops there as it would
        # eagerly (torch.func.grad respects an inner no_grad)
        self.no_grad = False
        # recorded inside ``checkpoint`` while capturing a training step: the region's
        # number, and which outputs the region returned (passes/remat.py recomputes the
        # others for the backward instead of keeping them alive)
        self.region = None
        self.region_out = ()

    def tensor_inputs(self):
        """The inputs that are Values (not Python scalars)."""
        return [i for i in self.inputs if isinstance(i, Value)]

    def __repr__(self) -> str:
        return f"<Node {self.op.name} -> {', '.join(o.name for o in self.outputs)}>"


class Graph:
    """A captured, functional program (see the module docstring)."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.inputs: list[Value] = []
        self.outputs: list = []
        self.constants: dict[Value, object] = {}
        self.mutations: list[tuple[Value, Value]] = []
        self.grad_writes: list[tuple[Value, Value | None]] = []
        self.symbols: dict[str, sympy.Symbol] = {}
        self.passes: list[str] = []
        self._names: set[str] = set()

    # -- building ----------------------------------------------------------------------
    def fresh_name(self, hint: str = "t", keep_dots: bool = False) -> str:
        """A name not used yet in this graph, based on ``hint`` (parameters keep their
        dotted module path; :func:`ident` makes any name a Python identifier)."""
        base = _sanitize(hint, keep_dots)
        name, n = base, 0
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    def add_input(self, hint, shape, dtype, kind="input", device=None) -> Value:
        """A new runtime input (kind "input" or "scalar_input")."""
        v = Value(self.fresh_name(hint), shape, dtype, kind, device=device)
        self.inputs.append(v)
        return v

    def add_constant(self, hint, tensor, kind="const") -> Value:
        """An external tensor (param, buffer, const) read by the graph."""
        v = Value(self.fresh_name(hint, keep_dots=True), tensor.shape, tensor.dtype, kind,
                  device=tensor.device)
        self.constants[v] = tensor
        return v

    def add_node(self, op, inputs, attrs, hint=None) -> Node:
        """Append ``op(*inputs, **attrs)``, computing output shapes with the meta rule."""
        metas = run_meta(op, inputs, attrs)
        dev = _node_device(inputs, attrs)
        hint = hint or op.name
        outs = tuple(Value(self.fresh_name(hint), s, d, "node", None, i, device=dev)
                     for i, (s, d) in enumerate(metas))
        node = Node(op, inputs, attrs, outs)
        for o in outs:
            o.producer = node
        self.nodes.append(node)
        return node

    def values(self):
        """Every Value: inputs, constants, then node outputs."""
        yield from self.inputs
        yield from self.constants
        for n in self.nodes:
            yield from n.outputs

    def copy_meta(self, other: Graph) -> None:
        """Carry symbols, pass history and used names from ``other``."""
        self.symbols = dict(other.symbols)
        self.passes = list(other.passes)
        self._names = set(other._names)

    # -- checking ----------------------------------------------------------------------
    def verify(self) -> Graph:
        """Re-run every node's meta rule and check SSA well-formedness; raise on error."""
        defined = set()
        for v in self.inputs:
            defined.add(v)
        for v in self.constants:
            defined.add(v)
        for i, n in enumerate(self.nodes):
            for x in n.inputs:
                if isinstance(x, Value) and x not in defined:
                    raise VerifyError(f"node {i} ({n.op.name}) uses %{x.name} before it is "
                                      "defined")
            try:
                metas = run_meta(n.op, n.inputs, n.attrs)
            except Exception as e:  # the meta rule's own error, re-labelled
                raise VerifyError(f"node {i} ({n.op.name}): meta rule failed: {e}") from e
            if len(metas) != len(n.outputs):
                raise VerifyError(f"node {i} ({n.op.name}): {len(n.outputs)} outputs, meta "
                                  f"rule gives {len(metas)}")
            for o, (s, d) in zip(n.outputs, metas):
                if o.dtype is not d or not _same_shape(o.shape, s):
                    raise VerifyError(f"node {i} ({n.op.name}): output %{o.name} is "
                                      f"{type_str(o)} but the meta rule gives "
                                      f"{_fmt_type(s, d)}")
                if o.producer is not n:
                    raise VerifyError(f"node {i} ({n.op.name}): %{o.name}.producer is wrong")
                defined.add(o)
            for key, sub in subgraphs(n):
                try:
                    sub.verify()
                except VerifyError as e:
                    raise VerifyError(f"node {i} ({n.op.name}), subgraph {key}: {e}") from e
        for o in self.outputs:
            if isinstance(o, Value) and o not in defined:
                raise VerifyError(f"output %{o.name} is not defined")
        for t, v in self.mutations:
            if t not in defined or v not in defined:
                raise VerifyError(f"mutation {t.name} <- {v.name} uses an undefined value")
            if t.kind not in ("input", "param", "buffer", "const"):
                raise VerifyError(f"mutation target %{t.name} is not an input or external")
            if not _same_shape(t.shape, v.shape) or t.dtype is not v.dtype:
                raise VerifyError(f"mutation {t.name} <- {v.name}: {type_str(t)} vs "
                                  f"{type_str(v)}")
        for leaf, v in self.grad_writes:
            if leaf not in defined or (v is not None and v not in defined):
                raise VerifyError(f"grad write of %{leaf.name} uses an undefined value")
        return self

    # -- printing ----------------------------------------------------------------------
    def __str__(self) -> str:
        lines = [f"# passes: {', '.join(self.passes) if self.passes else '(none)'}"]
        lines += self._const_lines()
        lines += self._def_lines("graph")
        return "\n".join(lines)

    def _const_lines(self) -> list:
        return [f"# {v.kind} {ident(v.name)} = {v.name!r}: {type_str(v)}"
                for v in self.constants]

    def _def_lines(self, fname: str, inner_consts: bool = False) -> list:
        """The graph as ``def fname(inputs): ...``; a control-flow node's subgraphs are
        printed as functions named after their attribute, indented under the node."""
        args = ", ".join(ident(v.name) for v in self.inputs)
        lines = [f"def {fname}({args}):"]
        for v in self.inputs:
            lines.append(f"    # {ident(v.name)}: {type_str(v)}")
        if inner_consts:
            lines += ["    " + ln for ln in self._const_lines()]
        for n in self.nodes:
            lhs = ", ".join(ident(o.name) for o in n.outputs)
            parts = [_fmt_arg(x) for x in n.inputs]
            parts += [f"{k}={k if isinstance(a, Graph) else _fmt_attr(a)}"
                      for k, a in n.attrs.items()]
            types = ", ".join(type_str(o) for o in n.outputs)
            lines.append(f"    {lhs} = {n.op.name}({', '.join(parts)})  # {types}")
            for key, sub in subgraphs(n):
                lines += ["        " + ln for ln in sub._def_lines(key, inner_consts=True)]
        for t, v in self.mutations:
            lines.append(f"    {ident(t.name)}.copy_({ident(v.name)})  # write back")
        for leaf, v in self.grad_writes:
            lines.append(f"    {ident(leaf.name)}.grad = "
                         f"{ident(v.name) if v is not None else None}")
        outs = ", ".join(_fmt_arg(o) for o in self.outputs)
        lines.append(f"    return ({outs}{',' if len(self.outputs) == 1 else ''})")
        return lines

    __repr__ = __str__


class VerifyError(Exception):
    """The graph is not well-formed (raised by :meth:`Graph.verify`)."""


# ---------------------------------------------------------------------------------------
# helpers
def subgraphs(node) -> list:
    """(attribute name, Graph) of each subgraph a node holds (``cond``'s branches,
    ``while_loop``'s condition and body)."""
    return [(k, a) for k, a in node.attrs.items() if isinstance(a, Graph)]


def as_meta(v):
    """A data-less tensor standing for Value ``v`` (for meta rules), or ``v`` itself."""
    if isinstance(v, Value):
        if v.kind == "scalar_input":
            return 1.0 if v.dtype.is_floating_point else 1
        from framework.device import meta
        return meta_tensor(v.shape, v.dtype, v.device or meta)
    return v


def run_meta(op, inputs, attrs):
    """The meta rule of ``op`` over Values: a tuple of (shape, dtype), one per output."""
    m = op.meta(*[as_meta(x) for x in inputs], **attrs)
    return (m,) if op.num_outputs == 1 else tuple(m)


def _node_device(inputs, attrs):
    if "device" in attrs and attrs["device"] is not None and not isinstance(attrs["device"], str):
        return attrs["device"]
    for x in inputs:
        if isinstance(x, Value) and x.device is not None:
            return x.device
    return None


def _same_shape(a, b) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        if isinstance(x, int) and isinstance(y, int):
            return False
        if sympy.simplify(sympy.sympify(x) - sympy.sympify(y)) != 0:
            return False
    return True


def _sanitize(hint: str, keep_dots: bool = False) -> str:
    s = "".join(c if c.isalnum() or c == "_" or (keep_dots and c == ".") else "_"
                for c in str(hint))
    if not s or s[0].isdigit() and not keep_dots:
        s = "v_" + s
    return s


def ident(name: str) -> str:
    """``name`` as a Python identifier (dots of module paths become underscores)."""
    s = name.replace(".", "_")
    return "p_" + s if s[0].isdigit() else s


def _fmt_type(shape, dtype) -> str:
    return f"{dtype.short}[{', '.join(str(s) for s in shape)}]"


def type_str(v: Value) -> str:
    """``f32[64, 256]`` for a tensor Value, ``f32 scalar`` for a runtime scalar."""
    if v.kind == "scalar_input":
        return f"{v.dtype.short} scalar"
    return _fmt_type(v.shape, v.dtype)


def _fmt_arg(x) -> str:
    if isinstance(x, Value):
        return ident(x.name)
    return repr(x)


def _fmt_attr(a) -> str:
    if hasattr(a, "short") and hasattr(a, "np"):
        return f"fw.{a.name}"
    if isinstance(a, tuple):
        inner = ", ".join(_fmt_attr(x) for x in a)
        return f"({inner}{',' if len(a) == 1 else ''})"
    if isinstance(a, slice):
        return f"slice({a.start}, {a.stop}, {a.step})"
    if type(a).__name__ == "device":
        return repr(str(a))
    return repr(a) if not isinstance(a, sympy.Basic) else str(a)


def symbol(name: str) -> sympy.Symbol:
    """The sympy symbol for a dynamic dimension (positive integer)."""
    return sympy.Symbol(name, integer=True, positive=True)
