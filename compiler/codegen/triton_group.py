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
from .control_flow import CONTROL_OPS, ControlStep
from .triton import REDUCTIONS, SUPPORTED, Leaf, PNode, RuntimeScalar, render_pointwise, \
    render_reduction
from .triton_expr import Buf, UnsupportedError
from .triton_index import as_expr, contiguous_strides, is_zero


class _Plan:
    """The NumPy backend's plan interface: no pre-allocated slots (buffers are allocated
    per call on the device), plus the steps for ``describe``/kernel counting."""

    def __init__(self, into_target=None):
        self.slots = []
        self.steps: list = []
        # mutated value -> target: the kernel writes these itself (no runtime write-backs)
        self.into_target = dict(into_target or {})

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
    """One generated kernel computing a group's outputs from its inputs.

    The kernel is generated for contiguous inputs, whose addresses then simplify to plain
    offsets (``in0 + xindex``: no index division, wide vector loads); an input that comes
    with other strides gets a variant reading it through stride arguments, made when
    first needed and kept.
    """

    def __init__(self, group, graph, smap):
        self.label = f"{group.kind}: " + ", ".join(n.op.name for n in group.nodes)
        self.inputs = [v for v in group.inputs if v.kind != "scalar_input"]
        self.outputs = list(group.outputs)
        self.smap = smap
        self._group = group
        self._variants: dict[tuple, tuple] = {}  # layout -> (kernel, its runtime scalars)
        self._contig = tuple(contiguous_strides(_shape(v, smap)) for v in self.inputs)
        self._names = [f"in{i}" for i in range(len(self.inputs))]
        self._contig_ints = [None if any(e.free_symbols for e in st) else tuple(map(int, st))
                             for st in self._contig]
        self.kernel = self._variant((True,) * len(self.inputs))[0]

    def variants(self) -> list:
        """The kernels made so far (one per input layout seen)."""
        return [kernel for kernel, _ in self._variants.values()]

    def _variant(self, contiguous: tuple) -> tuple:
        """(kernel, {scalar Value: RuntimeScalar}) for inputs of this layout."""
        made = self._variants.get(contiguous)
        if made is None:
            made = self._variants[contiguous] = self._render(contiguous)
        return made

    def _render(self, contiguous: tuple):
        group, smap = self._group, self.smap
        leaves, scalars = {}, {}
        for i, v in enumerate(self.inputs):
            shape = _shape(v, smap)
            st = (self._contig[i] if contiguous[i] else
                  tuple(as_expr(f"in{i}_st{d}") for d in range(len(shape))))
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
            return render_reduction(roots, _shape(src, smap), dims, label=label,
                                    fixed_constants=True), scalars
        return render_pointwise(roots, label=label, fixed_constants=True), scalars

    def _is_contiguous(self, i: int, buf, sizes) -> bool:
        want = self._contig_ints[i] or _concrete(self._contig[i], sizes, self.smap)
        return all(n == 1 or st == w for n, st, w in zip(buf.shape, buf.stride(), want))

    def run(self, env, sizes, device):
        from framework.backends.cuda import empty
        bufs, args = {}, dict(sizes)
        contiguous = []
        for i, v in enumerate(self.inputs):
            b = env[v]
            bufs[self._names[i]] = b
            contiguous.append(self._is_contiguous(i, b, sizes))
            if not contiguous[-1]:  # the variant reads this input through its strides
                for d, s in enumerate(b.stride()):
                    args[f"in{i}_st{d}"] = s
        kernel, runtime_scalars = self._variant(tuple(contiguous))
        for k, v in enumerate(self.outputs):
            shape = _concrete(v.shape, sizes, self.smap)
            env[v] = bufs[f"out{k}"] = empty(shape, v.dtype.np, device)
        scalars = {k: _size_scalar(x, sizes) if isinstance(x, sympy.Basic) else x
                   for k, x in kernel.kb.scalars.items()}
        for v, rs in runtime_scalars.items():
            scalars[rs.argname] = env[v]
        kernel(bufs, args, scalars)


