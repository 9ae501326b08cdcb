"""User-defined custom ops: ``fw.library``, after PyTorch's ``torch.library``.

``@fw.library.custom_op("mylib::name", mutates_args=())`` turns a Python function that
takes and returns tensors (its body may use ``.numpy()`` and NumPy) into an op of the
registry (:mod:`framework.ops.registry`), so it goes through the one dispatch path,
``apply``:

- eager calls run the function itself (the op's output shapes come from its result);
- while tracing (``fw.compile``, autodiff of a graph) the *fake* registered with
  ``register_fake`` gives the output shapes and dtypes, and the op becomes one node of the
  graph; the generated NumPy code calls the function (opaque, no graph break);
- ``register_autograd(backward, setup_context=...)`` is the op's VJP rule: it runs in eager
  backward and, because ``backward`` is written with public ops, inside compiled training
  steps as well;
- ``fw.ops.mylib.name`` reaches the op, and ``opcheck`` tests one.
"""

from __future__ import annotations

import inspect
import re
import sys
import threading
import typing

import numpy as np

from ._state import tls
from .errors import ArgumentError, AutogradError, FrameworkError, FwTypeError
from .tensor import Tensor, meta_tensor

__all__ = ["custom_op", "register_fake", "register_autograd", "register_kernel", "opcheck",
           "CustomOpDef", "MissingFakeError"]

_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)::([A-Za-z_][A-Za-z0-9_]*)")
_CUSTOM_OPS: dict[str, CustomOpDef] = {}
_pending = threading.local()   # eager results computed by the meta rule, for the impl


class MissingFakeError(FrameworkError, RuntimeError):
    """A custom op without a fake was traced. ``fw.compile`` raises it instead of falling
    back to eager (a registration mistake, not a capture limitation)."""

    compile_raises = True


class LibraryError(FrameworkError, RuntimeError):
    """A ``fw.library`` registration that PyTorch refuses (a name registered twice)."""


def _parse_name(name) -> tuple[str, str]:
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ArgumentError(f"custom_op: expected an op name of the form 'namespace::name' "
                            f"(e.g. 'mylib::my_op'), got {name!r}")
    ns, short = name.split("::")
    return ns, short


def _num_outputs(fn, qualname: str):
    """1 for ``-> Tensor`` (or no annotation), N for ``-> tuple[Tensor, ...N]``, 0 for
    ``-> None``."""
    try:
        ret = typing.get_type_hints(fn).get("return", inspect.Signature.empty)
    except Exception:  # unresolvable forward references: read the raw annotation
        ret = inspect.signature(fn).return_annotation
    if ret is None or ret is type(None) or ret == "None":
        return 0
    if typing.get_origin(ret) is tuple:
        args = typing.get_args(ret)
        if not args or args[-1] is Ellipsis:
            raise FwTypeError(f"custom_op {qualname}: a tuple return type must list each "
                              "output (tuple[Tensor, Tensor]), got {ret}")
        return len(args)
    return 1


