"""``fw.nn.attention``: which implementation ``scaled_dot_product_attention`` may use, as
``torch.nn.attention``.

Two backends exist here: ``SDPBackend.MATH`` (the composite of matmul, softmax and matmul,
on any device) and ``SDPBackend.FLASH_ATTENTION`` (the fused Triton kernel of
``triton_kernels.attention``, "cuda" only). ``EFFICIENT_ATTENTION``, ``CUDNN_ATTENTION``
and ``OVERRIDEABLE`` are accepted names with no implementation behind them. By default
every backend is enabled and flash attention is tried first; ``sdpa_kernel`` restricts
(and with ``set_priority=True`` orders) them inside a ``with`` block. The switches are
process-wide, as PyTorch's; ``fw.backends.cuda.enable_flash_sdp`` and friends set them too.

    with sdpa_kernel(SDPBackend.MATH):
        y = F.scaled_dot_product_attention(q, k, v)      # never the fused kernel
"""

from __future__ import annotations

import contextlib
import enum

from ...errors import FwTypeError, NoKernelError

__all__ = ["SDPBackend", "sdpa_kernel", "sdp_kernel", "select_backend", "flash_unsupported_reason",
           "flash_sdp_enabled", "enable_flash_sdp", "math_sdp_enabled", "enable_math_sdp",
           "mem_efficient_sdp_enabled", "enable_mem_efficient_sdp", "cudnn_sdp_enabled",
           "enable_cudnn_sdp"]


class SDPBackend(enum.IntEnum):
    """Backends of ``scaled_dot_product_attention`` (PyTorch's names and values)."""

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


_ALL = (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
        SDPBackend.CUDNN_ATTENTION, SDPBackend.OVERRIDEABLE)
_enabled = dict.fromkeys(_ALL, True)
_priority = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH,
             SDPBackend.CUDNN_ATTENTION, SDPBackend.OVERRIDEABLE]
# triton_kernels.attention's limits (not imported here: the CPU never needs Triton)
MAX_HEAD_DIM = 128
MAX_BATCH_HEADS = 65535


def _setter(backend):
    def enable(enabled: bool) -> None:
        _enabled[backend] = bool(enabled)
    enable.__name__ = f"enable_{backend.name.lower()}"
    enable.__doc__ = f"Allow (or forbid) the {backend.name} backend of sdpa."
    return enable


def _getter(backend):
    def enabled() -> bool:
        return _enabled[backend]
    enabled.__doc__ = f"True when the {backend.name} backend of sdpa is allowed."
    return enabled


flash_sdp_enabled = _getter(SDPBackend.FLASH_ATTENTION)
enable_flash_sdp = _setter(SDPBackend.FLASH_ATTENTION)
math_sdp_enabled = _getter(SDPBackend.MATH)
enable_math_sdp = _setter(SDPBackend.MATH)
mem_efficient_sdp_enabled = _getter(SDPBackend.EFFICIENT_ATTENTION)
enable_mem_efficient_sdp = _setter(SDPBackend.EFFICIENT_ATTENTION)
cudnn_sdp_enabled = _getter(SDPBackend.CUDNN_ATTENTION)
enable_cudnn_sdp = _setter(SDPBackend.CUDNN_ATTENTION)


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """Within the block, ``scaled_dot_product_attention`` may only use ``backends`` (one
    :class:`SDPBackend` or a list); with ``set_priority`` their order is also the order in
    which they are tried. The previous switches are restored on exit."""
    if isinstance(backends, SDPBackend):
        backends = [backends]
    if not isinstance(backends, (list, tuple)) or \
            not all(isinstance(b, SDPBackend) for b in backends):
        raise FwTypeError("sdpa_kernel: backends must be an SDPBackend or a list of "
                          f"SDPBackend members, got {backends!r}")
    saved_enabled, saved_priority = dict(_enabled), list(_priority)
    try:
        for b in _ALL:
            _enabled[b] = b in backends
        if set_priority:
            first = list(dict.fromkeys(b for b in backends if b in _ALL))
            _priority[:] = first + [b for b in saved_priority if b not in first]
        yield {}
    finally:
        _enabled.update(saved_enabled)
        _priority[:] = saved_priority