class _MatmulStep(_Step):
    """``triton_kernels.matmul`` (through the backend) followed by the epilogue kernel."""

    kernels = 1

    def __init__(self, group, graph, smap):
        self.node = group.nodes[0]
        self.label = "matmul"
        self.epilogue = None
        rest = group.nodes[1:]
        self.bias_add = _fusable_bias(self.node, rest, group, graph)
        if self.bias_add is not None:
            rest = rest[1:]
            self.label = "matmul + bias"
        if rest:
            from types import SimpleNamespace
            made = {o for m in rest for o in m.outputs}
            outs = [o for o in group.outputs if o in made]
            ins = list(dict.fromkeys([x for n in rest for x in n.inputs if isinstance(x, Value)
                                      and x not in {o for m in rest for o in m.outputs}]))
            sub = SimpleNamespace(kind="pointwise", nodes=rest, inputs=ins, outputs=outs)
            self.epilogue = _KernelStep(sub, graph, smap)
            self.kernels = 2
            self.label += " + epilogue(" + ", ".join(n.op.name for n in rest) + ")"

    def run(self, env, sizes, device):
        from framework.backends.cuda import IMPLS
        n = self.node
        args = [env[x] if isinstance(x, Value) else x for x in n.inputs]
        if self.bias_add is not None:
            from framework.backends.cuda_index import matmul
            add, bias = self.bias_add
            env[add.outputs[0]] = matmul(*args, bias=env[bias])
        else:
            env[n.outputs[0]] = IMPLS["matmul"](*args, **n.attrs)
        if self.epilogue is not None:
            self.epilogue.run(env, sizes, device)


def _fusable_bias(mm, rest, group, graph):
    """(add node, bias Value) when ``rest`` starts with ``matmul + bias[N]`` and the bare
    product is used nowhere else (the bias then rides in the matmul kernel's epilogue)."""
    out = mm.outputs[0]
    if not rest or rest[0].op.name != "add" or out in group.outputs:
        return None
    add = rest[0]
    a, b = add.inputs
    bias = b if a is out else (a if b is out else None)
    ok = (isinstance(bias, Value) and bias.kind != "scalar_input" and len(bias.shape) == 1
          and out.ndim >= 2 and mm.inputs[1].ndim >= 2 and bias.shape[0] == out.shape[-1]
          and bias.dtype is out.dtype and add.outputs[0].shape == out.shape
          and out.dtype.name in ("float16", "bfloat16", "float32"))
    if not ok or sum(1 for n in graph.nodes for x in n.inputs if x is out) != 1:
        return None
    return add, bias


class _EagerStep(_Step):
    """One node through the CUDA backend's implementation (its own kernel(s))."""

    def __init__(self, node, why):
        self.node = node
        if node.op.name in _VIEW_OPS:  # a strided view of its input: no kernel at all
            self.kernels = 0
            self.label = f"{node.op.name} (a view, no kernel)"
        else:
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


def _size_scalar(e, sizes):
    """An operand computed from symbolic sizes (``n / (n - 1)``) for this launch's sizes:
    an int for size arithmetic, a float for a ratio."""
    env = {}
    for sym in e.free_symbols:
        env[sym] = sizes[sym.name] if sym.name in sizes else sizes[f"ks_{sym.name}"]
    v = e.subs(env)
    return int(v) if e.is_integer else float(v)


def _concrete_attr(v, sizes):
    if isinstance(v, sympy.Basic):
        return int(v.subs({s: sizes.get(f"ks_{s.name}", 0) for s in v.free_symbols}))
    if isinstance(v, tuple):
        return tuple(_concrete_attr(x, sizes) for x in v)
    if isinstance(v, slice):  # an index key with a symbolic bound (``cache[:, pos:pos+1]``)
        return slice(*(_concrete_attr(x, sizes) for x in (v.start, v.stop, v.step)))
    return v


