"""The tracer: what ``apply`` talks to (``tls.tracer``) while a function is captured.

Tracing runs the user's function on data-less tensors: call arguments are replaced by
tensors with a shape (ints or sympy symbols) and no buffer, every op output is stripped of
its data, so nothing the function does touches real memory. Tensors the trace did not
create (parameters, buffers, optimizer state, captured constants, a parameter's ``.grad``)
become *externals* of the graph, read at run time. In-place updates are functionalized on
the fly (see :mod:`compiler.passes.functionalize`); leaf ``.grad`` assignments made by
``backward()`` are detected by comparing before/after and restored after the trace.
"""

from __future__ import annotations

import contextlib
import os
import sys

import sympy

from framework import dtypes
from framework._state import tls
from framework.errors import GraphBreak
from framework.tensor import Tensor

from .ir import Graph, Value
from .passes.functionalize import Functionalizer
from .scalars import ScalarProxy

_ROOTS = tuple(os.path.dirname(os.path.abspath(m)) + os.sep for m in (
    sys.modules["framework"].__file__, __file__))


def user_location() -> str:
    """``file:line`` of the innermost stack frame outside the framework and compiler."""
    f = sys._getframe(1)
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if not fn.startswith(_ROOTS) and "importlib" not in fn:
            return f"{f.f_code.co_filename}:{f.f_lineno}"
        f = f.f_back
    return "<unknown>"


class _ExtState:
    """What the trace may change on an external tensor, to restore afterwards."""

    __slots__ = ("t", "version", "requires_grad", "grad_fn", "output_nr", "grad")

    def __init__(self, t):
        self.t = t
        self.version = t._storage.version
        self.requires_grad = t.requires_grad
        self.grad_fn = t.grad_fn
        self.output_nr = t._output_nr
        self.grad = t.grad

    def restore(self):
        """Put the snapshot back."""
        t = self.t
        t._storage.version = self.version
        t.requires_grad, t.grad_fn, t._output_nr = self.requires_grad, self.grad_fn, \
            self.output_nr
        t.grad = self.grad


