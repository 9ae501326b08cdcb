"""``torch.version``: ``__version__``, and ``cuda`` (the CUDA version of the installed
``cuda-bindings``, or None without them: scripts branch on ``torch.version.cuda``);
``hip`` is None (no ROCm backend)."""

from __future__ import annotations

__version__ = "0.1.0"
hip = None
git_version = "unknown"


def _cuda_version():
    try:
        from importlib.metadata import version
        return version("cuda-bindings").split(".post")[0]
    except Exception:  # not installed (or no metadata): no CUDA here
        return None


cuda = _cuda_version()
