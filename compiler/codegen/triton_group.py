"""Compiled graphs on CUDA: one generated Triton kernel per fusion group.

``compile_graph(graph, groups) -> (kernel, source, plan)`` follows the NumPy backend's
contract (``kernel(I, C, S, B) -> (outputs, write-backs, grads)``): pointwise and
reduction groups become one kernel each (views inside a group are index arithmetic);
a matmul group runs ``triton_kernels.matmul`` and one kernel for its epilogue; anything
the renderer cannot express runs node by node through the CUDA backend's own kernels.
Mutations are written into their targets by the kernel itself, so the runtime receives no
write-backs to copy.
"""

from __future__ import annotations

import sympy

from ..ir import Value
from .triton import REDUCTIONS, SUPPORTED, Leaf, PNode, RuntimeScalar, render_pointwise, \
    render_reduction
from .triton_expr import Buf, UnsupportedError
from .triton_index import as_expr


class _Plan:
    """The NumPy backend's plan interface: no pre-allocated slots (buffers are allocated
    per call on the device), plus the steps for ``describe``/kernel counting."""

    def __init__(self):
        self.slots = []
        self.steps: list = []

    @property
    def kernel_count(self) -> int:
        """Kernels launched per call (generated + hand-written)."""
        return sum(s.kernels for s in self.steps)


class _Step:
    kernels = 1

    def describe(self) -> str:
        return self.label


def _sym_map(graph):
    return {s: as_expr(f"ks_{name}") for name, s in graph.symbols.items()}


def _shape(v, smap):
    return tuple(as_expr(s).xreplace(smap) if isinstance(s, sympy.Basic) else int(s)
                 for s in v.shape)


class _KernelStep(_Step):
    """One generated kernel computing a group's outputs from its inputs."""

    def __init__(self, group, graph, smap):
        self.label = f"{group.kind}: " + ", ".join(n.op.name for n in group.nodes)
        self.inputs = [v for v in group.inputs if v.kind != "scalar_input"]
        self.outputs = list(group.outputs)
        self.smap = smap
        leaves, scalars = {}, {}
        for i, v in enumerate(self.inputs):
            shape = _shape(v, smap)
            st = tuple(as_expr(f"in{i}_st{d}") for d in range(len(shape)))
            leaves[v] = Leaf(Buf(f"in{i}", v.dtype, shape, st))
        nodes = {}

        def ref(x):
            if isinstance(x, Value):
                if x in nodes:
                    return nodes[x]
                if x.kind == "scalar_input":
                    return scalars.setdefault(x, RuntimeScalar(x))
                return leaves[x]
            return x
        for n in group.nodes:
            if n.op.name not in SUPPORTED or len(n.outputs) != 1:
                raise UnsupportedError(f"{n.op.name} cannot be rendered")
            o = n.outputs[0]
            nodes[o] = PNode(n.op.name, [ref(x) for x in n.inputs],
                             _attrs(n.attrs, smap), _shape(o, smap), o.dtype)
        roots = [nodes[o] for o in self.outputs]
        reds = [n for n in group.nodes if n.op.name in REDUCTIONS]
        label = "_".join(n.op.name for n in group.nodes)[:40]
        if reds:
            src = reds[0].inputs[0]
            dims = tuple(reds[0].attrs["dims"])
            for r in reds[1:]:
                if tuple(r.attrs["dims"]) != dims or r.inputs[0].shape != src.shape:
                    raise UnsupportedError("reductions over different dims in one group")
            self.kernel = render_reduction(roots, _shape(src, smap), dims, label=label)
        else:
            self.kernel = render_pointwise(roots, label=label)
        self.scalars = scalars

    def run(self, env, sizes, device):
        from framework.backends.cuda import empty
        bufs, args = {}, dict(sizes)
        for i, v in enumerate(self.inputs):
            b = env[v]
            bufs[f"in{i}"] = b
            for d, s in enumerate(b.stride()):
                args[f"in{i}_st{d}"] = s
        for k, v in enumerate(self.outputs):
            shape = _concrete(v.shape, sizes, self.smap)
            env[v] = bufs[f"out{k}"] = empty(shape, v.dtype.np, device)
        scalars = dict(self.kernel.kb.scalars)
        for v, rs in self.scalars.items():
            scalars[rs.argname] = env[v]
        self.kernel(bufs, args, scalars)


class _MatmulStep(_Step):
    """``triton_kernels.matmul`` (through the backend) followed by the epilogue kernel."""

    kernels = 1

    def __init__(self, group, graph, smap):
        self.node = group.nodes[0]
        self.label = "matmul"
        self.epilogue = None
        rest = group.nodes[1:]
        if rest:
            from types import SimpleNamespace
            outs = [o for o in group.outputs if o is not self.node.outputs[0]]
            ins = list(dict.fromkeys([x for n in rest for x in n.inputs if isinstance(x, Value)
                                      and x not in {o for m in rest for o in m.outputs}]))
            sub = SimpleNamespace(kind="pointwise", nodes=rest, inputs=ins, outputs=outs)
            self.epilogue = _KernelStep(sub, graph, smap)
            self.kernels = 2
            self.label = "matmul + epilogue(" + ", ".join(n.op.name for n in rest) + ")"

    def run(self, env, sizes, device):
        from framework.backends.cuda import IMPLS
        n = self.node
        env[n.outputs[0]] = IMPLS["matmul"](*[env[x] if isinstance(x, Value) else x
                                              for x in n.inputs], **n.attrs)
        if self.epilogue is not None:
            self.epilogue.run(env, sizes, device)


