"""``fw.cuda.make_graphed_callables``: functions and modules whose forward and backward
each replay a CUDA graph (PyTorch's ``torch.cuda.make_graphed_callables``).

Each callable is warmed up, its forward captured into one graph and its backward (the
gradients of its outputs with respect to its tensor arguments and, for a module, its
parameters) into a second one, all in one memory pool, forwards in order then backwards
in reverse order. The graphed callable is an autograd Function: its forward copies the
arguments into the captured (static) inputs and replays the forward graph, its backward
copies the incoming gradients into static gradient buffers and replays the backward graph.

One difference from PyTorch, for safety: outputs and gradients are returned as fresh
copies of the graph's static buffers (PyTorch returns the static buffers, which the next
replay overwrites); it costs one device copy per output and gradient.
"""

from __future__ import annotations

from .cuda_graphs import CUDAGraph, graph, graph_pool_handle
from .errors import ArgumentError, DeviceError, FwTypeError, ShapeError

__all__ = ["make_graphed_callables"]


def _flatten(x, what: str) -> tuple[list, object]:
    """Tensor leaves of nested tuples/lists, and the structure to rebuild them."""
    from .tensor import Tensor
    if isinstance(x, Tensor):
        return [x], None
    if isinstance(x, (tuple, list)):
        leaves, specs = [], []
        for item in x:
            sub, spec = _flatten(item, what)
            leaves += sub
            specs.append((len(sub), spec))
        return leaves, (type(x), specs)
    raise FwTypeError(f"make_graphed_callables: {what} must be tensors (or tuples/lists of "
                      f"tensors), got {type(x).__name__}")


def _unflatten(leaves, spec):
    if spec is None:
        return leaves[0]
    kind, specs = spec
    out, i = [], 0
    for n, sub in specs:
        out.append(_unflatten(leaves[i:i + n], sub))
        i += n
    return kind(out)


def _is_module(c) -> bool:
    from .nn import Module
    return isinstance(c, Module)


def _check_callable(c, args, k: int) -> list:
    """The flat tensor arguments of callable ``k``, after PyTorch's checks."""
    if _is_module(c):
        if c._backward_hooks or c._forward_hooks or c._forward_pre_hooks:
            raise ArgumentError("make_graphed_callables: modules must not have hooks "
                                "registered when they are passed (registering hooks "
                                "afterwards is allowed)")
        if any(b.requires_grad for b in c.buffers()):
            raise ArgumentError("make_graphed_callables: only parameters may be trainable; "
                                "every buffer must have requires_grad=False")
    elif not callable(c):
        raise FwTypeError(f"make_graphed_callables: callable {k} is a "
                          f"{type(c).__name__}, not a function or module")
    if not isinstance(args, tuple):
        raise FwTypeError(f"make_graphed_callables: sample_args of callable {k} must be a "
                          f"tuple of tensors, got {type(args).__name__}")
    flat, _ = _flatten(args, "sample_args")
    params = list(c.parameters()) if _is_module(c) else []
    for t in flat + params:
        if t.device.type != "cuda":
            raise DeviceError(f"make_graphed_callables: callable {k} has a tensor on "
                              f"{t.device} (sample arguments and parameters must be on cuda)")
    return flat