class CustomOpDef:
    """A custom op made by :func:`custom_op`: call it like the function it wraps."""

    def __init__(self, namespace, name, fn, mutates_args, device_types):
        self._namespace, self._name = namespace, name
        self._qualname = f"{namespace}::{name}"
        self._init_fn = fn
        self._sig = inspect.signature(fn)
        self._mutates = _mutated_params(self._sig, mutates_args, self._qualname)
        self._kernels: dict[str, typing.Callable] = {}
        if device_types is None:
            self._default_kernel = fn
        else:
            self._default_kernel = None
            self.register_kernel(device_types, fn)
        self._fake = None
        self._backward = None
        self._setup_context = None
        self._num_outputs = _num_outputs(fn, self._qualname)
        self._op = None
        self.__doc__, self.__name__ = fn.__doc__, name
        if self._num_outputs:
            self._op = _register_op(self)

    def __repr__(self) -> str:
        return f"<CustomOpDef({self._qualname})>"

    # -- registration ----------------------------------------------------------------------
    def register_fake(self, fn):
        """Register the shape/dtype function used while tracing: it gets tensors without
        data (same shapes, dtypes, devices and the other arguments) and returns tensors of
        the output shapes and dtypes (``x.new_empty(...)``, ``fw.empty_like(x)``)."""
        self._fake = fn
        return fn

    def register_autograd(self, backward, /, *, setup_context=None):
        """Make the op differentiable: ``setup_context(ctx, inputs, output)`` saves what
        ``backward(ctx, *grads)`` needs; backward returns one gradient (or None) per input
        and must be written with public ops (so compiled training steps record it)."""
        if not callable(backward) or (setup_context is not None and
                                      not callable(setup_context)):
            raise FwTypeError(f"{self._qualname}.register_autograd: backward and "
                              "setup_context must be callables")
        if self._mutates:
            raise NotImplementedError(f"{self._qualname}: register_autograd on an op that "
                                      "mutates its arguments is not supported")
        self._backward, self._setup_context = backward, setup_context

    def register_kernel(self, device_types, fn=None):
        """Use ``fn`` instead of the op's function on ``device_types`` ("cpu", "cuda")."""
        def deco(f):
            for d in (device_types,) if isinstance(device_types, str) else device_types:
                if d not in ("cpu", "cuda"):
                    raise ArgumentError(f"{self._qualname}.register_kernel: unknown device "
                                        f"type {d!r} (expected 'cpu' or 'cuda')")
                self._kernels[d] = f
            return f
        return deco if fn is None else deco(fn)

    def _destroy(self):
        """Remove the op from every table (as PyTorch's private ``_destroy``; tests)."""
        from .backends.cpu import IMPLS
        from .ops.registry import OPS
        _CUSTOM_OPS.pop(self._qualname, None)
        OPS.pop(self._qualname, None)
        IMPLS.pop(self._qualname, None)
        cuda = sys.modules.get("framework.backends.cuda")
        if cuda is not None:
            cuda.IMPLS.pop(self._qualname, None)

    # -- calling ---------------------------------------------------------------------------
    def _flatten(self, args, kwargs) -> tuple:
        try:
            bound = self._sig.bind(*args, **kwargs)
        except TypeError as e:
            raise FwTypeError(f"{self._qualname}: {e}") from None
        bound.apply_defaults()
        flat = tuple(bound.arguments[p] for p in self._sig.parameters)
        for a in flat:
            if isinstance(a, (list, tuple)) and any(isinstance(x, Tensor) for x in a):
                raise NotImplementedError(f"{self._qualname}: custom ops taking lists of "
                                          "tensors are not supported")
        return flat

    def _call_fn(self, fn, flat):
        """Call a user function with the flat argument list (keyword-only params by name)."""
        pos, kw = [], {}
        for (pname, p), a in zip(self._sig.parameters.items(), flat):
            if p.kind is p.KEYWORD_ONLY:
                kw[pname] = a
            else:
                pos.append(a)
        return fn(*pos, **kw)

    def __call__(self, *args, **kwargs):
        flat = self._flatten(args, kwargs)
        if self._num_outputs == 0 or self._mutates:
            return self._call_mutating(flat)
        from .ops.registry import apply
        try:
            return apply(self._op, *flat)
        finally:
            _pending.value = None  # never left behind by a call that failed half-way

    def _call_mutating(self, flat):
        """Ops that write into their arguments run eagerly (no graph node)."""
        if tls.tracer is not None:
            raise NotImplementedError(f"{self._qualname}: custom ops that mutate their "
                                      "arguments (mutates_args) or return nothing cannot be "
                                      "captured by fw.compile yet")
        from .autograd import no_grad
        for i in self._mutates:
            t = flat[i]
            if isinstance(t, Tensor) and t.requires_grad and t.grad_fn is None:
                raise AutogradError(f"{self._qualname}: a leaf tensor that requires grad is "
                                    f"mutated (argument {i})")
        dev = _device_of(flat, self._qualname)
        kernel = self._kernel_for(dev)
        with no_grad():
            out = self._call_fn(kernel, flat)
        for i in self._mutates:
            if isinstance(flat[i], Tensor):
                flat[i]._storage.version += 1
        return out

    def _kernel_for(self, dev):
        k = self._kernels.get(dev.type, self._default_kernel)
        if k is None:
            raise NotImplementedError(f"{self._qualname}: no kernel registered for device "
                                      f"type {dev.type!r} (register one with "
                                      f"{self._name}.register_kernel({dev.type!r}, fn))")
        return k


def _mutated_params(sig, mutates_args, qualname) -> tuple:
    if mutates_args == "unknown":
        raise NotImplementedError(f"custom_op {qualname}: mutates_args='unknown' is not "
                                  "supported; list the mutated argument names")
    if isinstance(mutates_args, str):
        mutates_args = (mutates_args,)
    names = list(sig.parameters)
    idx = []
    for m in mutates_args:
        if m not in names:
            raise ArgumentError(f"custom_op {qualname}: mutates_args names {m!r}, which is "
                                f"not a parameter of the function ({', '.join(names)})")
        idx.append(names.index(m))
    return tuple(idx)


