"""Keep freed memory inside the process (glibc only).

A training step allocates and frees many ~1 MB arrays. glibc serves blocks that size with
``mmap`` and returns them to the kernel on free, so every step page-faults and zeroes
fresh memory; raising the mmap and trim thresholds once roughly halves a small CPU step
(see docs/benchmarks.md). Set ``FW_NO_MALLOPT=1`` to opt out.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def _tune() -> bool:
    if os.environ.get("FW_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, 256 * 2**20)
    ok &= mallopt(_M_TRIM_THRESHOLD, 1024 * 2**20)
    ok &= mallopt(_M_TOP_PAD, 64 * 2**20)
    return bool(ok)


ENABLED = _tune()
