"""In-place updates: compute functionally, then commit the result into the target's
storage, bump the version counter, and move the target's autograd identity.

Keeping the arithmetic functional means a trace sees an ordinary op plus one "mutation"
record, which the compiler functionalizes.
"""

from __future__ import annotations

import numpy as np

from .._state import tls
from ..errors import AutogradError, DTypeError, ShapeError
from ..tensor import Tensor
from . import registry as _registry
from .shapes import broadcast_shapes


def mark() -> int | None:
    """A marker taken before computing an in-place update: autograd nodes created after it
    (those computing the new value) get their saved copy of the target's old data."""
    if not tls.grad_enabled:
        return None
    from ..autograd import _sequence
    return next(_sequence)


def commit(target: Tensor, value, op: str = "copy_", since: int | None = None) -> Tensor:
    """Write ``value`` into ``target`` in place and return ``target``.

    ``since`` (from :func:`mark`) lets the nodes that computed ``value`` from ``target``
    keep the old data they need for backward (as PyTorch's in-place ops do)."""
    if not isinstance(value, Tensor):
        from .creation_ops import full
        value = full(target.shape, value, dtype=target.dtype, device=target.device)
    if target._inference and not tls.inference_mode:
        raise AutogradError(f"{op}: Inplace update to inference tensor outside InferenceMode is "
                            "not allowed.You can make a clone to get a normal tensor before "
                            "doing inplace update.")
    grad_on = tls.grad_enabled
    if grad_on and target.requires_grad and target.grad_fn is None:
        raise AutogradError(f"{op}: a leaf Variable that requires grad is being used in an "
                            "in-place operation. Wrap the update in `with fw.no_grad():`")
    if value.dtype is not target.dtype:
        if value.dtype.category > target.dtype.category and op != "copy_":
            raise DTypeError(f"{op}: result type {value.dtype.name} can't be cast to the desired "
                             f"output type {target.dtype.name}")
        value = value.to(target.dtype)
    if value.shape != target.shape:
        if broadcast_shapes(target.shape, value.shape, op) != target.shape:
            raise ShapeError(f"{op}: output with shape {list(target.shape)} doesn't match the "
                             f"broadcast shape {list(broadcast_shapes(target.shape, value.shape))}")
        value = value.expand(target.shape)
    if _registry._forward_ad_hook is not None:  # a dual level is open: update tangents
        from ..autograd.forward_ad import commit_tangent
        commit_tangent(target, value)
    tracked = grad_on and (value.requires_grad or target.requires_grad)
    # detach()'s output (no _view_ops) shares memory but is no view for autograd: it is
    # written like any tensor, as in PyTorch
    if tracked and target._view_ops and (target._base.requires_grad or value.requires_grad):
        if tls.tracer is None and _view_positions(target) is not None:
            return _commit_into_view(target, value, op, since)
        chain = _view_chain(target)
        if chain is not None:
            return _commit_through_chain(target, value, op, since, chain)
        raise NotImplementedError(
            f"{op}: in-place modification of a view ({list(target.shape)}) whose base takes part "
            "in autograd is not supported; clone() the view or update the base out of place")
    if since is not None and value.grad_fn is not None:
        _snapshot_saved(target, value.grad_fn, since)
    if target._data is not None and value._data is not None:
        _write(target, value, op)
    target._storage.version += 1
    if tracked:
        if not target._view_ops:
            target._ag_rev += 1  # views taken earlier now have a stale grad_fn
        if value.requires_grad:
            target.grad_fn, target._output_nr = value.grad_fn, value._output_nr
            target.requires_grad = True
            if value.grad_fn is None:  # value is a leaf: route through an identity op
                alias = value.view_as(value)
                target.grad_fn, target._output_nr = alias.grad_fn, alias._output_nr
        else:  # the new value no longer depends on anything differentiable
            target.grad_fn = None
            target.requires_grad = False
    tracer = tls.tracer
    if tracer is not None:
        tracer.mutate(target, value)
    return target


