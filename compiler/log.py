"""``FW_LOGS=graph,code,recompiles,fusion`` (or ``fw._logging.set_logs(recompiles=True)``)
prints what the compiler makes as it makes it."""

from __future__ import annotations

import os
import sys


def enabled(kind: str) -> bool:
    """True when ``kind`` is listed in the ``FW_LOGS`` environment variable or was turned
    on with ``fw._logging.set_logs``."""
    from framework._logging import enabled_kinds
    kinds = os.environ.get("FW_LOGS", "")
    return kind in kinds.split(",") or kinds == "all" or kind in enabled_kinds


def emit(kind: str, text: str) -> None:
    """Print ``text`` to stderr under a header when ``kind`` is enabled."""
    if enabled(kind):
        print(f"[fw.compile:{kind}]\n{text}", file=sys.stderr)
