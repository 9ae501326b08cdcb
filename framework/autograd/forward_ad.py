"""Forward-mode automatic differentiation, as ``torch.autograd.forward_ad``.

Inside a ``dual_level()`` block a tensor may carry a *tangent* (``make_dual``): every op
then computes its output's tangent, the Jacobian-vector product, alongside its value, and
``unpack_dual`` reads it back::

    with fwAD.dual_level():
        y = f(fwAD.make_dual(x, v))
        value, jvp = fwAD.unpack_dual(y)     # jvp = J_f(x) @ v

How it runs: entering a level installs :func:`_propagate` as the registry's forward-AD
hook, so ``apply`` (the one dispatch path) hands it every op call; with no tangent among
the operands it returns at once. Otherwise it runs the op, then the op's JVP rule on the
operands' tangents with propagation switched off (a tangent has no tangent of its own: one
level only, as in PyTorch). The rules are :mod:`framework.ops.jvp_rules` for the hot ops
and, for every other op with a VJP rule, :func:`_generic_jvp`: the VJP is linear in its
cotangent ``u``, so the VJP of ``u -> vjp(u)`` at the tangents is the JVP. Rules are public
ops, so autograd records them (forward-over-reverse) and ``fw.compile`` traces them.

Tangents live in the tensor's ``_fw_grad`` attribute (a class default of None, so making a
tensor costs nothing extra) and are dropped when the level exits. Grad mode does not turn
forward AD off (``no_grad`` only stops recording), and ``detach()`` drops the tangent.
"""

from __future__ import annotations

import threading
import weakref
from typing import NamedTuple

from .._state import tls
from ..dtypes import FLOAT
from ..errors import AutogradError, DeviceError, DTypeError, FwTypeError, ShapeError
from ..tensor import Tensor

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level",
           "make_dual", "unpack_dual"]

_current_level = -1
# framework.ops.registry and framework.ops.jvp_rules, bound when the first level opens (the
# ops package imports autograd, so this module must not import it at load time)
_registry = _jvp_rules = None
# every tensor given a tangent at the open level (id -> tensor, held weakly): exit drops them
_duals: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class _State(threading.local):
    busy = False  # running an op or a JVP rule for a dual op: nothing propagates inside


_state = _State()


# ---------------------------------------------------------------------------------------
# levels
def enter_dual_level() -> int:
    """Open a forward-AD level and return it (0): only one level exists at a time."""
    global _current_level, _registry, _jvp_rules
    if _current_level >= 0:
        raise AutogradError("enter_dual_level: Nested forward mode AD is not supported at the "
                            "moment (a dual level is already open); for higher-order "
                            "derivatives use fw.func.jvp")
    if _registry is None:
        from ..ops import jvp_rules, registry
        _registry, _jvp_rules = registry, jvp_rules
    _jvp_rules.install_unary_rules()
    _current_level = 0
    _registry._forward_ad_hook = _propagate
    return 0


def exit_dual_level(*, level=None) -> None:
    """Close the open level: every tangent made in it is dropped."""
    global _current_level
    if level is None:
        level = _current_level
    if level < 0:
        raise AutogradError("exit_dual_level: Trying to exit a forward AD level that does not "
                            "exist (no dual level is open)")
    if level != _current_level:
        raise AutogradError("exit_dual_level: Trying to exit a forward AD level that was not "
                            f"the last one that was created (level {level}; the open level "
                            f"is {_current_level}). This is not supported.")
    _registry._forward_ad_hook = None
    _current_level = -1
    for t in list(_duals.values()):
        t.__dict__.pop("_fw_grad", None)
    _duals.clear()