class _EagerStep(_Step):
    """One node through the CUDA backend's implementation (its own kernel(s))."""

    def __init__(self, node, why):
        self.node = node
        self.label = f"{node.op.name} (backend kernel: {why})"

    def run(self, env, sizes, device):
        from framework.backends.cuda import IMPLS
        n = self.node
        args = [env[x] if isinstance(x, Value) else x for x in n.inputs]
        attrs = {k: _concrete_attr(v, sizes) for k, v in n.attrs.items()}
        impl = IMPLS.get(n.op.name)
        if impl is None:
            out = _decomposed(n, args, attrs)
        else:
            out = impl(*args, **attrs)
        outs = out if len(n.outputs) > 1 else (out,)
        for v, b in zip(n.outputs, outs):
            env[v] = b


def _decomposed(n, args, attrs):
    from framework.backends.cuda_ops import _decomp
    return _decomp(n.op.name, *args, **attrs)


def _attrs(attrs, smap):
    out = {}
    for k, v in attrs.items():
        if isinstance(v, sympy.Basic):
            v = v.xreplace(smap)
        elif isinstance(v, tuple):
            v = tuple(x.xreplace(smap) if isinstance(x, sympy.Basic) else x for x in v)
        out[k] = v
    return out


def _concrete(shape, sizes, smap):
    subs = {sym: sizes[sym.name] for sym in smap.values()}
    return tuple(int(as_expr(s).xreplace(smap).xreplace(subs)) if isinstance(s, sympy.Basic)
                 else int(s) for s in shape)


def _concrete_attr(v, sizes):
    if isinstance(v, sympy.Basic):
        return int(v.subs({s: sizes.get(f"ks_{s.name}", 0) for s in v.free_symbols}))
    if isinstance(v, tuple):
        return tuple(_concrete_attr(x, sizes) for x in v)
    return v


def _step_for(group, graph, smap):
    if group.kind == "matmul" and group.nodes[0].op.name == "matmul":
        try:
            return _MatmulStep(group, graph, smap)
        except UnsupportedError:
            pass
    if group.kind in ("pointwise", "reduction"):
        try:
            return _KernelStep(group, graph, smap)
        except UnsupportedError as e:
            why = str(e)
    else:
        why = f"{group.kind} group"
    return [_EagerStep(n, why) for n in group.nodes]


def compile_graph(graph, groups):
    """(kernel, source, plan) for a graph on CUDA (see the module docstring)."""
    smap = _sym_map(graph)
    plan = _Plan()
    for g in groups:
        step = _step_for(g, graph, smap)
        plan.steps.extend(step if isinstance(step, list) else [step])
    sym_names = list(graph.symbols)
    inputs, consts = list(graph.inputs), list(graph.constants)
    mutations = list(graph.mutations)

    def kernel(ins, cs, syms, bufs):  # the NumPy backend's kernel(I, C, S, B)
        from framework.backends.cuda import copy_into
        env = dict(zip(inputs, ins))
        env.update(zip(consts, cs))
        sizes = {f"ks_{name}": int(v) for name, v in zip(sym_names, syms)}
        device = _device_index(ins, cs)
        for step in plan.steps:
            step.run(env, sizes, device)
        for target, value in mutations:
            if env[target] is not env[value]:
                copy_into(env[target], env[value])
        outs = tuple(_get(env, v) for v in graph.outputs)
        grads = tuple(_get(env, v) if v is not None else None for _, v in graph.grad_writes)
        return outs, (), grads

    return kernel, _source(plan), plan


def _get(env, v):
    if isinstance(v, Value):
        return env[v]
    return v


def _device_index(ins, cs):
    for b in list(ins) + list(cs):
        alloc = getattr(b, "alloc", None)
        if alloc is not None:
            return alloc.device
    return 0


def _source(plan) -> str:
    lines = [f"# {len(plan.steps)} steps, {plan.kernel_count} kernel launches per call"]
    seen = set()
    for i, s in enumerate(plan.steps):
        lines.append(f"# step {i}: {s.describe()}")
    for s in plan.steps:
        for k in (getattr(s, "kernel", None), getattr(getattr(s, "epilogue", None), "kernel",
                                                       None)):
            if k is not None and k.name not in seen:
                seen.add(k.name)
                lines.append(k.source)
    return "\n".join(lines)


def describe(plan) -> str:
    """One line per step."""
    return "\n".join(s.describe() for s in plan.steps)


__all__ = ["compile_graph", "describe"]
