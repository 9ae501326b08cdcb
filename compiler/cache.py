"""On-disk cache for compiled artifacts (generated code objects, kernels).

Directory: ``$FW_CACHE_DIR`` or the user cache dir (``$XDG_CACHE_HOME/framework`` or
``~/.cache/framework``). Keys are hashes of what was compiled plus the versions that
affect the result. Writes are atomic (a temporary file in the same directory, then
``os.replace``), so a concurrent reader sees either nothing or a whole entry. Every entry
carries a checksum; a corrupt or truncated entry is ignored with a warning, removed, and
rebuilt by the caller.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import warnings

MAGIC = b"FWC1"


def cache_dir() -> str:
    """The cache directory (created on first use)."""
    d = os.environ.get("FW_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".cache")
        d = os.path.join(base, "framework")
    return d


def versions() -> str:
    """Versions that invalidate cached artifacts when they change."""
    import numpy as np
    from . import __name__ as _pkg  # noqa: F401
    return f"py{sys.version_info[:3]}-np{np.__version__}-fwc{FORMAT_VERSION}"


FORMAT_VERSION = 1


def make_key(*parts) -> str:
    """A hex digest of ``parts`` (strings or bytes) and :func:`versions`."""
    h = hashlib.sha256(versions().encode())
    for p in parts:
        h.update(b"\0")
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()


class DiskCache:
    """A directory of checksummed entries under ``cache_dir()/namespace``."""

    def __init__(self, namespace: str, root: str | None = None):
        self.dir = os.path.join(root or cache_dir(), namespace)

    def _path(self, key: str) -> str:
        return os.path.join(self.dir, key[:2], key)

    def get(self, key: str) -> bytes | None:
        """The payload stored under ``key``, or None (missing or corrupt)."""
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError:
            return None
        if len(blob) < 36 or blob[:4] != MAGIC or \
                hashlib.sha256(blob[36:]).digest() != blob[4:36]:
            warnings.warn(f"fw compile cache: ignoring corrupt entry {path}; rebuilding it",
                          stacklevel=2)
            try:
                os.remove(path)
            except OSError:
                pass
            return None
        return blob[36:]

    def put(self, key: str, payload: bytes) -> None:
        """Store ``payload`` atomically (errors writing the cache are not fatal)."""
        path = self._path(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        except OSError as e:
            warnings.warn(f"fw compile cache: cannot write {path}: {e}", stacklevel=2)
