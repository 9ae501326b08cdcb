"""``framework.utils.checkpoint``: activation checkpointing, as ``torch.utils.checkpoint``.

``checkpoint(fn, *args)`` trades compute for memory: the activations ``fn`` computes are
not kept for backward; only its inputs (and the random-number state) are, and backward runs
``fn`` again to rebuild them. It follows PyTorch's non-reentrant variant for both values of
``use_reentrant``: gradients reach the inputs and anything ``fn`` closes over (a module's
parameters, tensors from the enclosing graph), inputs need not require grad, keyword
arguments and nested input/output structures work, and ``autograd.grad``,
``backward(inputs=...)`` and ``create_graph=True`` all go through it.

How (the engine has no saved-tensor hooks): ``fn`` runs with grad enabled and records its
graph as usual; the region's graph is then walked once, from its outputs back to the edges
that leave it (leaves and nodes recorded before the call), and collapsed into ONE node whose
edges are those boundary edges. The outputs are re-linked to that node, so the region's
inner nodes -- and the activations they hold -- are freed as soon as ``checkpoint`` returns.
The node's VJP re-runs ``fn`` on the saved inputs (grad enabled, the forward's RNG and
autocast state restored) and runs the engine over the recomputed graph with a *boundary*:
it stops at the same edges and hands their gradients back to the outer backward, which
sends them on as for any other node.

Under ``fw.compile`` (an active trace) ``checkpoint`` calls ``fn`` and marks the nodes it
records as a region (``Tracer.checkpoint_region``). The captured graph holds the forward
and backward whole; the compiler's ``remat`` pass (compiler/passes/remat.py) gives the
backward recomputed copies of the region's inner activations, so the originals die at the
end of the region. Random draws inside the region are kept, not drawn again.

Outputs are found in nested tuples, lists and dicts; a tensor hidden in another object
still gets its gradient, through the region's ordinary graph, which it then keeps alive.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import warnings

from .. import autograd as _autograd
from .._state import tls
from ..errors import ArgumentError, AutogradError
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError", "noop_context_fn"]

_DETERMINISM_MODES = ("default", "none")


class CheckpointError(AutogradError):
    """The recomputation in backward did not match the forward (different outputs, or a
    tensor from outside the region the forward did not use)."""


def noop_context_fn():
    """The default ``context_fn``: no context around the forward or the recomputation."""
    return contextlib.nullcontext(), contextlib.nullcontext()


# ---------------------------------------------------------------------------------------
# nested tuples / lists / dicts (namedtuples kept)
def _leaves(obj) -> list:
    """The leaves of nested tuples, lists and dicts, in order."""
    if isinstance(obj, (tuple, list)):
        return [leaf for x in obj for leaf in _leaves(x)]
    if isinstance(obj, dict):
        return [leaf for x in obj.values() for leaf in _leaves(x)]
    return [obj]


def _rebuild(obj, it):
    """``obj``'s structure with its leaves taken, in order, from the iterator ``it``."""
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*[_rebuild(x, it) for x in obj])
    if isinstance(obj, (tuple, list)):
        return type(obj)(_rebuild(x, it) for x in obj)
    if isinstance(obj, dict):
        new = copy.copy(obj)  # keeps a dict subclass (OrderedDict, defaultdict) as is
        for k, x in obj.items():
            new[k] = _rebuild(x, it)
        return new
    return next(it)


# ---------------------------------------------------------------------------------------
# random-number state: the CPU default generator and the CUDA Philox stream
def _rng_state():
    from ..random import snapshot_all
    return snapshot_all()


def _set_rng_state(state) -> None:
    from ..random import restore_all
    restore_all(state)


@contextlib.contextmanager
def _forked_rng(state):
    """Run the block from RNG ``state`` (None: as is); the surrounding stream is restored
    afterwards, so recomputing does not advance it (as ``torch.random.fork_rng``)."""
    if state is None:
        yield
        return
    outer = _rng_state()
    _set_rng_state(state)
    try:
        yield
    finally:
        _set_rng_state(outer)


# ---------------------------------------------------------------------------------------
# the region's graph
def _edge_key(edge):
    return edge if isinstance(edge, tuple) else id(edge)


