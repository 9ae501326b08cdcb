"""GPU-backend tests: device "cuda" is the simulated device (Triton's interpreter over
host memory) unless a real GPU is present and FW_TRITON_INTERPRET=0 is set explicitly."""

import os

# Must happen before anything imports triton_kernels or defines a @triton.jit kernel.
if os.environ.get("FW_TRITON_INTERPRET", "1") != "0":
    os.environ["FW_TRITON_INTERPRET"] = "1"
    os.environ["TRITON_INTERPRET"] = "1"
