"""Autograd through a compiled forward: ``loss = compiled_model(x); loss.backward()``.

When a captured function returns tensors that require grad, the compiled entry runs the
forward graph's generated code and links its outputs to one autograd node. That node's
backward runs a second generated function: the gradient graph built by
:mod:`compiler.passes.autodiff` from the forward graph, with the parameters it reads
lifted to inputs (so their gradients come out) and one cotangent input per output. The
backward graph recomputes what it needs from the saved inputs (rematerialization), so the
forward keeps no intermediates alive.
"""

from __future__ import annotations

import numpy as np

from framework.ops.registry import RANDOM
from framework.tensor import Tensor

from .ir import Value
from .passes import rebuild, run_pipeline


def unsupported_reason(graph) -> str | None:
    """Why this forward cannot get a compiled backward (None when it can)."""
    if graph.grad_writes:
        return "backward() inside a function whose outputs require grad"
    return custom_function_reason(graph)


def custom_function_reason(graph) -> str | None:
    """Why ``graph`` cannot be differentiated because a custom ``autograd.Function`` ran
    in it (its backward is Python code; the graph holds only its forward's ops)."""
    names = getattr(graph, "custom_functions", ())
    if not names:
        return None
    return (f"custom autograd.Function {', '.join(sorted(set(names)))} in the traced graph "
            "(the graph holds its forward's ops, not its Python backward)")


def _lift(graph, diff_consts, n_user):
    """A copy of ``graph`` for differentiation: the constants in ``diff_consts`` become
    inputs (appended), then the outputs of random ops become inputs too (the backward
    reuses the forward's draws, e.g. dropout masks, instead of drawing again); only the
    first ``n_user`` outputs are kept."""
    randoms = []

    def visit(g, n, ins):
        if n.op.group != RANDOM:
            return None
        outs = [Value(g.fresh_name(o.name), o.shape, o.dtype, "input", device=o.device)
                for o in n.outputs]
        randoms.extend(outs)
        return outs

    g, vmap = rebuild(graph, visit)
    for v in diff_consts:
        nv = vmap[v]
        del g.constants[nv]
        nv.kind = "input"
        g.inputs.append(nv)
    g.inputs.extend(randoms)
    g.outputs = g.outputs[:n_user]
    g.mutations, g.grad_writes = [], []
    return g


def random_outputs(graph) -> list:
    """Outputs of the random ops of ``graph`` (saved by a forward for its backward)."""
    return [o for n in graph.nodes if n.op.group == RANDOM for o in n.outputs]


def _gradient_graph(lifted, wrt):
    from .passes import autodiff
    g = autodiff.run(lifted, wrt=wrt, cotangents=True)
    g.outputs = g.outputs[g.n_primal_outputs:]
    exprs, args = g.scalar_exprs, g.scalar_args
    g = run_pipeline(g)
    g.scalar_exprs, g.scalar_args = exprs, args
    return g


def _scalar_fn(g, lifted):
    """(forward scalar values in forward-input order) -> the backward's scalar inputs."""
    if not g.scalar_exprs:
        return None
    from .scalars import expr_source
    pos = [i for i, v in enumerate(lifted.inputs) if v.kind == "scalar_input"]
    env = []
    for name, i in g.scalar_args.items():
        env.append(f"    {name} = _s[{pos.index(i)}]")
    body = ", ".join(expr_source(e) for _, e in g.scalar_exprs)
    import math
    glb = {"_math": math}
    exec("def scalars(_s):\n" + "\n".join(env) + f"\n    return [{body}]\n", glb)
    return glb["scalars"]


def _source(name, t, entry_sources, own):
    """How the backward reads its constant ``name`` (tensor ``t``): the forward's source
    when it is the same tensor (a parameter, or a ``.grad`` read at call time), else the
    backward graph's own. The two graphs name values independently: a constant folded in
    the backward may share a name with a different forward constant."""
    src = entry_sources.get(name)
    if src is not None and (src[1] is t or (src[0] == "grad" and src[1].grad is t) or
                            (src[0] == "attr" and src[3] is t)):
        return src
    return own.get(name, ("tensor", t))


