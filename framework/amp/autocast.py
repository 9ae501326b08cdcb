"""``fw.autocast``: automatic mixed precision, as PyTorch's ``torch.autocast``.

```python
with fw.autocast("cuda"):                  # float16 on cuda, bfloat16 on cpu by default
    loss = loss_fn(model(x), y)            # matmuls in float16, the loss in float32
loss.backward()                            # gradients of float32 parameters are float32
```

Inside a region every op is looked up in the policy tables below, per device type (the
tables follow PyTorch's autocast op reference):

- ``LOWER``: floating operands are cast to the region's dtype (matmul, conv, linear, the
  recurrent layers, attention);
- ``FP32``: floating operands are cast to float32 (losses, ``exp``/``log``/``pow``/``sum``
  and softmax on cuda, ...);
- ``PROMOTE``: operands are cast to the widest floating type among them;
- ``KEEP``: computed in float32, the result cast back to the input's dtype (batch norm, and
  layer/group norm on cpu: PyTorch's mixed-dtype kernels, which this framework lacks);
- ``BANNED``: raises (``binary_cross_entropy`` on cuda, as PyTorch);
- any other op runs in the dtypes of its inputs.

Only float16/bfloat16/float32 tensors on the region's device type are cast (float64 and
integer tensors never are), through the public ``cast`` op, so autograd sends gradients
back in the original dtype and a trace (``fw.compile``, ONNX export) records the casts.

Registered ops are cast by ``framework.ops.registry.apply`` through ``_autocast_hook``, a
module global that is ``None`` unless some thread is in a region: outside autocast the
dispatch path pays one ``is None`` test. Python-level ops that PyTorch autocasts as one op
(``linear``, the losses, the norms, ...) call :func:`autocast_args` or carry
:func:`autocast_op`; the ops they are built of then run with autocast off, as PyTorch's
wrappers exclude the autocast dispatch key. Backward passes and composite decompositions
run with autocast off too: backward ops use the dtypes their forward ops used.

Casts of leaf tensors that require grad (parameters) to the lower dtype are cached within
the outermost region of a thread (``cache_enabled``), so a weight used by several ops is
cast once; the cache is dropped when that region exits. Unlike PyTorch, an entry is also
dropped when its parameter is modified in place (``opt.step()`` inside the region) or
when a backward pass has freed its graph, and no entry is made while tracing.
"""

from __future__ import annotations

import copy
import functools
import threading
import warnings

from .. import dtypes
from .._state import tls
from ..errors import ArgumentError, DeviceError, DTypeError, FrameworkError
from ..ops import registry
from ..ops.pointwise import cast
from ..tensor import Tensor

__all__ = ["autocast", "autocast_op", "autocast_args", "is_autocast_enabled",
           "get_autocast_dtype", "is_autocast_available", "is_autocast_cache_enabled",
           "clear_autocast_cache", "custom_fwd", "custom_bwd"]

LOWER, FP32, PROMOTE, KEEP, BANNED = "lower_precision_fp", "fp32", "promote", "keep", "banned"

_DEFAULT_DTYPE = {"cpu": dtypes.bfloat16, "cuda": dtypes.float16}
_F32, _F64 = dtypes.float32, dtypes.float64


def _table(**groups) -> dict:
    return {name: policy for policy, names in groups.items() for name in names.split()}


_COMMON_LOWER = "matmul einsum conv conv_transpose lstm gru rnn"
# Registered ops (framework/ops), by name. PyTorch's mm/bmm/mv/dot/linalg ops reach
# ``matmul`` here, so one entry stands for them all.
_OP_POLICY = {
    "cuda": _table(
        lower_precision_fp=_COMMON_LOWER,
        fp32="exp log log2 log1p expm1 rsqrt reciprocal tan erfinv pow sum prod cumsum "
             "cumprod softmax log_softmax layer_norm cross_entropy",
        promote="cat scatter_add atan2"),
    "cpu": _table(
        lower_precision_fp=_COMMON_LOWER,
        fp32="prod cross_entropy linalg_det linalg_slogdet linalg_inv linalg_solve "
             "linalg_cholesky linalg_qr linalg_eigh linalg_svd linalg_solve_triangular "
             "linalg_lu_factor linalg_matrix_exp linalg_cholesky_ex linalg_inv_ex "
             "linalg_solve_ex",
        promote="cat scatter_add"),
}
_COMMON_FN_LOWER = ("linear conv1d conv2d conv3d conv_transpose1d conv_transpose2d "
                    "conv_transpose3d prelu scaled_dot_product_attention lstm_cell gru_cell "
                    "rnn_tanh_cell rnn_relu_cell addmm addmv addr addbmm baddbmm")
