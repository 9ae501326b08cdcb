"""Process-wide settings with ``torch``'s names: BLAS threads and the deterministic flag.

``set_num_threads`` limits the threads of the BLAS library NumPy uses (OpenBLAS, through its
own ``*_set_num_threads`` entry point, so it works after NumPy has loaded); the CPU
backend's other kernels are single-threaded NumPy. ``use_deterministic_algorithms`` only
records the flag: the CPU backend is deterministic already (NumPy and LAPACK give the
same bits for the same inputs and thread count), and nothing consults the flag yet on
"cuda", where kernels that accumulate with atomic adds (``scatter_add``, ``index_add``,
embedding backward) may sum in a different order from run to run.
"""

from __future__ import annotations

import ctypes
import os

from .errors import ArgumentError, FwTypeError

_threads = None  # the last value given to set_num_threads
_deterministic = False
_deterministic_warn_only = False
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for BLAS work (matmul, linalg) on the CPU."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise FwTypeError(f"set_num_threads(): expected an int, got {type(n).__name__}")
    if n <= 0:
        raise ArgumentError(f"set_num_threads(): number of threads must be positive, got {n}")
    from .demo.blas import set_blas_threads
    set_blas_threads(n)
    _threads = n


def _openblas_threads():
    from .demo.blas import _loaded_openblas
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _GETTERS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes, fn.restype = [], ctypes.c_int
                return int(fn())
    return None


def get_num_threads() -> int:
    """The number of BLAS threads: the value set last, else what OpenBLAS reports (or the
    CPU count when no OpenBLAS is loaded)."""
    if _threads is not None:
        return _threads
    return _openblas_threads() or os.cpu_count() or 1


_interop_threads = None


def set_num_interop_threads(n: int) -> None:
    """Record the inter-op thread count (PyTorch's pool for running independent ops at
    once). Ops here run one after another on the calling thread, so the value changes
    nothing; as in PyTorch it must be a positive int."""
    global _interop_threads
    if not isinstance(n, int) or isinstance(n, bool):
        raise FwTypeError(f"set_num_interop_threads(): expected an int, got {type(n).__name__}")
    if n <= 0:
        raise ArgumentError(f"set_num_interop_threads(): number of threads must be positive, "
                            f"got {n}")
    _interop_threads = n


def get_num_interop_threads() -> int:
    """The value of :func:`set_num_interop_threads`, else 1 (ops run on one thread)."""
    return 1 if _interop_threads is None else _interop_threads


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Record whether deterministic algorithms are asked for (see the module docstring:
    the CPU path is deterministic; the flag is not enforced on "cuda")."""
    global _deterministic, _deterministic_warn_only
    if not isinstance(mode, bool):
        raise FwTypeError(f"use_deterministic_algorithms(): mode must be a bool, got "
                          f"{type(mode).__name__}")
    _deterministic, _deterministic_warn_only = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    """The flag set by :func:`use_deterministic_algorithms`."""
    return _deterministic


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """The ``warn_only`` flag set by :func:`use_deterministic_algorithms`."""
    return _deterministic and _deterministic_warn_only
