"""Code generation for control-flow nodes (``cond``, ``while_loop``).

Each subgraph is compiled like a whole graph -- fusion and code generation for its device
(NumPy on the CPU, Triton on CUDA; the pass pipeline already ran on it, see
:func:`compiler.passes.run_pipeline`) -- into a :class:`SubgraphKernel`. The NumPy
renderer then emits a plain ``if``/``else`` or ``while`` around calls of those kernels; on
CUDA a step reads the predicate to the host (a synchronization) and runs the chosen
kernels.
"""

from __future__ import annotations

import numpy as np

from framework.control_flow import _host_bool, copy_buffer, own_copies

CONTROL_OPS = frozenset({"cond", "while_loop"})


def _root(v):
    while v.producer is not None and v.producer.op.is_view:
        v = v.producer.inputs[0]
    return v


class SubgraphKernel:
    """A compiled subgraph: ``k(inputs, sizes) -> outputs`` (raw buffers), ``sizes`` the
    values of ``k.sym_names``. Outputs never share memory with the inputs or constants
    (the enclosing code may reuse its buffers once the node has run)."""

    def __init__(self, graph, backend="auto"):
        from ..passes import fuse
        from ..runtime import generate_kernel
        self.graph = graph
        self.kernel, self.source, self.plan = generate_kernel(graph, fuse.run(graph), backend)
        self.consts = [t._data for t in graph.constants.values()]
        self.sym_names = list(graph.symbols)
        self.copy_out = [i for i, o in enumerate(graph.outputs) if _root(o).kind != "node"]
        self.bufs: dict = {}

    def __call__(self, inputs, sizes=()):
        from .numpy import buffers_for
        bufs = self.bufs.get(sizes)
        if bufs is None:
            bufs = buffers_for(self.bufs, self.plan, self.sym_names, sizes)
        outs, _, _ = self.kernel(list(inputs), self.consts, sizes, bufs)
        outs = [o if hasattr(o, "data_ptr") else np.asarray(o) for o in outs]
        for i in self.copy_out:
            outs[i] = copy_buffer(outs[i])
        return tuple(outs)


def _kernels(node):
    if node.op.name == "cond":
        keys = ("true_graph", "false_graph")
    else:
        keys = ("cond_graph", "body_graph")
    return [(k, SubgraphKernel(node.attrs[k])) for k in keys]


def _tuple(items) -> str:
    return f"({', '.join(items)}{',' if len(items) == 1 else ''})"


def render(r, n) -> list:
    """NumPy source lines of a control-flow node for the renderer ``r``
    (:class:`compiler.codegen.numpy._Renderer`)."""
    k = len(r.subsources) // 2   # two subgraphs per control-flow node
    names = []
    for key, kernel in _kernels(n):
        missing = [s for s in kernel.sym_names if s not in r.graph.symbols]
        if missing:
            raise NotImplementedError(f"{n.op.name}: subgraph sizes {missing} are not sizes of "
                                      "the enclosing graph")
        name = f"_{n.op.name}{k}_{key.split('_')[0]}"
        r.globals[name] = kernel
        r.subsources.append(f"# {name}: {n.op.name} {key}\n"
                            + kernel.source.replace("def kernel(", f"def {name}_kernel(", 1))
        names.append((name, _tuple(kernel.sym_names)))
    lhs = ", ".join(r.names[o] for o in n.outputs) + ","
    args = [r.var(x) for x in n.inputs]
    if n.op.name == "cond":
        (t, ts), (f, fs) = names
        ins = _tuple(args[1:])
        return [f"if {args[0]}:", f"    {lhs} = {t}({ins}, {ts})", "else:",
                f"    {lhs} = {f}({ins}, {fs})"]
    (c, cs), (b, bs) = names
    carry = f"{r.names[n.outputs[0]]}_carry"
    nk = len(n.outputs)
    initial = _tuple(args[:nk])
    ins = f"{carry} + {_tuple(args[nk:])}" if args[nk:] else carry
    r.globals["_own_copies"] = own_copies
    return [f"{carry} = {initial}",
            f"while {c}({ins}, {cs})[0]:",
            f"    {carry} = {b}({ins}, {bs})",
            f"{lhs} = _own_copies({carry}, {initial})"]


class ControlStep:
    """A control-flow node on CUDA (``compiler.codegen.triton_group``'s step interface)."""

    kernels = 0  # data-dependent: the chosen subgraphs launch their own

    def __init__(self, node):
        self.node = node
        self.subs = _kernels(node)
        self.label = f"{node.op.name} (" + ", ".join(
            f"{k}: {len(s.plan.steps)} steps" for k, s in self.subs) + \
            "; the predicate is read on the host)"

    def describe(self) -> str:
        return self.label

    def run(self, env, sizes, device):
        n = self.node
        args = [env[x] for x in n.inputs]

        def call(kernel, ins):
            return kernel(ins, tuple(sizes[f"ks_{s}"] for s in kernel.sym_names))
        if n.op.name == "cond":
            kernel = self.subs[0 if _host_bool(args[0]) else 1][1]
            outs = call(kernel, args[1:])
        else:
            (_, c), (_, b) = self.subs
            nk = len(n.outputs)
            carry, free = tuple(args[:nk]), tuple(args[nk:])
            while _host_bool(call(c, carry + free)[0]):
                carry = call(b, carry + free)
            outs = own_copies(carry, args[:nk])
        for v, o in zip(n.outputs, outs):
            env[v] = o


__all__ = ["CONTROL_OPS", "SubgraphKernel", "ControlStep", "render"]