def _merged_step(group, graph, smap):
    try:
        return _KernelStep(group, graph, smap)
    except UnsupportedError:  # render the merged parts one by one
        parts = [_Group(p.kind, p.nodes, [p]) for p in group.parts]
        _wire(graph, parts)
        steps = []
        for p in parts:
            st = _step_for(p, graph, smap)
            steps.extend(st if isinstance(st, list) else [st])
        return steps


def _split_by_rows(group) -> list:
    """Cut a group before every reduction over other rows than the ones before it."""
    parts, cur, split = [], [], None
    for n in group.nodes:
        if n.op.name in REDUCTIONS:
            key = (tuple(n.inputs[0].shape), tuple(n.attrs["dims"]))
            if split is not None and key != split:
                parts.append(cur)
                cur = []
            split = key
        cur.append(n)
    parts.append(cur)
    return [_Group("reduction" if any(m.op.name in REDUCTIONS for m in p) else "pointwise",
                   p, []) for p in parts if p]


_VIEW_OPS = frozenset({"reshape", "permute", "expand", "slice"})


def _step_for(group, graph, smap, split=True):
    if any(n.op.name in CONTROL_OPS for n in group.nodes):  # cond / while_loop
        return [ControlStep(n) if n.op.name in CONTROL_OPS else _EagerStep(n, "control flow")
                for n in group.nodes]
    if all(n.op.name in _VIEW_OPS for n in group.nodes):
        return [_EagerStep(n, "view") for n in group.nodes]
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
        parts = _split_by_rows(group) if split else []
        if len(parts) > 1:
            _wire(graph, parts)
            steps = []
            for p in parts:
                st = _step_for(p, graph, smap, split=False)
                steps.extend(st if isinstance(st, list) else [st])
            return steps
    else:
        why = f"{group.kind} group"
    return [_EagerStep(n, why) for n in group.nodes]


# Composites kept whole on the GPU (their backend kernel beats the decomposition's fusion).
KEEP = frozenset({"embedding", "flash_attention", "flash_attention_backward"})


def prepare(graph):
    """``graph`` with composites decomposed into primitives (so fusion sees softmax, layer
    norm, gelu or cross-entropy as pointwise + reduction chains) and its fusion groups."""
    from ..passes import decompose, fuse
    g2 = decompose.run(graph, keep=set(KEEP))
    return g2, fuse.run(g2)


class _Group:
    """A fusion group after row merging (``parts``: the groups it was merged from)."""

    def __init__(self, kind, nodes, parts):
        self.kind, self.nodes, self.parts = kind, list(nodes), parts
        self.inputs, self.outputs = [], []


def _numel(shape):
    out = sympy.Integer(1)
    for s in shape:
        out = out * (s if isinstance(s, sympy.Basic) else sympy.Integer(int(s)))
    return out


def _eq(a, b) -> bool:
    return is_zero(a - b)


def _row_split(nodes):
    for n in nodes:
        if n.op.name in REDUCTIONS:
            src, dims = n.inputs[0], tuple(n.attrs["dims"])
            x = _numel([s for i, s in enumerate(src.shape) if i not in dims])
            return src.shape, dims, x, _numel(src.shape) / x if x != 0 else 0
    return None


def _absorbable(cur, g) -> bool:
    """May group ``g`` join the row kernel ``cur`` (same rows, only renderable ops)?"""
    split = _row_split(cur.nodes)
    if split is None or g.kind not in ("pointwise", "reduction", "opaque"):
        return False
    shape, dims, x, r = split
    for n in g.nodes:
        if n.op.name not in SUPPORTED or len(n.outputs) != 1:
            return False
        if n.op.name in REDUCTIONS and (tuple(n.attrs["dims"]) != dims or
                                        tuple(n.inputs[0].shape) != tuple(shape)):
            return False
        k = _numel(n.outputs[0].shape)
        if not (_eq(k, x) or _eq(k, x * r) or _eq(k, r)):
            return False
    return True


