"""Custom differentiable functions: ``class F(fw.autograd.Function)``, as in PyTorch."""

from __future__ import annotations

from .._state import tls
from ..errors import AutogradError
from ..tensor import Tensor


class FunctionCtx:
    """The ``ctx`` of a custom Function: saved tensors and flags for backward."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self._versions = ()
        self.materialize_grads = True

    def save_for_backward(self, *tensors):
        """Keep tensors for backward; modifying them in place afterwards is an error.
        Inside ``fw.autograd.graph.saved_tensors_hooks`` they are packed."""
        self._versions = tuple(t._storage.version if isinstance(t, Tensor) else None
                               for t in tensors)
        from .graph import SavedTensor, current_hooks, edge_of
        hooks = current_hooks()
        if hooks is not None and tls.tracer is None:
            tensors = tuple(SavedTensor(t, hooks, edge_of(t)) if isinstance(t, Tensor) else t
                            for t in tensors)
        self._saved = tensors

    @property
    def saved_tensors(self):
        from .graph import SavedTensor
        for i, (t, v) in enumerate(zip(self._saved, self._versions)):
            if v is not None and t._storage.version != v:
                raise AutogradError(f"one of the variables needed for gradient computation has "
                                    f"been modified by an inplace operation: saved tensor {i} "
                                    f"is at version {t._storage.version}; expected version {v}")
        if any(t.__class__ is SavedTensor for t in self._saved):
            return tuple(t.unpack(f"saved tensor {i}", tls.grad_enabled)
                         if t.__class__ is SavedTensor else t
                         for i, t in enumerate(self._saved))
        return self._saved

    def save_for_forward(self, *tensors):
        """Keep tensors for ``jvp`` (forward-mode AD), where ``saved_tensors`` gives them."""
        self._saved_fwd = tensors

    def mark_non_differentiable(self, *tensors):
        """Outputs that get no gradient (indices, masks)."""
        self._non_diff = {id(t) for t in tensors}

    def mark_dirty(self, *tensors):
        """Inputs that forward modified in place (and returns): apply hands back the same
        tensor objects, now recorded as outputs of this function."""
        self._dirty = {id(t) for t in tensors}

    def set_materialize_grads(self, value: bool):
        self.materialize_grads = value


class _FunctionOp:
    """Adapts a Function subclass to the op interface the backward engine expects."""

    group = "custom"
    saves_output = False
    saves_args = None

    def __init__(self, fn_cls, ctx, num_outputs):
        self.name = fn_cls.__name__
        self.fn_cls = fn_cls
        self.ctx = ctx
        self.num_outputs = num_outputs

    def vjp(self, grads, args, out):
        grads = grads if isinstance(grads, tuple) else (grads,)
        res = self.fn_cls.backward(self.ctx, *grads)
        res = res if isinstance(res, tuple) else (res,)
        if len(res) > len(args) and all(r is None for r in res[len(args):]):
            res = res[:len(args)]  # as PyTorch: extra trailing Nones (defaulted args) dropped
        if len(res) < len(args):
            res = res + (None,) * (len(args) - len(res))
        if len(res) != len(args):
            raise AutogradError(f"function {self.name}.backward returned {len(res)} gradients; "
                                f"expected {len(args)} (one per forward input)")
        return res


class Function:
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``; call
    ``MyFn.apply(*args)``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must implement forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("Function subclasses must implement backward(ctx, ...)")

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError("Function subclasses must implement jvp(ctx, ...) to be used "
                                  "with forward-mode AD")

    @classmethod
    def apply(cls, *args):
        from . import forward_ad
        if forward_ad._current_level >= 0:  # a dual level is open
            return forward_ad.function_apply(cls, args)
        return cls._run(args)[0]

    @classmethod
    def _run(cls, args):
        """``(outputs, ctx)``: forward, then the link into the autograd graph."""
        from . import Node
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        prev = tls.grad_enabled
        tls.grad_enabled = False
        try:
            out = cls.forward(ctx, *args)
        finally:
            tls.grad_enabled = prev
        notes = getattr(tls.tracer, "custom_functions", None)
        if prev and notes is not None:  # a capture: its graph holds forward's ops only
            notes.append(cls.__name__)
        if not (prev and any(needs)):
            return out, ctx
        outs = out if isinstance(out, tuple) else (out,)
        dirty = getattr(ctx, "_dirty", set())
        for a in args:
            if id(a) in dirty and a.requires_grad and a.grad_fn is None:
                raise AutogradError(f"{cls.__name__}: a leaf Variable that requires grad has "
                                    "been used in an in-place operation (mark_dirty)")
        # Fresh tensor objects for outputs that already have an identity (a recorded result,
        # or an input returned as is), so linking them to this node changes nothing else;
        # inputs marked dirty keep their object and take the new identity.
        outs = tuple(o.detach() if isinstance(o, Tensor) and id(o) not in dirty and
                     (o.grad_fn is not None or any(o is a for a in args)) else o
                     for o in outs)
        node = Node(_FunctionOp(cls, ctx, len(outs)), args, {}, outs, list(needs))
        non_diff = getattr(ctx, "_non_diff", set())
        for i, o in enumerate(outs):
            if isinstance(o, Tensor) and o.dtype.is_floating_point and id(o) not in non_diff:
                o.requires_grad, o.grad_fn, o._output_nr = True, node, i
        return (outs if isinstance(out, tuple) else outs[0]), ctx


class _DelayedError(Function):
    """Identity whose backward raises: marks results of a once-differentiable backward."""

    @staticmethod
    def backward(ctx, g):
        raise AutogradError("trying to differentiate twice a function that was marked with "
                            "@once_differentiable")


def _delayed_error(r):
    """``r`` recorded behind a node whose backward raises (even though ``r`` itself was
    computed under no_grad), as PyTorch's DelayedError."""
    from . import Node
    out = r.detach()
    node = Node(_FunctionOp(_DelayedError, FunctionCtx((True,)), 1), (r,), {}, (out,), [True])
    out.requires_grad, out.grad_fn, out._output_nr = True, node, 0
    return out


def once_differentiable(backward):
    """Decorate a Function's ``backward`` that is not itself differentiable: it runs under
    ``no_grad``, and differentiating its results again (``create_graph``) raises."""
    import functools

    from .grad_mode import no_grad

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        create_graph = tls.grad_enabled
        with no_grad():
            res = backward(ctx, *grads)
        if not create_graph:
            return res
        many = isinstance(res, tuple)
        res = tuple(_delayed_error(r) if isinstance(r, Tensor) and r.dtype.is_floating_point
                    else r for r in (res if many else (res,)))
        return res if many else res[0]
    return wrapper