def _device_of(flat, qualname):
    for a in flat:
        if isinstance(a, Tensor):
            return a.device
    raise NotImplementedError(f"{qualname}: custom ops without a tensor argument are not "
                              "supported")


# -- the registry op ---------------------------------------------------------------------
def _register_op(cop: CustomOpDef):
    from .backends.cpu import IMPLS
    from .ops.registry import OPS, register
    if cop._qualname in OPS:
        raise LibraryError(f"custom_op: an op named {cop._qualname!r} is already registered "
                           "(register each name once)")
    op = register(cop._qualname, "library", lambda *a: _meta(cop, a),
                  vjp=lambda g, a, out: _vjp(cop, g, a, out),
                  num_outputs=cop._num_outputs, saves_output=True, complex_ok=True)
    op.impls["cpu"] = IMPLS[cop._qualname] = lambda *raws: _impl(cop, "cpu", raws)
    op.impls["cuda"] = lambda *raws: _impl(cop, "cuda", raws)
    _CUSTOM_OPS[cop._qualname] = cop
    cop._op = op
    _add_cuda_impl(cop)
    return op


def _add_cuda_impl(cop):
    """The CUDA backend's entry (compiled code runs it on device buffers), once that
    backend is loaded."""
    mod = sys.modules.get("framework.backends.cuda")
    if mod is not None and cop._qualname not in mod.IMPLS:
        mod.IMPLS[cop._qualname] = cop._op.impls["cuda"]


def _meta(cop, args):
    """(shape, dtype) per output: eagerly from running the kernel (the result is kept for
    ``_impl``), while tracing from the fake."""
    tensors = [a for a in args if isinstance(a, Tensor)]
    if not tensors:
        raise NotImplementedError(f"{cop._qualname}: custom ops without a tensor argument "
                                  "are not supported")
    eager = tls.tracer is None and all(t._data is not None for t in tensors)
    if eager:
        kernel = cop._kernel_for(tensors[0].device)
        outs = _run_detached(cop, kernel, tuple(a.detach() if isinstance(a, Tensor) else a
                                                for a in args))
        raws = tuple(_fresh(o._data, args) for o in outs)
        _pending.value = (cop, raws)
    else:
        if cop._fake is None:
            raise MissingFakeError(
                f"There was no fake impl registered for {cop!r}. This is necessary for "
                f"fw.compile (and other tracing) to work. Please use "
                f"`{cop._name}.register_fake` or "
                f"`fw.library.register_fake({cop._qualname!r})` to add one.")
        if tensors[0].device.type == "cuda":
            _add_cuda_impl(cop)
        fakes = tuple(meta_tensor(a.shape, a.dtype, a.device) if isinstance(a, Tensor)
                      else a for a in args)
        outs = _run_detached(cop, cop._fake, fakes, what="fake")
    metas = tuple((tuple(o.shape), o.dtype) for o in outs)
    return metas[0] if cop._num_outputs == 1 else metas


def _run_detached(cop, fn, args, what="function"):
    """``fn(*args)`` outside any trace and grad mode; its outputs as a checked tuple."""
    saved = tls.tracer, tls.grad_enabled
    tls.tracer, tls.grad_enabled = None, False
    try:
        out = cop._call_fn(fn, args)
    finally:
        tls.tracer, tls.grad_enabled = saved
    outs = out if isinstance(out, tuple) else (out,)
    if len(outs) != cop._num_outputs or not all(isinstance(o, Tensor) for o in outs):
        got = type(out).__name__ if not isinstance(out, tuple) else \
            f"a tuple of {len(out)}"
        raise FwTypeError(f"{cop._qualname}: its {what} returned {got}; expected "
                          f"{cop._num_outputs} tensor(s) (annotate the return type, e.g. "
                          "-> tuple[Tensor, Tensor], for several outputs)")
    return outs


def _fresh(raw, args):
    """``raw``, copied when it shares memory with an input (outputs never alias inputs)."""
    if isinstance(raw, np.ndarray):
        for a in args:
            d = a._data if isinstance(a, Tensor) else None
            if isinstance(d, np.ndarray) and np.may_share_memory(raw, d):
                return raw.copy()
    return raw