class dual_level:  # noqa: N801  (PyTorch's name)
    """Context manager (and decorator) for forward AD: all dual tensors live inside it.
    ``with dual_level() as level:`` gives the level (0); nesting is not supported."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc) -> bool:
        exit_dual_level()
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with dual_level():
                return fn(*args, **kwargs)
        return wrapper


def _check_level(level, name) -> int:
    if level is None:
        level = _current_level
    if level < 0:
        raise AutogradError(f"{name}: Trying to create a dual Tensor for forward AD but no "
                            "level exists, make sure to enter_dual_level() first (or use "
                            "`with fw.autograd.forward_ad.dual_level():`)")
    if level != _current_level:
        raise AutogradError(f"{name}: level {level} is not the open forward AD level "
                            f"({_current_level})")
    return level


# ---------------------------------------------------------------------------------------
# dual tensors
class UnpackedDualTensor(NamedTuple):
    """What :func:`unpack_dual` returns: the primal (a view without the tangent) and the
    tangent (None when the tensor has none)."""

    primal: Tensor
    tangent: Tensor | None


def make_dual(tensor: Tensor, tangent: Tensor, *, level=None) -> Tensor:
    """A new tensor sharing ``tensor``'s memory (and autograd history) that carries
    ``tangent`` as its forward gradient. ``tangent`` must have the primal's shape and
    device; it is used as is when it has the primal's dtype and strides, else copied into
    them (a float32 tangent for a float64 primal becomes float64)."""
    _check_level(level, "make_dual")
    for name, t in (("tensor", tensor), ("tangent", tangent)):
        if not isinstance(t, Tensor):
            raise FwTypeError(f"make_dual(): argument '{name}' must be a Tensor, not "
                              f"{type(t).__name__}")
        if t.dtype.category < FLOAT:
            what = "primal" if name == "tensor" else "tangent"
            raise DTypeError(f"make_dual: Expected {what} (argument '{name}') to be floating "
                             f"point or complex, but got: {t.dtype.name}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise ShapeError(f"make_dual: Trying to set a forward gradient that has a different "
                         f"size than that of the original Tensor, this is not supported. "
                         f"Tensor is of size {list(tensor.shape)} while the given forward "
                         f"gradient (argument 'tangent') is of size {list(tangent.shape)}.")
    if tangent.dtype is not tensor.dtype:
        # PyTorch accepts e.g. a float32 tangent for a float64 primal; here the tangent is
        # copied into the primal's dtype, so every rule sees matching dtypes
        if tangent.dtype.is_complex and not tensor.dtype.is_complex:
            raise DTypeError(f"make_dual: a complex tangent (argument 'tangent', "
                             f"{tangent.dtype.name}) for a real primal ({tensor.dtype.name})")
        _state.busy = True
        try:
            tangent = tangent.to(tensor.dtype)
        finally:
            _state.busy = False
    if tangent.device != tensor.device:
        raise DeviceError(f"make_dual: expected the tangent (argument 'tangent') on the "
                          f"primal's device {tensor.device}, got {tangent.device}")
    if _tangent_of(tensor) is not None:
        raise AutogradError(f"make_dual: Making a dual Tensor based on a Tensor that already "
                            f"has a forward gradient at the same level {_current_level} is not "
                            "supported (argument 'tensor')")
    if _tangent_of(tangent) is not None:
        raise AutogradError("make_dual: the tangent (argument 'tangent') is itself a dual "
                            "tensor; unpack_dual() it first")
    from ..ops.movement import view_alias
    _state.busy = True
    try:
        dual = view_alias(tensor)
        if tensor.stride() != tangent.stride():
            tangent = _relayout(tangent, tensor)
    finally:
        _state.busy = False
    _attach(dual, tangent)
    return dual


def unpack_dual(tensor: Tensor, *, level=None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of ``tensor``: the primal is a view of it without the tangent,
    the tangent is the forward gradient as is (None when there is none). Outside a dual
    level the result is ``(tensor, None)``."""
    if not isinstance(tensor, Tensor):
        raise FwTypeError(f"unpack_dual(): argument 'tensor' must be a Tensor, not "
                          f"{type(tensor).__name__}")
    if level is None:
        level = _current_level
    if level < 0:
        return UnpackedDualTensor(tensor, None)
    _check_level(level, "unpack_dual")
    tangent = _tangent_of(tensor)
    from ..ops.movement import view_alias
    _state.busy = True
    try:
        primal = view_alias(tensor)
    finally:
        _state.busy = False
    return UnpackedDualTensor(primal, tangent)


def has_tangents(*trees) -> bool:
    """True when a tensor in ``trees`` (nested tuples, lists, dicts) carries a tangent."""
    for x in trees:
        if isinstance(x, Tensor):
            if _tangent_of(x) is not None:
                return True
        elif isinstance(x, (tuple, list)):
            if has_tangents(*x):
                return True
        elif isinstance(x, dict):
            if has_tangents(*x.values()):
                return True
    return False


def _attach(t: Tensor, tangent: Tensor) -> None:
    t._fw_grad = tangent
    _duals[id(t)] = t


def _relayout(tangent: Tensor, like: Tensor) -> Tensor:
    """A copy of ``tangent`` with ``like``'s strides (so views of the dual and of its
    tangent line up)."""
    if like.is_contiguous():
        return tangent.contiguous()
    out = _zeros_in_layout(like)
    out.copy_(tangent)
    return out


def _zeros_in_layout(like: Tensor) -> Tensor:
    from ..creation import zeros_like
    if like.is_contiguous():
        return zeros_like(like)
    from ..ops.torch_gaps import empty_strided
    return empty_strided(like.shape, like.stride(), dtype=like.dtype, device=like.device)


def _tangent_of(t: Tensor):
    """``t``'s tangent: its own, or for a view taken before its base got one, a view of the
    base's tangent (as PyTorch makes lazily)."""
    g = t._fw_grad
    if g is None and t._base is not None and t._view_ops:
        bg = t._base._fw_grad
        if bg is not None:
            g = _view_of_base_tangent(t, bg)
            _attach(t, g)
    return g


