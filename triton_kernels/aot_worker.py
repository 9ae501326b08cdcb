"""``python -m triton_kernels.aot_worker JOBS REPORTS``: compile kernels without the interpreter (see aot.py)."""

import sys

from triton_kernels.aot import serve

if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
