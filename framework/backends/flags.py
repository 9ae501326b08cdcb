"""PyTorch's ``torch.backends`` switches, as training scripts set them:

- ``fw.backends.cuda.matmul.allow_tf32`` is ``fw.set_float32_matmul_precision`` seen as a
  bool (True = "high": fp32 matmuls on "cuda" may use TF32 tensor cores), exactly as in
  PyTorch. ``allow_fp16_reduced_precision_reduction`` / ``allow_bf16_...`` permit what the
  Triton kernels never do (they always reduce in fp32), so they are kept and have no effect.
- ``fw.backends.cudnn``: there is no cuDNN here (``is_available()`` is False):
  convolutions on "cuda" are generated Triton kernels. ``benchmark``, ``deterministic``,
  ``allow_tf32`` and ``enabled`` are accepted so scripts that set them run; they change
  nothing (``fw.use_deterministic_algorithms`` is the switch that exists).
- ``fw.backends.mps``: no Apple GPU backend (``is_available()`` and ``is_built()`` False).
"""

from __future__ import annotations

import contextlib
import types

from .. import _state


class _MatmulFlags:
    """``fw.backends.cuda.matmul``."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self) -> bool:
        """True when fp32 matmuls may use TF32 (float32 matmul precision not "highest")."""
        return _state.float32_matmul_precision != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        _state.float32_matmul_precision = "high" if value else "highest"


matmul = _MatmulFlags()


def _cudnn_flags(enabled=False, benchmark=False, benchmark_limit=10, deterministic=False,
                 allow_tf32=True):
    """``torch.backends.cudnn.flags(...)``: set the cuDNN switches inside a ``with`` block
    (they have no effect here: there is no cuDNN)."""
    saved = {k: getattr(cudnn, k) for k in _CUDNN_DEFAULTS}
    new = dict(enabled=enabled, benchmark=benchmark, benchmark_limit=benchmark_limit,
               deterministic=deterministic, allow_tf32=allow_tf32)

    @contextlib.contextmanager
    def scope():
        for k, v in new.items():
            setattr(cudnn, k, v)
        try:
            yield
        finally:
            for k, v in saved.items():
                setattr(cudnn, k, v)
    return scope()


_CUDNN_DEFAULTS = dict(enabled=True, benchmark=False, benchmark_limit=10, deterministic=False,
                       allow_tf32=True)
cudnn = types.SimpleNamespace(
    **_CUDNN_DEFAULTS,
    is_available=lambda: False,
    version=lambda: None,
    is_acceptable=lambda tensor: False,
    flags=_cudnn_flags,
)
mps = types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