_COMMON_FN_FP32 = ("cross_entropy nll_loss mse_loss l1_loss smooth_l1_loss huber_loss kl_div "
                   "binary_cross_entropy_with_logits cosine_embedding_loss "
                   "hinge_embedding_loss margin_ranking_loss multi_margin_loss "
                   "soft_margin_loss triplet_margin_loss poisson_nll_loss")
# Python-level ops (nn.functional), by PyTorch's name.
_FN_POLICY = {
    "cuda": _table(
        lower_precision_fp=_COMMON_FN_LOWER,
        fp32=_COMMON_FN_FP32 + " layer_norm group_norm cosine_similarity normalize softplus "
                               "softmin",
        promote="grid_sample",
        keep="batch_norm",
        banned="binary_cross_entropy"),
    "cpu": _table(
        lower_precision_fp=_COMMON_FN_LOWER,
        fp32=_COMMON_FN_FP32 + " binary_cross_entropy ctc_loss grid_sample",
        keep="batch_norm layer_norm group_norm"),
}
_OP_NAMES = frozenset(n for t in _OP_POLICY.values() for n in t)

_BANNED_MSG = (
    "{name} is unsafe to autocast: many models use a sigmoid layer right before the binary "
    "cross entropy layer. In this case, combine the two layers using "
    "nn.functional.binary_cross_entropy_with_logits or nn.BCEWithLogitsLoss, which are "
    "safe to autocast (or leave the autocast region for this loss).")


# -- per-thread state ---------------------------------------------------------------------
class _State:
    """What the hook reads (``tls.autocast``): the enabled device types and their dtypes,
    and the thread's cast cache (None when ``cache_enabled=False``)."""

    __slots__ = ("dtypes", "cache", "key")

    def __init__(self, enabled: dict, cache):
        self.dtypes = enabled
        self.cache = cache
        self.key = tuple(sorted((d, t.name) for d, t in enabled.items()))


class _Local(threading.local):
    def __init__(self):
        self.depth = 0          # nesting of autocast regions (enabled or not)
        self.dtypes = {}        # device type -> dtype set by the innermost region
        self.cache = {}         # (id(leaf), dtype, grad mode) -> (leaf, version, cast)


_local = _Local()
_lock = threading.Lock()
_regions = 0  # open regions over all threads: the hook is installed while this is > 0


def _open_regions(delta: int) -> None:
    global _regions
    with _lock:
        _regions += delta
        registry._autocast_hook = _hook if _regions else None


def _check_device_type(device_type, what: str) -> str:
    if not isinstance(device_type, str):
        raise ArgumentError(f"{what}: expected `device_type` of type `str`, got: "
                            f"`{type(device_type).__name__}`")
    if device_type not in _DEFAULT_DTYPE:
        raise DeviceError(f"{what}: unsupported autocast device_type {device_type!r}; "
                          f"expected one of {sorted(_DEFAULT_DTYPE)}")
    return device_type


def is_autocast_available(device_type: str) -> bool:
    """True for the device types autocast supports ("cpu", "cuda")."""
    return device_type in _DEFAULT_DTYPE


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether ops on ``device_type`` (default "cuda", as PyTorch) are autocast here."""
    st = tls.autocast
    dev = "cuda" if device_type is None else _check_device_type(device_type,
                                                                 "is_autocast_enabled")
    return st is not None and dev in st.dtypes


def get_autocast_dtype(device_type: str):
    """The lower-precision dtype of ``device_type``'s autocast (the innermost region's, or
    the default: float16 on cuda, bfloat16 on cpu)."""
    dev = _check_device_type(device_type, "get_autocast_dtype")
    return _local.dtypes.get(dev, _DEFAULT_DTYPE[dev])


def is_autocast_cache_enabled() -> bool:
    """Whether the current region caches casts of parameters."""
    st = tls.autocast
    return st is None or st.cache is not None


def clear_autocast_cache() -> None:
    """Drop this thread's cached parameter casts."""
    _local.cache.clear()