def _walk_region(roots, start: int):
    """The nodes recorded after sequence number ``start`` that ``roots`` reach, in
    recording order, and the edges leaving them: {key: (edge, tensor)} in first-seen
    order (the tensor gives the gradient's shape and dtype)."""
    seen, nodes, edges = set(), [], {}
    stack = list(roots)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        for arg, edge in zip(node.args or (), node.edges):  # args: None once freed
            if edge is None:
                continue
            if isinstance(edge, tuple) and edge[0].seq > start:
                stack.append(edge[0])
                continue
            key = _edge_key(edge)
            if key not in edges:
                edges[key] = (edge, edge if isinstance(edge, Tensor) else arg)
    nodes.sort(key=lambda n: n.seq)
    return nodes, edges


def _alias(t: Tensor) -> Tensor:
    """A graph-free tensor sharing ``t``'s data and storage (not a view of ``t``, so
    nothing keeps ``t`` -- and the region's graph behind it -- alive)."""
    a = Tensor._wrap(t._data, t.dtype, t.device, t.shape, t._storage)
    a._inference = t._inference
    return a


def _meta(t: Tensor):
    return tuple(t.shape), t.dtype.name, str(t.device)


def _check_versions(saved) -> None:
    for i, (t, v) in enumerate(saved):
        if t._storage.version != v:
            raise AutogradError(
                "one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: checkpoint input tensor {i} ({t.dtype.name}"
                f"{list(t.shape)}) is at version {t._storage.version}; expected version {v}")


class _Inputs:
    """The checkpointed call's arguments, kept as the node's last argument so that the
    engine releases them with the node's other saved tensors after backward."""

    __slots__ = ("args", "kwargs", "versions")

    def __init__(self, args, kwargs):
        self.args, self.kwargs = args, kwargs
        self.versions = [(t, t._storage.version) for t in _leaves((args, kwargs))
                         if isinstance(t, Tensor)]


class _CheckpointOp:
    """The op of the node that stands for a checkpointed region (``CheckpointBackward``):
    its VJP recomputes the region and backpropagates through the recomputed graph."""

    name = "checkpoint"
    group = "custom"
    saves_output = False
    saves_args = None

    def __init__(self, function, *, rng, autocast, context_fn, recompute_ctx,
                 determinism_check, debug, out_index, out_meta, edge_keys, fwd_ops):
        self.function = function
        self.rng, self.autocast = rng, autocast
        self.context_fn, self.recompute_ctx = context_fn, recompute_ctx
        self.determinism_check, self.debug = determinism_check, debug
        self.out_index, self.out_meta = out_index, out_meta  # linked outputs' leaf positions
        self.edge_keys, self.fwd_ops = edge_keys, fwd_ops
        self.num_outputs = len(out_index)

    def _recompute(self, inputs: _Inputs):
        """Run the function again, as the forward did; return (leaves, boundary seq)."""
        _check_versions(inputs.versions)
        ctx, self.recompute_ctx = self.recompute_ctx, None
        if ctx is None:  # a second backward (retain_graph): a fresh context
            ctx = self.context_fn()[1]
        with _forked_rng(self.rng):
            boundary = next(_autograd._sequence)
            prev = tls.grad_enabled, tls.autocast
            tls.grad_enabled, tls.autocast = True, self.autocast
            try:
                with ctx:
                    out = self.function(*inputs.args, **inputs.kwargs)
            finally:
                tls.grad_enabled, tls.autocast = prev
        return _leaves(out), boundary

    def _mismatch(self, what: str, boundary: int, roots) -> CheckpointError:
        msg = (f"framework.utils.checkpoint: the recomputation in backward differs from the "
               f"forward: {what}. The checkpointed function must compute the same thing when "
               "it runs again (no dependence on global state that changed)")
        if self.debug:
            nodes, _ = _walk_region([r.grad_fn for r in roots if r.grad_fn is not None
                                     and r.grad_fn.seq > boundary], boundary)
            msg += (f"\nops recorded by the forward: {self.fwd_ops}\nops recorded by the "
                    f"recomputation: {[n.name() for n in nodes]}")
        else:
            msg += "; pass debug=True to see the ops each run recorded"
        return CheckpointError(msg)

    def vjp(self, grads, args, out):
        grads = grads if isinstance(grads, tuple) else (grads,)
        leaves, boundary = self._recompute(args[-1])
        roots, root_grads = [], []
        for k, (i, meta) in enumerate(zip(self.out_index, self.out_meta)):
            r = leaves[i] if i < len(leaves) else None
            if not isinstance(r, Tensor) or (self.determinism_check == "default"
                                             and _meta(r) != meta):
                got = _meta(r) if isinstance(r, Tensor) else type(r).__name__
                raise self._mismatch(f"output {i} was {meta}, recomputed as {got}",
                                     boundary, [x for x in leaves if isinstance(x, Tensor)])
            if grads[k] is not None and r.requires_grad:
                roots.append(r)
                root_grads.append(grads[k])
        if not roots:
            return (None,) * len(self.edge_keys)
        create_graph = tls.grad_enabled  # the engine runs VJPs with grad mode = create_graph
        sent = _autograd.run_backward(roots, root_grads, retain_graph=create_graph,
                                      create_graph=create_graph, boundary=boundary)
        by_key = {_edge_key(edge): g for edge, g in sent}
        res = tuple(by_key.pop(key, None) for key in self.edge_keys)
        if by_key:
            raise self._mismatch(f"{len(by_key)} tensor(s) from outside the region received "
                                 "gradients in the recomputation but were not used by the "
                                 "forward", boundary, roots)
        return res


