"""The op registry and the one dispatch path, :func:`apply`.

Every op is declared once with :func:`register`: its name, its group, its meta rule (the
only place shape and dtype errors are raised) and its VJP rule (written with public ops,
so it runs on eager tensors and on traced values alike). Everything else is a table keyed
by the op: backend implementations (``framework/backends``), code generation and ONNX
lowerings (``compiler``).

``apply(op, *args, **attrs)`` is JAX's ``bind``: it runs the meta rule, computes the
result with the backend when the inputs hold data, appends a node to the active trace, and
links the outputs into the autograd graph when grad mode is on.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .._state import tls
from ..device import meta as _META
from .. import dtypes as _dtypes
from ..dtypes import COMPLEX as _COMPLEX, FLOAT as _FLOAT
from ..errors import DeviceError, DTypeError
from ..tensor import Storage, Tensor, _init

# Op groups (tinygrad's GroupOp): passes test membership instead of chaining ifs.
UNARY, BINARY, TERNARY, CAST, REDUCE, SCAN, MOVEMENT, INDEX, MATMUL, CONV = (
    "unary", "binary", "ternary", "cast", "reduce", "scan", "movement", "index", "matmul",
    "conv")
CREATION, RANDOM, COMPOSITE, TRANSFER = "creation", "random", "composite", "transfer"
ELEMENTWISE = frozenset({UNARY, BINARY, TERNARY, CAST})
_DEVICE_FROM_ATTRS = frozenset({CREATION, RANDOM, TRANSFER})


class Op:
    """One registered op: its rules and the per-backend implementation table."""

    __slots__ = ("name", "group", "meta", "vjp", "num_outputs", "is_view", "decomp",
                 "impls", "differentiable_args", "saves_output", "saves_args", "complex_ok",
                 "__weakref__")

    def __init__(self, name, group, meta, vjp, num_outputs, is_view, decomp,
                 differentiable_args, saves_output):
        self.name = name
        self.group = group
        self.meta = meta
        self.vjp = vjp
        self.num_outputs = num_outputs
        self.is_view = is_view
        self.decomp = decomp
        self.differentiable_args = differentiable_args
        self.saves_output = saves_output
        self.saves_args = None
        self.complex_ok = False  # accepts complex operands (framework/ops/complex_ops.py)
        self.impls: dict[str, Callable] = {}

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def __reduce__(self):
        return (get_op, (self.name,))


OPS: dict[str, Op] = {}
# the open dispatch observer (op_begin/op_end): a profiler, a FlopCounterMode, or a chain of
# several (ops/dispatch_hooks.py); None when none is open
_profile_hook = None
# framework.amp's cast hook, (op, args) -> args, while any thread is in an autocast region
_autocast_hook = None
# framework.autograd.forward_ad's tangent propagation while a dual level is open:
# (op, args, attrs) -> the result, or NotImplemented when no operand carries a tangent
_forward_ad_hook = None
# compiler/symints.py's lowering of traced int arguments to sympy expressions, (args,
# attrs) -> (args, attrs), while a capture traces ints as symbols
_symint_hook = None
Node = None  # framework.autograd.Node, bound on first use (autograd imports this module)
# True once a complex dtype has been resolved anywhere (dtypes.mark_complex_used): only
# then does apply() look for complex operands of ops that do not accept them.
_complex_seen = False


def _on_complex_used():
    global _complex_seen
    _complex_seen = True


_dtypes._complex_listeners.append(_on_complex_used)
if _dtypes._complex_used:
    _complex_seen = True


def _reject_complex(op, args):
    """The complex gate: a DTypeError for a complex operand of an op that does not take
    one (instead of a NumPy error or a silently wrong number)."""
    for a in args:
        if isinstance(a, Tensor):
            if a.dtype.category == _COMPLEX:
                raise DTypeError(f"{op.name}: {a.dtype.name} tensors are not supported "
                                 "(complex numbers are supported by a subset of ops; see "
                                 "docs/tensors-and-autograd.md)")
        elif isinstance(a, complex):
            raise DTypeError(f"{op.name}: complex scalars are not supported")


def register(name: str, group: str, meta: Callable, *, vjp: Callable | None = None,
             num_outputs: int = 1, is_view: bool = False, decomp: Callable | None = None,
             differentiable_args: tuple | None = None, saves_output: bool | tuple = False,
             saves_args=None, complex_ok: bool = False) -> Op:
    """Declare an op.

    meta(*args, **attrs) -> (shape, dtype), or a tuple of those for multi-output ops.
    vjp(grads, args, out, **attrs) -> one gradient (or None) per positional arg.
    decomp(*args, **attrs) -> the op written with other public ops (composites).
    saves_args: indices of the args whose *data* the VJP reads (None: all tensor args), or
    ``f(args, needs) -> indices``; only those are version-checked at backward, so an
    in-place update of an arg the VJP never reads is allowed (as in PyTorch).
    saves_output: the VJP reads the outputs; a tuple of output indices names the only ones
    whose data it reads (max_pool's indices), so an in-place op on another output
    (``MaxPool2d`` then ``ReLU(inplace=True)``) is allowed, as in PyTorch.
    complex_ok: the op accepts complex operands (else :func:`apply` raises a DTypeError
    naming the op and the dtype).
    """
    if name in OPS:
        raise ValueError(f"op {name!r} registered twice")
    op = Op(name, group, meta, vjp, num_outputs, is_view, decomp, differentiable_args,
            saves_output)
    op.saves_args = saves_args
    op.complex_ok = complex_ok
    OPS[name] = op
    return op


def get_op(name: str) -> Op:
    """The registered op called ``name``."""
    return OPS[name]


def _refuse_complex_on_cuda(op, args, meta):
    """Complex tensors stay on the CPU: the Triton backend has no complex kernels."""
    dts = [a.dtype for a in args if isinstance(a, Tensor)]
    dts += [m[1] for m in (meta if op.num_outputs != 1 else (meta,))]
    for dt in dts:
        if dt.category == _COMPLEX:
            raise NotImplementedError(f"{op.name}: complex dtypes are not supported on cuda "
                                      f"(got {dt.name}); keep complex tensors on the CPU")


def _no_tensor_operand(op, args):
    """The error for a call whose operands hold no dense Tensor."""
    from ..errors import FwTypeError
    kinds = ", ".join(type(a).__name__ for a in args)
    if any(getattr(type(a), "_fw_sparse", False) for a in args):
        return FwTypeError(f"{op.name}: got a sparse tensor ({kinds}); dense ops take dense "
                           "tensors: use fw.sparse's functions, mm/matmul, or .to_dense()")
    return FwTypeError(f"{op.name}: expected at least one Tensor operand, got ({kinds})")


def apply(op: Op, *args, **attrs):
    """Run ``op`` on ``args``: meta rule, backend compute, trace record, autograd link."""
    if _symint_hook is not None:
        args, attrs = _symint_hook(args, attrs)
    if _autocast_hook is not None:  # autocast casts operands with the public cast op
        args = _autocast_hook(op, args)
    if _forward_ad_hook is not None:  # a dual level is open: tangents ride along
        out = _forward_ad_hook(op, args, attrs)
        if out is not NotImplemented:
            return out
    if _complex_seen and not op.complex_ok:
        _reject_complex(op, args)
    meta = op.meta(*args, **attrs)
    hook = _profile_hook  # after the meta rule: an op rejected there is not an event
    if hook is not None:
        event = hook.op_begin(op, args, attrs)
    # One pass over the operands: device, "all hold data", raw buffers, "any needs grad".
    dev = None
    has_data = True
    needs_grad = False
    raws = []
    for a in args:
        if isinstance(a, Tensor):
            d = a.device
            if dev is None:
                dev = d
            elif d is not dev and a.shape:
                raise DeviceError(f"{op.name}: expected all tensors on one device, got "
                                  f"{dev} and {d}")
            data = a._data
            if data is None:
                has_data = False
            raws.append(data)
            if a.requires_grad:
                needs_grad = True
        else:
            raws.append(a)
    if op.group in _DEVICE_FROM_ATTRS:
        dev = attrs["device"]
        if has_data and any(not isinstance(s, int) for s in attrs.get("shape", ())):
            has_data = False  # a symbolic size (tracing a dynamic dim): metadata only
    if has_data and tls.tracer is not None and (_symbolic_meta(op, meta) or
                                                _symbolic_operand(args)):
        # a symbolic bound on a concrete tensor (``pe[:x.size(0)]``), or a dynamic size
        # used as a number with one (``(x.shape[1] - 2.5) * const``): metadata only
        has_data = False
    if _complex_seen and dev is not None and dev.type == "cuda":
        _refuse_complex_on_cuda(op, args, meta)
    raw = None
    if has_data and dev is not _META:
        try:
            impl = op.impls.get(dev.type)
        except AttributeError:  # dev is None: no Tensor operand (a sparse tensor, say)
            raise _no_tensor_operand(op, args) from None
        if impl is None and dev.type == "cuda":  # backend not loaded, or op registered later
            from ..backends import get_backend
            get_backend(dev).install()
            impl = op.impls.get(dev.type)
        if impl is not None:
            raw = impl(*raws, **attrs)
        else:
            raw = _run_decomposition(op, dev, args, attrs)
    if op.num_outputs == 1:
        if op.is_view:
            out = _wrap_output(op, raw, meta, dev, args)
        else:  # the common case, inlined
            shape, dtype = meta
            if raw is not None:
                if raw.__class__ is not np.ndarray and isinstance(raw, np.generic):
                    raw = np.asarray(raw)  # NumPy ufuncs turn 0-d arrays into scalars
                if raw.dtype is not dtype.np and raw.dtype != dtype.np:
                    raw = raw.astype(dtype.np)
            out = _new(Tensor)
            _init(out, raw, shape, dtype, dev, Storage())
        outs = (out,)
    else:
        outs = tuple(_wrap_output(op, None if raw is None else r, m, dev, args)
                     for r, m in zip(raw if raw is not None else [None] * len(meta), meta))
        out = outs
    tracer = tls.tracer
    if tracer is not None:
        tracer.record(op, args, attrs, outs)
    if needs_grad and op.vjp is not None and tls.grad_enabled:
        _link_autograd(op, args, attrs, outs)
    if hook is not None:
        hook.op_end(event)
    return out


_new = object.__new__


def _run_decomposition(op, dev, args, attrs):
    """Eager value of a composite that has no kernel of its own on ``dev``."""
    if op.decomp is None:
        raise NotImplementedError(f"op {op.name!r} has no implementation for device "
                                  f"{dev.type!r}")
    saved = tls.tracer, tls.grad_enabled, tls.autocast
    # the composite was autocast as a whole (as PyTorch's excluded dispatch key)
    tls.tracer, tls.grad_enabled, tls.autocast = None, False, None
    try:
        res = op.decomp(*args, **attrs)
    finally:
        tls.tracer, tls.grad_enabled, tls.autocast = saved
    return tuple(r._data for r in res) if op.num_outputs > 1 else res._data


def _symbolic_meta(op, meta) -> bool:
    """Whether an output has a symbolic size (it can only be metadata)."""
    metas = (meta,) if op.num_outputs == 1 else meta
    return any(s.__class__ is not int for shape, _ in metas for s in shape)


def _symbolic_operand(args) -> bool:
    """Whether a non-tensor operand is a sympy expression of a dynamic size."""
    return any(a.__class__ is not Tensor and getattr(a, "free_symbols", None) for a in args)


def _wrap_output(op, raw, meta, dev, args):
    shape, dtype = meta
    t = object.__new__(Tensor)
    if op.is_view:
        src = args[0]
        _init(t, raw, shape, dtype, dev, src._storage)
        # the base is the autograd base: a view of detach()'s output is a view of that alias
        # (not of the tensor it was detached from), as in PyTorch
        t._base = src._base if src._base is not None and src._view_ops else src
        # detach (traced with grad on) aliases memory but is no autograd view, as eagerly
        t._view_ops = () if op.name == "detach" else src._view_ops + (op,)
        t._inference = src._inference  # a view is an inference tensor iff its base is
        if t._base._ag_rev:
            t._ag_rev = t._base._ag_rev
    else:
        if raw is not None:
            if isinstance(raw, np.generic):  # NumPy ufuncs turn 0-d arrays into scalars
                raw = np.asarray(raw)
            if raw.dtype is not dtype.np and raw.dtype != dtype.np:
                raw = raw.astype(dtype.np)
        _init(t, raw, shape, dtype, dev, Storage())
    return t


def _link_autograd(op, args, attrs, outs):
    global Node
    if Node is None:
        from ..autograd import Node
    for a in args:  # a view whose base was since modified in place links to the new base
        if isinstance(a, Tensor) and a._base is not None and a._ag_rev != a._base._ag_rev:
            from .inplace import refresh_view
            refresh_view(a)
    needs = [isinstance(a, Tensor) and a.requires_grad for a in args]
    diff = op.differentiable_args
    if diff is not None:
        needs = [n and i in diff for i, n in enumerate(needs)]
        if not any(needs):
            return
    node = Node(op, args, attrs, outs, needs)
    for i, o in enumerate(outs):
        if o.dtype.category >= _FLOAT:  # floating and complex outputs
            o.requires_grad = True
            o.grad_fn = node
            o._output_nr = i
