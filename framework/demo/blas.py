"""Limit the threads of the BLAS library NumPy uses (OpenBLAS), for the demo's timings.

The demo's matrices are small (a few hundred rows), so extra BLAS threads gain little, and
on a busy machine OpenBLAS worker threads spin on cores other processes need, which can
make a step many times slower. ``OPENBLAS_NUM_THREADS`` only works when set before NumPy
loads, so the limit is set through OpenBLAS's own ``*_set_num_threads`` entry point.
"""

from __future__ import annotations

import ctypes

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")


def _loaded_openblas() -> list[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:  # not Linux
        return []
    return sorted(p for p in paths if p.startswith("/"))


def set_blas_threads(n: int) -> str | None:
    """Set OpenBLAS to ``n`` threads; returns the library's name, or None when no loaded
    OpenBLAS could be found (another BLAS, or not Linux)."""
    import numpy  # noqa: F401  (loads the BLAS library)
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn.restype = None
                fn(int(n))
                return path.rsplit("/", 1)[-1]
    return None
