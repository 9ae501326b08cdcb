"""GPU-backend tests. Without a real GPU, device "cuda" is the simulated device (Triton's
interpreter over host memory); with one, the same tests run on it (set
FW_TRITON_INTERPRET=1 to force the simulator anyway)."""

import os

from tests.conftest import HAS_GPU

# Must happen before anything imports triton_kernels or defines a @triton.jit kernel.
if os.environ.get("FW_TRITON_INTERPRET") is None and not HAS_GPU:
    os.environ["FW_TRITON_INTERPRET"] = "1"
if os.environ.get("FW_TRITON_INTERPRET") == "1":
    os.environ["TRITON_INTERPRET"] = "1"
    os.environ.setdefault("FW_CUDA_DEBUG_BOUNDS", "1")  # out-of-bounds stores fail loudly
