"""The ``fused=True`` update paths of Adam/AdamW, SGD and Adagrad.

A fused step updates each parameter and its state in one pass over raw buffers, reading
the gradient once and building no autograd graph:

* "cpu": NumPy in-place ufuncs (``out=``) on the tensors' arrays, with one scratch array
  per parameter. float32/float64 compute in their own precision in the same order as the
  unfused rules (so results agree to the last bit); float16/bfloat16 compute in float32
  and round once on store.
* "cuda": one Triton kernel launch per parameter (``triton_kernels.optim``), math in fp32,
  stores rounded to each buffer's dtype; the step counter is written by the same launch.

Per-step scalars (bias corrections, step sizes) are computed on the host in the precision
the unfused rule uses (float64 for float64 parameters, float32 otherwise) and passed to
the kernels as arguments, so nothing recompiles per step. The host keeps the last step
count it wrote for each device counter, so a CUDA step does not read the counter back
(it is re-read when anything else wrote it, e.g. a compiled step or ``load_state_dict``).

Each entry point returns the parameters it did not update; the optimizer runs its
unfused rule on those (same results): all of them while ``fw.compile`` captures a step
(tensors have no data then, and the compiled graph fuses the update anyway), and on
"cuda" float64 parameters (kernel scalars are fp32) and non-contiguous buffers.
"""

from __future__ import annotations

import weakref

import numpy as np

from .. import dtypes
from .._state import tls
from ..errors import ArgumentError, DeviceError, DTypeError
from .optimizer import _hypers

_KERNEL_DTYPES = (dtypes.float16, dtypes.bfloat16, dtypes.float32)


# -- constructor checks ----------------------------------------------------------------------
def check_options(name: str, fused, foreach, differentiable) -> None:
    """PyTorch's constructor checks of ``fused=True`` against the other options."""
    if not fused:
        return
    if differentiable:
        raise ArgumentError(f"{name}: `fused` does not support `differentiable`")
    if foreach:
        raise ArgumentError(f"{name}: `fused` and `foreach` cannot be `True` together.")


def check_params(opt) -> None:
    """``fused=True`` needs floating point parameters on "cpu" or "cuda"."""
    name = type(opt).__name__
    for j, group in enumerate(opt.param_groups):
        for i, p in enumerate(group["params"]):
            where = f"parameter {i} of group {j}, shape {list(p.shape)}"
            if not p.dtype.is_floating_point:
                raise DTypeError(f"{name}(fused=True) requires floating point parameters, got "
                                 f"{p.dtype.name} ({where})")
            if p.device.type not in ("cpu", "cuda"):
                raise DeviceError(f"{name}(fused=True) supports parameters on 'cpu' and 'cuda', "
                                  f"got {p.device.type!r} ({where})")


# -- routing and bookkeeping -----------------------------------------------------------------
def _route(p, buffers=()) -> str | None:
    """Where ``p`` is updated fused ("cpu" / "cuda"), or None for the unfused rule."""
    g = p.grad
    if p._data is None or g._data is None:
        return None
    kind = p.device.type
    if kind == "cpu":
        return "cpu" if p._data.flags.writeable else None
    if kind == "cuda" and p.dtype in _KERNEL_DTYPES and \
            all(t.device.type == kind and t.is_contiguous() for t in (p, g, *buffers)):
        return "cuda"
    return None


def _scalar_type(p):
    """NumPy scalar type of the bias corrections (the unfused rules' ``_step_scalar``)."""
    return np.float64 if p.dtype is dtypes.float64 else np.float32


# id(step tensor) -> (weakref, buffer, version, value) of the last count written on a device
_HOST_STEPS: dict = {}


def _read_step(step) -> float:
    """The current value of a step counter (without a device read when we wrote it last)."""
    if step.device.type == "cpu":
        return float(step._data)
    hit = _HOST_STEPS.get(id(step))
    if hit is not None and hit[0]() is step and hit[1] is step._data and \
            hit[2] == step._storage.version:
        return hit[3]
    return float(step._data.to_numpy())