# -- the context manager ------------------------------------------------------------------
class autocast:  # noqa: N801  (named like torch.autocast)
    """``with fw.autocast(device_type, dtype=None, enabled=True, cache_enabled=True):``
    runs the ops of the block on ``device_type`` in mixed precision (see the module doc);
    also a decorator. ``enabled=False`` turns autocast off for that device type inside an
    enclosing region. dtype defaults to float16 on cuda and bfloat16 on cpu."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = True):
        self.device = _check_device_type(device_type, "autocast")
        fast = get_autocast_dtype(device_type) if dtype is None else dtypes.to_dtype(dtype)
        if not fast.is_floating_point:
            raise DTypeError(f"autocast: dtype must be a floating-point dtype "
                             f"(bfloat16 or float16), got {fast.name}")
        enabled = bool(enabled)
        level = 2 + (type(self) is not autocast)  # fw.cuda.amp.autocast adds a frame
        if enabled and fast not in (dtypes.float16, dtypes.bfloat16):
            warnings.warn(f"In {device_type} autocast, but the target dtype {fast.name} is not "
                          "supported. Disabling autocast. Autocast supports bfloat16 and "
                          "float16.", UserWarning, stacklevel=level)
            enabled = False
        if enabled and device_type == "cuda" and not _cuda_available():
            warnings.warn("User provided device_type of 'cuda', but CUDA is not available. "
                          "Disabling", UserWarning, stacklevel=level)
            enabled = False
        self.fast_dtype = fast
        self._enabled = enabled
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        self._saved: list = []

    def __enter__(self):
        loc = _local
        prev = tls.autocast
        self._saved.append((prev, loc.dtypes.get(self.device)))
        loc.depth += 1
        loc.dtypes[self.device] = self.fast_dtype
        enabled = dict(prev.dtypes) if prev is not None else {}
        if self._enabled:
            enabled[self.device] = self.fast_dtype
        else:
            enabled.pop(self.device, None)
        tls.autocast = (_State(enabled, loc.cache if self._cache_enabled else None)
                        if enabled else None)
        _open_regions(1)
        return self

    def __exit__(self, *exc):
        loc = _local
        prev, prev_dtype = self._saved.pop()
        loc.depth -= 1
        if loc.depth == 0:
            loc.cache.clear()  # cached casts must not outlive the outermost region
        if prev_dtype is None:
            loc.dtypes.pop(self.device, None)
        else:
            loc.dtypes[self.device] = prev_dtype
        tls.autocast = prev
        _open_regions(-1)
        return False

    def __call__(self, func):
        """Use as a decorator: every call of ``func`` runs in such a region."""
        @functools.wraps(func)
        def decorate_autocast(*args, **kwargs):
            ctx = copy.copy(self)  # a fresh stack per call: recursion and threads are safe
            ctx._saved = []
            with ctx:
                return func(*args, **kwargs)
        return decorate_autocast

    def __repr__(self) -> str:
        return (f"autocast(device_type={self.device!r}, dtype={self.fast_dtype.name}, "
                f"enabled={self._enabled}, cache_enabled={self._cache_enabled})")


_cuda_ok = None


def _cuda_available() -> bool:
    global _cuda_ok
    if _cuda_ok is None:
        from .. import cuda
        _cuda_ok = cuda.is_available()
    return _cuda_ok


# -- casting ------------------------------------------------------------------------------
def _first_device(seq):
    for a in seq:
        if isinstance(a, Tensor):
            return a.device.type
        if isinstance(a, (list, tuple)):
            d = _first_device(a)
            if d is not None:
                return d
    return None


def _eligible(a, dev) -> bool:
    dt = a.dtype
    return dt.is_floating_point and dt is not _F64 and a.device.type == dev


def _promoted(seq, low, dev):
    for a in seq:
        if isinstance(a, Tensor):
            if _eligible(a, dev) and a.dtype is not low:
                return _F32
        elif isinstance(a, (list, tuple)) and _promoted(a, low, dev) is _F32:
            return _F32
    return low


def _cast_seq(seq, target, dev, st, lower):
    out = []
    for a in seq:
        if isinstance(a, Tensor):
            if a.dtype is not target and _eligible(a, dev):
                a = _cached_cast(a, target, st) if lower else cast(a, target)
        elif isinstance(a, (list, tuple)) and a:
            a = type(a)(_cast_seq(a, target, dev, st, lower))
        out.append(a)
    return out


def _cached_cast(a, target, st):
    """``a.to(target)``, reusing the cast of a parameter made earlier in the region."""
    cache = st.cache
    if (cache is None or a.dtype is not _F32 or not a.requires_grad or a.grad_fn is not None
            or a._base is not None or tls.tracer is not None):
        return cast(a, target)
    key = (id(a), target, tls.grad_enabled)
    hit = cache.get(key)
    if hit is not None:
        src, version, out = hit
        if (src is a and version == a._storage.version and
                (out.grad_fn is None or not out.grad_fn.freed)):
            return out
    out = cast(a, target)
    cache[key] = (a, a._storage.version, out)
    return out


def _target(policy, seq, low, dev):
    if policy is LOWER:
        return low
    if policy is PROMOTE:
        return _promoted(seq, low, dev)
    return _F32


def _hook(op, args):
    """registry.apply's hook: ``args`` with the floating operands cast per ``op``'s policy."""
    st = tls.autocast
    if st is None or op.name not in _OP_NAMES:
        return args
    dev = _first_device(args)
    low = st.dtypes.get(dev)
    if low is None:
        return args
    policy = _OP_POLICY[dev].get(op.name)
    if policy is None:
        return args
    return tuple(_cast_seq(args, _target(policy, args, low, dev), dev, st, policy is LOWER))


def _fn_policy(name, args, kwargs):
    """(policy, device type, lower dtype) for a Python-level op, or None."""
    st = tls.autocast
    if st is None:
        return None
    dev = _first_device(args)
    if dev is None and kwargs:
        dev = _first_device(kwargs.values())
    low = st.dtypes.get(dev)
    if low is None:
        return None
    policy = _FN_POLICY[dev].get(name)
    return None if policy is None else (policy, dev, low)


def autocast_args(name: str, *args):
    """``args`` cast per the autocast policy of the Python-level op ``name`` (unchanged
    outside autocast). For ops that call it inline, on the hot path, guarded by
    ``tls.autocast is not None``; the ops they are made of still see autocast, which is
    harmless for lower-precision ops whose operands are all cast."""
    found = _fn_policy(name, args, None)
    if found is None:
        return args
    policy, dev, low = found
    return tuple(_cast_seq(args, _target(policy, args, low, dev), dev, tls.autocast,
                           policy is LOWER))


def autocast_op(name: str):
    """Decorator for a Python-level op that PyTorch autocasts as a whole (``name`` is its
    PyTorch name): its arguments are cast per the policy, and the ops it is made of run
    with autocast off. The wrapper adds exactly one frame (``warnings.warn`` stacklevels
    inside the op count it)."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if tls.autocast is None:
                return fn(*args, **kwargs)
            plan = _plan(name, args, kwargs)
            if plan is None:
                return fn(*args, **kwargs)
            args, kwargs, st, keep = plan
            tls.autocast = None
            try:
                out = fn(*args, **kwargs)
            finally:
                tls.autocast = st
            return out if keep is None or not isinstance(out, Tensor) else cast(out, keep)
        return wrapper
    return deco


