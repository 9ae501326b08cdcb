"""CUDA implementations of ``flash_attention`` / ``flash_attention_backward``: the fused
kernels of ``triton_kernels.attention`` (fp16/bf16/fp32, head dims up to 128); other cases
run the ops' decompositions on the device."""

from __future__ import annotations

from .. import _state
from .cuda import CudaBuffer, contiguous
from .cuda_ops import _alloc_like, _decomp, impl


def _fused(q, v) -> bool:
    from triton_kernels import attention as tk
    return tk.supports(q.dtype, q.shape[-1], v.shape[-1])


def _tf32() -> bool:
    return _state.float32_matmul_precision != "highest"


@impl("flash_attention")
def _flash_attention(q: CudaBuffer, k: CudaBuffer, v: CudaBuffer, is_causal, scale):
    """(out, lse) from the fused forward kernel (one launch)."""
    if not _fused(q, v):
        return _decomp("flash_attention", q, k, v, is_causal=is_causal, scale=scale)
    from triton_kernels import attention as tk
    return tk.attention_forward(q, k, v, is_causal=is_causal, scale=scale,
                                empty=_alloc_like(q), allow_tf32=_tf32())


@impl("flash_attention_backward")
def _flash_attention_backward(q, k, v, out, lse, dout, dlse, is_causal, scale):
    """(dq, dk, dv) from the fused backward kernels (delta, dK/dV, dQ: three launches)."""
    if not _fused(q, v):
        return _decomp("flash_attention_backward", q, k, v, out, lse, dout, dlse,
                       is_causal=is_causal, scale=scale)
    from triton_kernels import attention as tk
    return tk.attention_backward(q, k, v, out, contiguous(lse), dout, dlse=dlse,
                                 is_causal=is_causal, scale=scale, empty=_alloc_like(q),
                                 allow_tf32=_tf32())