class Backward:
    """The compiled backward of one forward graph."""

    def __init__(self, fwd_graph, diff_inputs, diff_consts, entry_sources, backend="auto",
                 n_user=None):
        self.diff_inputs = diff_inputs          # indices into the forward's inputs
        self.diff_consts = diff_consts          # forward constant Values (params)
        n_user = len(fwd_graph.outputs) if n_user is None else n_user
        self.n_user = n_user
        lifted = _lift(fwd_graph, diff_consts, n_user)
        n_in = len(fwd_graph.inputs)
        wrt = tuple(diff_inputs) + tuple(range(n_in, n_in + len(diff_consts)))
        g = _gradient_graph(lifted, wrt)
        self.graph = g
        self.scalars = _scalar_fn(g, lifted)
        from .passes import fuse
        from .runtime import generate_kernel
        self.kernel, self.source, self.plan = generate_kernel(g, fuse.run(g), backend)
        own = getattr(g, "sources", {})
        self.consts = [_source(v.name, t, entry_sources, own) for v, t in g.constants.items()]
        self.n_out = n_user
        self.out_meta = [(o.shape, o.dtype) for o in fwd_graph.outputs[:n_user]]
        self.bufs: dict = {}

    def run(self, saved_inputs, cotangents, sizes, scalars=()):
        """Gradients (arrays) for the differentiable inputs then the lifted parameters;
        ``scalars``: the forward call's runtime scalar values."""
        consts = [src[1]._data if src[0] == "tensor" else
                  src[1][src[2]]._data if src[0] == "attr" else src[1].grad._data
                  for src in self.consts]
        bufs = self.bufs.get(sizes)
        if bufs is None:
            from .codegen.numpy import buffers_for
            bufs = buffers_for(self.bufs, self.plan, list(self.graph.symbols), sizes)
        extra = self.scalars(list(scalars)) if self.scalars is not None else []
        outs, _, _ = self.kernel(list(saved_inputs) + list(cotangents) + extra, consts, sizes,
                                 bufs)
        return outs


class _CompiledOp:
    """The op interface the backward engine expects, backed by a compiled backward."""

    group = "custom"
    saves_output = False
    differentiable_args = None
    saves_args = None
    name = "compiled"

    def __init__(self, backward, saved, sizes, out_meta, scalars=()):
        self.backward = backward
        self.saved = saved
        self.scalars = scalars
        self.sizes = sizes
        self.num_outputs = len(out_meta)
        self.out_meta = out_meta

    def vjp(self, grads, args, out):
        """Run the compiled backward: one gradient per differentiable argument."""
        grads = grads if isinstance(grads, tuple) else (grads,)
        cots = [g._data if isinstance(g, Tensor) else np.zeros(m[0], m[1].np)
                for g, m in zip(grads, self.out_meta)]
        res = self.backward.run(self.saved, cots, self.sizes, self.scalars)
        from .runtime import as_buffer
        return tuple(Tensor._wrap(as_buffer(r), a.dtype, a.device) for r, a in zip(res, args))


def link(entry, outputs, tensors, param_tensors, inputs, sizes, scalars=()):
    """Attach the compiled backward to ``outputs`` (tensors returned by the forward; those
    past the user's outputs are the random draws the backward reuses)."""
    from framework.autograd import Node
    bw = entry.backward
    outputs, draws = outputs[:bw.n_user], outputs[bw.n_user:]
    diff_args = [tensors[i] for i in bw.diff_inputs] + list(param_tensors)
    saved = list(inputs) + [t._data for t in param_tensors] + [d._data for d in draws]
    out_meta = [(o.shape, o.dtype) for o in outputs]
    op = _CompiledOp(bw, saved, sizes, out_meta, scalars)
    node = Node(op, tuple(diff_args), {}, tuple(outputs), [True] * len(diff_args))
    # an output that did not require grad when traced (a mask the forward caches on its
    # module) does not require it here either, as in eager mode
    traced = getattr(entry.cap, "output_requires_grad", None)
    for i, o in enumerate(outputs):
        if o.dtype.is_differentiable and (traced is None or i >= len(traced) or traced[i]):
            o.requires_grad, o.grad_fn, o._output_nr = True, node, i


def plan_backward(cap, graph, backend="auto", n_user=None):
    """A :class:`Backward` for the optimized forward ``graph`` of capture ``cap``."""
    diff_inputs = [i for i, v in enumerate(graph.inputs)
                   if v.kind == "input" and v.dtype.is_differentiable
                   and i < len(cap.input_requires_grad) and cap.input_requires_grad[i]]
    diff_consts = [v for v, t in graph.constants.items()
                   if isinstance(t, Tensor) and t.requires_grad and v.dtype.is_differentiable]
    return Backward(graph, diff_inputs, diff_consts, getattr(graph, "sources", {}), backend,
                    n_user)


__all__ = ["Backward", "link", "plan_backward", "unsupported_reason", "Value"]
