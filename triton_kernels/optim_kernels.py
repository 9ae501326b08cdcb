# ruff: noqa: N803  (Triton convention: upper-case sizes and constexpr arguments)
"""Fused optimizer updates (Triton kernels only): Adam/AdamW, SGD, Adagrad.

One program updates ``BLOCK`` elements of one parameter: the gradient is read once, the
parameter and its state buffers are read, updated and written back in place. Math is fp32
(values are upcast right after the load, stores round to each buffer's dtype), with
IEEE-rounded ``sqrt_rn`` and divisions (``tl.sqrt`` and ``/`` may be approximate on a GPU).
Per-step scalars (step sizes, bias corrections, the new step count) come from the host as fp32
arguments, which Triton never specializes, so a kernel compiles once per dtype and flag
set. The arithmetic follows the order of the unfused update rules in ``framework/optim``
so both paths round alike. Offsets are int64 so > 2**31 elements work.
"""

import triton
import triton.language as tl


@triton.jit
def _load_f32(ptr, offs, mask):
    """``ptr[offs]`` (masked lanes 0) upcast to fp32."""
    return tl.load(ptr + offs, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _store(ptr, offs, x, mask):
    """Store fp32 ``x`` at ``ptr[offs]``, rounded to the buffer's dtype."""
    tl.store(ptr + offs, x.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _load_param_grad(param_ptr, grad_ptr, N, MAXIMIZE: tl.constexpr, BLOCK: tl.constexpr):
    """This program's block of one parameter: ``(offs, mask, p, g)``, the parameter and the
    gradient (negated for ``MAXIMIZE``) in fp32."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    p = _load_f32(param_ptr, offs, mask)
    g = _load_f32(grad_ptr, offs, mask)
    if MAXIMIZE:
        g = -g
    return offs, mask, p, g


@triton.jit
def adam_kernel(
    param_ptr, grad_ptr, exp_avg_ptr, exp_avg_sq_ptr, max_exp_avg_sq_ptr, step_ptr,
    N,
    one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay,
    bias_correction2_sqrt, neg_step_size, new_step,
    AMSGRAD: tl.constexpr, MAXIMIZE: tl.constexpr, WEIGHT_DECAY: tl.constexpr,
    DECOUPLED: tl.constexpr, BLOCK: tl.constexpr,
):
    """One Adam/AdamW step; program 0 also stores ``new_step`` into ``step_ptr``."""
    offs, mask, p, g = _load_param_grad(param_ptr, grad_ptr, N, MAXIMIZE, BLOCK)
    m = _load_f32(exp_avg_ptr, offs, mask)
    v = _load_f32(exp_avg_sq_ptr, offs, mask)
    if WEIGHT_DECAY:
        if DECOUPLED:
            p = p * decay                       # decay = 1 - lr * weight_decay
        else:
            g = g + p * weight_decay
    m = m + one_minus_beta1 * (g - m)           # lerp(m, g, 1 - beta1)
    v = v * beta2 + g * g * one_minus_beta2
    second = v
    if AMSGRAD:
        vmax = tl.maximum(_load_f32(max_exp_avg_sq_ptr, offs, mask), v)
        _store(max_exp_avg_sq_ptr, offs, vmax, mask)
        second = vmax
    denom = tl.fdiv(tl.sqrt_rn(second), bias_correction2_sqrt, ieee_rounding=True) + eps
    # neg_step_size = -lr / (1 - beta1 ** t)
    p = p + tl.fdiv(m, denom, ieee_rounding=True) * neg_step_size
    _store(param_ptr, offs, p, mask)
    _store(exp_avg_ptr, offs, m, mask)
    _store(exp_avg_sq_ptr, offs, v, mask)
    if tl.program_id(0) == 0:
        tl.store(step_ptr, new_step)  # cast to the counter's dtype on store


@triton.jit
def sgd_kernel(
    param_ptr, grad_ptr, momentum_buffer_ptr,
    N,
    neg_lr, momentum, one_minus_dampening, weight_decay,
    MOMENTUM: tl.constexpr, FIRST: tl.constexpr, NESTEROV: tl.constexpr,
    MAXIMIZE: tl.constexpr, WEIGHT_DECAY: tl.constexpr, BLOCK: tl.constexpr,
):
    """One SGD step; ``FIRST``: the momentum buffer is initialised with the gradient."""
    offs, mask, p, g = _load_param_grad(param_ptr, grad_ptr, N, MAXIMIZE, BLOCK)
    if WEIGHT_DECAY:
        g = g + p * weight_decay
    if MOMENTUM:
        if FIRST:
            buf = g
        else:
            buf = _load_f32(momentum_buffer_ptr, offs, mask)
            buf = buf * momentum + g * one_minus_dampening
        _store(momentum_buffer_ptr, offs, buf, mask)
        if NESTEROV:
            g = g + buf * momentum
        else:
            g = buf
    p = p + g * neg_lr
    _store(param_ptr, offs, p, mask)


@triton.jit
def adagrad_kernel(
    param_ptr, grad_ptr, sum_ptr, step_ptr,
    N,
    eps, weight_decay, neg_clr, new_step,
    MAXIMIZE: tl.constexpr, WEIGHT_DECAY: tl.constexpr, BLOCK: tl.constexpr,
):
    """One Adagrad step; program 0 also stores ``new_step`` into ``step_ptr``."""
    offs, mask, p, g = _load_param_grad(param_ptr, grad_ptr, N, MAXIMIZE, BLOCK)
    s = _load_f32(sum_ptr, offs, mask)
    if WEIGHT_DECAY:
        g = g + p * weight_decay
    s = s + g * g
    std = tl.sqrt_rn(s) + eps
    # neg_clr = -lr / (1 + (t - 1) * lr_decay)
    p = p + tl.fdiv(g, std, ieee_rounding=True) * neg_clr
    _store(param_ptr, offs, p, mask)
    _store(sum_ptr, offs, s, mask)
    if tl.program_id(0) == 0:
        tl.store(step_ptr, new_step)  # cast to the counter's dtype on store
