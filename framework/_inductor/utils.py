"""``fw._inductor.utils.fresh_inductor_cache``: compile with empty code caches, as the
regional-compilation recipe does to time cold starts."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def fresh_inductor_cache(cache_entries=None, dir=None, delete: bool = True):
    """Inside the block the compiler's on-disk cache (``$FW_CACHE_DIR``) is a new empty
    directory (made under ``dir`` if given) and its in-memory cache of generated code
    starts empty, so a first compiled call generates and compiles its code from scratch.
    Both are put back afterwards (the new directory is removed unless ``delete=False``).
    ``cache_entries`` (PyTorch fills it with Inductor's cache files) is not supported."""
    if cache_entries is not None:
        raise NotImplementedError("fresh_inductor_cache(cache_entries=...): fw's compiler "
                                  "does not report its cache entries")
    from compiler.codegen import numpy as numpy_codegen
    old_env = os.environ.get("FW_CACHE_DIR")
    old_memory = dict(numpy_codegen._MEMORY)
    tmp = tempfile.mkdtemp(prefix="fw-fresh-cache-", dir=dir)
    os.environ["FW_CACHE_DIR"] = tmp
    numpy_codegen._MEMORY.clear()
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop("FW_CACHE_DIR", None)
        else:
            os.environ["FW_CACHE_DIR"] = old_env
        numpy_codegen._MEMORY.clear()
        numpy_codegen._MEMORY.update(old_memory)
        if delete:
            shutil.rmtree(tmp, ignore_errors=True)
