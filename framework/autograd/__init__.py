"""Reverse-mode autograd: grad mode, the recorded graph's nodes, and the backward engine.

Each differentiable ``apply`` creates a :class:`Node` holding the op, its inputs and the
versions of the storages it saved. ``backward`` walks nodes in reverse creation order
(a valid reverse topological order, since a node's inputs always exist before it) and
calls each op's VJP rule. VJP rules are ordinary public-op calls, so with
``create_graph=True`` (or inside ``fw.compile``) the backward pass is itself recorded.
"""

from __future__ import annotations

import heapq
import itertools
import weakref

from .._state import tls
from ..errors import AutogradError
from ..tensor import Tensor
from .function import Function, FunctionCtx  # noqa: F401  (re-exported)
from .gradcheck import gradcheck, gradgradcheck  # noqa: F401  (re-exported)
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled,  # noqa: F401
                        no_grad, set_grad_enabled)

_sequence = itertools.count()
# The slow path (framework/autograd/extras.py): set while anomaly mode is on or a
# saved_tensors_hooks block is open (read once per node created) ...
_extras = None
# ... and once either was ever used (read once per backward call).
_slow_backward = None


class Node:
    """A recorded differentiable op application (what ``tensor.grad_fn`` returns)."""

    __slots__ = ("op", "attrs", "args", "needs", "versions", "out_refs", "out_meta",
                 "edges", "seq", "freed", "out_hooks", "retained", "anomaly_trace",
                 "__weakref__")

    def __init__(self, op, args, attrs, outs, needs):
        self.op = op
        self.attrs = attrs
        self.args = args
        self.needs = needs
        versions, edges = [], []
        saved = op.saves_args
        if saved is not None and saved.__class__ is not tuple:
            saved = saved(args, needs)
        for i, (a, n) in enumerate(zip(args, needs)):
            if isinstance(a, Tensor):
                if saved is None or i in saved:
                    if a._inference and not tls.inference_mode:
                        raise AutogradError(
                            f"{op.name}: Inference tensors cannot be saved for backward. To "
                            "work around you can make a clone to get a normal tensor and use "
                            "it in autograd.")
                    versions.append(a._storage.version)
                else:
                    versions.append(None)
                edges.append(((a.grad_fn, a._output_nr) if a.grad_fn is not None else a)
                             if n else None)
            else:
                versions.append(None)
                edges.append(None)
        self.versions = tuple(versions)
        self.edges = tuple(edges)
        # Outputs are held weakly (no reference cycle); their data stays reachable for
        # the rare case where an output died before backward.
        if len(outs) == 1:
            o = outs[0]
            st = o._storage
            self.out_refs = (weakref.ref(o),) if op.saves_output else None
            self.out_meta = ((o.shape, o.dtype, o.device, o._data, st, st.version),)
        else:
            self.out_refs = tuple(weakref.ref(o) for o in outs) if op.saves_output else None
            self.out_meta = tuple((o.shape, o.dtype, o.device, o._data, o._storage,
                                   o._storage.version) for o in outs)
        self.seq = next(_sequence)
        self.freed = False
        self.out_hooks = None
        self.retained = None
        if _extras is not None:  # anomaly mode / saved-tensor hooks
            _extras.node_created(self, outs)

    def name(self) -> str:
        """The node's name as PyTorch shows it: ``MulBackward0`` for an op,
        ``MyFunctionBackward`` for a custom ``autograd.Function``."""
        if getattr(self.op, "group", None) == "custom":
            return self.op.name[:1].upper() + self.op.name[1:] + "Backward"
        return "".join(p.capitalize() for p in self.op.name.split("_")) + "Backward0"

    @property
    def next_functions(self):
        """``(node, output index)`` per input, as in PyTorch: the producing node, an
        :class:`AccumulateGrad` for a leaf that requires grad, ``(None, 0)`` otherwise."""
        return tuple((e[0], e[1]) if isinstance(e, tuple) else
                     (None, 0) if e is None else (_accumulator(e), 0) for e in self.edges)

    def register_hook(self, hook):
        """Not supported on nodes; use ``Tensor.register_hook``."""
        raise NotImplementedError("Node.register_hook is not supported; register the hook on "
                                  "the tensor instead (Tensor.register_hook)")

    def __repr__(self) -> str:
        return f"<{self.name()} object>"

    def __getattr__(self, name):
        # only reached for names the slots and methods lack: ``_saved_self`` and friends
        if name.startswith("_saved_"):
            from .saved_attrs import saved_attribute
            return saved_attribute(self, name[len("_saved_"):])
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    # -- backward helpers ------------------------------------------------------------------
    def saved_outputs(self, create_graph: bool):
        """The outputs for the VJP rule: the live tensors, or aliases of their data."""
        outs = []
        read = self.op.saves_output  # True, or the indices of the outputs the VJP reads
        for i, (shape, dtype, dev, data, storage, version) in enumerate(self.out_meta):
            if storage.version != version and (read is True or i in read):
                raise AutogradError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: output {i} of {self.op.name} "
                    f"({dtype.name}{list(shape)}) is at version {storage.version}; expected "
                    f"version {version}")
            live = self.out_refs[i]() if self.out_refs is not None else None
            if live is None:
                live = Tensor._wrap(data, dtype, dev, shape, storage)
                if create_graph:
                    live.grad_fn, live.requires_grad, live._output_nr = self, True, i
            outs.append(live)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def check_versions(self):
        for i, (a, v) in enumerate(zip(self.args, self.versions)):
            if v is not None and a._storage.version != v:
                raise AutogradError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: input {i} of {self.op.name} "
                    f"({a.dtype.name}{list(a.shape)}) is at version {a._storage.version}; "
                    f"expected version {v}. Hint: avoid the in-place op, or clone() first")