def make_graphed_callables(callables, sample_args, num_warmup_iters: int = 3,
                           allow_unused_input: bool = False, pool=None):
    """Graphed versions of ``callables`` (a function or ``nn.Module``, or a tuple of them
    run in that order): forward and backward each replay a CUDA graph captured from
    ``sample_args`` (a tuple of tensors per callable, whose ``requires_grad`` must match
    the real inputs'). A module is returned with its ``forward`` replaced (the original
    runs when its train/eval mode differs from the captured one). ``pool``: a
    :func:`graph_pool_handle` to share memory with other graphs. Calls must pass tensors
    of the sample shapes and dtypes, and each backward must follow its forward before the
    next forward (the graphs reuse their buffers)."""
    from . import autograd
    from .autograd.grad_mode import no_grad

    single = not isinstance(callables, tuple)
    if single:
        callables, sample_args = (callables,), (sample_args,)
    if not isinstance(sample_args, tuple) or len(sample_args) != len(callables):
        raise ArgumentError(f"make_graphed_callables: expected one tuple of sample_args per "
                            f"callable ({len(callables)})")
    flat_args = [_check_callable(c, a, k) for k, (c, a) in
                 enumerate(zip(callables, sample_args))]
    params = [tuple(c.parameters()) if _is_module(c) else () for c in callables]
    surfaces = [tuple(f) + p for f, p in zip(flat_args, params)]
    mempool = graph_pool_handle() if pool is None else pool

    def grads_of(outs, surface, grad_outs):
        needing = [o for o in outs if o.requires_grad]
        inputs = [t for t in surface if t.requires_grad]
        if not needing or not inputs:
            return None
        return autograd.grad(needing, inputs, grad_outputs=grad_outs,
                             allow_unused=allow_unused_input)

    from . import creation, cuda
    for func, args, surface in zip(callables, sample_args, surfaces):
        for _ in range(num_warmup_iters):  # Triton compiles, loads and autotunes here
            outs, _ = _flatten(func(*args), "outputs")
            grads_of(outs, surface, [creation.empty_like(o) for o in outs if o.requires_grad])
    cuda.synchronize()

    fwd_graphs = [CUDAGraph() for _ in callables]
    bwd_graphs = [CUDAGraph() for _ in callables]
    static_outs, specs = [], []
    for func, args, g in zip(callables, sample_args, fwd_graphs):
        with graph(g, pool=mempool):
            outs = func(*args)
        flat, spec = _flatten(outs, "outputs")
        static_outs.append(flat)
        specs.append(spec)

    static_grad_outs, static_grad_ins = [None] * len(callables), [None] * len(callables)
    for k in reversed(range(len(callables))):  # backwards in reverse order, as they run
        outs, surface = static_outs[k], surfaces[k]
        grad_outs = [creation.empty_like(o) if o.requires_grad else None for o in outs]
        got = None
        if any(o.requires_grad for o in outs) and any(t.requires_grad for t in surface):
            with graph(bwd_graphs[k], pool=mempool):
                got = grads_of(outs, surface, [g for g in grad_outs if g is not None])
        it = iter(got or ())
        static_grad_ins[k] = [next(it) if t.requires_grad and got is not None else None
                              for t in surface]
        static_grad_outs[k] = grad_outs

    graphed = []
    for k, func in enumerate(callables):
        fn = _graphed_function(fwd_graphs[k], bwd_graphs[k], surfaces[k],
                               len(flat_args[k]), static_outs[k], static_grad_outs[k],
                               static_grad_ins[k], no_grad)

        def functionalized(*user_args, _fn=fn, _k=k):
            flat, _ = _flatten(user_args, "arguments")
            if len(flat) != len(flat_args[_k]):
                raise ArgumentError(f"make_graphed_callables: the graphed callable takes "
                                    f"{len(flat_args[_k])} tensors (as its sample_args), "
                                    f"got {len(flat)}")
            return _unflatten(list(_fn.apply(*flat, *params[_k])), specs[_k])

        if _is_module(func):
            functionalized = _graphed_forward(func, functionalized)
            func.forward = functionalized
            graphed.append(func)
        else:
            graphed.append(functionalized)
    return graphed[0] if single else tuple(graphed)


def _graphed_forward(module, graphed):
    """A module's new forward: the graphs in the captured train/eval mode, else the
    original forward."""
    training, original = module.training, module.forward

    def forward(*user_args):
        if module.training == training:
            return graphed(*user_args)
        return original(*user_args)
    return forward


def _copy_in(static, t, what: str) -> None:
    if static is t:
        return
    if t.shape != static.shape or t.dtype is not static.dtype or t.device != static.device:
        raise ShapeError(f"make_graphed_callables: {what} is {t.dtype.name}{list(t.shape)} on "
                         f"{t.device}; the graph was captured for "
                         f"{static.dtype.name}{list(static.shape)} on {static.device}")
    static.copy_(t)


def _graphed_function(fwd_graph, bwd_graph, surface, n_user, static_outs, static_grad_outs,
                      static_grad_ins, no_grad):
    """The autograd Function replaying one callable's forward and backward graphs."""
    from .autograd import Function
    from .autograd.grad_mode import is_grad_enabled

    def forward(ctx, *inputs):
        with no_grad():
            for i in range(n_user):
                _copy_in(surface[i], inputs[i], f"argument {i}")
            fwd_graph.replay()
            return tuple(o.detach().clone() for o in static_outs)

    def backward(ctx, *grads):
        if is_grad_enabled() and any(g is not None and g.requires_grad for g in grads):
            raise NotImplementedError("make_graphed_callables: the backward of a graphed "
                                      "callable is not differentiable (double backward)")
        with no_grad():
            for static, g in zip(static_grad_outs, grads):
                if static is None:
                    continue
                if g is None:
                    static.zero_()
                else:
                    _copy_in(static, g, "an output's gradient")
            if any(s is not None for s in static_grad_ins):
                bwd_graph.replay()
            return tuple(None if s is None else s.detach().clone() for s in static_grad_ins)

    return type("Graphed", (Function,), {"forward": staticmethod(forward),
                                         "backward": staticmethod(backward)})
