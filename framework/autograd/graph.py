"""``fw.autograd.graph``: hooks on the tensors autograd saves for backward (PyTorch's
``saved_tensors_hooks``, ``save_on_cpu``, ``disable_saved_tensors_hooks``).

While a ``saved_tensors_hooks(pack_hook, unpack_hook)`` block is open in a thread, every
tensor an autograd node saves for backward (the inputs its VJP reads, its outputs for ops
that save them, and ``ctx.save_for_backward`` of custom Functions) is replaced by
``pack_hook(tensor)``: the node keeps only that packed object (a :class:`SavedTensor`
wrapper around it), so a hook that copies to the CPU or to disk really lets the original
go. When backward needs the tensor it calls ``unpack_hook(packed)``. The in-place version
check still works: the version is read at pack time and compared at unpack time.
Blocks nest; the innermost pair applies. Inside a trace (``fw.compile`` capture, the
``fw.func`` transforms) nothing is packed: the trace keeps its graph whole, as
``torch.func`` transforms do not run saved-tensor hooks either.
"""

from __future__ import annotations

import threading

from ..errors import AutogradError, FwTypeError
from ..tensor import Tensor
from . import Node, extras  # noqa: F401  (Node: what tensor.grad_fn is, re-exported)

__all__ = ["saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks", "Node",
           "SavedTensor", "get_gradient_edge"]


class _HookState(threading.local):
    stack: tuple = ()            # (pack, unpack) pairs, innermost last
    disabled: str | None = None  # the message of an open disable_saved_tensors_hooks


_tls = _HookState()


def current_hooks():
    """The innermost ``(pack_hook, unpack_hook)`` pair of this thread, or None."""
    stack = _tls.stack
    return stack[-1] if stack else None


class SavedTensor:
    """What a node holds in place of a tensor saved under hooks: the packed object, the
    unpack hook, and the tensor's metadata and storage version (for the in-place check)."""

    __slots__ = ("packed", "hooks", "shape", "dtype", "device", "_storage", "version", "edge")

    def __init__(self, t: Tensor, hooks, edge=None):
        self.hooks = hooks
        self.shape, self.dtype, self.device = t.shape, t.dtype, t.device
        self._storage, self.version = t._storage, t._storage.version
        # where the saved tensor's gradient flows (its autograd identity), restored on the
        # unpacked tensor when backward itself is recorded (create_graph)
        self.edge = edge
        self.packed = hooks[0](t)

    def unpack(self, what: str, create_graph: bool = False) -> Tensor:
        """``unpack_hook(packed)``, after checking the saved tensor was not modified in
        place since it was packed (``what`` names it in the error). The result carries the
        saved tensor's autograd identity (VJP rules read ``requires_grad``; a recorded
        backward, ``create_graph``, differentiates through it)."""
        if self._storage.version != self.version:
            raise AutogradError(
                f"one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: {what} ({self.dtype.name}{list(self.shape)}) is at "
                f"version {self._storage.version}; expected version {self.version}")
        t = self.hooks[1](self.packed)
        if not isinstance(t, Tensor):
            raise FwTypeError(f"Output of saved tensor unpack_hook expected to be a Tensor but "
                              f"got result of type {type(t).__name__} (unpacking {what})")
        edge = self.edge
        if edge is not None:
            t = relink(t, edge, create_graph)
        return t

    def snapshot(self) -> SavedTensor:
        """A placeholder for a private copy of the saved value (an in-place op is about to
        overwrite the original; see ``ops/inplace.py``), packed with the same hooks."""
        from .._state import tls
        t = self.hooks[1](self.packed)
        saved = tls.grad_enabled, tls.tracer
        tls.grad_enabled, tls.tracer = False, None
        try:
            copy = t.detach().clone()
        finally:
            tls.grad_enabled, tls.tracer = saved
        return SavedTensor(copy, self.hooks, self.edge)

    def __repr__(self) -> str:
        return f"<SavedTensor {self.dtype.name}{list(self.shape)} packed as " \
               f"{type(self.packed).__name__}>"


def edge_of(t: Tensor):
    """The autograd identity a saved tensor must keep: ``(grad_fn, output_nr)``, the leaf
    itself when it requires grad, or None."""
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    return t if t.requires_grad else None


def relink(t: Tensor, edge, create_graph: bool) -> Tensor:
    """``t``'s value with the autograd identity ``edge`` (a ``(node, output_nr)`` pair, or
    a leaf), so a recorded backward differentiates through the original tensor."""
    if isinstance(edge, tuple):
        node, nr = edge
        if t.grad_fn is node and t._output_nr == nr:
            return t
        alias = Tensor._wrap(t._data, t.dtype, t.device, t.shape, t._storage)
        alias.requires_grad, alias.grad_fn, alias._output_nr = True, node, nr
        return alias
    if t is edge:
        return t
    if create_graph:  # the unpacked value, differentiable in the leaf
        return edge + (t.detach() - edge.detach())
    alias = Tensor._wrap(t._data, t.dtype, t.device, t.shape, t._storage)
    alias.requires_grad = True  # nothing is recorded without create_graph
    return alias


class saved_tensors_hooks:  # noqa: N801  (named like torch.autograd.graph's)
    """Context manager: tensors saved for backward inside the block are packed with
    ``pack_hook(tensor) -> object`` and restored with ``unpack_hook(object) -> tensor``
    when backward needs them. Thread-local; nested blocks: the innermost pair applies."""

    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self):
        if _tls.disabled is not None:
            raise AutogradError(_tls.disabled)
        _tls.stack = _tls.stack + ((self.pack_hook, self.unpack_hook),)
        extras.hooks_opened(1)
        return self

    def __exit__(self, *exc):
        _tls.stack = _tls.stack[:-1]
        extras.hooks_opened(-1)
        return False


class save_on_cpu(saved_tensors_hooks):  # noqa: N801
    """Saved tensors are copied to host memory at forward time and copied back to their
    device when backward needs them (trades transfer time for device memory).
    ``pin_memory`` is accepted for PyTorch compatibility; host copies are pageable."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda"):
        self.pin_memory = pin_memory

        def pack(t):
            from .._state import tls
            saved = tls.grad_enabled
            tls.grad_enabled = False
            try:
                src = t.detach()
                host = src.to("cpu")
                if host._storage is src._storage:  # already on the CPU: still take a copy
                    host = host.clone()
            finally:
                tls.grad_enabled = saved
            return (t.device, host)

        def unpack(packed):
            dev, host = packed
            return host.to(dev)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:  # noqa: N801
    """Context manager (and decorator): opening a ``saved_tensors_hooks`` block inside
    raises ``AutogradError`` (a RuntimeError) with ``error_message``."""

    def __init__(self, error_message: str):
        self.error_message = error_message

    def __enter__(self):
        self._prev = _tls.disabled
        _tls.disabled = self.error_message
        return self

    def __exit__(self, *exc):
        _tls.disabled = self._prev
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with disable_saved_tensors_hooks(self.error_message):
                return fn(*args, **kwargs)
        return wrapper


def get_gradient_edge(tensor: Tensor):
    """The ``(node, output_nr)`` a gradient for ``tensor`` flows into (the tensor itself
    for a leaf), as ``torch.autograd.graph.get_gradient_edge``."""
    if not tensor.requires_grad:
        raise AutogradError("get_gradient_edge: the tensor does not require grad")
    return (tensor.grad_fn, tensor._output_nr) if tensor.grad_fn is not None else (tensor, 0)