def _checkpoint(function, args, kwargs, *, preserve_rng_state, context_fn,
                determinism_check, debug):
    fwd_ctx, recompute_ctx = context_fn()
    if not tls.grad_enabled:  # nothing will differentiate this: plain call
        with fwd_ctx:
            return function(*args, **kwargs)
    region = getattr(tls.tracer, "checkpoint_region", None)
    if tls.tracer is not None:
        # fw.compile is capturing: mark the region; compiler/passes/remat.py recomputes it
        if region is None:
            with fwd_ctx:
                return function(*args, **kwargs)
        with fwd_ctx, region() as returned:
            out = function(*args, **kwargs)
            returned(_leaves(out))
        return out
    rng = _rng_state() if preserve_rng_state else None
    autocast = tls.autocast
    start = next(_autograd._sequence)  # the region's nodes are recorded after this
    with fwd_ctx:
        out = function(*args, **kwargs)
    leaves = _leaves(out)
    out_index = [i for i, t in enumerate(leaves) if isinstance(t, Tensor)
                 and t.grad_fn is not None and t.grad_fn.seq > start]
    if not out_index:  # nothing recorded inside: no graph to drop
        return out
    nodes, edges = _walk_region([leaves[i].grad_fn for i in out_index], start)
    op = _CheckpointOp(function, rng=rng, autocast=autocast,
                       context_fn=context_fn, recompute_ctx=recompute_ctx,
                       determinism_check=determinism_check, debug=debug, out_index=out_index,
                       out_meta=[_meta(leaves[i]) for i in out_index],
                       edge_keys=list(edges), fwd_ops=[n.name() for n in nodes] if debug else None)
    del nodes
    outs = [_alias(leaves[i]) for i in out_index]
    boundary = [t for _, t in edges.values()]
    node = _autograd.Node(op, (*boundary, _Inputs(args, kwargs)), {}, outs,
                          [True] * len(boundary) + [False])
    node.edges = tuple(edge for edge, _ in edges.values())  # as recorded inside the region
    for k, (i, o) in enumerate(zip(out_index, outs)):
        o.requires_grad, o.grad_fn, o._output_nr = True, node, k
        leaves[i] = o
    return _rebuild(out, iter(leaves))