def sdp_kernel(enable_flash: bool = True, enable_math: bool = True,
               enable_mem_efficient: bool = True, enable_cudnn: bool = True):
    """``torch.backends.cuda.sdp_kernel``, the older spelling of :func:`sdpa_kernel`: within
    the block only the backends whose flag is True may run (the others are switched off)."""
    flags = {SDPBackend.FLASH_ATTENTION: enable_flash, SDPBackend.MATH: enable_math,
             SDPBackend.EFFICIENT_ATTENTION: enable_mem_efficient,
             SDPBackend.CUDNN_ATTENTION: enable_cudnn}
    return sdpa_kernel([b for b, on in flags.items() if on])


def flash_unsupported_reason(query, key, value, attn_mask, dropout_p, enable_gqa):
    """Why the fused kernel cannot run this call (None when it can)."""
    if not all(t.device.type == "cuda" for t in (query, key, value)):
        return f"needs tensors on cuda (got {query.device.type})"
    if query.dtype.name not in ("float16", "bfloat16", "float32"):
        return f"needs float16, bfloat16 or float32 (got {query.dtype.name})"
    if attn_mask is not None:
        return "does not take an attn_mask (is_causal is supported)"
    if dropout_p != 0.0:
        return f"has no dropout (dropout_p={dropout_p})"
    if query.ndim not in (3, 4) or key.ndim != query.ndim or value.ndim != query.ndim:
        return f"needs 3-D or 4-D query/key/value (got {query.ndim}-D)"
    d, dv = query.shape[-1], value.shape[-1]
    if not (isinstance(d, int) and isinstance(dv, int)) or max(d, dv) > MAX_HEAD_DIM:
        return f"handles head dims up to {MAX_HEAD_DIM} (got {d}, {dv})"
    lead_q, lead_k = tuple(query.shape[:-3]), tuple(key.shape[:-3])
    if lead_q != lead_k or tuple(value.shape[:-3]) != lead_k or \
            value.shape[-3] != key.shape[-3]:
        return "needs query, key and value of one batch size (no broadcasting)"
    hq, hk = query.shape[-3], key.shape[-3]
    if hq != hk and not (enable_gqa and isinstance(hq, int) and isinstance(hk, int)):
        return f"needs as many query as key/value heads ({hq} vs {hk}) unless enable_gqa"
    rows = query.shape[0] * hq if query.ndim == 4 else hq
    if isinstance(rows, int) and rows > MAX_BATCH_HEADS:
        return f"handles batch x heads up to {MAX_BATCH_HEADS} (got {rows})"
    return None


def select_backend(query, key, value, attn_mask=None, dropout_p=0.0, enable_gqa=False):
    """The backend ``scaled_dot_product_attention`` uses: the first enabled one in priority
    order that can run the call. Raises :class:`~framework.errors.NoKernelError` naming
    why each enabled backend was refused when none can."""
    reasons = []
    for b in _priority:
        if not _enabled[b]:
            continue
        if b is SDPBackend.MATH:
            return b
        if b is SDPBackend.FLASH_ATTENTION:
            why = flash_unsupported_reason(query, key, value, attn_mask, dropout_p,
                                           enable_gqa)
            if why is None:
                return b
            reasons.append(f"FLASH_ATTENTION {why}")
        else:
            reasons.append(f"{b.name} is not implemented in this framework")
    if not reasons:
        reasons.append("every backend is disabled")
    raise NoKernelError("scaled_dot_product_attention: No available kernel. Aborting "
                        "execution. " + "; ".join(reasons))


def __getattr__(name):
    # ``fw.nn.attention.flex_attention`` (the submodule) is loaded on first use: importing it
    # here would run while ``framework.nn`` is still being imported
    if name == "flex_attention":
        import importlib
        return importlib.import_module(f"{__name__}.flex_attention")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