class Tracer:
    """Records ``apply`` calls into a :class:`Graph` (the protocol in docs/internals.md)."""

    def __init__(self, graph: Graph, names: dict | None = None):
        self.graph = graph
        self.names = names or {}          # id(tensor) -> (name, kind)
        self.fn = Functionalizer(self)
        self.keep: list = []              # every tensor seen (ids stay unique)
        self.ext: dict[int, Value] = {}   # id(external tensor) -> Value
        self.ext_state: dict[int, _ExtState] = {}
        self.sources: dict[Value, tuple] = {}   # external Value -> ("tensor", t) | ("grad", leaf)
        self.grad_owner: dict[int, Tensor] = {}
        self.scalar_sources: dict[sympy.Symbol, tuple] = {}
        self.scalar_inputs: dict = {}     # sympy expr -> Value
        self.scalar_guards: list = []
        self.int_guards: list = []
        self.lift_free = False           # data-less outside tensors become inputs
        self.lifted: list = []
        self.regions = 0                 # checkpoint regions seen (passes/remat.py)
        self.in_region = False
        # custom autograd.Functions applied to inputs that need grad: their backward is
        # Python code the graph does not hold, so the graph cannot be differentiated
        self.custom_functions: list = []

    # -- the protocol --------------------------------------------------------------------
    def record(self, op, args, attrs, outs):
        """One ``apply``: append a node, remember the outputs, drop their data."""
        ins = tuple(self.value_of(a) if isinstance(a, Tensor) else self.scalar(a)
                    for a in args)
        node = self.graph.add_node(op, ins, self._bake_attrs(attrs))
        if not tls.grad_enabled and (self.lift_free or tls.replaying_no_grad):
            node.no_grad = True
        for o, v in zip(outs, node.outputs):
            o._data = None
            if o.shape != v.shape:  # keep the meta rule's (possibly symbolic) shape
                o.shape = v.shape
            src = (args[0], op, node.attrs) if op.is_view else None
            self.fn.define(o, v, src)
            self.keep.append(o)

    def mutate(self, target, value):
        """``target`` was overwritten in place by ``value``."""
        self.fn.write(target, self.value_of(value))

    def snapshot(self, src, dst):
        """``dst`` is the copy of ``src``'s current contents that autograd keeps for backward
        before ``src`` is overwritten in place: it reads as that Value (no op is recorded)."""
        self.fn.define(dst, self.value_of(src), None)
        self.keep.append(dst)

    def view_source(self, t):
        """``(source tensor, view op, attrs)`` when ``t`` was made by a traced view op (the
        op is None for ``detach``), else None: in-place autograd through views reads it."""
        inf = self.fn.info.get(id(t))
        return None if inf is None else inf.src

    def alias(self, src, dst):
        """``dst`` shares ``src``'s storage (``detach``)."""
        v = self.value_of(src)
        self.fn.define(dst, v, (src, None, None))
        self.keep.append(dst)

    @contextlib.contextmanager
    def checkpoint_region(self):
        """Mark the nodes recorded inside the block as one ``checkpoint`` region; yields a
        function to call with the region's output tensors (a nested region joins the
        outer one)."""
        returned: list = []
        if self.in_region:
            yield returned.extend
            return
        self.in_region = True
        start = len(self.graph.nodes)
        try:
            yield returned.extend
        finally:
            self.in_region = False
        rid = self.regions
        self.regions += 1
        for n in self.graph.nodes[start:]:
            n.region = rid
        for t in returned:
            v = self.fn.current(t) if isinstance(t, Tensor) else None
            if v is not None and v.producer is not None and v.producer.region == rid:
                v.producer.region_out += (v.index,)

    def graph_break(self, what):
        """Something that needs real data: stop the capture."""
        raise GraphBreak(f"graph break: {what} at {user_location()} cannot be captured")

    def hyper(self, group: dict, key: str, value):
        """An optimizer hyper-parameter (``optim.optimizer._hyper_hook``): floats, and
        one-element tensors (``Adam(lr=fw.tensor(0.01))``), become runtime scalar inputs,
        read from the group on every call (so a scheduler filling the tensor, or a new
        tensor bound to the key, reaches the compiled step); other values are baked and
        guarded."""
        return self.scalar_from(_scalar_tensors_as_floats(value), ("hyper", group, key),
                                f"{key}")

    # -- values --------------------------------------------------------------------------
    def value_of(self, t: Tensor) -> Value:
        """The current Value of tensor ``t`` (an external on first sight)."""
        v = self.fn.current(t)
        if v is not None:
            return v
        return self._external(t)

    def _external(self, t: Tensor) -> Value:
        if t._data is None and self.lift_free:
            v = self.graph.add_input("free", t.shape, t.dtype, "input", device=t.device)
            self.lifted.append(t)
            self.fn.define_external(t, v)
            self.keep.append(t)
            return v
        if t._data is None:
            raise GraphBreak(f"a data-less tensor {t.dtype.name}{list(t.shape)} from outside "
                             "this trace was used (a tensor leaked from another capture?)")
        owner = self.grad_owner.get(id(t))
        if owner is not None and owner.grad is t:
            lname = self.ext[id(owner)].name if id(owner) in self.ext else "param"
            v = self.graph.add_constant(f"{lname}_grad", t, "buffer")
            self.sources[v] = ("grad", owner)
        else:
            name, kind = self.names.get(id(t), ("const", None))
            if kind is None:
                from framework.nn.parameter import Parameter
                kind = "param" if isinstance(t, Parameter) or t.requires_grad else "const"
            v = self.graph.add_constant(name, t, kind)
            self.sources[v] = ("tensor", t)
        self.ext[id(t)] = v
        self.watch(t)
        self.fn.define_external(t, v)
        self.keep.append(t)
        return v

    def watch(self, t: Tensor) -> None:
        """Snapshot what the trace may change on an external tensor."""
        if id(t) not in self.ext_state:
            self.ext_state[id(t)] = _ExtState(t)
            self.keep.append(t)
            if t.grad is not None:
                self.grad_owner[id(t.grad)] = t

    def restore(self) -> None:
        """Undo the trace's side effects on externals (versions, autograd links, .grad)."""
        for st in self.ext_state.values():
            st.restore()

    def grad_changes(self):
        """(leaf, new .grad) for every watched leaf whose ``.grad`` the function replaced."""
        out = []
        for st in self.ext_state.values():
            if st.t.grad is not st.grad:
                out.append((st.t, st.t.grad))
        return out

    # -- scalars -------------------------------------------------------------------------
    def scalar(self, a):
        """A Python scalar operand: proxies become scalar inputs, numbers stay literals."""
        if isinstance(a, ScalarProxy) and a.owner is self:
            key = a.expr
            v = self.scalar_inputs.get(key)
            if v is None:
                if isinstance(key, sympy.Symbol):
                    hint = key.name
                else:
                    hint = "scalar"
                v = self.graph.add_input(hint, (), dtypes.float64, "scalar_input")
                self.scalar_inputs[key] = v
            return v
        if isinstance(a, ScalarProxy):
            return float.__float__(a)
        return a

    def scalar_from(self, value, source, hint):
        """Wrap a Python value read from ``source`` (floats, tuples of floats)."""
        if isinstance(value, tuple):
            return tuple(self.scalar_from(x, source + (i,), f"{hint}{i}")
                         for i, x in enumerate(value))
        if isinstance(value, float) and not isinstance(value, ScalarProxy):
            sym = sympy.Symbol(self.graph.fresh_name(hint))
            self.scalar_sources[sym] = source
            return ScalarProxy(value, sym, self)
        if isinstance(value, (int, bool, str)) or value is None:
            self.int_guards.append((source, value))
        return value

    def _bake_attrs(self, attrs):
        """Attrs as stored in nodes: a runtime scalar used as an attribute (a dropout
        probability, a clamp bound) is baked, with a guard on its value."""
        if not any(_has_proxy(v) for v in attrs.values()):
            return attrs

        def bake(v):
            if isinstance(v, ScalarProxy):
                if v.owner is self:
                    self.add_scalar_guard(v.expr, "eq", float.__float__(v), True)
                return float.__float__(v)
            if isinstance(v, (tuple, list)):
                return type(v)(bake(x) for x in v)
            return v
        return {k: bake(v) for k, v in attrs.items()}

    def add_scalar_guard(self, expr, name, other, result):
        """A comparison on a runtime scalar: recompile if its answer changes."""
        self.scalar_guards.append((expr, name, other, result))


def _scalar_tensors_as_floats(value):
    """``value`` with each one-element floating tensor that needs no gradient replaced by
    its value as a float (read from its buffer: the tensor is not part of the trace)."""
    if isinstance(value, tuple):
        return tuple(_scalar_tensors_as_floats(v) for v in value)
    if isinstance(value, Tensor) and value.numel() == 1 and value._data is not None and \
            value.dtype.is_floating_point and not value.requires_grad:
        import numpy as np
        from framework.backends import get_backend
        data = value._data if value.device.type == "cpu" else \
            get_backend(value.device).to_numpy(value._data)
        return float(np.asarray(data).reshape(-1)[0])
    return value


def _has_proxy(v) -> bool:
    if isinstance(v, ScalarProxy):
        return True
    return isinstance(v, (tuple, list)) and any(_has_proxy(x) for x in v)