def _impl(cop, dev_type, raws):
    """The backend kernel: the eager result the meta rule computed, or (compiled code,
    which calls this with NumPy arrays) the kernel run on tensors wrapping them."""
    pend = getattr(_pending, "value", None)
    if pend is not None and pend[0] is cop:
        _pending.value = None
        res = pend[1]
        return res[0] if cop._num_outputs == 1 else res
    from . import dtypes
    if dev_type == "cuda":  # device buffers from compiled code (backends/cuda.CudaBuffer)
        from .backends.cuda import CudaBuffer, fw_dtype
        from .device import device
        buf = next(r for r in raws if isinstance(r, CudaBuffer))
        dev = device("cuda", buf.alloc.device)
        args = tuple(Tensor._wrap(r, fw_dtype(r), dev) if isinstance(r, CudaBuffer) else r
                     for r in raws)
        outs = _run_detached(cop, cop._kernel_for(dev), args)
        res = tuple(o.clone()._data if any(o._data is a._data for a in args
                                                if isinstance(a, Tensor)) else o._data
                    for o in outs)
        return res[0] if cop._num_outputs == 1 else res
    from .device import cpu
    args = tuple(Tensor._wrap(np.asarray(r), dtypes.from_numpy(np.asarray(r).dtype), cpu)
                 if isinstance(r, (np.ndarray, np.generic)) else r for r in raws)
    outs = _run_detached(cop, cop._kernel_for(cpu), args)
    res = tuple(_fresh(o.numpy(force=True), args) for o in outs)
    return res[0] if cop._num_outputs == 1 else res


def _vjp(cop, grads, args, out):
    """The op's VJP rule: the user's setup_context and backward."""
    if cop._backward is None:
        raise AutogradError(f"Autograd has not been implemented for operator "
                            f"{cop._qualname}. If you wish to differentiate it, use "
                            f"{cop._name}.register_autograd(backward, setup_context=...)")
    from .autograd.function import FunctionCtx
    ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a.requires_grad for a in args))
    if cop._setup_context is not None:
        cop._setup_context(ctx, tuple(args), out)
    res = cop._backward(ctx, *(grads if isinstance(grads, tuple) else (grads,)))
    res = res if isinstance(res, (tuple, list)) else (res,)
    if len(res) != len(args):
        raise AutogradError(f"{cop._qualname}: backward returned {len(res)} gradient(s); "
                            f"expected {len(args)} (one per input, None for non-tensors)")
    for i, (g, a) in enumerate(zip(res, args)):
        if g is not None and (not isinstance(g, Tensor) or not isinstance(a, Tensor)
                              or tuple(g.shape) != tuple(a.shape)):
            raise AutogradError(f"{cop._qualname}: backward's gradient {i} must be None or a "
                                f"tensor shaped like input {i}")
    return tuple(res)


# -- the public functions ----------------------------------------------------------------
def custom_op(name, fn=None, /, *, mutates_args=(), device_types=None, schema=None):
    """Wrap a Python function as the custom op ``name`` ("namespace::op_name")."""
    ns, short = _parse_name(name)
    if schema is not None:
        raise NotImplementedError("custom_op: an explicit schema is not supported; the "
                                  "signature is read from the function")
    if name in _CUSTOM_OPS:
        raise LibraryError(f"custom_op: an op named {name!r} is already registered "
                           "(register each name once)")

    def deco(f):
        return CustomOpDef(ns, short, f, mutates_args, device_types)
    return deco if fn is None else deco(fn)


def _lookup(op) -> CustomOpDef:
    if isinstance(op, CustomOpDef):
        return op
    _parse_name(op)
    if op not in _CUSTOM_OPS:
        raise ArgumentError(f"no custom op named {op!r} (create it with "
                            "fw.library.custom_op first)")
    return _CUSTOM_OPS[op]


def register_fake(op, fn=None, /):
    """``@fw.library.register_fake("mylib::name")``: the op's fake (see
    :meth:`CustomOpDef.register_fake`)."""
    cop = _lookup(op)
    return cop.register_fake if fn is None else cop.register_fake(fn)


def register_autograd(op, backward, /, *, setup_context=None):
    """``fw.library.register_autograd("mylib::name", backward, setup_context=...)``."""
    _lookup(op).register_autograd(backward, setup_context=setup_context)


def register_kernel(op, device_types, fn=None, /):
    """``@fw.library.register_kernel("mylib::name", "cpu")``: a per-device kernel."""
    return _lookup(op).register_kernel(device_types, fn)


def namespace(ns: str):
    """``fw.ops.<ns>``: the custom ops of namespace ``ns`` as attributes."""
    if not any(q.startswith(ns + "::") for q in _CUSTOM_OPS):
        raise AttributeError(f"module 'framework.ops' has no attribute {ns!r}")
    return _Namespace(ns)


class _Namespace:
    def __init__(self, ns):
        self._ns = ns

    def __getattr__(self, name):
        cop = _CUSTOM_OPS.get(f"{self._ns}::{name}")
        if cop is None:
            raise AttributeError(f"no custom op '{self._ns}::{name}'")
        return cop


from .library_check import opcheck  # noqa: E402