def _wrote_step(step, value: float) -> None:
    """Record that ``step`` now holds ``value`` (CPU: write it) and bump its version."""
    if step.device.type == "cpu":
        step._data[...] = value
    step._storage.version += 1
    if step.device.type != "cpu":
        key = id(step)
        hit = _HOST_STEPS.get(key)
        ref = hit[0] if hit is not None and hit[0]() is step else \
            weakref.ref(step, lambda _, k=key: _HOST_STEPS.pop(k, None))
        _HOST_STEPS[key] = (ref, step._data, step._storage.version, value)


def _bump(*tensors) -> None:
    """In-place writes through raw buffers count as modifications (autograd versions)."""
    for t in tensors:
        if t is not None:
            t._storage.version += 1


def _kernels():
    from triton_kernels import optim as tk
    return tk


# -- CPU helpers -----------------------------------------------------------------------------
def _working(p, arrays):
    """Arrays in the working precision: themselves for float32/64 parameters, float32 copies
    for float16/bfloat16 ones (:func:`_store` rounds them back)."""
    if p.dtype in (dtypes.float32, dtypes.float64):
        return list(arrays)
    return [None if a is None else a.astype(np.float32) for a in arrays]


def _store(targets, works) -> None:
    for t, w in zip(targets, works):
        if t is not None and w is not t:
            np.copyto(t, w, casting="unsafe")


def _grad_work(g, maximize, l2, work_dtype):
    """The gradient as the update reads it: the grad array itself when it is only read,
    else a copy in the working dtype (negated under ``maximize``)."""
    if maximize:
        return np.negative(g, dtype=work_dtype)
    if l2 or g.dtype != work_dtype:
        return g.astype(work_dtype)
    return g


# -- Adam / AdamW ----------------------------------------------------------------------------
def adam(opt, group: dict, params: list) -> list:
    """Fused Adam/AdamW step of ``params`` (which have gradients); returns the rest."""
    if tls.tracer is not None:
        return params
    lr, (beta1, beta2), eps, weight_decay = _hypers(group, "lr", "betas", "eps",
                                                    "weight_decay")
    amsgrad, maximize = group["amsgrad"], group["maximize"]
    decoupled = group["decoupled_weight_decay"]
    names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
    rest = []
    for p in params:
        if _route(p) is None:
            rest.append(p)
            continue
        state = opt._lazy_state(p, *names)
        bufs = [state[n] for n in names]
        where = _route(p, (*bufs, state["step"]))
        if where is None:
            rest.append(p)
            continue
        step = state["step"]
        t = _read_step(step) + 1
        ty = _scalar_type(p)
        bc1 = ty(1) - np.power(ty(beta1), ty(t))
        bc2_sqrt = np.sqrt(ty(1) - np.power(ty(beta2), ty(t)))
        neg_step_size = np.true_divide(ty(-lr), bc1)
        vmax = bufs[2] if amsgrad else None
        if where == "cpu":
            _adam_cpu(p, *bufs[:2], vmax, lr, beta1, beta2, eps, weight_decay, decoupled,
                      maximize, bc2_sqrt, neg_step_size)
        else:
            _kernels().adam_step(
                p._data, p.grad._data, bufs[0]._data, bufs[1]._data,
                None if vmax is None else vmax._data, step._data,
                beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                decay=1 - lr * weight_decay, bias_correction2_sqrt=float(bc2_sqrt),
                neg_step_size=float(neg_step_size), new_step=t, amsgrad=amsgrad,
                maximize=maximize, decoupled=decoupled)
        _wrote_step(step, t)
        _bump(p, *bufs)
    return rest


def _adam_cpu(p, exp_avg, exp_avg_sq, vmax, lr, beta1, beta2, eps, weight_decay, decoupled,
              maximize, bc2_sqrt, neg_step_size) -> None:
    targets = [p._data, exp_avg._data, exp_avg_sq._data, None if vmax is None else vmax._data]
    P, M, V, VMAX = works = _working(p, targets)
    l2 = weight_decay != 0 and not decoupled
    G = _grad_work(p.grad._data, maximize, l2, P.dtype)
    tmp = np.empty(P.shape, P.dtype)
    if weight_decay != 0:
        if decoupled:
            P *= 1 - lr * weight_decay
        else:
            G += np.multiply(P, weight_decay, out=tmp)
    M += np.multiply(np.subtract(G, M, out=tmp), 1 - beta1, out=tmp)   # lerp(M, G, 1 - beta1)
    V *= beta2
    V += np.multiply(np.multiply(G, G, out=tmp), 1 - beta2, out=tmp)
    second = V
    if VMAX is not None:
        second = np.maximum(VMAX, V, out=VMAX)
    denom = np.sqrt(second, out=tmp)
    denom /= bc2_sqrt
    denom += eps
    P += np.multiply(np.divide(M, denom, out=tmp), neg_step_size, out=tmp)
    _store(targets, works)