def _resolve_reentrant(use_reentrant, kwargs, context_fn, debug, what: str) -> None:
    """PyTorch's argument rules for ``use_reentrant`` (the implementation is the same)."""
    if use_reentrant is None:
        warnings.warn(
            f"framework.utils.{what}: the use_reentrant parameter should be passed "
            "explicitly (PyTorch warns here and plans to raise). use_reentrant=False is "
            "recommended; both values run the non-reentrant implementation in framework, "
            "but use_reentrant=True (the default when it is not passed) keeps PyTorch's "
            "restrictions on keyword arguments, context_fn and debug.",
            UserWarning, stacklevel=3)
        use_reentrant = True
    if use_reentrant:
        if kwargs:
            raise ArgumentError("Unexpected keyword arguments: " + ",".join(kwargs))
        if context_fn not in (None, noop_context_fn) or debug:
            raise ArgumentError("Passing `context_fn` or `debug` is only supported when "
                                "use_reentrant=False.")


def checkpoint(function=None, *args, use_reentrant: bool | None = None,
               context_fn=noop_context_fn, determinism_check: str = "default",
               debug: bool = False, preserve_rng_state: bool = True, early_stop: bool = True,
               **kwargs):
    """Run ``function(*args, **kwargs)`` without keeping its activations for backward:
    only the inputs (and, with ``preserve_rng_state``, the CPU and CUDA random state) are
    kept, and backward runs ``function`` again to rebuild them, so dropout draws the same
    masks and the gradients equal those of the plain call (the default generators are
    restored, as in PyTorch; an explicit ``generator=`` stream is not).

    ``use_reentrant`` should be passed: without it a ``UserWarning`` is issued and the
    PyTorch default (True) applies, which rejects ``**kwargs``, ``context_fn`` and
    ``debug``; otherwise both values behave as PyTorch's non-reentrant variant.
    ``context_fn`` returns two context managers, for the forward and the recomputation.
    ``determinism_check="default"`` checks that the recomputed outputs have the forward's
    shapes, dtypes and devices (``"none"``: no check); ``debug=True`` lists the ops of both
    runs in that error. ``early_stop`` is accepted for compatibility (the whole function is
    always recomputed). With ``function`` omitted (and no args) it returns a decorator:
    ``checkpoint(use_reentrant=False)(fn)``.
    """
    if determinism_check not in _DETERMINISM_MODES:
        raise ArgumentError(f"checkpoint: determinism_check should be one of "
                            f"{list(_DETERMINISM_MODES)}, but got {determinism_check!r}")
    opts = dict(use_reentrant=use_reentrant, context_fn=context_fn,
                determinism_check=determinism_check, debug=debug,
                preserve_rng_state=preserve_rng_state, early_stop=early_stop)
    if function is None and not args:
        if kwargs:
            raise ArgumentError("Unexpected keyword arguments: " + ",".join(kwargs))

        def decorate(fn):
            @functools.wraps(fn)
            def wrapper(*a, **kw):
                return checkpoint(fn, *a, **opts, **kw)
            return wrapper
        return decorate
    _resolve_reentrant(use_reentrant, kwargs, context_fn, debug, "checkpoint")
    return _checkpoint(function, args, kwargs, preserve_rng_state=preserve_rng_state,
                       context_fn=context_fn or noop_context_fn,
                       determinism_check=determinism_check, debug=debug)


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None,
                          **kwargs):
    """Run ``functions`` (an ``nn.Sequential`` or a list of modules/functions) one after
    the other on ``input``, split into ``segments`` chunks of ``len // segments``; every
    chunk but the last is checkpointed (its inputs kept, its activations recomputed).
    ``preserve_rng_state`` is the only other keyword accepted."""
    _resolve_reentrant(use_reentrant, {}, None, False, "checkpoint_sequential")
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ArgumentError("Unexpected keyword arguments: " + ",".join(kwargs))
    from ..nn import Sequential
    if isinstance(functions, Sequential):
        functions = list(functions.children())
    functions = list(functions)
    if not 1 <= segments <= len(functions):
        raise ArgumentError(f"checkpoint_sequential: segments must be between 1 and the "
                            f"number of functions ({len(functions)}), got {segments}")

    def run(start, end):
        def forward(x):
            for f in functions[start:end]:
                x = f(x)
            return x
        return forward

    size = len(functions) // segments
    end = 0
    for start in range(0, size * (segments - 1), size):
        end = start + size
        input = _checkpoint(run(start, end), (input,), {}, preserve_rng_state=preserve,
                            context_fn=noop_context_fn, determinism_check="default",
                            debug=False)
    return run(end, len(functions))(input)
