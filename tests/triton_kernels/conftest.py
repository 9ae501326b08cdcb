"""Run the hand-written Triton kernels under the interpreter over host (NumPy) memory."""

import os

# Must happen before triton_kernels (and its @triton.jit decorators) is imported.
os.environ["TRITON_INTERPRET"] = "1"
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")


def pytest_configure(config):
    """Register the markers used by these tests."""
    config.addinivalue_line(
        "markers", "aot: ahead-of-time compiles kernels for sm_80/sm_90 (no GPU)"
    )
