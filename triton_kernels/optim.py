"""Launchers for the fused optimizer updates: one kernel launch per parameter tensor.

Every buffer (parameter, gradient, state) must be contiguous and of the parameter's shape;
parameter, gradient and state are fp32/fp16/bf16 (math in fp32), the step counter a 0-d
float buffer. Updates happen in place; the per-step scalars are Python floats computed by
the caller (see ``framework/optim/_fused.py``).
"""

from __future__ import annotations

import numpy as np

from ._common import FLOAT_DTYPES, cdiv, check_buffer, check_shape, flat_view, next_pow2
from .aot import KernelSpec, pointer_type
from .buffers import interpreter_enabled, strides_of
from .optim_kernels import adagrad_kernel, adam_kernel, sgd_kernel

__all__ = ["adam_step", "sgd_step", "adagrad_step", "aot_specs"]

# 8 fp32 values per thread and stream (param, grad and up to three state buffers)
BLOCK_GPU, WARPS_GPU = 1024, 4
STEP_DTYPES = FLOAT_DTYPES + (np.dtype(np.float64),)  # a loaded state_dict may hold f64 steps


def _launch_size(param, others, block) -> tuple[int, int, int]:
    """Check the buffers; return ``(numel, BLOCK, num_warps)``."""
    check_buffer("param", param, dtypes=FLOAT_DTYPES)
    n = _dense("param", param)
    for name, buf in others.items():
        check_buffer(name, buf, dtypes=FLOAT_DTYPES)
        check_shape(name, buf, param.shape)
        _dense(name, buf)
    if block is not None:
        return n, int(block), WARPS_GPU
    if interpreter_enabled():
        return n, min(max(next_pow2(n), 16), 1 << 16), 4
    return n, BLOCK_GPU, WARPS_GPU


def _dense(name: str, buf) -> int:
    """Number of elements of a contiguous buffer (ValueError for any other layout)."""
    try:
        n, stride = flat_view(name, buf)
    except ValueError:
        n, stride = 2, None
    if n > 1 and stride != 1:
        raise ValueError(f"{name}: fused optimizer kernels need contiguous buffers, got shape "
                         f"{tuple(buf.shape)} strides {strides_of(buf)}")
    return n