class AccumulateGrad:
    """The node ``next_functions`` shows for a leaf: gradients reaching it accumulate into
    ``variable.grad``. One per leaf, as in PyTorch (``leaf._grad_accumulator``)."""

    __slots__ = ("_leaf", "__weakref__")
    next_functions = ()

    def __init__(self, variable):
        self._leaf = weakref.ref(variable)  # the leaf holds this node, not the reverse

    @property
    def variable(self):
        """The leaf tensor."""
        return self._leaf()

    def name(self) -> str:
        """PyTorch's name for it."""
        return "torch::autograd::AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad object>"


def _accumulator(leaf) -> AccumulateGrad:
    acc = leaf.__dict__.get("_grad_accumulator")
    if acc is None:
        acc = leaf.__dict__["_grad_accumulator"] = AccumulateGrad(leaf)
    return acc


class PostAccumulateGradHook:
    """A ``Tensor.register_post_accumulate_grad_hook`` entry in a leaf's hook list: called
    with the leaf after backward has accumulated into its ``.grad``."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


def _edge(t: Tensor):
    """Where a gradient for ``t`` goes: its grad_fn (node, output index) or the leaf."""
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    return t


def _add_hook_to_node(t: Tensor, hook) -> None:
    node = t.grad_fn
    if node.out_hooks is None:
        node.out_hooks = {}
    hooks = node.out_hooks.setdefault(t._output_nr, [])
    hooks.append(hook)
    return hooks


def _add_grads(a, b):
    """``a + b`` for two gradients; a sparse one (framework/sparse) may be either operand
    (a dense Tensor's ``+`` does not take a sparse tensor, the sparse one's does)."""
    if b.__class__ is Tensor or a.__class__ is not Tensor:
        return a + b
    return b + a


def _accumulate(bucket: dict, key, g):
    prev = bucket.get(key)
    bucket[key] = g if prev is None else _add_grads(prev, g)


def run_backward(roots, grads, *, retain_graph: bool, create_graph: bool,
                 capture: list | None = None, accumulate: bool = True,
                 only_inputs: list | None = None, allow_unused: bool = False,
                 boundary: int | None = None):
    """The engine behind ``backward`` and ``autograd.grad``.

    roots: tensors to differentiate; grads: their cotangents (tensors).
    capture: tensors whose gradients to return (``autograd.grad``) instead of accumulating.
    boundary: a node sequence number; nodes recorded before it, and leaves, are neither run
    nor accumulated into: the gradients that reach them are returned instead, as a list of
    ``(edge, gradient)`` (activation checkpointing runs its recomputed graph this way).
    """
    from .. import ops as F

    node_grads: dict[tuple, object] = {}   # (node, output_nr) -> gradient
    leaf_grads: dict[int, object] = {}     # id(leaf) -> gradient
    leaves: dict[int, Tensor] = {}
    heap: list = []
    queued: set = set()

    outer: dict = {}                       # boundary mode: edge key -> (edge, gradient)

    def send(edge, g):
        if boundary is not None and (not isinstance(edge, tuple) or edge[0].seq < boundary):
            key = edge if isinstance(edge, tuple) else id(edge)
            prev = outer.get(key)
            outer[key] = (edge, g if prev is None else _add_grads(prev[1], g))
            return
        if isinstance(edge, tuple):
            node = edge[0]
            _accumulate(node_grads, edge, g)
            if node.seq not in queued:
                queued.add(node.seq)
                heapq.heappush(heap, (-node.seq, id(node), node))
        else:
            leaves[id(edge)] = edge
            _accumulate(leaf_grads, id(edge), g)

    for t, g in zip(roots, grads):
        if not t.requires_grad:
            raise AutogradError("element 0 of tensors does not require grad and does not have "
                                "a grad_fn")
        send(_edge(t), g)

    capture_nodes = {}
    if capture is not None:
        for i, t in enumerate(capture):
            if t.grad_fn is not None:
                capture_nodes[(t.grad_fn, t._output_nr)] = i
    captured = [None] * (len(capture) if capture is not None else 0)

    slow = _slow_backward
    prev_mode, prev_autocast = tls.grad_enabled, tls.autocast
    # backward ops run in the dtypes autocast chose for their forward ops (as documented
    # for PyTorch), so autocast is off while the engine runs
    tls.grad_enabled, tls.autocast = create_graph, None
    try:
        while heap:
            _, _, node = heapq.heappop(heap)
            if node.freed:
                raise AutogradError(
                    "Trying to backward through the graph a second time (or directly access "
                    "saved tensors after they have already been freed). Specify "
                    "retain_graph=True if you need to backward through the graph a second time")
            outs_g = []
            for i in range(len(node.out_meta)):
                g = node_grads.pop((node, i), None)
                if g is not None and node.out_hooks and i in node.out_hooks:
                    for hook in node.out_hooks[i]:
                        r = hook(g)
                        g = r if r is not None else g
                if g is not None and node.retained and i in node.retained:
                    ref = node.retained[i]()
                    if ref is not None:
                        ref.grad = g if create_graph else g.detach()
                if (node, i) in capture_nodes:
                    captured[capture_nodes[(node, i)]] = g
                outs_g.append(g)
            if all(g is None for g in outs_g):
                continue
            outs_g = [F.zeros(m[0], dtype=m[1], device=m[2]) if g is None else g
                      for g, m in zip(outs_g, node.out_meta)]
            node.check_versions()
            g_arg = outs_g[0] if len(outs_g) == 1 else tuple(outs_g)
            if slow is None:
                out = node.saved_outputs(create_graph) if node.op.saves_output else None
                in_grads = node.op.vjp(g_arg, node.args, out, **node.attrs)
            else:  # saved-tensor hooks may have packed its tensors; anomaly checks
                in_grads = slow.run_node(node, g_arg, create_graph)
            for i, edge in enumerate(node.edges):
                if edge is None or in_grads[i] is None:
                    continue
                gi = in_grads[i]
                arg = node.args[i]
                if gi.shape != arg.shape:
                    raise AutogradError(f"internal: VJP of {node.op.name} returned a gradient "
                                        f"of shape {gi.shape} for input {i} of shape "
                                        f"{arg.shape}")
                if gi.dtype is not arg.dtype:
                    if gi.dtype.is_complex and not arg.dtype.is_complex:
                        gi = gi.real  # a real input of a complex value: the real part
                    gi = gi.to(arg.dtype)
                send(edge, gi)
            if not retain_graph:  # release saved inputs and output buffers (PyTorch frees them)
                node.freed = True
                node.args = None
                node.out_meta = tuple(m[:3] + (None, None, None) for m in node.out_meta)
        for key, g in leaf_grads.items():
            leaf = leaves[key]
            hooks = leaf._hooks
            if hooks:
                for hook in hooks:
                    if hook.__class__ is not PostAccumulateGradHook:
                        r = hook(g)
                        g = r if r is not None else g
            if capture is not None:
                for i, t in enumerate(capture):
                    if t is leaf:
                        captured[i] = g
                continue
            if only_inputs is not None and not any(leaf is t for t in only_inputs):
                continue
            if accumulate:
                if not create_graph:
                    g = g.detach()
                leaf.grad = g if leaf.grad is None else _add_grads(leaf.grad, g)
                if hooks:
                    for hook in list(hooks):
                        if hook.__class__ is PostAccumulateGradHook:
                            hook.fn(leaf)
    finally:
        tls.grad_enabled, tls.autocast = prev_mode, prev_autocast
    if boundary is not None:
        return list(outer.values())
    if capture is not None and not allow_unused:
        for i, g in enumerate(captured):
            if g is None:
                raise AutogradError(f"One of the differentiated Tensors (input {i}) appears to "
                                    "not have been used in the graph. Set allow_unused=True if "
                                    "this is the desired behavior.")
    return captured


def _make_grads(tensors, grad_tensors):
    from .. import ops as F
    grads = []
    for i, t in enumerate(tensors):
        g = None if grad_tensors is None else grad_tensors[i]
        if g is None:
            if t.numel() != 1:
                raise AutogradError(f"grad can be implicitly created only for scalar outputs; "
                                    f"got an output of shape {tuple(t.shape)}: pass gradient=")
            if t.dtype.is_complex:
                raise AutogradError("grad can be implicitly created only for real scalar "
                                    f"outputs; got {t.dtype.name}")
            g = F.ones_like(t)
        elif not isinstance(g, Tensor):
            g = F.full(t.shape, g, dtype=t.dtype, device=t.device)
        elif g.shape != t.shape:
            raise AutogradError(f"backward: gradient shape {tuple(g.shape)} does not match the "
                                f"output shape {tuple(t.shape)}")
        elif g.dtype is not t.dtype:  # as PyTorch's engine: cast to the output's dtype
            g = g.to(t.dtype)
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute gradients of ``tensors`` and accumulate them into leaves' ``.grad``."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    if isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    if retain_graph is None:
        retain_graph = create_graph
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    run_backward(list(tensors), _make_grads(tensors, grad_tensors), retain_graph=retain_graph,
                 create_graph=create_graph, only_inputs=inputs)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated)."""
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise AutogradError(f"autograd.grad: input {i} does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    res = run_backward(outputs, _make_grads(outputs, grad_outputs), retain_graph=retain_graph,
                       create_graph=create_graph, capture=inputs,
                       allow_unused=allow_unused or materialize_grads)
    if materialize_grads:
        from .. import ops as F
        res = [F.zeros_like(t) if g is None else g for g, t in zip(res, inputs)]
    return tuple(res)


def zero_grads_(params, set_to_none=True) -> None:
    """Reset the ``.grad`` of each tensor in ``params`` as PyTorch's ``zero_grad`` does:
    to None, or (``set_to_none=False``) zeroed in place, the same grad object kept, after
    ``detach_()`` when it was recorded by a graph or ``requires_grad_(False)`` otherwise."""
    for p in params:
        g = p.grad
        if g is None:
            continue
        if set_to_none:
            p.grad = None
            continue
        if g.grad_fn is not None:
            g.detach_()
        else:
            g.requires_grad_(False)
        with no_grad():
            g.zero_()


from . import anomaly, forward_ad, functional, graph  # noqa: E402,F401  (fw.autograd.graph, ...)


def __getattr__(name):
    # fw.autograd.profiler imports fw.profiler, which imports autograd: load it on first use
    if name == "profiler":
        import importlib
        return importlib.import_module(f"{__name__}.profiler")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
from .anomaly import (detect_anomaly, is_anomaly_check_nan_enabled,  # noqa: E402,F401
                      is_anomaly_enabled, set_anomaly_enabled, set_detect_anomaly)
from .variable import Variable  # noqa: E402,F401  (torch.autograd.Variable, deprecated)
