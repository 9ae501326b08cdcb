"""``fw.utils._triton.has_triton`` (``torch.utils._triton.has_triton``), which recipes with
user-defined Triton kernels check first."""

from __future__ import annotations


def has_triton() -> bool:
    """True when Triton is importable and a "cuda" device (a GPU, or the simulated device
    with ``FW_TRITON_INTERPRET=1``) can run its kernels."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    from .. import cuda
    return cuda.is_available()
