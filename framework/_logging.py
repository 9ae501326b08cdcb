"""``fw._logging.set_logs``: PyTorch's ``torch._logging.set_logs`` for the compiler's logs,
the in-process form of the ``FW_LOGS`` environment variable (``compiler/log.py`` prints
them to stderr)."""

from __future__ import annotations

# set_logs keyword -> FW_LOGS kind
_ARTIFACTS = {"recompiles": "recompiles", "graph_code": "graph", "graph": "graph",
              "output_code": "code", "fusion": "fusion"}
enabled_kinds: set = set()


def set_logs(**kwargs) -> None:
    """Turn compiler logs on, e.g. ``set_logs(recompiles=True)`` (why a compiled function
    captures again), ``graph_code=True`` (each captured graph), ``output_code=True`` (the
    generated code), ``fusion=True``. Each call replaces the previous settings, so
    ``set_logs()`` turns them all off. Other PyTorch log names, when switched on, raise
    NotImplementedError (fw has no logs behind them)."""
    unknown = sorted(k for k, v in kwargs.items() if v and k not in _ARTIFACTS)
    if unknown:
        raise NotImplementedError(f"_logging.set_logs: no fw logs for {unknown} (supported: "
                                  f"{', '.join(sorted(_ARTIFACTS))})")
    enabled_kinds.clear()
    enabled_kinds.update(_ARTIFACTS[k] for k, v in kwargs.items() if v)
