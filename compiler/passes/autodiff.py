"""Autodiff as a graph transformation.

``run(graph, wrt=(0,), output=0)`` returns a new graph with the same inputs whose outputs
are the original outputs followed by the gradient of output ``output`` (a scalar) with
respect to the inputs listed in ``wrt``. With ``cotangents=True`` the new graph takes one
extra input per original output (the cotangent) and returns the vector-Jacobian product
instead (what ``fw.vjp`` needs).

How: the graph is replayed with ``apply`` on data-less tensors under a fresh capture, with
grad mode on and the ``wrt`` inputs requiring grad, and the registry's VJP rules run over it
through the ordinary backward engine. Because the rules are public-op calls, the backward
becomes nodes of the new graph: an ordinary graph that every other pass (and fusion) sees
whole, and that can be differentiated again.
"""

from __future__ import annotations

from framework._state import tls
from framework.autograd import enable_grad, no_grad
from framework.autograd import grad as autograd_grad
from framework.ops.registry import apply
from framework.tensor import meta_tensor

from ..ir import Graph, Value


def interpret(graph: Graph, inputs, constants=None):
    """Run ``graph`` op by op with ``apply`` on ``inputs`` (tensors or Python scalars, in
    ``graph.inputs`` order); constants default to the graph's own tensors. Returns the list
    of output tensors. Works on eager tensors and inside another capture alike."""
    env: dict = dict(zip(graph.inputs, inputs))
    for v, t in graph.constants.items():
        env[v] = t if constants is None else constants[v]
    saved, tls.autocast = tls.autocast, None  # the graph holds autocast's casts already
    try:
        for n in graph.nodes:
            args = [env[x] if isinstance(x, Value) else x for x in n.inputs]
            if n.no_grad:  # recorded under no_grad: no gradient flows through it
                out = _replay_no_grad(n, args)
            elif n.op.name == "reshape":  # traced on data-less tensors: may need a copy here
                out = args[0].reshape(n.attrs["shape"])
            else:
                out = apply(n.op, *args, **n.attrs)
            outs = out if n.op.num_outputs != 1 else (out,)  # None: variadic (cond)
            for v, t in zip(n.outputs, outs):
                env[v] = t
    finally:
        tls.autocast = saved
    return [env[o] if isinstance(o, Value) else o for o in graph.outputs]


def _replay_no_grad(n, args):
    saved = tls.grad_enabled, tls.replaying_no_grad
    tls.grad_enabled, tls.replaying_no_grad = False, True
    try:
        if n.op.name == "reshape":
            return args[0].reshape(n.attrs["shape"])
        return apply(n.op, *args, **n.attrs)
    finally:
        tls.grad_enabled, tls.replaying_no_grad = saved


def run(graph: Graph, wrt=(0,), output: int = 0, cotangents: bool = False,
        scalar_values=None) -> Graph:
    """The gradient graph (see the module docstring).

    Runtime scalar inputs of ``graph`` stay runtime scalars: the new graph's scalar inputs
    (after its tensor inputs) are expressions of them, listed in ``g.scalar_exprs`` as
    (Value, sympy expr) with ``g.scalar_args`` mapping each symbol to the position of the
    scalar among ``graph.inputs``. ``scalar_values`` (position -> value) are the values
    the trace runs with (comparisons inside VJP rules see them).
    """
    from framework.creation import zeros
    from ..capture import trace
    n_in = len(graph.inputs)
    n_out = len(graph.outputs)
    wrt = tuple(wrt)

    def joint(*args):
        xs = list(args[:n_in])
        cots = list(args[n_in:])
        with enable_grad():
            outs = interpret(graph, xs)
            targets = [xs[i] for i in wrt]
            if cotangents:
                pairs = [(o, c) for o, c in zip(outs, cots) if o.requires_grad]
                roots, seeds = [p[0] for p in pairs], [p[1] for p in pairs]
            else:
                roots, seeds = ([outs[output]], None) if outs[output].requires_grad else ([], None)
            grads = autograd_grad(roots, targets, seeds, allow_unused=True) if roots \
                else [None] * len(targets)
        grads = [zeros(t.shape, dtype=t.dtype, device=t.device) if g is None else g
                 for g, t in zip(grads, targets)]
        # cut this replay's own autograd records, not a stop-gradient of the new graph: an
        # outer differentiation still sees through it (closed-over tensors needing grad)
        with no_grad():
            return tuple(o.detach() for o in outs) + tuple(g.detach() for g in grads)

    examples = []
    scalar_values = scalar_values or {}
    for i, v in enumerate(graph.inputs):
        if v.kind == "scalar_input":
            examples.append(float(scalar_values.get(i, 1.0)))
            continue
        t = meta_tensor(v.shape, v.dtype, v.device) if v.device is not None else \
            meta_tensor(v.shape, v.dtype)
        t.requires_grad = i in wrt
        examples.append(t)
    if cotangents:
        for o in graph.outputs:
            examples.append(meta_tensor(o.shape, o.dtype, o.device) if o.device is not None
                            else meta_tensor(o.shape, o.dtype))
    names = [v.name for v in graph.inputs if v.kind != "scalar_input"] + \
        [f"cot_{o.name}" for o in graph.outputs]
    has_scalars = any(v.kind == "scalar_input" for v in graph.inputs)
    cap = trace(joint, tuple(examples), input_names=names, specialize_floats=not has_scalars)
    g = cap.graph
    g.scalar_exprs = list(cap.scalar_exprs)
    g.scalar_args = {sym.name: src[1][1] for sym, src in cap.scalar_sources.items()
                     if src[0] == "arg"}
    g.symbols = dict(graph.symbols)
    g.passes = list(graph.passes) + [f"autodiff (wrt {list(wrt)})"]
    g.n_primal_outputs = n_out
    return g