def _view_positions(view):
    """The flat positions in its base of a CPU view's elements (an int64 array of the view's
    shape), or None when they cannot be read off the NumPy strides."""
    base = view._base
    if view.device.type != "cpu" or view._data is None or base._data is None or \
            view.dtype is not base.dtype:
        return None
    b, v = base._data, view._data
    if not b.flags.c_contiguous or v.dtype.itemsize != b.dtype.itemsize or \
            (v.size and not np.shares_memory(v, b)):
        return None
    item = b.dtype.itemsize
    offset = v.__array_interface__["data"][0] - b.__array_interface__["data"][0]
    pos = np.full(v.shape, offset // item, dtype=np.int64)
    for k, (n, st) in enumerate(zip(v.shape, v.strides)):
        pos += (np.arange(n, dtype=np.int64) * (st // item)).reshape(
            [-1 if j == k else 1 for j in range(v.ndim)])
    return pos


def _commit_into_view(view, value, op, since):
    """In-place write into a view of a base that takes part in autograd (PyTorch's
    CopySlices): the base's new value is recorded as ``base`` with the view's positions
    scattered from ``value``; base and view both take that new autograd identity."""
    base = view._base
    if base.requires_grad and base.grad_fn is None:
        raise AutogradError(f"{op}: a view of a leaf Variable that requires grad is being used "
                            "in an in-place operation. Wrap the update in `with fw.no_grad():`")
    if since is not None and value.grad_fn is not None:
        _snapshot_saved(view, value.grad_fn, since)
    from .. import dtypes
    pos = Tensor._wrap(_view_positions(view).reshape(-1), dtypes.int64, view.device)
    start = mark()
    new_base = base.reshape(-1).scatter(0, pos, value.reshape(-1)).reshape(base.shape)
    new_view = new_base.reshape(-1).gather(0, pos).reshape(view.shape)
    _snapshot_saved(view, new_view.grad_fn, start)  # the scatter read the old base
    _write(view, value, op)
    view._storage.version += 1
    for t, src in ((base, new_base), (view, new_view)):
        t.grad_fn, t._output_nr = src.grad_fn, src._output_nr
        t.requires_grad = src.requires_grad
    base._ag_rev += 1
    view._ag_rev = base._ag_rev
    return view


def _view_chain(view):
    """The steps ``(source, view op, attrs)`` from ``view`` up to its autograd base when all
    of them are reshapes, permutes or slices (a pool's output then ``flatten(1)``; a slice of
    a clone), else None. A capture knows each step (the tracer's view sources); eagerly,
    views made of reshapes alone are read as one reshape of the whole base."""
    tracer = tls.tracer
    if tracer is None:
        if all(v.name == "reshape" for v in view._view_ops):
            return [(view._base, view._view_ops[-1], {"shape": view.shape})]
        return None
    if getattr(tracer, "view_source", None) is None:
        return None
    chain, t = [], view
    while t is not view._base:
        step = tracer.view_source(t)
        if step is None or step[1] is None or step[1].name not in ("reshape", "permute", "slice"):
            return None
        chain.append(step)
        t = step[0]
    return chain


def _commit_through_chain(view, value, op, since, chain):
    """In-place write into a reshape/permute/slice view of a base that takes part in
    autograd, also under a capture (where no strides can be read): the base's new value is
    ``value`` taken back through the inverse steps (a slice puts it into the source's old
    value); the view is re-derived from the new base by the same view ops."""
    from .registry import OPS, apply
    base = view._base
    if base.requires_grad and base.grad_fn is None:
        raise AutogradError(f"{op}: a view of a leaf Variable that requires grad is being used "
                            "in an in-place operation. Wrap the update in `with fw.no_grad():`")
    if since is not None and value.grad_fn is not None:
        _snapshot_saved(view, value.grad_fn, since)
    new_base = value
    for src, vop, attrs in chain:
        if vop.name == "reshape":
            new_base = new_base.reshape(src.shape)
        elif vop.name == "permute":
            dims = list(attrs["dims"])
            new_base = new_base.permute([dims.index(d) for d in range(len(dims))])
        else:
            key = tuple(slice(a, b, c) for a, b, c in zip(attrs["starts"], attrs["stops"],
                                                         attrs["steps"]))
            new_base = apply(OPS["index_put"], src, new_base, key=key, accumulate=False)
    new_view = new_base
    for _, vop, attrs in reversed(chain):
        new_view = apply(vop, new_view, **attrs)
    if view._data is not None and value._data is not None:
        _write(view, value, op)
    view._storage.version += 1
    for t, src in ((base, new_base), (view, new_view)):
        t.grad_fn, t._output_nr = src.grad_fn, src._output_nr
        t.requires_grad = src.requires_grad
    base._ag_rev += 1
    view._ag_rev = base._ag_rev
    if tls.tracer is not None:
        tls.tracer.mutate(view, value)
    return view


def refresh_view(view):
    """Give a view taken before its base was modified in place (through the base or
    another view) the base's current autograd identity, as PyTorch regenerates a view's
    grad_fn: the view reads its positions out of the base."""
    base = view._base
    if not view._view_ops or tls.tracer is not None or view.dtype is not base.dtype:
        return  # not a differentiable view (detach(), view(dtype)), or a trace (compiler's)
    pos = _view_positions(view)
    if pos is None:
        raise NotImplementedError(f"autograd through a view ({list(view.shape)}) taken before "
                                  "its base was modified in place is only supported on the CPU")
    from .. import dtypes
    from ..tensor import Storage
    # the base's identity on a storage of its own: the gather must not version-check the base
    alias = Tensor._wrap(base._data, base.dtype, base.device, base.shape, Storage())
    alias.requires_grad, alias.grad_fn = base.requires_grad, base.grad_fn
    alias._output_nr = base._output_nr
    index = Tensor._wrap(pos.reshape(-1), dtypes.int64, view.device)
    fresh = alias.reshape(-1).gather(0, index).reshape(view.shape)
    view.grad_fn, view._output_nr = fresh.grad_fn, fresh._output_nr
    view.requires_grad = fresh.requires_grad
    view._ag_rev = base._ag_rev


def _snapshot_saved(target, node, since):
    """Nodes created after ``since`` that saved ``target`` at its current version get a copy
    of its data (same autograd identity), so overwriting it does not invalidate them."""
    from .movement import CLONE
    from .registry import apply
    storage, version = target._storage, target._storage.version
    stack, seen, copies = [node], set(), {}
    while stack:
        node = stack.pop()
        if node.seq <= since or id(node) in seen or node.args is None:
            continue
        seen.add(id(node))
        args, versions = list(node.args), list(node.versions)
        for i, a in enumerate(args):
            if isinstance(a, Tensor) and a._storage is storage and versions[i] == version:
                snap = copies.get(id(a))
                if snap is None:
                    saved = tls.grad_enabled, tls.tracer
                    tls.grad_enabled, tls.tracer = False, None
                    try:
                        snap = copies[id(a)] = apply(CLONE, a)
                    finally:
                        tls.grad_enabled, tls.tracer = saved
                    # a capture's copy has no data: the trace reads it as the old value
                    if getattr(tls.tracer, "snapshot", None) is not None:
                        tls.tracer.snapshot(a, snap)
                    snap.requires_grad, snap.grad_fn = a.requires_grad, a.grad_fn
                    snap._output_nr = a._output_nr
                args[i], versions[i] = snap, snap._storage.version
            elif a.__class__.__name__ == "SavedTensor" and a._storage is storage and \
                    versions[i] == version:  # packed by saved_tensors_hooks
                args[i] = a.snapshot()
                versions[i] = args[i].version
        node.args, node.versions = tuple(args), tuple(versions)
        stack.extend(e[0] for e in node.edges if isinstance(e, tuple))


def _write(target, value, op):
    if target.device.type == "cpu":
        import numpy as np
        if not target._data.flags.writeable:
            raise ShapeError(f"{op}: unsupported operation: more than one element of the "
                             "written-to tensor refers to a single memory location (expanded "
                             "tensor). Please clone() the tensor before performing the "
                             "operation.")
        np.copyto(target._data, value._data, casting="unsafe")
    else:
        from ..backends import get_backend
        get_backend(target.device).copy_into(target._data, value._data)