def merge_rows(graph, groups) -> list:
    """Merge adjacent groups that work on the same rows as a reduction group into its row
    kernel (the fuser stops at the reduction's smaller result shape; the renderer does
    not), and fold constant ``full`` groups into the group that follows them."""
    out, cur, pending = [], None, []
    for g in groups:
        if all(n.op.name == "full" for n in g.nodes):
            pending.append(g)
            continue
        if cur is not None and _absorbable(cur, g):
            cur.nodes += [n for p in pending for n in p.nodes] + list(g.nodes)
            cur.parts += pending + [g]
            pending = []
            if g.kind == "reduction":
                cur.kind = "reduction"
            continue
        if cur is not None:
            out.append(cur)
        cur = _Group(g.kind, [n for p in pending for n in p.nodes] + list(g.nodes),
                     pending + [g])
        pending = []
    if cur is not None:
        out.append(cur)
    out += [_Group(p.kind, p.nodes, [p]) for p in pending]
    _wire(graph, out)
    return out


def _wire(graph, groups):
    where = {o: gi for gi, g in enumerate(groups) for n in g.nodes for o in n.outputs}
    escaping = {o for o in graph.outputs if isinstance(o, Value)}
    escaping |= {v for _, v in graph.mutations}
    escaping |= {v for _, v in graph.grad_writes if v is not None}
    owner = {id(n): gi for gi, g in enumerate(groups) for n in g.nodes}
    used_outside = set()
    for n in graph.nodes:  # uses by nodes of other groups (or of no group in the list)
        gi = owner.get(id(n))
        for x in n.inputs:
            if isinstance(x, Value) and where.get(x) != gi:
                used_outside.add(x)
    for gi, g in enumerate(groups):
        g.inputs, g.outputs = [], []
        for n in g.nodes:
            for x in n.inputs:
                if isinstance(x, Value) and where.get(x) != gi and x not in g.inputs:
                    g.inputs.append(x)
    for g in groups:
        for n in g.nodes:
            for o in n.outputs:
                if (o in used_outside or o in escaping) and o not in g.outputs:
                    g.outputs.append(o)


def compile_graph(graph, groups):
    """(kernel, source, plan) for a graph on CUDA (see the module docstring). The groups
    the runtime fused are recomputed after decomposing composites."""
    original_consts = list(graph.constants)
    into_target = {v: t for t, v in graph.mutations}
    graph, groups = prepare(graph)
    extra = {v: t for v, t in graph.constants.items() if v not in set(original_consts)}
    smap = _sym_map(graph)
    plan = _Plan(into_target)
    plan.graph = graph  # the decomposed graph whose Values the steps read and write
    for g in merge_rows(graph, groups):
        step = _step_for(g, graph, smap) if len(g.parts) == 1 else _merged_step(g, graph, smap)
        plan.steps.extend(step if isinstance(step, list) else [step])
    from ..log import emit
    emit("fusion", "CUDA kernels (after decomposition and row merging):\n" + describe(plan))
    sym_names = list(graph.symbols)
    inputs, consts = list(graph.inputs), original_consts
    mutations = list(graph.mutations)

    def kernel(ins, cs, syms, bufs):  # the NumPy backend's kernel(I, C, S, B)
        from framework.backends.cuda import copy_into
        env = dict(zip(inputs, ins))
        env.update(zip(consts, cs))
        for v, t in extra.items():  # constants the decompositions introduced
            env[v] = t._data if t.device.type == "cuda" else t.to("cuda")._data
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
    """One line per step (what each kernel computes, or why a node runs on its own)."""
    return "\n".join(f"kernel {i}: {s.describe()}" for i, s in enumerate(plan.steps))


__all__ = ["compile_graph", "describe"]