def _check_step(step) -> None:
    check_buffer("step", step, dtypes=STEP_DTYPES)
    if tuple(step.shape) not in ((), (1,)):
        raise ValueError(f"step: expected a 0-d buffer, got shape {tuple(step.shape)}")


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, beta1, beta2, eps,
              weight_decay, decay, bias_correction2_sqrt, neg_step_size, new_step,
              amsgrad=False, maximize=False, decoupled=False, block=None):
    """One Adam/AdamW update of ``param`` and its state, in place; writes ``new_step``.

    ``decay = 1 - lr * weight_decay`` (decoupled), ``neg_step_size = -lr / (1 - beta1**t)``,
    ``bias_correction2_sqrt = sqrt(1 - beta2**t)``; ``max_exp_avg_sq`` is read only with
    ``amsgrad`` (pass None otherwise).
    """
    others = dict(grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    if amsgrad:
        others["max_exp_avg_sq"] = max_exp_avg_sq
    n, blk, warps = _launch_size(param, others, block)
    _check_step(step)
    # read 4N (5N amsgrad), write 3N (4N); grid >= 1 so program 0 always stores the step
    adam_kernel[(max(1, cdiv(n, blk)),)](
        param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else exp_avg_sq, step,
        n,
        float(1.0 - beta1), float(beta2), float(1.0 - beta2), float(eps),
        float(weight_decay), float(decay), float(bias_correction2_sqrt),
        float(neg_step_size), float(new_step),
        AMSGRAD=bool(amsgrad), MAXIMIZE=bool(maximize), WEIGHT_DECAY=weight_decay != 0,
        DECOUPLED=bool(decoupled), BLOCK=blk, num_warps=warps,
    )
    return param


def sgd_step(param, grad, momentum_buffer, *, lr, momentum=0.0, dampening=0.0,
             weight_decay=0.0, nesterov=False, maximize=False, first=False, block=None):
    """One SGD update of ``param`` in place; ``momentum_buffer`` (None without momentum) is
    updated in place, or initialised from the gradient when ``first``."""
    others = dict(grad=grad)
    if momentum != 0:
        others["momentum_buffer"] = momentum_buffer
    n, blk, warps = _launch_size(param, others, block)
    if n == 0:
        return param
    # read 2N (3N with momentum after the first step), write N (2N with momentum)
    sgd_kernel[(cdiv(n, blk),)](
        param, grad, momentum_buffer if momentum != 0 else grad,
        n,
        float(-lr), float(momentum), float(1.0 - dampening), float(weight_decay),
        MOMENTUM=momentum != 0, FIRST=bool(first), NESTEROV=bool(nesterov),
        MAXIMIZE=bool(maximize), WEIGHT_DECAY=weight_decay != 0, BLOCK=blk, num_warps=warps,
    )
    return param


def adagrad_step(param, grad, state_sum, step, *, eps, weight_decay, neg_clr, new_step,
                 maximize=False, block=None):
    """One Adagrad update of ``param`` and ``state_sum`` in place; writes ``new_step``.
    ``neg_clr = -lr / (1 + (t - 1) * lr_decay)``."""
    n, blk, warps = _launch_size(param, dict(grad=grad, sum=state_sum), block)
    _check_step(step)
    # read 3N, write 2N
    adagrad_kernel[(max(1, cdiv(n, blk)),)](
        param, grad, state_sum, step,
        n,
        float(eps), float(weight_decay), float(neg_clr), float(new_step),
        MAXIMIZE=bool(maximize), WEIGHT_DECAY=weight_decay != 0, BLOCK=blk, num_warps=warps,
    )
    return param


def aot_specs(dtype) -> list[KernelSpec]:
    """Kernel specs the launchers use on a GPU for ``dtype`` parameters (fp32 step counter)."""
    p, f = pointer_type(dtype), pointer_type("float32")
    scalars = dict.fromkeys(("one_minus_beta1", "beta2", "one_minus_beta2", "eps",
                             "weight_decay", "decay", "bias_correction2_sqrt",
                             "neg_step_size", "new_step"), "fp32")
    adam_ptrs = dict(param_ptr=p, grad_ptr=p, exp_avg_ptr=p, exp_avg_sq_ptr=p,
                     max_exp_avg_sq_ptr=p, step_ptr=f)
    specs = []
    for amsgrad, decoupled in ((False, True), (True, False)):
        specs.append(KernelSpec(
            adam_kernel, {**adam_ptrs, **scalars},
            dict(AMSGRAD=amsgrad, MAXIMIZE=False, WEIGHT_DECAY=True, DECOUPLED=decoupled,
                 BLOCK=BLOCK_GPU), WARPS_GPU,
            label=f"adam[{'amsgrad' if amsgrad else 'adamw'}]"))
    sgd_types = dict(param_ptr=p, grad_ptr=p, momentum_buffer_ptr=p,
                     **dict.fromkeys(("neg_lr", "momentum", "one_minus_dampening",
                                      "weight_decay"), "fp32"))
    for first, nesterov in ((True, False), (False, True)):
        specs.append(KernelSpec(
            sgd_kernel, sgd_types,
            dict(MOMENTUM=True, FIRST=first, NESTEROV=nesterov, MAXIMIZE=False,
                 WEIGHT_DECAY=True, BLOCK=BLOCK_GPU), WARPS_GPU,
            label=f"sgd[{'first' if first else 'nesterov'}]"))
    specs.append(KernelSpec(
        adagrad_kernel,
        dict(param_ptr=p, grad_ptr=p, sum_ptr=p, step_ptr=f,
             **dict.fromkeys(("eps", "weight_decay", "neg_clr", "new_step"), "fp32")),
        dict(MAXIMIZE=True, WEIGHT_DECAY=True, BLOCK=BLOCK_GPU), WARPS_GPU, label="adagrad"))
    return specs