def _view_of_base_tangent(view: Tensor, base_tangent: Tensor) -> Tensor:
    """The view of ``base_tangent`` that ``view`` is of its base (same offset and strides)."""
    import numpy as np
    base = view._base
    b, v, tb = base._data, view._data, base_tangent._data
    if view.device.type != "cpu" or v is None or tb is None or view.dtype is not base.dtype \
            or tb.strides != b.strides or tb.dtype != b.dtype or \
            not (b.flags.c_contiguous or b.flags.f_contiguous):
        raise NotImplementedError(
            f"forward AD: the tangent of a view ({list(view.shape)}) taken before its base "
            "became a dual tensor is only available for CPU tensors outside fw.compile; take "
            "the view after the base's in-place update")
    offset = v.__array_interface__["data"][0] - b.__array_interface__["data"][0]
    flat = tb.ravel(order="K")
    arr = np.lib.stride_tricks.as_strided(flat[offset // b.itemsize:], v.shape, v.strides)
    t = Tensor._wrap(arr, view.dtype, view.device, view.shape, base_tangent._storage)
    t._base = base_tangent._base if base_tangent._base is not None else base_tangent
    return t


# ---------------------------------------------------------------------------------------
# propagation through ops (the registry's hook)
def _propagate(op, args, attrs):
    """Run ``op`` and, when an operand carries a tangent, its JVP; else NotImplemented
    (``apply`` then runs the op itself)."""
    if _state.busy:
        return NotImplemented
    tangents = None
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            t = a._fw_grad
            if t is None and a._base is not None:
                t = _tangent_of(a)
            if t is not None:
                if tangents is None:
                    tangents = [None] * len(args)
                tangents[i] = t
    if tangents is None:
        return NotImplemented
    _state.busy = True
    try:
        out = _registry.apply(op, *args, **attrs)
        outs = out if op.num_outputs != 1 else (out,)
        if any(o.dtype.category >= FLOAT for o in outs):
            res = _output_tangents(op, tangents, args, outs, attrs)
            for o, t in zip(outs, res):
                if t is not None and o.dtype.category >= FLOAT:
                    _attach(o, _settle(op, t, o, tangents))
    finally:
        _state.busy = False
    return out


def _output_tangents(op, tangents, args, outs, attrs):
    """One tangent (or None) per output of ``op``."""
    none = (None,) * len(outs)
    if op.vjp is None or op.group == "random":
        return none  # not differentiable (comparisons, indices, random draws)
    diff = op.differentiable_args
    if diff is not None:
        tangents = [t if i in diff else None for i, t in enumerate(tangents)]
        if all(t is None for t in tangents):
            return none
    rule = _jvp_rules.JVP_RULES.get(op.name)
    if rule is not None:
        res = rule(tuple(tangents), args, outs[0] if len(outs) == 1 else outs, **attrs)
        if res is not NotImplemented:
            return (res,) if len(outs) == 1 else tuple(res)
    return _generic_jvp(op, tangents, args, outs, attrs)


def _settle(op, t, o, tangents):
    """The tangent as stored on output ``o``: its dtype, and never memory shared with an
    input's tangent unless ``op`` is a view (an in-place update of one must not change the
    other)."""
    if tuple(t.shape) != tuple(o.shape):
        raise AutogradError(f"internal: the JVP of {op.name} gave a tangent of shape "
                            f"{list(t.shape)} for an output of shape {list(o.shape)}")
    if t.dtype is not o.dtype:
        if t.dtype.is_complex and not o.dtype.is_complex:
            t = t.real
        t = t.to(o.dtype)
    if not op.is_view:
        for ti in tangents:
            if ti is not None and ti._storage is t._storage:
                return t.clone()
    return t


def _generic_jvp(op, tangents, args, outs, attrs):
    """J @ t by double VJP: the op's VJP at a zero cotangent ``u`` that requires grad is
    linear in ``u``; its VJP (``fw.autograd.grad`` with the tangents as grad_outputs) is
    the JVP. Records a graph (create_graph) only when the result must be differentiable."""
    from . import enable_grad, grad
    from ..creation import zeros_like
    need_graph = tls.grad_enabled and (
        any(isinstance(a, Tensor) and a.requires_grad for a in args)
        or any(t is not None and t.requires_grad for t in tangents))
    vargs = []
    for a, t in zip(args, tangents):
        if isinstance(a, Tensor):
            if t is not None and not (need_graph and a.requires_grad):
                a = a.detach().requires_grad_()  # VJP rules skip inputs not requiring grad
            elif a.requires_grad and not need_graph:
                a = a.detach()
        vargs.append(a)
    us = []
    for o in outs:
        u = zeros_like(o)
        if o.dtype.category >= FLOAT:
            u.requires_grad_()
        us.append(u)
    single = len(outs) == 1
    with enable_grad():
        gs = op.vjp(us[0] if single else tuple(us), tuple(vargs),
                    outs[0] if single else tuple(outs), **attrs)
    pairs = [(g, t) for g, t in zip(gs, tangents)
             if g is not None and t is not None and g.requires_grad]
    diff_us = [(k, u) for k, u in enumerate(us) if u.requires_grad]
    res = [None] * len(outs)
    if pairs and diff_us:
        got = grad([g for g, _ in pairs], [u for _, u in diff_us],
                   grad_outputs=[t for _, t in pairs], allow_unused=True,
                   create_graph=need_graph)
        for (k, _), r in zip(diff_us, got):
            res[k] = r
    return tuple(r if r is not None or o.dtype.category < FLOAT else zeros_like(o)
                 for r, o in zip(res, outs))


# ---------------------------------------------------------------------------------------
# in-place updates and custom Functions
def commit_tangent(target: Tensor, value) -> None:
    """Called by ``ops.inplace.commit`` while a level is open, before ``value`` is written
    into ``target``: the same update happens to the tangents (in place, so views of the
    target's tangent see it). A target without a tangent gets one (zeros where ``value``
    has none; for a view, a view of its base's new zero tangent)."""
    if _state.busy:
        return
    vt = _tangent_of(value) if isinstance(value, Tensor) else None
    tt = _tangent_of(target)
    if vt is None and tt is None:
        return
    from ..ops.inplace import commit
    _state.busy = True
    try:
        if tt is None:
            tt = _new_tangent(target)
        commit(tt, vt if vt is not None else 0.0, "copy_")
    finally:
        _state.busy = False


def _new_tangent(target: Tensor) -> Tensor:
    base = target._base
    if base is not None and target._view_ops:  # a view: its tangent is a view of the base's
        if _tangent_of(base) is None:
            _attach(base, _zeros_in_layout(base))
        return _tangent_of(target)
    t = _zeros_in_layout(target)
    _attach(target, t)
    return t


def function_apply(cls, args):
    """``cls.apply(*args)`` for a custom ``fw.autograd.Function`` while a level is open:
    with dual inputs, forward runs on the primals and ``cls.jvp(ctx, *tangents)`` gives the
    outputs' tangents (zeros stand for inputs without one, None for non-tensors)."""
    tangents = [_tangent_of(a) if isinstance(a, Tensor) else None for a in args]
    if _state.busy or all(t is None for t in tangents):
        return cls._run(args)[0]
    from .function import Function
    if cls.jvp is Function.jvp:
        raise NotImplementedError(
            f"forward AD: the custom Function {cls.__name__} got a dual tensor but defines no "
            "jvp(ctx, *tangents) staticmethod; implement it to use the Function with "
            "fw.autograd.forward_ad (or fw.func.jvp)")
    from ..creation import zeros_like
    _state.busy = True
    try:
        out, ctx = cls._run(args)
        ctx_tangents = [t if t is not None else
                        (zeros_like(a) if isinstance(a, Tensor) and ctx.materialize_grads
                         else None) for t, a in zip(tangents, args)]
        saved = ctx._saved, ctx._versions
        fwd = getattr(ctx, "_saved_fwd", None)
        if fwd is not None:  # ctx.save_for_forward(...): what ctx.saved_tensors gives in jvp
            ctx._saved, ctx._versions = fwd, (None,) * len(fwd)
        try:
            res = cls.jvp(ctx, *ctx_tangents)
        finally:
            ctx._saved, ctx._versions = saved
        many = isinstance(out, tuple)
        outs = out if many else (out,)
        res = res if isinstance(res, tuple) else (res,)
        if len(res) != len(outs):
            raise AutogradError(f"function {cls.__name__}.jvp returned {len(res)} tangents; "
                                f"expected {len(outs)} (one per forward output)")
        from ..ops.movement import view_alias
        outs = tuple(view_alias(o) if any(o is a for a in args) else o for o in outs)
        for o, t in zip(outs, res):
            if isinstance(o, Tensor) and isinstance(t, Tensor) and o.dtype.category >= FLOAT:
                if tuple(t.shape) != tuple(o.shape):
                    raise ShapeError(f"function {cls.__name__}.jvp returned a tangent of "
                                     f"shape {list(t.shape)} for an output of shape "
                                     f"{list(o.shape)}")
                if any(ti is not None and ti._storage is t._storage for ti in tangents):
                    t = t.clone()  # never an input's tangent itself (see _settle)
                _attach(o, t if t.dtype is o.dtype else t.to(o.dtype))
    finally:
        _state.busy = False
    return outs if many else outs[0]
