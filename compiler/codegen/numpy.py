"""NumPy code generation: one straight-line Python function per graph.

Each node becomes one NumPy call. Ops that can write into ``out=`` (ufuncs, matmul,
reductions, casts, ``where``) write into buffers assigned by the memory plan, so a compiled
call allocates nothing in steady state except what escapes (outputs, new ``.grad``
tensors); movement ops are NumPy views; everything else calls the CPU backend's own NumPy
function directly (no framework dispatch, no Tensor objects). An ops handler maps each op to
its text, the way Inductor's handlers do for Triton/C++.

Generated function: ``kernel(I, C, S, B)`` with I the input arrays and runtime scalars in
graph-input order, C the external arrays in ``graph.constants`` order, S the values of the
dynamic-size symbols, B the planned buffers. It returns (outputs, write-backs, grads).
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from framework.backends.cpu import IMPLS, where_into
from framework.ops.registry import ELEMENTWISE

from ..ir import Graph, Value, ident
from ..passes.memory_plan import plan as make_plan
from . import control_flow
from .buffer import IndentedBuffer
from .control_flow import CONTROL_OPS

UNARY_UFUNC = {
    "neg": "np.negative", "exp": "np.exp", "exp2": "np.exp2", "log": "np.log",
    "log2": "np.log2", "log1p": "np.log1p", "expm1": "np.expm1", "sqrt": "np.sqrt",
    "sin": "np.sin", "cos": "np.cos", "tan": "np.tan", "tanh": "np.tanh", "abs": "np.abs",
    "sign": "np.sign", "floor": "np.floor", "ceil": "np.ceil", "trunc": "np.trunc",
    "bitwise_not": "np.invert", "isnan": "np.isnan", "isinf": "np.isinf",
    "isfinite": "np.isfinite", "logical_not": "np.logical_not", "round": "np.round",
}
BINARY_UFUNC = {
    "add": "np.add", "sub": "np.subtract", "mul": "np.multiply", "div": "np.true_divide",
    "maximum": "np.maximum", "minimum": "np.minimum", "atan2": "np.arctan2",
    "remainder": "np.remainder", "floor_divide": "np.floor_divide", "fmod": "np.fmod",
    "bitwise_and": "np.bitwise_and", "bitwise_or": "np.bitwise_or",
    "bitwise_xor": "np.bitwise_xor", "eq": "np.equal", "ne": "np.not_equal", "lt": "np.less",
    "le": "np.less_equal", "gt": "np.greater", "ge": "np.greater_equal",
    "logical_and": "np.logical_and", "logical_or": "np.logical_or",
    "logical_xor": "np.logical_xor",
}
REDUCE_UFUNC = {"sum": "np.sum", "prod": "np.prod", "amax": "np.max", "amin": "np.min"}
_BLAS = ("float32", "float64")
_HALF = ("float16", "bfloat16")
_KEEPS_DTYPE = frozenset({"reshape", "permute", "expand", "slice", "cast"})  # views, exact casts


def _float(v) -> bool:
    return isinstance(v, Value) and v.dtype.is_floating_point and v.dtype.name in _BLAS


def can_write_out(node) -> bool:
    """True when the NumPy rendering of ``node`` can write into a planned buffer."""
    name = node.op.name
    if name in UNARY_UFUNC or name in BINARY_UFUNC or name in ("relu", "cast", "where",
                                                               "full"):
        return True
    if name == "pow":
        return node.outputs[0].dtype.is_floating_point
    if name == "sigmoid":
        return node.outputs[0].dtype.name in _BLAS
    if name == "matmul":
        a, b = node.inputs
        return _float(a) and a.ndim >= 1 and b.ndim >= 1 and a.ndim + b.ndim > 2
    if name in REDUCE_UFUNC:
        return _float(node.inputs[0]) and node.outputs[0].dtype is node.inputs[0].dtype
    return False


class _Renderer:
    """Turns nodes into lines; collects the globals the source refers to."""

    def __init__(self, graph: Graph, plan):
        self.graph = graph
        self.plan = plan
        self.globals = {"np": np, "_math": math}
        self.names: dict = {}
        self.nconst = 0
        self.subsources: list = []   # sources of control-flow subgraphs (for reading)

    def var(self, v) -> str:
        if not isinstance(v, Value):
            return self.lit(v)
        return self.names[v]

    def const(self, obj) -> str:
        name = f"_k{self.nconst}"
        self.nconst += 1
        self.globals[name] = obj
        return name

    def lit(self, a) -> str:
        if a is None or isinstance(a, (bool, str)):
            return repr(a)
        if isinstance(a, int):
            return repr(int(a))
        if isinstance(a, float):
            return repr(a) if math.isfinite(a) else self.const(a)
        if isinstance(a, sympy.Basic):
            from sympy.printing.pycode import pycode
            # a size expression is an int; a ratio of sizes (``n / (n - 1)``) is a float
            conv = "int(" if a.is_integer else "float("
            return conv + pycode(a).replace("math.", "_math.") + ")"  # math.floor, ceil
        if isinstance(a, tuple):
            inner = ", ".join(self.lit(x) for x in a)
            return f"({inner}{',' if len(a) == 1 else ''})"
        if isinstance(a, list):
            return "[" + ", ".join(self.lit(x) for x in a) + "]"
        if isinstance(a, slice):
            return f"slice({self.lit(a.start)}, {self.lit(a.stop)}, {self.lit(a.step)})"
        return self.const(a)

    def impl(self, name: str) -> str:
        g = "_impl_" + "".join(c if c.isalnum() else "_" for c in name)  # "ns::op" too
        if g not in self.globals:
            self.globals[g] = IMPLS[name]
        return g

    # -- one node ------------------------------------------------------------------------
    def node(self, n, out) -> list[str]:
        lines = self._node(n, out)
        if out is None and n.op.name not in _KEEPS_DTYPE:
            # NumPy computes float16/bfloat16 arithmetic with Python floats (and some
            # kernels) in float32: round to the declared dtype, as eager ``apply`` does
            for v in n.outputs:
                if v.dtype.name in _HALF:
                    o = self.names[v]
                    lines.append(f"{o} = {o}.astype({self.lit(v.dtype.np)}, copy=False)")
        return lines

    def _node(self, n, out) -> list[str]:
        name = n.op.name
        a = [self.var(x) for x in n.inputs]
        o = self.names[n.outputs[0]]
        ok = out is not None
        dst = f", out={out}" if ok else ""
        if name in CONTROL_OPS:
            return control_flow.render(self, n)
        if name in UNARY_UFUNC:
            return [f"{o} = {UNARY_UFUNC[name]}({a[0]}{dst})"]
        if name in BINARY_UFUNC:
            return [f"{o} = {BINARY_UFUNC[name]}({a[0]}, {a[1]}{dst})"]
        if name == "pow" and ok:
            return [f"{o} = np.power({a[0]}, {a[1]}{dst})"]
        if name == "relu":
            zero = "0" if not n.outputs[0].dtype.is_floating_point else "0.0"
            return [f"{o} = np.maximum({a[0]}, {zero}{dst})"]
        if name == "sigmoid" and ok:  # 1 / (1 + exp(-x)), computed in the output buffer
            return [f"{o} = np.negative({a[0]}{dst})", f"np.exp({o}, out={o})",
                    f"np.add({o}, 1.0, out={o})", f"np.reciprocal({o}, out={o})"]
        if name == "cast":
            if ok:
                return [f"np.copyto({out}, {a[0]}, casting='unsafe')", f"{o} = {out}"]
            return [f"{o} = np.asarray({a[0]}).astype({self.lit(n.attrs['dtype'].np)})"]
        if name == "where":  # the CPU kernel: branch-free bit select on large arrays
            if ok:
                self.globals["_where_into"] = where_into
                return [f"{o} = _where_into({a[0]}, {a[1]}, {a[2]}, {out})"]
            return [f"{o} = {self.impl('where')}({a[0]}, {a[1]}, {a[2]})"]
        if name == "matmul" and (ok or can_write_out(n)):
            return [f"{o} = np.matmul({a[0]}, {a[1]}{dst})"]
        if name in REDUCE_UFUNC and (ok or can_write_out(n)):
            at = n.attrs
            return [f"{o} = {REDUCE_UFUNC[name]}({a[0]}, axis={self.lit(tuple(at['dims']))}, "
                    f"keepdims={at['keepdim']!r}{dst})"]
        if name == "full" and ok:
            return [f"{out}.fill({self.lit(n.attrs['value'])})", f"{o} = {out}"]
        if name == "full":
            at = n.attrs
            return [f"{o} = np.full({self.lit(at['shape'])}, {self.lit(at['value'])}, "
                    f"dtype={self.lit(at['dtype'].np)})"]
        if name == "reshape":
            return [f"{o} = np.reshape({a[0]}, {self.lit(n.attrs['shape'])})"]
        if name == "permute":
            return [f"{o} = np.transpose({a[0]}, {self.lit(n.attrs['dims'])})"]
        if name == "expand":
            return [f"{o} = np.broadcast_to({a[0]}, {self.lit(n.attrs['shape'])})"]
        if name == "slice":
            at = n.attrs
            key = ", ".join(f"{self.lit(s)}:{self.lit(e)}:{self.lit(st)}"
                            for s, e, st in zip(at["starts"], at["stops"], at["steps"]))
            return [f"{o} = {a[0]}[{key},]" if key else f"{o} = {a[0]}"]
        return self.generic(n, a)

    def generic(self, n, a) -> list[str]:
        args = ", ".join(a)
        kw = ", ".join(f"{k}={self.lit(v)}" for k, v in n.attrs.items())
        call = f"{self.impl(n.op.name)}({args}{', ' if args and kw else ''}{kw})"
        lhs = ", ".join(self.names[o] for o in n.outputs)
        if len(n.outputs) == 1 and n.outputs[0].ndim == 0:
            return [f"{lhs} = np.asarray({call})"]
        return [f"{lhs} = {call}" if len(n.outputs) == 1 else f"{lhs} = {call}"]


def generate(graph: Graph, groups=None):
    """Source text, globals and plan for ``graph`` (see the module docstring)."""
    plan = getattr(graph, "plan", None) or make_plan(graph, can_write_out)
    r = _Renderer(graph, plan)
    buf = IndentedBuffer()
    for v in graph.inputs:
        r.names[v] = f"i_{ident(v.name)}"
    for v in graph.constants:
        r.names[v] = f"c_{ident(v.name)}"
    for n in graph.nodes:
        for o in n.outputs:
            r.names[o] = f"v_{ident(o.name)}"
    buf.writeline("def kernel(I, C, S, B):")
    with buf.indent():
        if graph.inputs:
            buf.writeline(", ".join(r.names[v] for v in graph.inputs) + ", = I")
        if graph.constants:
            buf.writeline(", ".join(r.names[v] for v in graph.constants) + ", = C")
        if graph.symbols:
            buf.writeline(", ".join(graph.symbols) + ", = S")
        if plan.slots:
            buf.writeline(", ".join(f"b{i}" for i in range(len(plan.slots))) + ", = B")
        buf.writeline("with np.errstate(all='ignore'):")
        with buf.indent():
            order = groups if groups is not None else [(None, [n]) for n in graph.nodes]
            for g in order:
                gnodes = g.nodes if hasattr(g, "nodes") else g[1]
                if hasattr(g, "kind") and len(gnodes) > 1:
                    buf.writeline(f"# {g.kind} group: "
                                  + ", ".join(n.op.name for n in gnodes))
                for n in gnodes:
                    o = n.outputs[0]
                    if o in plan.into_target:
                        out = r.names[plan.into_target[o]]
                    elif o in plan.slot:
                        out = f"b{plan.slot[o]}"
                    else:
                        out = None
                    buf.writelines(r.node(n, out))
            outs = ", ".join(r.var(o) for o in graph.outputs)
            wb = ", ".join(r.var(v) for t, v in graph.mutations
                           if plan.into_target.get(v) is not t)
            gw = ", ".join(r.var(v) if v is not None else "None" for _, v in graph.grad_writes)
            buf.writeline(f"return ({outs}{',' if outs else ''}), ({wb}{',' if wb else ''}), "
                          f"({gw}{',' if gw else ''})")
    for sub in r.subsources:  # the subgraphs' own code (compiled separately), for reading
        buf.writelines(sub.rstrip("\n").split("\n"))
    return buf.getvalue(), r.globals, plan


def compile_graph(graph: Graph, groups=None):
    """(kernel function, source, plan) for ``graph``."""
    src, glb, plan = generate(graph, groups)
    exec(code_object(src), glb)
    return glb["kernel"], src, plan


_MEMORY: dict = {}


def code_object(src: str):
    """The compiled code object of ``src``: from memory, the disk cache, or ``compile``."""
    import marshal
    from ..cache import DiskCache, make_key
    key = make_key("numpy-kernel", src)
    code = _MEMORY.get(key)
    if code is not None:
        return code
    disk = DiskCache("numpy")
    blob = disk.get(key)
    if blob is not None:
        try:
            code = marshal.loads(blob)
        except (ValueError, EOFError, TypeError):
            code = None
    if code is None:
        code = compile(src, f"<fw-compiled-{key[:12]}>", "exec")
        disk.put(key, marshal.dumps(code))
    _MEMORY[key] = code
    return code


MAX_SIZE_SETS = 8


def buffers_for(cache: dict, plan, names, sizes: tuple):
    """The planned buffers for symbol values ``sizes`` from ``cache``, allocating them on a
    miss; only the ``MAX_SIZE_SETS`` most recently allocated size sets are kept."""
    bufs = cache.get(sizes)
    if bufs is None:
        own = getattr(plan, "allocate", None)  # a GPU plan allocates device buffers
        env = dict(zip(names, sizes))
        bufs = cache[sizes] = own(env) if own is not None else allocate(plan, env)
        while len(cache) > MAX_SIZE_SETS:
            del cache[next(iter(cache))]
    return bufs


def allocate(plan, sizes: dict):
    """The planned buffers for concrete symbol values ``sizes`` (name -> int)."""
    bufs = []
    for shape, dtype in plan.slots:
        shp = tuple(int(s) if isinstance(s, int) else
                    int(s.subs({x: sizes[x.name] for x in s.free_symbols})) for s in shape)
        bufs.append(np.empty(shp, dtype=dtype.np))
    return bufs


__all__ = ["generate", "compile_graph", "allocate", "can_write_out", "ELEMENTWISE"]