# -- SGD -------------------------------------------------------------------------------------
def sgd(opt, group: dict, params: list) -> list:
    """Fused SGD step of ``params`` (which have gradients); returns the rest."""
    if tls.tracer is not None:
        return params
    lr, momentum, dampening, weight_decay = _hypers(group, "lr", "momentum", "dampening",
                                                    "weight_decay")
    nesterov, maximize = group["nesterov"], group["maximize"]
    rest = []
    for p in params:
        buf = opt.state[p].get("momentum_buffer") if momentum != 0 else None
        where = _route(p, () if buf is None else (buf,))
        if where is None:
            rest.append(p)
            continue
        first = momentum != 0 and buf is None
        if first:
            from ..creation import empty_like
            buf = opt.state[p]["momentum_buffer"] = empty_like(p)
        if where == "cpu":
            _sgd_cpu(p, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first)
        else:
            _kernels().sgd_step(
                p._data, p.grad._data, None if buf is None else buf._data, lr=lr,
                momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                nesterov=nesterov, maximize=maximize, first=first)
        _bump(p, buf)
    return rest


def _sgd_cpu(p, buf, lr, momentum, dampening, weight_decay, nesterov, maximize,
             first) -> None:
    targets = [p._data, None if buf is None else buf._data]
    P, B = works = _working(p, targets)
    G = _grad_work(p.grad._data, maximize, weight_decay != 0 or nesterov, P.dtype)
    tmp = None
    if weight_decay != 0:
        tmp = np.empty(P.shape, P.dtype)
        G += np.multiply(P, weight_decay, out=tmp)
    if B is not None:
        if first:
            np.copyto(B, G)
        else:
            B *= momentum
            B += G if dampening == 0 else np.multiply(G, 1 - dampening, out=tmp)
        if nesterov:
            G += np.multiply(B, momentum, out=tmp)
        else:
            G = B
    tmp = np.multiply(G, -lr, out=tmp)
    P += tmp
    _store(targets, works)


# -- Adagrad ---------------------------------------------------------------------------------
def adagrad(opt, group: dict, params: list) -> list:
    """Fused Adagrad step of ``params`` (which have gradients); returns the rest."""
    if tls.tracer is not None:
        return params
    lr, lr_decay, eps, weight_decay = _hypers(group, "lr", "lr_decay", "eps", "weight_decay")
    maximize = group["maximize"]
    rest = []
    for p in params:
        if _route(p) is None:
            rest.append(p)
            continue
        state = opt._init_state(p, group)
        where = _route(p, (state["sum"], state["step"]))
        if where is None:
            rest.append(p)
            continue
        step, state_sum = state["step"], state["sum"]
        t = _read_step(step) + 1
        ty = _scalar_type(p)
        clr = np.true_divide(ty(lr), ty(1) + (ty(t) - ty(1)) * ty(lr_decay))
        if where == "cpu":
            _adagrad_cpu(p, state_sum, eps, weight_decay, maximize, -clr)
        else:
            _kernels().adagrad_step(
                p._data, p.grad._data, state_sum._data, step._data, eps=eps,
                weight_decay=weight_decay, neg_clr=float(-clr), new_step=t, maximize=maximize)
        _wrote_step(step, t)
        _bump(p, state_sum)
    return rest


def _adagrad_cpu(p, state_sum, eps, weight_decay, maximize, neg_clr) -> None:
    targets = [p._data, state_sum._data]
    P, S = works = _working(p, targets)
    G = _grad_work(p.grad._data, maximize, weight_decay != 0, P.dtype)
    tmp = np.empty(P.shape, P.dtype)
    if weight_decay != 0:
        G += np.multiply(P, weight_decay, out=tmp)
    S += np.multiply(G, G, out=tmp)
    std = np.sqrt(S, out=tmp)
    std += eps
    P += np.multiply(np.divide(G, std, out=tmp), neg_clr, out=tmp)
    _store(targets, works)