def _plan(name, args, kwargs):
    """(cast args, cast kwargs, state, dtype to cast the result back to or None) for a
    Python-level op in an autocast region, or None when its policy does not apply."""
    found = _fn_policy(name, args, kwargs)
    if found is None:
        return None
    policy, dev, low = found
    if policy is BANNED:
        raise AutocastError(_BANNED_MSG.format(name=f"nn.functional.{name}"))
    st = tls.autocast
    every = list(args) + list(kwargs.values())
    target = _target(policy, every, low, dev)
    lower = policy is LOWER
    keep = None
    if policy is KEEP:
        first = next((a for a in every if isinstance(a, Tensor)), None)
        if first is not None and first.dtype is not target and _eligible(first, dev):
            keep = first.dtype
    args = _cast_seq(args, target, dev, st, lower)
    if kwargs:
        kwargs = dict(zip(kwargs, _cast_seq(kwargs.values(), target, dev, st, lower)))
    return args, kwargs, st, keep


class AutocastError(FrameworkError, RuntimeError):
    """An op that is unsafe to autocast was called in an autocast region."""


# -- custom autograd Functions ------------------------------------------------------------
def custom_fwd(fwd=None, *, device_type: str, cast_inputs=None):
    """Decorator for a custom ``Function.forward``: with ``cast_inputs`` (a dtype), inside
    an autocast region its floating inputs on ``device_type`` are cast to that dtype and it
    runs with autocast off; without, it runs under the ambient autocast state. Either way
    :func:`custom_bwd` runs backward under the state forward saw."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    _check_device_type(device_type, "custom_fwd")

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        ctx = args[0]
        ctx._dtype = get_autocast_dtype(device_type)
        on = is_autocast_enabled(device_type)
        if cast_inputs is None or not on:
            ctx._fwd_used_autocast = on
            return fwd(*args, **kwargs)
        ctx._fwd_used_autocast = False
        target = dtypes.to_dtype(cast_inputs)
        st = tls.autocast
        args = [args[0]] + _cast_seq(args[1:], target, device_type, st, False)
        kwargs = dict(zip(kwargs, _cast_seq(kwargs.values(), target, device_type, st, False)))
        with autocast(device_type, enabled=False):
            return fwd(*args, **kwargs)
    return decorate_fwd


def custom_bwd(bwd=None, *, device_type: str):
    """Decorator for a custom ``Function.backward``: runs it under the autocast state its
    forward (decorated with :func:`custom_fwd`) ran in."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    _check_device_type(device_type, "custom_bwd")

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        ctx = args[0]
        with autocast(device_type, dtype=getattr(ctx, "_dtype", None),
                      enabled=getattr(ctx, "_fwd_used_autocast", False)):
            return bwd(*args, **kwargs)
    return decorate_bwd
